//! Read-only views of a node that readers keep while the node moves on.
//!
//! A snapshot is taken after a whole event has been applied, and cloning one is O(1) (the maps
//! are persistent), so an HTTP or FTP reader sees the tree before or after an update, never half
//! of one, and never holds up the node.

use std::collections::BTreeMap;
use std::sync::Arc;

use smol_str::SmolStr;

use crate::path::{DfsPath, Mount};
use crate::tree::{Entry, Meta, NodeId, Tree};
use crate::wire::{ClusterInfo, FileInfo, PeerAddr};

#[derive(Clone)]
pub struct Snapshot {
    pub(crate) tree: Tree,
    pub(crate) me: NodeId,
    pub(crate) me_name: SmolStr,
    pub(crate) mount: Mount,
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
        let owner = serde_json::to_vec(self.me_name.as_str()).expect("a str serialises");
        FullUpdateBody {
            snapshot: self,
            files: Box::new(self.local_files()),
            header,
            chunk,
            state: BodyState::Start,
            owner,
        }
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
    /// This node's name as a JSON string.
    owner: Vec<u8>,
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
                        write_record(&mut buf, path, meta, &self.owner);
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

/// Writes what serialising `file_info(path, meta, owner, false)` writes (`owner` is already a
/// JSON string), without building the record: a full update writes hundreds of thousands.
fn write_record(buf: &mut Vec<u8>, path: &DfsPath, meta: Meta, owner: &[u8]) {
    fn int(buf: &mut Vec<u8>, n: impl serde::Serialize) {
        serde_json::to_writer(&mut *buf, &n).expect("an integer serialises");
    }
    buf.extend_from_slice(b"{\"FullName\":");
    json_str(buf, path.as_str());
    buf.extend_from_slice(b",\"Basename\":");
    json_str(buf, path.name());
    buf.extend_from_slice(if meta.is_dir() {
        b",\"Dir\":true,\"LastModified\":"
    } else {
        b",\"Dir\":false,\"LastModified\":"
    });
    int(buf, meta.modified);
    buf.extend_from_slice(b",\"LastInfoUpdated\":");
    int(buf, meta.info_updated);
    buf.extend_from_slice(b",\"SizeInBytes\":");
    int(buf, meta.size);
    buf.extend_from_slice(b",\"FileMode\":");
    int(buf, meta.mode.0);
    buf.extend_from_slice(b",\"OwnerNode\":");
    buf.extend_from_slice(owner);
    buf.extend_from_slice(b",\"Deletion\":false}");
}

/// A JSON string as serde_json writes it; names that need no escaping (nearly all) are copied.
fn json_str(buf: &mut Vec<u8>, s: &str) {
    if !needs_escape(s.as_bytes()) {
        buf.push(b'"');
        buf.extend_from_slice(s.as_bytes());
        buf.push(b'"');
    } else {
        serde_json::to_writer(&mut *buf, s).expect("a str serialises");
    }
}

/// Whether `s` has a byte JSON escapes: a control character, `"` or `\\`. Eight bytes at a time.
fn needs_escape(s: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A byte of `w` is zero (exact as to whether any is).
    let has_zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGH != 0;
    let mut words = s.chunks_exact(8);
    for c in &mut words {
        let w = u64::from_le_bytes(c.try_into().expect("eight bytes"));
        // Below 0x20: subtracting 0x20 borrows into the high bit of a byte that had it clear.
        if w.wrapping_sub(ONES * 0x20) & !w & HIGH != 0
            || has_zero(w ^ (ONES * b'"' as u64))
            || has_zero(w ^ (ONES * b'\\' as u64))
        {
            return true;
        }
    }
    words.remainder().iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\')
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::FileMode;

    #[test]
    fn escapes_found_anywhere() {
        let plain = "abcdefghijklmnopqrstuvwxyz/ü~\u{7f}0123456789";
        assert!(!needs_escape(plain.as_bytes()));
        for bad in ['"', '\\', '\0', '\n', '\u{1f}'] {
            for at in 0..=plain.len() {
                if !plain.is_char_boundary(at) {
                    continue;
                }
                let s = format!("{}{bad}{}", &plain[..at], &plain[at..]);
                assert!(needs_escape(s.as_bytes()), "{s:?}");
            }
        }
        for b in 0u8..=255 {
            let want = b < 0x20 || b == b'"' || b == b'\\';
            assert_eq!(needs_escape(&[b; 9]), want, "{b}");
            assert_eq!(needs_escape(&[b'a', b'a', b'a', b'a', b'a', b'a', b'a', b]), want, "{b}");
        }
    }

    /// The hand-written records are byte for byte what serde writes for a `FileInfo`.
    #[test]
    fn records_match_serde() {
        // Paths hold no control characters (`DfsPath` refuses them); the owners below do, so
        // the writer's escaping of them is still checked.
        let names = ["a", "dir/file.txt", "q\"uote/sl\"ash", "sp ace/\u{2028}sep", "ünï/cödé", "x/\u{a0}nbsp"];
        for (i, name) in names.iter().enumerate() {
            let path = DfsPath::parse(name).unwrap();
            for meta in [
                Meta { mode: FileMode::file(0o644), size: i as u64, modified: -5, info_updated: i64::MAX },
                Meta { mode: FileMode::dir(0o755), size: u64::MAX, modified: 0, info_updated: i64::MIN },
            ] {
                for owner in ["node-a", "we\"i\\rd\u{1}"] {
                    let mut mine = Vec::new();
                    write_record(&mut mine, &path, meta, &serde_json::to_vec(owner).unwrap());
                    let theirs = serde_json::to_vec(&file_info(&path, meta, owner, false)).unwrap();
                    assert_eq!(String::from_utf8(mine).unwrap(), String::from_utf8(theirs).unwrap());
                }
            }
        }
    }
}
