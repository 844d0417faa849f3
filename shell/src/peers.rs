//! HTTP client to the other nodes: greetings, updates, and file fetches for the proxy.
//!
//! One hyper client with a keep-alive pool per peer (the original opened a new connection for
//! many proxied requests), over whatever [`Net`] the daemon runs on.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use dftp_core::anti_entropy::{DigestAnswer, DigestMsg, MAX_DIGEST_ANSWER};
use dftp_core::cluster_auth::{BodyDigest, HEADER};
use dftp_core::{ClusterInfo, Greeting, PeerAddr};
use futures_util::future::BoxFuture;
use http::{header, Method, Request, Uri};
use http_body_util::{BodyExt, Limited};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

use crate::body::{full_body, Body};
use crate::cluster_secret::Guard;
use crate::net::{BoxConn, Net};
use crate::tls::PeerTls;
use crate::traffic::{CountingClient, FullUpdate, Traffic};
use crate::upstream::{Fetched, Pool, Upload};

/// Largest cluster table we read from a peer.
const MAX_CLUSTER_REPLY: usize = 16 << 20;
const GREET_TIMEOUT: Duration = Duration::from_secs(10);
const UPDATE_TIMEOUT: Duration = Duration::from_secs(60);
const FULL_UPDATE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Connects through a [`Net`], with TLS for `https://` addresses.
#[derive(Clone)]
pub struct Connector {
    pub net: Arc<dyn Net>,
    pub tls: Arc<PeerTls>,
}

pub struct NetIo(TokioIo<BoxConn>);

impl hyper::rt::Read for NetIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for NetIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl Connection for NetIo {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl tower::Service<Uri> for Connector {
    type Response = NetIo;
    type Error = io::Error;
    type Future = BoxFuture<'static, io::Result<NetIo>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let (net, tls) = (self.net.clone(), self.tls.clone());
        Box::pin(async move {
            let host = uri.host().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no host"))?.to_owned();
            let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
            let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
            let conn = tokio::time::timeout(GREET_TIMEOUT, net.connect(host.clone(), port))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
            let conn = if https { tls.connect(conn, &host).await? } else { conn };
            Ok(NetIo(TokioIo::new(conn)))
        })
    }
}

/// How long requests to peers may take.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// A greeting (and its connection). Longer than a ping interval is pointless: by then the
    /// next ping wants to greet again, and a greeting lost in a partition would hold the peer's
    /// return up long after the network healed.
    pub greet: Duration,
    /// An incremental update: as long as a greeting, which it is no larger than in the common
    /// case. A request lost on its connection holds the updates queued behind it, and the peer
    /// counts us alive only while it has had all our updates: failed after a ping interval,
    /// the lost update is replaced by a full one at the next contact (a ping later at most),
    /// before the peer, which last heard from us at most a ping before the loss, times us out
    /// (a peer timeout of three pings or more, as by default). With the peer timeout here, the
    /// peer dropped us and all our files first, and took us back a moment later.
    pub incremental: Duration,
    /// A full update without progress (no body sent, or no answer after the whole body): a
    /// peer silent this long is dead by definition, and a lost request must not hold up the
    /// updates queued behind it.
    pub update: Duration,
}

impl Timeouts {
    /// The timeouts for nodes that ping every `ping_interval` and give up on a peer after
    /// `peer_timeout`.
    pub fn for_intervals(ping_interval: Duration, peer_timeout: Duration) -> Timeouts {
        let greet = ping_interval.min(GREET_TIMEOUT);
        Timeouts { greet, incremental: greet, update: peer_timeout.min(UPDATE_TIMEOUT) }
    }
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts { greet: GREET_TIMEOUT, incremental: GREET_TIMEOUT, update: UPDATE_TIMEOUT }
    }
}

#[derive(Clone)]
pub struct PeerClient {
    /// Every management request goes through it, and is counted there (`traffic`).
    client: CountingClient<Connector>,
    /// Files are fetched with our own client (see `upstream`).
    files: Arc<Pool>,
    timeouts: Timeouts,
    /// The cluster secret: our requests are signed, and answers believed only when signed.
    guard: Option<Arc<Guard>>,
}

