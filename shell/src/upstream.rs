//! Files of other nodes, fetched from their owner (for the HTTP proxy and for FTP).
//!
//! A small HTTP/1.1 client of our own rather than hyper's, for two reasons measured with
//! `bench/http.sh`:
//! - the body of a large file can then go from the owner's socket to the client's with
//!   `splice(2)` ([`crate::sendfile`]), which needs the socket, and hyper's client keeps it;
//! - a small file is read by the task that serves the request, with no connection task and no
//!   channel in between.
//!
//! Heads and body framing are parsed in the core (`dftp_core::http1`, fuzzed). A body may be
//! framed by Content-Length (our nodes), chunked (the original's nodes, which send no
//! Content-Length), or the end of the connection. Connections are kept per peer and reused
//! only after a response was read to its end, so that a request never reads the rest of
//! another's.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::ThreadId;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use dftp_core::http1::{self, BodyDecoder, Step};
use dftp_core::PeerAddr;
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::time::Instant;

use crate::body::{Body, BoxError};
use crate::net::{BoxConn, Net};
use crate::sendfile::{self, SendQueue};
use crate::tls::PeerTls;

/// An idle connection older than this is closed rather than reused: our nodes close a
/// connection that sends no request for 30 s (`server::HEADER_TIMEOUT`).
const IDLE_FOR: Duration = Duration::from_secs(20);
const MAX_IDLE_PER_PEER: usize = 32;
/// How often expired idle connections are closed.
const SWEEP_EVERY: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Until the response head has arrived.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// A body that stops arriving for this long ends in an error (the client's connection closes).
const BODY_STALL: Duration = Duration::from_secs(60);
/// Bytes asked of the socket per read when the body is copied.
const READ_CHUNK: usize = 64 << 10;

/// Keep-alive connections to the other nodes' public interfaces.
pub struct Pool {
    net: Arc<dyn Net>,
    /// For peers whose public address is `https://`.
    tls: Arc<PeerTls>,
    idle: Mutex<Idle>,
}

/// The idle connections of each peer, most recently used last, kept apart per thread: the
/// public interface runs one runtime per thread (`server::serve_on_threads`), and a socket
/// reused on the thread whose runtime registered it is woken there, without a hop to another
/// thread.
type Idle = HashMap<(ThreadId, PeerAddr), Vec<(BoxConn, Instant)>>;

/// A connection to `to`, lent by the [`Pool`]. It goes back with [`Lease::release`] once a
/// response has been read to its end, and is closed when dropped instead.
pub struct Lease {
    conn: BoxConn,
    pool: Arc<Pool>,
    to: PeerAddr,
    keep_alive: bool,
}

impl Lease {
    pub fn conn(&mut self) -> &mut BoxConn {
        &mut self.conn
    }

    /// Hands the connection back for the next request to this peer, unless the peer said it
    /// would close it.
    pub fn release(self) {
        if self.keep_alive {
            self.pool.put(self.to, self.conn);
        }
    }
}

impl sendfile::Lent for Lease {
    fn conn(&mut self) -> &mut BoxConn {
        &mut self.conn
    }

    fn release(self: Box<Self>) {
        Lease::release(*self)
    }
}

/// True when nothing has arrived on an idle connection: a peer that closed it (or, wrongly,
/// sent something) would have made it readable.
fn still_idle(conn: &mut BoxConn) -> bool {
    let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
    let mut byte = [0u8; 1];
    matches!(conn.as_mut().poll_read(&mut cx, &mut ReadBuf::new(&mut byte)), Poll::Pending)
}

impl Pool {
    /// A pool, and a task that closes its expired connections every [`SWEEP_EVERY`] until
    /// the pool is dropped: otherwise a connection left idle when the traffic stops would stay
    /// open here after the peer closed its end (CLOSE-WAIT), for as long as nothing is fetched.
    pub fn new(net: Arc<dyn Net>) -> Arc<Pool> {
        Pool::with_tls(net, Arc::new(PeerTls::platform()))
    }

