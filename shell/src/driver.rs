//! The one loop that owns the core [`Node`]: it feeds events in, carries actions out, and
//! publishes a fresh snapshot after each event for the readers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dftp_core::cluster_auth::{BodyDigest, BodyHasher};
use dftp_core::{Action, Event, Node, Notice, Request, Snapshot, Time, UpdateHeader};
use smol_str::SmolStr;
use tokio::sync::{mpsc, oneshot, watch};

use crate::blocking::Blocking;
use crate::body::{full_body, Body};
use crate::metrics::{Direction, Metrics};
use crate::net::Datagram;
use crate::peers::{PeerClient, UpdateBody};

/// Size of the chunks a full update is streamed in: below the allocator's threshold for blocks
/// of their own (`memory`), which would cost a map, page faults and an unmap per chunk.
const FULL_UPDATE_CHUNK: usize = 64 << 10;

/// Wall-clock time derived from the runtime's monotonic clock, so that it moves with
/// `tokio::time` (which the simulator controls) and never jumps backwards.
#[derive(Clone, Copy)]
pub struct Clock {
    start: tokio::time::Instant,
    start_unix_ms: u64,
}

impl Clock {
    pub fn new(start_unix_ms: u64) -> Clock {
        Clock { start: tokio::time::Instant::now(), start_unix_ms }
    }

    pub fn now(&self) -> Time {
        Time(self.start_unix_ms + self.start.elapsed().as_millis() as u64)
    }

    fn instant_of(&self, t: Time) -> tokio::time::Instant {
        self.start + Duration::from_millis(t.0.saturating_sub(self.start_unix_ms))
    }
}

/// The outcome of an event that a request waits for.
pub struct Answer {
    pub refused: Option<String>,
    /// The answer to a `POST /digest/` ([`Action::DigestReply`]).
    pub digest: Option<dftp_core::anti_entropy::DigestAnswer>,
    pub snapshot: Snapshot,
}

enum Input {
    Event(Event),
    Ask(Event, oneshot::Sender<Answer>),
}

/// What the servers hold: a way to send events, and the latest snapshot.
#[derive(Clone)]
pub struct Handle {
    tx: mpsc::Sender<Input>,
    snapshot: watch::Receiver<Snapshot>,
    blocking: Blocking,
    metrics: Arc<Metrics>,
    clock: Clock,
}

impl Handle {
    /// The node's clock now.
    pub fn now(&self) -> Time {
        self.clock.now()
    }

    /// How long the node has run: since the wall-clock time it was started with.
    pub fn uptime(&self) -> Duration {
        Duration::from_millis(self.clock.now().0.saturating_sub(self.clock.start_unix_ms))
    }

    /// The latest snapshot. O(1).
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot.borrow().clone()
    }

    /// The snapshots as they are published (the simulator reads each node's tree from this).
    pub fn snapshots(&self) -> watch::Receiver<Snapshot> {
        self.snapshot.clone()
    }

    /// Where blocking work runs.
    pub fn blocking(&self) -> Blocking {
        self.blocking
    }

    /// This node's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Queues an event.
    pub async fn send(&self, event: Event) {
        let _ = self.tx.send(Input::Event(event)).await;
    }

    /// Feeds an event and waits until it has been applied.
    pub async fn ask(&self, event: Event) -> Option<Answer> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Input::Ask(event, tx)).await.ok()?;
        rx.await.ok()
    }
}

pub struct Driver {
    node: Node,
    clock: Clock,
    rx: mpsc::Receiver<Input>,
    tx: mpsc::Sender<Input>,
    snapshot: watch::Sender<Snapshot>,
    client: PeerClient,
    multicast: Option<Arc<dyn Datagram>>,
    wake: Time,
    blocking: Blocking,
    metrics: Arc<Metrics>,
}

impl Driver {
    pub fn new(
        node: Node,
        clock: Clock,
        client: PeerClient,
        multicast: Option<Arc<dyn Datagram>>,
        blocking: Blocking,
    ) -> (Driver, Handle) {
        let (tx, rx) = mpsc::channel(1024);
        let (snap_tx, snap_rx) = watch::channel(node.snapshot(clock.now()));
        let wake = clock.now();
        let metrics = Arc::new(Metrics::with_traffic(client.traffic().clone()));
        let driver = Driver {
            node,
            clock,
            rx,
            tx: tx.clone(),
            snapshot: snap_tx,
            client,
            multicast,
            wake,
            blocking,
            metrics: metrics.clone(),
        };
        (driver, Handle { tx, snapshot: snap_rx, blocking, metrics, clock })
    }

