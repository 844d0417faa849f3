//! SWIM failure detection between our nodes, with [`foca`].
//!
//! The original greets every peer every ping interval: N·(N−1) requests per interval. Between
//! our nodes, SWIM replaces that: each node probes one member per probe period, asks `k` others
//! to probe it indirectly when it does not answer in time, suspects it when none of them get an
//! answer either, and declares it down only when the suspicion is not refuted within the
//! suspicion time; membership changes ride on the probes. Each node sends a constant number of
//! messages per period, whatever the cluster's size.
//!
//! foca is sans-IO, like this crate: it asks for timers ([`foca::Runtime::submit_after`]), which
//! become times `now + d` here and are fed back by [`Swim::tick`] (the node's wake-ups); it
//! sends through [`foca::Runtime::send_to`], which becomes a [`SwimOut::Send`] the node turns
//! into an action; and it draws its random choices from a seeded RNG, so the same seed and
//! inputs give the same run (the simulator relies on it).
//!
//! What foca says is only ever a hint to the node (see `Node`'s handling of [`SwimOut`]): a
//! member that is down loses its files, as a timed-out peer does today, but a member that is up
//! and not yet a peer is only greeted, as a seed: the greeting and its answer are what make it a
//! peer, with every check a greeting gets. And the packets themselves are checked here before
//! foca sees them ([`SwimCodec`]): every identity in them must name a valid node name and
//! address.

use std::collections::BTreeMap;
use std::num::{NonZeroU32, NonZeroU8, NonZeroUsize};
use std::time::Duration;

use bytes::{Buf, BufMut};
use foca::{Codec, Foca, Header, Identity, Member, NoCustomBroadcast, Notification, PostcardCodec, Runtime, Timer};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use crate::time::{Span, Time};
use crate::wire::{check_name, PeerAddr};

/// The largest packet foca makes and takes: a probe with a few dozen membership updates on it.
/// Fits one UDP datagram on an ordinary network; here it bounds the body of `POST /swim/`.
pub const MAX_PACKET: usize = 1400;

/// The longest address an identity may carry (a host name and a port).
const MAX_ADDR: usize = 300;

/// One run of one node, as SWIM knows it. Two runs of a node share its name (foca's
/// [`Identity::addr`]): the later one (higher `epoch`, then higher `renewal`) wins, so a
/// restarted node replaces its old self at once instead of waiting for it to be forgotten.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SwimId {
    pub name: SmolStr,
    /// The node's management address, `host:port`: where its SWIM packets go.
    pub addr: SmolStr,
    /// The node's run ([`crate::Config::epoch`]): its start time, different at every restart.
    pub epoch: u64,
    /// How often this run was declared down and came back ([`Identity::renew`]).
    pub renewal: u32,
}

impl SwimId {
    pub fn new(name: &str, addr: &PeerAddr, epoch: u64, renewal: u32) -> SwimId {
        SwimId { name: name.into(), addr: addr.to_string().into(), epoch, renewal }
    }

    /// The management address, when it is one.
    pub fn mgmt_addr(&self) -> Option<PeerAddr> {
        PeerAddr::parse(&self.addr).ok()
    }

    /// Whether an identity that came from outside is one a node could have.
    fn is_valid(&self) -> bool {
        check_name(&self.name).is_ok() && self.addr.len() <= MAX_ADDR && self.mgmt_addr().is_some()
    }
}

impl Identity for SwimId {
    type Addr = SmolStr;

    /// A run declared down while it is alive (a false suspicion it could not refute in time)
    /// comes back as a new identity at once, rather than staying out of the cluster.
    fn renew(&self) -> Option<SwimId> {
        Some(SwimId { renewal: self.renewal.checked_add(1)?, ..self.clone() })
    }

    fn addr(&self) -> SmolStr {
        self.name.clone()
    }

    fn win_addr_conflict(&self, other: &SwimId) -> bool {
        (self.epoch, self.renewal) > (other.epoch, other.renewal)
    }
}

/// foca's postcard codec, with every decoded identity checked ([`SwimId::is_valid`]): a packet
/// naming an invalid one is refused whole. Postcard reads lengths from the packet, but never
/// past its end, and foca refuses packets over [`MAX_PACKET`] before decoding.
#[derive(Clone, Copy, Debug, Default)]
pub struct SwimCodec;

/// Why a packet was not taken.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("{0}")]
    Postcard(String),
    #[error("a SWIM identity with an invalid node name or address")]
    BadIdentity,
}

fn postcard_error(e: impl std::fmt::Display) -> DecodeError {
    DecodeError::Postcard(e.to_string())
}

impl Codec<SwimId> for SwimCodec {
    type Error = DecodeError;

    fn encode_header(&mut self, header: &Header<SwimId>, buf: impl BufMut) -> Result<(), DecodeError> {
        PostcardCodec.encode_header(header, buf).map_err(postcard_error)
    }

