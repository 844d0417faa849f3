//! WebDAV's `If` header, as any client may send it: parsing never panics; a parsed header
//! names only non-empty tokens, is evaluated against any state without panicking, and holds
//! of no resource when every list requires a token nobody has.

#![no_main]

use dftp_core::dav::if_header::{IfHeader, State, Test};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let Ok(h) = IfHeader::parse(s) else { return };
    assert!(!h.lists.is_empty());
    assert!(h.tokens().all(|t| !t.is_empty()));
    let tokens: Vec<String> = h.tokens().map(str::to_owned).collect();
    let _ = h.holds(|_| State { etag: Some("\"x\"".into()), tokens: tokens.clone() });
    let needs_a_token = h.lists.iter().all(|l| l.conditions.iter().any(|c| !c.not && matches!(c.test, Test::Token(_))));
    if needs_a_token {
        assert!(!h.holds(|_| State::default()), "no lock, no token: {s:?}");
    }
});
