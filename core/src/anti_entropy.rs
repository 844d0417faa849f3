//! Anti-entropy by digest: how two of our nodes find out, in a few hundred bytes, whether the
//! view one holds of the other is the other's own view, and which part differs when it is not.
//!
//! The original sends every peer all its files every `--full-update-interval`, so every node
//! receives the whole cluster's tree every hour even when nothing changed. Between our nodes a
//! digest replaces that: every `--digest-interval` a node sends each live peer that speaks
//! digests ([`DIGEST_SCHEME`] in the `Digest` field of its cluster table's `Me`) its stream
//! position and a [`Digest`] of its own view (`POST /digest/`, a [`DigestMsg`]). The peer
//! compares it with the digest of the view it holds of the sender, and answers
//! ([`DigestAnswer`]):
//! - [`DigestAnswer::InSync`]: same position, same digest; nothing more is sent.
//! - [`DigestAnswer::Behind`]: it has not applied exactly that position (an update is still on
//!   its way, or its view needs a full update, which it asks for itself): the update stream
//!   settles it, the sender does nothing.
//! - [`DigestAnswer::Differs`]: same position, different digest: a view that diverged silently.
//!   It answers with its [`BUCKETS`] bucket sums; the sender sends only the records of the
//!   buckets that differ, in a *repair*: an update with `"Full": false`, the sender's current
//!   `Seq`, and the additive field `Buckets` naming them. The receiver replaces its view of the
//!   sender within those buckets only ([`Repair`]).
//!
//! Why a repair says `"Full": false`: it is never sent to a node that does not speak digests
//! (the original's, or ours before this), but if one got it anyway, `false` is the safe
//! reading: such a node upserts the records (which are the sender's current truth) or, ours,
//! ignores it as older than the position it applied; with `true` it would replace the
//! sender's whole view by a few buckets' worth and lose the rest.
//!
//! The digest: a count and [`BUCKETS`] wrapping sums of [`record_hash`], each record in the
//! bucket [`bucket_of`] its path. Sums make it incremental (add on insert, subtract on removal,
//! in any order) and let a receiver say which buckets differ. A node keeps the digest of its own
//! view and of each peer's view held here ([`Digests`]), maintained where the node applies
//! records, and recomputed from the records of a full update.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use smol_str::SmolStr;
use xxhash_rust::xxh3::xxh3_64;

use crate::membership::StreamPos;
use crate::path::DfsPath;
use crate::tree::{Meta, NodeId, Tree};
use crate::wire::{check_name, WireError};

/// Buckets of a digest: the unit of a repair. 64 sums of 8 bytes make an answer of about
/// 1.3 KiB of JSON; a repair sends 1/64 of the sender's files per differing bucket.
pub const BUCKETS: usize = 64;

/// The value of `Digest` in `Me` of our cluster tables: "this node answers `POST /digest/`
/// with digests of this scheme". A node with another scheme (a later version) is served full
/// updates, as the original's nodes are.
pub const DIGEST_SCHEME: &str = "xxh3-64/64";

/// Largest `POST /digest/` body taken: a [`DigestMsg`] is well under 300 bytes.
pub const MAX_DIGEST_BODY: usize = 4 << 10;

/// Largest answer to a digest read back: the bucket sums, 64 numbers of at most 20 digits.
pub const MAX_DIGEST_ANSWER: usize = 8 << 10;

