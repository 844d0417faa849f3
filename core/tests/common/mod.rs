//! Helpers shared by the integration tests: small-alphabet strategies, an independent model of
//! the merge rule, canonical forms of trees, and the one in-memory network that wires real nodes
//! together ([`harness::Net`]).
#![allow(dead_code)]

mod harness;

// Not every test file wires nodes together.
#[allow(unused_imports)]
pub use harness::*;

use std::collections::{BTreeMap, BTreeSet};

use dftp_core::{
    Action, Change, Config, DfsPath, Entry, Event, FileMode, Greeting, Kind, Meta, Notice, PeerAddr, Snapshot, Time,
    Update,
};
use proptest::prelude::*;

// ---- strategies ------------------------------------------------------------------------------

/// Segments chosen so that prefixes collide (`a`, `a.txt`, `a0`) and sort around `/`: `-` and
/// `.` sort just before it, `0` just after it (where listings jump to skip a subtree).
pub const SEGMENTS: &[&str] = &["a", "b", "c", "a.txt", "b-1", "a0"];
pub const NODES: &[&str] = &["n0", "n1", "n2", "n3"];

pub fn p(s: &str) -> DfsPath {
    DfsPath::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

pub fn path_strategy() -> impl Strategy<Value = DfsPath> {
    prop::collection::vec(prop::sample::select(SEGMENTS), 1..=3).prop_map(|segs| p(&segs.join("/")))
}

pub fn mode_strategy() -> impl Strategy<Value = FileMode> {
    prop_oneof![
        4 => Just(FileMode::file(0o644)),
        2 => Just(FileMode::dir(0o755)),
        1 => Just(FileMode(FileMode::SYMLINK | 0o777)),
    ]
}

pub fn meta_strategy() -> impl Strategy<Value = Meta> {
    (mode_strategy(), 0u64..3, 0i64..5, 0i64..5).prop_map(|(mode, size, modified, info_updated)| Meta {
        mode,
        size: if mode.is_dir() { 0 } else { size },
        modified,
        info_updated,
    })
}

pub fn file_meta(t: i64) -> Meta {
    Meta { mode: FileMode::file(0o644), size: 10, modified: t, info_updated: t }
}

pub fn dir_meta(t: i64) -> Meta {
    Meta { mode: FileMode::dir(0o755), size: 0, modified: t, info_updated: t }
}

// ---- the model -------------------------------------------------------------------------------

/// Views by node name, merged from scratch by the rule of DESIGN.md.
pub type Model = BTreeMap<String, BTreeMap<DfsPath, Meta>>;

/// One path of a tree as a reader sees it: (path, kind, owner name, winner's record).
pub type CanonEntry = (String, Kind, String, Option<Meta>);

/// The winner of every held path: the greatest `(LastInfoUpdated, node name)`.
pub fn model_winners(model: &Model) -> BTreeMap<String, (String, Meta)> {
    let mut out: BTreeMap<String, (String, Meta)> = BTreeMap::new();
    for (node, view) in model {
        for (path, meta) in view {
            let better = match out.get(path.as_str()) {
                None => true,
                Some((n, m)) => (meta.info_updated, node.as_str()) > (m.info_updated, n.as_str()),
            };
            if better {
                out.insert(path.as_str().to_string(), (node.clone(), *meta));
            }
        }
    }
    out
}

fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

/// The canonical form of the merge of `model`, computed without the tree's data structures.
///
/// A path exists when someone holds it or something lies below it. It is a directory when
/// something lies below it or its winner's record says so. A directory's owner is the one node
/// that wins every file strictly below it; with no file below, its own winner; otherwise
/// `(multiple)`.
pub fn model_canon(model: &Model) -> Vec<CanonEntry> {
    let winners = model_winners(model);
    let mut all: BTreeSet<String> = BTreeSet::new();
    // Per directory: the set of winners of the non-directory records strictly below.
    let mut file_owners: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut has_below: BTreeSet<String> = BTreeSet::new();
    for (path, (node, meta)) in &winners {
        all.insert(path.clone());
        for anc in ancestors(path) {
            all.insert(anc.to_string());
            has_below.insert(anc.to_string());
            let set = file_owners.entry(anc.to_string()).or_default();
            if !meta.is_dir() {
                set.insert(node.clone());
            }
        }
    }
    all.into_iter()
        .map(|path| {
            let winner = winners.get(&path);
            let meta = winner.map(|(_, m)| *m);
            if has_below.contains(&path) {
                let owners = &file_owners[&path];
                let owner = match owners.len() {
                    1 => owners.iter().next().cloned().unwrap_or_default(),
                    0 => winner.map_or_else(|| "(multiple)".to_string(), |(n, _)| n.clone()),
                    _ => "(multiple)".to_string(),
                };
                (path, Kind::Dir, owner, meta)
            } else {
                let (node, m) = winner.expect("a path without anything below is held");
                let kind = if m.is_dir() { Kind::Dir } else { Kind::File };
                (path, kind, node.clone(), meta)
            }
        })
        .collect()
}

pub fn canon_entry(e: &Entry) -> CanonEntry {
    (e.path.as_str().to_string(), e.kind, e.owner.as_str().to_string(), e.meta)
}

/// The canonical form of a snapshot: every path `find("")` yields, with what `lookup` says.
pub fn snapshot_canon(s: &Snapshot) -> Vec<CanonEntry> {
    s.find("")
        .map(|path| {
            let e = s.lookup(&path).unwrap_or_else(|| panic!("find yields {path:?} but lookup misses it"));
            assert_eq!(e.path, path);
            canon_entry(&e)
        })
        .collect()
}

/// The children of `dir` in the model's canonical form, in listing order (directories first,
/// then bytewise by name). `None` when `dir` is not a directory.
pub fn model_list(canon: &[CanonEntry], dir: &str) -> Option<Vec<CanonEntry>> {
    if !dir.is_empty() {
        let e = canon.iter().find(|e| e.0 == dir)?;
        if e.1 != Kind::Dir {
            return None;
        }
    }
    let mut kids: Vec<CanonEntry> = canon
        .iter()
        .filter(|e| {
            let parent = e.0.rfind('/').map_or("", |i| &e.0[..i]);
            parent == dir
        })
        .cloned()
        .collect();
    let name = |s: &str| s.rsplit('/').next().unwrap_or("").to_string();
    kids.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| name(&a.0).cmp(&name(&b.0))));
    Some(kids)
}

