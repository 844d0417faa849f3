//! The merged tree: for every path, every node that holds it, ranked by the conflict rule.
//!
//! One persistent map holds all holders of a path together, winner first, instead of one map per
//! peer plus a merged map: a file is then stored once, and when the winner drops a path the next
//! holder is right there. A peer's view is the set of paths it holds here ([`Tree::view`]).
//!
//! An entry is 64 bytes with nothing on the heap of its own in the common case, because a node
//! may hold 100 million of them: the key is the path's parent directory, one allocation shared
//! by its siblings, and its last segment inline when up to 23 bytes (`tree/key.rs`); the holders are
//! one inline 32-byte record, or a boxed slice for the rare conflict (`Holders`). Whole paths
//! as keys cost a heap copy per path longer than 23 bytes, ~150 resident bytes per path in all;
//! this layout ~100 at 10M paths (`bench/scale.sh`). The map stays ordered bytewise by the whole
//! path, so `find` and listings walk it in order; they rebuild the paths they yield.
//!
//! A full update is compared with the sender's current view in one sorted walk beside it
//! ([`Tree::replace_view_count`]), so the periodic one that changes nothing costs a sequential
//! pass, not a search per path.
//!
//! Directories are derived. A second, much smaller map keeps, for every directory that has
//! something below it, how many entries lie below and how many of the files below each node
//! wins; that gives a directory's owner without walking its subtree. It also keeps the shared
//! path that the keys of the directory's entries point to.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::ops::Bound;
use std::sync::Arc;

use imbl::OrdMap;
use smallvec::SmallVec;
use smol_str::SmolStr;

use crate::path::DfsPath;
use crate::wire::FileMode;

mod key;

use key::{Dir, Key, Parts, Probe};

/// A node, as an index into the tree's name table. Ids are local to one process: compare names,
/// not ids, across nodes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct NodeId(NonZeroU32);

impl NodeId {
    /// Never zero, so that [`Holders`] can tell its two cases apart without a tag of its own.
    fn from_index(i: usize) -> NodeId {
        NodeId(NonZeroU32::new(i as u32 + 1).expect("fewer than 2^32 - 1 nodes"))
    }

    fn index(self) -> usize {
        self.0.get() as usize - 1
    }
}

/// What a holder says about a path.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Meta {
    pub mode: FileMode,
    pub size: u64,
    /// Unix seconds.
    pub modified: i64,
    /// Unix seconds; the conflict rule's first key (a local entry's ctime).
    pub info_updated: i64,
}

impl Meta {
    pub fn is_dir(&self) -> bool {
        self.mode.is_dir()
    }
}

/// What one node holds in the tree ([`Tree::holdings`]).
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Holdings {
    /// Files and directories.
    pub paths: u64,
    /// Files only.
    pub files: u64,
    /// The sizes of its files.
    pub bytes: u64,
}

/// One holder's record, flat: 32 bytes where a `NodeId` next to a `Meta` takes 40 (the mode's
/// padding is shared with the id), so that the tree's entries stay small.
///
/// Tried and left: packing the times into 32-bit offsets would save 8 more bytes per record but
/// needs an escape for records that do not fit, and every reader would pay for decoding.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Holder {
    node: NodeId,
    mode: FileMode,
    size: u64,
    modified: i64,
    info_updated: i64,
}

impl Holder {
    fn new(node: NodeId, meta: Meta) -> Holder {
        Holder { node, mode: meta.mode, size: meta.size, modified: meta.modified, info_updated: meta.info_updated }
    }

    fn meta(&self) -> Meta {
        Meta { mode: self.mode, size: self.size, modified: self.modified, info_updated: self.info_updated }
    }

    fn is_dir(&self) -> bool {
        self.mode.is_dir()
    }
}

/// Holders of one path, best first. Almost always exactly one, which stays inline; a conflict
/// (several holders) takes one allocation. 32 bytes: the record's `NodeId` is never zero, which
/// is the tag of the second case (a `SmallVec` took 40).
#[derive(Clone, PartialEq, Eq, Debug)]
enum Holders {
    One(Holder),
    /// Two or more.
    Many(Box<[Holder]>),
}

impl Holders {
    fn from_slice(holders: &[Holder]) -> Holders {
        match holders {
            [one] => Holders::One(*one),
            _ => Holders::Many(holders.into()),
        }
    }

    fn as_slice(&self) -> &[Holder] {
        match self {
            Holders::One(h) => std::slice::from_ref(h),
            Holders::Many(hs) => hs,
        }
    }

    fn winner(&self) -> Holder {
        self.as_slice()[0]
    }

    fn of(&self, node: NodeId) -> Option<&Holder> {
        self.as_slice().iter().find(|h| h.node == node)
    }
}

// An entry of the map: the path (its shared directory and its name) and its holders. Checked
// here so that they do not grow unnoticed.
const _: () = assert!(std::mem::size_of::<Holders>() == 32);
const _: () = assert!(std::mem::size_of::<Key>() == 32);
const _: () = assert!(std::mem::size_of::<(Key, Holders)>() == 64);

/// What lies below one directory.
#[derive(Clone, Debug, PartialEq, Eq)]
struct DirSummary {
    /// The directory's path, shared by the keys of the entries directly in it.
    path: Arc<Dir>,
    /// Entries (files and announced directories) strictly below.
    below: u32,
    /// For files strictly below: how many each node wins. Sorted by id, counts > 0.
    file_owners: SmallVec<[(NodeId, u32); 1]>,
}

impl DirSummary {
    /// Changes how many files below `node` wins by `n`.
    fn shift_owner(&mut self, node: NodeId, n: i64) {
        match self.file_owners.binary_search_by_key(&node, |(id, _)| *id) {
            Ok(i) => {
                let count = self.file_owners[i].1 as i64 + n;
                if count > 0 {
                    self.file_owners[i].1 = count as u32;
                } else {
                    self.file_owners.remove(i);
                }
            }
            Err(i) if n > 0 => self.file_owners.insert(i, (node, n as u32)),
            Err(_) => {}
        }
    }
}

