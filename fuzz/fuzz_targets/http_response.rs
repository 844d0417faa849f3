//! Answers of other nodes to a proxied file request: the head, then the body decoded from the
//! bytes that follow, once whole and once in pieces of the size the first byte gives. Both
//! must agree, and nothing may panic or hand out bytes that are not there.

#![no_main]

use dftp_core::http1::{parse_head, BodyDecoder, Framing, Step};
use libfuzzer_sys::fuzz_target;

/// The body's data and how it ended (`Ok(true)`: its end was seen; `Ok(false)`: the input ended).
fn decode(framing: Framing, bytes: &[u8], piece: usize) -> Result<(Vec<u8>, bool), String> {
    let mut d = BodyDecoder::new(framing);
    let (mut buf, mut fed, mut out) = (Vec::new(), 0, Vec::new());
    loop {
        match d.step(&buf).map_err(|e| e.to_string())? {
            Step::Data { skip, len } => {
                assert!(skip + len <= buf.len() && len > 0, "data beyond what arrived");
                out.extend_from_slice(&buf[skip..skip + len]);
                buf.drain(..skip + len);
            }
            Step::End { skip } => {
                assert!(skip <= buf.len());
                assert!(d.is_done());
                return Ok((out, true));
            }
            Step::NeedMore { skip } => {
                assert!(skip <= buf.len());
                buf.drain(..skip);
                if fed == bytes.len() {
                    d.eof().map_err(|e| e.to_string())?;
                    return Ok((out, false));
                }
                let n = piece.min(bytes.len() - fed);
                buf.extend_from_slice(&bytes[fed..fed + n]);
                fed += n;
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, data)) = data.split_first() else { return };
    let piece = usize::from(first % 16) + 1;
    let mut names = 0;
    let Ok(Some(head)) = parse_head(data, first & 0x80 != 0, |_, _| names += 1) else { return };
    assert!(head.len <= data.len());
    let Some(framing) = head.framing else { return };
    let rest = &data[head.len..];
    let whole = decode(framing, rest, rest.len().max(1));
    let pieces = decode(framing, rest, piece);
    assert_eq!(whole, pieces);
    if let (Framing::Length(n), Ok((out, _))) = (framing, &whole) {
        assert_eq!(out.len() as u64, n);
    }
});
