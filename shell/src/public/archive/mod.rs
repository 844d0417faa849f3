//! `GET /fs/<dir>/?format=tar` and `?format=zip`: the directory and everything below it as one
//! archive, streamed.
//!
//! The entries come in the tree's path order from a snapshot, each file's bytes from this
//! node's disk or fetched from its owner (with the client's `Authorization`, which the owner
//! checks again), one file at a time, through a small pipe: nothing is held whole in memory but
//! the zip's central directory (a name and a few numbers per entry). Only what the client may
//! read goes in ([`super::guard::Cleared::find_filter`], as `/find/` lists it).
//!
//! A file that cannot be had (its owner is gone, it changed size, the disk failed) ends the
//! response with an error: the chunked body stops without its last chunk, so the client sees a
//! broken transfer and a truncated archive (tar and unzip both say so), never an archive that
//! looks whole with entries missing. The reason goes to the log.

mod tar;
mod zip;

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use dftp_core::{DfsPath, Location, Snapshot};
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};

use super::guard::PathFilter;
use crate::body::{Body, BoxError};
use crate::content::Content;
use crate::ftp::transfer::{self, Failure};

/// Bytes in flight between the task that writes the archive and the response.
const PIPE: usize = 256 << 10;
const FILE_MODE: u32 = 0o644;
const DIR_MODE: u32 = 0o755;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Format {
    Tar,
    Zip,
}

impl Format {
    /// The format a `?format=` value asks for, if it is an archive.
    pub fn from_query(format: Option<&str>) -> Option<Format> {
        match format {
            Some("tar") => Some(Format::Tar),
            Some("zip") => Some(Format::Zip),
            _ => None,
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Format::Tar => "tar",
            Format::Zip => "zip",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Tar => "application/x-tar",
            Format::Zip => "application/zip",
        }
    }
}

/// What an archive is made of.
pub struct Request {
    pub format: Format,
    pub snapshot: Snapshot,
    pub dir: DfsPath,
    /// Nodes the request has passed through (0 from a client).
    pub hops: u32,
    pub content: Content,
    /// The client's credentials, passed on to the owners of files.
    pub authorization: Option<HeaderValue>,
    /// The paths the client may read (`None`: all).
    pub only: Option<PathFilter>,
}

/// The name of the folder everything in the archive is under (so that extracting it makes one
/// folder, not a heap of files): the directory's name, or the cluster's for the root.
fn top_name(snapshot: &Snapshot, dir: &DfsPath) -> String {
    if dir.is_root() {
        snapshot.cluster().name.to_string()
    } else {
        dir.name().to_string()
    }
}

/// `Content-Disposition: attachment` with the archive's name: an ASCII fallback and the UTF-8
/// name (RFC 6266, RFC 8187).
fn disposition(name: &str) -> HeaderValue {
    let ascii: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "._-+ ".contains(c) { c } else { '_' }).collect();
    let encoded = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
    HeaderValue::from_str(&format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// The response: headers at once, the archive as it is written.
pub fn respond(req: Request, head_only: bool) -> Response<Body> {
    let top = top_name(&req.snapshot, &req.dir);
    let file_name = format!("{top}.{}", req.format.extension());
    let content_type = req.format.content_type();
    let body = if head_only {
        crate::body::full_body(Bytes::new())
    } else {
        let (reader, mut writer) = tokio::io::duplex(PIPE);
        // Cleared only once the archive is whole: a writer that stops any other way (even a
        // panic) leaves the body ending with an error.
        let failed = Arc::new(Mutex::new(Some("the archive's writer stopped".to_string())));
        let failure = failed.clone();
        tokio::spawn(async move {
            let dir = req.dir.clone();
            let outcome = write_archive(req, &top, &mut writer).await;
            if let Err(why) = &outcome {
                tracing::warn!("archive of {dir} cut short: {why}");
            }
            *failure.lock().expect("not poisoned") = outcome.err();
            let _ = writer.shutdown().await;
        });
        stream(reader, failed)
    };
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::OK;
    let headers = r.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_DISPOSITION, disposition(&file_name));
    r
}

/// The pipe's bytes as a body that ends with an error when the archive was cut short.
fn stream(reader: DuplexStream, failed: Arc<Mutex<Option<String>>>) -> Body {
    let s = futures_util::stream::unfold(Some((reader, failed)), |state| async move {
        let (mut reader, failed) = state?;
        let mut buf = BytesMut::with_capacity(64 << 10);
        match reader.read_buf(&mut buf).await {
            Ok(0) => {
                let why = failed.lock().expect("not poisoned").take();
                why.map(|why| (Err::<Frame<Bytes>, BoxError>(why.into()), None))
            }
            Ok(_) => Some((Ok(Frame::data(buf.freeze())), Some((reader, failed)))),
            Err(e) => Some((Err(e.into()), None)),
        }
    });
    StreamBody::new(s).boxed_unsync()
}

