//! Zero-copy bodies on real sockets: the bytes of a local file go from the page cache to the
//! socket with `sendfile(2)`, and those of a proxied file from the owner's socket to the
//! client's with `splice(2)`, instead of being read into memory and written back out (two
//! copies, four times nginx's CPU per byte for local files, measured with `bench/http.sh`).
//!
//! hyper writes a response body from the buffers the body yields and has no way to take a file
//! or a socket. So such a body yields *stand-ins*: slices of one static buffer, as long as the
//! stretch of bytes they stand for, after queueing that stretch on the connection's
//! [`SendQueue`]. The connection's IO ([`SendfileIo`]) knows a stand-in by its address when
//! hyper writes it and sends the queued stretch in its place. hyper is set to vectored writes
//! (`http1::Builder::writev(true)`), in which mode it hands body buffers to the IO as they are
//! instead of copying them into its own buffer. A stand-in that reaches the IO with nothing
//! queued is an error that closes the connection; its bytes are never sent.

use std::any::Any;
use std::collections::VecDeque;
use std::fs::File;
use std::future::Future;
use std::io;
use std::num::NonZeroU64;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use rustix::pipe::{PipeFlags, SpliceFlags};

use crate::body::{Body, BoxError};
use crate::diskread;
use crate::net::BoxConn;

/// The longest stretch one stand-in stands for.
const STAND_IN_LEN: usize = 1 << 20;

/// Stand-ins are slices of this; only their address and length matter.
static STAND_IN: [u8; STAND_IN_LEN] = [0; STAND_IN_LEN];

fn is_stand_in(buf: &[u8]) -> bool {
    let (at, start) = (buf.as_ptr() as usize, STAND_IN.as_ptr() as usize);
    !buf.is_empty() && at >= start && at < start + STAND_IN_LEN
}

/// What a stand-in stands for, in the order the stand-ins were yielded.
enum Stretch {
    /// `len` bytes of `file` from `offset`, sent with `sendfile`.
    File { file: Arc<File>, offset: u64, len: usize },
    /// The next `len` bytes arriving on a peer's connection (a proxied body), moved through a
    /// pipe with `splice`. One stretch stands for all of a body's stand-ins; the connection
    /// goes back to its pool once they are sent.
    Socket { from: Box<dyn Lent>, len: u64 },
}

/// A connection lent for the bytes of one body (by the peer client's pool), handed back once
/// they have all been sent.
pub trait Lent: Send + 'static {
    fn conn(&mut self) -> &mut BoxConn;
    /// The body's last byte has been sent: the connection may serve another request.
    fn release(self: Box<Self>);
}

/// The stretches queued on one connection, in the order their stand-ins were yielded (which is
/// the order hyper writes them: one response at a time, its body in order).
#[derive(Clone, Default)]
pub struct SendQueue(Arc<Mutex<VecDeque<Stretch>>>);

impl SendQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Stretch>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Stand-ins for `len` bytes, at most [`STAND_IN_LEN`] each, with their offsets from 0.
fn stand_ins(len: u64) -> impl Iterator<Item = (u64, usize)> {
    (0..len).step_by(STAND_IN_LEN).map(move |at| (at, (len - at).min(STAND_IN_LEN as u64) as usize))
}

/// A body of `len` bytes of `file` from `start`, sent by the connection's [`SendfileIo`].
pub fn body(queue: SendQueue, file: Arc<File>, start: u64, len: u64) -> Body {
    let frames = futures_util::stream::iter(stand_ins(len)).map(move |(at, len)| {
        let offset = start + at;
        // Start reading it from the disk now if it is not cached, so that sendfile (which
        // runs on an async thread) finds it in the page cache rather than waiting for it.
        let _ = rustix::fs::fadvise(&*file, offset, NonZeroU64::new(len as u64), rustix::fs::Advice::WillNeed);
        queue.lock().push_back(Stretch::File { file: file.clone(), offset, len });
        Ok::<_, BoxError>(Frame::data(Bytes::from_static(&STAND_IN[..len])))
    });
    StreamBody::new(frames).boxed_unsync()
}

/// Whether a body arriving on `conn` can be spliced ([`spliced_body`]): it is a kernel socket.
pub fn can_splice(conn: &mut BoxConn) -> bool {
    let any: &mut dyn Any = conn.as_mut().get_mut();
    any.is::<tokio::net::TcpStream>()
}

