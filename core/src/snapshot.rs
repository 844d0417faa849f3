//! Read-only views of a node that readers keep while the node moves on.
//!
//! A snapshot is taken after a whole event has been applied, and cloning one is O(1) (the maps
//! are persistent), so an HTTP or FTP reader sees the tree before or after an update, never half
//! of one, and never holds up the node.

use std::collections::BTreeMap;
use std::sync::Arc;

use smol_str::SmolStr;

use crate::membership::{Liveness, StreamPos};
use crate::path::{DfsPath, Mount};
use crate::time::Time;
use crate::tree::{Entry, Holdings, Meta, NodeId, Tree};
use crate::wire::{ClusterInfo, FullUpdateBody, PeerAddr, UpdateHeader, UpdateSenders};

#[derive(Clone)]
pub struct Snapshot {
    pub(crate) tree: Tree,
    pub(crate) me: NodeId,
    pub(crate) me_name: SmolStr,
    pub(crate) mount: Mount,
    pub(crate) cluster: Arc<ClusterInfo>,
    pub(crate) public_addrs: Arc<BTreeMap<SmolStr, PeerAddr>>,
    /// The last update applied from each live peer that numbers its updates.
    pub(crate) applied: Arc<BTreeMap<SmolStr, StreamPos>>,
    /// This node, then every peer it knows, lost ones too.
    pub(crate) members: Arc<Vec<Member>>,
    /// Whether a greeting of ours that asked for a full update is under way: its answer, a full
    /// update, may come from a node not known yet.
    pub(crate) joining: bool,
}

/// One node of the cluster as this node sees it: the status page and the metrics show these.
/// Unlike [`Snapshot::cluster`] (the wire table, live peers only), lost peers are here too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub name: SmolStr,
    pub public_addr: String,
    pub mgmt_addr: String,
    /// Whether it is this node (always alive).
    pub is_me: bool,
    pub liveness: Liveness,
    /// When it last answered (this node: when the snapshot's tables were built, in the same
    /// second as the snapshot).
    pub last_seen: Time,
    /// When its last update arrived here (`None` for this node itself).
    pub last_update_in: Option<Time>,
    /// When this node last sent it an update (`None` for this node itself).
    pub last_update_out: Option<Time>,
}

impl Snapshot {
    /// Whose updates this node would apply now: the parser of an update body refuses the others
    /// at their first record ([`UpdateSenders`]).
    pub fn update_senders(&self) -> UpdateSenders {
        if self.joining {
            return UpdateSenders::Anyone;
        }
        UpdateSenders::Only(self.members.iter().filter(|m| !m.is_me).map(|m| m.name.clone()).collect())
    }

    /// Whether `other` shows the same tree because it is the same one (no change between the
    /// two snapshots); false says nothing. O(1).
    pub fn same_tree(&self, other: &Snapshot) -> bool {
        self.tree.same_as(&other.tree)
    }

    /// The entry at `path`, with its owner.
    pub fn lookup(&self, path: &DfsPath) -> Option<Entry> {
        self.tree.lookup(path)
    }

    /// Whether `path` is a directory of the tree.
    pub fn is_dir(&self, path: &DfsPath) -> bool {
        self.tree.is_dir(path)
    }

    /// A directory's children, directories first, then bytewise by name.
    pub fn list(&self, dir: &DfsPath) -> Option<Vec<Entry>> {
        self.tree.list(dir)
    }

    /// Every path starting with `prefix` (a plain string prefix of the relative path), sorted.
    pub fn find<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = DfsPath> + 'a {
        self.tree.find(prefix)
    }

    /// The table of `GET /cluster/`.
    pub fn cluster(&self) -> &ClusterInfo {
        &self.cluster
    }

    pub fn me(&self) -> &SmolStr {
        &self.me_name
    }

    /// Whether this node serves `entry` from its own disk.
    pub fn is_mine(&self, entry: &Entry) -> bool {
        entry.owner.as_str() == self.me_name
    }

    /// Where to fetch a file that `node` owns.
    pub fn public_addr_of(&self, node: &str) -> Option<&PeerAddr> {
        self.public_addrs.get(node)
    }

    /// The position, in this node's stream of updates, of the last one sent: every change of
    /// the local tree this snapshot shows goes to the peers in that update or an earlier one.
    /// An owner that wrote a file for a request passed on by another node tells that node this
    /// position, so that it can wait to show the change before it answers its client.
    pub fn stream_pos(&self) -> StreamPos {
        StreamPos { epoch: self.cluster.me.epoch.unwrap_or(0), seq: self.cluster.me.seq.unwrap_or(0) }
    }

    /// Whether this node has applied `node`'s updates up to `pos` (the same run of it, and that
    /// update or a later one).
    pub fn has_applied(&self, node: &str, pos: StreamPos) -> bool {
        self.applied.get(node).is_some_and(|p| p.epoch == pos.epoch && p.seq >= pos.seq)
    }

    /// This node, then its peers by name, lost ones included.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// What each node holds in the tree, by name ([`Tree::holdings`]). O(size of the tree):
    /// for pages and scrapes, not for every request.
    pub fn holdings(&self) -> BTreeMap<SmolStr, Holdings> {
        self.tree.holdings()
    }

    /// This node's own files, in path order.
    pub fn local_files(&self) -> impl Iterator<Item = (DfsPath, Meta)> + '_ {
        self.tree.view(self.me)
    }

    /// How many paths this node holds.
    pub fn local_count(&self) -> usize {
        self.tree.count_of(self.me)
    }

    /// The body of a full update of this node's files, as JSON in chunks of about `chunk` bytes,
    /// so that a large one is streamed rather than built whole.
    pub fn full_update_body(&self, header: UpdateHeader, chunk: usize) -> FullUpdateBody<'_> {
        FullUpdateBody::new(Box::new(self.local_files()), &self.me_name, header, chunk)
    }
}