/// One entry's bytes on their way into the pipe: counted against the size its header
/// announced (more is refused), and fed to the zip's CRC.
struct EntryBytes<'a, W> {
    out: &'a mut W,
    zip: Option<&'a mut zip::ZipWriter>,
    left: u64,
}

impl<W: AsyncWrite + Unpin> AsyncWrite for EntryBytes<'_, W> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if buf.len() as u64 > self.left {
            return Poll::Ready(Err(io::Error::other("the file is longer than the tree said: it changed")));
        }
        let n = ready!(Pin::new(&mut *self.out).poll_write(cx, buf))?;
        if let Some(z) = self.zip.as_deref_mut() {
            z.data(&buf[..n]);
        }
        self.left -= n as u64;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.out).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.out).poll_shutdown(cx)
    }
}

fn failure(path: &DfsPath, f: Failure) -> String {
    match f {
        Failure::NotFound(why) => format!("{path} is gone: {why}"),
        Failure::Refused(why) => format!("{path}: {why}"),
        Failure::Source(why) => format!("reading {path}: {why}"),
        Failure::Client(e) => format!("writing {path}: {e}"),
    }
}

/// Writes the whole archive into `out`, or says why it stopped.
async fn write_archive<W: AsyncWrite + Unpin>(req: Request, top: &str, out: &mut W) -> Result<(), String> {
    let client_gone = |e: io::Error| format!("the client went away: {e}");
    let snapshot = &req.snapshot;
    let prefix = if req.dir.is_root() { String::new() } else { format!("{}/", req.dir.as_str()) };
    let mut zip = (req.format == Format::Zip).then(zip::ZipWriter::new);
    let dir_header = |zip: &mut Option<zip::ZipWriter>, name: &str, mtime: i64| match zip {
        Some(z) => z.dir(name, DIR_MODE, mtime),
        None => tar::header(name, true, 0, DIR_MODE, mtime),
    };
    let top_mtime = snapshot.lookup(&req.dir).and_then(|e| e.meta).map_or(0, |m| m.modified);
    out.write_all(&dir_header(&mut zip, &format!("{top}/"), top_mtime)).await.map_err(client_gone)?;
    for path in snapshot.find(&prefix) {
        let path = &path;
        if req.only.as_ref().is_some_and(|keep| !keep(path)) {
            continue;
        }
        let name = format!("{top}/{}", &path.as_str()[prefix.len()..]);
        let location = snapshot.locate(path, req.hops);
        let entry = match &location {
            Location::Directory(entry) => {
                let mtime = entry.meta.map_or(0, |m| m.modified);
                out.write_all(&dir_header(&mut zip, &format!("{name}/"), mtime)).await.map_err(client_gone)?;
                continue;
            }
            Location::LocalFile { entry, .. } | Location::RemoteFile { entry, .. } => entry,
            Location::OwnerUnreachable { owner, .. } => {
                return Err(format!("the owner of {path} (node {owner}) is not reachable"));
            }
            Location::TooManyHops { .. } => return Err(format!("{path}: passed between nodes too often")),
            // Gone between the listing and now (a path outside this node's mount cannot be
            // listed): the archive says so rather than leave it out.
            Location::NotFound => return Err(format!("{path} is gone")),
        };
        let size = entry.size();
        let mtime = entry.meta.map_or(0, |m| m.modified);
        let head = match &mut zip {
            Some(z) => z.begin_file(&name, size, FILE_MODE, mtime),
            None => tar::header(&name, false, size, FILE_MODE, mtime),
        };
        out.write_all(&head).await.map_err(client_gone)?;
        let mut bytes = EntryBytes { out: &mut *out, zip: zip.as_mut(), left: size };
        let copied = match &location {
            Location::LocalFile { local, .. } => transfer::local(&req.content, local, size, 0, &mut bytes).await,
            Location::RemoteFile { addr, hops, .. } => {
                let auth = req.authorization.clone();
                transfer::remote(&req.content, addr, path, *hops, auth, 0, &mut bytes).await
            }
            _ => unreachable!("only files get here"),
        };
        let left = bytes.left;
        copied.map_err(|f| failure(path, f))?;
        if left != 0 {
            return Err(format!("{path} is {} bytes shorter than the tree said: it changed", left));
        }
        let tail = match &mut zip {
            Some(z) => z.end_file().map_err(|got| format!("{path}: {got} bytes where {size} were announced"))?,
            None => tar::padding(size),
        };
        out.write_all(&tail).await.map_err(client_gone)?;
    }
    let end = match zip {
        Some(z) => z.finish(),
        None => tar::end(),
    };
    out.write_all(&end).await.map_err(client_gone)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispositions_are_safe_headers() {
        let d = disposition("ünï \"x\".tar");
        let s = d.to_str().unwrap();
        assert!(s.starts_with("attachment; filename=\"_n_ _x_.tar\"; filename*=UTF-8''"), "{s}");
        assert!(!s[s.find("''").unwrap()..].contains('"'), "{s}");
    }
}
