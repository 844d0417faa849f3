//! Request headers of a client asking for a file whose owner does not answer ranges and
//! validators itself: the answer the proxying node gives. Nothing may panic, a part must lie
//! inside the file and not be empty, and a date that parses must format back to itself.
//!
//! Input: the file's size and modification time (8 bytes each, little-endian), then the
//! headers Range, If-Range, If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since,
//! one per line (an empty line: absent).

#![no_main]

use dftp_core::http_file::{
    answer, content_range, http_date, parse_http_date, parse_range, Answer, Conditions, FileFacts, RangeAsk,
};
use libfuzzer_sys::fuzz_target;

fn inside(start: u64, len: u64, size: u64) {
    assert!(len >= 1 && start.checked_add(len).is_some_and(|end| end <= size), "{start}+{len} of {size}");
    let _ = content_range(start, len, size);
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 16 {
        return;
    }
    let size = u64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
    let modified = i64::from_le_bytes(data[8..16].try_into().expect("8 bytes"));
    let Ok(text) = std::str::from_utf8(&data[16..]) else { return };
    let mut lines = text.split('\n').map(|l| (!l.is_empty()).then_some(l));
    let mut next = || lines.next().flatten();
    let c = Conditions {
        range: next(),
        if_range: next(),
        if_match: next(),
        if_none_match: next(),
        if_modified_since: next(),
        if_unmodified_since: next(),
    };
    if let Answer::Part { start, len } = answer(&c, FileFacts { size, modified }) {
        inside(start, len, size);
    }
    if let Some(RangeAsk::Part { start, len }) = c.range.map(|r| parse_range(r, size)) {
        inside(start, len, size);
    }
    let _ = http_date(modified);
    for date in [c.if_range, c.if_modified_since, c.if_unmodified_since].into_iter().flatten() {
        if let Some(secs) = parse_http_date(date) {
            let formatted = http_date(secs).expect("a parsed date is in the years an HTTP date holds");
            assert_eq!(parse_http_date(&formatted), Some(secs), "{date:?} -> {formatted:?}");
        }
    }
});
