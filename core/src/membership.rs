//! What this node knows of the other nodes: addresses, liveness, and what each side owes the
//! other so that no update stays lost.

use std::collections::BTreeMap;

use smol_str::SmolStr;

use crate::outbox::Outbox;
use crate::time::{Span, Time};
use crate::tree::NodeId;
use crate::wire::{NodeInfo, PeerAddr};

/// Whether a peer's files are in the tree.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Liveness {
    /// Answering; its files are in the tree.
    Alive,
    /// Timed out; its files were removed. Still pinged, so that it comes back on its own when
    /// the network heals.
    Lost { since: Time },
}

/// The position of an update in a sender's stream.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct StreamPos {
    pub epoch: u64,
    pub seq: u64,
}

#[derive(Clone, Debug)]
pub struct Peer {
    pub name: SmolStr,
    pub id: NodeId,
    pub public_addr: PeerAddr,
    pub mgmt_addr: PeerAddr,
    pub liveness: Liveness,
    pub last_alive: Time,
    pub last_update_pushed: Option<Time>,
    pub last_update_received: Option<Time>,
    pub last_full_update_received: Option<Time>,
    /// It missed an update of ours: push a full one at the next contact, and no incremental
    /// ones until then.
    pub owes_full: bool,
    /// This incarnation has sent it a full update.
    pub sent_full: bool,
    /// Its view here is incomplete (never had a full update, or a gap was seen).
    pub wants_full: bool,
    /// When we last asked it for a full update.
    pub full_requested_at: Option<Time>,
    /// The last update applied from it, when it numbers its updates.
    pub stream: Option<StreamPos>,
    /// Our updates on their way to it.
    pub outbox: Outbox,
    /// Other addresses (public, management) an unsigned message in its name gave while it was
    /// alive: taken only if a greeting to the addresses we know fails before it answers there
    /// again (then it moved); forgotten when it does answer.
    pub claimed: Option<(PeerAddr, PeerAddr)>,
    /// It answered a greeting of ours at least once: it was really there, not only named in a
    /// greeting. One that never did is forgotten minutes after it is lost, not after
    /// `forget_after`.
    pub answered: bool,
    /// The last claim reported ([`crate::Notice::AddressConflict`]): a claim is reported once,
    /// not at every message that repeats it (a peer greeted by its host name greets us from its
    /// IP address, with an empty host in its addresses, at every ping).
    pub claim_reported: Option<(PeerAddr, PeerAddr)>,
}

impl Peer {
    pub fn new(name: SmolStr, id: NodeId, public_addr: PeerAddr, mgmt_addr: PeerAddr, now: Time) -> Peer {
        Peer {
            name,
            id,
            public_addr,
            mgmt_addr,
            liveness: Liveness::Alive,
            last_alive: now,
            last_update_pushed: None,
            last_update_received: None,
            last_full_update_received: None,
            owes_full: false,
            sent_full: false,
            wants_full: true,
            full_requested_at: None,
            stream: None,
            outbox: Outbox::default(),
            claimed: None,
            claim_reported: None,
            answered: false,
        }
    }

    pub fn is_alive(&self) -> bool {
        self.liveness == Liveness::Alive
    }

    /// Whether to ask for a full update now: we need one and have not asked recently (a large
    /// one can take a while to arrive, and asking again would only send it twice).
    pub fn should_request_full(&self, now: Time, patience: Span) -> bool {
        self.wants_full && self.full_requested_at.is_none_or(|t| now.since(t) >= patience)
    }

    /// Whether we lack some of its changes, when its cluster table says it is at `pos`: we
    /// applied an earlier position of its stream, or one of another run of it. Nothing applied
    /// yet (it just joined or came back, or it does not number its updates) is not behind:
    /// none of its files here can be stale then.
    pub fn is_behind(&self, pos: StreamPos) -> bool {
        self.stream.is_some_and(|l| l.epoch != pos.epoch || l.seq < pos.seq)
    }

    pub fn info(&self) -> NodeInfo {
        let secs = |t: Option<Time>| t.map_or(0, Time::unix_secs);
        NodeInfo {
            name: self.name.clone(),
            public_addr: self.public_addr.to_string(),
            mgmt_addr: self.mgmt_addr.to_string(),
            last_alive: self.last_alive.unix_secs(),
            last_update_pushed: secs(self.last_update_pushed),
            last_update_received: secs(self.last_update_received),
            last_full_update_received: secs(self.last_full_update_received),
            epoch: None,
            seq: None,
            digest: None,
            swim: None,
        }
    }
}

/// Peers by name. A BTreeMap, so that every walk over it is in the same order everywhere.
pub type Peers = BTreeMap<SmolStr, Peer>;