/// A proxied body: `arrived` (read with the response head), then the next `len` bytes on
/// `from`'s connection, moved by the client connection's [`SendfileIo`].
pub fn spliced_body(queue: SendQueue, arrived: Bytes, from: Box<dyn Lent>, len: u64) -> Body {
    let head = (!arrived.is_empty()).then(|| Ok::<_, BoxError>(Frame::data(arrived)));
    let mut from = Some(from);
    let rest = futures_util::stream::iter(stand_ins(len)).map(move |(_, n)| {
        if let Some(from) = from.take() {
            queue.lock().push_back(Stretch::Socket { from, len });
        }
        Ok::<_, BoxError>(Frame::data(Bytes::from_static(&STAND_IN[..n])))
    });
    StreamBody::new(futures_util::stream::iter(head).chain(rest)).boxed_unsync()
}

/// A pipe that spliced bytes pass through, and how many of them it holds.
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    held: usize,
    capacity: usize,
}

impl Pipe {
    fn new() -> io::Result<Pipe> {
        let (read, write) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
        // Bigger than the default 64 KiB, for fewer calls; the kernel may refuse, which is fine.
        let _ = rustix::pipe::fcntl_setpipe_size(&write, PIPE_WANTED);
        let capacity = rustix::pipe::fcntl_getpipe_size(&write)?;
        Ok(Pipe { read, write, held: 0, capacity })
    }
}

const PIPE_WANTED: usize = 1 << 20;

/// The IO of one HTTP connection: what hyper writes goes to the socket, except stand-ins,
/// which are replaced by what they stand for.
pub struct SendfileIo {
    io: TokioIo<BoxConn>,
    /// `None` where the connection is not a kernel socket.
    queue: Option<SendQueue>,
    /// Made at the first spliced body.
    pipe: Option<Pipe>,
    /// A stretch of file being read into the page cache on the blocking pool.
    warming: Option<Warming>,
}

/// The blocking-pool read that brings the `len` bytes at `offset` into the page cache.
struct Warming {
    offset: u64,
    len: usize,
    task: tokio::task::JoinHandle<()>,
}

fn not_a_socket() -> io::Error {
    io::Error::other("a stand-in on a connection that is not a socket")
}

impl SendfileIo {
    /// Wraps `conn`; the queue is `None` where the connection is not a kernel socket (the
    /// simulator's), so file bodies are sent as bytes there.
    pub fn new(mut conn: BoxConn) -> (SendfileIo, Option<SendQueue>) {
        let queue = can_splice(&mut conn).then(SendQueue::default);
        (SendfileIo { io: TokioIo::new(conn), queue: queue.clone(), pipe: None, warming: None }, queue)
    }

    /// Sends at most `max` bytes of the front stretch in place of a stand-in.
    fn send_stretch(&mut self, cx: &mut Context<'_>, max: usize) -> Poll<io::Result<usize>> {
        let Some(queue) = &self.queue else {
            return Poll::Ready(Err(not_a_socket()));
        };
        // Out of the queue while it is worked on (no lock held over system calls), and back
        // at its front unless it is done.
        let Some(mut front) = queue.lock().pop_front() else {
            return Poll::Ready(Err(io::Error::other("a stand-in with nothing queued")));
        };
        let any: &mut dyn Any = self.io.inner_mut().as_mut().get_mut();
        let Some(tcp) = any.downcast_mut::<tokio::net::TcpStream>() else {
            return Poll::Ready(Err(not_a_socket()));
        };
        let polled = match &mut front {
            Stretch::File { file, offset, len } => {
                let len = (*len).min(max);
                match poll_cached(&mut self.warming, cx, file, *offset, len) {
                    Poll::Ready(()) => send_file(tcp, cx, file, *offset, len),
                    Poll::Pending => Poll::Pending,
                }
            }
            Stretch::Socket { from, len } => {
                let pipe = match &mut self.pipe {
                    Some(p) => p,
                    None => self.pipe.insert(Pipe::new()?),
                };
                splice_from(tcp, cx, pipe, from.conn(), *len, max)
            }
        };
        let sent = match polled {
            Poll::Ready(Ok(n)) => n,
            Poll::Pending => {
                queue.lock().push_front(front);
                return Poll::Pending;
            }
            // The connection closes; what was queued goes with it.
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
        };
        match &mut front {
            Stretch::File { offset, len, .. } => {
                *offset += sent as u64;
                *len -= sent;
            }
            Stretch::Socket { len, .. } => *len -= sent as u64,
        }
        match front {
            Stretch::File { len: 0, .. } => {}
            Stretch::Socket { from, len: 0 } => from.release(),
            unfinished => queue.lock().push_front(unfinished),
        }
        Poll::Ready(Ok(sent))
    }
}

