//! HTTP/1.1 responses of other nodes, sans IO: where the head ends, and where the body does.
//!
//! A node fetches the files it proxies from their owner with its own small client (the shell's
//! `upstream`), so that a body can be spliced from socket to socket. The bytes come from another
//! machine, so their framing is parsed here, where it is tested and fuzzed without sockets. Our
//! nodes frame file bodies with Content-Length; the original's send them chunked; anything else
//! ends with the connection (RFC 9112, section 6.3).

use thiserror::Error;

/// Longest response head, and longest chunk-size or trailer line.
pub const MAX_HEAD: usize = 64 << 10;
const MAX_HEADERS: usize = 64;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FramingError {
    #[error("a malformed answer: {0}")]
    Head(String),
    #[error("an answer head longer than {MAX_HEAD} bytes")]
    HeadTooLong,
    #[error("conflicting or malformed Content-Length")]
    Length,
    #[error("a malformed chunk size")]
    ChunkSize,
    #[error("a chunk longer than its size")]
    ChunkEnd,
    #[error("a trailer line longer than {MAX_HEAD} bytes")]
    Trailer,
    #[error("the connection closed before the end of the body")]
    Truncated,
}

/// How a body ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    Length(u64),
    Chunked,
    UntilClose,
}

/// A parsed response head.
#[derive(Debug, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    /// Bytes of the buffer the head took.
    pub len: usize,
    /// Whether the connection may carry another request once the body is read.
    pub keep_alive: bool,
    /// `None` for an interim (1xx) answer, after which the real head follows.
    pub framing: Option<Framing>,
}

/// Parses the response head at the start of `buf`, handing each header to `on_header`.
/// `Ok(None)`: the head is not complete yet.
pub fn parse_head(
    buf: &[u8],
    head_request: bool,
    mut on_header: impl FnMut(&str, &[u8]),
) -> Result<Option<Head>, FramingError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => return Ok(None),
        Ok(httparse::Status::Partial) => return Err(FramingError::HeadTooLong),
        Err(e) => return Err(FramingError::Head(e.to_string())),
    };
    let status = resp.code.ok_or_else(|| FramingError::Head("no status".into()))?;
    // `chunked_last`: whether chunked is the last transfer coding, once one is named.
    let (mut close, mut chunked_last, mut length) = (false, None::<bool>, None::<u64>);
    for h in resp.headers.iter() {
        on_header(h.name, h.value);
        let value = || std::str::from_utf8(h.value).unwrap_or("");
        if h.name.eq_ignore_ascii_case("connection") {
            close |= value().split(',').any(|t| t.trim().eq_ignore_ascii_case("close"));
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // Only the last coding of the last header counts (several headers are one list).
            let last = value().rsplit(',').next().unwrap_or("").trim();
            chunked_last = Some(last.eq_ignore_ascii_case("chunked"));
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let n: u64 = value().trim().parse().map_err(|_| FramingError::Length)?;
            if length.is_some_and(|l| l != n) {
                return Err(FramingError::Length);
            }
            length = Some(n);
        }
    }
    let framing = if (100..200).contains(&status) {
        None
    } else if head_request || status == 204 || status == 304 {
        Some(Framing::Length(0))
    } else {
        Some(match chunked_last {
            Some(true) => Framing::Chunked,
            // A transfer coding that is not chunked last ends with the connection.
            Some(false) => Framing::UntilClose,
            None => length.map_or(Framing::UntilClose, Framing::Length),
        })
    };
    let keep_alive = resp.version == Some(1) && !close && framing != Some(Framing::UntilClose);
    Ok(Some(Head { status, len, keep_alive, framing }))
}

/// What the bytes at the front of the buffer are, after `skip` bytes of framing (chunk sizes,
/// their CRLFs, trailers) that the caller drops.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// The next `len` bytes are body.
    Data { skip: usize, len: usize },
    /// More bytes are needed to go on.
    NeedMore { skip: usize },
    /// The body has ended.
    End { skip: usize },
}

#[derive(Clone, Copy, Debug)]
enum State {
    Length(u64),
    UntilClose,
    ChunkSize,
    ChunkData(u64),
    /// The CRLF after a chunk's data.
    ChunkEnd,
    /// Trailer lines, up to an empty one.
    Trailer,
    Done,
}

/// Finds the end of a body in the bytes that follow its head.
#[derive(Clone, Debug)]
pub struct BodyDecoder {
    state: State,
}

impl BodyDecoder {
    pub fn new(framing: Framing) -> BodyDecoder {
        let state = match framing {
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::ChunkSize,
            Framing::UntilClose => State::UntilClose,
        };
        BodyDecoder { state }
    }

