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

/// Copies the local file `rel` (relative to the root) from byte `start` to `out`.
pub async fn local<W: AsyncWrite + Unpin + ?Sized>(
    fs: &Arc<dyn LocalFs>,
    rel: &str,
    start: u64,
    out: &mut W,
) -> Result<u64, Failure> {
    let (mut file, meta) = fs.open(rel).await.map_err(|e| match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied => Failure::NotFound(e.to_string()),
        _ => Failure::Source(e.to_string()),
    })?;
    if start >= meta.len {
        return Ok(0);
    }
    if start > 0 {
        file.seek(io::SeekFrom::Start(start)).await.map_err(|e| Failure::Source(e.to_string()))?;
    }
    // A reader task fills buffers while this task writes the previous ones; written buffers go
    // back to the reader, so a transfer allocates READ_AHEAD + 1 buffers once.
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
