//! Cluster traffic: every management request this node sends to a peer and the answer it gets
//! back, and every multicast announcement it sends or hears, counted in messages and bytes by
//! kind and direction (`dftp_cluster_messages_total`, `dftp_cluster_bytes_total`).
//!
//! Counted in one place, at the edge: [`CountingClient`] is the client [`crate::peers::PeerClient`]
//! sends every management request through, and [`Traffic::count_datagrams`] wraps the multicast
//! socket. A new management request is counted without a change here (its kind comes from its
//! path); a transport of its own (say, UDP probes) calls [`Traffic::record`].
//!
//! Bytes are those of HTTP/1.1 as hyper writes and reads them: the request's head (request
//! line, headers, blank line) and body with its chunk framing, the answer's head and body; with
//! TLS, the plaintext inside it. The head is computed from the request and answer (hyper adds
//! `host` and `content-length` or `transfer-encoding`), since hyper does not report what it
//! wrote. The direction is `sent` for our requests and announcements, `received` for the
//! answers to our requests and for announcements heard: the requests a node answers are its
//! peers' `sent`, so that a cluster's total is the sum of its nodes' `sent` and `received`.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{header, HeaderMap, Request, Response};
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::client::legacy::connect::Connect;
use hyper_util::client::legacy::Client;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::{Registry, Unit};

use crate::body::Body;
use crate::metrics::Direction;
use crate::net::Datagram;

/// What a message is. The label set is fixed, so a peer cannot make series without end; a
/// management path this list does not know is `other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `POST /cluster/`: a greeting (ping), answered with the cluster table.
    Greeting,
    /// `POST /update/` with every file of the sender.
    FullUpdate,
    /// `POST /update/` with the files that changed.
    IncrementalUpdate,
    /// `POST /join/`.
    Join,
    /// `POST /digest/` (anti-entropy by digest).
    Digest,
    /// `POST /swim/` or SWIM's own packets (failure detection).
    Swim,
    /// A multicast announcement.
    Announcement,
    /// A management request to any other path.
    Other,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Greeting,
        Kind::FullUpdate,
        Kind::IncrementalUpdate,
        Kind::Join,
        Kind::Digest,
        Kind::Swim,
        Kind::Announcement,
        Kind::Other,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Kind::Greeting => "cluster",
            Kind::FullUpdate => "update_full",
            Kind::IncrementalUpdate => "update_incremental",
            Kind::Join => "join",
            Kind::Digest => "digest",
            Kind::Swim => "swim",
            Kind::Announcement => "announce",
            Kind::Other => "other",
        }
    }

    /// The kind of a management request to `path`. An update is incremental unless its request
    /// carries the [`FullUpdate`] extension: the path does not tell them apart.
    pub fn of_path(path: &str) -> Kind {
        match path.trim_end_matches('/') {
            "/cluster" => Kind::Greeting,
            "/update" => Kind::IncrementalUpdate,
            "/join" => Kind::Join,
            "/digest" => Kind::Digest,
            "/swim" => Kind::Swim,
            _ => Kind::Other,
        }
    }

    fn of_request<B>(req: &Request<B>) -> Kind {
        match Kind::of_path(req.uri().path()) {
            Kind::IncrementalUpdate if req.extensions().get::<FullUpdate>().is_some() => Kind::FullUpdate,
            kind => kind,
        }
    }

    fn index(self) -> usize {
        Kind::ALL.iter().position(|k| *k == self).unwrap_or(Kind::ALL.len() - 1)
    }
}

/// Marks a `POST /update/` request as a full update (a request extension: never on the wire).
#[derive(Clone, Copy, Debug)]
pub struct FullUpdate;