    /// Runs until every handle is dropped or `shutdown` fires.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        self.step(Event::Timer, None);
        loop {
            let wake = self.clock.instant_of(self.wake);
            // Biased: tokio picks the first ready branch at random otherwise, and the simulator
            // needs the same choice every run. Timers first, so a flood of events cannot hold
            // them up.
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                _ = tokio::time::sleep_until(wake) => self.step(Event::Timer, None),
                input = self.rx.recv() => match input {
                    Some(Input::Event(e)) => self.step(e, None),
                    Some(Input::Ask(e, reply)) => self.step(e, Some(reply)),
                    None => break,
                },
            }
        }
    }

    fn step(&mut self, event: Event, reply: Option<oneshot::Sender<Answer>>) {
        let now = self.clock.now();
        let actions = self.node.handle(now, event);
        let snapshot = self.node.snapshot(now);
        self.snapshot.send_replace(snapshot.clone());
        let mut refused = None;
        let mut digest_reply = None;
        for action in actions {
            match action {
                Action::Greet { to, greeting } => {
                    let (client, tx) = (self.client.clone(), self.tx.clone());
                    tokio::spawn(async move {
                        let event = match client.greet(&to, &greeting).await {
                            Ok(reply) => Event::GreetingAnswered { to, reply },
                            Err(reason) => {
                                tracing::debug!("{reason}");
                                Event::RequestFailed { request: Request::Greet(to), reason }
                            }
                        };
                        let _ = tx.send(Input::Event(event)).await;
                    });
                }
                // The core sends a peer its next update only once the last one's outcome is in,
                // so these go out at once and never overtake each other.
                Action::SendUpdate { to, addr, update } => {
                    let (client, tx, metrics) = (self.client.clone(), self.tx.clone(), self.metrics.clone());
                    tokio::spawn(async move {
                        let json = update.to_json();
                        let bytes = json.len() as u64;
                        let digest = client.guard().map(|_| BodyDigest::of(&json));
                        let body = UpdateBody { body: full_body(json), digest };
                        let result = client.send_update(&addr, body, false).await;
                        match &result {
                            Ok(()) => metrics.update(Direction::Sent, false, update.files.len(), bytes),
                            Err(_) => metrics.update_failed(Direction::Sent),
                        }
                        report_delivery(&tx, to, false, result).await;
                    });
                }
                Action::SendFullUpdate { to, addr, snapshot, header } => {
                    let (client, tx, blocking) = (self.client.clone(), self.tx.clone(), self.blocking);
                    let metrics = self.metrics.clone();
                    tokio::spawn(async move {
                        let files = snapshot.local_count();
                        let started = std::time::Instant::now();
                        let digest = match client.guard() {
                            Some(_) => Some(digest_full_update((*snapshot).clone(), header, blocking).await),
                            None => None,
                        };
                        let bytes = Arc::new(AtomicU64::new(0));
                        let result = match digest {
                            Some(Err(e)) => Err(format!("update to {to}: {e}")),
                            Some(Ok(d)) => {
                                let body = stream_full_update(*snapshot, header, blocking, bytes.clone());
                                client.send_update(&addr, UpdateBody { body, digest: Some(d) }, true).await
                            }
                            None => {
                                let body = stream_full_update(*snapshot, header, blocking, bytes.clone());
                                client.send_update(&addr, UpdateBody { body, digest: None }, true).await
                            }
                        };
                        if result.is_ok() {
                            tracing::info!("full update of {files} file(s) sent to {to} in {:.1?}", started.elapsed());
                            metrics.update(Direction::Sent, true, files, bytes.load(Ordering::Relaxed));
                        } else {
                            metrics.update_failed(Direction::Sent);
                        }
                        report_delivery(&tx, to, true, result).await;
                    });
                }
                Action::SendDigest { to, addr, digest } => {
                    let (client, tx, metrics) = (self.client.clone(), self.tx.clone(), self.metrics.clone());
                    tokio::spawn(async move {
                        let event = match client.send_digest(&addr, &digest).await {
                            Ok(answer) => {
                                metrics.digest(Direction::Sent, Some(&answer));
                                Event::DigestAnswered { to, sent: digest.pos(), answer }
                            }
                            Err(reason) => {
                                metrics.digest(Direction::Sent, None);
                                tracing::debug!("{reason}");
                                Event::RequestFailed { request: Request::Digest(to), reason }
                            }
                        };
                        let _ = tx.send(Input::Event(event)).await;
                    });
                }
                Action::DigestReply(answer) => digest_reply = Some(answer),
                Action::Announce(a) => {
                    if let Some(socket) = self.multicast.clone() {
                        let packet = match self.client.guard() {
                            Some(guard) => guard.seal(&a.to_json()),
                            None => a.to_json(),
                        };
                        tokio::spawn(async move {
                            if let Err(e) = socket.send(packet).await {
                                tracing::warn!("multicast announcement failed: {e}");
                            }
                        });
                    }
                }
                // Fire and forget: SWIM notices a lost packet by itself.
                Action::SwimSend { to, packet } => {
                    let client = self.client.clone();
                    tokio::spawn(async move {
                        if let Err(e) = client.swim(&to, packet).await {
                            tracing::debug!("{e}");
                        }
                    });
                }
                Action::Refuse(reason) => refused = Some(reason),
                Action::Notice(n) => log_notice(&n),
                Action::WakeAt(t) => self.wake = t,
            }
        }
        if let Some(reply) = reply {
            let _ = reply.send(Answer { refused, digest: digest_reply, snapshot });
        }
    }
}

