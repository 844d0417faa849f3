//! `GET /find/`: every path of the tree, one per line, sorted, streamed from a snapshot;
//! narrowed by `?prefix=`, and by `?q=` (a name pattern) and `?type=f|d` ([`Search`]).

use bytes::Bytes;
use dftp_core::{DfsPath, Search, Snapshot};
use http::{header, HeaderValue, Response, StatusCode};

use super::guard::PathFilter;
use super::Query;
use crate::blocking::Blocking;
use crate::body::{full_body, Body};
use crate::respond::text;

const CHUNK: usize = 64 << 10;

/// `only`: the paths the client may see (all of them without a filter).
pub fn find(
    snapshot: Snapshot,
    query: &Query,
    head_only: bool,
    blocking: Blocking,
    only: Option<PathFilter>,
) -> Response<Body> {
    // Refused before anything is streamed, with the reason.
    let search = match Search::parse(query.q.as_deref(), query.kind.as_deref()) {
        Ok(search) => search,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let prefix = query.prefix.clone().unwrap_or_default();
    let prefix = prefix.strip_prefix('/').map(str::to_owned).unwrap_or(prefix);
    let body = if head_only {
        full_body(Bytes::new())
    } else {
        // Off the async threads: a million paths take a while to format. Stops when the client
        // went away.
        blocking.stream_body(move |emit| format_paths(&snapshot, &prefix, &search, only.as_deref(), emit))
    };
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::OK;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

/// Formats the paths under `prefix` (those `search` and `only` keep) as `/path` lines, in chunks of about
/// [`CHUNK`] bytes, until `emit` returns false.
fn format_paths(
    snapshot: &Snapshot,
    prefix: &str,
    search: &Search,
    only: Option<&(dyn Fn(&DfsPath) -> bool + Send + Sync)>,
    emit: &mut dyn FnMut(Vec<u8>) -> bool,
) {
    let mut buf = Vec::with_capacity(CHUNK + 4096);
    for path in snapshot.find(prefix) {
        let path = &path;
        if only.is_some_and(|keep| !keep(path)) || !search.keeps(snapshot, path) {
            continue;
        }
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
