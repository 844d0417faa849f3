//! Where a request for a path goes: the one place that decides it for HTTP and FTP alike.
//!
//! A file is served from this node's disk when this node owns it, or fetched from its owner's
//! public interface otherwise. A write goes to the node that holds the file, or for a new path
//! to a node that holds the directory it is created in ([`Snapshot::locate_write`]). A fetch carries how many nodes the request has passed through
//! (the original's `?redirN=`), so that two nodes that each believe the other owns a path do not
//! pass a request between them forever.

use smol_str::SmolStr;

use crate::path::DfsPath;
use crate::snapshot::Snapshot;
use crate::tree::{Entry, Kind, NodeId, Owner};
use crate::wire::PeerAddr;

/// How many times a request may be passed from node to node (the original's limit): a request
/// that arrives having been passed this often is not passed again.
pub const MAX_HOPS: u32 = 2;

/// The name of the query parameter that counts the hops, as the original spells it.
pub const HOPS_PARAM: &str = "redirN";

/// Where a read of a path goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A directory of the merged tree: list it.
    Directory(Entry),
    /// A file of this node: open `local`, relative to the served root (`--dfsroot`).
    LocalFile { entry: Entry, local: DfsPath },
    /// A file of another node: fetch it from `addr` (its public interface), passing `hops` on.
    RemoteFile { entry: Entry, owner: SmolStr, addr: PeerAddr, hops: u32 },
    /// A file whose owner is not alive (or not known): nothing to fetch it from.
    OwnerUnreachable { entry: Entry, owner: SmolStr },
    /// A file of another node, asked for by a request already passed [`MAX_HOPS`] times.
    TooManyHops { entry: Entry, hops: u32 },
    /// No such path, or a path of this node that lies outside its mount.
    NotFound,
}

impl Snapshot {
    /// Where a read of `path` goes, for a request that has passed through `hops` nodes already
    /// (0 from a client; the value of `?redirN=` from a peer).
    pub fn locate(&self, path: &DfsPath, hops: u32) -> Location {
        let Some(entry) = self.lookup(path) else {
            return Location::NotFound;
        };
        if entry.is_dir() {
            return Location::Directory(entry);
        }
        if self.is_mine(&entry) {
            let local = self.mount.to_local(&entry.path).and_then(|rel| DfsPath::parse(rel).ok());
            return match local {
                Some(local) => Location::LocalFile { entry, local },
                None => Location::NotFound,
            };
        }
        let owner = SmolStr::new(entry.owner.as_str());
        if hops >= MAX_HOPS {
            return Location::TooManyHops { entry, hops };
        }
        match self.public_addr_of(&owner) {
            Some(addr) => Location::RemoteFile { addr: addr.clone(), entry, owner, hops: hops + 1 },
            None => Location::OwnerUnreachable { entry, owner },
        }
    }
}

/// A node that takes a write, or the reason none can be reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Taker {
    /// This node: the path on its disk, relative to the served root (`--dfsroot`; the root
    /// itself when the path is this node's `--dfsmount`).
    Local(DfsPath),
    /// Another node: pass the request on to its public interface.
    Remote(Forward),
    /// The node that should take it is not alive (or not known): nothing to pass it to.
    Unreachable { owner: SmolStr },
    /// Another node should take it, but the request has been passed [`MAX_HOPS`] times already.
    TooManyHops { owner: SmolStr, hops: u32 },
}

/// Where to pass a request on to: `addr` (the owner's public interface), telling it the request
/// has now passed `hops` nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forward {
    pub owner: SmolStr,
    pub addr: PeerAddr,
    pub hops: u32,
}

/// Where a write to a path goes (PUT, PATCH, DELETE, MKCOL, MOVE, COPY; FTP STOR, APPE, DELE,
/// MKD, RMD, RNFR/RNTO).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteLocation {
    /// An existing file: it is written (replaced, appended to, deleted, moved) where it lives,
    /// on its owner.
    File { entry: Entry, at: Taker },
    /// An existing directory (PUT onto it: 409; MKCOL: 405). `local` is this node's part of it
    /// (its path on this node's disk), when it holds any. `others` are the other nodes that
    /// hold part of it, each to be asked to delete its own part for a recursive DELETE: listed
    /// only for a request from a client (`hops == 0`); a request passed on by a peer is that
    /// peer's fan-out, and only this node's own part is its to do.
    Directory { entry: Entry, local: Option<DfsPath>, others: Vec<Forward> },
    /// Nothing is at the path: it is created by `at`, below `dir`, its nearest existing
    /// ancestor directory (the root included). The parent exists when `dir` is the path's
    /// parent ([`WriteLocation::parent_missing`]); PUT creates the missing directories, MKCOL
    /// refuses with 409.
    New { dir: DfsPath, at: Taker },
    /// No node can take the path (409, with the reason).
    Refused(WriteRefusal),
}