/// How changes of winners below one directory move its summary and those above it.
#[derive(Default)]
struct DirDelta {
    below: i64,
    /// Net change, per node, of the files it wins.
    owners: SmallVec<[(NodeId, i64); 2]>,
}

impl DirDelta {
    /// Adds the change of one path's winner from `old` to `new`.
    fn add(&mut self, old: Option<Holder>, new: Option<Holder>) {
        let file_owner = |h: Option<Holder>| h.filter(|h| !h.is_dir()).map(|h| h.node);
        let (old_owner, new_owner) = (file_owner(old), file_owner(new));
        self.below += match (old.is_some(), new.is_some()) {
            (false, true) => 1,
            (true, false) => -1,
            _ => 0,
        };
        if old_owner != new_owner {
            if let Some(o) = old_owner {
                self.shift(o, -1);
            }
            if let Some(n) = new_owner {
                self.shift(n, 1);
            }
        }
    }

    fn shift(&mut self, node: NodeId, n: i64) {
        match self.owners.iter_mut().find(|(id, _)| *id == node) {
            Some(entry) => entry.1 += n,
            None => self.owners.push((node, n)),
        }
    }

    fn is_empty(&self) -> bool {
        self.below == 0 && self.owners.iter().all(|(_, n)| *n == 0)
    }
}

/// Directory-summary changes of consecutive paths with the same parent, applied in one go: a
/// large sorted update then walks each directory's ancestors once, not once per file. It also
/// hands out the parent's shared path for new keys, looked up once per directory.
#[derive(Default)]
struct DirBatch {
    /// The parent directory of the paths entered so far ("" for the root).
    dir: String,
    /// Its shared path, once asked for.
    shared: Option<Arc<Dir>>,
    delta: DirDelta,
}

impl DirBatch {
    /// Moves to `path`'s parent, flushing the previous directory's changes when it differs.
    fn enter(&mut self, tree: &mut Tree, path: &DfsPath) {
        self.enter_dir(tree, path.parent_str().unwrap_or(""));
    }

    /// Moves to directory `parent` ("" for the root).
    fn enter_dir(&mut self, tree: &mut Tree, parent: &str) {
        if parent != self.dir {
            self.flush(tree);
            self.dir.push_str(parent);
        }
    }

    /// The shared path of the current directory, for a new key in it.
    fn shared(&mut self, tree: &Tree, path: &DfsPath) -> Arc<Dir> {
        self.shared.get_or_insert_with(|| tree.dir_of(path)).clone()
    }

    fn note(&mut self, old: Option<Holder>, new: Option<Holder>) {
        self.delta.add(old, new);
    }

    fn flush(&mut self, tree: &mut Tree) {
        tree.apply_dir_delta(&self.dir, self.shared.as_ref(), &self.delta);
        self.dir.clear();
        self.shared = None;
        self.delta = DirDelta::default();
    }
}

/// Who a path belongs to, as listings show it.
#[derive(Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Owner {
    Node(SmolStr),
    /// A directory whose files come from several nodes.
    Multiple,
}

impl Owner {
    pub fn as_str(&self) -> &str {
        match self {
            Owner::Node(n) => n,
            Owner::Multiple => "(multiple)",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Kind {
    Dir,
    File,
}

/// One path as readers see it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Entry {
    pub path: DfsPath,
    pub kind: Kind,
    pub owner: Owner,
    /// The winner's record; `None` for a directory that exists only because of what is below it.
    pub meta: Option<Meta>,
}

impl Entry {
    pub fn is_dir(&self) -> bool {
        self.kind == Kind::Dir
    }

    pub fn size(&self) -> u64 {
        match (self.kind, self.meta) {
            (Kind::File, Some(m)) => m.size,
            _ => 0,
        }
    }
}

/// A change to one node's view, as an incremental update carries it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Change {
    Upsert(DfsPath, Meta),
    Remove(DfsPath),
}

/// The merged tree. Cloning is O(1); clones are independent afterwards.
#[derive(Clone, Default)]
pub struct Tree {
    entries: OrdMap<Key, Holders>,
    dirs: OrdMap<DfsPath, DirSummary>,
    /// Node names by id. Shared with snapshots; ids are never reused.
    names: Arc<Vec<SmolStr>>,
    /// How many paths each node holds, by id.
    counts: Vec<usize>,
    /// The root, the shared parent of top-level entries.
    root: Arc<Dir>,
}

/// Ranks two holders: the greater `(info_updated, node name)` wins.
fn rank(names: &[SmolStr], a: &Holder, b: &Holder) -> Ordering {
    a.info_updated.cmp(&b.info_updated).then_with(|| names[a.node.index()].cmp(&names[b.node.index()]))
}

/// `holders` with `new` in its place (replacing `new.node`'s record, if any) by rank.
fn with_holder(names: &[SmolStr], holders: &[Holder], new: Holder) -> SmallVec<[Holder; 4]> {
    let mut out: SmallVec<[Holder; 4]> = holders.iter().copied().filter(|h| h.node != new.node).collect();
    let at = out.iter().position(|h| rank(names, &new, h) == Ordering::Greater).unwrap_or(out.len());
    out.insert(at, new);
    out
}

impl Tree {
    /// Whether `self` and `other` are the same tree by construction: one a clone of the other
    /// with no change since (false says nothing). O(1): lets a reader that keeps a view of an
    /// earlier snapshot skip comparing it with the next one.
    pub fn same_as(&self, other: &Tree) -> bool {
        self.entries.ptr_eq(&other.entries) && self.dirs.ptr_eq(&other.dirs)
    }

    pub fn new() -> Self {
        Self::default()
    }

    /// The id of a node name, adding it when new.
    pub fn intern(&mut self, name: &str) -> NodeId {
        if let Some(id) = self.id_of(name) {
            return id;
        }
        let names = Arc::make_mut(&mut self.names);
        names.push(SmolStr::new(name));
        self.counts.push(0);
        NodeId::from_index(names.len() - 1)
    }

    /// The id of a known node name.
    pub fn id_of(&self, name: &str) -> Option<NodeId> {
        // Node counts are in the hundreds at most; a scan beats keeping a second index.
        self.names.iter().position(|n| n == name).map(NodeId::from_index)
    }

