//! The management interface peers talk to: `/join/`, `/cluster/`, `/update/`, as the original
//! nodes speak it, with bounded bodies and a 400 with the reason for bad input; and `/metrics`
//! for Prometheus ([`crate::metrics`]).
//!
//! With a cluster secret ([`Guard`]), every request but `GET /metrics` needs a good
//! `X-Dftp-Auth` ([`Check`]): its form is checked before the body is read, its tag once the body
//! is in and before the node hears of it, and every answer is signed. A refused request answers
//! `401` and changes nothing. `/metrics` changes nothing and a Prometheus scraper cannot sign,
//! so it is read without a tag (the README's "Security" says so).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use dftp_core::anti_entropy::{DigestMsg, MAX_DIGEST_BODY};
use dftp_core::cluster_auth::{BodyDigest, BodyHasher, Refusal, Stamp};
use dftp_core::pace::Pace;
use dftp_core::{parse_join_form, Event, Greeting, Update, UpdateParser, UpdateSenders, WireError};
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Limited;
use hyper::body::Incoming;
use smol_str::SmolStr;

use crate::blocking::{Blocking, Consumer};
use crate::body::{next_paced, Body, BoxError, TooSlow};
use crate::cluster_secret::{unauthorized, Guard, Refused};
use crate::driver::{Answer, Handle};
use crate::metrics::{self, Direction, Interface};
use crate::respond::{method_not_allowed, no_content, text, with_type};
use crate::server::Handler;

/// Forms are tiny; anything larger is not from a dftp node.
const MAX_FORM: usize = 64 << 10;

/// How long an update waits for one of the `--max-concurrent-updates` parses before it is
/// answered 503 (its sender then sends a full update later).
const UPDATE_QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

pub fn handler(
    handle: Handle,
    max_update_bytes: u64,
    max_concurrent_updates: u32,
    pace: Pace,
    guard: Option<Arc<Guard>>,
) -> Handler {
    let metrics = handle.metrics().clone();
    let parses = Arc::new(tokio::sync::Semaphore::new(max_concurrent_updates as usize));
    let inner: Handler = Arc::new(move |req, peer| {
        let (handle, guard) = (handle.clone(), guard.clone());
        let limits = Limits { max_update: max_update_bytes, pace, parses: parses.clone() };
        Box::pin(async move {
            let Some(guard) = guard.filter(|_| !is_metrics(&req)) else {
                return route(handle, limits, req, peer, None).await;
            };
            let stamp = match guard.precheck(req.headers()) {
                Ok(stamp) => stamp,
                Err(refusal) => {
                    guard.log_refusal(
                        Refused::Request,
                        format_args!("refused {} {} from {peer}: {refusal}", req.method(), req.uri()),
                    );
                    return unauthorized(&refusal);
                }
            };
            let nonce = stamp.nonce;
            let path = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
            let check = Check { guard: guard.clone(), stamp, method: req.method().to_string(), path, peer };
            let resp = route(handle, limits, req, peer, Some(check)).await;
            guard.sign_response(resp, nonce).await
        })
    });
    metrics::instrument(metrics, Interface::Mgmt, inner)
}

/// `GET` or `HEAD /metrics`, read without a tag (see the module's doc).
fn is_metrics(req: &Request<Incoming>) -> bool {
    req.uri().path() == "/metrics" && (req.method() == Method::GET || req.method() == Method::HEAD)
}

/// A request whose stamp passed [`Guard::precheck`], to verify once its body is in.
struct Check {
    guard: Arc<Guard>,
    stamp: Stamp,
    method: String,
    path: String,
    peer: SocketAddr,
}

