//! Values of the request and answer headers dftp reads itself, on arbitrary bytes
//! (`request::{overwrite, update_range, stream_pos, update_of}`: `Overwrite`, `X-Update-Range`,
//! `X-Dftp-Update`, `X-Dftp-Update-Of`): nothing may panic, and what is accepted is read back
//! the same from the value dftp itself would write for it.

#![no_main]

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
});
