//! The node: `handle(now, event) -> actions`. Every rule of the cluster lives here; the shell
//! only turns I/O into events and actions into I/O.

use std::collections::BTreeMap;
use std::sync::Arc;

use smol_str::SmolStr;

use crate::anti_entropy::{self, AntiEntropy, DigestAnswer, DigestMsg};
use crate::membership::{Liveness, Peer, Peers, StreamPos};
use crate::outbox::Outgoing;
use crate::path::{DfsPath, Mount};
use crate::seeds::{Origin, Refused, Seeds, LEARNED_FORGET_AFTER};
use crate::snapshot::{Member, Snapshot};
use crate::swim::{Membership, Swim, SwimConfig, SwimId, SwimOut};
use crate::time::{Span, Time};
use crate::tree::{Change, Meta, NodeId, Tree};
use crate::wire::{file_info, UpdateHeader};
use crate::wire::{Announcement, ClusterInfo, FileInfo, FileMode, Greeting, NodeInfo, PeerAddr, Update};

mod tables;
use tables::Tables;

/// Above this many changes at once, peers get a full update instead of an incremental one: it
/// is streamed, where an incremental body is built whole.
pub const MAX_INCREMENTAL_FILES: usize = 10_000;

/// How many full updates from not-yet-known senders may wait, per greeting of ours that asked
/// for one, for that greeting's answer.
const EARLY_FULL_PER_GREETING: usize = 4;

/// What a node is and how often it does things.
#[derive(Clone, Debug)]
pub struct Config {
    pub name: SmolStr,
    pub cluster: SmolStr,
    pub public_addr: PeerAddr,
    pub mgmt_addr: PeerAddr,
    /// This incarnation of the node; must differ between restarts (the shell uses its start time).
    pub epoch: u64,
    /// How often every peer is greeted, to see that it is alive and to resync.
    pub ping_interval: Span,
    /// A peer silent for this long is removed with its files.
    pub peer_timeout: Span,
    /// How often every peer gets a full update.
    pub full_update_interval: Span,
    /// How often to announce on multicast; `None` when discovery is off.
    pub announce_interval: Option<Span>,
    /// How long a lost peer keeps being pinged before it is forgotten.
    pub forget_after: Span,
    /// Where the local tree appears in the cluster tree (`--dfsmount`).
    pub mount: Mount,
    /// Every greeting, answer and update that reaches the node was signed with the cluster
    /// secret (the shell checked it: [`crate::cluster_auth`]). Only then is a message that gives
    /// a live peer new addresses taken at its word; without the secret anyone can send one in
    /// the peer's name, and the node would fetch the peer's files from the sender
    /// ([`Notice::AddressConflict`]).
    pub authenticated: bool,
    /// How often each peer that speaks digests gets one ([`crate::anti_entropy`]).
    pub digest_interval: Span,
    /// Digests with the peers that speak them, or full updates to all (`--anti-entropy`).
    pub anti_entropy: anti_entropy::Mode,
    /// How liveness is watched between our nodes (`--membership`): SWIM ([`crate::swim`]), or
    /// greetings of every peer every ping interval, as the original does. Peers that do not
    /// speak SWIM are greeted either way.
    pub membership: Membership,
    /// SWIM's probe period, suspicion and RNG seed.
    pub swim: SwimConfig,
}

impl Config {
    /// A config with the daemon's default intervals.
    pub fn new(name: &str, cluster: &str, public_addr: PeerAddr, mgmt_addr: PeerAddr, epoch: u64) -> Config {
        Config {
            name: name.into(),
            cluster: cluster.into(),
            public_addr,
            mgmt_addr,
            epoch,
            ping_interval: Span::from_secs(10),
            peer_timeout: Span::from_secs(30),
            full_update_interval: Span::from_secs(3600),
            announce_interval: Some(Span::from_secs(55)),
            forget_after: Span::from_secs(24 * 3600),
            mount: Mount::default(),
            authenticated: false,
            digest_interval: Span::from_secs(60),
            anti_entropy: anti_entropy::Mode::Digest,
            // Today's behaviour, unless asked: a node whose SWIM packets go nowhere would
            // declare every peer down. The daemon's flag defaults to SWIM.
            membership: Membership::Ping,
            swim: SwimConfig::new(epoch),
        }
    }
}

/// Something that happened. Times come with [`Node::handle`].
#[derive(Clone, Debug)]
pub enum Event {
    /// A complete scan of the local tree: replaces the local view.
    LocalScan(Vec<(DfsPath, Meta)>),
    /// Some local paths changed (watcher, or a rescan's differences).
    LocalChanges(Vec<Change>),
    /// Rescans of local directories (or files) and everything below them: what the disk holds
    /// there now, per rescanned root. Local entries there that are not listed are gone; an empty
    /// list means the root itself is gone.
    LocalSubtrees(Vec<(DfsPath, Vec<(DfsPath, Meta)>)>),
    /// `POST /cluster/` arrived. `from_host` is the connection's peer address, used when the
    /// greeting leaves the host of an address empty.
    GreetingReceived { greeting: Greeting, from_host: Option<SmolStr> },
    /// A greeting we sent was answered with the peer's cluster table.
    GreetingAnswered { to: PeerAddr, reply: ClusterInfo },
    /// `POST /update/` arrived and parsed.
    UpdateReceived(Update),
    /// An update we sent was accepted.
    UpdateDelivered { to: SmolStr, full: bool },
    /// A multicast announcement arrived from `from_host`.
    AnnouncementReceived { announcement: Announcement, from_host: Option<SmolStr> },
    /// `POST /join/`: greet these addresses until they answer, for a while
    /// ([`crate::seeds::LEARNED_FORGET_AFTER`]).
    JoinRequested(Vec<PeerAddr>),
    /// `--join`: greet these addresses until they answer, however long that takes.
    JoinConfigured(Vec<PeerAddr>),
    /// `POST /digest/` arrived and parsed: answered with [`Action::DigestReply`] (or refused).
    DigestReceived(DigestMsg),
    /// A digest we sent at stream position `sent` was answered.
    DigestAnswered { to: SmolStr, sent: StreamPos, answer: DigestAnswer },
    /// A request we were asked to send failed.
    RequestFailed { request: Request, reason: String },
    /// A wake-up asked for by [`Action::WakeAt`] (or any time: timers are checked on every event).
    Timer,
    /// `POST /swim/` arrived with this packet, over a connection from `from_host`
    /// ([`crate::swim`]). Refused unless its sender is one of our peers.
    SwimReceived { packet: Vec<u8>, from_host: Option<SmolStr> },
}

/// A request the shell sends for the node, named when it fails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Greet(PeerAddr),
    Update { to: SmolStr, full: bool },
    Digest(SmolStr),
}

/// Something the shell must do, or may log.
#[derive(Clone)]
pub enum Action {
    /// `POST /cluster/` to `to`; answer with [`Event::GreetingAnswered`] or
    /// [`Event::RequestFailed`].
    Greet { to: PeerAddr, greeting: Greeting },
    /// `POST /update/` with this body; answer with `UpdateDelivered` or `RequestFailed`.
    /// The next update to the same peer comes only after that answer.
    SendUpdate { to: SmolStr, addr: PeerAddr, update: Arc<Update> },
    /// `POST /update/` with a full update streamed from `snapshot`
    /// ([`Snapshot::full_update_body`]).
    SendFullUpdate { to: SmolStr, addr: PeerAddr, snapshot: Box<Snapshot>, header: UpdateHeader },
    /// `POST /digest/` with this body; answer with `DigestAnswered` or `RequestFailed`.
    SendDigest { to: SmolStr, addr: PeerAddr, digest: DigestMsg },
    /// The reply to the `POST /digest/` that caused this event.
    DigestReply(DigestAnswer),
    /// Send this multicast packet.
    Announce(Announcement),
    /// The reply to the request that caused this event is a refusal, for this reason.
    Refuse(String),
    /// Nothing to do; worth a log line.
    Notice(Notice),
    /// Call `handle(_, Event::Timer)` at this time. Replaces any earlier wake-up.
    WakeAt(Time),
    /// `POST /swim/` with this packet; nothing comes back (a lost packet is SWIM's business).
    SwimSend { to: PeerAddr, packet: Vec<u8> },
}