/// Tells the node how an update to `to` went.
async fn report_delivery(tx: &mpsc::Sender<Input>, to: SmolStr, full: bool, result: Result<(), String>) {
    let event = match result {
        Ok(()) => Event::UpdateDelivered { to, full },
        Err(reason) => {
            tracing::warn!("{reason}");
            Event::RequestFailed { request: Request::Update { to, full }, reason }
        }
    };
    let _ = tx.send(Input::Event(event)).await;
}

/// The digest of the body [`stream_full_update`] makes of the same snapshot and header (the
/// snapshot does not change, so the two passes give the same bytes): a signed request carries
/// its body's digest in its head. Paid only with a cluster secret, on a blocking thread.
async fn digest_full_update(
    snapshot: Snapshot,
    header: UpdateHeader,
    blocking: Blocking,
) -> Result<BodyDigest, String> {
    blocking
        .run(move || {
            let mut hasher = BodyHasher::new();
            for chunk in snapshot.full_update_body(header, FULL_UPDATE_CHUNK) {
                hasher.update(&chunk);
            }
            hasher.finish()
        })
        .await
}

/// A full update body produced chunk by chunk as it goes out, never whole in memory; `bytes`
/// counts what it produced.
fn stream_full_update(snapshot: Snapshot, header: UpdateHeader, blocking: Blocking, bytes: Arc<AtomicU64>) -> Body {
    blocking.stream_body(move |emit| {
        for chunk in snapshot.full_update_body(header, FULL_UPDATE_CHUNK) {
            bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            if !emit(chunk) {
                return; // the request was dropped
            }
        }
    })
}

fn log_notice(n: &Notice) {
    match n {
        Notice::PeerJoined { name, mgmt_addr } => tracing::info!("peer {name} joined (management at {mgmt_addr})"),
        Notice::PeerReturned { name } => tracing::info!("peer {name} is back"),
        Notice::PeerLost { name, files_removed } => {
            tracing::warn!("peer {name} stopped answering: removed with its {files_removed} path(s)")
        }
        Notice::PeerForgotten { name } => tracing::info!("peer {name} forgotten after a long absence"),
        Notice::UpdateApplied { from, full, files, changed, rejected } => {
            let kind = if *full { "full" } else { "incremental" };
            tracing::info!("{kind} update from {from}: {files} record(s), {changed} change(s), {rejected} rejected");
        }
        Notice::UpdateIgnored { from, reason } => tracing::warn!("update from {from} ignored: {reason}"),
        Notice::GapDetected { from, expected, got } => {
            tracing::warn!("missed an update from {from} (expected {expected:?}, got {got:?}): asking for a full one")
        }
        Notice::LocalChanged { changes } => tracing::info!("{changes} local change(s)"),
        Notice::AnnouncementIgnored { reason } => tracing::debug!("announcement ignored: {reason}"),
        Notice::AddressConflict { name, known, claimed } => tracing::warn!(
            "address conflict: a message in the name of peer {name} gives public {} and management {}, but {name} \
             answers at {} and {}: keeping those while it answers there (an unsigned claim; a cluster secret \
             would tell whether it is {name}'s)",
            claimed.0,
            claimed.1,
            known.0,
            known.1
        ),
        Notice::PeerMoved { name, public_addr, mgmt_addr } => tracing::warn!(
            "peer {name} no longer answers where it was: taking the addresses a message in its name gave, public \
             {public_addr} and management {mgmt_addr}"
        ),
        Notice::ForgedPosition { name, applied, told } => tracing::warn!(
            "peer {name} says its updates are at {told:?}, but an update in its name was at {applied:?}: that one \
             was not {name}'s; asking {name} for a full update"
        ),
        Notice::SeedUnanswered { addr, failures, reason } => tracing::warn!(
            "{addr}, which this node was asked to join, does not answer ({failures} tries so far; still trying, \
             at most every ping interval): {reason}"
        ),
        Notice::SeedForgotten { addr } => {
            tracing::info!("{addr} never answered in 10 minutes: no longer greeted (it was not given by --join)")
        }
        Notice::SeedRefused { addr } => tracing::warn!(
            "not greeting {addr}: {} addresses already wait for a first answer",
            dftp_core::seeds::MAX_SEEDS
        ),
        Notice::PeerRefused { name } => tracing::warn!(
            "greeting from a new node {name:?} refused: this node knows {} peers already",
            dftp_core::node::MAX_PEERS
        ),
    }
}