    /// Bytes of body still to come, when the framing says how many.
    pub fn remaining(&self) -> Option<u64> {
        match self.state {
            State::Length(n) => Some(n),
            State::Done => Some(0),
            _ => None,
        }
    }

    /// True once the whole body has been handed out and its end seen: the connection then
    /// holds nothing more of this response.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Length(0) | State::Done)
    }

    /// Looks at `buf`, the bytes received and not yet consumed. The caller drops `skip` bytes,
    /// then takes the data if any, and calls again (after reading more, for `NeedMore`).
    pub fn step(&mut self, buf: &[u8]) -> Result<Step, FramingError> {
        let mut skip = 0;
        loop {
            let rest = &buf[skip..];
            match &mut self.state {
                State::Done | State::Length(0) => {
                    self.state = State::Done;
                    return Ok(Step::End { skip });
                }
                State::Length(_) | State::UntilClose | State::ChunkData(_) if rest.is_empty() => {
                    return Ok(Step::NeedMore { skip })
                }
                State::Length(left) | State::ChunkData(left) => {
                    let len = (*left).min(rest.len() as u64);
                    *left -= len;
                    if let State::ChunkData(0) = self.state {
                        self.state = State::ChunkEnd;
                    }
                    return Ok(Step::Data { skip, len: len as usize });
                }
                State::UntilClose => return Ok(Step::Data { skip, len: rest.len() }),
                State::ChunkSize => match httparse::parse_chunk_size(rest) {
                    Ok(httparse::Status::Complete((used, 0))) => {
                        skip += used;
                        self.state = State::Trailer;
                    }
                    Ok(httparse::Status::Complete((used, size))) => {
                        skip += used;
                        self.state = State::ChunkData(size);
                    }
                    Ok(httparse::Status::Partial) if rest.len() < MAX_HEAD => return Ok(Step::NeedMore { skip }),
                    _ => return Err(FramingError::ChunkSize),
                },
                State::ChunkEnd if rest.len() < 2 => {
                    if rest.first().is_some_and(|&b| b != b'\r') {
                        return Err(FramingError::ChunkEnd);
                    }
                    return Ok(Step::NeedMore { skip });
                }
                State::ChunkEnd if rest.starts_with(b"\r\n") => {
                    skip += 2;
                    self.state = State::ChunkSize;
                }
                State::ChunkEnd => return Err(FramingError::ChunkEnd),
                State::Trailer => match rest.windows(2).position(|w| w == b"\r\n") {
                    Some(0) => {
                        self.state = State::Done;
                        return Ok(Step::End { skip: skip + 2 });
                    }
                    Some(i) => skip += i + 2,
                    None if rest.len() < MAX_HEAD => return Ok(Step::NeedMore { skip }),
                    None => return Err(FramingError::Trailer),
                },
            }
        }
    }

    /// The connection has ended: the end of a body framed by it, an error for any other.
    pub fn eof(&mut self) -> Result<(), FramingError> {
        match self.state {
            State::UntilClose | State::Done | State::Length(0) => {
                self.state = State::Done;
                Ok(())
            }
            _ => Err(FramingError::Truncated),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Decodes `body` fed in pieces of `piece` bytes; the data, and the bytes left after the
    /// end (`None` when the body did not end before the input did).
    fn decode(framing: Framing, body: &[u8], piece: usize) -> Result<(Vec<u8>, Option<usize>), FramingError> {
        let mut d = BodyDecoder::new(framing);
        let (mut buf, mut fed, mut out) = (Vec::new(), 0, Vec::new());
        loop {
            match d.step(&buf)? {
                Step::Data { skip, len } => {
                    out.extend_from_slice(&buf[skip..skip + len]);
                    buf.drain(..skip + len);
                }
                Step::End { skip } => {
                    buf.drain(..skip);
                    return Ok((out, Some(buf.len() + body.len() - fed)));
                }
                Step::NeedMore { skip } => {
                    buf.drain(..skip);
                    if fed == body.len() {
                        d.eof()?;
                        return Ok((out, None));
                    }
                    let n = piece.min(body.len() - fed);
                    buf.extend_from_slice(&body[fed..fed + n]);
                    fed += n;
                }
            }
        }
    }

    fn head(text: &str) -> Head {
        parse_head(text.as_bytes(), false, |_, _| {}).unwrap().unwrap()
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nbody");
        assert_eq!((h.status, h.framing, h.keep_alive, h.len), (200, Some(Framing::Length(12)), true, 39));
        assert_eq!(head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").framing, Some(Framing::Chunked));
        let h = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n");
        assert_eq!((h.framing, h.keep_alive), (Some(Framing::UntilClose), false));
        // Transfer-Encoding wins over Content-Length.
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(h.framing, Some(Framing::Chunked));
        assert_eq!(head("HTTP/1.1 200 OK\r\n\r\n").framing, Some(Framing::UntilClose));
        assert_eq!(head("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n").framing, Some(Framing::Length(0)));
        assert_eq!(head("HTTP/1.1 100 Continue\r\n\r\n").framing, None);
        assert!(!head("HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 1\r\n\r\n").keep_alive);
        assert!(!head("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n").keep_alive);
        let h = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, |_, _| {}).unwrap().unwrap();
        assert_eq!(h.framing, Some(Framing::Length(0)), "the answer to HEAD has no body");
    }

    #[test]
    fn bad_heads_are_refused() {
        let parse = |t: &[u8]| parse_head(t, false, |_, _| {});
        assert_eq!(parse(b"HTTP/1.1 200 OK\r\nContent-Le"), Ok(None));
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Err(FramingError::Length)
        );
        assert_eq!(parse(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"), Err(FramingError::Length));
        assert!(matches!(parse(b"SSH-2.0-OpenSSH\r\n\r\n"), Err(FramingError::Head(_))));
        assert!(matches!(parse(&vec![b'a'; MAX_HEAD + 1]), Err(FramingError::Head(_))));
        let mut long = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        long.resize(MAX_HEAD, b'a');
        assert_eq!(parse(&long), Err(FramingError::HeadTooLong));
    }

    #[test]
    fn chunked_bodies_end_after_their_trailers() {
        let body = b"5\r\nhello\r\n1;ext=\"x\"\r\n \r\nA\r\n0123456789\r\n0\r\nX-T: t\r\n\r\nNEXT";
        for piece in [1, 2, 3, 7, 1000] {
            assert_eq!(decode(Framing::Chunked, body, piece), Ok((b"hello 0123456789".to_vec(), Some(4))), "{piece}");
        }
        assert_eq!(decode(Framing::Chunked, b"zz\r\n", 1), Err(FramingError::ChunkSize));
        assert_eq!(decode(Framing::Chunked, b"2\r\nabc\r\n", 1), Err(FramingError::ChunkEnd));
        assert_eq!(decode(Framing::Chunked, b"2\r\nab", 1), Err(FramingError::Truncated));
    }

    #[test]
    fn length_and_close_framing() {
        assert_eq!(decode(Framing::Length(3), b"abcdef", 2), Ok((b"abc".to_vec(), Some(3))));
        assert_eq!(decode(Framing::Length(9), b"abc", 2), Err(FramingError::Truncated));
        assert_eq!(decode(Framing::UntilClose, b"abc", 2), Ok((b"abc".to_vec(), None)));
        let mut d = BodyDecoder::new(Framing::Length(2));
        assert_eq!(d.step(b"ab"), Ok(Step::Data { skip: 0, len: 2 }));
        assert!(d.is_done(), "done with the last byte, before anyone asks for the end");
    }

    proptest! {
        /// Any body, chunked in any sizes, decodes to itself whatever pieces it arrives in.
        #[test]
        fn chunked_round_trip(data in proptest::collection::vec(any::<u8>(), 0..600), sizes in proptest::collection::vec(1usize..50, 1..20), piece in 1usize..40) {
            let mut wire = Vec::new();
            let (mut at, mut i) = (0, 0);
            while at < data.len() {
                let n = sizes[i % sizes.len()].min(data.len() - at);
                wire.extend_from_slice(format!("{n:x}\r\n").as_bytes());
                wire.extend_from_slice(&data[at..at + n]);
                wire.extend_from_slice(b"\r\n");
                at += n;
                i += 1;
            }
            wire.extend_from_slice(b"0\r\n\r\n");
            prop_assert_eq!(decode(Framing::Chunked, &wire, piece), Ok((data, Some(0))));
        }

        /// Arbitrary bytes: the same outcome whatever pieces they arrive in.
        #[test]
        fn arbitrary_bytes_decode_the_same_in_any_pieces(bytes in proptest::collection::vec(any::<u8>(), 0..300), piece in 1usize..20) {
            for framing in [Framing::Chunked, Framing::Length(100), Framing::UntilClose] {
                prop_assert_eq!(decode(framing, &bytes, piece), decode(framing, &bytes, bytes.len().max(1)));
            }
        }
    }
}