/// Why no node can take a write.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WriteRefusal {
    /// An ancestor of the path is a file: nothing can be created below it.
    #[error("{0} is a file, not a directory")]
    AncestorIsFile(DfsPath),
    /// No node holds the nearest existing directory where it may create the path: a node takes
    /// only paths below its `--dfsmount`.
    #[error("no node can create entries in {0} (each node takes only paths below its --dfsmount)")]
    NoTaker(DfsPath),
}

impl WriteLocation {
    /// For a new `path`: whether directories above it must be created first (its parent does
    /// not exist). False for anything else.
    pub fn parent_missing(&self, path: &DfsPath) -> bool {
        match self {
            WriteLocation::New { dir, .. } => path.parent().as_ref() != Some(dir),
            _ => false,
        }
    }
}

impl Snapshot {
    /// Where a write to `path` goes, for a request that has passed through `hops` nodes already.
    ///
    /// - An existing file goes to its owner (the winner of the conflict rule).
    /// - An existing directory is reported with every node that holds part of it.
    /// - A new path goes to a node that holds its nearest existing ancestor directory `D`:
    ///   this node if it holds `D` itself (no hop, and the file lands where the client wrote
    ///   it), otherwise the holder of `D` the conflict rule ranks first. A node holds `D` when
    ///   it has it as a directory (ranked by that record, as the tree ranks holders), or when
    ///   `D` is the directory its tree is mounted at (`--dfsmount`), which it does not announce
    ///   but shows by holding a child of `D` and not `D` itself (those rank after, by name).
    ///   So a node takes only paths below its mount, and every node that does not hold `D`
    ///   picks the same holder; that holder, asked in turn, takes the path itself.
    pub fn locate_write(&self, path: &DfsPath, hops: u32) -> WriteLocation {
        if let Some(entry) = self.lookup(path) {
            if entry.is_dir() {
                let local = self.my_part_of(path);
                let others = if hops == 0 { self.others_holding(path) } else { Vec::new() };
                return WriteLocation::Directory { entry, local, others };
            }
            let at = if self.is_mine(&entry) {
                match self.local_of(path) {
                    Some(local) => Taker::Local(local),
                    // A file of ours is always below our mount; nothing else can take it.
                    None => return WriteLocation::Refused(WriteRefusal::NoTaker(path.clone())),
                }
            } else {
                self.remote_taker(entry.owner.as_str(), hops)
            };
            return WriteLocation::File { entry, at };
        }
        if path == self.mount.path() {
            // Our own served root, empty so far (nothing of it is in the tree).
            let entry =
                Entry { path: path.clone(), kind: Kind::Dir, owner: Owner::Node(self.me_name.clone()), meta: None };
            let others = if hops == 0 { self.others_holding(path) } else { Vec::new() };
            return WriteLocation::Directory { entry, local: Some(DfsPath::root()), others };
        }
        // The nearest existing ancestor: in the tree, or our own mount point (which exists on
        // our disk even while nothing below it does).
        let mut dir = DfsPath::root();
        for a in path.ancestors() {
            let Ok(a) = DfsPath::parse(a) else { continue };
            if let Some(e) = self.lookup(&a) {
                if !e.is_dir() {
                    return WriteLocation::Refused(WriteRefusal::AncestorIsFile(a));
                }
                dir = a;
                break;
            }
            if &a == self.mount.path() {
                dir = a;
                break;
            }
        }
        if self.holds_dir(self.me, &dir, true) {
            return match self.local_of(path) {
                Some(local) => WriteLocation::New { dir, at: Taker::Local(local) },
                None => WriteLocation::Refused(WriteRefusal::NoTaker(dir)),
            };
        }
        match self.best_holder(&dir) {
            Some(owner) => {
                let at = self.remote_taker(&owner, hops);
                WriteLocation::New { dir, at }
            }
            None => WriteLocation::Refused(WriteRefusal::NoTaker(dir)),
        }
    }

    /// `path` on this node's disk, relative to the served root; `None` outside the mount.
    fn local_of(&self, path: &DfsPath) -> Option<DfsPath> {
        match self.mount.to_local(path)? {
            "" => Some(DfsPath::root()),
            rel => DfsPath::parse(rel).ok(),
        }
    }

    fn remote_taker(&self, owner: &str, hops: u32) -> Taker {
        let owner = SmolStr::new(owner);
        if hops >= MAX_HOPS {
            return Taker::TooManyHops { owner, hops };
        }
        match self.public_addr_of(&owner) {
            Some(addr) => Taker::Remote(Forward { addr: addr.clone(), owner, hops: hops + 1 }),
            None => Taker::Unreachable { owner },
        }
    }

