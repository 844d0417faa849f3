//! The node's metrics, served as `GET /metrics` on the management interface in Prometheus' text
//! format (version 0.0.4).
//!
//! One [`Metrics`] (and registry) per node, made with its driver and reached through its
//! [`Handle`](crate::driver::Handle): the simulator runs many nodes in one process, so nothing
//! here is global. Counters move where the thing happens (the HTTP servers, the driver's update
//! sends, `/update/`, the watcher, the FTP accept loop); what a snapshot already knows (peers
//! by liveness, paths by owner) is read from the latest snapshot at each scrape.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use dftp_core::{Liveness, Snapshot};
use http::{Method, StatusCode};
use hyper::body::{Frame, SizeHint};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use crate::body::{Body, BoxError};
use crate::server::Handler;
use crate::traffic::Traffic;

/// The `Content-Type` of `GET /metrics`.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Which interface a request came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interface {
    /// The public HTTP interface.
    Http,
    /// The management interface peers talk to.
    Mgmt,
    /// FTP: each command is a request, its verb the method, its final reply code the status.
    Ftp,
}

impl Interface {
    fn label(self) -> &'static str {
        match self {
            Interface::Http => "http",
            Interface::Mgmt => "mgmt",
            Interface::Ftp => "ftp",
        }
    }
}

/// Marks an answer whose body is a file fetched from its owner and passed on (set by
/// `public/files.rs`): its bytes count as proxied.
#[derive(Clone, Copy, Debug)]
pub struct Proxied;

/// Which way an update went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Sent,
    Received,
}

impl Direction {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Direction::Sent => "sent",
            Direction::Received => "received",
        }
    }
}