/// The hash of one record: xxh3-64 with seed 0 of its canonical encoding, which is the path's
/// length (u64, little-endian) and bytes, then the mode (u32), size (u64), modified and
/// info-updated times (i64), all little-endian. Fixed by this definition, so that any two
/// versions of the node agree on it.
pub fn record_hash(path: &DfsPath, meta: Meta) -> u64 {
    let p = path.as_str().as_bytes();
    // On the stack: a full update hashes a million records, and an allocation each cost more
    // than the hash. A longer path takes the heap.
    let mut stack = [0u8; 256];
    let mut heap = Vec::new();
    let buf: &mut [u8] = match stack.get_mut(..p.len() + 36) {
        Some(buf) => buf,
        None => {
            heap.resize(p.len() + 36, 0);
            &mut heap
        }
    };
    buf[..8].copy_from_slice(&(p.len() as u64).to_le_bytes());
    let (rest, tail) = buf[8..].split_at_mut(p.len());
    rest.copy_from_slice(p);
    tail[..4].copy_from_slice(&meta.mode.0.to_le_bytes());
    tail[4..12].copy_from_slice(&meta.size.to_le_bytes());
    tail[12..20].copy_from_slice(&meta.modified.to_le_bytes());
    tail[20..28].copy_from_slice(&meta.info_updated.to_le_bytes());
    xxh3_64(buf)
}

/// The bucket of a path: xxh3-64 with seed 0 of the path's bytes alone, modulo [`BUCKETS`]. A
/// path stays in its bucket whatever its metadata, so a change moves no record between buckets.
pub fn bucket_of(path: &DfsPath) -> usize {
    (xxh3_64(path.as_str().as_bytes()) % BUCKETS as u64) as usize
}

/// The digest of one view: how many records, and the sums of their hashes per bucket.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Digest {
    pub count: u64,
    pub sums: [u64; BUCKETS],
}

impl Default for Digest {
    fn default() -> Digest {
        Digest { count: 0, sums: [0; BUCKETS] }
    }
}

impl Digest {
    /// The digest of these records (a path listed once).
    pub fn of<P: std::borrow::Borrow<DfsPath>>(records: impl IntoIterator<Item = (P, Meta)>) -> Digest {
        let mut d = Digest::default();
        for (p, m) in records {
            d.add(p.borrow(), m);
        }
        d
    }

    pub fn add(&mut self, path: &DfsPath, meta: Meta) {
        let b = &mut self.sums[bucket_of(path)];
        *b = b.wrapping_add(record_hash(path, meta));
        self.count = self.count.wrapping_add(1);
    }

    pub fn subtract(&mut self, path: &DfsPath, meta: Meta) {
        let b = &mut self.sums[bucket_of(path)];
        *b = b.wrapping_sub(record_hash(path, meta));
        self.count = self.count.wrapping_sub(1);
    }

    /// The record at `path` went from `old` to `new` (`None`: not held).
    pub fn replace(&mut self, path: &DfsPath, old: Option<Meta>, new: Option<Meta>) {
        if old == new {
            return;
        }
        if let Some(m) = old {
            self.subtract(path, m);
        }
        if let Some(m) = new {
            self.add(path, m);
        }
    }

    /// One number for the whole digest, as a [`DigestMsg`] carries it: xxh3-64 of the count and
    /// the sums, little-endian.
    pub fn summary(&self) -> u64 {
        let mut buf = Vec::with_capacity(8 * (BUCKETS + 1));
        buf.extend_from_slice(&self.count.to_le_bytes());
        for s in &self.sums {
            buf.extend_from_slice(&s.to_le_bytes());
        }
        xxh3_64(&buf)
    }

    /// The buckets whose sums differ from `other`'s, in order.
    pub fn differing(&self, other: &[u64]) -> Vec<u8> {
        (0..BUCKETS).filter(|&b| other.get(b) != Some(&self.sums[b])).map(|b| b as u8).collect()
    }
}

/// The digests a node keeps: of its own view and of each peer's view held here, by the id the
/// tree gives each node. A view without an entry is empty.
#[derive(Clone, Debug, Default)]
pub struct Digests {
    views: BTreeMap<NodeId, Digest>,
}

impl Digests {
    pub fn get(&self, id: NodeId) -> Digest {
        self.views.get(&id).cloned().unwrap_or_default()
    }

