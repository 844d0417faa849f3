//! HTTP answers for a file that a node knows only by its size and modification time, sans IO.
//!
//! A node serves a file of another node by streaming it from that node (the owner). Our nodes
//! answer ranges and validators themselves, and their answers are passed on as they are. The
//! original's nodes do not: they send every file whole, with no Content-Length past 2 KiB, no
//! `Accept-Ranges`, `ETag` or `Last-Modified`, and they ignore `Range` and the conditional
//! headers. For such an owner the proxying node makes those answers itself from what the tree
//! says of the file (size and modification time) and cuts the owner's stream to fit. This module
//! decides: whether the owner's answer needs that ([`owner_handles_ranges`]), and which answer to
//! give ([`answer`]), by RFC 9110's rules (sections 13 and 14). The file has no entity tag here,
//! so only `Last-Modified` validates.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The entity tag of a file with `size` bytes last modified at Unix second `modified`: what
/// `GET` and `HEAD` send in `ETag` (for files of this node, and so, passed on, for files of our
/// other nodes), what writes check `If-Match` against, and what WebDAV's `getetag` says. It is
/// made from what the merged tree knows of every file (the wire carries whole seconds), so that
/// a node that owns nothing can answer a `PROPFIND` with the tags a `GET` would send, without
/// asking each owner. The price: two writes of the same size within one second share a tag.
/// `None` before 1970, where no tag is sent.
pub fn etag(size: u64, modified: i64) -> Option<String> {
    let secs = u64::try_from(modified).ok()?;
    Some(format!("\"{secs:x}-{size:x}\""))
}

/// What the tree says of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileFacts {
    pub size: u64,
    /// Last modification, Unix seconds.
    pub modified: i64,
}

/// The request headers that decide the answer, as received; `None` when absent. A header that
/// is not a list and came more than once should be given as `None` (it is ignored), and the
/// values of a repeated list header (`If-Match`, `If-None-Match`) joined with commas.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Conditions<'a> {
    pub range: Option<&'a str>,
    pub if_range: Option<&'a str>,
    pub if_match: Option<&'a str>,
    pub if_none_match: Option<&'a str>,
    pub if_modified_since: Option<&'a str>,
    pub if_unmodified_since: Option<&'a str>,
}

/// The answer to a `GET` or `HEAD` of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// `200` with the whole file.
    Whole,
    /// `206` with `len` (at least 1) bytes from `start`.
    Part { start: u64, len: u64 },
    /// `416`: the range asked for has no byte in the file.
    Unsatisfiable,
    /// `304`.
    NotModified,
    /// `412`: `If-Match` or `If-Unmodified-Since` failed.
    PreconditionFailed,
}

/// What a `Range` header asks of a file of a given size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeAsk {
    /// Nothing that can be served as one part: no range, another unit, a malformed value, or
    /// several ranges. The whole file is the answer.
    Ignore,
    Part {
        start: u64,
        len: u64,
    },
    Unsatisfiable,
}

/// Whether the owner's answer to a `GET` or `HEAD` of a file already carries the file's HTTP
/// semantics, so that it is passed on as it is. Anything but a `200` is the owner's own answer
/// (a `206`, `304`, `416`, or an error). A `200` is one only with a `Content-Length` and
/// `Accept-Ranges: bytes`, and only if the request did not ask for a range that the owner should
/// then have served (`ranged`: a `Range` without `If-Range`, whose failure rightly gives a
/// `200`). Decided from the answer, not from what kind of node the owner is thought to be.
pub fn owner_handles_ranges(
    status: u16,
    content_length: Option<u64>,
    accept_ranges: Option<&str>,
    ranged: bool,
) -> bool {
    if status != 200 {
        return true;
    }
    let bytes = accept_ranges.is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("bytes")));
    content_length.is_some() && bytes && !ranged
}

