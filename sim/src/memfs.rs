//! An in-memory local tree behind the daemon's [`LocalFs`], changed by the scenario.
//!
//! It behaves like a POSIX directory tree where it matters to the daemon: creating or removing
//! an entry changes its parent directory's mtime and ctime, a rename changes the moved entry's
//! ctime, and the watcher hears of each change as inotify reports it (the changed path, not its
//! parent). The ctime is what the scenario says it is (simulated Unix seconds), so the checker
//! can apply the conflict rule to it.
//!
//! Writes through the daemon (PUT, DELETE, MKCOL, MOVE, COPY; FTP's) go through the same
//! changes, at the host's simulated time, and keep the bytes written, which reads then return;
//! a file the scenario writes has made-up bytes of its size. They check what the disk
//! implementation checks (kinds, parents, preconditions, offsets, reserved names); what only a
//! real disk can get wrong (symbolic links, a full disk, a crash halfway) is tested there.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, UNIX_EPOCH};

use dftp::localfs::{
    check_name, etag, Committed, Contents, FileMeta, FileWriter, LocalFs, Opened, ScanReport, WatchMsg, WriteError,
    WriteMode, WriteOptions,
};
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
    /// The bytes of files written through the daemon (others have made-up bytes).
    contents: BTreeMap<String, Vec<u8>>,
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
        self.put_with(path, dir, size, now, None)
    }

    /// [`MemFs::put`], with the bytes of a file written through the daemon.
    fn put_with(&self, path: &str, dir: bool, size: u64, now: i64, bytes: Option<Vec<u8>>) -> bool {
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
        match bytes {
            Some(b) => inner.contents.insert(path.to_owned(), b),
            None => inner.contents.remove(path),
        };
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
            inner.contents.remove(k);
        }
        inner.contents.remove(path);
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
        let mut bytes = Vec::new();
        for (k, _) in &moved {
            inner.entries.remove(k);
            if let Some(b) = inner.contents.remove(k) {
                bytes.push((format!("{to}{}", &k[from.len()..]), b));
            }
            inner.gone.push(k.clone());
        }
        for (k, mut e) in moved {
            let nk = format!("{to}{}", &k[from.len()..]);
            if k == from {
                e.ctime = now;
            }
            inner.entries.insert(nk, e);
        }
        inner.contents.extend(bytes);
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
        let found = self.get(rel).map(|e| (e, self.bytes_of(rel, &e)));
        Box::pin(async move {
            match found {
                Some((e, content)) if !e.dir => {
                    Ok(Opened { contents: Contents::Bytes(content.into()), meta: e.file_meta() })
                }
                _ => Err(io::Error::new(io::ErrorKind::NotFound, "no such file")),
            }
        })
    }

    fn create_file(&self, rel: &DfsPath, opts: WriteOptions) -> Result<Box<dyn FileWriter>, WriteError> {
        check_name(rel)?;
        let path = rel.as_str();
        self.check_parent(rel, opts.create_parents)?;
        let current = self.get(path);
        if current.is_some_and(|e| e.dir) {
            return Err(WriteError::IsADirectory(rel.clone()));
        }
        let tag = current.and_then(|e| validator(&e));
        if !opts.precondition.holds(tag.as_deref()) {
            return Err(WriteError::PreconditionFailed { path: rel.clone(), why: "the current file does not match" });
        }
        let old = current.map(|e| self.bytes_of(path, &e)).unwrap_or_default();
        let (data, at, base) = match opts.mode {
            WriteMode::Replace => (Vec::new(), 0, None),
            WriteMode::Append => (old.clone(), old.len(), Some(tag.clone())),
            WriteMode::At(n) if n > old.len() as u64 => {
                return Err(WriteError::BadOffset { path: rel.clone(), size: old.len() as u64 })
            }
            WriteMode::At(n) => (old.clone(), n as usize, Some(tag.clone())),
        };
        Ok(Box::new(MemWriter { fs: self.clone(), rel: rel.clone(), opts, data, at, base }))
    }

    fn remove_file(&self, rel: &DfsPath) -> Result<(), WriteError> {
        check_name(rel)?;
        match self.get(rel.as_str()) {
            None => Err(WriteError::NotFound(rel.clone())),
            Some(e) if e.dir => Err(WriteError::IsADirectory(rel.clone())),
            Some(_) => {
                self.remove(rel.as_str(), now_secs());
                Ok(())
            }
        }
    }

    fn remove_dir(&self, rel: &DfsPath, recursive: bool) -> Result<(), WriteError> {
        if rel.is_root() {
            if !recursive {
                return Err(WriteError::BadName { path: rel.clone(), why: "the served root cannot be removed" });
            }
            let top: Vec<String> = self.lock().entries.keys().filter(|k| !k.contains('/')).cloned().collect();
            for k in top {
                self.remove(&k, now_secs());
            }
            return Ok(());
        }
        check_name(rel)?;
        let path = rel.as_str();
        match self.get(path) {
            None => Err(WriteError::NotFound(rel.clone())),
            Some(e) if !e.dir => Err(WriteError::NotADirectory(rel.clone())),
            Some(_) if !recursive && self.lock().entries.keys().any(|k| is_below(k, path)) => {
                Err(WriteError::NotEmpty(rel.clone()))
            }
            Some(_) => {
                self.remove(path, now_secs());
                Ok(())
            }
        }
    }

    fn make_dir(&self, rel: &DfsPath) -> Result<(), WriteError> {
        if rel.is_root() || self.get(rel.as_str()).is_some() {
            return Err(WriteError::Exists(rel.clone()));
        }
        check_name(rel)?;
        self.check_parent(rel, false)?;
        self.mkdir(rel.as_str(), now_secs());
        Ok(())
    }

    fn rename(&self, from: &DfsPath, to: &DfsPath, overwrite: bool) -> Result<bool, WriteError> {
        let replaced = self.make_room(from, to, overwrite)?;
        if !MemFs::rename(self, from.as_str(), to.as_str(), now_secs()) {
            return Err(WriteError::NotFound(from.clone()));
        }
        Ok(replaced)
    }

    fn copy(&self, from: &DfsPath, to: &DfsPath, overwrite: bool) -> Result<bool, WriteError> {
        let replaced = self.make_room(from, to, overwrite)?;
        let now = now_secs();
        let copied: Vec<(String, MemEntry, Vec<u8>)> = {
            let inner = self.lock();
            inner
                .entries
                .iter()
                .filter(|(k, _)| k.as_str() == from.as_str() || is_below(k, from.as_str()))
                .map(|(k, e)| (k.clone(), *e, inner.contents.get(k).cloned().unwrap_or_else(|| made_up(e.size))))
                .collect()
        };
        for (k, e, bytes) in copied {
            let nk = format!("{}{}", to.as_str(), &k[from.as_str().len()..]);
            let bytes = (!e.dir).then_some(bytes);
            self.put_with(&nk, e.dir, e.size, now, bytes);
        }
        Ok(replaced)
    }
}

