//! Read-only views of a node that readers keep while the node moves on.
//!
//! A snapshot is taken after a whole event has been applied, and cloning one is O(1) (the maps
//! are persistent), so an HTTP or FTP reader sees the tree before or after an update, never half
//! of one, and never holds up the node.

use std::collections::BTreeMap;
use std::sync::Arc;

use smol_str::SmolStr;

use crate::path::DfsPath;
use crate::tree::{Entry, Meta, NodeId, Tree};
use crate::wire::{ClusterInfo, FileInfo, PeerAddr};

#[derive(Clone)]
pub struct Snapshot {
    pub(crate) tree: Tree,
    pub(crate) me: NodeId,
    pub(crate) me_name: SmolStr,
    pub(crate) cluster: Arc<ClusterInfo>,
    pub(crate) public_addrs: Arc<BTreeMap<SmolStr, PeerAddr>>,
}

impl Snapshot {
    /// The entry at `path`, with its owner.
    pub fn lookup(&self, path: &DfsPath) -> Option<Entry> {
        self.tree.lookup(path)
    }

    /// A directory's children, directories first, then bytewise by name.
    pub fn list(&self, dir: &DfsPath) -> Option<Vec<Entry>> {
        self.tree.list(dir)
    }

    /// Every path starting with `prefix` (a plain string prefix of the relative path), sorted.
    pub fn find<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a DfsPath> + 'a {
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

    /// This node's own files, in path order.
    pub fn local_files(&self) -> impl Iterator<Item = (&DfsPath, Meta)> + '_ {
        self.tree.view(self.me)
    }

    /// How many paths this node holds.
    pub fn local_count(&self) -> usize {
        self.tree.count_of(self.me)
    }

    /// The body of a full update of this node's files, as JSON in chunks of about `chunk` bytes,
    /// so that a large one is streamed rather than built whole.
    pub fn full_update_body(&self, header: UpdateHeader, chunk: usize) -> FullUpdateBody<'_> {
        FullUpdateBody { snapshot: self, files: Box::new(self.local_files()), header, chunk, state: BodyState::Start }
    }
}

/// The fields of an update besides its files.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct UpdateHeader {
    pub update_time: i64,
    pub epoch: u64,
    pub seq: u64,
}

enum BodyState {
    Start,
    Files { first: bool },
    Done,
}

/// Iterator over the chunks of a full update body. Concatenated, they are one JSON document in
/// the original's field order: `{"Files":[...],"UpdateTime":..,"Full":true,"SenderNodeName":..}`.
pub struct FullUpdateBody<'a> {
    snapshot: &'a Snapshot,
    files: Box<dyn Iterator<Item = (&'a DfsPath, Meta)> + 'a>,
    header: UpdateHeader,
    chunk: usize,
    state: BodyState,
}

impl Iterator for FullUpdateBody<'_> {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        let mut buf = Vec::with_capacity(self.chunk + 512);
        loop {
            match self.state {
                BodyState::Start => {
                    buf.extend_from_slice(b"{\"Files\":[");
                    self.state = BodyState::Files { first: true };
                }
                BodyState::Files { first } => match self.files.next() {
                    Some((path, meta)) => {
                        if !first {
                            buf.push(b',');
                        }
                        let info = file_info(path, meta, &self.snapshot.me_name, false);
                        serde_json::to_writer(&mut buf, &info).expect("a FileInfo always serialises");
                        self.state = BodyState::Files { first: false };
                        if buf.len() >= self.chunk {
                            return Some(buf);
                        }
                    }
                    None => {
                        buf.extend_from_slice(b"],");
                        buf.extend_from_slice(b"\"UpdateTime\":");
                        buf.extend_from_slice(self.header.update_time.to_string().as_bytes());
                        buf.extend_from_slice(b",\"Full\":true,\"SenderNodeName\":");
                        serde_json::to_writer(&mut buf, self.snapshot.me_name.as_str()).expect("a str serialises");
                        buf.extend_from_slice(
                            format!(",\"Epoch\":{},\"Seq\":{}}}", self.header.epoch, self.header.seq).as_bytes(),
                        );
                        self.state = BodyState::Done;
                        return Some(buf);
                    }
                },
                BodyState::Done => return None,
            }
        }
    }
}

/// The wire record of one path held by `owner`.
pub fn file_info(path: &DfsPath, meta: Meta, owner: &str, deletion: bool) -> FileInfo {
    FileInfo {
        full_name: SmolStr::new(path.as_str()),
        dir: meta.is_dir(),
        last_modified: meta.modified,
        last_info_updated: meta.info_updated,
        size_in_bytes: meta.size,
        file_mode: meta.mode,
        owner_node: SmolStr::new(owner),
        deletion,
    }
}
