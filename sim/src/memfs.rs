//! An in-memory local tree behind the daemon's [`LocalFs`], changed by the scenario.
//!
//! It behaves like a POSIX directory tree where it matters to the daemon: creating or removing
//! an entry changes its parent directory's mtime and ctime, a rename changes the moved entry's
//! ctime, and the watcher hears of each change as inotify reports it (the changed path, not its
//! parent). The ctime is what the scenario says it is (simulated Unix seconds), so the checker
//! can apply the conflict rule to it.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, UNIX_EPOCH};

use dftp::localfs::{Contents, FileMeta, LocalFs, Opened, ScanReport, WatchMsg};
use dftp_core::{DfsPath, FileMode, Meta};
use futures_util::future::BoxFuture;
use tokio::sync::mpsc::UnboundedSender;

/// One file or directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemEntry {
    pub dir: bool,
    pub size: u64,
    /// Unix seconds.
    pub mtime: i64,
    /// Unix seconds: the conflict rule's first key.
    pub ctime: i64,
}

impl MemEntry {
    pub fn meta(&self) -> Meta {
        let mode = if self.dir { FileMode::dir(0o755) } else { FileMode::file(0o644) };
        Meta { mode, size: if self.dir { 0 } else { self.size }, modified: self.mtime, info_updated: self.ctime }
    }

    fn file_meta(&self) -> FileMeta {
        FileMeta { len: self.size, modified: UNIX_EPOCH + Duration::from_secs(self.mtime.max(0) as u64) }
    }
}

#[derive(Default)]
struct Inner {
    /// Paths relative to the root, `/`-separated.
    entries: BTreeMap<String, MemEntry>,
    watchers: Vec<UnboundedSender<WatchMsg>>,
    /// Paths removed (or moved away) since the checker last looked.
    gone: Vec<String>,
    /// Bumped by every change of `entries`.
    version: u64,
}

/// A local tree that survives its node's crashes (it is the disk).
#[derive(Clone, Default)]
pub struct MemFs(Arc<Mutex<Inner>>);

fn parent(path: &str) -> Option<&str> {
    path.rfind('/').map(|i| &path[..i])
}

fn is_below(path: &str, dir: &str) -> bool {
    path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/'
}

impl MemFs {
    pub fn new() -> MemFs {
        MemFs::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Everything in the tree.
    pub fn entries(&self) -> BTreeMap<String, MemEntry> {
        self.lock().entries.clone()
    }

    pub fn get(&self, path: &str) -> Option<MemEntry> {
        self.lock().entries.get(path).copied()
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().entries.is_empty()
    }

    /// Changes whenever the tree does.
    pub fn version(&self) -> u64 {
        self.lock().version
    }

    /// Creates or rewrites a file (and any missing directories above it), as at `now`. Returns
    /// false, changing nothing, when the path or one above it has the other kind.
    pub fn write(&self, path: &str, size: u64, now: i64) -> bool {
        self.put(path, false, size, now)
    }

    /// Creates a directory (and any missing ones above it).
    pub fn mkdir(&self, path: &str, now: i64) -> bool {
        self.put(path, true, 0, now)
    }

    fn put(&self, path: &str, dir: bool, size: u64, now: i64) -> bool {
        assert!(DfsPath::parse(path).is_ok_and(|p| !p.is_root()), "bad path {path:?}");
        let mut inner = self.lock();
        // Check the kinds first.
        let mut p = parent(path);
        while let Some(a) = p {
            if inner.entries.get(a).is_some_and(|e| !e.dir) {
                return false;
            }
            p = parent(a);
        }
        match inner.entries.get(path) {
            Some(e) if e.dir != dir => return false,
            Some(_) if dir => return true,
            _ => {}
        }
        // The outermost entry this creates, which is what inotify reports.
        let mut top = None;
        let mut missing = Vec::new();
        let mut p = parent(path);
        while let Some(a) = p {
            if inner.entries.contains_key(a) {
                break;
            }
            missing.push(a.to_owned());
            p = parent(a);
        }
        for a in missing.iter().rev() {
            inner.entries.insert(a.clone(), MemEntry { dir: true, size: 0, mtime: now, ctime: now });
        }
        if let Some(a) = missing.last() {
            top = Some(a.clone());
        }
        let existed = inner.entries.contains_key(path);
        inner.entries.insert(path.to_owned(), MemEntry { dir, size, mtime: now, ctime: now });
        let created = top.clone().or_else(|| (!existed).then(|| path.to_owned()));
        if let Some(c) = &created {
            Self::touch_parent(&mut inner, c, now);
        }
        let report = top.unwrap_or_else(|| path.to_owned());
        Self::notify(&mut inner, &report);
        true
    }

    /// Removes a path and everything below it. Returns whether it existed.
    pub fn remove(&self, path: &str, now: i64) -> bool {
        let mut inner = self.lock();
        if inner.entries.remove(path).is_none() {
            return false;
        }
        let below: Vec<String> = inner.entries.keys().filter(|k| is_below(k, path)).cloned().collect();
        for k in &below {
            inner.entries.remove(k);
        }
        inner.gone.push(path.to_owned());
        inner.gone.extend(below);
        Self::touch_parent(&mut inner, path, now);
        Self::notify(&mut inner, path);
        true
    }

    /// Moves `from` (and what is below it) to `to`, whose parent must exist and which must not.
    pub fn rename(&self, from: &str, to: &str, now: i64) -> bool {
        let mut inner = self.lock();
        if from == to || is_below(to, from) || inner.entries.contains_key(to) || !inner.entries.contains_key(from) {
            return false;
        }
        if let Some(p) = parent(to) {
            if !inner.entries.get(p).is_some_and(|e| e.dir) {
                return false;
            }
        }
        let moved: Vec<(String, MemEntry)> = inner
            .entries
            .iter()
            .filter(|(k, _)| k.as_str() == from || is_below(k, from))
            .map(|(k, e)| (k.clone(), *e))
            .collect();
        for (k, _) in &moved {
            inner.entries.remove(k);
            inner.gone.push(k.clone());
        }
        for (k, mut e) in moved {
            let nk = format!("{to}{}", &k[from.len()..]);
            if k == from {
                e.ctime = now;
            }
            inner.entries.insert(nk, e);
        }
        Self::touch_parent(&mut inner, from, now);
        Self::touch_parent(&mut inner, to, now);
        Self::notify(&mut inner, from);
        Self::notify(&mut inner, to);
        true
    }

    /// Changes a path's metadata only (chmod): a new ctime, same content.
    pub fn chmod(&self, path: &str, now: i64) -> bool {
        let mut inner = self.lock();
        let Some(e) = inner.entries.get_mut(path) else { return false };
        e.ctime = now;
        Self::notify(&mut inner, path);
        true
    }

    /// The paths removed or moved away since the last call.
    pub fn take_gone(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().gone)
    }