/// The simulated time at the host that calls (the scenario's clock outside one).
fn now_secs() -> i64 {
    let since = turmoil::since_epoch()
        .unwrap_or_else(|| std::time::SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default());
    since.as_secs() as i64
}

/// Made-up bytes of a file the scenario wrote.
pub fn made_up(size: u64) -> Vec<u8> {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect()
}

/// A file's validator, as reads send it.
fn validator(e: &MemEntry) -> Option<String> {
    etag(e.size, e.file_meta().modified)
}

impl MemFs {
    /// The bytes of the file at `path` (`None` for a directory or nothing).
    pub fn bytes(&self, path: &str) -> Option<Vec<u8>> {
        let e = self.get(path).filter(|e| !e.dir)?;
        Some(self.bytes_of(path, &e))
    }

    fn bytes_of(&self, path: &str, e: &MemEntry) -> Vec<u8> {
        self.lock().contents.get(path).cloned().unwrap_or_else(|| made_up(e.size))
    }

    /// Checks that `rel`'s parent is a directory, or (with `create`) that nothing above it is a
    /// file.
    fn check_parent(&self, rel: &DfsPath, create: bool) -> Result<(), WriteError> {
        let Some(parent) = rel.parent().filter(|p| !p.is_root()) else { return Ok(()) };
        match self.get(parent.as_str()) {
            Some(e) if e.dir => Ok(()),
            Some(_) => Err(WriteError::NotADirectory(parent)),
            None if !create => Err(WriteError::ParentMissing(parent)),
            None => {
                let mut up = parent.parent();
                while let Some(a) = up.filter(|a| !a.is_root()) {
                    if self.get(a.as_str()).is_some_and(|e| !e.dir) {
                        return Err(WriteError::NotADirectory(a));
                    }
                    up = a.parent();
                }
                Ok(())
            }
        }
    }

