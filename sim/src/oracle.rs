//! What every node should show: the merged tree computed from the live nodes' disks by the
//! conflict rule, written independently of the core's tree.
//!
//! - A path's winner is the holder with the greatest `(ctime, node name)`.
//! - A path with anything below it is a directory; so is every ancestor of a held path.
//! - A directory's owner is the one node that wins every file below it; with no file below, its
//!   own winner; otherwise, or with neither, `(multiple)`.

use std::collections::{BTreeMap, BTreeSet};

use crate::memfs::MemEntry;

/// Every path of a tree, with its owner as listings show it.
pub type View = BTreeMap<String, String>;

pub const MULTIPLE: &str = "(multiple)";

/// The expected tree of a cluster whose live nodes hold these trees (cluster paths).
pub fn expected<'a>(live: impl IntoIterator<Item = (&'a str, &'a BTreeMap<String, MemEntry>)>) -> View {
    // path -> (ctime, name, is_dir) of the winner
    let mut winners: BTreeMap<&str, (i64, &str, bool)> = BTreeMap::new();
    for (name, tree) in live {
        for (path, e) in tree {
            let w = winners.entry(path.as_str()).or_insert((e.ctime, name, e.dir));
            if (e.ctime, name) > (w.0, w.1) {
                *w = (e.ctime, name, e.dir);
            }
        }
    }
    // Directories with something below, and the winners of the files below each.
    let mut below: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (path, (_, owner, dir)) in &winners {
        let mut p = *path;
        while let Some(i) = p.rfind('/') {
            p = &p[..i];
            let owners = below.entry(p).or_default();
            if !dir {
                owners.insert(owner);
            }
        }
    }
    let mut view = View::new();
    for (path, owners) in &below {
        let owner = match owners.len() {
            1 => owners.iter().next().copied().unwrap_or(MULTIPLE),
            0 => winners.get(path).map_or(MULTIPLE, |w| w.1),
            _ => MULTIPLE,
        };
        view.insert(path.to_string(), owner.to_string());
    }
    for (path, (_, owner, _)) in &winners {
        view.entry(path.to_string()).or_insert_with(|| owner.to_string());
    }
    view
}

/// What a node shows.
pub fn actual(snapshot: &dftp_core::Snapshot) -> View {
    snapshot
        .find("")
        .map(|p| {
            let owner = snapshot.lookup(&p).map_or_else(|| "?".to_string(), |e| e.owner.as_str().to_string());
            (p.as_str().to_string(), owner)
        })
        .collect()
}

/// Whether a node shows exactly `view` (what [`actual`] would return, without building it).
pub fn shows(snapshot: &dftp_core::Snapshot, view: &View) -> bool {
    let mut expected = view.iter();
    for p in snapshot.find("") {
        let p = &p;
        let Some((path, owner)) = expected.next() else { return false };
        let shown = snapshot.lookup(p);
        if p.as_str() != path || shown.as_ref().map_or("?", |e| e.owner.as_str()) != owner {
            return false;
        }
    }
    expected.next().is_none()
}

/// The first few differences between two views, for a failure message.
pub fn diff(expected: &View, actual: &View, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    let keys: BTreeSet<&String> = expected.keys().chain(actual.keys()).collect();
    for k in keys {
        match (expected.get(k), actual.get(k)) {
            (Some(e), Some(a)) if e != a => out.push(format!("{k}: owner {a}, expected {e}")),
            (Some(e), None) => out.push(format!("{k}: missing (owner {e})")),
            (None, Some(a)) => out.push(format!("{k}: listed (owner {a}), held by no live node")),
            _ => continue,
        }
        if out.len() >= limit {
            out.push("...".into());
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(dir: bool, ctime: i64) -> MemEntry {
        MemEntry { dir, size: 1, mtime: ctime, ctime }
    }

    #[test]
    fn conflict_rule_and_directories() {
        let a: BTreeMap<String, MemEntry> =
            [("d", e(true, 1)), ("d/x", e(false, 5)), ("d/y", e(false, 1)), ("e", e(true, 9))]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
        let b: BTreeMap<String, MemEntry> = [("d", e(true, 2)), ("d/x", e(false, 5)), ("f/g", e(false, 1))]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let v = expected([("a", &a), ("b", &b)]);
        assert_eq!(v["d/x"], "b"); // same ctime: the greater name
        assert_eq!(v["d/y"], "a");
        assert_eq!(v["d"], MULTIPLE);
        assert_eq!(v["e"], "a"); // empty directory: its own winner
        assert_eq!(v["f"], "b"); // derived
        assert_eq!(v.len(), 6);
    }

    #[test]
    fn shows_agrees_with_actual() {
        use dftp_core::{Config, DfsPath, Event, FileMode, Meta, Node, PeerAddr, Time};
        let addr = |port| PeerAddr::parse(&format!("10.0.0.1:{port}")).expect("an address");
        let now = Time::from_secs(1_700_000_000);
        let mut node = Node::new(Config::new("a", "dftp", addr(7040), addr(7041), 1), now);
        let meta = |dir: bool| Meta {
            mode: if dir { FileMode::dir(0o755) } else { FileMode::file(0o644) },
            size: 1,
            modified: 1,
            info_updated: 1,
        };
        let scan = ["d", "d/x", "e"].map(|s| (DfsPath::parse(s).expect("a path"), meta(s != "d/x")));
        node.handle(now, Event::LocalScan(scan.to_vec()));
        let snap = node.snapshot(now);
        let view = actual(&snap);
        assert_eq!(view.keys().map(String::as_str).collect::<Vec<_>>(), ["d", "d/x", "e"]);
        assert!(shows(&snap, &view));
        let mut more = view.clone();
        more.insert("f".into(), "a".into());
        let mut fewer = view.clone();
        fewer.remove("e");
        let mut other_owner = view.clone();
        other_owner.insert("d/x".into(), "b".into());
        let mut renamed = fewer.clone();
        renamed.insert("dd".into(), "a".into());
        for wrong in [more, fewer, other_owner, renamed, View::new()] {
            assert!(!shows(&snap, &wrong), "{wrong:?}");
        }
    }
}
