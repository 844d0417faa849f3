//! The one in-memory network the integration tests wire real nodes through, in the spirit of
//! quinn-proto's test `Pair` and raft-rs's test network: the nodes with their configs and
//! disks, one clock the test moves ([`Net::now`]), and every request in flight between them.
//!
//! Nothing is carried out behind the test's back. An action that sends something puts a
//! [`Flight`] on the network, and it arrives only when the test delivers it ([`Net::deliver`],
//! [`Net::step`], [`Net::deliver_to`], [`Net::settle`]), or fails when the test fails it
//! ([`Net::fail`]) or when it crosses a partition ([`Net::isolate`], [`Net::cut`]) at delivery.
//! So a test can hold an update in flight while the sender goes on, lose one leg of an exchange
//! and not the other, or reorder a peer's queue; [`Net::run`] and [`Net::advance`] deliver
//! everything to quiescence for the tests that only care where the cluster ends up.
//!
//! A request travels in two legs, as over HTTP: the request, which its receiver handles, and the
//! reply (the receiver's cluster table for a greeting, an acknowledgement for an update), which
//! the requester handles. Either leg can be lost on its own: a greeting can reach its receiver
//! while the answer never comes back, and an update can be applied while its sender is told it
//! failed. Announcements are one leg, and lost without a word.

use std::collections::{BTreeMap, BTreeSet};

use dftp_core::anti_entropy::{DigestAnswer, DigestMsg};
use dftp_core::{
    Action, Announcement, Change, ClusterInfo, Config, DfsPath, Event, Greeting, Meta, Node, Notice, PeerAddr, Request,
    Snapshot, Span, StreamPos, Time, Update,
};
use smol_str::SmolStr;

use super::{full_update_of, model_canon, permute, snapshot_canon, t0, CanonEntry, Model};

/// Which flight: numbered in the order sent, never reused.
pub type FlightId = u64;

/// Deliveries in one [`Net::settle`] beyond which the cluster is taken not to quiesce.
const SETTLE_LIMIT: usize = 100_000;

/// What a flight carries.
#[derive(Clone, Debug)]
pub enum Carried {
    /// `POST /cluster/` to `addr`.
    Greeting { addr: PeerAddr, greeting: Greeting },
    /// `POST /update/` to the peer its sender calls `name` (full updates already streamed and
    /// parsed, as their receiver reads them).
    Update { name: SmolStr, update: Update },
    /// One multicast datagram to one node.
    Announcement(Announcement),
    /// The reply to a greeting to `addr`: the receiver's table, or why it refused.
    Answer { addr: PeerAddr, asked_full: bool, table: Result<ClusterInfo, String> },
    /// The reply to an update: taken, or why it was refused.
    Receipt { name: SmolStr, full: bool, outcome: Result<(), String> },
    /// `POST /digest/` to the peer its sender calls `name`.
    Digest { name: SmolStr, digest: DigestMsg },
    /// The reply to a digest: the receiver's answer, or why it refused.
    DigestReply { name: SmolStr, sent: StreamPos, answer: Result<DigestAnswer, String> },
    /// A SWIM packet (`POST /swim/`): nobody waits for its answer.
    Swim(Vec<u8>),
}

impl Carried {
    /// What kind of message it is, and its size on the wire (as the shell would send it).
    pub fn kind_and_bytes(&self) -> (&'static str, usize) {
        match self {
            Carried::Greeting { greeting, .. } => ("greeting", greeting.to_form().len()),
            Carried::Update { update, .. } if update.full => ("full update", update.to_json().len()),
            Carried::Update { update, .. } if update.buckets.is_some() => ("repair", update.to_json().len()),
            Carried::Update { update, .. } => ("incremental update", update.to_json().len()),
            Carried::Announcement(a) => ("announcement", a.to_json().len()),
            Carried::Answer { table, .. } => ("greeting answer", table.as_ref().map_or(0, |t| t.to_json().len())),
            Carried::Receipt { .. } => ("update answer", 2),
            Carried::Digest { digest, .. } => ("digest", digest.to_json().len()),
            Carried::DigestReply { answer, .. } => ("digest answer", answer.as_ref().map_or(0, |a| a.to_json().len())),
            Carried::Swim(packet) => ("swim", packet.len()),
        }
    }
}