    /// `id`'s record at `path` went from `old` to `new`.
    pub fn changed(&mut self, id: NodeId, path: &DfsPath, old: Option<Meta>, new: Option<Meta>) {
        if old != new {
            self.views.entry(id).or_default().replace(path, old, new);
        }
    }

    /// `id`'s view is now exactly `records` (each path once).
    pub fn set<'a>(&mut self, id: NodeId, records: impl IntoIterator<Item = (&'a DfsPath, Meta)>) {
        self.views.insert(id, Digest::of(records));
    }

    /// `id`'s view is empty (a lost peer).
    pub fn reset(&mut self, id: NodeId) {
        self.views.remove(&id);
    }

    /// Recomputes `id`'s digest from the tree. O(size of the tree): for tests and checks.
    pub fn recompute(tree: &Tree, id: NodeId) -> Digest {
        Digest::of(tree.view(id))
    }
}

/// How a node runs anti-entropy with its peers (`--anti-entropy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// Digests with the peers that speak them, full updates every `--full-update-interval` to
    /// the others.
    #[default]
    Digest,
    /// Full updates every `--full-update-interval` to every peer, as the original does.
    Full,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "digest" => Ok(Mode::Digest),
            "full" => Ok(Mode::Full),
            _ => Err(format!("{s:?}: expected digest or full")),
        }
    }
}

/// The body of `POST /digest/`: who sends it, at which position of its stream, and the digest
/// of its own view there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestMsg {
    #[serde(rename = "SenderNodeName")]
    pub sender: SmolStr,
    #[serde(rename = "Epoch")]
    pub epoch: u64,
    #[serde(rename = "Seq")]
    pub seq: u64,
    #[serde(rename = "Count")]
    pub count: u64,
    /// [`Digest::summary`].
    #[serde(rename = "Digest")]
    pub digest: u64,
}

impl DigestMsg {
    pub fn pos(&self) -> StreamPos {
        StreamPos { epoch: self.epoch, seq: self.seq }
    }

    /// Parses a body. The error text is safe to show to the sender.
    pub fn from_json(body: &[u8]) -> Result<DigestMsg, WireError> {
        if body.len() > MAX_DIGEST_BODY {
            return Err(WireError::Json(format!("a digest is at most {MAX_DIGEST_BODY} bytes")));
        }
        let msg: DigestMsg = serde_json::from_slice(body).map_err(|e| WireError::Json(e.to_string()))?;
        check_name(&msg.sender)?;
        Ok(msg)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a DigestMsg always serialises")
    }
}

/// The answer to `POST /digest/`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "State", deny_unknown_fields)]
pub enum DigestAnswer {
    /// The receiver holds exactly the sender's view.
    #[serde(rename = "in-sync")]
    InSync,
    /// The receiver has not applied exactly the sender's position (or waits for a full update
    /// of it): nothing to compare yet.
    #[serde(rename = "behind")]
    Behind,
    /// Same position, different view: the receiver's count and bucket sums of it.
    #[serde(rename = "differs")]
    Differs {
        #[serde(rename = "Count")]
        count: u64,
        /// [`BUCKETS`] sums, in bucket order.
        #[serde(rename = "Buckets")]
        sums: Vec<u64>,
    },
}

impl DigestAnswer {
    pub fn from_json(body: &[u8]) -> Result<DigestAnswer, WireError> {
        if body.len() > MAX_DIGEST_ANSWER {
            return Err(WireError::Json(format!("a digest answer is at most {MAX_DIGEST_ANSWER} bytes")));
        }
        let answer: DigestAnswer = serde_json::from_slice(body).map_err(|e| WireError::Json(e.to_string()))?;
        if let DigestAnswer::Differs { sums, .. } = &answer {
            if sums.len() != BUCKETS {
                return Err(WireError::Json(format!("a digest answer has {BUCKETS} buckets, not {}", sums.len())));
            }
        }
        Ok(answer)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a DigestAnswer always serialises")
    }
}

