//! Turns local file-system changes into core events: watcher notifications are debounced, each
//! changed path is rescanned (with what lies below it), and the node gets what the disk holds
//! there now; it works out the differences itself. Without a watcher (the inotify limit, say),
//! the whole tree is rescanned every `--rescan-interval` instead.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use dftp_core::{Change, DfsPath, Event, Meta, Mount};
use tokio::sync::{mpsc, watch};

use crate::driver::Handle;
use crate::localfs::{LocalFs, RootCheck, WatchMsg};
use crate::metrics::Rescan;

/// Longest a change waits before it is sent on, while more keep coming.
pub const DEBOUNCE: Duration = Duration::from_millis(150);
/// A batch is sent as soon as the tree has been quiet this long: a single write is not held for
/// the whole debounce, a burst (an unpacked archive) still goes out as a few updates.
pub const QUIET: Duration = Duration::from_millis(20);

pub async fn run(
    fs: Arc<dyn LocalFs>,
    mount: Mount,
    handle: Handle,
    rescan_every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let (mut guard, mut rx) = start_watching(&fs, &handle, rescan_every).await;
    let mut rescan = tokio::time::interval_at(tokio::time::Instant::now() + rescan_every, rescan_every);
    let mut root_check = tokio::time::interval_at(tokio::time::Instant::now() + ROOT_CHECK, ROOT_CHECK);
    let mut root_gone = false;
    loop {
        let all = tokio::select! {
            biased; // the same choice every run, for the simulator
            _ = stop.changed() => return,
            _ = root_check.tick() => false,
            _ = rescan.tick(), if guard.is_none() => true,
            msg = rx.recv(), if guard.is_some() => {
                let Some(first) = msg else { guard = None; continue };
                let mut batch = vec![first];
                let deadline = tokio::time::Instant::now() + DEBOUNCE;
                loop {
                    let until = deadline.min(tokio::time::Instant::now() + QUIET);
                    match tokio::time::timeout_at(until, rx.recv()).await {
                        Ok(Some(m)) => batch.push(m),
                        _ => break,
                    }
                }
                handle.metrics().watcher_events(batch.len());
                let mut paths = BTreeSet::new();
                let mut all = false;
                for m in batch {
                    match m {
                        WatchMsg::Changed(p) => {
                            paths.insert(p);
                        }
                        WatchMsg::RescanAll => all = true,
                        WatchMsg::Failed(why) => {
                            fallback_warning(&why, rescan_every);
                            guard = None;
                            all = true;
                        }
                    }
                }
                if !all {
                    rescan_paths(&fs, &mount, &handle, paths).await;
                    continue;
                }
                true
            }
        };
        // Every full rescan, and every few seconds, looks at the root first: events on the
        // root itself come as a full rescan, and a root moved away may send none at all.
        let check_fs = fs.clone();
        match handle.blocking().run(move || check_fs.check_root()).await {
            Ok(RootCheck::Same) | Err(_) => {
                if all {
                    rescan_all(&fs, &mount, &handle).await;
                }
            }
            Ok(RootCheck::Replaced(what)) => {
                tracing::warn!("{what}");
                root_gone = false;
                drop(guard.take());
                (guard, rx) = start_watching(&fs, &handle, rescan_every).await;
                rescan_all(&fs, &mount, &handle).await;
            }
            Ok(RootCheck::Gone(why)) => {
                if !root_gone {
                    tracing::warn!("{why}; this node shows none of its own files until a directory is there again");
                    root_gone = true;
                    // The scan finds nothing there: the node's files leave the tree.
                    rescan_all(&fs, &mount, &handle).await;
                }
            }
        }
    }
}

/// How often the watcher looks whether the root directory is still the one it watches.
const ROOT_CHECK: Duration = Duration::from_secs(2);

/// Sets up the watches (a walk of the tree: blocking work, which would otherwise hold an async
/// thread while the first peers join). `None` (with a warning) when watching is not possible:
/// the caller then rescans every `rescan_every`.
async fn start_watching(
    fs: &Arc<dyn LocalFs>,
    handle: &Handle,
    rescan_every: Duration,
) -> (Option<Box<dyn std::any::Any + Send>>, mpsc::UnboundedReceiver<WatchMsg>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let watch_fs = fs.clone();
    let guard = match handle.blocking().run(move || watch_fs.watch(tx)).await {
        Ok(Ok(g)) => Some(g),
        Ok(Err(e)) => {
            fallback_warning(&e.to_string(), rescan_every);
            None
        }
        Err(e) => {
            fallback_warning(&format!("setting up the watches failed: {e}"), rescan_every);
            None
        }
    };
    (guard, rx)
}