/// Legs sent and their bytes, `(messages, bytes)`, by sender and kind
/// ([`Carried::kind_and_bytes`]).
pub type Traffic = BTreeMap<(usize, &'static str), (u64, u64)>;

/// One leg of something on its way from one node to another.
#[derive(Clone, Debug)]
pub struct Flight {
    pub id: FlightId,
    pub from: usize,
    /// `None` when no node of the net has the address it was sent to: it can only fail.
    pub to: Option<usize>,
    pub carried: Carried,
    /// For a reply, the request it answers.
    pub answers: Option<FlightId>,
}

impl Flight {
    pub fn is_update(&self) -> bool {
        matches!(self.carried, Carried::Update { .. })
    }

    pub fn is_greeting(&self) -> bool {
        matches!(self.carried, Carried::Greeting { .. })
    }

    pub fn is_reply(&self) -> bool {
        matches!(self.carried, Carried::Answer { .. } | Carried::Receipt { .. } | Carried::DigestReply { .. })
    }

    /// The node waiting for the outcome of the request this leg belongs to (none for an
    /// announcement).
    pub fn requester(&self) -> Option<usize> {
        match self.carried {
            Carried::Greeting { .. } | Carried::Update { .. } | Carried::Digest { .. } => Some(self.from),
            Carried::Answer { .. } | Carried::Receipt { .. } | Carried::DigestReply { .. } => self.to,
            Carried::Announcement(_) | Carried::Swim(_) => None,
        }
    }

    /// Whether node `i` sent it or waits for it: its requests and announcements, and the
    /// replies to its requests.
    pub fn started_by(&self, i: usize) -> bool {
        self.requester() == Some(i)
            || self.from == i && matches!(self.carried, Carried::Announcement(_) | Carried::Swim(_))
    }

    /// The event that tells the requester this leg was lost, and to whom it goes.
    fn failure(&self, reason: &str) -> Option<(usize, Event)> {
        let request = match &self.carried {
            Carried::Greeting { addr, .. } | Carried::Answer { addr, .. } => Request::Greet(addr.clone()),
            Carried::Update { name, update } => Request::Update { to: name.clone(), full: update.full },
            Carried::Receipt { name, full, .. } => Request::Update { to: name.clone(), full: *full },
            Carried::Digest { name, .. } | Carried::DigestReply { name, .. } => Request::Digest(name.clone()),
            Carried::Announcement(_) | Carried::Swim(_) => return None,
        };
        Some((self.requester()?, Event::RequestFailed { request, reason: reason.into() }))
    }
}

/// One node of the net, with what its disk holds (for [`Net::change`] and [`Net::restart`]).
pub struct Member {
    pub cfg: Config,
    pub node: Node,
    pub disk: BTreeMap<DfsPath, Meta>,
}

/// Real nodes, a clock, and every leg in flight between them.
pub struct Net {
    /// The time every event is handled at; the test moves it.
    pub now: Time,
    /// Chunk size that full updates are streamed in before their receiver parses them.
    pub chunk: usize,
    members: Vec<Member>,
    /// In the order sent; a link's queue is the flights on it, in this order.
    flights: Vec<Flight>,
    next_id: FlightId,
    isolated: BTreeSet<usize>,
    /// Directed links on which every leg fails.
    cut: BTreeSet<(usize, usize)>,
    /// Nodes whose incoming updates are kept for the test instead of handled.
    holding: BTreeSet<usize>,
    held: BTreeMap<(usize, usize), Vec<Update>>,
    notices: Vec<(usize, Notice)>,
    /// Per (node, peer name): a greeting of the node's that asked the peer for a full update
    /// was answered, and no full update from the peer has been applied since.
    awaiting_full: BTreeMap<(usize, SmolStr), bool>,
    last_epoch: u64,
    /// The node whose actions [`Net::run`] is collecting, and what it collected.
    capture: Option<(usize, Vec<Action>)>,
    /// When on ([`Net::count_traffic`]): legs sent and their bytes, by sender and kind.
    traffic: Option<Traffic>,
    /// Every leg ever sent, in order: (from, to, the leg), for tests that count messages.
    sent: Vec<Flight>,
}

impl Net {
    /// These nodes, started at [`t0`], knowing nothing of each other, with empty disks.
    pub fn new(cfgs: impl IntoIterator<Item = Config>) -> Net {
        let members: Vec<Member> = cfgs
            .into_iter()
            .map(|cfg| Member { node: Node::new(cfg.clone(), t0()), cfg, disk: BTreeMap::new() })
            .collect();
        let last_epoch = members.iter().map(|m| m.cfg.epoch).max().unwrap_or(0);
        Net {
            now: t0(),
            chunk: 97,
            members,
            flights: Vec::new(),
            next_id: 0,
            isolated: BTreeSet::new(),
            cut: BTreeSet::new(),
            holding: BTreeSet::new(),
            held: BTreeMap::new(),
            notices: Vec::new(),
            awaiting_full: BTreeMap::new(),
            last_epoch,
            capture: None,
            traffic: None,
            sent: Vec::new(),
        }
    }

    // ---- the nodes ---------------------------------------------------------------------------

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn node(&self, i: usize) -> &Node {
        &self.members[i].node
    }

    pub fn cfg(&self, i: usize) -> &Config {
        &self.members[i].cfg
    }

    pub fn name(&self, i: usize) -> &str {
        &self.members[i].cfg.name
    }

    /// The table node `i` answers a greeting with now.
    pub fn table(&self, i: usize) -> ClusterInfo {
        self.node(i).cluster_info(self.now)
    }

    pub fn snapshot(&self, i: usize) -> Snapshot {
        self.node(i).snapshot(self.now)
    }

    /// The canonical form of node `i`'s merged tree.
    pub fn canon(&self, i: usize) -> Vec<CanonEntry> {
        snapshot_canon(&self.snapshot(i))
    }

    /// Node `i`'s own files as its tree holds them (a model view).
    pub fn local_files(&self, i: usize) -> BTreeMap<DfsPath, Meta> {
        self.snapshot(i).local_files().map(|(p, m)| (p.clone(), m)).collect()
    }

    fn by_addr(&self, addr: &PeerAddr) -> Option<usize> {
        self.members.iter().position(|m| &m.cfg.mgmt_addr == addr)
    }

    // ---- events ------------------------------------------------------------------------------

    /// Feeds one event to node `i` and puts what it sends on the network, delivering nothing.
    /// Returns its actions.
    pub fn handle(&mut self, i: usize, event: Event) -> Vec<Action> {
        self.feed(i, event)
    }

    /// Feeds one event to node `i` and delivers everything to quiescence; returns every action
    /// of node `i` on the way (those of the replies it got included).
    pub fn run(&mut self, i: usize, event: Event) -> Vec<Action> {
        assert!(self.capture.is_none(), "Net::run does not nest");
        self.capture = Some((i, Vec::new()));
        self.feed(i, event);
        self.settle();
        self.capture.take().map(|(_, actions)| actions).unwrap_or_default()
    }

    /// Node `i`'s timers, to quiescence.
    pub fn tick(&mut self, i: usize) -> Vec<Action> {
        self.run(i, Event::Timer)
    }

    /// Moves time forward second by second, with every node's timers run to quiescence each
    /// second.
    pub fn advance(&mut self, secs: u64) {
        for _ in 0..secs {
            self.now = self.now + Span::from_secs(1);
            for i in 0..self.len() {
                self.tick(i);
            }
        }
    }

    /// Node `i` is asked to join node `j` (`--join`), to quiescence: how two nodes meet.
    pub fn join(&mut self, i: usize, j: usize) -> Vec<Action> {
        let addr = self.cfg(j).mgmt_addr.clone();
        self.run(i, Event::JoinRequested(vec![addr]))
    }

    fn feed(&mut self, i: usize, event: Event) -> Vec<Action> {
        let actions = self.members[i].node.handle(self.now, event);
        for a in &actions {
            self.dispatch(i, a);
        }
        if let Some((c, log)) = &mut self.capture {
            if *c == i {
                log.extend(actions.iter().cloned());
            }
        }
        actions
    }

    /// Carries out one action of node `i` as the shell would: requests go on the network.
    fn dispatch(&mut self, i: usize, action: &Action) {
        match action {
            Action::Greet { to, greeting } => {
                let carried = Carried::Greeting { addr: to.clone(), greeting: greeting.clone() };
                self.send(i, self.by_addr(to), carried, None);
            }
            Action::SendUpdate { to, addr, update } => {
                let carried = Carried::Update { name: to.clone(), update: (**update).clone() };
                self.send(i, self.by_addr(addr), carried, None);
            }
            Action::SendFullUpdate { to, addr, .. } => {
                let update = full_update_of(action, self.chunk).expect("a full update");
                self.send(i, self.by_addr(addr), Carried::Update { name: to.clone(), update }, None);
            }
            Action::Announce(a) => {
                for j in (0..self.len()).filter(|&j| j != i) {
                    self.send(i, Some(j), Carried::Announcement(a.clone()), None);
                }
            }
            Action::Notice(n) => {
                if let Notice::UpdateApplied { from, full: true, .. } = n {
                    self.awaiting_full.insert((i, from.clone()), false);
                }
                self.notices.push((i, n.clone()));
            }
            Action::SendDigest { to, addr, digest } => {
                let carried = Carried::Digest { name: to.clone(), digest: digest.clone() };
                self.send(i, self.by_addr(addr), carried, None);
            }
            Action::SwimSend { to, packet } => {
                self.send(i, self.by_addr(to), Carried::Swim(packet.clone()), None);
            }
            Action::Refuse(_) | Action::DigestReply(_) | Action::WakeAt(_) => {}
        }
    }

    fn send(&mut self, from: usize, to: Option<usize>, carried: Carried, answers: Option<FlightId>) {
        if let Some(traffic) = &mut self.traffic {
            let (kind, bytes) = carried.kind_and_bytes();
            let t = traffic.entry((from, kind)).or_default();
            t.0 += 1;
            t.1 += bytes as u64;
        }
        let id = self.next_id;
        self.next_id += 1;
        let flight = Flight { id, from, to, carried, answers };
        self.sent.push(flight.clone());
        self.flights.push(flight);
    }

    /// Every leg sent so far, in order (the log of [`Net::send`]).
    pub fn sent(&self) -> &[Flight] {
        &self.sent
    }

    // ---- the network -------------------------------------------------------------------------

    /// Counts every leg sent from now on ([`Net::traffic`]), starting from zero.
    pub fn count_traffic(&mut self) {
        self.traffic = Some(BTreeMap::new());
    }

    /// Legs sent and their bytes, by sender and kind, since [`Net::count_traffic`].
    pub fn traffic(&self) -> Traffic {
        self.traffic.clone().unwrap_or_default()
    }

    /// Every leg in flight, in the order sent.
    pub fn in_flight(&self) -> &[Flight] {
        &self.flights
    }

    /// The queue from node `from` to node `to`, in order.
    pub fn queue(&self, from: usize, to: usize) -> Vec<&Flight> {
        self.flights.iter().filter(|f| f.from == from && f.to == Some(to)).collect()
    }

    /// The updates in flight from `from` to `to` (requests not yet delivered), in order.
    pub fn updates_on(&self, from: usize, to: usize) -> Vec<Update> {
        self.queue(from, to)
            .into_iter()
            .filter_map(|f| match &f.carried {
                Carried::Update { update, .. } => Some(update.clone()),
                _ => None,
            })
            .collect()
    }

    /// The first flight that `pred` picks, in the order sent.
    pub fn find(&self, pred: impl Fn(&Flight) -> bool) -> Option<FlightId> {
        self.flights.iter().find(|f| pred(f)).map(|f| f.id)
    }

    /// The oldest update request in flight from `from` to `to`.
    pub fn update_on(&self, from: usize, to: usize) -> Option<FlightId> {
        self.find(|f| f.from == from && f.to == Some(to) && f.is_update())
    }

    /// The reply in flight to the request `id`.
    pub fn reply_to(&self, id: FlightId) -> Option<FlightId> {
        self.find(|f| f.answers == Some(id))
    }

    fn take(&mut self, id: FlightId) -> Flight {
        let at = self.flights.iter().position(|f| f.id == id).unwrap_or_else(|| panic!("flight {id} is not in flight"));
        self.flights.remove(at)
    }

    fn blocked(&self, f: &Flight) -> bool {
        match f.to {
            None => true,
            Some(to) => {
                self.isolated.contains(&f.from) || self.isolated.contains(&to) || self.cut.contains(&(f.from, to))
            }
        }
    }

    /// Delivers one leg (or fails it, when it crosses a partition). Returns the actions of the
    /// node that handled it.
    pub fn deliver(&mut self, id: FlightId) -> Vec<Action> {
        let f = self.take(id);
        if self.blocked(&f) {
            return self.lost(&f, "unreachable");
        }
        let to = f.to.expect("a leg that is not blocked has a receiver");
        match f.carried {
            Carried::Greeting { addr, greeting } => {
                let from_host = Some(SmolStr::from(self.cfg(f.from).mgmt_addr.host()));
                let asked_full = greeting.request_full_update;
                let actions = self.feed(to, Event::GreetingReceived { greeting, from_host });
                let table = match refusal(&actions) {
                    Some(reason) => Err(reason),
                    None => Ok(self.table(to)),
                };
                self.send(to, Some(f.from), Carried::Answer { addr, asked_full, table }, Some(f.id));
                actions
            }
            Carried::Update { name, update } => {
                let full = update.full;
                let (actions, outcome) = if self.holding.contains(&to) {
                    self.held.entry((f.from, to)).or_default().push(update);
                    (Vec::new(), Ok(()))
                } else {
                    let actions = self.feed(to, Event::UpdateReceived(update));
                    let outcome = refusal(&actions).map_or(Ok(()), Err);
                    (actions, outcome)
                };
                self.send(to, Some(f.from), Carried::Receipt { name, full, outcome }, Some(f.id));
                actions
            }
            Carried::Digest { name, digest } => {
                let sent = digest.pos();
                let actions = self.feed(to, Event::DigestReceived(digest));
                let answer = actions
                    .iter()
                    .find_map(|a| match a {
                        Action::DigestReply(answer) => Some(Ok(answer.clone())),
                        Action::Refuse(reason) => Some(Err(reason.clone())),
                        _ => None,
                    })
                    .unwrap_or_else(|| Err("no answer".into()));
                self.send(to, Some(f.from), Carried::DigestReply { name, sent, answer }, Some(f.id));
                actions
            }
            Carried::DigestReply { name, sent, answer } => match answer {
                Ok(answer) => self.feed(to, Event::DigestAnswered { to: name, sent, answer }),
                Err(reason) => self.feed(to, Event::RequestFailed { request: Request::Digest(name), reason }),
            },
            Carried::Announcement(announcement) => {
                let from_host = Some(SmolStr::from(self.cfg(f.from).mgmt_addr.host()));
                self.feed(to, Event::AnnouncementReceived { announcement, from_host })
            }
            Carried::Swim(packet) => {
                let from_host = Some(SmolStr::from(self.cfg(f.from).mgmt_addr.host()));
                self.feed(to, Event::SwimReceived { packet, from_host })
            }
            Carried::Answer { addr, asked_full, table } => match table {
                Ok(reply) => {
                    if asked_full {
                        self.awaiting_full.insert((to, reply.me.name.clone()), true);
                    }
                    self.feed(to, Event::GreetingAnswered { to: addr, reply })
                }
                Err(reason) => self.feed(to, Event::RequestFailed { request: Request::Greet(addr), reason }),
            },
            Carried::Receipt { name, full, outcome } => match outcome {
                Ok(()) => self.feed(to, Event::UpdateDelivered { to: name, full }),
                Err(reason) => {
                    self.feed(to, Event::RequestFailed { request: Request::Update { to: name, full }, reason })
                }
            },
        }
    }

    /// Delivers the request `id` and then its reply; returns the requester's actions on the
    /// reply.
    pub fn exchange(&mut self, id: FlightId) -> Vec<Action> {
        self.deliver(id);
        match self.reply_to(id) {
            Some(reply) => self.deliver(reply),
            None => Vec::new(), // it crossed a partition: the requester has been told
        }
    }

    /// Delivers the oldest leg in flight, if any; returns the actions of the node that handled it.
    pub fn step(&mut self) -> Option<Vec<Action>> {
        let id = self.flights.first()?.id;
        Some(self.deliver(id))
    }

    /// Delivers everything, what the deliveries send included, oldest first, until nothing is in
    /// flight.
    pub fn settle(&mut self) {
        for _ in 0..SETTLE_LIMIT {
            if self.step().is_none() {
                return;
            }
        }
        panic!("the net did not quiesce in {SETTLE_LIMIT} deliveries: {:?}", &self.flights[..10]);
    }

    /// Delivers every leg to node `j`, oldest first, until none is in flight (the other nodes
    /// handle nothing meanwhile, so their replies to `j`'s requests stay in flight).
    pub fn deliver_to(&mut self, j: usize) {
        for _ in 0..SETTLE_LIMIT {
            match self.find(|f| f.to == Some(j)) {
                Some(id) => self.deliver(id),
                None => return,
            };
        }
        panic!("node {j} kept being sent things");
    }

    /// Fails one leg: its requester is told the request failed (a lost announcement is only
    /// gone). Returns the requester's actions.
    pub fn fail(&mut self, id: FlightId) -> Vec<Action> {
        let f = self.take(id);
        self.lost(&f, "timed out")
    }

    /// Fails every leg `pred` picks, oldest first (a partition of what is under way now).
    pub fn fail_all(&mut self, pred: impl Fn(&Flight) -> bool) {
        while let Some(id) = self.find(&pred) {
            self.fail(id);
        }
    }

    /// Takes one leg off the network without telling anyone: the requester waits forever, as
    /// with a shell that loses track of a request.
    pub fn drop_flight(&mut self, id: FlightId) -> Flight {
        self.take(id)
    }

    /// Reorders the queue from `from` to `to` by sorting it on `keys` (ties keep their order);
    /// the other flights keep their places.
    pub fn reorder(&mut self, from: usize, to: usize, keys: &[u32]) {
        let slots: Vec<usize> = (0..self.flights.len())
            .filter(|&k| self.flights[k].from == from && self.flights[k].to == Some(to))
            .collect();
        let queue: Vec<Flight> = slots.iter().map(|&k| self.flights[k].clone()).collect();
        for (slot, f) in slots.into_iter().zip(permute(&queue, keys)) {
            self.flights[slot] = f;
        }
    }

    fn lost(&mut self, f: &Flight, reason: &str) -> Vec<Action> {
        match f.failure(reason) {
            Some((i, event)) => self.feed(i, event),
            None => Vec::new(),
        }
    }

    // ---- partitions ----------------------------------------------------------------------------

    /// Everything to or from node `i` fails when delivered, until [`Net::rejoin`].
    pub fn isolate(&mut self, i: usize) {
        self.isolated.insert(i);
    }

    pub fn rejoin(&mut self, i: usize) {
        self.isolated.remove(&i);
    }

    pub fn rejoin_all(&mut self) {
        self.isolated.clear();
        self.cut.clear();
    }

    /// Everything from `from` to `to` (one direction only) fails when delivered, until
    /// [`Net::mend`].
    pub fn cut(&mut self, from: usize, to: usize) {
        self.cut.insert((from, to));
    }

    pub fn mend(&mut self, from: usize, to: usize) {
        self.cut.remove(&(from, to));
    }

    // ---- holding a node's updates --------------------------------------------------------------

    /// From now on the updates delivered to node `j` are acknowledged to their sender but kept
    /// for the test ([`Net::take_held`]) instead of handled: the test builds streams of real
    /// updates and hands them to `j` ([`Net::receive`]) in whatever order it likes.
    pub fn hold_updates_to(&mut self, j: usize) {
        self.holding.insert(j);
    }

    /// The updates held from `from` to `to` since the last call, in the order they arrived.
    pub fn take_held(&mut self, from: usize, to: usize) -> Vec<Update> {
        self.held.remove(&(from, to)).unwrap_or_default()
    }

    /// Node `j` gets `update` (whoever sent it), to quiescence.
    pub fn receive(&mut self, j: usize, update: &Update) -> Vec<Action> {
        self.run(j, Event::UpdateReceived(update.clone()))
    }

    // ---- what the nodes said -------------------------------------------------------------------

    /// Every notice, with the node that gave it, in order.
    pub fn notices(&self) -> &[(usize, Notice)] {
        &self.notices
    }

    pub fn notices_of(&self, i: usize) -> Vec<Notice> {
        self.notices.iter().filter(|(j, _)| *j == i).map(|(_, n)| n.clone()).collect()
    }

    /// How many gaps node `i` has seen in its peers' streams.
    pub fn gaps(&self, i: usize) -> usize {
        self.notices_of(i).iter().filter(|n| matches!(n, Notice::GapDetected { .. })).count()
    }

    /// Whether node `i` asked `peer` for a full update (and was answered) and has not applied
    /// one from it since.
    pub fn awaits_full_from(&self, i: usize, peer: &str) -> bool {
        self.awaiting_full.get(&(i, SmolStr::from(peer))).copied().unwrap_or(false)
    }

    /// The peers node `i` awaits a full update from.
    pub fn awaited_full_updates(&self, i: usize) -> Vec<String> {
        self.awaiting_full
            .iter()
            .filter(|((j, _), awaits)| *j == i && **awaits)
            .map(|((_, n), _)| n.to_string())
            .collect()
    }

    // ---- disks and restarts --------------------------------------------------------------------

    /// Changes node `i`'s disk (`Some` writes, `None` deletes) and tells it, to quiescence.
    pub fn change(&mut self, i: usize, changes: Vec<(DfsPath, Option<Meta>)>) -> Vec<Action> {
        let disk = &mut self.members[i].disk;
        let mut out = Vec::new();
        for (path, meta) in changes {
            match meta {
                Some(m) => {
                    disk.insert(path.clone(), m);
                    out.push(Change::Upsert(path, m));
                }
                None => {
                    disk.remove(&path);
                    out.push(Change::Remove(path));
                }
            }
        }
        self.run(i, Event::LocalChanges(out))
    }

    /// Changes node `i`'s disk without telling it (as while it is down).
    pub fn disk_mut(&mut self, i: usize) -> &mut BTreeMap<DfsPath, Meta> {
        &mut self.members[i].disk
    }

    /// Node `i` starts again, with a new epoch (greater than any so far), and scans its disk,
    /// to quiescence. What its old incarnation was waiting for (its requests, the replies to
    /// them) is gone with it; requests to it reach the new one.
    pub fn restart(&mut self, i: usize) {
        self.last_epoch += 1;
        let m = &mut self.members[i];
        m.cfg.epoch = self.last_epoch;
        m.node = Node::new(m.cfg.clone(), self.now);
        let files: Vec<(DfsPath, Meta)> = m.disk.iter().map(|(p, m)| (p.clone(), *m)).collect();
        self.flights.retain(|f| !f.started_by(i));
        self.awaiting_full.retain(|(j, _), _| *j != i);
        self.run(i, Event::LocalScan(files));
    }

    /// Every node's disk, by node name.
    pub fn model(&self) -> Model {
        self.members.iter().map(|m| (m.cfg.name.to_string(), m.disk.clone())).collect()
    }

    /// Which nodes do not (yet) show the merge of every node's disk.
    pub fn diverged(&self) -> Vec<usize> {
        let want = model_canon(&self.model());
        (0..self.len()).filter(|&i| self.canon(i) != want).collect()
    }
}

/// The reason of a refusal among `actions`, if the request was refused.
fn refusal(actions: &[Action]) -> Option<String> {
    actions.iter().find_map(|a| match a {
        Action::Refuse(reason) => Some(reason.clone()),
        _ => None,
    })
}