/// An update body to send: with a cluster secret, its digest goes in the request's stamp, so a
/// streamed full update is read twice (once to hash it, then as it goes out).
pub struct UpdateBody {
    pub body: Body,
    pub digest: Option<BodyDigest>,
}

/// An error with the errors that caused it: hyper's client says only "client error (Connect)",
/// and the reason a person can act on ("Connection refused") is its source.
fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cause = c.source();
    }
    out
}

/// How long a connection to a peer is kept open unused.
const IDLE_CONNECTION: Duration = Duration::from_secs(10);

async fn timed<T>(limit: Duration, what: String, f: impl Future<Output = Result<T, String>>) -> Result<T, String> {
    tokio::time::timeout(limit, f).await.unwrap_or_else(|_| Err(format!("{what} timed out after {limit:?}")))
}

impl PeerClient {
    /// A client whose `https://` peers are verified with the platform's roots.
    pub fn new(net: Arc<dyn Net>) -> PeerClient {
        PeerClient::with_tls(net, Arc::new(PeerTls::platform()))
    }

    /// A client whose `https://` peers are verified as `tls` says (`--tls-ca`).
    pub fn with_tls(net: Arc<dyn Net>, tls: Arc<PeerTls>) -> PeerClient {
        // Idle connections are closed after a few seconds, by the pool's own timer (without
        // one, hyper only drops an expired connection when it would hand it out again, so every
        // peer ever talked to kept one open): a node talks to most peers about once a minute
        // (digests) or once every N probe periods (SWIM), so a connection kept longer is seldom
        // used again, and in a cluster of 200 each kept connection of every pair is 40,000
        // sockets open for nothing. A burst to one peer (greetings, an update and its answer,
        // SWIM's probe and gossip) reuses them.
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(IDLE_CONNECTION)
            .pool_timer(TokioTimer::new())
            .pool_max_idle_per_host(8)
            .build(Connector { net: net.clone(), tls: tls.clone() });
        let client = CountingClient::new(client, Traffic::default());
        PeerClient { client, files: Pool::with_tls(net, tls), timeouts: Timeouts::default(), guard: None }
    }

    /// The counters of the management requests this client sent and their answers.
    pub fn traffic(&self) -> &Traffic {
        self.client.traffic()
    }

    pub fn with_timeouts(self, timeouts: Timeouts) -> PeerClient {
        PeerClient { timeouts, ..self }
    }

    pub fn with_guard(self, guard: Option<Arc<Guard>>) -> PeerClient {
        PeerClient { guard, ..self }
    }

    /// The cluster secret, when there is one.
    pub fn guard(&self) -> Option<&Arc<Guard>> {
        self.guard.as_ref()
    }

    /// Signs a request: its `X-Dftp-Auth` and the nonce its answer must be signed over.
    fn stamp(
        &self,
        req: http::request::Builder,
        path: &str,
        digest: Option<BodyDigest>,
    ) -> Result<(http::request::Builder, Option<dftp_core::cluster_auth::Nonce>), String> {
        let Some(guard) = &self.guard else { return Ok((req, None)) };
        let digest = digest.ok_or("a request of a node with a cluster secret needs its body's digest")?;
        let (value, nonce) = guard.stamp("POST", path, digest);
        Ok((req.header(HEADER, value), Some(nonce)))
    }

    /// Whether the answer to our request with `nonce` is signed (when we have a secret).
    fn check_answer(
        &self,
        nonce: Option<dftp_core::cluster_auth::Nonce>,
        parts: &http::response::Parts,
        body: &[u8],
    ) -> Result<(), String> {
        let (Some(guard), Some(nonce)) = (&self.guard, nonce) else { return Ok(()) };
        guard.check_response(&parts.headers, nonce, parts.status.as_u16(), body).map_err(|e| {
            let status = parts.status;
            let why = String::from_utf8_lossy(&body[..body.len().min(200)]).trim().to_owned();
            format!("the answer ({status}: {why}) is not signed with the cluster secret: {e}")
        })
    }

    fn url(addr: &PeerAddr, path_and_query: &str) -> Result<Uri, String> {
        addr.url(path_and_query).parse().map_err(|e| format!("bad URL for {addr}: {e}"))
    }

