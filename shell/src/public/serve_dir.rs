//! The adapter that lets tower-http's `ServeDir` answer for a file this node has already opened:
//! ServeDir works out the status and headers (ranges, validators, 304s) from the file's
//! metadata, and `files.rs` sends the bytes itself (with `sendfile` where it can).

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::SystemTime;

use http::{header, HeaderMap, HeaderValue};
use tokio::io::{AsyncRead, AsyncSeek, ReadBuf};

use crate::localfs::{etag, FileMeta};

/// The validators ServeDir works with and the ones clients see. ServeDir makes its own `ETag`
/// (size and modification time in nanoseconds); ours ([`etag`]) is made from whole seconds, as
/// the merged tree knows every file, so that `PROPFIND` through any node says what `GET` says.
/// The request's conditional headers are put into ServeDir's terms before it decides, and its
/// answer's `ETag` back into ours: the one tag clients ever see is ours.
pub struct Tags {
    ours: Option<String>,
    servedirs: Option<String>,
}

impl Tags {
    pub fn of(meta: &FileMeta) -> Tags {
        let servedirs = meta
            .modified
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|t| format!("\"{:x}.{:08x}-{:x}\"", t.as_secs(), t.subsec_nanos(), meta.len));
        Tags { ours: etag(meta.len, meta.modified), servedirs }
    }

    /// `If-Match`, `If-None-Match` and `If-Range` with our tag put in ServeDir's terms.
    pub fn to_servedir(&self, headers: &mut HeaderMap) {
        let (Some(ours), Some(theirs)) = (&self.ours, &self.servedirs) else {
            return;
        };
        for name in [header::IF_MATCH, header::IF_NONE_MATCH, header::IF_RANGE] {
            let values: Vec<HeaderValue> = headers.get_all(&name).iter().cloned().collect();
            if values.is_empty() {
                continue;
            }
            headers.remove(&name);
            for v in values {
                let v = match v.to_str() {
                    Ok(s) if s.contains(ours.as_str()) => {
                        HeaderValue::try_from(s.replace(ours.as_str(), theirs)).unwrap_or(v)
                    }
                    _ => v,
                };
                headers.append(&name, v);
            }
        }
    }

    /// ServeDir's answer with our `ETag` in place of its own.
    pub fn to_ours(&self, headers: &mut HeaderMap) {
        if headers.remove(header::ETAG).is_none() {
            return;
        }
        if let Some(v) = self.ours.as_deref().and_then(|t| HeaderValue::try_from(t).ok()) {
            headers.insert(header::ETAG, v);
        }
    }
}

/// A `ServeDir` backend that knows one file, already opened, by its metadata: ServeDir then
/// works out the status and headers (ranges, validators, 304s) without opening anything itself.
/// The caller sends the bytes (ServeDir's body is never read: see [`BackendFile`]).
#[derive(Clone, Copy)]
pub struct Preopened(pub FileMeta);

/// What ServeDir would read from. It only seeks it (for a range); reading fails, as the caller
/// replaces the body with the opened file's own bytes.
pub struct BackendFile {
    meta: FileMeta,
    pos: u64,
}

impl tower_http::services::fs::Metadata for FileMeta {
    fn is_dir(&self) -> bool {
        false
    }
    fn modified(&self) -> io::Result<SystemTime> {
        Ok(self.modified)
    }
    fn len(&self) -> u64 {
        self.len
    }
}

impl AsyncRead for BackendFile {
    fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, _: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Err(io::Error::other("the body of a local file is sent from the opened file")))
    }
}

impl AsyncSeek for BackendFile {
    fn start_seek(mut self: Pin<&mut Self>, pos: io::SeekFrom) -> io::Result<()> {
        let to = match pos {
            io::SeekFrom::Start(n) => Some(n),
            io::SeekFrom::End(d) => self.meta.len.checked_add_signed(d),
            io::SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = to.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(())
    }
    fn poll_complete(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Poll::Ready(Ok(self.pos))
    }
}

impl tower_http::services::fs::File for BackendFile {
    type Metadata = FileMeta;
    type MetadataFuture<'a> = std::future::Ready<io::Result<FileMeta>>;

    fn metadata(&self) -> Self::MetadataFuture<'_> {
        std::future::ready(Ok(self.meta))
    }
}

impl tower_http::services::fs::Backend for Preopened {
    type File = BackendFile;
    type Metadata = FileMeta;
    type OpenFuture = std::future::Ready<io::Result<BackendFile>>;
    type MetadataFuture = std::future::Ready<io::Result<FileMeta>>;

    fn open(&self, _: PathBuf) -> Self::OpenFuture {
        std::future::ready(Ok(BackendFile { meta: self.0, pos: 0 }))
    }

    fn metadata(&self, _: PathBuf) -> Self::MetadataFuture {
        std::future::ready(Ok(self.0))
    }
}