/// What the receiver answers a digest from a peer whose view it holds: `applied` is the last
/// position applied from it (`None`: none), `wants_full` whether its view here waits for a full
/// update, `held` the digest of that view.
pub fn answer(msg: &DigestMsg, applied: Option<StreamPos>, wants_full: bool, held: &Digest) -> DigestAnswer {
    if wants_full || applied != Some(msg.pos()) {
        DigestAnswer::Behind
    } else if held.count == msg.count && held.summary() == msg.digest {
        DigestAnswer::InSync
    } else {
        DigestAnswer::Differs { count: held.count, sums: held.sums.to_vec() }
    }
}

/// The buckets a repair replaces, checked: each below [`BUCKETS`], listed once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repair {
    buckets: BTreeSet<u8>,
}

impl Repair {
    /// The buckets of an update's `Buckets` field; `None` when one is out of range, or there
    /// are none (a repair of nothing is no repair).
    pub fn new(buckets: &[u8]) -> Option<Repair> {
        if buckets.is_empty() || buckets.iter().any(|&b| b as usize >= BUCKETS) {
            return None;
        }
        Some(Repair { buckets: buckets.iter().copied().collect() })
    }

    pub fn covers(&self, path: &DfsPath) -> bool {
        self.buckets.contains(&(bucket_of(path) as u8))
    }

    pub fn buckets(&self) -> Vec<u8> {
        self.buckets.iter().copied().collect()
    }
}

/// The state of anti-entropy in a node, beside its tree: the digests, which peers speak
/// digests, and to which a digest is under way.
#[derive(Clone, Debug, Default)]
pub struct AntiEntropy {
    pub digests: Digests,
    /// Peers whose cluster table carries our [`DIGEST_SCHEME`].
    speaks: BTreeSet<SmolStr>,
    /// Peers a digest was sent to and not answered yet: one at a time.
    in_flight: BTreeSet<SmolStr>,
}

impl AntiEntropy {
    /// A peer's cluster table said whether it speaks digests (the `Digest` field of its `Me`).
    pub fn heard(&mut self, peer: &SmolStr, scheme: Option<&str>) {
        if scheme == Some(DIGEST_SCHEME) {
            self.speaks.insert(peer.clone());
        } else {
            self.speaks.remove(peer);
        }
    }

    pub fn speaks(&self, peer: &str) -> bool {
        self.speaks.contains(peer)
    }

    /// Marks a digest to `peer` as under way; false when one already is.
    pub fn start(&mut self, peer: &SmolStr) -> bool {
        self.in_flight.insert(peer.clone())
    }