/// Ready once the `len` bytes at `offset` are (most likely) in the page cache, so that
/// `sendfile`, which runs on an async thread, does not hold it while the disk reads. The last
/// page is checked: the stretch was given to readahead (`WILLNEED`) when it was queued, which
/// reads in order. When it is not there, the stretch is read on the blocking pool first.
fn poll_cached(
    warming: &mut Option<Warming>,
    cx: &mut Context<'_>,
    file: &Arc<File>,
    offset: u64,
    len: usize,
) -> Poll<()> {
    if warming.as_ref().is_some_and(|w| (w.offset, w.len) != (offset, len)) {
        *warming = None; // for a stretch no longer asked for
    }
    if warming.is_none() {
        if len == 0 || diskread::is_cached(file, offset + len as u64 - 1) {
            return Poll::Ready(());
        }
        let f = file.clone();
        let task = tokio::task::spawn_blocking(move || diskread::load(&f, offset, len));
        *warming = Some(Warming { offset, len, task });
    }
    let w = warming.as_mut().expect("set above");
    // Whatever the read met, the sendfile meets too and reports.
    let _ = ready!(Pin::new(&mut w.task).poll(cx));
    *warming = None;
    Poll::Ready(())
}

/// Runs `op`, a non-blocking system call on `socket` with the given interest, once the socket
/// is ready for it, and again at the next readiness whenever it would block.
fn poll_io(
    socket: &tokio::net::TcpStream,
    cx: &mut Context<'_>,
    interest: tokio::io::Interest,
    mut op: impl FnMut() -> io::Result<usize>,
) -> Poll<io::Result<usize>> {
    loop {
        if interest.is_readable() {
            ready!(socket.poll_read_ready(cx))?;
        } else {
            ready!(socket.poll_write_ready(cx))?;
        }
        match socket.try_io(interest, &mut op) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            done => return Poll::Ready(done),
        }
    }
}

/// `sendfile` of at most `len` bytes of `file` from `offset` to `tcp`, when it can take them.
fn send_file(
    tcp: &mut tokio::net::TcpStream,
    cx: &mut Context<'_>,
    file: &File,
    offset: u64,
    len: usize,
) -> Poll<io::Result<usize>> {
    let sent = ready!(poll_io(tcp, cx, tokio::io::Interest::WRITABLE, || {
        let mut at = offset;
        rustix::fs::sendfile(&*tcp, file, Some(&mut at), len).map_err(io::Error::from)
    }));
    Poll::Ready(match sent {
        Ok(0) => Err(diskread::shrank()),
        sent => sent,
    })
}

/// Moves at most `max` of the `len` bytes still due from `from` to `tcp` through `pipe`: what
/// the pipe holds goes out first, and the pipe is refilled from `from` when empty. The bytes
/// stay in the kernel, referenced rather than copied.
///
/// Only an empty pipe is refilled: a pipe counts buffers, not bytes, so a pipe with bytes in it
/// can be full, and its EAGAIN would be taken for "nothing arrived" (clearing the socket's
/// readiness, after which the bytes that did arrive are never announced: transfers stalled for
/// 30 s when this was tried). Refilling early was also no faster (bench/http.sh).
fn splice_from(
    tcp: &mut tokio::net::TcpStream,
    cx: &mut Context<'_>,
    pipe: &mut Pipe,
    from: &mut BoxConn,
    len: u64,
    max: usize,
) -> Poll<io::Result<usize>> {
    let any: &mut dyn Any = from.as_mut().get_mut();
    let Some(from) = any.downcast_mut::<tokio::net::TcpStream>() else {
        return Poll::Ready(Err(not_a_socket()));
    };
    loop {
        if pipe.held > 0 {
            let n = pipe.held.min(max);
            let more = if (n as u64) < len { SpliceFlags::MORE } else { SpliceFlags::empty() };
            let sent = ready!(poll_io(tcp, cx, tokio::io::Interest::WRITABLE, || {
                rustix::pipe::splice(&pipe.read, None, &*tcp, None, n, SpliceFlags::NONBLOCK | more)
                    .map_err(io::Error::from)
            }))?;
            pipe.held -= sent;
            return Poll::Ready(Ok(sent));
        }
        let want = (len as usize).min(pipe.capacity);
        let got = ready!(poll_io(from, cx, tokio::io::Interest::READABLE, || {
            rustix::pipe::splice(&*from, None, &pipe.write, None, want, SpliceFlags::NONBLOCK).map_err(io::Error::from)
        }))?;
        if got == 0 {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the owner closed the connection before the end of the file",
            )));
        }
        pipe.held += got;
    }
}