    fn decode_header(&mut self, buf: impl Buf) -> Result<Header<SwimId>, DecodeError> {
        let header: Header<SwimId> = PostcardCodec.decode_header(buf).map_err(postcard_error)?;
        if !header.src.is_valid() || !header.dst.is_valid() {
            return Err(DecodeError::BadIdentity);
        }
        if let foca::Message::PingReq { target: id, .. }
        | foca::Message::IndirectPing { origin: id, .. }
        | foca::Message::IndirectAck { target: id, .. }
        | foca::Message::ForwardedAck { origin: id, .. } = &header.message
        {
            if !id.is_valid() {
                return Err(DecodeError::BadIdentity);
            }
        }
        Ok(header)
    }

    fn encode_member(&mut self, member: &Member<SwimId>, buf: impl BufMut) -> Result<(), DecodeError> {
        PostcardCodec.encode_member(member, buf).map_err(postcard_error)
    }

    fn decode_member(&mut self, buf: impl Buf) -> Result<Member<SwimId>, DecodeError> {
        let member: Member<SwimId> = PostcardCodec.decode_member(buf).map_err(postcard_error)?;
        if !member.id().is_valid() {
            return Err(DecodeError::BadIdentity);
        }
        Ok(member)
    }
}

/// Decodes a packet's header, as foca will: the sender it names, for the node's check that the
/// packet came from a peer. `None` when it is not a packet foca would take.
pub fn sender_of(packet: &[u8]) -> Option<SwimId> {
    if packet.len() > MAX_PACKET {
        return None;
    }
    SwimCodec.decode_header(packet).ok().map(|h| h.src)
}

/// How a node watches whether its peers are alive (`--membership`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Membership {
    /// SWIM between our nodes; the original's nodes are greeted as before.
    Swim,
    /// Every peer greeted every ping interval, as the original does.
    Ping,
}

/// How SWIM runs: what the node's flags give ([`crate::Config::swim`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwimConfig {
    /// One member is probed per period (`--swim-probe-interval`; memberlist's LAN default: 1 s).
    pub probe_period: Span,
    /// How many others are asked to probe a member that did not answer in time (memberlist: 3).
    pub indirect_probes: usize,
    /// A suspected member is declared down after `suspicion_mult · max(1, log10 N)` probe
    /// periods, N the members known (memberlist's rule, with its LAN multiplier 4).
    pub suspicion_mult: u32,
    /// Seeds the RNG that picks the members to probe: the shell takes it from the OS, the
    /// simulator from its own seed.
    pub seed: u64,
}

impl SwimConfig {
    pub fn new(seed: u64) -> SwimConfig {
        SwimConfig { probe_period: Span::from_secs(1), indirect_probes: 3, suspicion_mult: 4, seed }
    }

    /// The suspicion time with `members` in the cluster.
    pub fn suspicion(&self, members: usize) -> Span {
        let n = members.max(1) as f64;
        let periods = f64::from(self.suspicion_mult) * n.log10().max(1.0);
        Span((self.probe_period.as_millis() as f64 * periods) as u64)
    }

    /// foca's configuration for a cluster of `members`: its LAN settings (memberlist's), with
    /// our probe period and suspicion, the direct probe's wait at half the period, and gossip
    /// to 3 members every fifth of a period (memberlist's 200 ms for its 1 s probe). foca
    /// gossips only while it has news to pass on (each piece at most `max_transmissions`
    /// times), so a cluster at rest sends nothing more than its probes; without it, news rode
    /// on the probes alone and a crash reached the last member only after about 30 periods
    /// at 50 members (a simulated loss of 20 % at once), against a dozen with it.
    fn foca_config(&self, members: usize) -> foca::Config {
        let n = NonZeroU32::new(u32::try_from(members).unwrap_or(u32::MAX).max(1)).unwrap_or(NonZeroU32::MIN);
        let period = Duration::from_millis(self.probe_period.as_millis().max(2));
        let mut c = foca::Config::new_lan(n);
        c.probe_period = period;
        c.probe_rtt = period / 2;
        c.num_indirect_probes = NonZeroUsize::new(self.indirect_probes.max(1)).unwrap_or(NonZeroUsize::MIN);
        c.suspect_to_down_after = Duration::from_millis(self.suspicion(members).as_millis().max(1));
        c.max_packet_size = NonZeroUsize::new(MAX_PACKET).unwrap_or(NonZeroUsize::MIN);
        c.max_transmissions = max_transmissions(members);
        c.periodic_gossip = Some(foca::PeriodicParams {
            frequency: (period / 5).max(Duration::from_millis(1)),
            num_members: NonZeroUsize::new(3).unwrap_or(NonZeroUsize::MIN),
        });
        c
    }
}

/// How many times each piece of news is passed on: `12 · log10(N + 1)`, three times foca's
/// and memberlist's LAN multiplier. With theirs (6 sends at 50 members), a member now and then
/// misses a crash's news and finds out only when its own turn comes to probe the crashed one —
/// up to N periods later (measured in the simulator's scale scenario: the last survivor of 50
/// dropped a crashed node after 49 periods, against 16 for the mean). More sends cost messages
/// only while there is news: foca gossips nothing when its queue is empty.
fn max_transmissions(members: usize) -> NonZeroU8 {
    let tx = (members as f64 + 1.0).log10() * 12.0;
    NonZeroU8::new(tx.clamp(1.0, 255.0) as u8).unwrap_or(NonZeroU8::MIN)
}