fn fallback_warning(why: &str, every: Duration) {
    tracing::warn!(
        "cannot watch the local tree for changes ({why}); raise the limit with \
         `sysctl fs.inotify.max_user_watches=1048576` and restart; until then the tree is rescanned every {every:?}"
    );
}

/// Keeps only the outermost of nested paths: rescanning `a` covers `a/b`.
pub fn outermost(paths: BTreeSet<DfsPath>) -> Vec<DfsPath> {
    let mut out: Vec<DfsPath> = Vec::new();
    for p in paths {
        if !out.iter().any(|q| p.is_within(q)) {
            out.push(p);
        }
    }
    out
}

async fn rescan_paths(fs: &Arc<dyn LocalFs>, mount: &Mount, handle: &Handle, paths: BTreeSet<DfsPath>) {
    handle.metrics().rescan(Rescan::Paths);
    let roots = outermost(paths);
    let (fs, mount) = (fs.clone(), mount.clone());
    if let Ok(rescanned) = handle.blocking().run(move || rescan(fs.as_ref(), &mount, &roots)).await {
        for event in rescanned.into_events() {
            handle.send(event).await;
        }
    }
}

/// What the disk holds now at some local paths, as the node takes it.
#[derive(Debug, Default)]
pub struct Rescanned {
    /// Each path's subtree, in cluster paths ([`Event::LocalSubtrees`]).
    pub subtrees: Vec<(DfsPath, Vec<(DfsPath, Meta)>)>,
    /// The records of the directories they lie in ([`Event::LocalChanges`]).
    pub changes: Vec<Change>,
}

impl Rescanned {
    /// The events that tell the node, in order.
    pub fn into_events(self) -> Vec<Event> {
        let mut events = Vec::new();
        if !self.subtrees.is_empty() {
            events.push(Event::LocalSubtrees(self.subtrees));
        }
        if !self.changes.is_empty() {
            events.push(Event::LocalChanges(self.changes));
        }
        events
    }
}

/// Rescans `roots` (local paths, none below another) and reads their directories' records
/// again (blocking): what the watcher reports after a change, and what a write of this node
/// reports at once. Being the same, the watcher's later report of a write changes nothing.
pub fn rescan(fs: &dyn LocalFs, mount: &Mount, roots: &[DfsPath]) -> Rescanned {
    let mut out = Rescanned::default();
    for root in roots {
        match fs.scan_below(root) {
            Ok(entries) => {
                let (Ok(croot), entries) = (mount.to_cluster(root), to_cluster(mount, entries)) else {
                    continue;
                };
                out.subtrees.push((croot, entries));
            }
            Err(e) => tracing::warn!("rescanning {root}: {e}"),
        }
    }
    // Creating, removing or renaming an entry changes its directory's mtime and ctime, which
    // inotify does not report: read those directories' own records again (the ctime decides
    // who owns an empty directory that several nodes hold).
    let parents: BTreeSet<DfsPath> = roots
        .iter()
        .filter_map(DfsPath::parent)
        .filter(|d| !d.is_root() && !roots.iter().any(|r| d.is_within(r)))
        .collect();
    for dir in parents {
        match fs.entry(&dir) {
            Ok(Some(meta)) => {
                if let Ok(cdir) = mount.to_cluster(&dir) {
                    out.changes.push(Change::Upsert(cdir, meta));
                }
            }
            Ok(None) => {} // gone too: its own event rescans it
            Err(e) => tracing::warn!("rescanning {dir}: {e}"),
        }
    }
    out
}

async fn rescan_all(fs: &Arc<dyn LocalFs>, mount: &Mount, handle: &Handle) {
    handle.metrics().rescan(Rescan::All);
    let fs = fs.clone();
    match handle.blocking().run(move || fs.scan()).await {
        Ok(Ok(report)) => handle.send(Event::LocalScan(to_cluster(mount, report.entries))).await,
        Ok(Err(e)) => tracing::warn!("rescan failed: {e}"),
        Err(e) => tracing::warn!("rescan failed: {e}"),
    }
}

pub fn to_cluster(mount: &Mount, entries: Vec<(DfsPath, Meta)>) -> Vec<(DfsPath, Meta)> {
    entries.into_iter().filter_map(|(p, m)| mount.to_cluster(&p).ok().map(|p| (p, m))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_paths_collapse() {
        let set: BTreeSet<DfsPath> =
            ["a/b", "a", "ab", "c/d", "c/d/e"].iter().map(|s| DfsPath::parse(s).unwrap()).collect();
        let got: Vec<_> = outermost(set).iter().map(|p| p.as_str().to_string()).collect();
        assert_eq!(got, vec!["a", "ab", "c/d"]);
    }
}
