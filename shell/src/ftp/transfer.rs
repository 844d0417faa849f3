//! Copying a file's bytes onto an FTP data connection: from the local disk (through
//! [`LocalFs`]) or from the owner node's public HTTP interface.
//!
//! Both copies are bounded in time: a client that stops reading, or an owner that stops
//! sending, ends the transfer with an error after a while instead of holding the session, its
//! sockets and a task forever.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use dftp_core::PeerAddr;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::localfs::LocalFs;
use crate::peers::PeerClient;

/// Size of the reads from disk: large enough that per-read overhead vanishes, small enough that
/// a chunk is still in the CPU cache when it is copied on to the socket (copies dominate).
const LOCAL_CHUNK: usize = 256 << 10;
/// Chunks read ahead of the network, so that the disk and the socket work at the same time.
const READ_AHEAD: usize = 4;
/// A client that accepts nothing for this long is given up on.
pub const WRITE_STALL: Duration = Duration::from_secs(120);
/// An owner node that sends nothing for this long is given up on.
pub const READ_STALL: Duration = Duration::from_secs(60);

/// Why a transfer failed, as the backend turns it into a reply.
#[derive(Debug)]
pub enum Failure {
    /// The file is not there (any more).
    NotFound(String),
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

/// Copies the local file `rel` (relative to the root) from byte `start` to `out`.
pub async fn local<W: AsyncWrite + Unpin + ?Sized>(
    fs: &Arc<dyn LocalFs>,
    rel: &str,
    start: u64,
    out: &mut W,
) -> Result<u64, Failure> {
    match fs.open_std(rel).await.map_err(open_failure)? {
        Some((file, meta)) => local_std(file, meta.len, start, out).await,
        None => local_async(fs, rel, start, out).await,
    }
}

/// Reads `buf.len()` bytes at `at`, fewer only at the end of the file.
fn read_full_at(file: &std::fs::File, buf: &mut [u8], at: u64) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], at + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The disk copy: each chunk is read on a blocking thread straight into a buffer, which goes to
/// the socket and then back to be filled again. READ_AHEAD chunks are read ahead of the socket.
async fn local_std<W: AsyncWrite + Unpin + ?Sized>(
    file: std::fs::File,
    len: u64,
    start: u64,
    out: &mut W,
) -> Result<u64, Failure> {
    if start >= len {
        return Ok(0);
    }
    let file = Arc::new(file);
    let (full_tx, mut full_rx) = mpsc::channel::<io::Result<(Vec<u8>, usize)>>(READ_AHEAD);
    let (empty_tx, mut empty_rx) = mpsc::channel::<Vec<u8>>(READ_AHEAD + 1);
    let reader = tokio::spawn(async move {
        let (mut allocated, mut at) = (0, start);
        loop {
            let buf = match empty_rx.try_recv() {
                Ok(b) => b,
                Err(_) if allocated <= READ_AHEAD => {
                    allocated += 1;
                    vec![0u8; LOCAL_CHUNK]
                }
                Err(_) => match empty_rx.recv().await {
                    Some(b) => b,
                    None => return, // the writer gave up
                },
            };
            let f = file.clone();
            let read = tokio::task::spawn_blocking(move || {
                let mut buf = buf;
                read_full_at(&f, &mut buf, at).map(|n| (buf, n))
            })
            .await
            .unwrap_or_else(|e| Err(io::Error::other(e)));
            let n = match &read {
                Ok((_, n)) => *n,
                Err(_) => 0,
            };
            let failed = read.is_err();
            if (n > 0 || failed) && full_tx.send(read).await.is_err() {
                return;
            }
            if failed || n < LOCAL_CHUNK {
                return; // the end of the file (it may have shrunk: what there was has been sent)
            }
            at += n as u64;
        }
    });
    let mut sent = 0u64;
    let result = async {
        while let Some(chunk) = full_rx.recv().await {
            let (buf, n) = chunk.map_err(|e| Failure::Source(e.to_string()))?;
            write_chunk(out, &buf[..n]).await?;
            sent += n as u64;
            let _ = empty_tx.try_send(buf);
        }
        Ok(sent)
    }
    .await;
    reader.abort();
    result
}