impl hyper::rt::Read for SendfileIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for SendfileIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if is_stand_in(buf) {
            return self.send_stretch(cx, buf.len());
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match bufs.iter().position(|b| is_stand_in(b)) {
            None => Pin::new(&mut self.io).poll_write_vectored(cx, bufs),
            Some(0) => self.send_stretch(cx, bufs[0].len()),
            // What comes before the stand-in first (a short write is fine: hyper calls again).
            Some(i) => Pin::new(&mut self.io).poll_write_vectored(cx, &bufs[..i]),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use http::{header, Request, Response};
    use hyper::body::Incoming;
    use hyper::server::conn::http1;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Serves `data[start..end]` from a file on one real loopback connection, twice (keep-alive),
    /// and checks the bytes that arrive: if hyper ever copied a stand-in instead of handing it
    /// over, zeros would arrive here.
    #[tokio::test]
    async fn stand_ins_arrive_as_the_file() {
        let data: Vec<u8> = (0..3 * STAND_IN_LEN + 4321).map(|i| (i * 13 + i / 1021) as u8).collect();
        let path = std::env::temp_dir().join(format!("dftp-sendfile-{}", std::process::id()));
        File::create(&path).unwrap().write_all(&data).unwrap();
        let file = Arc::new(File::open(&path).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let ranges = [(0u64, data.len() as u64), (STAND_IN_LEN as u64 - 7, 2 * STAND_IN_LEN as u64 + 9)];
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let (io, queue) = SendfileIo::new(Box::pin(tcp));
            let queue = queue.expect("a tokio TcpStream is a socket");
            let served = std::sync::atomic::AtomicUsize::new(0);
            let svc = hyper::service::service_fn(move |_: Request<Incoming>| {
                let (start, end) = ranges[served.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % ranges.len()];
                let body = body(queue.clone(), file.clone(), start, end - start);
                let resp = Response::builder().header(header::CONTENT_LENGTH, end - start).body(body).unwrap();
                async move { Ok::<_, std::convert::Infallible>(resp) }
            });
            let _ = http1::Builder::new().writev(true).serve_connection(io, svc).await;
        });
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        // The second time round from a file dropped from the page cache: its stretches are
        // read in on the blocking pool before they are sent (`poll_cached`).
        for cold in [false, true] {
            for (start, end) in ranges {
                if cold {
                    let f = File::open(&path).unwrap();
                    f.sync_all().unwrap();
                    rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed).unwrap();
                }
                client.write_all(b"GET /f HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
                let mut head = Vec::new();
                while !head.ends_with(b"\r\n\r\n") {
                    head.push(client.read_u8().await.unwrap());
                }
                let mut body = vec![0u8; (end - start) as usize];
                let read = tokio::time::timeout(std::time::Duration::from_secs(30), client.read_exact(&mut body));
                read.await.expect("the body arrives in time").unwrap();
                assert!(body == data[start as usize..end as usize], "bytes {start}..{end}, cold: {cold}");
            }
        }
        drop(client);
        server.await.unwrap();
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn only_the_static_buffer_is_a_stand_in() {
        assert!(is_stand_in(&STAND_IN[..1]));
        assert!(is_stand_in(&STAND_IN[STAND_IN_LEN - 1..]));
        assert!(!is_stand_in(&STAND_IN[..0]));
        assert!(!is_stand_in(&[0u8; 64]));
    }
}