    pub fn name(&self, id: NodeId) -> &SmolStr {
        &self.names[id.index()]
    }

    /// How many paths `node` holds.
    pub fn count_of(&self, node: NodeId) -> usize {
        self.counts.get(node.index()).copied().unwrap_or(0)
    }

    /// How many distinct paths have at least one holder (directories that exist only because of
    /// their contents are not counted).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Ranks two holders: the greater `(info_updated, node name)` wins.
    fn rank(&self, a: &Holder, b: &Holder) -> Ordering {
        rank(&self.names, a, b)
    }

    /// The holders of `path`.
    fn holders(&self, path: &str) -> Option<&Holders> {
        self.entries.get(&Probe::new(path) as &dyn Parts)
    }

    /// The shared path of `path`'s parent, for a new key: the one the entries beside it use, if
    /// any.
    fn dir_of(&self, path: &DfsPath) -> Arc<Dir> {
        match path.parent_str() {
            None | Some("") => self.root.clone(),
            Some(dir) => match self.dirs.get(dir) {
                Some(summary) => summary.path.clone(),
                None => Arc::new(Dir::new(path.parent().expect("not the root"))),
            },
        }
    }

    /// What `node` holds at `path`, if it holds it.
    pub fn held(&self, node: NodeId, path: &DfsPath) -> Option<Meta> {
        self.holders(path.as_str())?.of(node).map(Holder::meta)
    }

    /// Records that `node` holds `path` with `meta`. Returns whether its view changed.
    pub fn upsert(&mut self, node: NodeId, path: DfsPath, meta: Meta) -> bool {
        let mut dirs = DirBatch::default();
        let at = Probe::new(path.as_str());
        dirs.enter_dir(self, at.dir());
        match self.set_holder(node, &path, &at, meta, &mut dirs) {
            Some((old_winner, new_winner)) => {
                dirs.note(old_winner, Some(new_winner));
                dirs.flush(self);
                true
            }
            None => false,
        }
    }

    /// [`Tree::upsert`] without the directory summaries: returns the old and new winners when
    /// `node`'s view changed, for the caller to pass on to the summaries. `dirs` has entered
    /// `path`'s parent; `at` is `path` split (its parent and name, found once per path).
    fn set_holder(
        &mut self,
        node: NodeId,
        path: &DfsPath,
        at: &Probe,
        meta: Meta,
        dirs: &mut DirBatch,
    ) -> Option<(Option<Holder>, Holder)> {
        debug_assert!(!path.is_root());
        let new = Holder::new(node, meta);
        let Some(current) = self.entries.get(at as &dyn Parts) else {
            let key = Key::new(dirs.shared(self, path), at.name());
            self.entries.insert(key, Holders::One(new));
            self.counts[node.index()] += 1;
            return Some((None, new));
        };
        let current = current.as_slice();
        if current.contains(&new) {
            return None;
        }
        let old_winner = current[0];
        if current.iter().all(|h| h.node != node) {
            self.counts[node.index()] += 1;
        }
        let holders = with_holder(&self.names, current, new);
        let new_winner = holders[0];
        // Looked up again to change it only now: `get_mut` copies the nodes on its way that a
        // snapshot shares, which an unchanged record (most of a repeated full update) must not.
        *self.entries.get_mut(at as &dyn Parts).expect("found above") = Holders::from_slice(&holders);
        Some((Some(old_winner), new_winner))
    }

    /// [`Tree::set_holder`] for a `node` known not to hold `path`: inserts first, so that a
    /// path nobody holds yet (most of a new peer's first full update) takes one walk of the map
    /// instead of a lookup and an insert.
    fn add_holder(
        &mut self,
        node: NodeId,
        path: &DfsPath,
        at: &Probe,
        meta: Meta,
        dirs: &mut DirBatch,
    ) -> (Option<Holder>, Holder) {
        debug_assert!(!path.is_root());
        let new = Holder::new(node, meta);
        self.counts[node.index()] += 1;
        let key = Key::new(dirs.shared(self, path), at.name());
        let Some(holders) = self.entries.insert(key, Holders::One(new)) else {
            return (None, new);
        };
        // Someone else holds it (rare): the key again, rather than a copy for every path.
        let key = Key::new(dirs.shared(self, path), at.name());
        let holders = holders.as_slice();
        debug_assert!(holders.iter().all(|h| h.node != node), "{path:?} is already held by {node:?}");
        let old_winner = holders[0];
        let holders = with_holder(&self.names, holders, new);
        let new_winner = holders[0];
        self.entries.insert(key, Holders::from_slice(&holders));
        (Some(old_winner), new_winner)
    }

    /// Records that `node` no longer holds `path`. Returns whether its view changed.
    pub fn remove(&mut self, node: NodeId, path: &DfsPath) -> bool {
        match self.unset_holder(node, &Probe::new(path.as_str()) as &dyn Parts) {
            Some((old_winner, new_winner)) => {
                let mut dirs = DirBatch::default();
                dirs.enter(self, path);
                dirs.note(Some(old_winner), new_winner);
                dirs.flush(self);
                true
            }
            None => false,
        }
    }

    /// [`Tree::remove`] without the directory summaries: returns the old and new winners when
    /// `node`'s view changed.
    /// `at` is a [`Probe`] or a key of the map (compared faster with its siblings).
    fn unset_holder<Q>(&mut self, node: NodeId, at: &Q) -> Option<(Holder, Option<Holder>)>
    where
        Q: Ord + ?Sized,
        Key: std::borrow::Borrow<Q>,
    {
        let current = self.entries.get(at)?.as_slice();
        current.iter().find(|h| h.node == node)?;
        let old_winner = current[0];
        let rest: SmallVec<[Holder; 4]> = current.iter().copied().filter(|h| h.node != node).collect();
        self.counts[node.index()] -= 1;
        let new_winner = if rest.is_empty() {
            self.entries.remove(at);
            None
        } else {
            *self.entries.get_mut(at).expect("found above") = Holders::from_slice(&rest);
            Some(rest[0])
        };
        Some((old_winner, new_winner))
    }

