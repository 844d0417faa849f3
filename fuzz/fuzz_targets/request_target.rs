//! The path of a client's request target under `/fs/`, and of a `Destination` header, on
//! arbitrary UTF-8 (`request::fs_path`, `request::destination_path`): nothing may panic, an
//! accepted path is a valid tree path (no `.`, `..`, empty segment, NUL, backslash or control
//! character, however it was percent-encoded), and it comes back from its own encoded form.

#![no_main]

use dftp_core::request::{destination_path, fs_path};
use dftp_core::DfsPath;
use libfuzzer_sys::fuzz_target;

/// Every byte but the unreserved ones percent-encoded, segment by segment.
fn encode(p: &DfsPath) -> String {
    let mut out = String::from("/");
    for b in p.as_str().bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else { return };
    if let Ok(p) = fs_path(raw) {
        let s = p.as_str();
        assert!(!s.contains(['\0', '\\']) && !s.contains(char::is_control), "{raw:?} gave {s:?}");
        assert!(
            p.is_root() || s.split('/').all(|seg| !seg.is_empty() && seg != "." && seg != ".."),
            "{raw:?} gave {s:?}"
        );
        assert_eq!(DfsPath::parse_request(s).as_ref(), Ok(&p), "a valid tree path");
        assert_eq!(fs_path(&encode(&p)).as_ref(), Ok(&p), "its encoded form names it again");
        if !raw.contains('%') {
            assert_eq!(DfsPath::parse_request(raw).as_ref(), Ok(&p), "without escapes, the path as given");
        }
    }
    match destination_path(raw) {
        Ok(p) => {
            let rest = raw.strip_prefix("/fs").expect("a destination lies under /fs/");
            assert_eq!(fs_path(rest).as_ref(), Ok(&p));
        }
        Err(e) => assert!(!e.is_empty()),
    }
});