// ---- nodes -----------------------------------------------------------------------------------

pub const T0: u64 = 1_000_000;

pub fn t0() -> Time {
    Time::from_secs(T0)
}

pub fn addr(i: u8, port: u16) -> PeerAddr {
    PeerAddr::parse(&format!("10.0.0.{i}:{port}")).expect("a valid address")
}

/// A config with discovery off, so that no announcement clutters the actions.
pub fn config(name: &str, i: u8, epoch: u64) -> Config {
    let mut cfg = Config::new(name, "dftp", addr(i, 7040), addr(i, 7041), epoch);
    cfg.announce_interval = None;
    cfg
}

pub fn greeting_of(cfg: &Config, request_full_update: bool) -> Greeting {
    Greeting {
        name: cfg.name.clone(),
        public_addr: cfg.public_addr.clone(),
        mgmt_addr: cfg.mgmt_addr.clone(),
        request_full_update,
    }
}

/// Turns a `SendFullUpdate` into the update its receiver parses, by streaming the body in chunks
/// of `chunk` bytes and parsing the concatenation.
pub fn full_update_of(action: &Action, chunk: usize) -> Option<Update> {
    let Action::SendFullUpdate { snapshot, header, .. } = action else { return None };
    let body: Vec<u8> = snapshot.full_update_body(*header, chunk).flatten().collect();
    Some(Update::from_json(&body).unwrap_or_else(|e| panic!("a full update body must parse: {e}")))
}

/// The updates a batch of actions sends to `to`, in order (full ones streamed and parsed).
pub fn updates_to(actions: &[Action], to: &str) -> Vec<Update> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SendUpdate { to: t, update, .. } if t == to => Some((**update).clone()),
            Action::SendFullUpdate { to: t, .. } if t == to => full_update_of(a, 97),
            _ => None,
        })
        .collect()
}

pub fn notices(actions: &[Action]) -> Vec<Notice> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Notice(n) => Some(n.clone()),
            _ => None,
        })
        .collect()
}

/// `(to, request_full_update)` of every greeting in `actions`.
pub fn greets(actions: &[Action]) -> Vec<(PeerAddr, bool)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Greet { to, greeting } => Some((to.clone(), greeting.request_full_update)),
            _ => None,
        })
        .collect()
}