    /// [`Tree::unset_holder`] for a key of the map that `node` is known to hold (from
    /// [`Tree::keys_of`] or [`Tree::diff_view`]): removes first, so that the common case (the
    /// only holder) takes one walk of the map instead of a lookup and a removal; the rare
    /// other holders are put back.
    fn unset_held(&mut self, node: NodeId, key: &Key) -> Option<(Holder, Option<Holder>)> {
        let (key, holders) = self.entries.remove_with_key(key)?;
        let current = holders.as_slice();
        if current.iter().all(|h| h.node != node) {
            debug_assert!(false, "{:?} is not held by {node:?}", key.to_path());
            self.entries.insert(key, holders);
            return None;
        }
        let old_winner = current[0];
        self.counts[node.index()] -= 1;
        let rest: SmallVec<[Holder; 4]> = current.iter().copied().filter(|h| h.node != node).collect();
        if rest.is_empty() {
            return Some((old_winner, None));
        }
        self.entries.insert(key, Holders::from_slice(&rest));
        Some((old_winner, Some(rest[0])))
    }

    /// Replaces `node`'s whole view (a full update or a full local scan): paths it no longer
    /// lists are dropped. Returns the changes against the previous view. Later duplicates of a
    /// path win.
    pub fn replace_view(&mut self, node: NodeId, items: Vec<(DfsPath, Meta)>) -> Vec<Change> {
        let mut changes = Vec::new();
        self.replace_view_with(node, items, Some(&mut changes));
        changes
    }

    /// [`Tree::replace_view`] returning only how many paths changed: a peer's full update needs
    /// no list of changes, and building one for every path of a first full update costs time.
    pub fn replace_view_count(&mut self, node: NodeId, items: Vec<(DfsPath, Meta)>) -> usize {
        self.replace_view_with(node, items, None)
    }

    fn replace_view_with(
        &mut self,
        node: NodeId,
        mut items: Vec<(DfsPath, Meta)>,
        mut report: Option<&mut Vec<Change>>,
    ) -> usize {
        // Full updates and scans mostly come sorted already (ours are sent in path order).
        if !items.windows(2).all(|w| w[0].0 < w[1].0) {
            // Stable sort keeps duplicates in arrival order; keep the last of each run.
            items.sort_by(|a, b| a.0.cmp(&b.0));
            items.reverse();
            items.dedup_by(|later, earlier| later.0 == earlier.0);
            items.reverse();
        }
        // Paths are independent, so the order of the upserts does not change the result, only
        // the map's layout. In path order, every B-tree leaf would be split when full and then
        // only appended to, leaving leaves half full; even positions first and odd ones second
        // lets the second pass fill them up (measured with whole-path keys, 1M paths: 142 heap
        // bytes per path instead of 221, see benches/heap.rs). The changes are still reported in
        // path order.
        let mut changed = vec![false; items.len()];
        let mut dirs = DirBatch::default();
        // A node that holds nothing yet (a new peer, a restart) changes every path it lists.
        let holds_none = self.count_of(node) == 0;
        let (differs, stale) =
            if holds_none { (vec![true; items.len()], Vec::new()) } else { self.diff_view(node, &items) };
        for first in [0, 1] {
            for (i, (path, meta)) in items.iter().enumerate().skip(first).step_by(2) {
                if !differs[i] {
                    continue;
                }
                let at = Probe::new(path.as_str());
                dirs.enter_dir(self, at.dir());
                let winners = if holds_none {
                    Some(self.add_holder(node, path, &at, *meta, &mut dirs))
                } else {
                    self.set_holder(node, path, &at, *meta, &mut dirs)
                };
                if let Some((old_winner, new_winner)) = winners {
                    changed[i] = true;
                    dirs.note(old_winner, Some(new_winner));
                }
            }
        }
        dirs.flush(self);
        let mut count = changed.iter().filter(|c| **c).count();
        if let Some(changes) = report.as_deref_mut() {
            changes.extend(
                items
                    .iter()
                    .zip(&changed)
                    .filter(|(_, c)| **c)
                    .map(|((path, meta), _)| Change::Upsert(path.clone(), *meta)),
            );
        }
        if !stale.is_empty() {
            for key in stale {
                if let Some((old_winner, new_winner)) = self.unset_held(node, &key) {
                    dirs.enter_dir(self, key.dir());
                    dirs.note(Some(old_winner), new_winner);
                }
                count += 1;
                if let Some(changes) = report.as_deref_mut() {
                    changes.push(Change::Remove(key.to_path()));
                }
            }
            dirs.flush(self);
        }
        count
    }

    /// Which of `items` (sorted, no duplicates) differ from what `node` holds, and which paths
    /// `node` holds that `items` does not list, in path order. One walk over the entries from
    /// the first item to the last, beside the items, instead of a search of the map per item:
    /// a full update that changes nothing (the periodic one) then costs a sequential pass. What
    /// `node` holds outside that stretch is found by a walk of the whole map, only when its
    /// count says there is some.
    fn diff_view(&self, node: NodeId, items: &[(DfsPath, Meta)]) -> (Vec<bool>, Vec<Key>) {
        let mut differs = vec![true; items.len()];
        let mut stale = Vec::new();
        let mut seen = 0;
        if let (Some((first, _)), Some((last, _))) = (items.first(), items.last()) {
            let start = Probe::new(first.as_str());
            let mut entries = self
                .entries
                .range::<_, dyn Parts>((Bound::Included(&start as &dyn Parts), Bound::Unbounded))
                .peekable();
            for (i, (path, meta)) in items.iter().enumerate() {
                let probe = Probe::new(path.as_str());
                while let Some((key, holders)) = entries.peek() {
                    let order = (*key as &dyn Parts).cmp(&probe as &dyn Parts);
                    if order == Ordering::Greater {
                        break;
                    }
                    if let Some(h) = holders.of(node) {
                        seen += 1;
                        match order {
                            Ordering::Equal => differs[i] = h.meta() != *meta,
                            _ => stale.push((*key).clone()),
                        }
                    }
                    entries.next();
                    if order == Ordering::Equal {
                        break;
                    }
                }
            }
            if seen < self.count_of(node) {
                let (lo, hi) = (Probe::new(first.as_str()), Probe::new(last.as_str()));
                let outside = |k: &Key| {
                    let k = k as &dyn Parts;
                    k < &lo as &dyn Parts || k > &hi as &dyn Parts
                };
                let mut before: Vec<Key> = Vec::new();
                for (key, holders) in &self.entries {
                    if holders.of(node).is_some() && outside(key) {
                        before.push(key.clone());
                    }
                }
                // In path order: those before the first item, the walk's, those after the last.
                let split = before.partition_point(|k| (k as &dyn Parts) < (&lo as &dyn Parts));
                let after = before.split_off(split);
                before.append(&mut stale);
                before.extend(after);
                stale = before;
            }
        } else {
            stale = self.keys_of(node);
        }
        (differs, stale)
    }