    /// The digest to `peer` was answered, or failed.
    pub fn done(&mut self, peer: &str) {
        self.in_flight.remove(peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::FileMode;

    fn meta(size: u64) -> Meta {
        Meta { mode: FileMode::file(0o644), size, modified: 1, info_updated: 2 }
    }

    fn p(s: &str) -> DfsPath {
        DfsPath::parse(s).unwrap()
    }

    #[test]
    fn the_hashes_are_fixed() {
        // Pinned: another version of the node must compute the same digest of the same view.
        assert_eq!(record_hash(&p("a/b.txt"), meta(3)), record_hash(&p("a/b.txt"), meta(3)));
        assert_ne!(record_hash(&p("a/b.txt"), meta(3)), record_hash(&p("a/b.txt"), meta(4)));
        assert_eq!(xxh3_64(b""), 0x2d06800538d394c2, "xxh3-64 seed 0 of nothing, as published");
        assert!(bucket_of(&p("a/b.txt")) < BUCKETS);
        // The encoding as documented, built here the plain way, for paths that fit the stack
        // buffer and for longer ones that do not.
        let m = Meta { mode: FileMode::dir(0o755), size: u64::MAX - 7, modified: -3, info_updated: i64::MAX };
        for path in ["a/b.txt".to_string(), format!("long/{}", "x".repeat(300)), "y".repeat(220)] {
            let mut encoded = (path.len() as u64).to_le_bytes().to_vec();
            encoded.extend_from_slice(path.as_bytes());
            encoded.extend_from_slice(&m.mode.0.to_le_bytes());
            encoded.extend_from_slice(&m.size.to_le_bytes());
            encoded.extend_from_slice(&m.modified.to_le_bytes());
            encoded.extend_from_slice(&m.info_updated.to_le_bytes());
            assert_eq!(record_hash(&p(&path), m), xxh3_64(&encoded), "{}", path.len());
        }
    }

    #[test]
    fn sums_do_not_depend_on_order_and_undo_exactly() {
        let (a, b) = (p("a"), p("b/c"));
        let mut d = Digest::default();
        d.add(&a, meta(1));
        d.add(&b, meta(2));
        let mut e = Digest::default();
        e.add(&b, meta(2));
        e.add(&a, meta(1));
        assert_eq!(d, e);
        d.replace(&a, Some(meta(1)), Some(meta(5)));
        assert_ne!(d.summary(), e.summary());
        assert_eq!(d.differing(&e.sums), vec![bucket_of(&a) as u8]);
        d.replace(&a, Some(meta(5)), None);
        d.replace(&b, Some(meta(2)), None);
        assert_eq!(d, Digest::default());
    }

    #[test]
    fn answers() {
        let mut held = Digest::default();
        held.add(&p("x"), meta(1));
        let pos = StreamPos { epoch: 7, seq: 3 };
        let msg = DigestMsg { sender: "b".into(), epoch: 7, seq: 3, count: 1, digest: held.summary() };
        assert_eq!(answer(&msg, Some(pos), false, &held), DigestAnswer::InSync);
        assert_eq!(answer(&msg, Some(pos), true, &held), DigestAnswer::Behind);
        assert_eq!(answer(&msg, Some(StreamPos { epoch: 7, seq: 2 }), false, &held), DigestAnswer::Behind);
        assert_eq!(answer(&msg, None, false, &held), DigestAnswer::Behind);
        let other = DigestMsg { digest: held.summary() ^ 1, ..msg.clone() };
        let a = answer(&other, Some(pos), false, &held);
        assert!(matches!(&a, DigestAnswer::Differs { count: 1, sums } if *sums == held.sums), "{a:?}");
        assert_eq!(DigestAnswer::from_json(&a.to_json()).unwrap(), a);
        assert_eq!(DigestMsg::from_json(&msg.to_json()).unwrap(), msg);
    }

    #[test]
    fn hostile_bodies_are_refused_with_a_reason() {
        for body in [
            &b""[..],
            b"[]",
            b"{}",
            b"{\"SenderNodeName\":\"b\",\"Epoch\":1,\"Seq\":1,\"Count\":1}",
            b"{\"SenderNodeName\":\"\",\"Epoch\":1,\"Seq\":1,\"Count\":1,\"Digest\":1}",
            b"{\"SenderNodeName\":\"b\",\"Epoch\":-1,\"Seq\":1,\"Count\":1,\"Digest\":1}",
            b"{\"SenderNodeName\":\"b\",\"Epoch\":1,\"Seq\":1,\"Count\":1,\"Digest\":1,\"More\":1}",
        ] {
            assert!(DigestMsg::from_json(body).is_err(), "{}", String::from_utf8_lossy(body));
        }
        let big = vec![b' '; MAX_DIGEST_BODY + 1];
        assert!(DigestMsg::from_json(&big).unwrap_err().to_string().contains("at most"));
        let short = b"{\"State\":\"differs\",\"Count\":1,\"Buckets\":[1,2]}";
        assert!(DigestAnswer::from_json(short).is_err(), "63 buckets short");
        assert!(Repair::new(&[64]).is_none());
        assert!(Repair::new(&[]).is_none());
        assert_eq!(Repair::new(&[3, 1, 3]).unwrap().buckets(), vec![1, 3]);
    }
}
