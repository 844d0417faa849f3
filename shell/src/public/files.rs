//! `GET /fs/<file>`: local files through tower-http's `ServeDir` (ranges, validators, 304s,
//! Content-Length, streamed from disk); files of other nodes streamed from their owner, whose
//! answer is passed on, or, from an owner that sends files plainly (the original's nodes), made
//! here by [`plain_owner`].

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use dftp_core::http_file::{self, FileFacts};
use dftp_core::{DfsPath, Entry, Location, PeerAddr};
use futures_util::TryStreamExt;
use http::{header, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::body::Incoming;
use tower_http::services::fs::ServeDir;

use super::plain_owner;
use super::serve_dir::{Preopened, Tags};
use super::Query;
use crate::body::{Body, BoxError};
use crate::content::{encode_path, Content};
use crate::diskread::{self, DiskReader};
use crate::localfs::Contents;
use crate::respond::text;
use crate::sendfile::{self, SendQueue};

/// Headers of the owner's response that we pass on (its challenge too, when it refused).
const PASSED: [HeaderName; 8] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_RANGE,
    header::ACCEPT_RANGES,
    header::ETAG,
    header::LAST_MODIFIED,
    header::CACHE_CONTROL,
    header::WWW_AUTHENTICATE,
];

/// The media type of a file named `name`, as `GET` sends it: tower-http's `ServeDir` guesses it
/// so from the extension (its `open_file.rs`), and `PROPFIND`'s `getcontenttype` says the same.
pub(super) fn content_type(name: &str) -> &'static str {
    mime_guess::from_path(name).first_raw().unwrap_or("application/octet-stream")
}

pub struct Files {
    content: Content,
}

impl Files {
    pub fn new(content: Content) -> Files {
        Files { content }
    }

    /// Answers a read of a file, from where the core located it (not a directory).
    pub async fn serve(&self, req: Request<Incoming>, location: Location, query: &Query) -> Response<Body> {
        let (mut resp, owner) = match location {
            Location::LocalFile { entry, local } => (self.local(req, &entry, &local).await, entry.owner),
            Location::RemoteFile { entry, owner: _, addr, hops } => {
                let mut resp = self.remote(req, &entry, &addr, hops).await;
                resp.extensions_mut().insert(crate::metrics::Proxied);
                (resp, entry.owner)
            }
            Location::OwnerUnreachable { entry, owner } => {
                let why = format!("the owner of {} (node {owner}) is not reachable", entry.path);
                return text(StatusCode::BAD_GATEWAY, why);
            }
            Location::TooManyHops { entry, hops } => {
                let why = format!("{} was passed between nodes {hops} times; giving up", entry.path);
                return text(StatusCode::LOOP_DETECTED, why);
            }
            Location::NotFound | Location::Directory(_) => {
                return text(StatusCode::NOT_FOUND, "not found");
            }
        };
        let owner = owner.as_str();
        if resp.status().is_success() || resp.status() == StatusCode::NOT_MODIFIED {
            if query.format.as_deref() == Some("txt") {
                resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
            }
            if let Ok(v) = HeaderValue::from_str(owner) {
                resp.headers_mut().insert("x-dftp-owner", v);
            }
        }
        resp.extensions_mut().insert(super::walls::TreeFile);
        resp
    }