    /// The keys of everything `node` holds, in path order. O(size of the tree).
    fn keys_of(&self, node: NodeId) -> Vec<Key> {
        self.entries.iter().filter(|(_, hs)| hs.of(node).is_some()).map(|(k, _)| k.clone()).collect()
    }

    /// Drops everything `node` holds; paths others hold too switch to their next holder.
    pub fn drop_node(&mut self, node: NodeId) -> usize {
        if self.count_of(node) == 0 {
            return 0;
        }
        let held = self.keys_of(node);
        let mut dirs = DirBatch::default();
        for key in &held {
            if let Some((old_winner, new_winner)) = self.unset_held(node, key) {
                dirs.enter_dir(self, key.dir());
                dirs.note(Some(old_winner), new_winner);
            }
        }
        dirs.flush(self);
        held.len()
    }

    /// What each node holds, by name: one pass over the tree, for the status page and the
    /// metrics (a path held by two nodes, a conflict, counts for both).
    pub fn holdings(&self) -> BTreeMap<SmolStr, Holdings> {
        let mut by_id = vec![Holdings::default(); self.names.len()];
        for holders in self.entries.values() {
            for h in holders.as_slice() {
                let held = &mut by_id[h.node.index()];
                held.paths += 1;
                if !h.mode.is_dir() {
                    held.files += 1;
                    held.bytes += h.size;
                }
            }
        }
        self.names.iter().cloned().zip(by_id).collect()
    }

    /// Everything `node` holds, in path order. O(size of the tree).
    pub fn view(&self, node: NodeId) -> impl Iterator<Item = (DfsPath, Meta)> + '_ {
        self.entries.iter().filter_map(move |(k, hs)| hs.of(node).map(|h| (k.to_path(), h.meta())))
    }

    /// What `node` holds at `dir` and below it, in path order. O(size of that subtree).
    pub fn view_below<'a>(&'a self, node: NodeId, dir: &'a DfsPath) -> impl Iterator<Item = (DfsPath, Meta)> + 'a {
        let prefix = if dir.is_root() { String::new() } else { format!("{}/", dir.as_str()) };
        let at = self
            .holders(dir.as_str())
            .filter(|_| !dir.is_root())
            .and_then(|hs| hs.of(node))
            .map(|h| (dir.clone(), h.meta()));
        let below = self
            .entries
            .range::<_, dyn Parts>((Bound::Included(&Probe::new(&prefix) as &dyn Parts), Bound::Unbounded))
            .take_while(move |(k, _)| k.starts_with(prefix.as_str()))
            .filter_map(move |(k, hs)| hs.of(node).map(|h| (k.to_path(), h.meta())));
        at.into_iter().chain(below)
    }

    /// Replaces what `node` holds at `dir` and below with `items` (a rescan of one subtree):
    /// paths there that `items` does not list are dropped. Returns the changes.
    pub fn replace_subtree(&mut self, node: NodeId, dir: &DfsPath, mut items: Vec<(DfsPath, Meta)>) -> Vec<Change> {
        items.retain(|(p, _)| p.is_within(dir));
        items.sort_by(|a, b| a.0.cmp(&b.0));
        items.reverse();
        items.dedup_by(|later, earlier| later.0 == earlier.0);
        items.reverse();
        let stale: Vec<DfsPath> = self
            .view_below(node, dir)
            .filter(|(p, _)| items.binary_search_by(|(q, _)| q.cmp(p)).is_err())
            .map(|(p, _)| p)
            .collect();
        let mut changes = Vec::new();
        for path in stale {
            self.remove(node, &path);
            changes.push(Change::Remove(path));
        }
        for (path, meta) in items {
            if self.upsert(node, path.clone(), meta) {
                changes.push(Change::Upsert(path, meta));
            }
        }
        changes
    }

    /// Applies `delta` to the summaries of `dir` (a path's parent; "" for the root) and of
    /// every directory above it. A summary made for `dir` keeps `shared` (its entries' shared
    /// path), when given.
    fn apply_dir_delta(&mut self, dir: &str, shared: Option<&Arc<Dir>>, delta: &DirDelta) {
        if dir.is_empty() || delta.is_empty() {
            return;
        }
        let chain = std::iter::once(dir).chain(dir.match_indices('/').rev().map(|(i, _)| &dir[..i]));
        for (level, dir) in chain.enumerate() {
            let summary = match self.dirs.get_mut(dir) {
                Some(s) => s,
                None => {
                    let path = match shared.filter(|_| level == 0) {
                        Some(p) => p.clone(),
                        None => Arc::new(Dir::new(DfsPath::parse(dir).expect("an ancestor of a valid path is valid"))),
                    };
                    let summary = DirSummary { path, below: 0, file_owners: SmallVec::new() };
                    self.dirs.entry(DfsPath::clone(&summary.path)).or_insert(summary)
                }
            };
            summary.below = (summary.below as i64 + delta.below) as u32;
            for &(node, n) in &delta.owners {
                summary.shift_owner(node, n);
            }
            if summary.below == 0 {
                self.dirs.remove(dir);
            }
        }
    }

    // ---- queries -------------------------------------------------------------------------