/// The answer to a `GET` or `HEAD` with these headers, evaluated in RFC 9110's order (section
/// 13.2.2): `If-Match`, `If-Unmodified-Since`, `If-None-Match`, `If-Modified-Since`, then
/// `Range` with `If-Range`. With no entity tag, `If-Match: *` and `If-None-Match: *` match (the
/// file exists) and no other tag does. Dates that do not parse are ignored, as the RFC says.
pub fn answer(c: &Conditions, file: FileFacts) -> Answer {
    if let Some(v) = c.if_match {
        if !is_star(v) {
            return Answer::PreconditionFailed;
        }
    } else if let Some(date) = c.if_unmodified_since.and_then(parse_http_date) {
        if file.modified > date {
            return Answer::PreconditionFailed;
        }
    }
    if let Some(v) = c.if_none_match {
        if is_star(v) {
            return Answer::NotModified;
        }
    } else if let Some(date) = c.if_modified_since.and_then(parse_http_date) {
        if file.modified <= date {
            return Answer::NotModified;
        }
    }
    let Some(range) = c.range else { return Answer::Whole };
    if let Some(v) = c.if_range {
        // An entity tag (which cannot match) or a date that must be the modification time.
        let v = v.trim();
        let tag = v.starts_with('"') || v.starts_with("W/");
        if tag || parse_http_date(v) != Some(file.modified) {
            return Answer::Whole;
        }
    }
    match parse_range(range, file.size) {
        RangeAsk::Ignore => Answer::Whole,
        RangeAsk::Part { start, len } => Answer::Part { start, len },
        RangeAsk::Unsatisfiable => Answer::Unsatisfiable,
    }
}

fn is_star(list: &str) -> bool {
    list.trim() == "*"
}

/// Reads a `Range` header for a file of `size` bytes (RFC 9110 section 14.1.2). One range is
/// served: `a-b`, `a-` or `-n`, cut to the file. Several ranges are answered with the whole file
/// (`Ignore`), as nginx does for proxied content: a multipart answer would have to be built
/// from the owner's stream, and serving everything is always allowed.
pub fn parse_range(value: &str, size: u64) -> RangeAsk {
    let Some((unit, set)) = value.split_once('=') else { return RangeAsk::Ignore };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return RangeAsk::Ignore;
    }
    let mut specs = set.split(',').map(str::trim).filter(|s| !s.is_empty());
    let (Some(spec), None) = (specs.next(), specs.next()) else { return RangeAsk::Ignore };
    let Some((first, last)) = spec.split_once('-') else { return RangeAsk::Ignore };
    let (first, last) = (first.trim(), last.trim());
    match (number(first), number(last)) {
        // `-n`: the last n bytes.
        (None, Some(n)) if first.is_empty() => {
            if n == 0 || size == 0 {
                return RangeAsk::Unsatisfiable;
            }
            let len = n.min(size);
            RangeAsk::Part { start: size - len, len }
        }
        // `a-`: from a to the end.
        (Some(a), None) if last.is_empty() => {
            if a >= size {
                return RangeAsk::Unsatisfiable;
            }
            RangeAsk::Part { start: a, len: size - a }
        }
        (Some(a), Some(b)) if a <= b => {
            if a >= size {
                return RangeAsk::Unsatisfiable;
            }
            let end = b.min(size - 1);
            RangeAsk::Part { start: a, len: end - a + 1 }
        }
        _ => RangeAsk::Ignore,
    }
}

/// Decimal digits as a number; past `u64::MAX` it is `u64::MAX` (beyond any file either way).
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0u64, |n, d| n.saturating_mul(10).saturating_add(u64::from(d - b'0'))))
}

/// `Content-Range` of a part: `bytes START-END/SIZE`.
pub fn content_range(start: u64, len: u64, size: u64) -> String {
    format!("bytes {start}-{}/{size}", start + len.max(1) - 1)
}

/// `Content-Range` of a `416`: `bytes */SIZE`.
pub fn unsatisfied_range(size: u64) -> String {
    format!("bytes */{size}")
}

/// Unix seconds as an HTTP date (`Sat, 22 Oct 2016 22:08:01 GMT`); `None` outside the years
/// 1970 to 9999 that the format holds (the time comes from another node's update).
pub fn http_date(secs: i64) -> Option<String> {
    let secs = u64::try_from(secs).ok().filter(|s| *s < 253_402_300_800)?;
    Some(httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs)))
}