/// The same through [`LocalFs::open`]'s async reader, for file systems without `std` files.
async fn local_async<W: AsyncWrite + Unpin + ?Sized>(
    fs: &Arc<dyn LocalFs>,
    rel: &str,
    start: u64,
    out: &mut W,
) -> Result<u64, Failure> {
    let (mut file, meta) = fs.open(rel).await.map_err(open_failure)?;
    if start >= meta.len {
        return Ok(0);
    }
    if start > 0 {
        file.seek(io::SeekFrom::Start(start)).await.map_err(|e| Failure::Source(e.to_string()))?;
    }
    let (full_tx, mut full_rx) = mpsc::channel::<io::Result<Vec<u8>>>(READ_AHEAD);
    let (empty_tx, mut empty_rx) = mpsc::channel::<Vec<u8>>(READ_AHEAD + 1);
    let reader = tokio::spawn(async move {
        let mut allocated = 0;
        loop {
            let mut buf = match empty_rx.try_recv() {
                Ok(b) => b,
                Err(_) if allocated <= READ_AHEAD => {
                    allocated += 1;
                    Vec::with_capacity(LOCAL_CHUNK)
                }
                Err(_) => match empty_rx.recv().await {
                    Some(b) => b,
                    None => return, // the writer gave up
                },
            };
            buf.clear();
            while buf.len() < LOCAL_CHUNK {
                match file.read_buf(&mut buf).await {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => {
                        let _ = full_tx.send(Err(e)).await;
                        return;
                    }
                }
            }
            let last = buf.len() < LOCAL_CHUNK;
            if !buf.is_empty() && full_tx.send(Ok(buf)).await.is_err() {
                return; // the writer gave up
            }
            if last {
                return;
            }
        }
    });
    let mut sent = 0u64;
    let result = async {
        while let Some(chunk) = full_rx.recv().await {
            let chunk = chunk.map_err(|e| Failure::Source(e.to_string()))?;
            write_chunk(out, &chunk).await?;
            sent += chunk.len() as u64;
            let _ = empty_tx.try_send(chunk);
        }
        Ok(sent)
    }
    .await;
    reader.abort();
    result
}

/// Copies the file at `url` (`/fs/<path>?redirN=1`) on `owner` from byte `start` to `out`.
pub async fn remote<W: AsyncWrite + Unpin + ?Sized>(
    client: &PeerClient,
    owner: &PeerAddr,
    url: &str,
    start: u64,
    out: &mut W,
) -> Result<u64, Failure> {
    let mut headers = HeaderMap::new();
    if start > 0 {
        let range = HeaderValue::from_str(&format!("bytes={start}-")).expect("a range is a valid header");
        headers.insert(header::RANGE, range);
    }
    let resp = client.fetch(owner, Method::GET, url, &headers).await.map_err(Failure::Source)?;
    // Bytes to drop from the front: the owner may ignore the range and send it all.
    let mut skip = match resp.status() {
        StatusCode::PARTIAL_CONTENT => 0,
        StatusCode::OK => start,
        StatusCode::RANGE_NOT_SATISFIABLE => return Ok(0), // REST at or past the end
        StatusCode::NOT_FOUND => return Err(Failure::NotFound(format!("{owner} answered 404"))),
        s => return Err(Failure::Source(format!("{owner} answered {s}"))),
    };
    let mut body = resp.into_body();
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
    use crate::localfs::{FileMeta, ReadSeek, ScanReport, WatchMsg};

    /// One file, served either as a `std` file on disk or only through the async reader.
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
        fn open(&self, _: &str) -> BoxFuture<'static, io::Result<(Box<dyn ReadSeek>, FileMeta)>> {
            let meta = FileMeta { is_dir: false, len: self.data.len() as u64, modified: SystemTime::UNIX_EPOCH };
            let reader = std::io::Cursor::new(self.data.clone());
            Box::pin(async move { Ok((Box::new(reader) as Box<dyn ReadSeek>, meta)) })
        }
        fn open_std(&self, _: &str) -> BoxFuture<'static, io::Result<Option<(std::fs::File, FileMeta)>>> {
            let disk = self.disk.clone();
            let len = self.data.len() as u64;
            Box::pin(async move {
                let Some(p) = disk else { return Ok(None) };
                let meta = FileMeta { is_dir: false, len, modified: SystemTime::UNIX_EPOCH };
                Ok(Some((std::fs::File::open(p)?, meta)))
            })
        }
        fn stat(&self, _: &str) -> BoxFuture<'static, io::Result<FileMeta>> {
            Box::pin(async { Err(io::Error::from(io::ErrorKind::NotFound)) })
        }
    }

    #[tokio::test]
    async fn both_local_copies_send_every_byte_from_any_offset() {
        let len = 3 * LOCAL_CHUNK + 123;
        let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
        let path = std::env::temp_dir().join(format!("dftp-ftp-transfer-{}", std::process::id()));
        std::fs::File::create(&path).unwrap().write_all(&data).unwrap();
        for disk in [Some(path.clone()), None] {
            let fs: Arc<dyn LocalFs> = Arc::new(OneFile { data: data.clone(), disk: disk.clone() });
            for start in [0, 1, LOCAL_CHUNK - 1, LOCAL_CHUNK, 2 * LOCAL_CHUNK + 5, len - 1, len, len + 10] {
                let mut out = Vec::new();
                let sent = local(&fs, "f", start as u64, &mut out).await.unwrap();
                let want = &data[start.min(len)..];
                assert_eq!(sent, want.len() as u64, "from {start}, std file: {}", disk.is_some());
                assert!(out == want, "from {start}, std file: {}", disk.is_some());
            }
        }
        std::fs::remove_file(&path).unwrap();
    }
}
