//! The cluster secret's tags (`X-Dftp-Auth` of requests and answers, sealed multicast packets)
//! on arbitrary input. Nothing may panic; nothing unsigned verifies, however it is shaped; what
//! the node's keys sign verifies once, and not after any byte of it changed.
//!
//! The input is cut at its first two NUL bytes into a header value, a path and a body.

#![no_main]

use dftp_core::cluster_auth::{BodyDigest, Keys, Nonce, NonceWindow, Stamp};
use dftp_core::Time;
use libfuzzer_sys::fuzz_target;

const NOW: Time = Time(1_800_000_000_000);

fuzz_target!(|data: &[u8]| {
    let keys = Keys::new(b"the fuzzer's cluster key, 32 bytes or more", None).unwrap();
    let mut parts = data.splitn(3, |&b| b == 0);
    let (header, path, body) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default(), parts.next());
    let path = String::from_utf8_lossy(path);
    let body = body.unwrap_or_default();
    let digest = BodyDigest::of(body);

    // Arbitrary bytes as a request's header, an answer's header and a packet: never good.
    let mut seen = NonceWindow::default();
    if let Ok(stamp) = Stamp::parse(Some(header)) {
        assert_eq!(Stamp::parse(Some(stamp.to_string().as_bytes())), Ok(stamp), "a parsed stamp writes back");
        assert!(keys.verify_request(&stamp, "POST", &path, digest, NOW, &mut seen).is_err());
    }
    assert!(keys.verify_response(Some(header), Nonce([0; 16]), 200, digest).is_err());
    assert!(keys.open_packet(data, NOW, &mut seen).is_err());
    assert!(seen.is_empty(), "nothing unsigned is remembered");

    // Signed: good once, and not with a byte of the header changed.
    let nonce = {
        let mut n = [0; 16];
        for (i, b) in data.iter().enumerate() {
            n[i % 16] ^= b;
        }
        Nonce(n)
    };
    let signed = keys.sign_request("POST", &path, NOW, nonce, digest);
    let stamp = Stamp::parse(Some(signed.as_bytes())).expect("our own stamp parses");
    assert!(keys.verify_request(&stamp, "POST", &path, digest, NOW, &mut seen).is_ok());
    assert!(keys.verify_request(&stamp, "POST", &path, digest, NOW, &mut seen).is_err(), "a replay");
    if !data.is_empty() {
        let mut changed = signed.clone().into_bytes();
        let at = usize::from(data[0]) % changed.len();
        changed[at] = if changed[at] == b'0' { b'1' } else { b'0' };
        if let Ok(other) = Stamp::parse(Some(&changed)) {
            let mut fresh = NonceWindow::default();
            assert!(keys.verify_request(&other, "POST", &path, digest, NOW, &mut fresh).is_err());
        }
    }
    let packet = keys.seal_packet(body, NOW, Nonce([1; 16]));
    // The stamp has no newline, so the packet is cut at its last one whatever the body holds.
    assert_eq!(keys.open_packet(&packet, NOW, &mut NonceWindow::default()), Ok(body));
});