    /// The watcher loses its events (a queue overflow): it must rescan everything.
    pub fn overflow(&self) {
        let mut inner = self.lock();
        inner.watchers.retain(|tx| tx.send(WatchMsg::RescanAll).is_ok());
    }

    fn touch_parent(inner: &mut Inner, path: &str, now: i64) {
        if let Some(p) = parent(path) {
            if let Some(e) = inner.entries.get_mut(p) {
                e.mtime = now;
                e.ctime = now;
            }
        }
    }

    fn notify(inner: &mut Inner, path: &str) {
        inner.version += 1;
        let Ok(p) = DfsPath::parse(path) else { return };
        inner.watchers.retain(|tx| tx.send(WatchMsg::Changed(p.clone())).is_ok());
    }

    fn listing(&self, below: Option<&str>) -> Vec<(DfsPath, Meta)> {
        let inner = self.lock();
        inner
            .entries
            .iter()
            .filter(|(k, _)| below.is_none_or(|d| k.as_str() == d || is_below(k, d)))
            .map(|(k, e)| (DfsPath::parse(k).expect("valid paths only"), e.meta()))
            .collect()
    }
}

impl LocalFs for MemFs {
    fn scan(&self) -> io::Result<ScanReport> {
        let entries = self.listing(None);
        let files = entries.iter().filter(|(_, m)| !m.is_dir()).count();
        Ok(ScanReport { entries, files, ..ScanReport::default() })
    }

    fn scan_below(&self, rel: &DfsPath) -> io::Result<Vec<(DfsPath, Meta)>> {
        if rel.is_root() {
            return Ok(self.listing(None));
        }
        Ok(self.listing(Some(rel.as_str())))
    }

    fn watch(&self, tx: UnboundedSender<WatchMsg>) -> io::Result<Box<dyn std::any::Any + Send>> {
        self.lock().watchers.push(tx);
        Ok(Box::new(()))
    }

    fn open(&self, rel: &str, _expected_len: u64) -> BoxFuture<'static, io::Result<Opened>> {
        let found = self.get(rel);
        Box::pin(async move {
            match found {
                Some(e) if !e.dir => {
                    let content: Vec<u8> = (0..e.size).map(|i| b'a' + (i % 26) as u8).collect();
                    Ok(Opened { contents: Contents::Bytes(content.into()), meta: e.file_meta() })
                }
                _ => Err(io::Error::new(io::ErrorKind::NotFound, "no such file")),
            }
        })
    }
}