    /// The entry at `path`, if any. A path with anything below it is a directory, whatever its
    /// own winner says.
    pub fn lookup(&self, path: &DfsPath) -> Option<Entry> {
        if path.is_root() {
            return Some(Entry { path: DfsPath::root(), kind: Kind::Dir, owner: Owner::Multiple, meta: None });
        }
        let winner = self.holders(path.as_str()).map(Holders::winner);
        if let Some(summary) = self.dirs.get(path.as_str()) {
            let owner = match summary.file_owners.as_slice() {
                [(only, _)] => Owner::Node(self.name(*only).clone()),
                [] => match winner {
                    Some(w) => Owner::Node(self.name(w.node).clone()),
                    None => Owner::Multiple,
                },
                _ => Owner::Multiple,
            };
            return Some(Entry { path: path.clone(), kind: Kind::Dir, owner, meta: winner.map(|w| w.meta()) });
        }
        let w = winner?;
        Some(Entry {
            path: path.clone(),
            kind: if w.is_dir() { Kind::Dir } else { Kind::File },
            owner: Owner::Node(self.name(w.node).clone()),
            meta: Some(w.meta()),
        })
    }

    /// Whether `path` is a directory (what [`Tree::lookup`] would say, without building the entry).
    pub fn is_dir(&self, path: &DfsPath) -> bool {
        path.is_root()
            || self.dirs.contains_key(path.as_str())
            || self.holders(path.as_str()).is_some_and(|hs| hs.winner().is_dir())
    }

    /// The children of a directory: directories first, then files, each bytewise by name.
    /// `None` when `dir` is not a directory.
    pub fn list(&self, dir: &DfsPath) -> Option<Vec<Entry>> {
        if !self.lookup(dir)?.is_dir() {
            return None;
        }
        let prefix = if dir.is_root() { String::new() } else { format!("{}/", dir.as_str()) };
        let mut names: Vec<SmolStr> = Vec::new();
        let mut cursor = prefix.clone();
        // Visit each child once: after a child directory, skip its whole subtree by jumping to
        // the first key past `name/` (`0` is the byte after `/`).
        while let Some((key, _)) = self
            .entries
            .range::<_, dyn Parts>((Bound::Included(&Probe::new(&cursor) as &dyn Parts), Bound::Unbounded))
            .next()
        {
            let key = key.to_path();
            let Some(rest) = key.as_str().strip_prefix(prefix.as_str()) else { break };
            match rest.find('/') {
                Some(i) => {
                    names.push(SmolStr::new(&rest[..i]));
                    cursor.truncate(prefix.len());
                    cursor.push_str(&rest[..i]);
                    cursor.push('0');
                }
                None => {
                    names.push(SmolStr::new(rest));
                    cursor.clear();
                    cursor.push_str(key.as_str());
                    cursor.push('\0');
                }
            }
        }
        names.sort_unstable();
        names.dedup();
        let mut out: Vec<Entry> =
            names.into_iter().filter_map(|n| dir.join(&n).ok()).filter_map(|p| self.lookup(&p)).collect();
        out.sort_by(|a, b| a.kind.cmp(&b.kind).then_with(|| a.path.name().cmp(b.path.name())));
        Some(out)
    }

    /// Every path (files and directories) that starts with `prefix`, bytewise sorted.
    pub fn find<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = DfsPath> + 'a {
        let files = self
            .entries
            .range::<_, dyn Parts>((Bound::Included(&Probe::new(prefix) as &dyn Parts), Bound::Unbounded))
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.to_path());
        let dirs = self
            .dirs
            .range::<_, str>((Bound::Included(prefix), Bound::Unbounded))
            .map(|(k, _)| k)
            .take_while(move |k| k.as_str().starts_with(prefix))
            .cloned();
        MergeSorted { a: files.peekable(), b: dirs.peekable() }
    }

    /// Checks the derived data against a recomputation from the holders. For tests.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut fresh = Tree { names: self.names.clone(), counts: vec![0; self.names.len()], ..Tree::default() };
        let mut last: Option<DfsPath> = None;
        for (key, holders) in &self.entries {
            let path = key.to_path();
            if last.as_ref().is_some_and(|l| *l >= path) {
                return Err(format!("{path:?} is not after {last:?}"));
            }
            if let Holders::Many(hs) = holders {
                if hs.len() < 2 {
                    return Err(format!("{path:?}: {} holders kept as several", hs.len()));
                }
            }
            for pair in holders.as_slice().windows(2) {
                if self.rank(&pair[0], &pair[1]) != Ordering::Greater {
                    return Err(format!("{path:?}: holders out of order"));
                }
            }
            for h in holders.as_slice() {
                fresh.upsert(h.node, path.clone(), h.meta());
            }
            last = Some(path);
        }
        for (path, summary) in &self.dirs {
            if **summary.path != *path {
                return Err(format!("the summary of {path:?} names {:?}", summary.path));
            }
        }
        if fresh.counts != self.counts {
            return Err(format!("counts {:?} != recomputed {:?}", self.counts, fresh.counts));
        }
        if fresh.dirs != self.dirs {
            return Err("directory summaries differ from a recomputation".into());
        }
        Ok(())
    }
}

/// Merges two sorted iterators, dropping a key that appears in both.
struct MergeSorted<A: Iterator, B: Iterator> {
    a: std::iter::Peekable<A>,
    b: std::iter::Peekable<B>,
}