    /// A pool whose `https://` peers are verified as `tls` says.
    pub fn with_tls(net: Arc<dyn Net>, tls: Arc<PeerTls>) -> Arc<Pool> {
        let pool = Arc::new(Pool { net, tls, idle: Mutex::default() });
        let weak = Arc::downgrade(&pool);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(pool) = weak.upgrade() else { return };
                pool.sweep();
            }
        });
        pool
    }

    /// Closes the connections idle for [`IDLE_FOR`] or longer.
    fn sweep(&self) {
        let now = Instant::now();
        self.lock().retain(|_, conns| {
            conns.retain(|(_, since)| now.duration_since(*since) < IDLE_FOR);
            !conns.is_empty()
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Idle> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn put(&self, to: PeerAddr, conn: BoxConn) {
        let now = Instant::now();
        let mut idle = self.lock();
        let conns = idle.entry((std::thread::current().id(), to)).or_default();
        if conns.len() < MAX_IDLE_PER_PEER {
            conns.push((conn, now));
        }
    }

    /// The most recently used idle connection to `to` that is still usable.
    fn take(self: &Arc<Self>, to: &PeerAddr) -> Option<Lease> {
        let key = (std::thread::current().id(), to.clone());
        let mut idle = self.lock();
        let conns = idle.get_mut(&key)?;
        let now = Instant::now();
        while let Some((mut conn, since)) = conns.pop() {
            if now.duration_since(since) < IDLE_FOR && still_idle(&mut conn) {
                return Some(Lease { conn, pool: self.clone(), to: to.clone(), keep_alive: true });
            }
        }
        idle.remove(&key);
        None
    }

    /// A new connection to `to`, with TLS when its address is `https://` (then not a kernel
    /// socket, so its bodies are copied, never spliced: see [`sendfile::can_splice`]).
    async fn connect(self: &Arc<Self>, to: &PeerAddr) -> io::Result<Lease> {
        let conn = tokio::time::timeout(CONNECT_TIMEOUT, self.net.connect(to.host().to_owned(), to.port()))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        let conn = if to.tls() { self.tls.connect(conn, to.host()).await? } else { conn };
        Ok(Lease { conn, pool: self.clone(), to: to.clone(), keep_alive: true })
    }

    /// Idle connections held, over all peers.
    #[cfg(test)]
    fn idle_count(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    /// Sends `method path_and_query` to `to` with `headers` and a body, `upload` (a write
    /// passed on to its owner), and reads the response head. The head goes first, with
    /// `Expect: 100-continue`, and the body only once the owner asks for it: a refusal costs no
    /// upload, and a kept connection that turns out closed is retried on a new one, as the body
    /// has not been touched yet.
    pub async fn send(
        self: &Arc<Self>,
        to: &PeerAddr,
        method: &Method,
        path_and_query: &str,
        headers: &HeaderMap,
        upload: Upload,
    ) -> Result<Fetched, String> {
        let mut headers = headers.clone();
        for name in
            [header::CONTENT_LENGTH, header::TRANSFER_ENCODING, header::EXPECT, header::HOST, header::CONNECTION]
        {
            headers.remove(name);
        }
        match upload.len {
            Some(n) => headers.insert(header::CONTENT_LENGTH, HeaderValue::from(n)),
            None => headers.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked")),
        };
        headers.insert(header::EXPECT, HeaderValue::from_static("100-continue"));
        let request = request_head(to, method, path_and_query, &headers);
        let mut upload = Some(upload);
        let mut reused = self.take(to);
        loop {
            let (lease, was_reused) = match reused.take() {
                Some(l) => (l, true),
                None => (self.connect(to).await.map_err(|e| format!("connecting to {to}: {e}"))?, false),
            };
            match exchange_upload(lease, &request, &mut upload).await {
                Ok(fetched) => return Ok(fetched),
                Err(Failed { error, anything_read }) => {
                    if was_reused && !anything_read && upload.is_some() {
                        tracing::debug!("a kept connection to {to} failed ({error}); trying a new one");
                        continue;
                    }
                    return Err(format!("sending to {to}: {error}"));
                }
            }
        }
    }

    /// Sends `method path_and_query` to `to` with `headers` and reads the response head. A
    /// reused connection that fails before any of the response arrived (the peer closed it
    /// meanwhile) is retried once on a new connection: the requests are GET and HEAD.
    pub async fn fetch(
        self: &Arc<Self>,
        to: &PeerAddr,
        method: &Method,
        path_and_query: &str,
        headers: &HeaderMap,
    ) -> Result<Fetched, String> {
        let request = request_head(to, method, path_and_query, headers);
        let mut reused = self.take(to);
        loop {
            let (lease, was_reused) = match reused.take() {
                Some(l) => (l, true),
                None => (self.connect(to).await.map_err(|e| format!("connecting to {to}: {e}"))?, false),
            };
            let exchange = tokio::time::timeout(HEAD_TIMEOUT, exchange(lease, &request, method == Method::HEAD));
            match exchange.await {
                Err(_) => return Err(format!("{to} sent no answer within {HEAD_TIMEOUT:?}")),
                Ok(Ok(fetched)) => return Ok(fetched),
                Ok(Err(Failed { error, anything_read })) => {
                    if was_reused && !anything_read {
                        tracing::debug!("a kept connection to {to} failed ({error}); trying a new one");
                        continue;
                    }
                    return Err(format!("fetching from {to}: {error}"));
                }
            }
        }
    }
}

fn request_head(to: &PeerAddr, method: &Method, path_and_query: &str, headers: &HeaderMap) -> Vec<u8> {
    let mut head = format!("{method} {path_and_query} HTTP/1.1\r\nHost: {}\r\n", to.authority()).into_bytes();
    for (name, value) in headers {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

struct Failed {
    error: String,
    /// Whether any byte of a response arrived (if not, the request can be sent again).
    anything_read: bool,
}

/// Writes a request head (and whatever of the body goes with it) on the lease's connection;
/// gives the buffer the answer is read into.
async fn send_head(lease: &mut Lease, request: &[u8]) -> Result<BytesMut, Failed> {
    lease
        .conn
        .write_all(request)
        .await
        .map_err(|e| Failed { error: format!("sending the request: {e}"), anything_read: false })?;
    Ok(BytesMut::with_capacity(16 << 10))
}

/// Writes the request and reads the response head (skipping interim 1xx answers).
async fn exchange(mut lease: Lease, request: &[u8], head_request: bool) -> Result<Fetched, Failed> {
    let mut buf = send_head(&mut lease, request).await?;
    match read_answer(&mut lease, &mut buf, head_request, false).await? {
        Answer::Final(head) => Ok(head.into_fetched(lease, buf)),
        Answer::Continue => unreachable!("interim answers are skipped"),
    }
}

/// A response head as it arrives.
enum Answer {
    /// `100 Continue`: send the body.
    Continue,
    Final(FinalHead),
}

struct FinalHead {
    status: StatusCode,
    headers: HeaderMap,
    framing: http1::Framing,
    keep_alive: bool,
}

impl FinalHead {
    /// The answer, with `buf` holding what arrived of its body so far.
    fn into_fetched(self, mut lease: Lease, buf: BytesMut) -> Fetched {
        lease.keep_alive = self.keep_alive;
        let mut body = BodyReader { lease: Some(lease), buf, decoder: BodyDecoder::new(self.framing) };
        if body.decoder.is_done() {
            body.finish(); // no body: the connection is free now
        }
        Fetched { status: self.status, headers: self.headers, body }
    }
}

/// Reads the next response head from `lease`; interim (1xx) answers are skipped, but for a
/// `100 Continue` when `want_continue`. Cancel-safe: what arrived stays in `buf`.
async fn read_answer(
    lease: &mut Lease,
    buf: &mut BytesMut,
    head_request: bool,
    want_continue: bool,
) -> Result<Answer, Failed> {
    let fail = |error: String, anything_read: bool| Failed { error, anything_read };
    loop {
        let mut headers = HeaderMap::new();
        let parsed = http1::parse_head(buf, head_request, |name, value| {
            if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(value)) {
                headers.append(name, value);
            }
        });
        let head = match parsed {
            Ok(Some(head)) => head,
            Ok(None) => {
                buf.reserve(16 << 10);
                match lease.conn.read_buf(buf).await {
                    Ok(0) => return Err(fail("the connection closed before an answer".into(), !buf.is_empty())),
                    Ok(_) => continue,
                    Err(e) => return Err(fail(format!("reading the answer: {e}"), !buf.is_empty())),
                }
            }
            Err(e) => return Err(fail(e.to_string(), true)),
        };
        buf.advance(head.len);
        let Some(framing) = head.framing else {
            if want_continue && head.status == 100 {
                return Ok(Answer::Continue);
            }
            continue; // 102 Processing and the like; the real answer follows
        };
        let status = StatusCode::from_u16(head.status).map_err(|_| fail("a malformed status".into(), true))?;
        return Ok(Answer::Final(FinalHead { status, headers, framing, keep_alive: head.keep_alive }));
    }
}

/// A request body to send on: streamed as it arrives, with its length when known (otherwise it
/// goes chunked).
pub struct Upload {
    pub body: Body,
    pub len: Option<u64>,
}

/// How long an upload waits for `100 Continue` before it sends its body anyway. Our nodes (and
/// the original's, Go's server) send it as soon as the handler reads the body, so the wait
/// ends at once, or with a refusal; it runs out only with an owner busy before it reads (an
/// append copies the old content first), which then reads the body anyway. curl waits 1 s.
const CONTINUE_WAIT: Duration = Duration::from_secs(5);
/// Until the answer to an upload has arrived after its body: the owner makes the file durable
/// before it answers, which for a large one takes a while.
const UPLOAD_ANSWER_TIMEOUT: Duration = Duration::from_secs(300);

/// Sends an upload's head with `Expect: 100-continue` and its body once the owner asks for it,
/// then reads the answer. An owner that answers at once (a refusal: 401, 403, 412, 409) gets
/// no body at all, and until the body is sent a failure can be retried on a new connection
/// (`upload` is still there).
async fn exchange_upload(mut lease: Lease, request: &[u8], upload: &mut Option<Upload>) -> Result<Fetched, Failed> {
    let mut buf = send_head(&mut lease, request).await?;
    match tokio::time::timeout(CONTINUE_WAIT, read_answer(&mut lease, &mut buf, false, true)).await {
        Ok(Ok(Answer::Final(head))) => {
            // Refused before the body: the owner may or may not read the body it never got
            // now, so the connection is not used again.
            lease.keep_alive = false;
            return Ok(head.into_fetched(lease, buf));
        }
        Ok(Err(failed)) => return Err(failed),
        Ok(Ok(Answer::Continue)) | Err(_) => {}
    }
    let Some(upload) = upload.take() else {
        return Err(Failed { error: "the body was already sent".into(), anything_read: true });
    };
    match send_body(&mut lease, upload).await {
        Ok(()) => {}
        // Dropping the connection now tells the owner the body was cut short.
        Err(BodyFailed::Client(error)) => return Err(Failed { error, anything_read: true }),
        Err(BodyFailed::Owner(error)) => {
            // The owner may have answered and stopped reading (a full disk): its answer says why.
            if let Ok(Ok(Answer::Final(head))) =
                tokio::time::timeout(CONTINUE_WAIT, read_answer(&mut lease, &mut buf, false, false)).await
            {
                lease.keep_alive = false;
                return Ok(head.into_fetched(lease, buf));
            }
            return Err(Failed { error, anything_read: true });
        }
    }
    match tokio::time::timeout(UPLOAD_ANSWER_TIMEOUT, read_answer(&mut lease, &mut buf, false, false)).await {
        Ok(Ok(Answer::Final(head))) => Ok(head.into_fetched(lease, buf)),
        Ok(Ok(Answer::Continue)) => unreachable!("interim answers are skipped"),
        Ok(Err(failed)) => Err(Failed { anything_read: true, ..failed }),
        Err(_) => Err(Failed { error: format!("no answer within {UPLOAD_ANSWER_TIMEOUT:?}"), anything_read: true }),
    }
}

/// Writes `upload`'s body, with Content-Length framing when its length is known (and then
/// exactly that many bytes), chunked otherwise. A body that fails or falls short fails the
/// request, and the connection is then dropped, so that the owner sees a body cut short and
/// keeps the old file.
async fn send_body(lease: &mut Lease, upload: Upload) -> Result<(), BodyFailed> {
    let Upload { mut body, len } = upload;
    let mut sent = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyFailed::Client(format!("the client's body failed: {e}")))?;
        let Ok(data) = frame.into_data() else { continue }; // trailers are not passed on
        if data.is_empty() {
            continue;
        }
        sent += data.len() as u64;
        match len {
            Some(n) if sent > n => {
                return Err(BodyFailed::Client(format!("the client sent more than the {n} bytes it announced")))
            }
            Some(_) => write_parts(lease, &[&data]).await?,
            None => write_parts(lease, &[format!("{:x}\r\n", data.len()).as_bytes(), &data, b"\r\n"]).await?,
        }
    }
    match len {
        Some(n) if sent < n => Err(BodyFailed::Client(format!("the client sent {sent} of the {n} bytes it announced"))),
        Some(_) => Ok(()),
        None => write_parts(lease, &[b"0\r\n\r\n"]).await,
    }
}

/// Which end of an upload failed.
enum BodyFailed {
    /// The client's body: it failed, or was longer or shorter than announced.
    Client(String),
    /// The owner's connection.
    Owner(String),
}

/// Writes `parts` to the owner, failing when it takes nothing for [`BODY_STALL`].
async fn write_parts(lease: &mut Lease, parts: &[&[u8]]) -> Result<(), BodyFailed> {
    for part in parts {
        match tokio::time::timeout(BODY_STALL, lease.conn.write_all(part)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(BodyFailed::Owner(format!("sending the body: {e}"))),
            Err(_) => return Err(BodyFailed::Owner(format!("the owner took no data for {BODY_STALL:?}"))),
        }
    }
    Ok(())
}

/// A response head from a peer, with its body still to be read.
pub struct Fetched {
    pub status: StatusCode,
    pub headers: HeaderMap,
    body: BodyReader,
}

impl Fetched {
    /// The body. With the client's [`SendQueue`] (its connection is a kernel socket) and a
    /// body of known length on a kernel socket, what has not arrived yet is spliced from one
    /// socket to the other; otherwise it is copied through here.
    pub fn into_body(self, queue: Option<&SendQueue>) -> Body {
        let mut body = self.body;
        if let (Some(queue), Some(len), Some(lease)) = (queue, body.decoder.remaining(), &mut body.lease) {
            let arrived = body.buf.len() as u64;
            if len > arrived && sendfile::can_splice(lease.conn()) {
                let rest = len - arrived;
                let lease = body.lease.take().expect("checked above");
                return sendfile::spliced_body(queue.clone(), body.buf.freeze(), Box::new(lease), rest);
            }
        }
        let chunks = futures_util::stream::try_unfold(body, |mut body| async move {
            Ok::<_, BoxError>(body.next().await?.map(|b| (Frame::data(b), body)))
        });
        StreamBody::new(chunks).boxed_unsync()
    }
}

struct BodyReader {
    lease: Option<Lease>,
    /// Bytes received and not yet given out.
    buf: BytesMut,
    decoder: BodyDecoder,
}

impl BodyReader {
    /// The next piece of the body; `None` at its end. The connection goes back to the pool
    /// with the last byte: hyper stops asking for more of a body once it has sent
    /// Content-Length bytes, so the end may never be asked for.
    async fn next(&mut self) -> io::Result<Option<Bytes>> {
        let invalid =
            |e: http1::FramingError| io::Error::new(io::ErrorKind::InvalidData, format!("the owner sent {e}"));
        loop {
            match self.decoder.step(&self.buf).map_err(invalid)? {
                Step::Data { skip, len } => {
                    self.buf.advance(skip);
                    let data = self.buf.split_to(len).freeze();
                    if self.decoder.is_done() {
                        self.finish();
                    }
                    return Ok(Some(data));
                }
                Step::End { skip } => {
                    self.buf.advance(skip);
                    self.finish();
                    return Ok(None);
                }
                Step::NeedMore { skip } => {
                    self.buf.advance(skip);
                    let Some(lease) = &mut self.lease else { return Ok(None) };
                    self.buf.reserve(READ_CHUNK);
                    let read = tokio::time::timeout(BODY_STALL, lease.conn.read_buf(&mut self.buf))
                        .await
                        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the owner stopped sending"))??;
                    if read == 0 {
                        self.lease = None;
                        self.decoder.eof().map_err(invalid)?;
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// The body has ended: the connection is reused if nothing beyond the body arrived.
    fn finish(&mut self) {
        if let Some(lease) = self.lease.take() {
            if self.buf.is_empty() {
                lease.release();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http::header;
    use http_body_util::BodyExt;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    use super::*;
    use crate::net::TokioNet;

    /// What the fake owner does with the next request it reads.
    enum Reply {
        /// Sends these bytes, a few at a time, and keeps the connection.
        Send(Vec<u8>),
        /// Sends these bytes and closes the connection.
        SendAndClose(Vec<u8>),
        /// Closes the connection without an answer.
        Close,
    }

    /// An owner that answers requests with `replies`, in order, over however many connections
    /// it is given; returns its address, the connections it accepted, and the requests it read.
    async fn owner(replies: Vec<Reply>) -> (PeerAddr, Arc<AtomicUsize>, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let replies = Arc::new(Mutex::new(std::collections::VecDeque::from(replies)));
        let (a, r) = (accepted.clone(), requests.clone());
        tokio::spawn(async move {
            loop {
                let (mut tcp, _) = listener.accept().await.unwrap();
                a.fetch_add(1, Ordering::SeqCst);
                let (replies, requests) = (replies.clone(), r.clone());
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    loop {
                        let mut byte = [0u8; 1];
                        if tcp.read(&mut byte).await.unwrap_or(0) == 0 {
                            return;
                        }
                        got.push(byte[0]);
                        if !got.ends_with(b"\r\n\r\n") {
                            continue;
                        }
                        requests.lock().unwrap().push(String::from_utf8_lossy(&got).into_owned());
                        got.clear();
                        let reply = replies.lock().unwrap().pop_front();
                        match reply {
                            Some(Reply::Send(bytes)) => {
                                for piece in bytes.chunks(7) {
                                    tcp.write_all(piece).await.unwrap();
                                    tcp.flush().await.unwrap();
                                }
                            }
                            Some(Reply::SendAndClose(bytes)) => {
                                let _ = tcp.write_all(&bytes).await;
                                return;
                            }
                            Some(Reply::Close) | None => return,
                        }
                    }
                });
            }
        });
        (PeerAddr::new_unchecked("127.0.0.1", port), accepted, requests)
    }

    fn ok(body: &[u8]) -> Vec<u8> {
        let mut r = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        r.extend_from_slice(body);
        r
    }

    async fn get(pool: &Arc<Pool>, to: &PeerAddr, method: Method) -> Result<(StatusCode, Vec<u8>), String> {
        let fetched = pool.fetch(to, &method, "/fs/f?format=txt", &HeaderMap::new()).await?;
        let status = fetched.status;
        let body = fetched.into_body(None).collect().await.map_err(|e| e.to_string())?;
        Ok((status, body.to_bytes().to_vec()))
    }

    #[tokio::test]
    async fn a_connection_is_reused_once_its_body_was_read() {
        let (to, accepted, requests) = owner(vec![Reply::Send(ok(b"one")), Reply::Send(ok(b"second"))]).await;
        let pool = Pool::new(Arc::new(TokioNet));
        // Only as far as the last byte, as hyper reads a body of known length: no poll for
        // its end.
        let mut body = pool.fetch(&to, &Method::GET, "/fs/f", &HeaderMap::new()).await.unwrap().into_body(None);
        let mut got = Vec::new();
        while got.len() < 3 {
            got.extend_from_slice(&body.frame().await.unwrap().unwrap().into_data().unwrap());
        }
        assert_eq!(got, b"one");
        assert_eq!(pool.idle_count(), 1);
        assert_eq!(get(&pool, &to, Method::GET).await.unwrap(), (StatusCode::OK, b"second".to_vec()));
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "one connection for both");
        let requests = requests.lock().unwrap();
        assert!(requests[1].starts_with("GET /fs/f?format=txt HTTP/1.1\r\nHost: 127.0.0.1:"), "{}", requests[1]);
    }

    #[tokio::test]
    async fn a_body_dropped_unread_takes_its_connection_with_it() {
        let (to, accepted, _) = owner(vec![Reply::Send(ok(&[7; 100_000])), Reply::Send(ok(b"x"))]).await;
        let pool = Pool::new(Arc::new(TokioNet));
        let fetched = pool.fetch(&to, &Method::GET, "/fs/f", &HeaderMap::new()).await.unwrap();
        drop(fetched);
        assert_eq!(pool.idle_count(), 0);
        assert_eq!(get(&pool, &to, Method::GET).await.unwrap().1, b"x");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn chunked_bodies_with_extensions_and_trailers_are_decoded() {
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
            5\r\nhello\r\n1;ext=\"x\"\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n"
            .to_vec();
        let (to, accepted, _) = owner(vec![Reply::Send(chunked), Reply::Send(ok(b"after"))]).await;
        let pool = Pool::new(Arc::new(TokioNet));
        assert_eq!(get(&pool, &to, Method::GET).await.unwrap().1, b"hello 0123456789");
        assert_eq!(get(&pool, &to, Method::GET).await.unwrap().1, b"after", "the trailer was consumed");
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_body_without_length_ends_with_the_connection() {
        let (to, accepted, _) = owner(vec![
            Reply::SendAndClose(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it".to_vec()),
            Reply::Send(ok(b"next")),
        ])
        .await;
        let pool = Pool::new(Arc::new(TokioNet));
        assert_eq!(get(&pool, &to, Method::GET).await.unwrap().1, b"all of it");
        assert_eq!(pool.idle_count(), 0);
        assert_eq!(get(&pool, &to, Method::GET).await.unwrap().1, b"next");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn answers_without_a_body_free_the_connection_at_once() {
        let (to, accepted, _) = owner(vec![
            Reply::Send(b"HTTP/1.1 200 OK\r\nContent-Length: 12345\r\n\r\n".to_vec()),
            Reply::Send(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n".to_vec()),
            Reply::Send(
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\ngone".to_vec(),
            ),
        ])
        .await;
        let pool = Pool::new(Arc::new(TokioNet));
        let head = pool.fetch(&to, &Method::HEAD, "/fs/f", &HeaderMap::new()).await.unwrap();
        assert_eq!(head.headers.get(header::CONTENT_LENGTH).unwrap(), "12345");
        assert_eq!(pool.idle_count(), 1, "a HEAD answer has no body to wait for");
        assert_eq!(get(&pool, &to, Method::GET).await.unwrap(), (StatusCode::NOT_MODIFIED, Vec::new()));
        assert_eq!(get(&pool, &to, Method::GET).await.unwrap(), (StatusCode::NOT_FOUND, b"gone".to_vec()));
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_kept_connection_the_owner_dropped_is_replaced() {
        // The first connection answers once and then closes when asked again, as a peer that
        // restarted or timed the connection out would; the request goes out again on a new one.
        let (to, accepted, requests) = owner(vec![Reply::Send(ok(b"a")), Reply::Close, Reply::Send(ok(b"b"))]).await;
        let pool = Pool::new(Arc::new(TokioNet));
        assert_eq!(get(&pool, &to, Method::GET).await.unwrap().1, b"a");
        assert_eq!(get(&pool, &to, Method::GET).await.unwrap().1, b"b");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        assert_eq!(requests.lock().unwrap().len(), 3, "sent, lost, sent again");
    }

    /// An upload waits for `100 Continue` before its body, so a kept connection that turns out
    /// closed is replaced with the body untouched, and the body then goes out whole.
    #[tokio::test]
    async fn an_upload_on_a_kept_connection_the_owner_dropped_goes_out_again() {
        let (to, accepted, requests) = owner(vec![
            Reply::Send(ok(b"a")),
            Reply::Close,
            Reply::Send(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec()),
            Reply::Send(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n".to_vec()),
        ])
        .await;
        let pool = Pool::new(Arc::new(TokioNet));
        assert_eq!(get(&pool, &to, Method::GET).await.unwrap().1, b"a");
        assert_eq!(pool.idle_count(), 1);
        // A body the fake owner reads as one more head: it ends with an empty line.
        let body = crate::body::full_body(&b"abc\r\n\r\n"[..]);
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic x"));
        let upload = Upload { body, len: Some(7) };
        let answer = pool.send(&to, &Method::PUT, "/fs/f?redirN=1", &headers, upload).await.unwrap();
        assert_eq!(answer.status, StatusCode::CREATED);
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        let requests = requests.lock().unwrap();
        assert_eq!(requests.len(), 4, "{requests:?}");
        for head in &requests[1..3] {
            assert!(head.starts_with("PUT /fs/f?redirN=1 HTTP/1.1\r\n"), "{head}");
            assert!(head.contains("authorization: Basic x\r\n") && head.contains("expect: 100-continue\r\n"), "{head}");
            assert!(head.contains("content-length: 7\r\n"), "{head}");
        }
        assert_eq!(requests[3], "abc\r\n\r\n", "the body, once, after the owner asked for it");
    }

    #[tokio::test]
    async fn broken_answers_are_errors() {
        let (to, _, _) = owner(vec![
            Reply::SendAndClose(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort".to_vec()),
            Reply::SendAndClose(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec()),
            Reply::SendAndClose(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n".to_vec()),
            Reply::SendAndClose(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab".to_vec()),
            Reply::SendAndClose(b"SSH-2.0-OpenSSH\r\n\r\n".to_vec()),
            Reply::Close,
        ])
        .await;
        let pool = Pool::new(Arc::new(TokioNet));
        for what in ["truncated", "bad chunk size", "chunk too long", "two lengths", "not HTTP", "no answer"] {
            assert!(get(&pool, &to, Method::GET).await.is_err(), "{what}");
        }
        assert_eq!(pool.idle_count(), 0);
    }

    /// Proxies bodies of several MiB from a fake owner through a real hyper server connection
    /// whose IO splices them, on one client connection, and compares the bytes that arrive.
    /// The owner's connection must go back to the pool after each body; an owner that stops
    /// early must end the client's connection, not leave it waiting or padded.
    #[tokio::test]
    async fn spliced_bodies_arrive_whole_and_free_their_connection() {
        use hyper::server::conn::http1;
        use tokio::io::AsyncReadExt;

        let data: Vec<u8> = (0..3 * (1 << 20) + 4321).map(|i: usize| (i * 13 + i / 1021) as u8).collect();
        let short = b"HTTP/1.1 200 OK\r\nContent-Length: 5000000\r\n\r\nonly this".to_vec();
        let (to, accepted, _) =
            owner(vec![Reply::Send(ok(&data)), Reply::Send(ok(&data[..200_000])), Reply::SendAndClose(short)]).await;
        let pool = Pool::new(Arc::new(TokioNet));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (p, owner_addr) = (pool.clone(), to.clone());
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let (io, queue) = crate::sendfile::SendfileIo::new(Box::pin(tcp));
            let queue = queue.expect("a tokio TcpStream is a socket");
            let svc = hyper::service::service_fn(move |_: http::Request<hyper::body::Incoming>| {
                let (p, to, queue) = (p.clone(), owner_addr.clone(), queue.clone());
                async move {
                    let fetched = p.fetch(&to, &Method::GET, "/fs/f", &HeaderMap::new()).await.unwrap();
                    let len = fetched.headers.get(header::CONTENT_LENGTH).unwrap().clone();
                    let mut resp = http::Response::new(fetched.into_body(Some(&queue)));
                    resp.headers_mut().insert(header::CONTENT_LENGTH, len);
                    Ok::<_, std::convert::Infallible>(resp)
                }
            });
            let _ = http1::Builder::new().writev(true).serve_connection(io, svc).await;
        });
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        for want in [&data[..], &data[..200_000]] {
            client.write_all(b"GET /f HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                head.push(client.read_u8().await.unwrap());
            }
            let mut body = vec![0u8; want.len()];
            let read = tokio::time::timeout(Duration::from_secs(30), client.read_exact(&mut body)).await;
            read.expect("the body arrives in time").unwrap();
            assert!(body == want, "{} bytes", want.len());
            // The pool gets the connection back when the last stand-in is sent, which is
            // before the client has read it all; give the server task a moment.
            for _ in 0..100 {
                if pool.idle_count() == 1 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert_eq!(pool.idle_count(), 1, "the owner's connection is back in the pool");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        client.write_all(b"GET /f HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut rest)).await;
        assert!(read.is_ok(), "the client's connection was closed");
        let text = String::from_utf8_lossy(&rest);
        assert!(text.starts_with("HTTP/1.1 200 OK") && text.ends_with("only this"), "{text}");
    }

    /// Idle connections are closed after `IDLE_FOR`: at once for a peer asked again, and by the
    /// sweeping task for peers never asked again, with no fetch to trigger it.
    #[tokio::test(start_paused = true)]
    async fn expired_idle_connections_are_closed() {
        let pool = Pool::new(Arc::new(TokioNet));
        let mut far_ends = Vec::new(); // kept open: a closed far end makes a connection unusable
        let mut conn = || {
            let (near, far) = tokio::io::duplex(64);
            far_ends.push(far);
            Box::pin(near) as BoxConn
        };
        let (gone, asked) = (PeerAddr::new_unchecked("gone", 1), PeerAddr::new_unchecked("asked", 1));
        pool.put(gone.clone(), conn());
        pool.put(asked.clone(), conn());
        tokio::time::sleep(IDLE_FOR - Duration::from_secs(1)).await;
        assert_eq!(pool.idle_count(), 2, "not expired yet");
        assert!(pool.take(&asked).is_some());
        pool.put(asked.clone(), conn());
        tokio::time::sleep(Duration::from_secs(1) + SWEEP_EVERY).await;
        assert_eq!(pool.idle_count(), 1, "the gone peer's connection was swept, with no fetch");
        tokio::time::sleep(IDLE_FOR).await;
        assert_eq!(pool.idle_count(), 0);
        assert!(pool.take(&asked).is_none());
    }
}
