//! The local file system behind a small trait: the real disk in production, an in-memory tree in
//! the simulator. Paths given to it are relative to `--dfsroot` and already validated
//! ([`DfsPath`]); the disk implementation still refuses anything that resolves outside the root,
//! so a symlink swapped in after the scan serves nothing from elsewhere.
//!
//! Reads (scan, watch, open) are here; what writes are asked to do is in [`write`], and how the
//! disk does them in `disk_write`.

mod disk_write;
#[cfg(test)]
mod special_files_tests;
#[cfg(test)]
mod watch_tests;
pub mod write;
#[cfg(test)]
mod write_tests;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use dftp_core::{DfsPath, FileMode, Meta};
use futures_util::future::BoxFuture;

pub use write::{
    check_name, etag, is_temp_name, Committed, FileWriter, Precondition, WriteError, WriteMode, WriteOptions,
    TEMP_PREFIX,
};

/// What a scan found.
#[derive(Debug, Default)]
pub struct ScanReport {
    /// Paths relative to the root, with their records.
    pub entries: Vec<(DfsPath, Meta)>,
    pub files: usize,
    pub skipped_symlinks: usize,
    pub skipped_non_utf8: usize,
    /// UTF-8 names that are no path of the tree (a control character, a backslash).
    pub skipped_bad_names: usize,
    /// Temporary files of writes that a crash left behind, removed by
    /// [`LocalFs::scan_at_start`].
    pub leftovers_removed: usize,
    pub errors: usize,
}

/// Metadata of an opened regular file.
#[derive(Clone, Copy, Debug)]
pub struct FileMeta {
    pub len: u64,
    pub modified: SystemTime,
}

/// The bytes of an opened regular file.
pub enum Contents {
    /// Read whole when opened (small files, and the simulator's files): serving them needs no
    /// further trip to the disk or the blocking pool.
    Bytes(Bytes),
    /// A file on disk: sent with `sendfile` to a real socket, else read with positioned reads
    /// straight into the buffers that go out ([`crate::diskread`]).
    Disk(Arc<std::fs::File>),
}

/// A regular file, opened: its bytes and what they were when it was opened.
pub struct Opened {
    pub contents: Contents,
    pub meta: FileMeta,
}

/// What the watcher reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchMsg {
    /// Something at this local path (relative to the root) changed: rescan it.
    Changed(DfsPath),
    /// Events were lost (queue overflow) or the root itself changed: rescan everything.
    RescanAll,
    /// Watching failed for good (e.g. the inotify watch limit): fall back to periodic rescans.
    Failed(String),
}

/// What [`LocalFs::check_root`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCheck {
    /// The directory opened is still at the root's path.
    Same,
    /// Another directory is there now, and is served from now on (what happened, for the log).
    Replaced(String),
    /// Nothing usable is at the root's path (why, for the log).
    Gone(String),
}