    /// Checks a move's or a copy's ends and clears the destination if allowed. Returns whether
    /// something was there.
    fn make_room(&self, from: &DfsPath, to: &DfsPath, overwrite: bool) -> Result<bool, WriteError> {
        check_name(from)?;
        check_name(to)?;
        if to.is_within(from) || from.is_within(to) {
            return Err(WriteError::BadName { path: to.clone(), why: "a path cannot replace itself or what holds it" });
        }
        if self.get(from.as_str()).is_none() {
            return Err(WriteError::NotFound(from.clone()));
        }
        self.check_parent(to, false)?;
        if self.get(to.as_str()).is_none() {
            return Ok(false);
        }
        if !overwrite {
            return Err(WriteError::Exists(to.clone()));
        }
        self.remove(to.as_str(), now_secs());
        Ok(true)
    }
}

/// A file written through the daemon: the bytes gather here and land at the commit.
struct MemWriter {
    fs: MemFs,
    rel: DfsPath,
    opts: WriteOptions,
    data: Vec<u8>,
    /// Where the next bytes go.
    at: usize,
    /// For an append: the validator of the content it started from.
    base: Option<Option<String>>,
}

impl FileWriter for MemWriter {
    fn write(&mut self, chunk: &[u8]) -> Result<(), WriteError> {
        let end = self.at + chunk.len();
        if end > self.data.len() {
            self.data.resize(end, 0);
        }
        self.data[self.at..end].copy_from_slice(chunk);
        self.at = end;
        Ok(())
    }

    fn commit(self: Box<Self>) -> Result<Committed, WriteError> {
        let path = self.rel.as_str();
        self.fs.check_parent(&self.rel, self.opts.create_parents)?;
        let current = self.fs.get(path);
        if current.is_some_and(|e| e.dir) {
            return Err(WriteError::IsADirectory(self.rel.clone()));
        }
        let tag = current.and_then(|e| validator(&e));
        if self.base.as_ref().is_some_and(|b| *b != tag) {
            return Err(WriteError::PreconditionFailed {
                path: self.rel.clone(),
                why: "the file changed during the append",
            });
        }
        if !self.opts.precondition.holds(tag.as_deref()) {
            return Err(WriteError::PreconditionFailed {
                path: self.rel.clone(),
                why: "the current file does not match",
            });
        }
        let created_dir = self
            .rel
            .ancestors()
            .filter(|a| self.fs.get(a).is_none())
            .last()
            .map(|a| DfsPath::parse(a).expect("an ancestor of a valid path"));
        let size = self.data.len() as u64;
        if !self.fs.put_with(path, false, size, now_secs(), Some(self.data)) {
            return Err(WriteError::NotADirectory(self.rel.parent().unwrap_or_default()));
        }
        let etag = self.fs.get(path).and_then(|e| validator(&e));
        Ok(Committed { created: current.is_none(), etag, size, created_dir })
    }
}

#[cfg(test)]
mod tests {
    use dftp::localfs::Precondition;

    use super::*;

    fn p(s: &str) -> DfsPath {
        DfsPath::parse_request(s).unwrap()
    }

    fn write(fs: &MemFs, path: &str, bytes: &[u8], opts: WriteOptions) -> Result<Committed, WriteError> {
        let mut w = fs.create_file(&p(path), opts)?;
        w.write(bytes)?;
        w.commit()
    }

    fn read(fs: &MemFs, path: &str) -> Vec<u8> {
        let opened = futures_util::FutureExt::now_or_never(fs.open(path, 0)).unwrap().unwrap();
        match opened.contents {
            Contents::Bytes(b) => b.to_vec(),
            Contents::Disk(_) => unreachable!("in memory"),
        }
    }

    fn with(mode: WriteMode, precondition: Precondition) -> WriteOptions {
        WriteOptions { mode, precondition, create_parents: true }
    }

