//! The management interface peers talk to: `/join/`, `/cluster/`, `/update/`, as the original
//! nodes speak it, with bounded bodies and a 400 with the reason for bad input; and `/metrics`
//! for Prometheus ([`crate::metrics`]).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use dftp_core::{parse_join_form, Event, Greeting, Update, UpdateParser, WireError};
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use smol_str::SmolStr;

use crate::blocking::{Blocking, Consumer};
use crate::body::{Body, BoxError};
use crate::driver::Handle;
use crate::metrics::{self, Direction, Interface};
use crate::respond::{method_not_allowed, text, with_type};
use crate::server::Handler;

/// Forms are tiny; anything larger is not from a dftp node.
const MAX_FORM: usize = 64 << 10;

pub fn handler(handle: Handle, max_update_bytes: u64) -> Handler {
    let metrics = handle.metrics().clone();
    let inner: Handler = Arc::new(move |req, peer| {
        let handle = handle.clone();
        Box::pin(async move { route(handle, max_update_bytes, req, peer).await })
    });
    metrics::instrument(metrics, Interface::Mgmt, inner)
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

async fn route(handle: Handle, max_update: u64, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    match req.uri().path() {
        "/join/" | "/join" => join(handle, req).await,
        "/cluster/" | "/cluster" => cluster(handle, req, peer).await,
        "/update/" | "/update" => update(handle, max_update, req).await,
        "/metrics" => metrics_page(&handle, &req),
        _ => text(StatusCode::NOT_FOUND, "not found: the management API has /join/, /cluster/, /update/ and /metrics"),
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

/// Reads a whole body of at most `limit` bytes.
async fn read_body(req: Request<Incoming>, limit: usize) -> Result<Bytes, Response<Body>> {
    if declares_more_than(&req, limit) {
        return Err(too_large(limit));
    }
    Limited::new(req.into_body(), limit).collect().await.map(|b| b.to_bytes()).map_err(|e| body_error(e, limit))
}

/// 413, with `Connection: close`: the rest of the body is not read, so the connection cannot
/// carry another request, and a client must not pick it from its pool for the next one (it
/// would find it closed under it).
fn too_large(limit: usize) -> Response<Body> {
    let mut resp = text(StatusCode::PAYLOAD_TOO_LARGE, format!("the body is larger than {limit} bytes"));
    resp.headers_mut().insert(header::CONNECTION, http::HeaderValue::from_static("close"));
    resp
}

/// Form fields from the query string and the body together, as Go's `FormValue` sees them.
async fn form(req: Request<Incoming>) -> Result<Vec<u8>, Response<Body>> {
    let query = req.uri().query().unwrap_or("").as_bytes().to_vec();
    let body = read_body(req, MAX_FORM).await?;
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

async fn join(handle: Handle, req: Request<Incoming>) -> Response<Body> {
    if req.method() != Method::POST {
        return method_not_allowed("POST", "Use POST /join/?peer=ip:port");
    }
    let form = match form(req).await {
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

async fn cluster(handle: Handle, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    // Like the original, any method but POST reads the table.
    if req.method() != Method::POST {
        return cluster_json(&handle.snapshot());
    }
    let form = match form(req).await {
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
/// Gives the update and the bytes of its body.
async fn parse_update(
    req: Request<Incoming>,
    limit: usize,
    blocking: Blocking,
) -> Result<(Update, u64), Response<Body>> {
    if declares_more_than(&req, limit) {
        return Err(too_large(limit));
    }
    let mut body = Limited::new(req.into_body(), limit);
    let mut parsing = blocking.feed(UpdateParser::new());
    let mut bytes = 0;
    while let Some(chunk) = next_chunk(&mut body, limit).await? {
        bytes += chunk.len() as u64;
        if !parsing.push(chunk).await {
            break; // the parser stopped at an error
        }
    }
    match parsing.finish().await {
        Ok(update) => Ok((update, bytes)),
        Err(Some(e)) => Err(text(StatusCode::BAD_REQUEST, e.to_string())),
        Err(None) => Err(text(StatusCode::INTERNAL_SERVER_ERROR, "the update could not be parsed")),
    }
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

/// The next data of a body, `None` at its end.
async fn next_chunk(body: &mut Limited<Incoming>, limit: usize) -> Result<Option<Bytes>, Response<Body>> {
    loop {
        match body.frame().await {
            None => return Ok(None),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    return Ok(Some(data));
                }
            }
            Some(Err(e)) => return Err(body_error(e, limit)),
        }
    }
}

async fn update(handle: Handle, max_update: u64, req: Request<Incoming>) -> Response<Body> {
    if req.method() != Method::POST {
        return method_not_allowed("POST", "Use POST /update/");
    }
    let metrics = handle.metrics().clone();
    if !is_json(&req) {
        metrics.update_failed(Direction::Received);
        return text(StatusCode::BAD_REQUEST, "Content-Type must be application/json");
    }
    let limit = usize::try_from(max_update).unwrap_or(usize::MAX);
    let (update, bytes) = match parse_update(req, limit, handle.blocking()).await {
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