/// An HTTP date (any of the three formats of RFC 9110 section 5.6.7) as Unix seconds.
pub fn parse_http_date(s: &str) -> Option<i64> {
    let t: SystemTime = httpdate::parse_http_date(s).ok()?;
    i64::try_from(t.duration_since(UNIX_EPOCH).ok()?.as_secs()).ok()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const MODIFIED: i64 = 1477174081;
    const DATE: &str = "Sat, 22 Oct 2016 22:08:01 GMT";
    const FILE: FileFacts = FileFacts { size: 1000, modified: MODIFIED };

    #[test]
    fn single_ranges_are_cut_to_the_file() {
        let part = |start, len| RangeAsk::Part { start, len };
        for (value, want) in [
            ("bytes=10-19", part(10, 10)),
            ("bytes=0-0", part(0, 1)),
            ("bytes=-5", part(995, 5)),
            ("bytes=-5000", part(0, 1000)),
            ("bytes=100-", part(100, 900)),
            ("bytes=999-", part(999, 1)),
            ("bytes=2-5000", part(2, 998)),
            ("bytes=2-99999999999999999999999", part(2, 998)),
            (" Bytes = 10-19 ", part(10, 10)),
            ("bytes=10-19,", part(10, 10)),
            ("bytes=1000-", RangeAsk::Unsatisfiable),
            ("bytes=1010-1020", RangeAsk::Unsatisfiable),
            ("bytes=99999999999999999999999-", RangeAsk::Unsatisfiable),
            ("bytes=-0", RangeAsk::Unsatisfiable),
            ("bytes=0-1,5-6", RangeAsk::Ignore),
            ("bytes=5-4", RangeAsk::Ignore),
            ("bytes=-", RangeAsk::Ignore),
            ("bytes=", RangeAsk::Ignore),
            ("bytes=a-b", RangeAsk::Ignore),
            ("bytes=+1-2", RangeAsk::Ignore),
            ("bytes=1-2-3", RangeAsk::Ignore),
            ("items=0-1", RangeAsk::Ignore),
            ("0-1", RangeAsk::Ignore),
            ("", RangeAsk::Ignore),
        ] {
            assert_eq!(parse_range(value, 1000), want, "{value:?}");
        }
        assert_eq!(parse_range("bytes=0-", 0), RangeAsk::Unsatisfiable, "an empty file has no byte");
        assert_eq!(parse_range("bytes=-1", 0), RangeAsk::Unsatisfiable);
    }

    #[test]
    fn validators_are_checked_in_the_rfcs_order() {
        let check = |c: Conditions| answer(&c, FILE);
        let part = Answer::Part { start: 10, len: 10 };
        let range = Some("bytes=10-19");
        assert_eq!(check(Conditions::default()), Answer::Whole);
        assert_eq!(check(Conditions { range, ..Default::default() }), part);
        assert_eq!(check(Conditions { range: Some("bytes=5000-"), ..Default::default() }), Answer::Unsatisfiable);

        for (date, want) in [
            (DATE, Answer::NotModified),
            ("Sunday, 23-Oct-16 00:00:00 GMT", Answer::NotModified),
            ("Sat Oct 22 22:08:01 2016", Answer::NotModified),
            ("Sat, 22 Oct 2016 22:08:00 GMT", Answer::Whole),
            ("not a date", Answer::Whole),
        ] {
            assert_eq!(check(Conditions { if_modified_since: Some(date), ..Default::default() }), want, "{date}");
        }
        // If-None-Match wins over If-Modified-Since; no tag matches, `*` does.
        let ims = Some(DATE);
        assert_eq!(
            check(Conditions { if_none_match: Some("\"x\""), if_modified_since: ims, ..Default::default() }),
            Answer::Whole
        );
        assert_eq!(check(Conditions { if_none_match: Some(" * "), ..Default::default() }), Answer::NotModified);
        // Preconditions come first, even before a 304.
        assert_eq!(
            check(Conditions { if_match: Some("\"x\""), if_modified_since: ims, ..Default::default() }),
            Answer::PreconditionFailed
        );
        assert_eq!(check(Conditions { if_match: Some("*"), range, ..Default::default() }), part);
        let older = Some("Sat, 22 Oct 2016 22:00:00 GMT");
        assert_eq!(check(Conditions { if_unmodified_since: older, ..Default::default() }), Answer::PreconditionFailed);
        assert_eq!(check(Conditions { if_unmodified_since: Some(DATE), range, ..Default::default() }), part);
        // If-Match wins over If-Unmodified-Since.
        assert_eq!(
            check(Conditions { if_match: Some("*"), if_unmodified_since: older, ..Default::default() }),
            Answer::Whole
        );
        // If-Range: the range only for exactly the modification time.
        assert_eq!(check(Conditions { range, if_range: Some(DATE), ..Default::default() }), part);
        assert_eq!(check(Conditions { range, if_range: older, ..Default::default() }), Answer::Whole);
        assert_eq!(check(Conditions { range, if_range: Some("\"x\""), ..Default::default() }), Answer::Whole);
        assert_eq!(check(Conditions { range, if_range: Some("W/\"x\""), ..Default::default() }), Answer::Whole);
        assert_eq!(check(Conditions { if_range: Some(DATE), ..Default::default() }), Answer::Whole);
    }

    #[test]
    fn owners_that_handle_ranges_are_told_by_their_answer() {
        // Ours: a length and Accept-Ranges on a 200, their own 206/304/416.
        assert!(owner_handles_ranges(200, Some(5), Some("bytes"), false));
        for status in [206, 304, 404, 416, 502] {
            assert!(owner_handles_ranges(status, None, None, true), "{status}");
        }
        // The original's: chunked without a length, or a length (2 KiB or less) without
        // Accept-Ranges, and a 200 to a range.
        assert!(!owner_handles_ranges(200, None, None, false));
        assert!(!owner_handles_ranges(200, Some(5), None, false));
        assert!(!owner_handles_ranges(200, Some(5), Some("none"), false));
        assert!(!owner_handles_ranges(200, None, Some("bytes"), false));
        assert!(!owner_handles_ranges(200, Some(5), Some("bytes"), true));
        assert!(owner_handles_ranges(200, Some(5), Some("other, Bytes"), false));
    }

    #[test]
    fn dates() {
        assert_eq!(http_date(MODIFIED).as_deref(), Some(DATE));
        assert_eq!(parse_http_date(DATE), Some(MODIFIED));
        assert_eq!(http_date(0).as_deref(), Some("Thu, 01 Jan 1970 00:00:00 GMT"));
        for out_of_range in [-1, i64::MIN, 253_402_300_800, i64::MAX] {
            assert_eq!(http_date(out_of_range), None, "{out_of_range}");
        }
        assert_eq!(http_date(253_402_300_799).as_deref(), Some("Fri, 31 Dec 9999 23:59:59 GMT"));
        for bad in ["", "yesterday", "Sat, 22 Oct 2016 25:08:01 GMT", "Sat, 22 Oct 2016 22:08:01 GMT\u{e9}"] {
            assert_eq!(parse_http_date(bad), None, "{bad:?}");
        }
        assert_eq!(content_range(10, 10, 1000), "bytes 10-19/1000");
        assert_eq!(unsatisfied_range(0), "bytes */0");
    }

    proptest! {
        /// Whatever the header, a part lies inside the file and is never empty, and no input
        /// panics.
        #[test]
        fn parts_lie_inside_the_file(value in "[bBytes= ,0-9-]{0,24}", size in 0u64..2000) {
            if let RangeAsk::Part { start, len } = parse_range(&value, size) {
                prop_assert!(len >= 1 && start + len <= size, "{value:?} of {size}: {start}+{len}");
            }
        }

        #[test]
        fn any_header_values_give_an_answer(values in proptest::collection::vec(proptest::option::of(".{0,40}"), 6), size in 0u64..100, modified in any::<i64>()) {
            let v = |i: usize| values[i].as_deref();
            let c = Conditions { range: v(0), if_range: v(1), if_match: v(2), if_none_match: v(3), if_modified_since: v(4), if_unmodified_since: v(5) };
            let a = answer(&c, FileFacts { size, modified });
            if let Answer::Part { start, len } = a {
                prop_assert!(len >= 1 && start + len <= size);
            }
            let _ = http_date(modified);
        }
    }
}
