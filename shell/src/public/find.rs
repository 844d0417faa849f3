//! `GET /find/`: every path of the tree, one per line, sorted, streamed from a snapshot.

use bytes::Bytes;
use dftp_core::Snapshot;
use http::{header, HeaderValue, Response, StatusCode};

use super::Query;
use crate::blocking::Blocking;
use crate::body::{full_body, Body};

const CHUNK: usize = 64 << 10;

pub fn find(snapshot: Snapshot, query: &Query, head_only: bool, blocking: Blocking) -> Response<Body> {
    let prefix = query.prefix.clone().unwrap_or_default();
    let prefix = prefix.strip_prefix('/').map(str::to_owned).unwrap_or(prefix);
    let body = if head_only {
        full_body(Bytes::new())
    } else {
        // Off the async threads: a million paths take a while to format. Stops when the client
        // went away.
        blocking.stream_body(move |emit| format_paths(&snapshot, &prefix, emit))
    };
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::OK;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

/// Formats the paths under `prefix` as `/path` lines, in chunks of about [`CHUNK`] bytes, until
/// `emit` returns false.
fn format_paths(snapshot: &Snapshot, prefix: &str, emit: &mut dyn FnMut(Vec<u8>) -> bool) {
    let mut buf = Vec::with_capacity(CHUNK + 4096);
    for path in snapshot.find(prefix) {
        buf.push(b'/');
        buf.extend_from_slice(path.as_str().as_bytes());
        buf.push(b'\n');
        if buf.len() >= CHUNK {
            let chunk = std::mem::replace(&mut buf, Vec::with_capacity(CHUNK + 4096));
            if !emit(chunk) {
                return;
            }
        }
    }
    if !buf.is_empty() {
        emit(buf);
    }
}