/// Verifies the request's tag over its body (`check`: there is a cluster secret); why not, when
/// it is not good (answered with [`unauthorized`]).
fn verify(check: &Option<Check>, body: BodyDigest) -> Result<(), Refusal> {
    let Some(c) = check else { return Ok(()) };
    c.guard.verify(&c.stamp, &c.method, &c.path, body).inspect_err(|refusal| {
        c.guard
            .log_refusal(Refused::Request, format_args!("refused {} {} from {}: {refusal}", c.method, c.path, c.peer));
    })
}

/// The host part of a connection's address, as it goes into a `host:port` string.
pub fn host_of(peer: SocketAddr) -> SmolStr {
    match peer {
        SocketAddr::V4(a) => a.ip().to_string().into(),
        SocketAddr::V6(a) => match a.ip().to_ipv4_mapped() {
            Some(v4) => v4.to_string().into(),
            None => format!("[{}]", a.ip()).into(),
        },
    }
}

/// What bounds the bodies of management requests.
#[derive(Clone)]
struct Limits {
    /// `--max-update-bytes`.
    max_update: u64,
    /// `--body-min-rate`, for update bodies.
    pace: Pace,
    /// `--max-concurrent-updates`: each update body holds one while it is read and parsed, so
    /// that a flood of bodies cannot hold a parse (and its records) each at once.
    parses: Arc<tokio::sync::Semaphore>,
}

async fn route(
    handle: Handle,
    limits: Limits,
    req: Request<Incoming>,
    peer: SocketAddr,
    check: Option<Check>,
) -> Response<Body> {
    match req.uri().path() {
        "/join/" | "/join" => join(handle, req, check).await,
        "/cluster/" | "/cluster" => cluster(handle, req, peer, check).await,
        "/update/" | "/update" => update(handle, limits, req, check).await,
        "/digest/" | "/digest" => digest(handle, req, check).await,
        "/swim/" | "/swim" => swim(handle, req, peer, check).await,
        "/metrics" => metrics_page(&handle, &req),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: the management API has /join/, /cluster/, /update/, /digest/, /swim/ and /metrics",
        ),
    }
}

/// Whether `req` says, in its Content-Length, that its body is over `limit`: refused at once.
/// A body that only turns out longer is cut off by `Limited` (see [`body_error`]).
fn declares_more_than(req: &Request<Incoming>, limit: usize) -> bool {
    let len = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    len.is_some_and(|len| len > limit as u64)
}

/// The answer to a failure reading a body through `Limited`.
fn body_error(e: BoxError, limit: usize) -> Response<Body> {
    if e.is::<http_body_util::LengthLimitError>() {
        too_large(limit)
    } else {
        text(StatusCode::BAD_REQUEST, format!("could not read the body: {e}"))
    }
}

/// Reads a whole body of at most `limit` bytes (a form: 64 KiB at most, so it gets the default
/// pace, which gives it 10 s and a second per KiB).
pub(crate) async fn read_body(req: Request<Incoming>, limit: usize) -> Result<Bytes, Response<Body>> {
    if declares_more_than(&req, limit) {
        return Err(too_large(limit));
    }
    let mut body = Limited::new(req.into_body(), limit);
    let (pace, started) = (Pace::default(), tokio::time::Instant::now());
    let mut got = Vec::new();
    while let Some(chunk) = next_chunk(&mut body, limit, &pace, started, got.len() as u64).await? {
        got.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(got))
}

/// 413, with `Connection: close`: the rest of the body is not read, so the connection cannot
/// carry another request, and a client must not pick it from its pool for the next one (it
/// would find it closed under it).
fn too_large(limit: usize) -> Response<Body> {
    closing(text(StatusCode::PAYLOAD_TOO_LARGE, format!("the body is larger than {limit} bytes")))
}

/// Form fields from the query string and the body together, as Go's `FormValue` sees them, once
/// the request is verified (the query is in the signed path, the body in its digest).
async fn form(req: Request<Incoming>, check: &Option<Check>) -> Result<Vec<u8>, Response<Body>> {
    let query = req.uri().query().unwrap_or("").as_bytes().to_vec();
    let body = read_body(req, MAX_FORM).await?;
    verify(check, BodyDigest::of(&body)).map_err(|r| unauthorized(&r))?;
    let mut all = body.to_vec();
    if !query.is_empty() {
        if !all.is_empty() {
            all.push(b'&');
        }
        all.extend_from_slice(&query);
    }
    Ok(all)
}