/// Messages and bytes of one kind in one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub messages: u64,
    pub bytes: u64,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, o: Tally) {
        self.messages += o.messages;
        self.bytes += o.bytes;
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels {
    kind: &'static str,
    direction: &'static str,
}

const DIRECTIONS: [Direction; 2] = [Direction::Sent, Direction::Received];

fn direction_index(d: Direction) -> usize {
    match d {
        Direction::Sent => 0,
        Direction::Received => 1,
    }
}

/// The counters of one node (cheap to clone: clones count into the same counters).
#[derive(Clone, Debug)]
pub struct Traffic {
    messages: Family<Labels, Counter>,
    bytes: Family<Labels, Counter>,
    /// Every series, made at the start (so each is there from the first scrape, at 0), by
    /// `[kind][direction]`: (messages, bytes).
    series: Arc<Vec<[(Counter, Counter); 2]>>,
}

impl Default for Traffic {
    fn default() -> Traffic {
        let (messages, bytes) = (Family::<Labels, Counter>::default(), Family::<Labels, Counter>::default());
        let series = Kind::ALL
            .iter()
            .map(|k| {
                DIRECTIONS.map(|d| {
                    let labels = Labels { kind: k.label(), direction: d.label() };
                    (messages.get_or_create_owned(&labels), bytes.get_or_create_owned(&labels))
                })
            })
            .collect();
        Traffic { messages, bytes, series: Arc::new(series) }
    }
}

impl Traffic {
    /// Adds the two families to a node's registry.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "cluster_messages",
            "Cluster messages by kind (cluster, update_full, update_incremental, join, digest, swim, announce, other) and direction (sent: our requests and announcements; received: the answers to them and announcements heard)",
            self.messages.clone(),
        );
        registry.register_with_unit(
            "cluster",
            "Bytes of the messages counted by dftp_cluster_messages_total (HTTP head and body as framed)",
            Unit::Bytes,
            self.bytes.clone(),
        );
    }

    fn counters(&self, kind: Kind, direction: Direction) -> &(Counter, Counter) {
        &self.series[kind.index()][direction_index(direction)]
    }

    /// Counts one message of `bytes`.
    pub fn record(&self, kind: Kind, direction: Direction, bytes: u64) {
        let (m, b) = self.counters(kind, direction);
        m.inc();
        b.inc_by(bytes);
    }

    fn add_bytes(&self, kind: Kind, direction: Direction, bytes: u64) {
        self.counters(kind, direction).1.inc_by(bytes);
    }

    /// What was counted so far.
    pub fn tally(&self, kind: Kind, direction: Direction) -> Tally {
        let (m, b) = self.counters(kind, direction);
        Tally { messages: m.get(), bytes: b.get() }
    }

    /// A multicast socket that counts what goes through it as announcements.
    pub fn count_datagrams(&self, socket: Arc<dyn Datagram>) -> Arc<dyn Datagram> {
        Arc::new(CountedDatagram { inner: socket, traffic: self.clone() })
    }
}

struct CountedDatagram {
    inner: Arc<dyn Datagram>,
    traffic: Traffic,
}

impl Datagram for CountedDatagram {
    fn send(&self, packet: Vec<u8>) -> BoxFuture<'_, io::Result<()>> {
        let len = packet.len() as u64;
        Box::pin(async move {
            self.inner.send(packet).await?;
            self.traffic.record(Kind::Announcement, Direction::Sent, len);
            Ok(())
        })
    }

    fn recv(&self) -> BoxFuture<'_, io::Result<(Vec<u8>, SocketAddr)>> {
        Box::pin(async move {
            let (packet, from) = self.inner.recv().await?;
            self.traffic.record(Kind::Announcement, Direction::Received, packet.len() as u64);
            Ok((packet, from))
        })
    }
}

/// The HTTP client of the management requests: hyper's, counting every request and answer.
#[derive(Clone)]
pub struct CountingClient<C> {
    inner: Client<C, Body>,
    traffic: Traffic,
}

/// An answer's body, counted as it is read.
pub type CountedIncoming = Counted<Incoming>;

impl<C: Connect + Clone + Send + Sync + 'static> CountingClient<C> {
    pub fn new(inner: Client<C, Body>, traffic: Traffic) -> CountingClient<C> {
        CountingClient { inner, traffic }
    }

    pub fn traffic(&self) -> &Traffic {
        &self.traffic
    }

    /// Sends `req` as [`Client::request`] does; its kind comes from its path (and
    /// [`FullUpdate`]).
    pub fn request(
        &self,
        req: Request<Body>,
    ) -> impl Future<Output = Result<Response<CountedIncoming>, hyper_util::client::legacy::Error>> + Send + 'static
    {
        let kind = Kind::of_request(&req);
        let traffic = self.traffic.clone();
        let (parts, body) = req.into_parts();
        let exact = hyper::body::Body::size_hint(&body).exact();
        let chunked = exact.is_none();
        let mut head = request_line_len(&parts.method, &parts.uri) + headers_len(&parts.headers) + 2;
        if !parts.headers.contains_key(header::HOST) {
            head += "host: ".len() + parts.uri.authority().map_or(0, |a| a.as_str().len()) + 2;
        }
        match exact {
            _ if parts.headers.contains_key(header::CONTENT_LENGTH) => {}
            Some(n) => head += "content-length: ".len() + n.to_string().len() + 2,
            None => head += "transfer-encoding: chunked\r\n".len(),
        }
        // Counted once it goes out: when hyper first asks for the body (the connection is up and
        // the head written), or at the answer, whichever comes first; not for a peer never reached.
        let head = Arc::new(Head { traffic: traffic.clone(), kind, bytes: head as u64, sent: AtomicBool::new(false) });
        let mut body = Counted::new(body, traffic.clone(), kind, Direction::Sent, chunked);
        body.head = Some(head.clone());
        let body = body.boxed_unsync();
        let sent = self.inner.request(Request::from_parts(parts, body));
        async move {
            let resp = sent.await?;
            head.went_out();
            let (parts, body) = resp.into_parts();
            let status = parts.status;
            // "HTTP/1.1 200 OK\r\n"
            let status_line = "HTTP/1.1 ".len() + 3 + 1 + status.canonical_reason().map_or(0, str::len) + 2;
            traffic.record(kind, Direction::Received, (status_line + headers_len(&parts.headers) + 2) as u64);
            let chunked = parts
                .headers
                .get(header::TRANSFER_ENCODING)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"));
            Ok(Response::from_parts(parts, Counted::new(body, traffic, kind, Direction::Received, chunked)))
        }
    }
}