pub trait LocalFs: Send + Sync + 'static {
    /// Walks the whole tree (blocking; run it off the async threads).
    fn scan(&self) -> io::Result<ScanReport>;
    /// Walks one path and everything below it (blocking). A missing path gives no entries.
    fn scan_below(&self, rel: &DfsPath) -> io::Result<Vec<(DfsPath, Meta)>>;
    /// The record of one path as a scan would give it (blocking); `None` when it is missing or
    /// not something a scan lists.
    fn entry(&self, rel: &DfsPath) -> io::Result<Option<Meta>> {
        Ok(self.scan_below(rel)?.into_iter().find(|(p, _)| p == rel).map(|(_, m)| m))
    }
    /// Whether the directory at the root's path is still the one opened at start (blocking: a
    /// stat or two). When another is there now (the root removed and made again, or moved
    /// away and replaced), files are opened in that one from now on.
    fn check_root(&self) -> RootCheck {
        RootCheck::Same
    }
    /// Starts reporting changes to `tx`; watching lasts as long as the returned guard.
    fn watch(&self, tx: tokio::sync::mpsc::UnboundedSender<WatchMsg>) -> io::Result<Box<dyn std::any::Any + Send>>;
    /// Opens a regular file for reading. `expected_len` is its size as the tree last saw it: a
    /// file expected to be small is opened and read on the calling thread (from the page cache
    /// that takes a few microseconds, far less than a trip to the blocking pool and back, which
    /// is what nginx does too); a larger one is opened on the blocking pool.
    fn open(&self, rel: &str, expected_len: u64) -> BoxFuture<'static, io::Result<Opened>>;

    /// The scan at start ([`LocalFs::scan`]), which also removes the temporary files of writes
    /// that a crash interrupted: at start no write is under way, so any there is a leftover.
    fn scan_at_start(&self) -> io::Result<ScanReport> {
        self.scan()
    }

    // ---- writes (blocking; run them off the async threads) ----------------------------------
    //
    // A file system that does not override them is read-only. Names of temporary files
    // ([`TEMP_PREFIX`]) are refused, and so is anything outside the served root.

    /// Starts writing the file `rel`: the body goes to a temporary file that takes the file's
    /// place at [`FileWriter::commit`], so readers never see half of it.
    fn create_file(&self, rel: &DfsPath, opts: WriteOptions) -> Result<Box<dyn FileWriter>, WriteError> {
        let _ = (rel, opts);
        Err(WriteError::ReadOnly)
    }

    /// Removes the file `rel` (not a directory).
    fn remove_file(&self, rel: &DfsPath) -> Result<(), WriteError> {
        let _ = rel;
        Err(WriteError::ReadOnly)
    }

    /// Removes the directory `rel`: when `recursive`, with everything in it (the root is emptied
    /// instead), else only when it is empty.
    fn remove_dir(&self, rel: &DfsPath, recursive: bool) -> Result<(), WriteError> {
        let _ = (rel, recursive);
        Err(WriteError::ReadOnly)
    }

    /// Makes the directory `rel`; its parent must exist.
    fn make_dir(&self, rel: &DfsPath) -> Result<(), WriteError> {
        let _ = rel;
        Err(WriteError::ReadOnly)
    }

    /// Moves `from` (a file or a directory) to `to`, whose parent must exist; what is at `to` is
    /// replaced only with `overwrite`. Returns whether something was replaced.
    fn rename(&self, from: &DfsPath, to: &DfsPath, overwrite: bool) -> Result<bool, WriteError> {
        let _ = (from, to, overwrite);
        Err(WriteError::ReadOnly)
    }

    /// Copies `from` (a file, or a directory with what is in it) to `to`, whose parent must
    /// exist; the copy appears whole or not at all. What is at `to` is replaced only with
    /// `overwrite`. Returns whether something was replaced.
    fn copy(&self, from: &DfsPath, to: &DfsPath, overwrite: bool) -> Result<bool, WriteError> {
        let _ = (from, to, overwrite);
        Err(WriteError::ReadOnly)
    }
}

/// Files up to this size are read whole when opened.
const SMALL_FILE: u64 = 64 << 10;

/// The real disk under `--dfsroot`.
pub struct StdFs {
    root: PathBuf,
    /// The root, opened at start: files are opened relative to it (so a path never resolves
    /// through a symlink swapped in above the root). Replaced only by [`LocalFs::check_root`],
    /// when another directory has taken the root's path: scans walk the path, so the two would
    /// otherwise disagree.
    root_dir: std::sync::RwLock<Arc<std::os::fd::OwnedFd>>,
}

impl StdFs {
    /// `root` must exist; it is made absolute and canonical.
    pub fn new(root: &Path) -> io::Result<StdFs> {
        let root = std::fs::canonicalize(root)
            .map_err(|e| io::Error::new(e.kind(), format!("--dfsroot {}: {e}", root.display())))?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("--dfsroot {} is not a directory", root.display()),
            ));
        }
        let root_dir = Self::open_root(&root)
            .map_err(|e| io::Error::new(e.kind(), format!("--dfsroot {}: {e}", root.display())))?;
        Ok(StdFs { root, root_dir: std::sync::RwLock::new(Arc::new(root_dir)) })
    }

    fn open_root(root: &Path) -> io::Result<std::os::fd::OwnedFd> {
        use rustix::fs::{Mode, OFlags};
        Ok(rustix::fs::open(root, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?)
    }

    /// The root directory as opened now.
    fn root_dir(&self) -> Arc<std::os::fd::OwnedFd> {
        self.root_dir.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The disk path of `rel`, refusing anything that resolves outside the root.
    fn resolve(root: &Path, rel: &str) -> io::Result<PathBuf> {
        DfsPath::parse(rel).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let real = std::fs::canonicalize(root.join(rel))?;
        if !real.starts_with(root) {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, "outside the served root"));
        }
        Ok(real)
    }
}

pub fn meta_of(md: &std::fs::Metadata) -> Meta {
    use std::os::unix::fs::MetadataExt;
    let perm = md.mode() & 0o777;
    let mode = if md.is_dir() { FileMode::dir(perm) } else { FileMode::file(perm) };
    Meta {
        mode,
        size: if md.is_dir() { 0 } else { md.len() },
        modified: md.mtime(),
        // The status-change time: stable across rescans and restarts, newer only when the file
        // really changes, which is what the conflict rule needs.
        info_updated: md.ctime(),
    }
}

