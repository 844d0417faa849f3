//! `GET /find/`: every path of the tree, one per line, sorted, streamed from a snapshot.

use bytes::Bytes;
use dftp_core::Snapshot;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use tokio::sync::mpsc;

use super::Query;
use crate::peers::{full_body, Body, BoxError};

const CHUNK: usize = 64 << 10;

pub fn find(snapshot: Snapshot, query: &Query, head_only: bool) -> Response<Body> {
    let prefix = query.prefix.clone().unwrap_or_default();
    let prefix = prefix.strip_prefix('/').map(str::to_owned).unwrap_or(prefix);
    let body = if head_only {
        full_body(Bytes::new())
    } else {
        let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, BoxError>>(4);
        // Off the async threads: a million paths take a while to format.
        tokio::task::spawn_blocking(move || {
            let mut buf = Vec::with_capacity(CHUNK + 4096);
            for path in snapshot.find(&prefix) {
                buf.push(b'/');
                buf.extend_from_slice(path.as_str().as_bytes());
                buf.push(b'\n');
                if buf.len() >= CHUNK {
                    let chunk = std::mem::replace(&mut buf, Vec::with_capacity(CHUNK + 4096));
                    if tx.blocking_send(Ok(Frame::data(Bytes::from(chunk)))).is_err() {
                        return; // the client went away
                    }
                }
            }
            if !buf.is_empty() {
                let _ = tx.blocking_send(Ok(Frame::data(Bytes::from(buf))));
            }
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|i| (i, rx)) });
        StreamBody::new(stream).boxed_unsync()
    };
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::OK;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}