    /// `POST /cluster/`: greets a node and returns its cluster table.
    pub async fn greet(&self, to: &PeerAddr, greeting: &Greeting) -> Result<ClusterInfo, String> {
        let form = greeting.to_form();
        let req = Request::post(Self::url(to, "/cluster/")?)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        let (req, nonce) = self.stamp(req, "/cluster/", Some(BodyDigest::of(form.as_bytes())))?;
        let req = req.body(full_body(form)).map_err(|e| e.to_string())?;
        timed(self.timeouts.greet, format!("greeting {to}"), async {
            let resp = self.client.request(req).await.map_err(|e| format!("greeting {to}: {}", with_causes(&e)))?;
            let (parts, body) = resp.into_parts();
            let status = parts.status;
            let body = Limited::new(body, MAX_CLUSTER_REPLY)
                .collect()
                .await
                .map_err(|e| format!("greeting {to}: reading the reply: {e}"))?
                .to_bytes();
            self.check_answer(nonce, &parts, &body).map_err(|e| format!("greeting {to}: {e}"))?;
            if !status.is_success() {
                return Err(format!("greeting {to}: {status}: {}", String::from_utf8_lossy(&body).trim()));
            }
            ClusterInfo::from_json(&body).map_err(|e| format!("greeting {to}: {e}"))
        })
        .await
    }

    /// `POST /digest/` ([`dftp_core::anti_entropy`]): sends a peer that speaks digests ours,
    /// and returns its answer. As small as a greeting, so with its timeout.
    pub async fn send_digest(&self, to: &PeerAddr, digest: &DigestMsg) -> Result<DigestAnswer, String> {
        let json = digest.to_json();
        let req = Request::post(Self::url(to, "/digest/")?).header(header::CONTENT_TYPE, "application/json");
        let (req, nonce) = self.stamp(req, "/digest/", Some(BodyDigest::of(&json)))?;
        let req = req.body(full_body(json)).map_err(|e| e.to_string())?;
        timed(self.timeouts.greet, format!("digest to {to}"), async {
            let resp = self.client.request(req).await.map_err(|e| format!("digest to {to}: {}", with_causes(&e)))?;
            let (parts, body) = resp.into_parts();
            let status = parts.status;
            let body = Limited::new(body, MAX_DIGEST_ANSWER)
                .collect()
                .await
                .map_err(|e| format!("digest to {to}: reading the answer: {e}"))?
                .to_bytes();
            self.check_answer(nonce, &parts, &body).map_err(|e| format!("digest to {to}: {e}"))?;
            if !status.is_success() {
                return Err(format!("digest to {to}: {status}: {}", String::from_utf8_lossy(&body).trim()));
            }
            DigestAnswer::from_json(&body).map_err(|e| format!("digest to {to}: {e}"))
        })
        .await
    }

    /// `POST /swim/`: one SWIM packet ([`dftp_core::swim`]), answered `204` with nothing to
    /// read; a lost one is SWIM's business (it probes through others, then suspects). Within the
    /// greeting timeout: a packet later than a probe period is as good as lost.
    pub async fn swim(&self, to: &PeerAddr, packet: Vec<u8>) -> Result<(), String> {
        let req = Request::post(Self::url(to, "/swim/")?).header(header::CONTENT_TYPE, "application/octet-stream");
        let (req, nonce) = self.stamp(req, "/swim/", Some(BodyDigest::of(&packet)))?;
        let req = req.body(full_body(packet)).map_err(|e| e.to_string())?;
        timed(self.timeouts.greet, format!("SWIM packet to {to}"), async {
            let resp =
                self.client.request(req).await.map_err(|e| format!("SWIM packet to {to}: {}", with_causes(&e)))?;
            let (parts, body) = resp.into_parts();
            let body = Limited::new(body, 64 << 10).collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            self.check_answer(nonce, &parts, &body).map_err(|e| format!("SWIM packet to {to}: {e}"))?;
            if !parts.status.is_success() {
                let why = String::from_utf8_lossy(&body);
                return Err(format!("SWIM packet to {to}: {}: {}", parts.status, why.trim()));
            }
            Ok(())
        })
        .await
    }