/// What SWIM asks of the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SwimOut {
    /// Send this packet to that member.
    Send { to: SwimId, packet: Vec<u8> },
    /// A member is up: new, or back.
    Up(SwimId),
    /// A member that was up is down.
    Down(SwimId),
}

/// What foca asked for during one call, collected and turned into [`SwimOut`]s and timers.
#[derive(Default)]
struct Collect {
    out: Vec<SwimOut>,
    timers: Vec<(Duration, Timer<SwimId>)>,
}

impl Runtime<SwimId> for Collect {
    fn notify(&mut self, notification: Notification<'_, SwimId>) {
        match notification {
            Notification::MemberUp(id) => self.out.push(SwimOut::Up(id.clone())),
            Notification::MemberDown(id) => self.out.push(SwimOut::Down(id.clone())),
            // A renamed member that is up is announced by `MemberUp` after this; the others
            // (we became active, idle, rejoined as a renewed identity) change nothing outside.
            _ => {}
        }
    }

    fn send_to(&mut self, to: SwimId, data: &[u8]) {
        self.out.push(SwimOut::Send { to, packet: data.to_vec() });
    }

    fn submit_after(&mut self, event: Timer<SwimId>, after: Duration) {
        self.timers.push((after, event));
    }
}

/// One node's SWIM member: foca, its timers as times, and what it asked for since the last
/// [`Swim::take`].
pub struct Swim {
    foca: Foca<SwimId, SwimCodec, StdRng, NoCustomBroadcast>,
    cfg: SwimConfig,
    /// foca's timers, by when they are due, then by the order they were asked for.
    timers: BTreeMap<(Time, u64), Timer<SwimId>>,
    timer_seq: u64,
    /// The member count foca's configuration was made for.
    sized_for: usize,
    pending: Collect,
}

impl Swim {
    pub fn new(me: SwimId, cfg: SwimConfig) -> Swim {
        let rng = StdRng::seed_from_u64(cfg.seed);
        let foca = Foca::new(me, cfg.foca_config(1), rng, SwimCodec);
        Swim { foca, cfg, timers: BTreeMap::new(), timer_seq: 0, sized_for: 1, pending: Collect::default() }
    }

    /// This node's identity now (its `renewal` grows when it was declared down and came back).
    pub fn identity(&self) -> &SwimId {
        self.foca.identity()
    }

    /// Makes `id` a member (a peer of ours whose own answer said it speaks SWIM), and asks it
    /// for the members it knows.
    pub fn meet(&mut self, now: Time, id: SwimId) {
        if self.foca.iter_members().any(|m| *m.id() == id) {
            return;
        }
        let _ = self.foca.apply_many(std::iter::once(Member::alive(id.clone())), true, &mut self.pending);
        let _ = self.foca.announce(id, &mut self.pending);
        self.settle(now);
    }

    /// A packet from the network. The error says why it was not taken.
    pub fn receive(&mut self, now: Time, packet: &[u8]) -> Result<(), String> {
        let result = self.foca.handle_data(packet, &mut self.pending).map_err(|e| e.to_string());
        self.settle(now);
        result
    }

    /// Runs the timers due by `now`.
    pub fn tick(&mut self, now: Time) {
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let timer = entry.remove();
            let _ = self.foca.handle_timer(timer, &mut self.pending);
            self.settle(now);
        }
    }

    /// When [`Swim::tick`] has work next.
    pub fn next_wake(&self) -> Option<Time> {
        self.timers.keys().next().map(|(t, _)| *t)
    }

    /// What SWIM asked for since the last call.
    pub fn take(&mut self) -> Vec<SwimOut> {
        std::mem::take(&mut self.pending.out)
    }

    /// Whether `name` is a member SWIM watches now (alive or suspected).
    pub fn watches(&self, name: &str) -> bool {
        self.foca.iter_members().any(|m| m.id().name == name)
    }

    /// The members SWIM watches now.
    pub fn members(&self) -> impl Iterator<Item = &SwimId> {
        self.foca.iter_members().map(|m| m.id())
    }

    /// Turns the timers foca asked for into times, and resizes its configuration when the
    /// cluster grew or shrank (the suspicion time and the number of times an update is passed
    /// on grow with log N).
    fn settle(&mut self, now: Time) {
        for (after, timer) in self.pending.timers.drain(..) {
            let at = now + Span(u64::try_from(after.as_millis()).unwrap_or(u64::MAX));
            self.timers.insert((at, self.timer_seq), timer);
            self.timer_seq += 1;
        }
        let n = self.foca.num_members() + 1;
        if n != self.sized_for {
            self.sized_for = n;
            let _ = self.foca.set_config(self.cfg.foca_config(n));
        }
    }
}