/// What a full or partial rescan of the local tree covered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rescan {
    /// Some paths a notification named.
    Paths,
    /// The whole served root.
    All,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    interface: &'static str,
    method: &'static str,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InterfaceLabel {
    interface: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SentLabels {
    interface: &'static str,
    source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LivenessLabel {
    liveness: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OwnerLabel {
    owner: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpdateLabels {
    direction: &'static str,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabel {
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DigestLabels {
    direction: &'static str,
    answer: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScopeLabel {
    scope: &'static str,
}

fn duration_histogram() -> Histogram {
    // 0.5 ms to about 2 minutes: a cached listing to a large proxied file.
    Histogram::new(exponential_buckets(0.0005, 4.0, 10))
}

/// The metrics of one node.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<InterfaceLabel, Histogram, fn() -> Histogram>,
    sent_bytes: Family<SentLabels, Counter>,
    peers: Family<LivenessLabel, Gauge>,
    tree_paths: Family<OwnerLabel, Gauge>,
    tree_bytes: Family<OwnerLabel, Gauge>,
    updates: Family<UpdateLabels, Counter>,
    update_records: Family<UpdateLabels, Counter>,
    update_bytes: Family<UpdateLabels, Counter>,
    update_failures: Family<DirectionLabel, Counter>,
    digests: Family<DigestLabels, Counter>,
    watcher_events: Counter,
    rescans: Family<ScopeLabel, Counter>,
    ftp_sessions: Gauge,
    traffic: Traffic,
    /// One scrape at a time: each sets the snapshot's gauges, then reads them all.
    scrape: Mutex<()>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::with_traffic(Traffic::default())
    }

    /// The metrics of a node whose cluster traffic `traffic` counts (its [`PeerClient`]'s).
    ///
    /// [`PeerClient`]: crate::peers::PeerClient
    pub fn with_traffic(traffic: Traffic) -> Metrics {
        let mut registry = Registry::with_prefix("dftp");
        let m = Metrics {
            requests: Family::default(),
            durations: Family::new_with_constructor(duration_histogram as fn() -> Histogram),
            sent_bytes: Family::default(),
            peers: Family::default(),
            tree_paths: Family::default(),
            tree_bytes: Family::default(),
            updates: Family::default(),
            update_records: Family::default(),
            update_bytes: Family::default(),
            update_failures: Family::default(),
            digests: Family::default(),
            watcher_events: Counter::default(),
            rescans: Family::default(),
            ftp_sessions: Gauge::default(),
            scrape: Mutex::new(()),
            registry: Registry::default(),
            traffic,
        };
        let r = &mut registry;
        r.register(
            "requests",
            "Requests answered, by interface (http, mgmt, ftp), method (for ftp: the command) and status class (for ftp: of the final reply)",
            m.requests.clone(),
        );
        r.register_with_unit(
            "request_duration",
            "Time from a request's head to its answer's head, by interface",
            Unit::Seconds,
            m.durations.clone(),
        );
        r.register_with_unit(
            "sent",
            "Bytes sent to clients, by interface (http: the public interface's answer bodies; ftp: files sent by RETR) and source (local: from here; proxied: a file fetched from its owner and passed on)",
            Unit::Bytes,
            m.sent_bytes.clone(),
        );
        r.register("peers", "Peers this node knows, by liveness (alive, lost)", m.peers.clone());
        r.register(
            "tree_paths",
            "Paths (files and directories) in the tree, by the node that holds them",
            m.tree_paths.clone(),
        );
        r.register_with_unit(
            "tree_file",
            "Sizes of the files in the tree, by the node that holds them",
            Unit::Bytes,
            m.tree_bytes.clone(),
        );
        r.register(
            "updates",
            "Updates delivered to or applied from peers, by direction and kind (full, incremental)",
            m.updates.clone(),
        );
        r.register(
            "update_records",
            "File records in the updates counted by dftp_updates_total",
            m.update_records.clone(),
        );
        r.register_with_unit(
            "update",
            "Body bytes of the updates counted by dftp_updates_total",
            Unit::Bytes,
            m.update_bytes.clone(),
        );
        r.register(
            "update_failures",
            "Updates that failed: sent ones the peer did not take, received ones refused (bad or too large)",
            m.update_failures.clone(),
        );
        r.register(
            "digests",
            "Digests of anti-entropy sent to or answered for peers, by direction and answer (in-sync, behind, differs, failed)",
            m.digests.clone(),
        );
        r.register(
            "watcher_events",
            "Change notifications from the local file-system watcher",
            m.watcher_events.clone(),
        );
        r.register("rescans", "Rescans of the local tree, by scope (paths, all)", m.rescans.clone());
        r.register("ftp_sessions_open", "FTP control connections open now", m.ftp_sessions.clone());
        m.traffic.register(r);
        Metrics { registry, ..m }
    }

    /// The cluster traffic counters (read by the simulator).
    pub fn traffic(&self) -> &Traffic {
        &self.traffic
    }

    /// Counts an answered HTTP request.
    pub fn request(&self, interface: Interface, method: &Method, status: StatusCode, took: Duration) {
        self.count(interface, method_label(method), status.as_u16().into(), took);
    }

    /// Counts an FTP command by how it ended: `verb` is one of the fixed set libunftp's gate
    /// names (or `OTHER`), so clients cannot make series without end; `code` is the final reply
    /// (a transfer's `226` or error, not its `150`).
    pub fn ftp_command(&self, verb: &'static str, code: u32, took: Duration) {
        self.count(Interface::Ftp, verb, code, took);
    }

    fn count(&self, interface: Interface, method: &'static str, code: u32, took: Duration) {
        let labels = RequestLabels { interface: interface.label(), method, status: code_class(code) };
        self.requests.get_or_create(&labels).inc();
        self.durations.get_or_create(&InterfaceLabel { interface: interface.label() }).observe(took.as_secs_f64());
    }

    fn sent_counter(&self, interface: Interface, proxied: bool) -> Counter {
        let source = if proxied { "proxied" } else { "local" };
        self.sent_bytes.get_or_create_owned(&SentLabels { interface: interface.label(), source })
    }

    /// Counts the bytes of a file an FTP `RETR` sent whole (or from its `REST` offset).
    pub fn ftp_sent(&self, proxied: bool, bytes: u64) {
        self.sent_counter(Interface::Ftp, proxied).inc_by(bytes);
    }

    /// Counts an update that went through: delivered to a peer, or applied from one.
    pub fn update(&self, direction: Direction, full: bool, records: usize, bytes: u64) {
        let labels = UpdateLabels { direction: direction.label(), kind: if full { "full" } else { "incremental" } };
        self.updates.get_or_create(&labels).inc();
        self.update_records.get_or_create(&labels).inc_by(records as u64);
        self.update_bytes.get_or_create(&labels).inc_by(bytes);
    }

    /// Counts a digest sent (and how the peer answered) or answered (and how).
    pub fn digest(&self, direction: Direction, answer: Option<&dftp_core::anti_entropy::DigestAnswer>) {
        use dftp_core::anti_entropy::DigestAnswer;
        let answer = match answer {
            Some(DigestAnswer::InSync) => "in-sync",
            Some(DigestAnswer::Behind) => "behind",
            Some(DigestAnswer::Differs { .. }) => "differs",
            None => "failed",
        };
        self.digests.get_or_create(&DigestLabels { direction: direction.label(), answer }).inc();
    }

    /// Counts an update that failed.
    pub fn update_failed(&self, direction: Direction) {
        self.update_failures.get_or_create(&DirectionLabel { direction: direction.label() }).inc();
    }

    /// Counts notifications of the watcher.
    pub fn watcher_events(&self, n: usize) {
        self.watcher_events.inc_by(n as u64);
    }

    pub fn rescan(&self, scope: Rescan) {
        let scope = match scope {
            Rescan::Paths => "paths",
            Rescan::All => "all",
        };
        self.rescans.get_or_create(&ScopeLabel { scope }).inc();
    }

    /// Counts an FTP session open until the guard is dropped.
    pub fn ftp_session(&self) -> SessionGuard {
        self.ftp_sessions.inc();
        SessionGuard(self.ftp_sessions.clone())
    }

    /// The text of `GET /metrics`, with the gauges read from `snapshot`.
    pub fn render(&self, snapshot: &Snapshot) -> String {
        let _one = self.scrape.lock().unwrap_or_else(|e| e.into_inner());
        let (mut alive, mut lost) = (0, 0);
        for m in snapshot.members().iter().filter(|m| !m.is_me) {
            match m.liveness {
                Liveness::Alive => alive += 1,
                Liveness::Lost { .. } => lost += 1,
            }
        }
        self.peers.get_or_create(&LivenessLabel { liveness: "alive" }).set(alive);
        self.peers.get_or_create(&LivenessLabel { liveness: "lost" }).set(lost);
        // Every member, and any other name that still holds paths; a forgotten node's series go.
        self.tree_paths.clear();
        self.tree_bytes.clear();
        let members: Vec<&str> = snapshot.members().iter().map(|m| m.name.as_str()).collect();
        for (owner, held) in snapshot.holdings() {
            if held.paths == 0 && !members.contains(&owner.as_str()) {
                continue;
            }
            let label = OwnerLabel { owner: owner.to_string() };
            self.tree_paths.get_or_create(&label).set(clamp(held.paths));
            self.tree_bytes.get_or_create(&label).set(clamp(held.bytes));
        }
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            .expect("writing to a String does not fail");
        out
    }
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Keeps an FTP session counted in `dftp_ftp_sessions_open` while it lives.
pub struct SessionGuard(Gauge);

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The status label of a code: its class, `2xx` to `5xx` (few series, and what alerts look at).
pub fn status_class(status: StatusCode) -> &'static str {
    code_class(status.as_u16().into())
}

/// The class of an HTTP status or FTP reply code (both are three digits, classed alike).
fn code_class(code: u32) -> &'static str {
    match code {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// The method label: the methods the node answers, and `other` for the rest, so that a client
/// inventing methods cannot make series without end.
pub fn method_label(method: &Method) -> &'static str {
    const KNOWN: [&str; 13] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "MKCOL", "COPY", "MOVE", "PROPFIND", "TRACE",
        "CONNECT",
    ];
    KNOWN.iter().find(|k| **k == method.as_str()).copied().unwrap_or("other")
}

/// Counts the requests `inner` answers on `interface`, their durations and (on the public
/// interface) the bytes of their bodies as they go out.
pub fn instrument(metrics: Arc<Metrics>, interface: Interface, inner: Handler) -> Handler {
    Arc::new(move |req, peer| {
        let method = req.method().clone();
        let metrics = metrics.clone();
        let answer = inner(req, peer);
        Box::pin(async move {
            // tokio's clock, which the simulator controls.
            let started = tokio::time::Instant::now();
            let resp = answer.await;
            metrics.request(interface, &method, resp.status(), started.elapsed());
            if interface != Interface::Http {
                return resp;
            }
            let counter = metrics.sent_counter(interface, resp.extensions().get::<Proxied>().is_some());
            resp.map(|body| http_body_util::BodyExt::boxed_unsync(Counted { inner: body, counter }))
        })
    })
}

/// A body that counts its data as it passes, and says what the body it wraps says of its size
/// (so hyper still writes a `Content-Length` where it would have).
struct Counted {
    inner: Body,
    counter: Counter,
}

impl hyper::body::Body for Counted {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.counter.inc_by(data.len() as u64);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes() {
        assert_eq!(status_class(StatusCode::CONTINUE), "1xx");
        assert_eq!(status_class(StatusCode::OK), "2xx");
        assert_eq!(status_class(StatusCode::PARTIAL_CONTENT), "2xx");
        assert_eq!(status_class(StatusCode::NOT_MODIFIED), "3xx");
        assert_eq!(status_class(StatusCode::NOT_FOUND), "4xx");
        assert_eq!(status_class(StatusCode::LOOP_DETECTED), "5xx");
        assert_eq!(status_class(StatusCode::from_u16(599).unwrap()), "5xx");
    }

    #[test]
    fn invented_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"MKCOL").unwrap()), "MKCOL");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
        assert_eq!(method_label(&Method::from_bytes(b"get").unwrap()), "other");
    }

    #[test]
    fn counters_render_with_conventional_names() {
        let m = Metrics::new();
        m.request(Interface::Http, &Method::GET, StatusCode::OK, Duration::from_millis(3));
        m.update(Direction::Sent, true, 4, 100);
        m.update_failed(Direction::Received);
        let session = m.ftp_session();
        let text = {
            let mut out = String::new();
            prometheus_client::encoding::prometheus_text::encode(&mut out, &m.registry).unwrap();
            out
        };
        for line in [
            "dftp_requests_total{interface=\"http\",method=\"GET\",status=\"2xx\"} 1",
            "dftp_request_duration_seconds_count{interface=\"http\"} 1",
            "dftp_updates_total{direction=\"sent\",kind=\"full\"} 1",
            "dftp_update_records_total{direction=\"sent\",kind=\"full\"} 4",
            "dftp_update_bytes_total{direction=\"sent\",kind=\"full\"} 100",
            "dftp_update_failures_total{direction=\"received\"} 1",
            "dftp_ftp_sessions_open 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no line {line:?} in:\n{text}");
        }
        drop(session);
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &m.registry).unwrap();
        assert!(out.lines().any(|l| l == "dftp_ftp_sessions_open 0"), "{out}");
    }
}