impl std::fmt::Debug for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Greet { to, greeting } => {
                write!(f, "Greet({to}, full={})", greeting.request_full_update)
            }
            Action::SendUpdate { to, update, .. } => {
                write!(f, "SendUpdate({to}, {} files, seq {:?})", update.files.len(), update.seq)
            }
            Action::SendFullUpdate { to, header, .. } => write!(f, "SendFullUpdate({to}, seq {})", header.seq),
            Action::SendDigest { to, digest, .. } => write!(f, "SendDigest({to}, seq {})", digest.seq),
            Action::DigestReply(a) => write!(f, "DigestReply({a:?})"),
            Action::Announce(_) => write!(f, "Announce"),
            Action::Refuse(r) => write!(f, "Refuse({r})"),
            Action::Notice(n) => write!(f, "{n:?}"),
            Action::WakeAt(t) => write!(f, "WakeAt({t:?})"),
            Action::SwimSend { to, packet } => write!(f, "SwimSend({to}, {} bytes)", packet.len()),
        }
    }
}

/// What happened, for the logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    PeerJoined {
        name: SmolStr,
        mgmt_addr: PeerAddr,
    },
    PeerReturned {
        name: SmolStr,
    },
    PeerLost {
        name: SmolStr,
        files_removed: usize,
    },
    PeerForgotten {
        name: SmolStr,
    },
    UpdateApplied {
        from: SmolStr,
        full: bool,
        files: usize,
        changed: usize,
        rejected: usize,
    },
    UpdateIgnored {
        from: SmolStr,
        reason: String,
    },
    GapDetected {
        from: SmolStr,
        expected: Option<StreamPos>,
        got: StreamPos,
    },
    LocalChanged {
        changes: usize,
    },
    AnnouncementIgnored {
        reason: String,
    },
    /// A message in the name of a live peer gave other addresses than the peer's, and was not
    /// signed: the node keeps the addresses it knows while the peer answers at them, and takes
    /// the claimed ones only when a greeting there fails ([`Notice::PeerMoved`]). Said once per
    /// claim (see [`crate::membership::Peer::claim_reported`]).
    AddressConflict {
        name: SmolStr,
        known: (PeerAddr, PeerAddr),
        claimed: (PeerAddr, PeerAddr),
    },
    /// A greeting to a peer's addresses failed after a message in its name claimed others
    /// ([`Notice::AddressConflict`]): it no longer answers where it was, so the claimed
    /// addresses are taken.
    PeerMoved {
        name: SmolStr,
        public_addr: PeerAddr,
        mgmt_addr: PeerAddr,
    },
    /// A peer's cluster table says its stream is at `told`, behind the position we applied
    /// from it (`applied`) in the same run: that position came from someone else in its name (a
    /// `Seq` far ahead would have made us ignore all its later updates). Forgotten, and a full
    /// update asked for.
    ForgedPosition {
        name: SmolStr,
        applied: StreamPos,
        told: StreamPos,
    },
    /// A node we were asked to join (`--join`, `POST /join/`) did not answer: said at the first
    /// failure, then at most every [`crate::seeds::WARN_EVERY`] while it stays silent, so that a
    /// typo in an address is seen at once and a long outage does not flood the log.
    SeedUnanswered {
        addr: PeerAddr,
        failures: u64,
        reason: String,
    },
    /// An address learned from others (`POST /join/`, an announcement, a peer's cluster table)
    /// did not answer for [`crate::seeds::LEARNED_FORGET_AFTER`]: no longer greeted.
    SeedForgotten {
        addr: PeerAddr,
    },
    /// [`MAX_PEERS`] peers are known already: a greeting from a new name is refused.
    PeerRefused {
        name: SmolStr,
    },
    /// [`crate::seeds::MAX_SEEDS`] addresses already wait for an answer: this one is not taken.
    SeedRefused {
        addr: PeerAddr,
    },
}

/// At most this many peers are known. A greeting from a new name beyond it is refused: without
/// the cluster secret, anyone can greet in invented names, and each name is a peer pinged at
/// every interval. Far above the few hundred nodes a cluster is built for.
pub const MAX_PEERS: usize = 1024;

/// The state machine of one dftp node.
pub struct Node {
    cfg: Config,
    tree: Tree,
    me: NodeId,
    peers: Peers,
    /// Addresses to greet until they answer once (`--join`, `POST /join/`, announcements, the
    /// peers named in cluster tables), each retried on its own backoff: nodes started together
    /// greet each other before they listen, and should not then wait a whole ping interval to
    /// join.
    seeds: Seeds,
    /// Greetings sent and not yet answered, by address, with whether they asked for a full
    /// update.
    greeting: BTreeMap<PeerAddr, bool>,
    /// Full updates that arrived from a name we do not know yet while a greeting of ours that
    /// asked for one was under way: the answer to that greeting (which names the sender) and
    /// the update race each other, so the update waits here until the answer arrives.
    early_full: BTreeMap<SmolStr, (Time, Update)>,
    /// Incremental updates sent in this epoch.
    seq: u64,
    started: Time,
    next_ping: Time,
    next_full: Time,
    next_announce: Option<Time>,
    next_digest: Time,
    /// Digests of the views, and who speaks them.
    ae: AntiEntropy,
    /// SWIM between our nodes (`Membership::Swim`): the peers it watches are not greeted.
    swim: Option<Swim>,
    /// The snapshot's membership tables, kept while what they show is the same.
    tables: tables::Kept,
}

