//! The membership tables of a [`Snapshot`](crate::snapshot::Snapshot) — the wire table
//! (`ClusterInfo`), the live peers' public addresses, the last update applied from each, every
//! member with its state — kept from one snapshot to the next while what they show is the
//! same.
//!
//! Why: the shell takes a snapshot after every event, and with SWIM a node of a large cluster
//! handles many events that change no peer (a SWIM packet, a timer). Rebuilding four tables of
//! every peer for each — their addresses as strings, a map per table — was most of what a
//! node did at 200 peers (the simulator's scale scenario spent a third of its time there).
//! Comparing what the tables show with what they were built from costs no allocation.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use smol_str::SmolStr;

use crate::membership::{Liveness, Peer, Peers, StreamPos};
use crate::snapshot::Member;
use crate::time::Time;
use crate::wire::{ClusterInfo, PeerAddr};

/// What of a peer the tables show.
struct Shown {
    name: SmolStr,
    public_addr: PeerAddr,
    mgmt_addr: PeerAddr,
    liveness: Liveness,
    last_alive: Time,
    last_update_pushed: Option<Time>,
    last_update_received: Option<Time>,
    last_full_update_received: Option<Time>,
    stream: Option<StreamPos>,
}

impl Shown {
    fn of(p: &Peer) -> Shown {
        Shown {
            name: p.name.clone(),
            public_addr: p.public_addr.clone(),
            mgmt_addr: p.mgmt_addr.clone(),
            liveness: p.liveness,
            last_alive: p.last_alive,
            last_update_pushed: p.last_update_pushed,
            last_update_received: p.last_update_received,
            last_full_update_received: p.last_full_update_received,
            stream: p.stream,
        }
    }

    fn shows(&self, p: &Peer) -> bool {
        self.name == p.name
            && self.public_addr == p.public_addr
            && self.mgmt_addr == p.mgmt_addr
            && self.liveness == p.liveness
            && self.last_alive == p.last_alive
            && self.last_update_pushed == p.last_update_pushed
            && self.last_update_received == p.last_update_received
            && self.last_full_update_received == p.last_full_update_received
            && self.stream == p.stream
    }
}

/// What the tables were built from: this node's own row (its `LastAlive` is the second the
/// table was built in, its `Seq` and SWIM renewal change) and every peer's.
pub(super) struct Basis {
    second: i64,
    seq: u64,
    swim_renewal: Option<u32>,
    peers: Vec<Shown>,
}

impl Basis {
    pub fn new(second: i64, seq: u64, swim_renewal: Option<u32>, peers: &Peers) -> Basis {
        Basis { second, seq, swim_renewal, peers: peers.values().map(Shown::of).collect() }
    }

    /// Whether tables built from `self` show the same as ones built now.
    fn matches(&self, second: i64, seq: u64, swim_renewal: Option<u32>, peers: &Peers) -> bool {
        self.second == second
            && self.seq == seq
            && self.swim_renewal == swim_renewal
            && self.peers.len() == peers.len()
            && self.peers.iter().zip(peers.values()).all(|(s, p)| s.shows(p))
    }
}

/// The tables themselves (each shared with every snapshot taken while they stand).
#[derive(Clone)]
pub(super) struct Tables {
    pub cluster: Arc<ClusterInfo>,
    pub public_addrs: Arc<BTreeMap<SmolStr, PeerAddr>>,
    pub applied: Arc<BTreeMap<SmolStr, StreamPos>>,
    pub members: Arc<Vec<Member>>,
}

/// The last tables built, with what they were built from.
#[derive(Default)]
pub(super) struct Kept(RefCell<Option<(Basis, Tables)>>);

impl Kept {
    /// The tables for this state: the kept ones when they show the same, else `build`'s (kept
    /// for next time). `second` is `now` in whole seconds (the wire's resolution).
    pub fn get(
        &self,
        second: i64,
        seq: u64,
        swim_renewal: Option<u32>,
        peers: &Peers,
        build: impl FnOnce() -> Tables,
    ) -> Tables {
        let mut kept = self.0.borrow_mut();
        if let Some((basis, tables)) = kept.as_ref() {
            if basis.matches(second, seq, swim_renewal, peers) {
                return tables.clone();
            }
        }
        let tables = build();
        *kept = Some((Basis::new(second, seq, swim_renewal, peers), tables.clone()));
        tables
    }
}