impl StdFs {
    /// Walks `start` (the root, or a path below it) without following symlinks. Temporary
    /// files are skipped, or removed with `remove_leftovers` (at start).
    fn walk(&self, start: &Path, min_depth: usize, remove_leftovers: bool) -> ScanReport {
        let started = Instant::now();
        let mut report = ScanReport::default();
        let mut last_progress = Instant::now();
        let mut walker = walkdir::WalkDir::new(start).follow_links(false).min_depth(min_depth).into_iter();
        while let Some(item) = walker.next() {
            let entry = match item {
                Ok(e) => e,
                Err(e) => {
                    report.errors += 1;
                    tracing::warn!("scan: skipping an entry: {e}");
                    continue;
                }
            };
            if is_temp_name(entry.file_name().as_encoded_bytes()) {
                if entry.file_type().is_dir() {
                    walker.skip_current_dir();
                }
                if remove_leftovers {
                    let removed = if entry.file_type().is_dir() {
                        std::fs::remove_dir_all(entry.path())
                    } else {
                        std::fs::remove_file(entry.path())
                    };
                    match removed {
                        Ok(()) => report.leftovers_removed += 1,
                        Err(e) => tracing::warn!("scan: cannot remove the leftover {}: {e}", entry.path().display()),
                    }
                }
                continue;
            }
            let rel = entry.path().strip_prefix(&self.root).unwrap_or(entry.path());
            let Some(rel_str) = rel.to_str() else {
                report.skipped_non_utf8 += 1;
                tracing::warn!("scan: skipping {} (its name is not UTF-8)", entry.path().display());
                if entry.file_type().is_dir() {
                    walker.skip_current_dir();
                }
                continue;
            };
            if entry.file_type().is_symlink() {
                report.skipped_symlinks += 1;
                tracing::debug!("scan: not following symlink {rel_str}");
                continue;
            }
            let path = match DfsPath::parse(rel_str) {
                Ok(p) => p,
                Err(e) => {
                    // A name with a newline or another control character, for one: it would
                    // break every line-based listing, so it is not served (nor, for a
                    // directory, anything below it).
                    report.skipped_bad_names += 1;
                    tracing::warn!("scan: skipping {rel_str:?}: {e}");
                    if entry.file_type().is_dir() {
                        walker.skip_current_dir();
                    }
                    continue;
                }
            };
            let md = match entry.metadata() {
                Ok(m) => m,
                Err(e) => {
                    report.errors += 1;
                    tracing::warn!("scan: skipping {rel_str}: {e}");
                    continue;
                }
            };
            if !md.is_dir() && !md.is_file() {
                continue; // sockets, fifos, devices: nothing to serve
            }
            if md.is_file() {
                report.files += 1;
            }
            report.entries.push((path, meta_of(&md)));
            if last_progress.elapsed() > Duration::from_secs(5) {
                last_progress = Instant::now();
                tracing::info!("scan: {} entries so far ({:.0?})", report.entries.len(), started.elapsed());
            }
        }
        report
    }
}

impl LocalFs for StdFs {
    fn scan(&self) -> io::Result<ScanReport> {
        Ok(self.walk(&self.root, 1, false))
    }

    fn scan_at_start(&self) -> io::Result<ScanReport> {
        Ok(self.walk(&self.root, 1, true))
    }

