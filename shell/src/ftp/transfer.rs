//! Copying a file's bytes onto an FTP data connection, or into an archive of `GET /fs/<dir>/?format=tar|zip`
//! (`public/archive`): from the local disk (through [`LocalFs`]) or from the owner node's public
//! HTTP interface.
//!
//! Both copies are bounded in time: a client that stops reading, or an owner that stops
//! sending, ends the transfer with an error after a while instead of holding the session, its
//! sockets and a task forever.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use dftp_core::{DfsPath, PeerAddr};
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::content::Content;
use crate::diskread::{self, DiskReader};
use crate::localfs::Contents;

/// A client that accepts nothing for this long is given up on.
pub const WRITE_STALL: Duration = Duration::from_secs(120);
/// An owner node that sends nothing for this long is given up on.
pub const READ_STALL: Duration = Duration::from_secs(60);

/// Why a transfer failed, as the backend turns it into a reply.
#[derive(Debug)]
pub enum Failure {
    /// The file is not there (any more).
    NotFound(String),
    /// The owner refused the session's login (`401`, `403`): its rules differ from ours.
    Refused(String),
    /// Reading the source failed or stalled: the owner vanished, the disk failed.
    Source(String),
    /// Writing to the client failed.
    Client(io::Error),
}

async fn write_chunk<W: AsyncWrite + Unpin + ?Sized>(out: &mut W, chunk: &[u8]) -> Result<(), Failure> {
    match tokio::time::timeout(WRITE_STALL, out.write_all(chunk)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Failure::Client(e)),
        Err(_) => Err(Failure::Client(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the client accepted nothing for {WRITE_STALL:?}"),
        ))),
    }
}

fn open_failure(e: io::Error) -> Failure {
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied => Failure::NotFound(e.to_string()),
        _ => Failure::Source(e.to_string()),
    }
}

/// Copies the local file `rel` (relative to the root, `expected_len` bytes long as the tree
/// saw it) from byte `start` to `out`.
pub async fn local<W: AsyncWrite + Unpin + ?Sized>(
    content: &Content,
    rel: &DfsPath,
    expected_len: u64,
    start: u64,
    out: &mut W,
) -> Result<u64, Failure> {
    let opened = content.open(rel, expected_len).await.map_err(open_failure)?;
    match opened.contents {
        Contents::Disk(file) => local_disk(file, opened.meta.len, start, out).await,
        Contents::Bytes(bytes) => {
            let rest = bytes.get(start as usize..).unwrap_or_default();
            write_chunk(out, rest).await?;
            Ok(rest.len() as u64)
        }
    }
}

/// The disk copy: chunks read straight into one buffer, which goes to the socket and is then
/// filled again.
async fn local_disk<W: AsyncWrite + Unpin + ?Sized>(
    file: Arc<std::fs::File>,
    len: u64,
    start: u64,
    out: &mut W,
) -> Result<u64, Failure> {
    let mut reader = DiskReader::new(file, start, len);
    let (mut buf, mut sent) = (vec![0; diskread::CHUNK], 0);
    loop {
        let (b, n) = reader.read(buf).await.map_err(|e| Failure::Source(e.to_string()))?;
        if n == 0 {
            return Ok(sent);
        }
        write_chunk(out, &b[..n]).await?;
        sent += n as u64;
        buf = b;
    }
}