impl Node {
    pub fn new(cfg: Config, now: Time) -> Node {
        let mut tree = Tree::new();
        let me = tree.intern(&cfg.name);
        let next_announce = cfg.announce_interval.map(|_| now);
        let swim = (cfg.membership == Membership::Swim)
            .then(|| Swim::new(SwimId::new(&cfg.name, &cfg.mgmt_addr, cfg.epoch, 0), cfg.swim.clone()));
        Node {
            swim,
            tables: tables::Kept::default(),
            me,
            tree,
            peers: Peers::new(),
            seeds: Seeds::new(cfg.ping_interval),
            greeting: BTreeMap::new(),
            early_full: BTreeMap::new(),
            seq: 0,
            started: now,
            next_ping: now + cfg.ping_interval,
            next_full: now + cfg.full_update_interval,
            next_announce,
            next_digest: now + cfg.digest_interval,
            ae: AntiEntropy::default(),
            cfg,
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn peers(&self) -> &Peers {
        &self.peers
    }

    /// Feeds one event in; returns what to do, ending with the next wake-up.
    pub fn handle(&mut self, now: Time, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::LocalScan(files) => {
                // O(1), and no extra copying: the tree is shared with the readers' snapshot
                // anyway, so whatever changes is copied whether or not this clone exists.
                let before = self.tree.clone();
                let changes = self.tree.replace_view(self.me, files);
                self.local_changed(now, changes, &before, &mut out);
            }
            Event::LocalChanges(changes) => {
                let before = self.tree.clone();
                let mut applied = Vec::with_capacity(changes.len());
                for change in changes {
                    let done = match &change {
                        Change::Upsert(p, m) => self.tree.upsert(self.me, p.clone(), *m),
                        Change::Remove(p) => self.tree.remove(self.me, p),
                    };
                    if done {
                        applied.push(change);
                    }
                }
                self.local_changed(now, applied, &before, &mut out);
            }
            Event::LocalSubtrees(subtrees) => {
                let before = self.tree.clone();
                let mut changes = Vec::new();
                for (root, entries) in subtrees {
                    changes.extend(self.tree.replace_subtree(self.me, &root, entries));
                }
                self.local_changed(now, changes, &before, &mut out);
            }
            Event::GreetingReceived { greeting, from_host } => self.on_greeting(now, greeting, from_host, &mut out),
            Event::GreetingAnswered { to, reply } => self.on_answer(now, to, reply, &mut out),
            Event::UpdateReceived(update) => self.on_update(now, update, &mut out),
            Event::UpdateDelivered { to, .. } => {
                if let Some(p) = self.peers.get_mut(&to) {
                    p.last_update_pushed = Some(now);
                    p.outbox.delivered();
                }
                self.send_next(now, &to, &mut out);
            }
            Event::AnnouncementReceived { announcement, from_host } => {
                self.on_announcement(now, announcement, from_host, &mut out)
            }
            Event::JoinRequested(addrs) => {
                for addr in addrs {
                    self.add_seed(now, addr, Origin::Asked, &mut out);
                }
            }
            Event::JoinConfigured(addrs) => {
                for addr in addrs {
                    self.add_seed(now, addr, Origin::Configured, &mut out);
                }
            }
            Event::RequestFailed { request, reason } => match request {
                Request::Greet(addr) => {
                    self.greeting.remove(&addr);
                    self.take_claim(now, &addr, &mut out);
                    if let Some(f) = self.seeds.failed(&addr, now).filter(|f| f.report && f.origin != Origin::Heard) {
                        out.push(Action::Notice(Notice::SeedUnanswered {
                            addr,
                            failures: u64::from(f.failures),
                            reason,
                        }));
                    }
                }
                Request::Update { to, .. } => {
                    if let Some(p) = self.peers.get_mut(&to) {
                        p.owes_full = true;
                        p.outbox.failed();
                    }
                    self.send_next(now, &to, &mut out);
                }
                Request::Digest(to) => self.ae.done(&to),
            },
            Event::DigestReceived(msg) => self.on_digest(msg, &mut out),
            Event::DigestAnswered { to, sent, answer } => self.on_digest_answer(now, to, sent, answer, &mut out),
            Event::Timer => {}
            Event::SwimReceived { packet, from_host } => self.on_swim(now, &packet, from_host, &mut out),
        }
        self.run_timers(now, &mut out);
        self.run_swim(now, &mut out);
        out.push(Action::WakeAt(self.next_wake()));
        out
    }

    /// A read-only view as of now, for readers.
    pub fn snapshot(&self, now: Time) -> Snapshot {
        let renewal = self.swim.as_ref().map(|s| s.identity().renewal);
        let t = self.tables.get(now.unix_secs(), self.seq, renewal, &self.peers, || {
            let alive = || self.peers.values().filter(|p| p.is_alive());
            let public_addrs = alive().map(|p| (p.name.clone(), p.public_addr.clone())).collect();
            let applied = alive().filter_map(|p| Some((p.name.clone(), p.stream?))).collect();
            Tables {
                cluster: Arc::new(self.cluster_info(now)),
                public_addrs: Arc::new(public_addrs),
                applied: Arc::new(applied),
                members: Arc::new(self.members(now)),
            }
        });
        Snapshot {
            tree: self.tree.clone(),
            me: self.me,
            me_name: self.cfg.name.clone(),
            mount: self.cfg.mount.clone(),
            cluster: t.cluster,
            public_addrs: t.public_addrs,
            applied: t.applied,
            members: t.members,
            joining: self.greeting.values().any(|asked_full| *asked_full),
        }
    }

    /// This node, then every peer by name, lost ones too ([`Snapshot::members`]).
    fn members(&self, now: Time) -> Vec<Member> {
        let me = Member {
            name: self.cfg.name.clone(),
            public_addr: self.cfg.public_addr.to_string(),
            mgmt_addr: self.cfg.mgmt_addr.to_string(),
            is_me: true,
            liveness: Liveness::Alive,
            last_seen: now,
            last_update_in: None,
            last_update_out: None,
        };
        let peers = self.peers.values().map(|p| Member {
            name: p.name.clone(),
            public_addr: p.public_addr.to_string(),
            mgmt_addr: p.mgmt_addr.to_string(),
            is_me: false,
            liveness: p.liveness,
            last_seen: p.last_alive,
            last_update_in: p.last_update_received,
            last_update_out: p.last_update_pushed,
        });
        std::iter::once(me).chain(peers).collect()
    }

    /// The table of `GET /cluster/`: this node and its live peers.
    pub fn cluster_info(&self, now: Time) -> ClusterInfo {
        let me = NodeInfo {
            name: self.cfg.name.clone(),
            public_addr: self.cfg.public_addr.to_string(),
            mgmt_addr: self.cfg.mgmt_addr.to_string(),
            last_alive: now.unix_secs(),
            last_update_pushed: 0,
            last_update_received: 0,
            last_full_update_received: 0,
            epoch: Some(self.cfg.epoch),
            seq: Some(self.seq),
            digest: (self.cfg.anti_entropy == anti_entropy::Mode::Digest).then(|| anti_entropy::DIGEST_SCHEME.into()),
            swim: self.swim.as_ref().map(|s| s.identity().renewal),
        };
        let peers = self.peers.values().filter(|p| p.is_alive()).map(|p| (p.name.clone(), p.info())).collect();
        ClusterInfo { name: self.cfg.cluster.clone(), me, peers }
    }

    // ---- local changes ----------------------------------------------------------------------

    /// Tells the peers about `changes` to the local view; `before` is the tree as it was before
    /// them.
    fn local_changed(&mut self, now: Time, changes: Vec<Change>, before: &Tree, out: &mut Vec<Action>) {
        if changes.is_empty() {
            return;
        }
        let paths: std::collections::BTreeSet<&DfsPath> = changes
            .iter()
            .map(|c| match c {
                Change::Upsert(p, _) | Change::Remove(p) => p,
            })
            .collect();
        for p in paths {
            self.ae.digests.changed(self.me, p, before.held(self.me, p), self.tree.held(self.me, p));
        }
        out.push(Action::Notice(Notice::LocalChanged { changes: changes.len() }));
        self.seq += 1;
        if changes.len() > MAX_INCREMENTAL_FILES {
            // Too big to build whole: a full update carries the same news, streamed.
            let names: Vec<SmolStr> = self.peers.values().filter(|p| p.is_alive()).map(|p| p.name.clone()).collect();
            for name in names {
                self.push_full(now, &name, out);
            }
            return;
        }
        let files = changes
            .iter()
            .map(|c| match c {
                Change::Upsert(p, m) => file_info(p, *m, &self.cfg.name, false),
                Change::Remove(p) => self.deletion_record(now, p, before.held(self.me, p)),
            })
            .collect();
        let update = self.own_update(now, files, None);
        let mut names = Vec::new();
        for p in self.peers.values_mut().filter(|p| p.is_alive() && !p.owes_full) {
            p.outbox.push_incremental(update.clone());
            names.push(p.name.clone());
        }
        for name in names {
            self.send_next(now, &name, out);
        }
    }

    /// An update of this node's own files at its current position: the incremental updates of
    /// local changes (`buckets: None`) and the repairs of a digest's differing buckets.
    fn own_update(&self, now: Time, files: Vec<FileInfo>, buckets: Option<Vec<u8>>) -> Arc<Update> {
        Arc::new(Update {
            files,
            update_time: now.unix_secs(),
            full: false,
            sender_node_name: self.cfg.name.clone(),
            epoch: Some(self.cfg.epoch),
            seq: Some(self.seq),
            buckets,
        })
    }

    /// The record that tells the peers this node no longer holds `path`, which it held as
    /// `held`. Our nodes read only its name, owner and `Deletion` (they order a sender's
    /// updates by `Epoch`/`Seq`); the rest is for the original's nodes, which apply it by their
    /// `dfsfat/update.go`:
    ///
    /// - A record replaces the entry they hold only when its `LastInfoUpdated` is greater, and
    ///   a deletion then marks the entry deleted (`SizeInBytes` -1, hidden from listings). So
    ///   it carries the deletion time in Unix seconds, or one second past the time the entry
    ///   was announced with (its status-change time) when that is not less: a file created and
    ///   deleted within one second, or a status-change time ahead of our clock, must still go.
    /// - But they apply a deletion to the entry of the path's first segment, whatever its
    ///   depth: a time on the deletion of `dir/file` would mark all of `dir` deleted there (and
    ///   outrank the update of `dir` itself that usually comes with it). A nested deletion
    ///   therefore carries 0, which they ignore, as before: they cannot forget a nested path
    ///   until they restart.
    /// - A path that is still in our tree (another node holds it, or holds something below it)
    ///   has not left the cluster: a time would hide the other node's copy on their side too,
    ///   so such a deletion carries 0 as well. Their entry then still names us, and we pass
    ///   their requests on to the node that holds the path now.
    /// - They copy `Basename`, `Dir` and `OwnerNode` into the entry. The basename is the
    ///   path's last segment; `Dir` is false, so that a deleted directory is not listed with
    ///   the files it had (it becomes a file owned by us, which we answer with 404); the owner
    ///   is us, as it was, so that the owner they derive for the parent directory stays.
    fn deletion_record(&self, now: Time, path: &DfsPath, held: Option<Meta>) -> FileInfo {
        let top_level = !path.as_str().contains('/');
        let last_info_updated = if top_level && self.tree.lookup(path).is_none() {
            let past_held = held.map_or(i64::MIN, |m| m.info_updated.saturating_add(1));
            now.unix_secs().max(past_held)
        } else {
            0
        };
        let gone = Meta { mode: FileMode(0), size: 0, modified: 0, info_updated: last_info_updated };
        file_info(path, gone, &self.cfg.name, true)
    }

    fn push_full(&mut self, now: Time, to: &SmolStr, out: &mut Vec<Action>) {
        if let Some(p) = self.peers.get_mut(to) {
            p.owes_full = false;
            p.sent_full = true;
            p.outbox.push_full();
        }
        self.send_next(now, to, out);
    }

    /// Sends `to` its next update, when none is under way ([`crate::outbox`] says which).
    fn send_next(&mut self, now: Time, to: &SmolStr, out: &mut Vec<Action>) {
        let Some(p) = self.peers.get_mut(to) else { return };
        let addr = p.mgmt_addr.clone();
        match p.outbox.take_next() {
            None => {}
            Some(Outgoing::Incremental(update)) => out.push(Action::SendUpdate { to: to.clone(), addr, update }),
            Some(Outgoing::Full) => {
                let header = UpdateHeader { update_time: now.unix_secs(), epoch: self.cfg.epoch, seq: self.seq };
                let snapshot = Box::new(self.snapshot(now));
                out.push(Action::SendFullUpdate { to: to.clone(), addr, snapshot, header });
            }
        }
    }

    // ---- greetings ----------------------------------------------------------------------------

    fn greeting_for(&self, request_full_update: bool) -> Greeting {
        Greeting {
            name: self.cfg.name.clone(),
            public_addr: self.cfg.public_addr.clone(),
            mgmt_addr: self.cfg.mgmt_addr.clone(),
            request_full_update,
        }
    }

    /// Greets `addr` unless a greeting to it is already under way.
    fn greet(&mut self, addr: PeerAddr, request_full: bool, out: &mut Vec<Action>) {
        if self.greeting.contains_key(&addr) {
            return;
        }
        self.greeting.insert(addr.clone(), request_full);
        out.push(Action::Greet { to: addr, greeting: self.greeting_for(request_full) });
    }

    /// Greets a known peer, asking for a full update when its view here needs one.
    fn greet_peer(&mut self, now: Time, name: &SmolStr, out: &mut Vec<Action>) {
        let patience = self.cfg.peer_timeout;
        let Some(p) = self.peers.get_mut(name) else { return };
        let request_full = p.should_request_full(now, patience);
        let addr = p.mgmt_addr.clone();
        if self.greeting.contains_key(&addr) {
            return;
        }
        if request_full {
            p.full_requested_at = Some(now);
        }
        self.greet(addr, request_full, out);
    }

    /// Registers that `name` is alive at these addresses. Returns whether it is new or back,
    /// or `None` when the claim is not believed (see below): the message says nothing then.
    ///
    /// A live peer's addresses change at once only on a signed message
    /// (`Config::authenticated`): otherwise the claim is not believed yet (not even as a sign of
    /// life, or a sender in the peer's name could keep a dead peer alive), and the conflict is
    /// logged. It is kept ([`Peer::claimed`]) and taken once a greeting to the addresses we know
    /// fails, before the peer answers there again; and a lost peer takes the addresses of the
    /// next message in its name.
    fn saw_peer(
        &mut self,
        now: Time,
        name: &SmolStr,
        public: PeerAddr,
        mgmt: PeerAddr,
        out: &mut Vec<Action>,
    ) -> Option<bool> {
        let authenticated = self.cfg.authenticated;
        let full = self.peers.len() >= MAX_PEERS;
        match self.peers.get_mut(name) {
            Some(p) if p.is_alive() && !authenticated && (p.public_addr != public || p.mgmt_addr != mgmt) => {
                let claim = (public, mgmt);
                if p.claim_reported.as_ref() != Some(&claim) {
                    out.push(Action::Notice(Notice::AddressConflict {
                        name: name.clone(),
                        known: (p.public_addr.clone(), p.mgmt_addr.clone()),
                        claimed: claim.clone(),
                    }));
                    p.claim_reported = Some(claim.clone());
                }
                p.claimed = Some(claim);
                None
            }
            Some(p) => {
                p.claimed = None;
                p.public_addr = public;
                p.mgmt_addr = mgmt;
                p.last_alive = now;
                if let Liveness::Lost { .. } = p.liveness {
                    p.liveness = Liveness::Alive;
                    p.wants_full = true;
                    p.full_requested_at = None;
                    p.stream = None;
                    // Whatever it had of ours is stale after the time apart.
                    p.owes_full = true;
                    out.push(Action::Notice(Notice::PeerReturned { name: name.clone() }));
                    return Some(true);
                }
                Some(false)
            }
            None if full => {
                out.push(Action::Notice(Notice::PeerRefused { name: name.clone() }));
                None
            }
            None => {
                let id = self.tree.intern(name);
                self.seeds.answered(&mgmt);
                out.push(Action::Notice(Notice::PeerJoined { name: name.clone(), mgmt_addr: mgmt.clone() }));
                self.peers.insert(name.clone(), Peer::new(name.clone(), id, public, mgmt, now));
                Some(true)
            }
        }
    }

    /// A greeting to `addr` failed: a live peer there that another address was claimed for
    /// moves to it ([`Peer::claimed`]), and is greeted there.
    fn take_claim(&mut self, now: Time, addr: &PeerAddr, out: &mut Vec<Action>) {
        let Some(p) = self.peers.values_mut().find(|p| p.mgmt_addr == *addr && p.claimed.is_some()) else { return };
        let Some((public, mgmt)) = p.claimed.take() else { return };
        p.public_addr = public.clone();
        p.mgmt_addr = mgmt.clone();
        let name = p.name.clone();
        out.push(Action::Notice(Notice::PeerMoved { name: name.clone(), public_addr: public, mgmt_addr: mgmt }));
        self.greet_peer(now, &name, out);
    }

    fn on_greeting(&mut self, now: Time, g: Greeting, from_host: Option<SmolStr>, out: &mut Vec<Action>) {
        if g.name == self.cfg.name {
            out.push(Action::Refuse(format!("node name {:?} is this node's own name", g.name)));
            return;
        }
        if !self.peers.contains_key(&g.name) && self.peers.len() >= MAX_PEERS {
            out.push(Action::Refuse(format!("this node knows {MAX_PEERS} peers already and takes no new one")));
            out.push(Action::Notice(Notice::PeerRefused { name: g.name }));
            return;
        }
        let host = from_host.as_deref();
        let (public, mgmt) = (g.public_addr.or_host(host), g.mgmt_addr.or_host(host));
        // A greeting shows that the peer's messages reach us, not that ours reach it: the
        // network may carry one direction only. So only answers to our greetings, and its
        // updates, keep a live peer alive; otherwise a peer we can no longer reach, whose
        // changes have stopped arriving, would keep its stale files here for as long as it
        // keeps greeting us. (A lost peer that greets us is taken back, as before.)
        let alive_since = self.peers.get(&g.name).filter(|p| p.is_alive()).map(|p| p.last_alive);
        // A claim that is not believed (`None`) changes no address and shows no life, but its
        // request for a full update is still served, at the addresses we know: the genuine peer
        // greets us with addresses that merely look different (a host name where we know its
        // IP address) and must not be left without our files.
        let fresh = self.saw_peer(now, &g.name, public, mgmt, out) == Some(true);
        if let (Some(t), Some(p)) = (alive_since, self.peers.get_mut(&g.name)) {
            p.last_alive = t;
        }
        let owes = self.peers.get(&g.name).is_some_and(|p| p.owes_full);
        if g.request_full_update || owes {
            self.push_full(now, &g.name, out);
        }
        if fresh {
            self.greet_peer(now, &g.name, out);
        }
    }

    fn on_answer(&mut self, now: Time, to: PeerAddr, reply: ClusterInfo, out: &mut Vec<Action>) {
        let asked_full = self.greeting.remove(&to).unwrap_or(false);
        self.seeds.answered(&to);
        let host = Some(to.host());
        let name = reply.me.name.clone();
        if name == self.cfg.name || crate::wire::check_name(&name).is_err() {
            return;
        }
        let (Ok(public), Ok(mgmt)) = (PeerAddr::parse(&reply.me.public_addr), PeerAddr::parse(&reply.me.mgmt_addr))
        else {
            out.push(Action::Notice(Notice::UpdateIgnored {
                from: name,
                reason: "its cluster table has an address without a port".into(),
            }));
            return;
        };
        // An answer shows that our requests reach the peer and its replies reach us, not that
        // its updates do: they may be stuck behind a request lost on its connection, while
        // greetings go through on others. So an answer keeps a live peer alive only when it
        // shows that we have had every change the peer made (its `Seq`), as its updates do;
        // otherwise a peer whose deletions no longer arrive would keep its deleted files here
        // for as long as it answers, and, cut off then, for a peer timeout more. Behind, we
        // wait for the update that brings us up to date (it counts when it arrives), or time
        // the peer out. The original's tables carry no position, and count as before.
        let alive_since = self.peers.get(&name).filter(|p| p.is_alive()).map(|p| p.last_alive);
        let pos = match (reply.me.epoch, reply.me.seq) {
            (Some(epoch), Some(seq)) => Some(StreamPos { epoch, seq }),
            _ => None,
        };
        // Not believed (`None`): the table says nothing of the peer's life or position; the rest
        // (what it wants of us, sent to the addresses we know, and the peers it names, which are
        // greeted and must answer for themselves) is used as usual.
        let believed = self.saw_peer(now, &name, public.or_host(host), mgmt.or_host(host), out).is_some();
        if let Some(p) = self.peers.get_mut(&name).filter(|_| believed) {
            p.answered = true;
            self.ae.heard(&name, reply.me.digest.as_deref());
        }
        if let (true, Some(swim), Some(epoch), Some(renewal)) =
            (believed, &mut self.swim, reply.me.epoch, reply.me.swim)
        {
            // Its own word, at the address we greeted: it speaks SWIM, as this run.
            swim.meet(now, SwimId { name: name.clone(), addr: reply.me.mgmt_addr.as_str().into(), epoch, renewal });
        }
        let pos = pos.filter(|_| believed);
        if let (Some(t), Some(pos), Some(p)) = (alive_since, pos, self.peers.get_mut(&name)) {
            if p.is_behind(pos) {
                p.last_alive = t;
            }
        }
        // The peer's own word on its position, from the address we know it at: a position we
        // applied that is ahead of it in the same run was never the peer's (an update in its
        // name, `Seq` = u64::MAX, would otherwise make us ignore the rest of its run). Without
        // the cluster secret anyone may send such an update; this undoes it at the next ping.
        if let (Some(pos), Some(p)) = (pos, self.peers.get_mut(&name)) {
            if let Some(applied) = p.stream.filter(|l| l.epoch == pos.epoch && l.seq > pos.seq) {
                p.stream = None;
                p.wants_full = true;
                p.full_requested_at = None;
                out.push(Action::Notice(Notice::ForgedPosition { name: name.clone(), applied, told: pos }));
            }
        }
        // The peer holds a view of us that this incarnation never sent: it is from before a
        // restart, and may list files deleted since. Replace it.
        let has_old_view = reply
            .peers
            .get(&self.cfg.name)
            .is_some_and(|me| me.last_update_received > 0 || me.last_full_update_received > 0);
        if let Some(p) = self.peers.get_mut(&name) {
            if has_old_view && !p.sent_full {
                p.owes_full = true;
            }
        }
        if let Some((_, early)) = self.early_full.remove(&name) {
            self.on_update(now, early, out);
        }
        let patience = self.cfg.peer_timeout;
        if let Some(p) = self.peers.get_mut(&name) {
            if asked_full && p.wants_full {
                p.full_requested_at.get_or_insert(now);
            } else if p.should_request_full(now, patience) {
                // Our greeting did not ask (a ping to a node that had been lost): ask now.
                self.greet_peer(now, &name, out);
            }
        }
        if self.peers.get(&name).is_some_and(|p| p.owes_full) {
            self.push_full(now, &name, out);
        }
        // Meet the rest of the cluster.
        for (other, info) in &reply.peers {
            if *other == self.cfg.name || self.peers.get(other).is_some_and(Peer::is_alive) {
                continue;
            }
            if let Ok(addr) = PeerAddr::parse(&info.mgmt_addr) {
                self.add_seed(now, addr.or_host(host), Origin::Heard, out);
            }
        }
    }

    fn on_announcement(&mut self, now: Time, a: Announcement, from_host: Option<SmolStr>, out: &mut Vec<Action>) {
        if a.cluster_name != self.cfg.cluster {
            out.push(Action::Notice(Notice::AnnouncementIgnored {
                reason: format!("{} is in cluster {:?}, not ours", a.node_name, a.cluster_name),
            }));
            return;
        }
        if a.node_name == self.cfg.name || self.peers.get(&a.node_name).is_some_and(Peer::is_alive) {
            return;
        }
        match PeerAddr::parse(&a.mgmt_addr) {
            Ok(addr) => self.add_seed(now, addr.or_host(from_host.as_deref()), Origin::Heard, out),
            Err(e) => out.push(Action::Notice(Notice::AnnouncementIgnored { reason: e.to_string() })),
        }
    }

    // ---- updates ------------------------------------------------------------------------------

    fn on_update(&mut self, now: Time, u: Update, out: &mut Vec<Action>) {
        if u.buckets.is_some() {
            return self.on_repair(now, u, out);
        }
        let from = u.sender_node_name.clone();
        let ignore = |reason: &str| Action::Notice(Notice::UpdateIgnored { from: from.clone(), reason: reason.into() });
        let Some(peer) = self.peers.get_mut(&from) else {
            // A few waiting updates per greeting of ours that asked for one, the oldest evicted
            // first: a stranger inventing sender names cannot park more bodies than that.
            let asked = self.greeting.values().filter(|asked_full| **asked_full).count();
            if u.full && asked > 0 {
                self.early_full.insert(from, (now, u));
                while self.early_full.len() > EARLY_FULL_PER_GREETING * asked {
                    let oldest =
                        self.early_full.iter().min_by_key(|(n, (t, _))| (*t, (*n).clone())).map(|(n, _)| n.clone());
                    if let Some(name) = oldest {
                        self.early_full.remove(&name);
                        let reason = "too many full updates from strangers while joining".into();
                        out.push(Action::Notice(Notice::UpdateIgnored { from: name, reason }));
                    }
                }
            } else {
                out.push(ignore("the sender is not a known peer"));
            }
            return;
        };
        let pos = match (u.epoch, u.seq) {
            (Some(epoch), Some(seq)) => Some(StreamPos { epoch, seq }),
            _ => None,
        };
        if let (Some(pos), Some(last)) = (pos, peer.stream) {
            // From an earlier run of the sender (runs are numbered by their start time), delayed
            // on the way: applying it would bring back what the sender held before it
            // restarted. Ask for a full update instead; and if that full update comes from a
            // run numbered lower still, the sender's clock went back: it is accepted then.
            if pos.epoch < last.epoch && !(u.full && peer.wants_full) {
                peer.wants_full = true;
                peer.full_requested_at = None;
                out.push(ignore("an update from an earlier run of the sender"));
                self.greet_peer(now, &from, out);
                return;
            }
        }
        peer.last_alive = now;
        if !peer.is_alive() {
            // It was removed and is talking again: start over with a full update.
            let name = peer.name.clone();
            let (public, mgmt) = (peer.public_addr.clone(), peer.mgmt_addr.clone());
            self.saw_peer(now, &name, public, mgmt, out);
            if !u.full {
                out.push(ignore("an incremental update from a peer that had been lost"));
                self.greet_peer(now, &name, out);
                return;
            }
        }
        let Some(peer) = self.peers.get_mut(&from) else { return };
        let id = peer.id;
        let same_epoch_behind =
            |last: Option<StreamPos>, pos: StreamPos, strict: bool| match last.filter(|l| l.epoch == pos.epoch) {
                Some(l) => pos.seq < l.seq || (strict && pos.seq == l.seq),
                None => false,
            };
        let mut gap = false;
        if let Some(pos) = pos {
            if same_epoch_behind(peer.stream, pos, !u.full) {
                out.push(ignore("an older update than one already applied"));
                return;
            }
            if !u.full {
                // The sender chooses the numbers: `u64::MAX` has no successor, so anything after
                // it is a gap (a plain `+ 1` overflowed here).
                let expected =
                    peer.stream.and_then(|l| l.seq.checked_add(1).map(|seq| StreamPos { epoch: l.epoch, seq }));
                if expected != Some(pos) {
                    out.push(Action::Notice(Notice::GapDetected { from: from.clone(), expected, got: pos }));
                    gap = true;
                }
            }
            peer.stream = Some(pos);
        }
        peer.last_update_received = Some(now);
        if u.full {
            peer.last_full_update_received = Some(now);
            peer.wants_full = false;
            peer.full_requested_at = None;
        } else if gap {
            peer.wants_full = true;
            peer.full_requested_at = None;
        }

        let total = u.files.len();
        let mut rejected = 0;
        let mut changed = 0;
        let mut items: Vec<(DfsPath, Meta)> = Vec::with_capacity(if u.full { total } else { 0 });
        for f in u.files {
            // Only the sender's own files: the original let anyone claim anything.
            if f.owner_node != from {
                rejected += 1;
                continue;
            }
            let Ok(path) = DfsPath::parse_owned(f.full_name) else {
                rejected += 1;
                continue;
            };
            let mode = if f.dir { FileMode(f.file_mode.0 | FileMode::DIR) } else { f.file_mode };
            let meta =
                Meta { mode, size: f.size_in_bytes, modified: f.last_modified, info_updated: f.last_info_updated };
            if u.full {
                if !f.deletion {
                    items.push((path, meta));
                }
            } else {
                let old = self.tree.held(id, &path);
                if f.deletion {
                    changed += usize::from(self.tree.remove(id, &path));
                } else {
                    changed += usize::from(self.tree.upsert(id, path.clone(), meta));
                }
                self.ae.digests.changed(id, &path, old, self.tree.held(id, &path));
            }
        }
        if u.full {
            // The view becomes exactly these records, the last of each path winning, as the
            // tree takes them: the digest is theirs.
            if !items.windows(2).all(|w| w[0].0 < w[1].0) {
                items.reverse();
                items.sort_by(|a, b| a.0.cmp(&b.0));
                items.dedup_by(|later, earlier| later.0 == earlier.0);
            }
            self.ae.digests.set(id, items.iter().map(|(p, m)| (p, *m)));
            changed = self.tree.replace_view_count(id, items);
        }
        out.push(Action::Notice(Notice::UpdateApplied {
            from: from.clone(),
            full: u.full,
            files: total,
            changed,
            rejected,
        }));
        if gap {
            self.greet_peer(now, &from, out);
        }
    }

    // ---- anti-entropy ([`crate::anti_entropy`]) ----------------------------------------------

    /// Sends each live peer that speaks digests the digest of our view, when it has had all our
    /// updates so far (nothing queued or under way to it, no full update owed: otherwise the
    /// positions cannot match yet) and no digest to it is under way.
    fn send_digests(&mut self, out: &mut Vec<Action>) {
        let mine = self.ae.digests.get(self.me);
        let (count, digest) = (mine.count, mine.summary());
        for p in self.peers.values() {
            let idle = !p.outbox.is_busy() && p.outbox.queued() == 0 && !p.owes_full;
            let due = p.is_alive() && p.sent_full && idle && self.ae.speaks(&p.name);
            // `start` marks the digest under way, so it comes last.
            if !due || !self.ae.start(&p.name) {
                continue;
            }
            let digest =
                DigestMsg { sender: self.cfg.name.clone(), epoch: self.cfg.epoch, seq: self.seq, count, digest };
            out.push(Action::SendDigest { to: p.name.clone(), addr: p.mgmt_addr.clone(), digest });
        }
    }

    /// A peer's digest of its view: compared with the digest of what we hold of it. Changes
    /// nothing here, and shows no life (anyone can send one in a peer's name without the
    /// cluster secret).
    fn on_digest(&mut self, msg: DigestMsg, out: &mut Vec<Action>) {
        let Some(p) = self.peers.get(&msg.sender).filter(|p| p.is_alive()) else {
            out.push(Action::Refuse(format!("{:?} is not a live peer of this node", msg.sender)));
            return;
        };
        let held = self.ae.digests.get(p.id);
        out.push(Action::DigestReply(anti_entropy::answer(&msg, p.stream, p.wants_full, &held)));
    }

    /// The answer to our digest sent at `sent`: when the peer's view of us differs, the
    /// buckets that differ go out in a repair, behind whatever is queued for it.
    fn on_digest_answer(
        &mut self,
        now: Time,
        to: SmolStr,
        sent: StreamPos,
        answer: DigestAnswer,
        out: &mut Vec<Action>,
    ) {
        self.ae.done(&to);
        let DigestAnswer::Differs { sums, .. } = answer else { return };
        // Our view moved since (a later update carries that), or the peer will get all of it.
        let current = StreamPos { epoch: self.cfg.epoch, seq: self.seq };
        let Some(p) = self.peers.get(&to).filter(|p| p.is_alive() && !p.owes_full && current == sent) else { return };
        let buckets = self.ae.digests.get(self.me).differing(&sums);
        let Some(repair) = anti_entropy::Repair::new(&buckets) else { return };
        let files = self
            .tree
            .view(self.me)
            .filter(|(path, _)| repair.covers(path))
            .map(|(path, meta)| file_info(&path, meta, &self.cfg.name, false))
            .collect();
        let update = self.own_update(now, files, Some(repair.buckets()));
        let name = p.name.clone();
        if let Some(p) = self.peers.get_mut(&name) {
            p.outbox.push_incremental(update);
        }
        self.send_next(now, &name, out);
    }

    /// A repair from a peer: its view in the buckets named replaces ours of it there. Taken
    /// only at the position we applied from it, the one its digest was compared at.
    fn on_repair(&mut self, now: Time, u: Update, out: &mut Vec<Action>) {
        let from = u.sender_node_name.clone();
        let ignore = |reason: &str| Action::Notice(Notice::UpdateIgnored { from: from.clone(), reason: reason.into() });
        let Some(repair) = u.buckets.as_deref().and_then(anti_entropy::Repair::new) else {
            out.push(ignore("a repair names no bucket, or one out of range"));
            return;
        };
        let pos = u.epoch.zip(u.seq).map(|(epoch, seq)| StreamPos { epoch, seq });
        let Some(peer) = self.peers.get_mut(&from).filter(|p| p.is_alive()) else {
            out.push(ignore("a repair from a node that is not a live peer"));
            return;
        };
        if u.full || peer.wants_full || pos.is_none() || peer.stream != pos {
            out.push(ignore("a repair of a view at another position than the one applied"));
            return;
        }
        peer.last_alive = now;
        peer.last_update_received = Some(now);
        let id = peer.id;
        let total = u.files.len();
        let mut rejected = 0;
        let mut wanted: BTreeMap<DfsPath, Meta> = BTreeMap::new();
        for f in u.files {
            if f.owner_node != from || f.deletion {
                rejected += 1;
                continue;
            }
            let Ok(path) = DfsPath::parse_owned(f.full_name) else {
                rejected += 1;
                continue;
            };
            if !repair.covers(&path) {
                rejected += 1;
                continue;
            }
            let mode = if f.dir { FileMode(f.file_mode.0 | FileMode::DIR) } else { f.file_mode };
            let meta =
                Meta { mode, size: f.size_in_bytes, modified: f.last_modified, info_updated: f.last_info_updated };
            wanted.insert(path, meta);
        }
        let stale: Vec<DfsPath> = self
            .tree
            .view(id)
            .filter(|(path, _)| repair.covers(path) && !wanted.contains_key(path))
            .map(|(path, _)| path)
            .collect();
        let mut changed = 0;
        for path in stale {
            let old = self.tree.held(id, &path);
            changed += usize::from(self.tree.remove(id, &path));
            self.ae.digests.changed(id, &path, old, None);
        }
        for (path, meta) in wanted {
            let old = self.tree.held(id, &path);
            changed += usize::from(self.tree.upsert(id, path.clone(), meta));
            self.ae.digests.changed(id, &path, old, Some(meta));
        }
        out.push(Action::Notice(Notice::UpdateApplied { from, full: false, files: total, changed, rejected }));
    }

    /// The digest of `node`'s view as kept here, and as recomputed from the tree: for tests.
    pub fn view_digests(&self, node: &str) -> Option<(anti_entropy::Digest, anti_entropy::Digest)> {
        let id = self.tree.id_of(node)?;
        Some((self.ae.digests.get(id), anti_entropy::Digests::recompute(&self.tree, id)))
    }

    // ---- timers -------------------------------------------------------------------------------

    fn next_wake(&self) -> Time {
        let mut t = self.next_ping.min(self.next_full).min(self.next_digest);
        if let Some(a) = self.next_announce {
            t = t.min(a);
        }
        if let Some(at) = self.seeds.next_wake() {
            t = t.min(at);
        }
        if let Some(at) = self.swim.as_ref().and_then(Swim::next_wake) {
            t = t.min(at);
        }
        t
    }

    fn run_timers(&mut self, now: Time, out: &mut Vec<Action>) {
        if let (Some(at), Some(every)) = (self.next_announce, self.cfg.announce_interval) {
            if now >= at {
                out.push(Action::Announce(Announcement::ping(&self.cfg.cluster, &self.cfg.name, &self.cfg.mgmt_addr)));
                self.next_announce = Some(now + every);
            }
        }
        for addr in self.seeds.due(now) {
            self.greet(addr, true, out); // not one still under way
        }
        for addr in self.seeds.forget_stale(now) {
            out.push(Action::Notice(Notice::SeedForgotten { addr }));
        }
        if now >= self.next_ping {
            self.next_ping = now + self.cfg.ping_interval;
            self.ping_all(now, out);
        }
        if now >= self.next_full {
            self.next_full = now + self.cfg.full_update_interval;
            // Peers that speak digests are served by them instead ([`crate::anti_entropy`]).
            let digests = self.cfg.anti_entropy == anti_entropy::Mode::Digest;
            let names: Vec<SmolStr> = self
                .peers
                .values()
                .filter(|p| p.is_alive() && !(digests && self.ae.speaks(&p.name)))
                .map(|p| p.name.clone())
                .collect();
            for name in names {
                self.push_full(now, &name, out);
            }
        }
        if now >= self.next_digest {
            self.next_digest = now + self.cfg.digest_interval;
            if self.cfg.anti_entropy == anti_entropy::Mode::Digest {
                self.send_digests(out);
            }
        }
    }

    fn ping_all(&mut self, now: Time, out: &mut Vec<Action>) {
        let mut lost = Vec::new();
        let mut forgotten = Vec::new();
        // Live peers SWIM watches are neither timed out nor greeted here: SWIM declares them
        // down. One it stops watching (its run was declared down while it kept answering our
        // greetings) is greeted as before, and times out a peer timeout from now at the soonest.
        let swim = self.swim.as_ref();
        let watched: Vec<SmolStr> = self
            .peers
            .values_mut()
            .filter(|p| p.is_alive() && swim.is_some_and(|s| s.watches(&p.name)))
            .map(|p| {
                p.last_alive = now;
                p.name.clone()
            })
            .collect();
        for p in self.peers.values() {
            match p.liveness {
                Liveness::Alive if now.since(p.last_alive) > self.cfg.peer_timeout => lost.push(p.name.clone()),
                Liveness::Lost { since } if now.since(since) > self.cfg.forget_after => forgotten.push(p.name.clone()),
                // Known only from its own word (a greeting, perhaps in an invented name, with
                // addresses that never answered): not pinged for a day like a peer that was
                // really there.
                Liveness::Lost { since } if !p.answered && now.since(since) >= LEARNED_FORGET_AFTER => {
                    forgotten.push(p.name.clone())
                }
                _ => {}
            }
        }
        for name in lost {
            self.lose(now, &name, out);
        }
        for name in forgotten {
            self.peers.remove(&name);
            out.push(Action::Notice(Notice::PeerForgotten { name }));
        }
        let timeout = self.cfg.peer_timeout;
        let stale: Vec<SmolStr> =
            self.early_full.iter().filter(|(_, (t, _))| now.since(*t) > timeout).map(|(n, _)| n.clone()).collect();
        for name in stale {
            self.early_full.remove(&name);
            let reason = "a full update from a node that never answered our greeting".into();
            out.push(Action::Notice(Notice::UpdateIgnored { from: name, reason }));
        }
        let names: Vec<SmolStr> = self.peers.keys().cloned().collect();
        for name in names {
            // A watched peer is greeted only to ask for the full update its view here needs; and
            // one that missed an update of ours (`owes_full`), which a greeting's answer would
            // have brought a full update, gets it now.
            if watched.contains(&name) {
                let patience = self.cfg.peer_timeout;
                let Some(p) = self.peers.get(&name) else { continue };
                let (ask, owed) = (p.should_request_full(now, patience), p.owes_full);
                if owed {
                    self.push_full(now, &name, out);
                }
                if !ask {
                    continue;
                }
            }
            self.greet_peer(now, &name, out);
        }
    }

    /// Removes a peer that stopped answering (or that SWIM declared down) with its files; it is
    /// still greeted, and comes back when it answers.
    fn lose(&mut self, now: Time, name: &SmolStr, out: &mut Vec<Action>) {
        let Some(p) = self.peers.get_mut(name).filter(|p| p.is_alive()) else { return };
        p.liveness = Liveness::Lost { since: now };
        p.stream = None;
        p.outbox.clear();
        p.wants_full = true;
        p.full_requested_at = None;
        let id = p.id;
        let files_removed = self.tree.drop_node(id);
        self.ae.digests.reset(id);
        out.push(Action::Notice(Notice::PeerLost { name: name.clone(), files_removed }));
    }

    // ---- SWIM ---------------------------------------------------------------------------------

    /// A SWIM packet from the network: taken only from a peer of ours (a node that answered a
    /// greeting, with every check that takes), and, without the cluster secret, only over a
    /// connection from the host we know it at, when we know it by an IP address. A stranger's
    /// packet is refused before foca reads more than its header.
    fn on_swim(&mut self, now: Time, packet: &[u8], from_host: Option<SmolStr>, out: &mut Vec<Action>) {
        let Some(swim) = self.swim.as_mut() else {
            out.push(Action::Refuse("this node does not use SWIM (--membership ping)".into()));
            return;
        };
        let Some(sender) = crate::swim::sender_of(packet) else {
            out.push(Action::Refuse("not a SWIM packet of a dftp node".into()));
            return;
        };
        let Some(peer) = self.peers.get(&sender.name).filter(|p| p.answered) else {
            out.push(Action::Refuse(format!("{:?} is not a peer of this node", sender.name)));
            return;
        };
        let known_ip = peer.mgmt_addr.host().trim_matches(['[', ']']).parse::<core::net::IpAddr>().ok();
        let from_ip = from_host.as_deref().and_then(|h| h.trim_matches(['[', ']']).parse::<core::net::IpAddr>().ok());
        if let (false, Some(known), Some(from)) = (self.cfg.authenticated, known_ip, from_ip) {
            if known != from {
                out.push(Action::Refuse(format!("{} is at {known}, not at {from}", sender.name)));
                return;
            }
        }
        if let Err(e) = swim.receive(now, packet) {
            out.push(Action::Refuse(format!("SWIM packet refused: {e}")));
        }
    }

    /// Runs SWIM's timers and carries out what it asks: packets go to the addresses we know
    /// our peers at; a member down is a peer lost; a member up that is no peer yet is greeted
    /// as a seed (it becomes a peer only by answering), one that was lost is greeted at once.
    fn run_swim(&mut self, now: Time, out: &mut Vec<Action>) {
        let Some(swim) = self.swim.as_mut() else { return };
        swim.tick(now);
        for o in swim.take() {
            match o {
                SwimOut::Send { to, packet } => {
                    let addr = match self.peers.get(&to.name) {
                        Some(p) => Some(p.mgmt_addr.clone()),
                        None => to.mgmt_addr().filter(|a| !a.host().is_empty()),
                    };
                    if let Some(to) = addr {
                        out.push(Action::SwimSend { to, packet });
                    }
                }
                SwimOut::Down(id) => self.lose(now, &id.name, out),
                SwimOut::Up(id) => match self.peers.get(&id.name) {
                    Some(p) if !p.is_alive() => self.greet_peer(now, &id.name, out),
                    Some(_) => {}
                    None if self.peers.len() >= MAX_PEERS => {}
                    None => {
                        if let Some(addr) = id.mgmt_addr().filter(|a| !a.host().is_empty()) {
                            self.add_seed(now, addr, Origin::Heard, out);
                        }
                    }
                },
            }
        }
    }

    /// Greets `addr` until it answers: now when it is new, later on its own schedule when it is
    /// already waiting ([`Seeds`]).
    fn add_seed(&mut self, now: Time, addr: PeerAddr, origin: Origin, out: &mut Vec<Action>) {
        match self.seeds.add(addr.clone(), origin, now) {
            Ok(true) => self.greet(addr, true, out),
            Ok(false) => {}
            Err(Refused::Full) => out.push(Action::Notice(Notice::SeedRefused { addr })),
        }
    }

    /// How long this node has been up.
    pub fn uptime(&self, now: Time) -> Span {
        now.since(self.started)
    }

    /// Each peer's last applied stream position, for tests and diagnostics.
    pub fn streams(&self) -> BTreeMap<SmolStr, Option<StreamPos>> {
        self.peers.iter().map(|(n, p)| (n.clone(), p.stream)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> PeerAddr {
        PeerAddr::parse(s).unwrap()
    }

    fn node(name: &str, port: u16) -> Node {
        let cfg =
            Config::new(name, "dftp", addr(&format!("127.0.0.1:{port}")), addr(&format!("127.0.0.1:{}", port + 1)), 1);
        Node::new(cfg, Time::from_secs(1000))
    }

    fn full_from(sender: &str, path: &str) -> Update {
        Update {
            files: vec![FileInfo {
                full_name: path.into(),
                dir: false,
                last_modified: 1,
                last_info_updated: 1,
                size_in_bytes: 3,
                file_mode: FileMode::file(0o644),
                owner_node: sender.into(),
                deletion: false,
            }],
            update_time: 1,
            full: true,
            sender_node_name: sender.into(),
            epoch: Some(7),
            seq: Some(0),
            buckets: None,
        }
    }

    fn cluster_of(name: &str, port: u16) -> ClusterInfo {
        let me = NodeInfo {
            name: name.into(),
            public_addr: format!("127.0.0.1:{port}"),
            mgmt_addr: format!("127.0.0.1:{}", port + 1),
            last_alive: 0,
            last_update_pushed: 0,
            last_update_received: 0,
            last_full_update_received: 0,
            epoch: None,
            seq: None,
            digest: None,
            swim: None,
        };
        ClusterInfo { name: "dftp".into(), me, peers: BTreeMap::new() }
    }

    #[test]
    fn a_full_update_that_overtakes_the_greeting_answer_is_kept_until_the_answer() {
        let mut a = node("a", 100);
        let t = Time::from_secs(1000);
        let actions = a.handle(t, Event::JoinRequested(vec![addr("127.0.0.1:201")]));
        assert!(actions.iter().any(|x| matches!(x, Action::Greet { greeting, .. } if greeting.request_full_update)));
        // b pushes its full update before our request returns with b's name.
        let actions = a.handle(t, Event::UpdateReceived(full_from("b", "x.txt")));
        assert!(!actions.iter().any(|x| matches!(x, Action::Notice(Notice::UpdateApplied { .. }))));
        let path = DfsPath::parse("x.txt").unwrap();
        assert!(a.snapshot(t).lookup(&path).is_none());
        let actions = a.handle(t, Event::GreetingAnswered { to: addr("127.0.0.1:201"), reply: cluster_of("b", 200) });
        assert!(actions.iter().any(|x| matches!(x, Action::Notice(Notice::UpdateApplied { full: true, .. }))));
        assert_eq!(a.snapshot(t).lookup(&path).unwrap().owner.as_str(), "b");
        assert!(!actions.iter().any(|x| matches!(x, Action::Greet { .. })), "no second request: {actions:?}");
    }

    #[test]
    fn a_seed_that_was_not_listening_yet_is_greeted_again_soon_then_at_the_pings() {
        let mut a = node("a", 100);
        let seed = addr("127.0.0.1:201");
        let greets = |actions: &[Action]| {
            actions.iter().filter(|x| matches!(x, Action::Greet { to, .. } if *to == seed)).count()
        };
        let t0 = Time::from_secs(1000);
        assert_eq!(greets(&a.handle(t0, Event::JoinRequested(vec![seed.clone()]))), 1);
        let failed =
            || Event::RequestFailed { request: Request::Greet(seed.clone()), reason: "connection refused".into() };
        let mut retries = Vec::new();
        let mut now = t0;
        a.handle(now, failed());
        // Step through a ping interval; each greeting fails at once.
        while now < t0 + a.cfg.ping_interval {
            now = now + Span::from_millis(100);
            if greets(&a.handle(now, Event::Timer)) > 0 {
                retries.push(now.since(t0).as_millis());
                a.handle(now, failed());
            }
        }
        assert_eq!(retries, [500, 1500, 3500, 7500], "backing off");
        // Once the seed answers, it is a peer: no more seed greetings.
        a.handle(now, Event::JoinRequested(vec![seed.clone()]));
        a.handle(now, Event::GreetingAnswered { to: seed.clone(), reply: cluster_of("b", 200) });
        assert!(a.seeds.is_empty());
        let later = now + crate::seeds::RETRY_FIRST;
        let actions = a.handle(later, Event::Timer);
        assert_eq!(greets(&actions), 0, "{actions:?}");
    }

    #[test]
    fn a_silent_seed_is_reported_at_once_then_at_most_once_a_minute() {
        let mut a = node("a", 100);
        let seed = addr("127.0.0.1:201");
        let greeted = |actions: Vec<Action>| -> Vec<PeerAddr> {
            actions
                .into_iter()
                .filter_map(|x| match x {
                    Action::Greet { to, .. } => Some(to),
                    _ => None,
                })
                .collect()
        };
        let t0 = Time::from_secs(1000);
        let mut asked = greeted(a.handle(t0, Event::JoinRequested(vec![seed.clone()])));
        let mut reports = Vec::new();
        let mut now = t0;
        // Five minutes of a seed that refuses every greeting, each failing 10 ms after it went out.
        while now < t0 + Span::from_millis(300_000) {
            now = now + Span::from_millis(10);
            for to in std::mem::take(&mut asked) {
                let failed = Event::RequestFailed { request: Request::Greet(to), reason: "connection refused".into() };
                for x in a.handle(now, failed) {
                    if let Action::Notice(Notice::SeedUnanswered { addr, failures, reason }) = x {
                        assert_eq!((&addr, reason.as_str()), (&seed, "connection refused"));
                        reports.push((now.since(t0).as_millis(), failures));
                    }
                }
            }
            asked = greeted(a.handle(now, Event::Timer));
        }
        assert_eq!(reports.first(), Some(&(10, 1)), "at the first failure: {reports:?}");
        assert!(reports.windows(2).all(|w| w[1].0 - w[0].0 >= crate::seeds::WARN_EVERY.as_millis()), "{reports:?}");
        assert!(reports.windows(2).all(|w| w[1].1 > w[0].1), "failures counted: {reports:?}");
        assert_eq!(reports.len(), 5, "once a minute while it stays silent: {reports:?}");
        // A failed greeting of an address that is no seed (a peer's ping) is not reported.
        let other = Event::RequestFailed { request: Request::Greet(addr("127.0.0.1:999")), reason: "x".into() };
        assert!(!a.handle(now, other).iter().any(|x| matches!(x, Action::Notice(Notice::SeedUnanswered { .. }))));
    }

    #[test]
    fn waiting_updates_are_bounded_by_the_greetings_under_way() {
        let mut a = node("a", 100);
        let t = Time::from_secs(1000);
        a.handle(t, Event::JoinRequested(vec![addr("127.0.0.1:201")]));
        a.handle(t, Event::UpdateReceived(full_from("b", "x.txt")));
        for i in 0..10 {
            a.handle(Time::from_secs(1001 + i), Event::UpdateReceived(full_from(&format!("invented{i}"), "y.txt")));
        }
        assert_eq!(a.early_full.len(), EARLY_FULL_PER_GREETING);
        assert!(!a.early_full.contains_key("b"), "the oldest went first");
        assert!(a.early_full.contains_key("invented9"));
        // The same sender replaces its own waiting update.
        a.handle(Time::from_secs(1020), Event::UpdateReceived(full_from("invented9", "z.txt")));
        assert_eq!(a.early_full.len(), EARLY_FULL_PER_GREETING);
    }

    /// A sender at `Seq` = `u64::MAX` that then sends an incremental update (here after a
    /// restart, with a new epoch) made the gap check overflow (reproduced with the
    /// `update_body` fuzz target; its seed corpus keeps the input).
    #[test]
    fn a_sequence_number_at_its_maximum_does_not_overflow() {
        let mut a = node("a", 100);
        let t = Time::from_secs(1000);
        let greeting = Greeting {
            name: "b".into(),
            public_addr: addr(":200"),
            mgmt_addr: addr(":201"),
            request_full_update: false,
        };
        a.handle(t, Event::GreetingReceived { greeting, from_host: Some("127.0.0.1".into()) });
        let mut full = full_from("b", "x.txt");
        full.seq = Some(u64::MAX);
        a.handle(t, Event::UpdateReceived(full));
        let mut next = full_from("b", "y.txt");
        next.full = false;
        next.epoch = Some(8);
        next.seq = Some(1);
        let actions = a.handle(t, Event::UpdateReceived(next));
        assert!(actions.iter().any(|x| matches!(x, Action::Notice(Notice::GapDetected { expected: None, .. }))));
        assert!(a.snapshot(t).lookup(&DfsPath::parse("y.txt").unwrap()).is_some());
    }

    #[test]
    fn a_full_update_from_a_stranger_without_a_greeting_under_way_is_ignored() {
        let mut a = node("a", 100);
        let t = Time::from_secs(1000);
        let actions = a.handle(t, Event::UpdateReceived(full_from("b", "x.txt")));
        assert!(actions.iter().any(|x| matches!(x, Action::Notice(Notice::UpdateIgnored { .. }))));
        // Even if b answers a greeting later, the old update is not applied.
        a.handle(t, Event::JoinRequested(vec![addr("127.0.0.1:201")]));
        a.handle(t, Event::GreetingAnswered { to: addr("127.0.0.1:201"), reply: cluster_of("b", 200) });
        assert!(a.snapshot(t).lookup(&DfsPath::parse("x.txt").unwrap()).is_none());
    }
}
