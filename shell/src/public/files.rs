//! `GET /fs/<file>`: local files through tower-http's `ServeDir` (ranges, validators, 304s,
//! Content-Length, streamed from disk); files of other nodes streamed from their owner.

use std::sync::Arc;

use dftp_core::{Entry, Mount, Snapshot};
use http::{header, HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tower_http::services::fs::{DefaultServeDirFallback, ServeDir};

use super::listing::encode_path;
use super::Query;
use crate::localfs::{FsBackend, LocalFs};
use crate::peers::{Body, PeerClient};
use crate::respond::text;

/// Proxy hops allowed before a request is refused (the original's limit).
const MAX_REDIRECTS: u32 = 2;
/// Read size for local files: large reads keep the per-chunk overhead small.
const READ_CHUNK: usize = 256 << 10;

/// Headers of the owner's response that we pass on.
const PASSED: [HeaderName; 7] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_RANGE,
    header::ACCEPT_RANGES,
    header::ETAG,
    header::LAST_MODIFIED,
    header::CACHE_CONTROL,
];

pub struct Files {
    serve: ServeDir<DefaultServeDirFallback, FsBackend>,
    mount: Mount,
    client: PeerClient,
}

impl Files {
    pub fn new(fs: Arc<dyn LocalFs>, mount: Mount, client: PeerClient) -> Files {
        let serve = ServeDir::with_backend("", FsBackend(fs))
            .append_index_html_on_directories(false)
            .with_buf_chunk_size(READ_CHUNK);
        Files { serve, mount, client }
    }

    pub async fn serve(&self, req: Request<Incoming>, snap: &Snapshot, entry: &Entry, query: &Query) -> Response<Body> {
        let owner = entry.owner.as_str().to_owned();
        let mut resp = if snap.is_mine(entry) {
            self.local(req, entry).await
        } else {
            self.remote(req, snap, entry, &owner, query).await
        };
        if resp.status().is_success() || resp.status() == StatusCode::NOT_MODIFIED {
            if query.format.as_deref() == Some("txt") {
                resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
            }
            if let Ok(v) = HeaderValue::from_str(&owner) {
                resp.headers_mut().insert("x-dftp-owner", v);
            }
        }
        resp
    }

    async fn local(&self, req: Request<Incoming>, entry: &Entry) -> Response<Body> {
        let Some(rel) = self.mount.to_local(&entry.path) else {
            return text(StatusCode::NOT_FOUND, format!("not found: {}", entry.path));
        };
        let Ok(rel) = dftp_core::DfsPath::parse_request(rel) else {
            return text(StatusCode::NOT_FOUND, format!("not found: {}", entry.path));
        };
        let (parts, _) = req.into_parts();
        let mut inner = Request::builder().method(parts.method).uri(format!("/{}", encode_path(&rel)));
        for (k, v) in &parts.headers {
            inner = inner.header(k, v);
        }
        let Ok(inner) = inner.body(http_body_util::Empty::<bytes::Bytes>::new()) else {
            return text(StatusCode::BAD_REQUEST, "bad request");
        };
        let mut serve = self.serve.clone();
        let resp = match serve.try_call(inner).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("reading {}: {e}", entry.path);
                return text(StatusCode::INTERNAL_SERVER_ERROR, format!("could not read {}", entry.path));
            }
        };
        if resp.status() == StatusCode::NOT_FOUND {
            // Gone from disk since the last scan, or not a regular file inside the root.
            return text(StatusCode::NOT_FOUND, format!("not found: {}", entry.path));
        }
        if resp.status() == StatusCode::PARTIAL_CONTENT
            && resp.headers().get(header::CONTENT_RANGE).is_some_and(|v| v.as_bytes().ends_with(b"/0"))
        {
            // ServeDir answers a range of an empty file with 206 and `bytes 0-0/0`, a byte that
            // does not exist: no range of an empty file is satisfiable.
            let mut r = text(StatusCode::RANGE_NOT_SATISFIABLE, "the file is empty");
            r.headers_mut().insert(header::CONTENT_RANGE, HeaderValue::from_static("bytes */0"));
            return r;
        }
        resp.map(|b| b.map_err(Into::into).boxed_unsync())
    }

    async fn remote(
        &self,
        req: Request<Incoming>,
        snap: &Snapshot,
        entry: &Entry,
        owner: &str,
        query: &Query,
    ) -> Response<Body> {
        if query.redir_n >= MAX_REDIRECTS {
            return text(
                StatusCode::LOOP_DETECTED,
                format!("{} was passed between nodes {} times; giving up", entry.path, query.redir_n),
            );
        }
        let Some(addr) = snap.public_addr_of(owner) else {
            return text(
                StatusCode::BAD_GATEWAY,
                format!("the owner of {} (node {owner}) is not reachable", entry.path),
            );
        };
        let url = format!("/fs/{}?redirN={}", encode_path(&entry.path), query.redir_n + 1);
        match self.client.fetch(addr, req.method().clone(), &url, req.headers()).await {
            Ok(upstream) => {
                let mut resp = Response::builder().status(upstream.status());
                for name in &PASSED {
                    if let Some(v) = upstream.headers().get(name) {
                        resp = resp.header(name, v);
                    }
                }
                resp.body(upstream.into_body().map_err(Into::into).boxed_unsync())
                    .unwrap_or_else(|_| text(StatusCode::BAD_GATEWAY, "bad response from the owner"))
            }
            Err(e) => {
                tracing::warn!("proxying {}: {e}", entry.path);
                text(StatusCode::BAD_GATEWAY, format!("the owner of {} (node {owner}) did not answer", entry.path))
            }
        }
    }
}