/// Copies `path` from its `owner` (telling it the request has passed `hops` nodes, and with the
/// session's login as `authorization`, which the owner checks again) from byte `start` to
/// `out`.
pub async fn remote<W: AsyncWrite + Unpin + ?Sized>(
    content: &Content,
    owner: &PeerAddr,
    path: &DfsPath,
    hops: u32,
    authorization: Option<HeaderValue>,
    start: u64,
    out: &mut W,
) -> Result<u64, Failure> {
    let mut headers = HeaderMap::new();
    if let Some(v) = authorization {
        headers.insert(header::AUTHORIZATION, v);
    }
    if start > 0 {
        let range = HeaderValue::from_str(&format!("bytes={start}-")).expect("a range is a valid header");
        headers.insert(header::RANGE, range);
    }
    let resp = content.fetch(owner, path, hops, Method::GET, &headers).await.map_err(Failure::Source)?;
    // Bytes to drop from the front: the owner may ignore the range and send it all.
    let mut skip = match resp.status {
        StatusCode::PARTIAL_CONTENT => 0,
        StatusCode::OK => start,
        StatusCode::RANGE_NOT_SATISFIABLE => return Ok(0), // REST at or past the end
        StatusCode::NOT_FOUND => return Err(Failure::NotFound(format!("{owner} answered 404"))),
        s @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
            return Err(Failure::Refused(format!("permission denied by the owner of {path} ({owner} answered {s})")));
        }
        s => return Err(Failure::Source(format!("{owner} answered {s}"))),
    };
    let mut body = resp.into_body(None);
    let mut sent = 0u64;
    loop {
        let frame = match tokio::time::timeout(READ_STALL, body.frame()).await {
            Err(_) => return Err(Failure::Source(format!("{owner} sent nothing for {READ_STALL:?}"))),
            Ok(None) => return Ok(sent),
            Ok(Some(Err(e))) => return Err(Failure::Source(format!("reading from {owner}: {e}"))),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(mut data) = frame.into_data() else { continue };
        if skip > 0 {
            let n = skip.min(data.len() as u64);
            skip -= n;
            let _ = data.split_to(n as usize);
        }
        if !data.is_empty() {
            write_chunk(out, &data).await?;
            sent += data.len() as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::time::SystemTime;

    use dftp_core::{DfsPath, Meta};
    use futures_util::future::BoxFuture;

    use super::*;
    use crate::localfs::{FileMeta, LocalFs, Opened, ScanReport, WatchMsg};

    /// One file, opened either as a file on disk or as bytes in memory.
    struct OneFile {
        data: Vec<u8>,
        disk: Option<std::path::PathBuf>,
    }

    impl LocalFs for OneFile {
        fn scan(&self) -> io::Result<ScanReport> {
            Ok(ScanReport::default())
        }
        fn scan_below(&self, _: &DfsPath) -> io::Result<Vec<(DfsPath, Meta)>> {
            Ok(Vec::new())
        }
        fn watch(&self, _: tokio::sync::mpsc::UnboundedSender<WatchMsg>) -> io::Result<Box<dyn std::any::Any + Send>> {
            Err(io::Error::other("no watching here"))
        }
        fn open(&self, _: &str, _: u64) -> BoxFuture<'static, io::Result<Opened>> {
            let meta = FileMeta { len: self.data.len() as u64, modified: SystemTime::UNIX_EPOCH };
            let (disk, data) = (self.disk.clone(), self.data.clone());
            Box::pin(async move {
                let contents = match disk {
                    Some(p) => Contents::Disk(Arc::new(std::fs::File::open(p)?)),
                    None => Contents::Bytes(data.into()),
                };
                Ok(Opened { contents, meta })
            })
        }
    }

    #[tokio::test]
    async fn both_local_copies_send_every_byte_from_any_offset() {
        let len = 3 * diskread::CHUNK + 123;
        let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
        let path = std::env::temp_dir().join(format!("dftp-ftp-transfer-{}", std::process::id()));
        std::fs::File::create(&path).unwrap().write_all(&data).unwrap();
        for disk in [Some(path.clone()), None] {
            let fs: Arc<dyn LocalFs> = Arc::new(OneFile { data: data.clone(), disk: disk.clone() });
            let content = Content::new(fs, crate::peers::PeerClient::new(Arc::new(crate::net::TokioNet)));
            let f = DfsPath::parse("f").unwrap();
            for start in [0, 1, diskread::CHUNK - 1, diskread::CHUNK, 2 * diskread::CHUNK + 5, len - 1, len, len + 10] {
                let mut out = Vec::new();
                let sent = local(&content, &f, len as u64, start as u64, &mut out).await.unwrap();
                let want = &data[start.min(len)..];
                assert_eq!(sent, want.len() as u64, "from {start}, std file: {}", disk.is_some());
                assert!(out == want, "from {start}, std file: {}", disk.is_some());
            }
        }
        std::fs::remove_file(&path).unwrap();
    }
}