impl<A, B> Iterator for MergeSorted<A, B>
where
    A: Iterator<Item = DfsPath>,
    B: Iterator<Item = DfsPath>,
{
    type Item = DfsPath;

    fn next(&mut self) -> Option<DfsPath> {
        match (self.a.peek(), self.b.peek()) {
            (Some(x), Some(y)) => match x.cmp(y) {
                Ordering::Less => self.a.next(),
                Ordering::Greater => self.b.next(),
                Ordering::Equal => {
                    self.b.next();
                    self.a.next()
                }
            },
            (Some(_), None) => self.a.next(),
            (None, _) => self.b.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> DfsPath {
        DfsPath::parse(s).unwrap()
    }

    fn file(t: i64) -> Meta {
        Meta { mode: FileMode::file(0o644), size: 10, modified: t, info_updated: t }
    }

    fn dir(t: i64) -> Meta {
        Meta { mode: FileMode::dir(0o755), size: 0, modified: t, info_updated: t }
    }

    #[test]
    fn holdings_count_each_holder_and_only_files_bytes() {
        let mut t = Tree::new();
        let (a, b, idle) = (t.intern("a"), t.intern("b"), t.intern("idle"));
        t.upsert(a, p("d"), dir(1));
        t.upsert(a, p("d/x"), Meta { size: 3, ..file(1) });
        t.upsert(a, p("y"), Meta { size: 4, ..file(1) });
        // A conflict: both hold `y`; each holder counts it.
        t.upsert(b, p("y"), Meta { size: 100, ..file(2) });
        let h = t.holdings();
        assert_eq!(h["a"], Holdings { paths: 3, files: 2, bytes: 7 });
        assert_eq!(h["b"], Holdings { paths: 1, files: 1, bytes: 100 });
        assert_eq!(h["idle"], Holdings::default());
        assert_eq!(h["a"].paths, t.count_of(a) as u64);
        t.drop_node(b);
        assert_eq!(t.holdings()["b"], Holdings::default());
        let _ = idle;
    }

    #[test]
    fn newest_wins_then_name_and_next_holder_takes_over() {
        let mut t = Tree::new();
        let (a, b, c) = (t.intern("a"), t.intern("b"), t.intern("c"));
        t.upsert(a, p("x"), file(5));
        t.upsert(b, p("x"), file(7));
        t.upsert(c, p("x"), file(7));
        assert_eq!(t.lookup(&p("x")).unwrap().owner, Owner::Node("c".into()));
        t.remove(c, &p("x"));
        assert_eq!(t.lookup(&p("x")).unwrap().owner, Owner::Node("b".into()));
        t.remove(b, &p("x"));
        assert_eq!(t.lookup(&p("x")).unwrap().owner, Owner::Node("a".into()));
        t.remove(a, &p("x"));
        assert_eq!(t.lookup(&p("x")), None);
        t.check_invariants().unwrap();
    }

    #[test]
    fn deleting_a_nested_file_keeps_its_directory() {
        let mut t = Tree::new();
        let a = t.intern("a");
        t.upsert(a, p("somedir"), dir(1));
        t.upsert(a, p("somedir/a.txt"), file(1));
        t.upsert(a, p("somedir/g.gif"), file(1));
        t.remove(a, &p("somedir/a.txt"));
        let listed: Vec<_> = t.list(&p("somedir")).unwrap().into_iter().map(|e| e.path).collect();
        assert_eq!(listed, vec![p("somedir/g.gif")]);
        assert!(t.lookup(&p("somedir")).unwrap().is_dir());
        t.check_invariants().unwrap();
    }

    #[test]
    fn directory_owner_is_common_owner_or_multiple() {
        let mut t = Tree::new();
        let (a, b) = (t.intern("a"), t.intern("b"));
        t.upsert(a, p("d/x"), file(1));
        t.upsert(a, p("d/sub/y"), file(1));
        t.upsert(b, p("empty"), dir(1));
        assert_eq!(t.lookup(&p("d")).unwrap().owner, Owner::Node("a".into()));
        assert_eq!(t.lookup(&p("empty")).unwrap().owner, Owner::Node("b".into()));
        t.upsert(b, p("d/sub/z"), file(1));
        assert_eq!(t.lookup(&p("d")).unwrap().owner, Owner::Multiple);
        assert_eq!(t.lookup(&p("d/sub")).unwrap().owner, Owner::Multiple);
        t.remove(b, &p("d/sub/z"));
        assert_eq!(t.lookup(&p("d")).unwrap().owner, Owner::Node("a".into()));
        t.check_invariants().unwrap();
    }

    #[test]
    fn listing_skips_subtrees_and_orders_dirs_first() {
        let mut t = Tree::new();
        let a = t.intern("a");
        for f in ["r/x", "r/x.txt", "r/x/deep/1", "r/x/deep/2", "r/b", "r/a/1", "r/z", "r-other", "r/x-y"] {
            t.upsert(a, p(f), file(1));
        }
        let names: Vec<_> = t.list(&p("r")).unwrap().into_iter().map(|e| e.path.name().to_string()).collect();
        assert_eq!(names, vec!["a", "x", "b", "x-y", "x.txt", "z"]);
        let root: Vec<_> = t.list(&DfsPath::root()).unwrap().into_iter().map(|e| e.path).collect();
        assert_eq!(root, vec![p("r"), p("r-other")]);
        assert_eq!(t.list(&p("r/b")), None, "a file is not listable");
        assert_eq!(t.list(&p("nope")), None);
    }

    #[test]
    fn find_merges_files_and_derived_dirs_sorted() {
        let mut t = Tree::new();
        let a = t.intern("a");
        for f in ["a.txt", "a/b", "a/c/d", "b"] {
            t.upsert(a, p(f), file(1));
        }
        let all: Vec<_> = t.find("").map(|p| p.as_str().to_string()).collect();
        assert_eq!(all, vec!["a", "a.txt", "a/b", "a/c", "a/c/d", "b"]);
        let some: Vec<_> = t.find("a/").map(|p| p.as_str().to_string()).collect();
        assert_eq!(some, vec!["a/b", "a/c", "a/c/d"]);
    }

    #[test]
    fn replace_subtree_touches_only_that_subtree() {
        let mut t = Tree::new();
        let (a, b) = (t.intern("a"), t.intern("b"));
        for f in ["d/x", "d/sub/y", "d.txt", "dd/z"] {
            t.upsert(a, p(f), file(1));
        }
        t.upsert(b, p("d/x"), file(1));
        let changes = t.replace_subtree(a, &p("d"), vec![(p("d/new"), file(2)), (p("elsewhere"), file(2))]);
        assert_eq!(
            changes,
            vec![Change::Remove(p("d/sub/y")), Change::Remove(p("d/x")), Change::Upsert(p("d/new"), file(2))]
        );
        let mine: Vec<_> = t.view(a).map(|(p, _)| p.as_str().to_string()).collect();
        assert_eq!(mine, vec!["d.txt", "d/new", "dd/z"]);
        assert_eq!(t.lookup(&p("d/x")).unwrap().owner, Owner::Node("b".into()), "other holders stay");
        // A vanished directory: everything of ours at and below it goes.
        t.upsert(a, p("gone"), dir(1));
        t.upsert(a, p("gone/f"), file(1));
        assert_eq!(t.replace_subtree(a, &p("gone"), vec![]).len(), 2);
        assert_eq!(t.lookup(&p("gone")), None);
        t.check_invariants().unwrap();
    }

    #[test]
    fn replace_view_prunes_and_reports_changes() {
        let mut t = Tree::new();
        let a = t.intern("a");
        t.replace_view(a, vec![(p("x"), file(1)), (p("y"), file(1))]);
        let changes = t.replace_view(a, vec![(p("y"), file(1)), (p("z"), file(2)), (p("z"), file(3))]);
        assert_eq!(changes, vec![Change::Upsert(p("z"), file(3)), Change::Remove(p("x"))]);
        assert_eq!(t.count_of(a), 2);
        t.check_invariants().unwrap();
    }

    /// A full update from a node that holds paths already is compared with its view in one
    /// walk: unchanged records change nothing; the paths it no longer lists are found before,
    /// inside and after the stretch it lists, past other nodes' paths, and reported in order.
    #[test]
    fn repeated_and_shrunk_full_updates_against_the_view() {
        let mut t = Tree::new();
        let (a, b) = (t.intern("a"), t.intern("b"));
        let view = |names: &[&str], t: i64| -> Vec<(DfsPath, Meta)> { names.iter().map(|n| (p(n), file(t))).collect() };
        let all = ["a0", "d/x", "d/x.txt", "d/x/deep", "d/y", "m/1", "z9"];
        t.replace_view(b, view(&["d/w", "d/x/deep", "d/xa", "n"], 1));
        assert_eq!(t.replace_view(a, view(&all, 1)).len(), all.len());
        assert_eq!(t.replace_view(a, view(&all, 1)), vec![], "the same view again changes nothing");
        let changes = t.replace_view(a, vec![(p("d/x.txt"), file(1)), (p("d/y"), file(2))]);
        assert_eq!(
            changes,
            vec![
                Change::Upsert(p("d/y"), file(2)),
                Change::Remove(p("a0")),
                Change::Remove(p("d/x")),
                Change::Remove(p("d/x/deep")),
                Change::Remove(p("m/1")),
                Change::Remove(p("z9")),
            ]
        );
        assert_eq!(t.count_of(a), 2);
        assert_eq!(t.lookup(&p("d/x/deep")).unwrap().owner, Owner::Node("b".into()), "b still holds it");
        t.check_invariants().unwrap();
        assert_eq!(t.replace_view(a, vec![]).len(), 2);
        assert_eq!(t.count_of(a), 0);
        assert_eq!(t.count_of(b), 4);
        t.check_invariants().unwrap();
    }

    /// The bulk paths (two-pass insertion, inserting before looking for a node that holds
    /// nothing yet, batched directory summaries) give what single upserts give.
    #[test]
    fn bulk_replace_view_equals_single_upserts() {
        let files = |n: usize, t: i64| -> Vec<(DfsPath, Meta)> {
            let mut v: Vec<_> = (0..n).map(|i| (p(&format!("d{}/s{}/f{i:03}", i % 3, i % 2)), file(t))).collect();
            v.push((p("d0"), dir(t)));
            v.push((p("top.txt"), file(t)));
            v.reverse(); // unsorted on purpose
            v
        };
        let mut bulk = Tree::new();
        let mut single = Tree::new();
        let names = ["a", "b", "c"];
        for (k, name) in names.iter().enumerate() {
            let (idb, ids) = (bulk.intern(name), single.intern(name));
            // Overlapping views: a holds f000-f039, b f000-f059, c f000-f079; b's are the newest.
            let items = files(40 + 20 * k, [1, 3, 2][k]);
            let changes = bulk.replace_view(idb, items.clone());
            assert_eq!(changes.len(), items.len(), "{name} held nothing: every path changes");
            for (path, meta) in items {
                single.upsert(ids, path, meta);
            }
            bulk.check_invariants().unwrap();
        }
        let listing = |t: &Tree| -> Vec<Entry> { t.find("").filter_map(|p| t.lookup(&p)).collect() };
        assert_eq!(listing(&bulk), listing(&single));
        assert_eq!(bulk.lookup(&p("d0/s0/f000")).unwrap().owner, Owner::Node("b".into()));
        assert_eq!(bulk.lookup(&p("d1/s0/f070")).unwrap().owner, Owner::Node("c".into()));
        assert_eq!(bulk.lookup(&p("d1")).unwrap().owner, Owner::Multiple);

        // A smaller full update from c prunes through the batched summaries too.
        let (c, cs) = (bulk.id_of("c").unwrap(), single.id_of("c").unwrap());
        let changes = bulk.replace_view(c, files(10, 2));
        assert_eq!(changes.iter().filter(|ch| matches!(ch, Change::Remove(_))).count(), 70);
        let stale: Vec<DfsPath> =
            single.view(cs).map(|(p, _)| p.clone()).filter(|p| !files(10, 2).iter().any(|(q, _)| q == p)).collect();
        for path in stale {
            single.remove(cs, &path);
        }
        bulk.check_invariants().unwrap();
        assert_eq!(listing(&bulk), listing(&single));
        assert_eq!(bulk.lookup(&p("d1/s0/f070")), None);

        // Dropping a node batches its removals the same way.
        let (b, bs) = (bulk.id_of("b").unwrap(), single.id_of("b").unwrap());
        assert_eq!(bulk.drop_node(b), 62);
        for path in single.view(bs).map(|(p, _)| p.clone()).collect::<Vec<_>>() {
            single.remove(bs, &path);
        }
        bulk.check_invariants().unwrap();
        assert_eq!(listing(&bulk), listing(&single));
        assert_eq!(bulk.lookup(&p("d1/s1/f001")).unwrap().owner, Owner::Node("c".into()));
        assert_eq!(bulk.lookup(&p("d1/s1/f031")).unwrap().owner, Owner::Node("a".into()));
    }
}