    async fn local(&self, req: Request<Incoming>, entry: &Entry, rel: &DfsPath) -> Response<Body> {
        let not_found = || text(StatusCode::NOT_FOUND, format!("not found: {}", entry.path));
        let expected_len = entry.meta.map_or(0, |m| m.size);
        let opened = match self.content.open(rel, expected_len).await {
            Ok(o) => o,
            // Gone from disk since the last scan, or not a regular file inside the root.
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied) => {
                tracing::debug!("opening {}: {e}", entry.path);
                return not_found();
            }
            Err(e) => {
                tracing::warn!("opening {}: {e}", entry.path);
                return text(StatusCode::INTERNAL_SERVER_ERROR, format!("could not read {}", entry.path));
            }
        };
        let send_queue = req.extensions().get::<SendQueue>().cloned();
        let (parts, _) = req.into_parts();
        let head = parts.method == Method::HEAD;
        // ServeDir guesses the Content-Type from this path's extension.
        let Ok(uri) = format!("/{}", encode_path(rel)).parse() else {
            return text(StatusCode::BAD_REQUEST, "bad request");
        };
        let mut inner = Request::new(http_body_util::Empty::<Bytes>::new());
        *inner.method_mut() = parts.method;
        *inner.uri_mut() = uri;
        let tags = Tags::of(&opened.meta);
        *inner.headers_mut() = parts.headers;
        tags.to_servedir(inner.headers_mut());
        let mut serve = ServeDir::with_backend("", Preopened(opened.meta)).append_index_html_on_directories(false);
        let mut resp = match serve.try_call(inner).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("reading {}: {e}", entry.path);
                return text(StatusCode::INTERNAL_SERVER_ERROR, format!("could not read {}", entry.path));
            }
        };
        tags.to_ours(resp.headers_mut());
        if resp.status() == StatusCode::PARTIAL_CONTENT
            && resp.headers().get(header::CONTENT_RANGE).is_some_and(|v| v.as_bytes().ends_with(b"/0"))
        {
            // ServeDir answers a range of an empty file with 206 and `bytes 0-0/0`, a byte that
            // does not exist: no range of an empty file is satisfiable.
            let mut r = text(StatusCode::RANGE_NOT_SATISFIABLE, "the file is empty");
            r.headers_mut().insert(header::CONTENT_RANGE, HeaderValue::from_static("bytes */0"));
            return r;
        }
        let span = match resp.status() {
            _ if head => None,
            StatusCode::OK => {
                resp.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok()).map(|n| (0, n))
            }
            StatusCode::PARTIAL_CONTENT => resp.headers().get(header::CONTENT_RANGE).and_then(content_range),
            _ => None,
        };
        let (parts, body) = resp.into_parts();
        // ServeDir decided the status and headers; the bytes come from what was opened, without
        // copying them through an async reader.
        let body = match (span, opened.contents) {
            (Some((start, len)), Contents::Bytes(b)) => {
                let (start, end) = (start as usize, (start + len) as usize);
                match b.get(start..end) {
                    Some(_) => Full::new(b.slice(start..end)).map_err(Into::into).boxed_unsync(),
                    None => return text(StatusCode::INTERNAL_SERVER_ERROR, "internal error: range outside the file"),
                }
            }
            (Some((start, len)), Contents::Disk(file)) => match send_queue {
                Some(queue) => sendfile::body(queue, file, start, len),
                None => disk_body(file, start, len),
            },
            (None, _) => body.map_err(Into::into).boxed_unsync(),
        };
        Response::from_parts(parts, body)
    }

    async fn remote(&self, req: Request<Incoming>, entry: &Entry, addr: &PeerAddr, hops: u32) -> Response<Body> {
        let owner = entry.owner.as_str();
        match self.content.fetch(addr, &entry.path, hops, req.method().clone(), req.headers()).await {
            Ok(upstream) => {
                // A Range without If-Range must get a 206 or 416 from an owner that does ranges.
                let asked = req.headers();
                let ranged = asked.contains_key(header::RANGE) && !asked.contains_key(header::IF_RANGE);
                let length = upstream.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok());
                let accept_ranges = upstream.headers.get(header::ACCEPT_RANGES).and_then(|v| v.to_str().ok());
                let status = upstream.status.as_u16();
                if !http_file::owner_handles_ranges(status, length, accept_ranges, ranged) {
                    match entry.meta {
                        // A length other than the tree's: the file changed since it was
                        // announced. Its bytes are passed on as they come, with the owner's length
                        // (a 200 to a range is allowed), rather than cut to a size they do not have.
                        Some(meta) if length.is_none_or(|n| n == meta.size) => {
                            let facts = FileFacts { size: meta.size, modified: meta.modified };
                            let head = req.method() == Method::HEAD;
                            return plain_owner::respond(head, req.headers(), &entry.path, facts, upstream).await;
                        }
                        _ => tracing::debug!(
                            "{} from {owner}: passed on as it came (its length {length:?}, the tree's {:?})",
                            entry.path,
                            entry.meta.map(|m| m.size)
                        ),
                    }
                }
                let mut resp = Response::builder().status(upstream.status);
                for name in &PASSED {
                    if let Some(v) = upstream.headers.get(name) {
                        resp = resp.header(name, v);
                    }
                }
                let body = upstream.into_body(req.extensions().get::<SendQueue>());
                resp.body(body).unwrap_or_else(|_| text(StatusCode::BAD_GATEWAY, "bad response from the owner"))
            }
            Err(e) => {
                tracing::warn!("proxying {}: {e}", entry.path);
                text(StatusCode::BAD_GATEWAY, format!("the owner of {} (node {owner}) did not answer", entry.path))
            }
        }
    }
}

/// `bytes START-END/TOTAL` as (start, length).
fn content_range(v: &HeaderValue) -> Option<(u64, u64)> {
    let (range, _) = v.to_str().ok()?.strip_prefix("bytes ")?.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    let (a, b): (u64, u64) = (a.parse().ok()?, b.parse().ok()?);
    (a <= b).then(|| (a, b - a + 1))
}

/// `len` bytes of `file` from `start`, for connections that are not kernel sockets (where
/// [`sendfile::body`] cannot be used): each chunk read straight into a buffer that then goes out
/// as it is. A file that shrank meanwhile ends the body with an error: the connection is closed
/// rather than the promised length faked.
pub(super) fn disk_body(file: Arc<std::fs::File>, start: u64, len: u64) -> Body {
    let reader = DiskReader::new(file, start, start + len);
    let chunks = futures_util::stream::try_unfold(reader, |mut reader| async move {
        let (mut buf, n) = reader.read(vec![0; diskread::CHUNK]).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok::<_, io::Error>(Some((Frame::data(Bytes::from(buf)), reader)))
    });
    StreamBody::new(chunks.map_err(BoxError::from)).boxed_unsync()
}