/// `GET /metrics`: this node's metrics in Prometheus' text format.
fn metrics_page(handle: &Handle, req: &Request<Incoming>) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return method_not_allowed("GET, HEAD", "Use GET /metrics");
    }
    let page = handle.metrics().render(&handle.snapshot());
    with_type(StatusCode::OK, metrics::CONTENT_TYPE, page)
}

async fn join(handle: Handle, req: Request<Incoming>, check: Option<Check>) -> Response<Body> {
    if req.method() != Method::POST {
        return method_not_allowed("POST", "Use POST /join/?peer=ip:port");
    }
    let form = match form(req, &check).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    match parse_join_form(&form) {
        Ok(peers) => {
            let listed = peers.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
            tracing::info!("asked to join {listed}");
            handle.send(Event::JoinRequested(peers)).await;
            text(StatusCode::OK, "ok")
        }
        Err(e) => text(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

fn cluster_json(snapshot: &dftp_core::Snapshot) -> Response<Body> {
    with_type(StatusCode::OK, "application/json", snapshot.cluster().to_json())
}

async fn cluster(handle: Handle, req: Request<Incoming>, peer: SocketAddr, check: Option<Check>) -> Response<Body> {
    // Like the original, any method but POST reads the table.
    if req.method() != Method::POST {
        if check.is_some() {
            let body = match read_body(req, MAX_FORM).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            if let Err(r) = verify(&check, BodyDigest::of(&body)) {
                return unauthorized(&r);
            }
        }
        return cluster_json(&handle.snapshot());
    }
    let form = match form(req, &check).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let greeting = match Greeting::from_form(&form) {
        Ok(g) => g,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let event = Event::GreetingReceived { greeting, from_host: Some(host_of(peer)) };
    match handle.ask(event).await {
        Some(answer) => match answer.refused {
            Some(reason) => text(StatusCode::BAD_REQUEST, reason),
            None => cluster_json(&answer.snapshot),
        },
        None => text(StatusCode::SERVICE_UNAVAILABLE, "the node is shutting down"),
    }
}

/// `POST /digest/` ([`dftp_core::anti_entropy`]): a peer's digest of its view, answered with
/// how the view held here compares. Bounded (413), tagged like every management request (401),
/// JSON (400 with the reason otherwise), from a live peer only (403); it changes nothing here.
async fn digest(handle: Handle, req: Request<Incoming>, check: Option<Check>) -> Response<Body> {
    if req.method() != Method::POST {
        return method_not_allowed("POST", "Use POST /digest/ with a JSON digest");
    }
    if !is_json(&req) {
        return text(StatusCode::BAD_REQUEST, "Content-Type must be application/json");
    }
    let body = match read_body(req, MAX_DIGEST_BODY).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err(r) = verify(&check, BodyDigest::of(&body)) {
        return unauthorized(&r);
    }
    let msg = match DigestMsg::from_json(&body) {
        Ok(m) => m,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    match handle.ask(Event::DigestReceived(msg)).await {
        Some(Answer { refused: Some(reason), .. }) => text(StatusCode::FORBIDDEN, reason),
        Some(Answer { digest: Some(answer), .. }) => {
            handle.metrics().digest(Direction::Received, Some(&answer));
            with_type(StatusCode::OK, "application/json", answer.to_json())
        }
        Some(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "the node gave no answer to the digest"),
        None => text(StatusCode::SERVICE_UNAVAILABLE, "the node is shutting down"),
    }
}

/// `POST /swim/`: one SWIM packet of a peer ([`dftp_core::swim`]), at most
/// [`dftp_core::swim::MAX_PACKET`] bytes, verified like every management request; `204`, or
/// `400` with the reason (not a packet, not from a peer, a node without SWIM).
async fn swim(handle: Handle, req: Request<Incoming>, peer: SocketAddr, check: Option<Check>) -> Response<Body> {
    if req.method() != Method::POST {
        return method_not_allowed("POST", "Use POST /swim/ with a SWIM packet");
    }
    let packet = match read_body(req, dftp_core::swim::MAX_PACKET).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err(r) = verify(&check, BodyDigest::of(&packet)) {
        return unauthorized(&r);
    }
    let event = Event::SwimReceived { packet: packet.to_vec(), from_host: Some(host_of(peer)) };
    match handle.ask(event).await {
        Some(Answer { refused: Some(reason), .. }) => text(StatusCode::BAD_REQUEST, reason),
        Some(_) => no_content(),
        None => text(StatusCode::SERVICE_UNAVAILABLE, "the node is shutting down"),
    }
}

/// `application/json`, with or without parameters.
fn is_json(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// Reads and parses an update body at once: a full update of a large tree is tens of megabytes
/// of JSON, parsed chunk by chunk as it arrives (on a blocking thread, off the async ones) rather
/// than after all of it has been buffered.
///
/// With a cluster secret, the body's digest is taken as it goes by, and the update is handed on
/// only when the tag over it is good. Gives the update and the bytes of its body.
///
/// The parser admits only the records of the senders the node would take an update from now
/// ([`dftp_core::Snapshot::update_senders`]): a stranger's body is refused (403) at its first
/// record, without reading the rest.
async fn parse_update(
    req: Request<Incoming>,
    limit: usize,
    pace: Pace,
    senders: UpdateSenders,
    blocking: Blocking,
    check: &Option<Check>,
) -> Result<(Update, u64), Response<Body>> {
    if declares_more_than(&req, limit) {
        return Err(too_large(limit));
    }
    let mut body = Limited::new(req.into_body(), limit);
    let mut parsing = Some(blocking.feed(UpdateParser::admitting(senders)));
    let mut digest = check.as_ref().map(|_| BodyHasher::new());
    let mut failed = None;
    let started = tokio::time::Instant::now();
    let mut received = 0u64;
    loop {
        // The parser may stop (a stranger's record, bad JSON) while no more bytes come: that is
        // seen at once, not at the next chunk.
        let next = match &parsing {
            Some(feed) => tokio::select! {
                () = feed.stopped() => None,
                chunk = next_chunk(&mut body, limit, &pace, started, received) => Some(chunk?),
            },
            None => Some(next_chunk(&mut body, limit, &pace, started, received).await?),
        };
        let chunk = match next {
            Some(Some(chunk)) => Some(chunk),
            Some(None) => break,
            None => None,
        };
        if let Some(chunk) = &chunk {
            received += chunk.len() as u64;
            if let Some(d) = &mut digest {
                d.update(chunk);
            }
        }
        let stopped = match (&mut parsing, chunk) {
            (Some(feed), Some(chunk)) => !feed.push(chunk).await,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if stopped {
            let error = match parsing.take() {
                Some(feed) => feed.finish().await.err().flatten(),
                None => None,
            };
            if let Some(WireError::Stranger(owner)) = &error {
                tracing::debug!("update refused after {received} bytes: a record of {owner}, not a peer");
                return Err(closing(parse_failure(error)));
            }
            failed = Some(parse_failure(error));
            if digest.is_none() {
                break;
            }
        }
    }
    if let Some(d) = digest {
        verify(check, d.finish()).map_err(|r| unauthorized(&r))?;
    }
    if let Some(resp) = failed {
        return Err(resp);
    }
    match parsing.expect("the parse failed or is still on").finish().await {
        Ok(update) => Ok((update, received)),
        Err(error) => Err(parse_failure(error)),
    }
}

/// The answer to an update body the parser refused (`None`: the parse itself broke).
fn parse_failure(error: Option<WireError>) -> Response<Body> {
    match error {
        Some(e @ WireError::Stranger(_)) => text(StatusCode::FORBIDDEN, e.to_string()),
        Some(e) => text(StatusCode::BAD_REQUEST, e.to_string()),
        None => text(StatusCode::INTERNAL_SERVER_ERROR, "the update could not be parsed"),
    }
}

/// `resp` with `Connection: close`: the rest of the body is not read.
fn closing(mut resp: Response<Body>) -> Response<Body> {
    resp.headers_mut().insert(header::CONNECTION, http::HeaderValue::from_static("close"));
    resp
}

impl Consumer for UpdateParser {
    type Output = Update;
    type Error = WireError;

    fn push(&mut self, chunk: &[u8]) -> Result<(), WireError> {
        UpdateParser::push(self, chunk)
    }

    fn finish(self) -> Result<Update, WireError> {
        UpdateParser::finish(self)
    }
}

/// The next data of a body, `None` at its end; 408 when it comes slower than `pace` allows.
async fn next_chunk(
    body: &mut Limited<Incoming>,
    limit: usize,
    pace: &Pace,
    started: tokio::time::Instant,
    received: u64,
) -> Result<Option<Bytes>, Response<Body>> {
    loop {
        match next_paced(body, pace, started, received).await {
            Err(TooSlow(why)) => {
                tracing::debug!("management request body: {why}");
                let mut resp = text(StatusCode::REQUEST_TIMEOUT, why);
                resp.headers_mut().insert(header::CONNECTION, http::HeaderValue::from_static("close"));
                return Err(resp);
            }
            Ok(None) => return Ok(None),
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    return Ok(Some(data));
                }
            }
            Ok(Some(Err(e))) => return Err(body_error(e, limit)),
        }
    }
}

async fn update(handle: Handle, limits: Limits, req: Request<Incoming>, check: Option<Check>) -> Response<Body> {
    if req.method() != Method::POST {
        return method_not_allowed("POST", "Use POST /update/");
    }
    let metrics = handle.metrics().clone();
    if !is_json(&req) {
        metrics.update_failed(Direction::Received);
        return text(StatusCode::BAD_REQUEST, "Content-Type must be application/json");
    }
    let limit = usize::try_from(limits.max_update).unwrap_or(usize::MAX);
    let _parse = match tokio::time::timeout(UPDATE_QUEUE_WAIT, limits.parses.acquire()).await {
        Ok(Ok(permit)) => permit,
        _ => {
            metrics.update_failed(Direction::Received);
            tracing::warn!(
                "update refused: {} others were being parsed for {}s (--max-concurrent-updates)",
                limits.parses.available_permits(),
                UPDATE_QUEUE_WAIT.as_secs()
            );
            let mut resp = closing(text(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many updates are being parsed at once (--max-concurrent-updates); send it again later",
            ));
            resp.headers_mut().insert(header::RETRY_AFTER, http::HeaderValue::from_static("10"));
            return resp;
        }
    };
    let senders = handle.snapshot().update_senders();
    let (update, bytes) = match parse_update(req, limit, limits.pace, senders, handle.blocking(), &check).await {
        Ok(u) => u,
        Err(r) => {
            metrics.update_failed(Direction::Received);
            return r;
        }
    };
    let (full, records) = (update.full, update.files.len());
    let large = records > crate::memory::TRIM_ABOVE;
    match handle.ask(Event::UpdateReceived(update)).await {
        Some(_) => {
            metrics.update(Direction::Received, full, records, bytes);
            if large {
                crate::memory::trim(handle.blocking()).await;
            }
            text(StatusCode::OK, "ok")
        }
        None => text(StatusCode::SERVICE_UNAVAILABLE, "the node is shutting down"),
    }
}