    fn scan_below(&self, rel: &DfsPath) -> io::Result<Vec<(DfsPath, Meta)>> {
        if rel.is_root() {
            return self.scan().map(|r| r.entries);
        }
        if write::has_temp_segment(rel.as_str()) {
            return Ok(Vec::new());
        }
        let start = self.root.join(rel.as_str());
        match std::fs::symlink_metadata(&start) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
            Ok(md) if md.file_type().is_symlink() => Ok(Vec::new()),
            // Its parent may have become a symlink since: then it is not inside the root.
            Ok(_) if Self::resolve(&self.root, rel.as_str()).is_err() => Ok(Vec::new()),
            Ok(_) => Ok(self.walk(&start, 0, false).entries),
        }
    }

    fn entry(&self, rel: &DfsPath) -> io::Result<Option<Meta>> {
        if rel.is_root() || write::has_temp_segment(rel.as_str()) {
            return Ok(None);
        }
        match std::fs::symlink_metadata(self.root.join(rel.as_str())) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
            // Symlinks, sockets, fifos, devices: a scan skips them.
            Ok(md) if !md.is_dir() && !md.is_file() => Ok(None),
            // Its parent may have become a symlink since: then it is not inside the root.
            Ok(_) if Self::resolve(&self.root, rel.as_str()).is_err() => Ok(None),
            Ok(md) => Ok(Some(meta_of(&md))),
        }
    }

    fn check_root(&self) -> RootCheck {
        let root = self.root.display();
        let there = match rustix::fs::stat(&self.root) {
            Ok(st) if rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir() => st,
            Ok(_) => return RootCheck::Gone(format!("the root directory {root} is gone: a file is at its path")),
            Err(e) => return RootCheck::Gone(format!("the root directory {root} is gone ({e})")),
        };
        let held = rustix::fs::fstat(&*self.root_dir());
        if held.is_ok_and(|h| (h.st_dev, h.st_ino) == (there.st_dev, there.st_ino)) {
            return RootCheck::Same;
        }
        match Self::open_root(&self.root) {
            Ok(fd) => {
                *self.root_dir.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(fd);
                RootCheck::Replaced(format!(
                    "the root directory {root} was replaced by another directory: serving and watching that one now"
                ))
            }
            Err(e) => RootCheck::Gone(format!(
                "the root directory {root} was replaced, and the new one cannot be opened ({e})"
            )),
        }
    }

    fn watch(&self, tx: tokio::sync::mpsc::UnboundedSender<WatchMsg>) -> io::Result<Box<dyn std::any::Any + Send>> {
        use notify::{EventKind, RecursiveMode, Watcher};
        let root = self.root.clone();
        let mut skipped = SkippedNames::default();
        let handler = move |res: notify::Result<notify::Event>| match res {
            Ok(event) => {
                if matches!(event.kind, EventKind::Access(_)) {
                    return;
                }
                if event.need_rescan() {
                    let _ = tx.send(WatchMsg::RescanAll);
                    return;
                }
                for path in &event.paths {
                    let msg = match path.strip_prefix(&root) {
                        Ok(rel) if rel.as_os_str().is_empty() => WatchMsg::RescanAll,
                        // A write's temporary file: the write reports its outcome itself.
                        Ok(rel) if rel.iter().any(|seg| is_temp_name(seg.as_encoded_bytes())) => continue,
                        Ok(rel) => match rel.to_str().map(DfsPath::parse) {
                            Some(Ok(p)) => WatchMsg::Changed(p),
                            // Never listed either (the scan skips it too); said once per name.
                            Some(Err(e)) => {
                                skipped.warn(path, &e.to_string());
                                continue;
                            }
                            None => {
                                skipped.warn(path, "its name is not UTF-8");
                                continue;
                            }
                        },
                        Err(_) => continue,
                    };
                    let _ = tx.send(msg);
                }
            }
            Err(e) => {
                let msg = match e.kind {
                    notify::ErrorKind::MaxFilesWatch => "the inotify watch limit was reached".to_string(),
                    _ => e.to_string(),
                };
                let _ = tx.send(WatchMsg::Failed(msg));
            }
        };
        // Only changes: no open and close events, which our own reads of served files would
        // otherwise raise by the thousand.
        // Never through a symbolic link (notify follows them by default): the tree has none
        // (the scan skips them), and one to `/` would add watches all over the machine until
        // the user's inotify limit is used up. `watch_tests.rs` shows it.
        let config =
            notify::Config::default().with_event_kinds(notify::EventKindMask::CORE).with_follow_symlinks(false);
        let mut watcher =
            notify::RecommendedWatcher::new(handler, config).map_err(|e| io::Error::other(e.to_string()))?;
        watcher.watch(&self.root, RecursiveMode::Recursive).map_err(|e| match e.kind {
            notify::ErrorKind::MaxFilesWatch => io::Error::other("the inotify watch limit was reached"),
            _ => io::Error::other(e.to_string()),
        })?;
        Ok(Box::new(watcher))
    }

    fn open(&self, rel: &str, expected_len: u64) -> BoxFuture<'static, io::Result<Opened>> {
        if expected_len <= SMALL_FILE {
            let opened = Self::open_now(&self.root, &self.root_dir(), rel);
            return Box::pin(std::future::ready(opened));
        }
        let (root, root_dir, rel) = (self.root.clone(), self.root_dir(), rel.to_owned());
        Box::pin(async move {
            tokio::task::spawn_blocking(move || Self::open_now(&root, &root_dir, &rel))
                .await
                .map_err(io::Error::other)?
        })
    }

    fn create_file(&self, rel: &DfsPath, opts: WriteOptions) -> Result<Box<dyn FileWriter>, WriteError> {
        disk_write::create_file(&self.root_dir(), rel, opts)
    }

    fn remove_file(&self, rel: &DfsPath) -> Result<(), WriteError> {
        disk_write::remove_file(&self.root_dir(), rel)
    }

    fn remove_dir(&self, rel: &DfsPath, recursive: bool) -> Result<(), WriteError> {
        disk_write::remove_dir(&self.root_dir(), rel, recursive)
    }

    fn make_dir(&self, rel: &DfsPath) -> Result<(), WriteError> {
        disk_write::make_dir(&self.root_dir(), rel)
    }

    fn rename(&self, from: &DfsPath, to: &DfsPath, overwrite: bool) -> Result<bool, WriteError> {
        disk_write::rename_entry(&self.root_dir(), from, to, overwrite)
    }

    fn copy(&self, from: &DfsPath, to: &DfsPath, overwrite: bool) -> Result<bool, WriteError> {
        disk_write::copy_entry(&self.root_dir(), from, to, overwrite)
    }
}