fn request_line_len(method: &http::Method, uri: &http::Uri) -> usize {
    // "POST /cluster/ HTTP/1.1\r\n"
    let target = uri.path_and_query().map_or(1, |p| p.as_str().len());
    method.as_str().len() + 1 + target + " HTTP/1.1\r\n".len()
}

fn headers_len(headers: &HeaderMap) -> usize {
    headers.iter().map(|(k, v)| k.as_str().len() + 2 + v.len() + 2).sum()
}

/// A request's head, counted with its message once it went out.
struct Head {
    traffic: Traffic,
    kind: Kind,
    bytes: u64,
    sent: AtomicBool,
}

impl Head {
    fn went_out(&self) {
        if !self.sent.swap(true, Ordering::Relaxed) {
            self.traffic.record(self.kind, Direction::Sent, self.bytes);
        }
    }
}

/// A body whose bytes are counted as they pass (with their chunk framing when `chunked`).
pub struct Counted<B> {
    inner: B,
    /// A request's: counted before its first byte of body.
    head: Option<Arc<Head>>,
    traffic: Traffic,
    kind: Kind,
    direction: Direction,
    chunked: bool,
    ended: bool,
}

impl<B> Counted<B> {
    fn new(inner: B, traffic: Traffic, kind: Kind, direction: Direction, chunked: bool) -> Counted<B> {
        Counted { inner, head: None, traffic, kind, direction, chunked, ended: false }
    }

    fn end(&mut self) {
        if !self.ended {
            self.ended = true;
            if self.chunked {
                self.traffic.add_bytes(self.kind, self.direction, "0\r\n\r\n".len() as u64);
            }
        }
    }
}

impl<B> hyper::body::Body for Counted<B>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        if let Some(head) = self.head.take() {
            head.went_out();
        }
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref().filter(|d| !d.is_empty()) {
                    let framing = if self.chunked { format!("{:x}", data.len()).len() + 4 } else { 0 };
                    self.traffic.add_bytes(self.kind, self.direction, (data.len() + framing) as u64);
                }
            }
            Poll::Ready(None) => self.end(),
            _ => {}
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
    fn kinds_come_from_the_path_and_unknown_paths_share_one() {
        assert_eq!(Kind::of_path("/cluster/"), Kind::Greeting);
        assert_eq!(Kind::of_path("/update/"), Kind::IncrementalUpdate);
        assert_eq!(Kind::of_path("/join/"), Kind::Join);
        assert_eq!(Kind::of_path("/digest/"), Kind::Digest);
        assert_eq!(Kind::of_path("/swim/"), Kind::Swim);
        assert_eq!(Kind::of_path("/something-new/"), Kind::Other);
        assert_eq!(Kind::of_path("/"), Kind::Other);
        let full = Request::post("http://p:1/update/").extension(FullUpdate).body(()).unwrap();
        assert_eq!(Kind::of_request(&full), Kind::FullUpdate);
        let other = Request::post("http://p:1/join/").extension(FullUpdate).body(()).unwrap();
        assert_eq!(Kind::of_request(&other), Kind::Join);
    }

    #[test]
    fn every_series_exists_from_the_start_and_counts_apart() {
        let t = Traffic::default();
        t.record(Kind::Greeting, Direction::Sent, 100);
        t.record(Kind::Greeting, Direction::Sent, 20);
        t.record(Kind::Announcement, Direction::Received, 7);
        assert_eq!(t.tally(Kind::Greeting, Direction::Sent), Tally { messages: 2, bytes: 120 });
        assert_eq!(t.tally(Kind::Greeting, Direction::Received), Tally::default());
        assert_eq!(t.tally(Kind::Announcement, Direction::Received), Tally { messages: 1, bytes: 7 });
        let mut registry = Registry::with_prefix("dftp");
        t.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
        for line in [
            "dftp_cluster_messages_total{kind=\"cluster\",direction=\"sent\"} 2",
            "dftp_cluster_bytes_total{kind=\"cluster\",direction=\"sent\"} 120",
            "dftp_cluster_messages_total{kind=\"other\",direction=\"received\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no line {line:?} in:\n{text}");
        }
        assert_eq!(text.lines().filter(|l| l.starts_with("dftp_cluster_messages_total{")).count(), 16);
    }
}