    /// Whether `node` holds directory `dir` on its disk: as a directory record, or (when
    /// `as_mount`) as the directory its tree is mounted at. For this node the mount is known;
    /// for a peer it shows as a child it holds below a `dir` it does not hold.
    fn holds_dir(&self, node: NodeId, dir: &DfsPath, as_mount: bool) -> bool {
        if !dir.is_root() && self.tree.held(node, dir).is_some_and(|m| m.is_dir()) {
            return true;
        }
        if !as_mount {
            return false;
        }
        if node == self.me {
            return dir == self.mount.path();
        }
        if !dir.is_root() && self.tree.held(node, dir).is_some() {
            return false; // a file there: nothing of its own below it
        }
        self.tree.list(dir).is_some_and(|children| children.iter().any(|c| self.tree.held(node, &c.path).is_some()))
    }

    /// The holder of `dir` the conflict rule ranks first among the live peers: those holding it
    /// as a directory by `(info_updated, name)`, before those holding it as their mount point,
    /// by name.
    fn best_holder(&self, dir: &DfsPath) -> Option<SmolStr> {
        let peers = || self.public_addrs.keys().filter_map(|n| Some((n, self.tree.id_of(n)?)));
        let by_record = peers()
            .filter(|(_, id)| self.holds_dir(*id, dir, false))
            .filter_map(|(n, id)| Some((self.tree.held(id, dir)?.info_updated, n)))
            .max();
        if let Some((_, name)) = by_record {
            return Some(name.clone());
        }
        // Rarely needed (a new path in a peer's mount point or at the root, when this node does
        // not hold it), and it looks at the children of `dir`.
        peers().filter(|(_, id)| self.holds_dir(*id, dir, true)).map(|(n, _)| n.clone()).max()
    }

    /// This node's part of directory `dir`: its path on our disk, when we hold anything there.
    fn my_part_of(&self, dir: &DfsPath) -> Option<DfsPath> {
        if dir.is_within(self.mount.path()) {
            let held = dir == self.mount.path() || self.tree.held(self.me, dir).is_some();
            return if held { self.local_of(dir) } else { None };
        }
        // `dir` lies above our mount: our whole tree is part of it, if we hold anything.
        (self.mount.path().is_within(dir) && self.tree.count_of(self.me) > 0).then(DfsPath::root)
    }

    /// The live peers that hold `dir` or anything below it, by name, one hop further.
    fn others_holding(&self, dir: &DfsPath) -> Vec<Forward> {
        self.public_addrs
            .iter()
            .filter(|(name, _)| {
                self.tree.id_of(name).is_some_and(|id| {
                    (!dir.is_root() && self.tree.held(id, dir).is_some())
                        || self.tree.view_below(id, dir).next().is_some()
                })
            })
            .map(|(name, addr)| Forward { owner: name.clone(), addr: addr.clone(), hops: 1 })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, FileMode, Meta, Node, Time};

    /// Through a node's events, a peer's files leave the tree when its address does (a lost
    /// peer), so this is the guard for a snapshot where they might not agree.
    #[test]
    fn an_owner_without_an_address_is_unreachable() {
        let addr = |s: &str| PeerAddr::parse(s).unwrap();
        let now = Time::from_secs(1);
        let node = Node::new(Config::new("a", "dftp", addr("10.0.0.1:7040"), addr("10.0.0.1:7041"), 1), now);
        let mut snap = node.snapshot(now);
        let ghost = snap.tree.intern("ghost");
        let path = DfsPath::parse("g.txt").unwrap();
        let meta = Meta { mode: FileMode::file(0o644), size: 1, modified: 1, info_updated: 1 };
        snap.tree.upsert(ghost, path.clone(), meta);
        let entry = snap.lookup(&path).unwrap();
        assert_eq!(snap.locate(&path, 0), Location::OwnerUnreachable { entry: entry.clone(), owner: "ghost".into() });
        // The hop limit is checked first: a looping request is refused as such.
        assert_eq!(snap.locate(&path, MAX_HOPS), Location::TooManyHops { entry: entry.clone(), hops: MAX_HOPS });
        // Writes alike.
        let ghost_at = Taker::Unreachable { owner: "ghost".into() };
        assert_eq!(snap.locate_write(&path, 0), WriteLocation::File { entry: entry.clone(), at: ghost_at });
        let looping = Taker::TooManyHops { owner: "ghost".into(), hops: MAX_HOPS };
        assert_eq!(snap.locate_write(&path, MAX_HOPS), WriteLocation::File { entry, at: looping });
    }
}