/// Names the watcher saw and cannot serve. A file with such a name that is being written raises
/// an event per write: the warning is logged once per name, and the memory of names is bounded.
#[derive(Default)]
struct SkippedNames(std::collections::HashSet<PathBuf>);

impl SkippedNames {
    const REMEMBERED: usize = 1024;

    fn warn(&mut self, path: &Path, why: &str) {
        if self.0.contains(path) {
            return;
        }
        if self.0.len() >= Self::REMEMBERED {
            self.0.clear();
        }
        self.0.insert(path.to_path_buf());
        tracing::warn!("watch: skipping {path:?}: {why}");
    }
}

impl StdFs {
    /// Opens `rel` and stats it; a small file is read whole as well (blocking).
    fn open_now(root: &Path, root_dir: &std::os::fd::OwnedFd, rel: &str) -> io::Result<Opened> {
        let mut file = open_beneath(root, root_dir, rel)?;
        let md = file.metadata()?;
        if !md.is_file() {
            return Err(io::Error::new(io::ErrorKind::NotFound, "not a regular file"));
        }
        let meta = FileMeta { len: md.len(), modified: md.modified()? };
        if md.len() > SMALL_FILE {
            return Ok(Opened { contents: Contents::Disk(Arc::new(file)), meta });
        }
        // Up to the size just seen, without the extra read that looks for the end of the file
        // (a syscall per request); a file that shrank meanwhile is served as far as it went.
        let mut bytes = vec![0; md.len() as usize];
        let mut n = 0;
        while n < bytes.len() {
            match std::io::Read::read(&mut file, &mut bytes[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        bytes.truncate(n);
        let meta = FileMeta { len: n as u64, ..meta };
        Ok(Opened { contents: Contents::Bytes(Bytes::from(bytes)), meta })
    }
}

/// Whether the kernel has `openat2` (Linux 5.6 and later); cleared at the first `ENOSYS`.
static HAVE_OPENAT2: AtomicBool = AtomicBool::new(true);

/// Opens `rel` for reading, refusing any path that leaves `root` or goes through a symlink (a
/// scan never lists one, so a symlink there now was swapped in after the scan). With
/// `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` the kernel checks this during the open
/// itself, in one system call, with no window for a swap between check and open; older kernels
/// fall back to resolving the path first.
///
/// Non-blocking, so that a FIFO or device swapped in after the scan is opened at once (and then
/// refused as not a regular file) instead of waiting for a writer on an async thread. For a
/// regular file the flag changes nothing: reads of disk files never return `EAGAIN`.
fn open_beneath(root: &Path, root_dir: &std::os::fd::OwnedFd, rel: &str) -> io::Result<std::fs::File> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    DfsPath::parse(rel).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    if HAVE_OPENAT2.load(Ordering::Relaxed) {
        let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        match rustix::fs::openat2(
            root_dir,
            rel,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
            Mode::empty(),
            resolve,
        ) {
            Ok(fd) => return Ok(std::fs::File::from(fd)),
            Err(rustix::io::Errno::NOSYS) => HAVE_OPENAT2.store(false, Ordering::Relaxed),
            Err(rustix::io::Errno::LOOP | rustix::io::Errno::XDEV) => {
                return Err(io::Error::new(io::ErrorKind::PermissionDenied, "outside the served root"))
            }
            Err(e) => return Err(e.into()),
        }
    }
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(StdFs::resolve(root, rel)?)
}