    #[test]
    fn writes_keep_their_bytes_and_tell_the_watcher() {
        let fs = MemFs::new();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let _guard = fs.watch(tx).unwrap();
        let c = write(&fs, "a/b/f", b"hello", WriteOptions::replace()).unwrap();
        assert!(c.created);
        assert_eq!(c.created_dir, Some(p("a")));
        assert_eq!(c.etag, validator(&fs.get("a/b/f").unwrap()));
        assert_eq!(read(&fs, "a/b/f"), b"hello");
        assert_eq!(rx.try_recv().unwrap(), WatchMsg::Changed(p("a")), "the outermost entry created");
        write(&fs, "a/b/f", b" world", with(WriteMode::Append, Precondition::None)).unwrap();
        assert_eq!(read(&fs, "a/b/f"), b"hello world");
        write(&fs, "a/b/f", b"J", with(WriteMode::At(6), Precondition::None)).unwrap();
        assert_eq!(read(&fs, "a/b/f"), b"hello Jorld");
        assert_eq!(fs.get("a/b/f").unwrap().size, 11);
        // A file the scenario writes has made-up bytes of its size.
        fs.write("a/b/f", 3, 1);
        assert_eq!(read(&fs, "a/b/f"), b"abc");
    }

    #[test]
    fn writes_refuse_what_the_disk_refuses() {
        let fs = MemFs::new();
        fs.write("d/f", 3, 1);
        let refused = |path: &str, opts: WriteOptions| write(&fs, path, b"x", opts).err().unwrap();
        assert!(matches!(refused("d", WriteOptions::replace()), WriteError::IsADirectory(_)));
        assert!(matches!(refused("d/f/x", WriteOptions::replace()), WriteError::NotADirectory(_)));
        let no_parents = WriteOptions { create_parents: false, ..WriteOptions::replace() };
        assert!(matches!(refused("e/x", no_parents), WriteError::ParentMissing(_)));
        assert!(matches!(
            refused("d/f", with(WriteMode::Replace, Precondition::Absent)),
            WriteError::PreconditionFailed { .. }
        ));
        assert!(matches!(
            refused("d/f", with(WriteMode::At(4), Precondition::None)),
            WriteError::BadOffset { size: 3, .. }
        ));
        assert!(matches!(refused("d/.dftp-part-1", WriteOptions::replace()), WriteError::BadName { .. }));
        // An append that someone overtook.
        let mut w = fs.create_file(&p("d/f"), with(WriteMode::Append, Precondition::None)).unwrap();
        w.write(b"more").unwrap();
        fs.write("d/f", 5, 2);
        assert!(matches!(w.commit(), Err(WriteError::PreconditionFailed { .. })));
        assert_eq!(fs.get("d/f").unwrap().size, 5);
    }

    #[test]
    fn removals_directories_moves_and_copies() {
        let fs = MemFs::new();
        fs.write("d/sub/f", 3, 1);
        write(&fs, "d/g", b"gg", WriteOptions::replace()).unwrap();
        assert!(matches!(fs.remove_file(&p("d")), Err(WriteError::IsADirectory(_))));
        assert!(matches!(fs.remove_dir(&p("d"), false), Err(WriteError::NotEmpty(_))));
        assert!(matches!(fs.make_dir(&p("x/y")), Err(WriteError::ParentMissing(_))));
        assert!(matches!(fs.make_dir(&p("d")), Err(WriteError::Exists(_))));
        fs.make_dir(&p("e")).unwrap();
        assert!(!fs.copy(&p("d"), &p("e/copy"), false).unwrap());
        assert_eq!(read(&fs, "e/copy/g"), b"gg");
        assert_eq!(fs.get("e/copy/sub/f").unwrap().size, 3);
        assert!(matches!(LocalFs::rename(&fs, &p("d/g"), &p("e/copy/g"), false), Err(WriteError::Exists(_))));
        assert!(LocalFs::rename(&fs, &p("d/g"), &p("e/copy/g"), true).unwrap());
        assert_eq!(read(&fs, "e/copy/g"), b"gg");
        assert!(matches!(LocalFs::rename(&fs, &p("d"), &p("d/in"), true), Err(WriteError::BadName { .. })));
        fs.remove_file(&p("e/copy/g")).unwrap();
        fs.remove_dir(&p("d"), true).unwrap();
        let left: Vec<String> = fs.entries().into_keys().collect();
        assert_eq!(left, ["e", "e/copy", "e/copy/sub", "e/copy/sub/f"]);
        fs.remove_dir(&p(""), true).unwrap();
        assert!(fs.is_empty());
    }
}