/// What a sender does to its local tree.
#[derive(Clone, Debug)]
pub enum SenderOp {
    /// Local changes: `Some(meta)` creates or modifies, `None` deletes.
    Changes(Vec<(DfsPath, Option<Meta>)>),
    /// A full rescan with these contents.
    Scan(Vec<(DfsPath, Meta)>),
    /// Rescans of subtrees: what each root and everything below it hold now.
    Subtrees(Vec<(DfsPath, Vec<(DfsPath, Meta)>)>),
    /// The receiver asks for a full update (its greeting says `request-full-update=true`).
    Full,
}

/// A directory to rescan: mostly a path of the small alphabet, sometimes the root.
pub fn subtree_root_strategy() -> impl Strategy<Value = DfsPath> {
    prop_oneof![5 => path_strategy(), 1 => Just(DfsPath::root())]
}

fn subtrees_strategy() -> impl Strategy<Value = SenderOp> {
    prop::collection::vec(
        (subtree_root_strategy(), prop::collection::vec((path_strategy(), meta_strategy()), 0..5)),
        1..3,
    )
    .prop_map(SenderOp::Subtrees)
}

pub fn sender_op_strategy() -> impl Strategy<Value = SenderOp> {
    prop_oneof![
        5 => prop::collection::vec((path_strategy(), prop::option::weighted(0.7, meta_strategy())), 1..4)
            .prop_map(SenderOp::Changes),
        1 => prop::collection::vec((path_strategy(), meta_strategy()), 0..6).prop_map(SenderOp::Scan),
        1 => subtrees_strategy(),
        1 => Just(SenderOp::Full),
    ]
}

/// Only incremental changes (no full update in the stream).
pub fn incremental_op_strategy() -> impl Strategy<Value = SenderOp> {
    prop_oneof![
        4 => prop::collection::vec((path_strategy(), prop::option::weighted(0.7, meta_strategy())), 1..4)
            .prop_map(SenderOp::Changes),
        1 => prop::collection::vec((path_strategy(), meta_strategy()), 0..6).prop_map(SenderOp::Scan),
        1 => subtrees_strategy(),
    ]
}

/// The event that makes a sender do `op`; `receiver` is the node that asks for full updates.
pub fn op_event(op: &SenderOp, receiver: &Config) -> Event {
    match op {
        SenderOp::Changes(cs) => Event::LocalChanges(
            cs.iter()
                .map(|(path, m)| match m {
                    Some(m) => Change::Upsert(path.clone(), *m),
                    None => Change::Remove(path.clone()),
                })
                .collect(),
        ),
        SenderOp::Scan(files) => Event::LocalScan(files.clone()),
        SenderOp::Subtrees(subtrees) => Event::LocalSubtrees(subtrees.clone()),
        SenderOp::Full => Event::GreetingReceived { greeting: greeting_of(receiver, true), from_host: None },
    }
}

/// Interleaves per-sender streams: at each step `choices` picks which non-empty stream goes next.
/// Each stream keeps its own order.
pub fn interleave<T: Clone>(streams: &[Vec<T>], choices: &[usize]) -> Vec<T> {
    let mut pos = vec![0usize; streams.len()];
    let mut out = Vec::new();
    let mut k = 0;
    loop {
        let open: Vec<usize> = (0..streams.len()).filter(|&i| pos[i] < streams[i].len()).collect();
        if open.is_empty() {
            return out;
        }
        let c = choices.get(k).copied().unwrap_or(0);
        k += 1;
        let i = open[c % open.len()];
        out.push(streams[i][pos[i]].clone());
        pos[i] += 1;
    }
}

/// Inserts redeliveries: each `(a, b)` copies the message at `a` (mod length) to a position after it.
pub fn insert_duplicates<T: Clone>(list: &mut Vec<T>, dups: &[(usize, usize)]) {
    for &(a, b) in dups {
        if list.is_empty() {
            return;
        }
        let i = a % list.len();
        let j = i + 1 + b % (list.len() - i);
        let item = list[i].clone();
        list.insert(j, item);
    }
}

/// Reorders `items` by sorting on random keys (ties keep the original order).
pub fn permute<T: Clone>(items: &[T], keys: &[u32]) -> Vec<T> {
    let mut idx: Vec<usize> = (0..items.len()).collect();
    idx.sort_by_key(|&i| keys.get(i).copied().unwrap_or(0));
    idx.into_iter().map(|i| items[i].clone()).collect()
}
