//! Values of the request and answer headers dftp reads itself, on arbitrary bytes
//! (`request::{overwrite, update_range, stream_pos, update_of}`: `Overwrite`, `X-Update-Range`,
//! `X-Dftp-Update`, `X-Dftp-Update-Of`; and `Precondition::from_http`: `If-Match` and
//! `If-None-Match`, split at the first newline): nothing may panic, what is accepted is read back
//! the same from the value dftp itself would write for it, and a precondition holds of exactly
//! the files it names.

#![no_main]

use dftp_core::precondition::Precondition;
use dftp_core::request::{overwrite, stream_pos, update_of, update_range, UpdateRange};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(o) = overwrite(Some(data)) {
        assert_eq!(overwrite(Some(if o { b"T" } else { b"F" })), Ok(o));
    }
    match update_range(Some(data)) {
        Ok(UpdateRange::Append) => assert!(data.trim_ascii().eq_ignore_ascii_case(b"append")),
        Ok(UpdateRange::At(n)) => {
            assert_eq!(update_range(Some(format!("bytes={n}-").as_bytes())), Ok(UpdateRange::At(n)))
        }
        Err(why) => assert!(why.contains("X-Update-Range")),
    }
    if let Some(pos) = stream_pos(data) {
        assert_eq!(stream_pos(format!("{}.{}", pos.epoch, pos.seq).as_bytes()), Some(pos));
    }
    if let Some((node, pos)) = update_of(data) {
        assert_eq!(update_of(format!("{node}={}.{}", pos.epoch, pos.seq).as_bytes()), Some((node, pos)));
    }
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (if_match, if_none_match) = match text.split_once('\n') {
        Some((m, n)) => (Some(m), Some(n)),
        None => (Some(text), None),
    };
    let tags_ok = |tags: &[String]| tags.iter().all(|t| !t.is_empty() && t.trim() == t && !t.contains(','));
    match Precondition::from_http(if_match, if_none_match) {
        Precondition::None => assert!(Precondition::None.holds(None) && Precondition::None.holds(Some("x"))),
        Precondition::Absent => assert!(if_none_match.is_some_and(|v| v.contains('*'))),
        Precondition::Present => assert!(if_match.is_some_and(|v| v.contains('*'))),
        Precondition::Matches(tags) => {
            assert!(tags_ok(&tags), "{tags:?}");
            let pre = Precondition::Matches(tags.clone());
            assert!(!pre.holds(None) && tags.iter().all(|t| pre.holds(Some(t))));
        }
        Precondition::NoneMatch(tags) => {
            assert!(tags_ok(&tags), "{tags:?}");
            let pre = Precondition::NoneMatch(tags.clone());
            assert!(pre.holds(None) && tags.iter().all(|t| !pre.holds(Some(t.trim_start_matches("W/")))));
        }
    }
});
