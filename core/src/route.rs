//! Where a request for a path goes: the one place that decides it for HTTP and FTP alike.
//!
//! A file is served from this node's disk when this node owns it, or fetched from its owner's
//! public interface otherwise. A fetch carries how many nodes the request has passed through
//! (the original's `?redirN=`), so that two nodes that each believe the other owns a path do not
//! pass a request between them forever.

use smol_str::SmolStr;

use crate::path::DfsPath;
use crate::snapshot::Snapshot;
use crate::tree::Entry;
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
        assert_eq!(snap.locate(&path, MAX_HOPS), Location::TooManyHops { entry, hops: MAX_HOPS });
    }
}