    /// `POST /update/`. An incremental update gets [`Timeouts::incremental`]; a full one, which
    /// can be large, as long as its body keeps going out, then [`Timeouts::update`] for the
    /// answer.
    pub async fn send_update(&self, to: &PeerAddr, body: UpdateBody, full: bool) -> Result<(), String> {
        let UpdateBody { body, digest } = body;
        let idle = self.timeouts.update;
        let progress = Arc::new(std::sync::Mutex::new(tokio::time::Instant::now()));
        let body = if full {
            let p = progress.clone();
            body.map_frame(move |frame| {
                *p.lock().unwrap_or_else(|e| e.into_inner()) = tokio::time::Instant::now();
                frame
            })
            .boxed_unsync()
        } else {
            body
        };
        let req = Request::post(Self::url(to, "/update/")?)
            // Exactly this: the original refuses anything else, parameters included.
            .header(header::CONTENT_TYPE, "application/json");
        let req = if full { req.extension(FullUpdate) } else { req };
        let (req, nonce) = self.stamp(req, "/update/", digest)?;
        let req = req.body(body).map_err(|e| e.to_string())?;
        let limit = if full { FULL_UPDATE_TIMEOUT } else { self.timeouts.incremental };
        let request = timed(limit, format!("update to {to}"), async {
            let resp = self.client.request(req).await.map_err(|e| format!("update to {to}: {}", with_causes(&e)))?;
            let (parts, body) = resp.into_parts();
            let status = parts.status;
            let body = Limited::new(body, 64 << 10).collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            self.check_answer(nonce, &parts, &body).map_err(|e| format!("update to {to}: {e}"))?;
            if !status.is_success() {
                return Err(format!("update to {to}: {status}: {}", String::from_utf8_lossy(&body).trim()));
            }
            Ok(())
        });
        tokio::pin!(request);
        loop {
            let deadline = *progress.lock().unwrap_or_else(|e| e.into_inner()) + idle;
            tokio::select! {
                biased;
                r = &mut request => return r,
                _ = tokio::time::sleep_until(deadline) => {
                    let last = *progress.lock().unwrap_or_else(|e| e.into_inner());
                    if last + idle <= tokio::time::Instant::now() {
                        return Err(format!("update to {to}: no progress for {idle:?}"));
                    }
                }
            }
        }
    }

    /// Sends a write on to a peer's public interface, `headers` as given (the caller picks
    /// them), with its body streamed ([`Pool::send`]).
    pub async fn send(
        &self,
        to: &PeerAddr,
        method: Method,
        path_and_query: &str,
        headers: &http::HeaderMap,
        upload: Upload,
    ) -> Result<Fetched, String> {
        self.files.send(to, &method, path_and_query, headers, upload).await
    }

    /// Sends a write without a body (DELETE, MKCOL, MOVE, COPY) on to a peer's public
    /// interface, `headers` as given. As for reads, a kept connection that fails before any of
    /// the answer arrived is tried once more on a new one: that is a connection the peer had
    /// closed, so the request never reached it (were it lost after the owner acted, the second
    /// try would find the work done: a 404 for a DELETE or a MOVE).
    pub async fn send_bodiless(
        &self,
        to: &PeerAddr,
        method: Method,
        path_and_query: &str,
        headers: &http::HeaderMap,
    ) -> Result<Fetched, String> {
        self.files.fetch(to, &method, path_and_query, headers).await
    }

    /// Fetches `path_and_query` from a peer's public interface, passing the request headers
    /// that matter for a file on: range and validators, and the client's `Authorization`, so
    /// that the owner checks the client against its own rules (a node cannot be used to get
    /// around another's).
    pub async fn fetch(
        &self,
        to: &PeerAddr,
        method: Method,
        path_and_query: &str,
        headers: &http::HeaderMap,
    ) -> Result<Fetched, String> {
        let mut passed = http::HeaderMap::new();
        for name in [
            header::RANGE,
            header::IF_RANGE,
            header::IF_NONE_MATCH,
            header::IF_MODIFIED_SINCE,
            header::IF_MATCH,
            header::IF_UNMODIFIED_SINCE,
            header::AUTHORIZATION,
        ] {
            for v in headers.get_all(&name) {
                passed.append(name.clone(), v.clone());
            }
        }
        self.files.fetch(to, &method, path_and_query, &passed).await
    }
}
