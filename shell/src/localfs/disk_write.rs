//! Writes to the real disk under `--dfsroot`, kept inside it by the kernel.
//!
//! Every write starts from the served root's descriptor: the directory it changes is opened
//! with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` (or one `openat(O_NOFOLLOW)` per
//! segment on kernels without it), and the change itself is made relative to that descriptor
//! (`openat`, `mkdirat`, `renameat`, `unlinkat`), so a symbolic link swapped in anywhere on the
//! way makes the write fail instead of reaching outside. Nothing here creates a symbolic link.
//!
//! A file's new content goes to a temporary file in the target's directory ([`TEMP_PREFIX`]),
//! is fsynced, checked against the precondition and renamed into place, and the directory is
//! fsynced: a reader sees the old content or the new, never a mix, and a crash leaves the old
//! file and at worst a temporary file, which the next start removes. An append (or a write at
//! an offset) copies the current content into the temporary file first (`copy_file_range`, in
//! the kernel; a reflink on file systems that share extents): slower than appending in place
//! for a large file, but an interrupted or refused append then changes nothing, which a resumed
//! upload relies on.

use std::ffi::CStr;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dftp_core::DfsPath;
use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, RenameFlags, ResolveFlags, Stat};
use rustix::io::Errno;

use super::write::{
    check_name, etag, is_temp_name, Committed, FileWriter, Precondition, WriteError, WriteMode, WriteOptions,
    TEMP_PREFIX,
};
use super::HAVE_OPENAT2;

const DIR: OFlags = OFlags::RDONLY.union(OFlags::DIRECTORY).union(OFlags::CLOEXEC).union(OFlags::NOFOLLOW);
/// Permissions of what is created, before the umask: what `touch` and `mkdir` give.
const NEW_FILE: Mode = Mode::from_raw_mode(0o666);
const NEW_DIR: Mode = Mode::from_raw_mode(0o777);

fn io_err(e: Errno) -> io::Error {
    e.into()
}

/// The error of a failed system call on `path`.
fn err(path: &DfsPath, e: Errno) -> WriteError {
    WriteError::from_io(path, io_err(e))
}

// ---- finding the way, beneath the root ---------------------------------------------------

/// Opens directory `rel` (the root itself when it is the root), refusing any path that leaves
/// the root or goes through a symbolic link.
fn open_dir(root: BorrowedFd<'_>, rel: &DfsPath) -> Result<OwnedFd, Errno> {
    if rel.is_root() {
        return rustix::fs::openat(root, c".", DIR, Mode::empty());
    }
    if HAVE_OPENAT2.load(Ordering::Relaxed) {
        // `RESOLVE_NO_SYMLINKS` refuses a link anywhere, the last segment included, with
        // `ELOOP` (`O_NOFOLLOW` would turn that into `ENOTDIR` there).
        let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        match rustix::fs::openat2(root, rel.as_str(), DIR.difference(OFlags::NOFOLLOW), Mode::empty(), resolve) {
            Err(Errno::NOSYS) => HAVE_OPENAT2.store(false, Ordering::Relaxed),
            other => return other,
        }
    }
    // One segment at a time, none a link (`..` never gets this far).
    let mut dir = rustix::fs::openat(root, c".", DIR, Mode::empty())?;
    for seg in rel.as_str().split('/') {
        dir = open_sub(&dir, seg)?;
    }
    Ok(dir)
}

/// Opens the directory `name` in `dir`; a symbolic link there is `ELOOP`.
fn open_sub<P: rustix::path::Arg + Copy>(dir: &OwnedFd, name: P) -> Result<OwnedFd, Errno> {
    match rustix::fs::openat(dir, name, DIR, Mode::empty()) {
        // `O_NOFOLLOW` with `O_DIRECTORY` says a link is no directory.
        Err(Errno::NOTDIR) => match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => Err(Errno::LOOP),
            _ => Err(Errno::NOTDIR),
        },
        other => other,
    }
}

/// A directory this write created, to remove again if the write does not go through.
struct CreatedDir {
    /// The directory it was created in.
    parent: OwnedFd,
    name: String,
    rel: DfsPath,
}

/// Opens the directory `rel` lies in. With `create`, missing directories are created (and
/// returned, outermost first); else a missing one is [`WriteError::ParentMissing`].
fn open_parent(root: BorrowedFd<'_>, rel: &DfsPath, create: bool) -> Result<(OwnedFd, Vec<CreatedDir>), WriteError> {
    let parent = rel.parent().unwrap_or_default();
    match open_dir(root, &parent) {
        Ok(fd) => return Ok((fd, Vec::new())),
        Err(Errno::NOENT) if create => {}
        Err(Errno::NOENT) => return Err(WriteError::ParentMissing(parent)),
        Err(Errno::NOTDIR) => return Err(WriteError::NotADirectory(parent)),
        Err(e) => return Err(err(&parent, e)),
    }
    let mut created = Vec::new();
    let mut dir = open_dir(root, &DfsPath::root()).map_err(|e| err(&parent, e))?;
    let mut at = DfsPath::root();
    for seg in parent.as_str().split('/') {
        at = at.join(seg).map_err(|_| WriteError::BadName { path: rel.clone(), why: "a bad name" })?;
        let next = match open_sub(&dir, seg) {
            Err(Errno::NOENT) => {
                match rustix::fs::mkdirat(&dir, seg, NEW_DIR) {
                    Ok(()) => {
                        let parent = rustix::io::dup(&dir).map_err(|e| err(&at, e))?;
                        created.push(CreatedDir { parent, name: seg.to_owned(), rel: at.clone() });
                    }
                    Err(Errno::EXIST) => {} // made meanwhile by someone else
                    Err(e) => {
                        remove_created(&mut created);
                        return Err(err(&at, e));
                    }
                }
                open_sub(&dir, seg)
            }
            other => other,
        };
        dir = match next {
            Ok(fd) => fd,
            Err(e) => {
                remove_created(&mut created);
                return Err(match e {
                    Errno::NOTDIR => WriteError::NotADirectory(at),
                    e => err(&at, e),
                });
            }
        };
    }
    Ok((dir, created))
}

/// Removes the directories a write created, innermost first, if they are still empty.
fn remove_created(created: &mut Vec<CreatedDir>) {
    while let Some(d) = created.pop() {
        let _ = rustix::fs::unlinkat(&d.parent, d.name.as_str(), AtFlags::REMOVEDIR);
    }
}

/// What is at `name` in `dir`, without following a symbolic link: `None` when nothing is;
/// anything but a regular file or a directory is refused.
fn stat_entry(dir: &OwnedFd, name: &str, rel: &DfsPath) -> Result<Option<Stat>, WriteError> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(err(rel, e)),
        Ok(st) => match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile | FileType::Directory => Ok(Some(st)),
            _ => Err(WriteError::Refused(rel.clone())),
        },
    }
}

fn is_dir(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::Directory
}

// The field types of `struct stat` differ between architectures.
#[allow(clippy::unnecessary_cast)]
fn stat_etag(st: &Stat) -> Option<String> {
    let (secs, nanos) = (st.st_mtime as i64, st.st_mtime_nsec as u32);
    let modified = UNIX_EPOCH + Duration::new(u64::try_from(secs).ok()?, nanos);
    etag(st.st_size as u64, modified)
}

#[allow(clippy::unnecessary_cast)]
fn stat_perm(st: &Stat) -> Mode {
    Mode::from_raw_mode((st.st_mode as u32 & 0o7777) as _)
}

/// How an existing file is opened to be read (the old content of an append, a copy's source):
/// non-blocking, so that a FIFO or device swapped in after the scan is opened at once and then
/// refused by [`regular`], instead of holding a thread until something writes to it.
const READ_EXISTING: OFlags = OFlags::RDONLY.union(OFlags::CLOEXEC).union(OFlags::NOFOLLOW).union(OFlags::NONBLOCK);

/// `file` if it is a regular file; anything else is refused.
fn regular(file: File, rel: &DfsPath) -> Result<File, WriteError> {
    match file.metadata() {
        Ok(md) if md.is_file() => Ok(file),
        Ok(_) => Err(WriteError::Refused(rel.clone())),
        Err(e) => Err(WriteError::from_io(rel, e)),
    }
}

fn file_etag(file: &File) -> io::Result<(Option<String>, u64)> {
    let md = file.metadata()?;
    Ok((etag(md.len(), md.modified().unwrap_or(SystemTime::UNIX_EPOCH)), md.len()))
}

// ---- one lock per path, for check-then-rename ----------------------------------------------

/// Striped locks: a write's precondition is checked and its rename made under the lock of its
/// path, so two requests to this node cannot both pass a check and then overwrite each other.
/// (Another process writing the same file is not held back; `If-None-Match: *` uses
/// `RENAME_NOREPLACE`, which holds against everyone.)
static LOCKS: [Mutex<()>; 64] = [const { Mutex::new(()) }; 64];

fn stripe(rel: &DfsPath) -> usize {
    let mut h = std::hash::DefaultHasher::new();
    rel.as_str().hash(&mut h);
    (h.finish() % LOCKS.len() as u64) as usize
}

fn lock_stripe(i: usize) -> MutexGuard<'static, ()> {
    LOCKS[i].lock().unwrap_or_else(|e| e.into_inner())
}

/// The locks of one or two paths, taken in a fixed order.
fn lock(paths: &[&DfsPath]) -> Vec<MutexGuard<'static, ()>> {
    let mut stripes: Vec<usize> = paths.iter().map(|p| stripe(p)).collect();
    stripes.sort_unstable();
    stripes.dedup();
    stripes.into_iter().map(lock_stripe).collect()
}

// ---- temporary files -----------------------------------------------------------------------

static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// A new temporary name (unique within this run; a clash with a leftover is retried).
fn temp_name() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{TEMP_PREFIX}{:x}-{:x}-{nanos:x}", std::process::id(), TEMP_SEQ.fetch_add(1, Ordering::Relaxed))
}

/// Creates a temporary file in `dir`.
fn create_temp(dir: &OwnedFd, rel: &DfsPath) -> Result<(String, File), WriteError> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    for _ in 0..16 {
        let name = temp_name();
        match rustix::fs::openat(dir, name.as_str(), flags, NEW_FILE) {
            Ok(fd) => return Ok((name, File::from(fd))),
            Err(Errno::EXIST) => continue,
            Err(e) => return Err(err(rel, e)),
        }
    }
    Err(WriteError::Io { path: rel.clone(), cause: io::Error::other("no free temporary name") })
}

/// Creates a temporary directory in `dir`.
fn create_temp_dir(dir: &OwnedFd, rel: &DfsPath) -> Result<String, WriteError> {
    for _ in 0..16 {
        let name = temp_name();
        match rustix::fs::mkdirat(dir, name.as_str(), NEW_DIR) {
            Ok(()) => return Ok(name),
            Err(Errno::EXIST) => continue,
            Err(e) => return Err(err(rel, e)),
        }
    }
    Err(WriteError::Io { path: rel.clone(), cause: io::Error::other("no free temporary name") })
}

/// Renames `from` in `dir` to `to` in `to_dir`. With `no_replace`, an existing `to` is
/// [`Errno::EXIST`] (atomically, where the file system has `RENAME_NOREPLACE`; otherwise the
/// caller holds the path's lock and has checked).
fn rename(dir: &OwnedFd, from: &str, to_dir: &OwnedFd, to: &str, no_replace: bool) -> Result<(), Errno> {
    if no_replace {
        match rustix::fs::renameat_with(dir, from, to_dir, to, RenameFlags::NOREPLACE) {
            Err(Errno::INVAL | Errno::NOSYS) => {
                if rustix::fs::statat(to_dir, to, AtFlags::SYMLINK_NOFOLLOW).is_ok() {
                    return Err(Errno::EXIST);
                }
            }
            other => return other,
        }
    }
    rustix::fs::renameat(dir, from, to_dir, to)
}

// ---- file writes ---------------------------------------------------------------------------

/// A file being written (see [`FileWriter`]).
struct DiskWriter {
    rel: DfsPath,
    /// The target's directory, and the target's name in it.
    dir: OwnedFd,
    name: String,
    /// The temporary file's name; taken once it has been renamed into place.
    temp: Option<String>,
    /// The temporary file, positioned where the body goes.
    file: Option<File>,
    created: Vec<CreatedDir>,
    precondition: Precondition,
    /// For an append: the validator of the content copied (`None`: there was no file), which
    /// must still be the current one at the commit.
    base: Option<Option<String>>,
}

/// Starts writing `rel` (see [`super::LocalFs::create_file`]).
pub(super) fn create_file(
    root: &OwnedFd,
    rel: &DfsPath,
    opts: WriteOptions,
) -> Result<Box<dyn FileWriter>, WriteError> {
    check_name(rel)?;
    let (dir, created) = open_parent(root.as_fd(), rel, opts.create_parents)?;
    let mut w = DiskWriter {
        rel: rel.clone(),
        dir,
        name: rel.name().to_owned(),
        temp: None,
        file: None,
        created,
        precondition: opts.precondition,
        base: None,
    };
    let current = stat_entry(&w.dir, &w.name, rel)?;
    if current.as_ref().is_some_and(is_dir) {
        return Err(WriteError::IsADirectory(rel.clone()));
    }
    // Checked now too, so that a refused write does not upload its whole body first.
    if !w.precondition.holds(current.as_ref().and_then(stat_etag).as_deref()) {
        return Err(WriteError::PreconditionFailed { path: rel.clone(), why: "the current file does not match" });
    }
    let (temp_name, mut file) = create_temp(&w.dir, rel)?;
    // From here on, dropping `w` removes the temporary file.
    w.temp = Some(temp_name);
    if let Some(st) = &current {
        // The new content keeps the old one's permissions.
        let _ = rustix::fs::fchmod(&file, stat_perm(st));
    }
    let offset = match opts.mode {
        WriteMode::Replace => {
            w.file = Some(file);
            return Ok(Box::new(w));
        }
        WriteMode::Append => None,
        WriteMode::At(n) => Some(n),
    };
    let (base, size) = match rustix::fs::openat(&w.dir, w.name.as_str(), READ_EXISTING, Mode::empty()) {
        Err(Errno::NOENT) => (None, 0),
        Err(e) => return Err(err(rel, e)),
        Ok(fd) => {
            let mut old = regular(File::from(fd), rel)?;
            let (tag, size) = file_etag(&old).map_err(|e| WriteError::from_io(rel, e))?;
            if offset.is_none_or(|n| n <= size) {
                io::copy(&mut old, &mut file).map_err(|e| WriteError::from_io(rel, e))?;
            }
            (tag, size)
        }
    };
    let start = offset.unwrap_or(size);
    if start > size {
        return Err(WriteError::BadOffset { path: rel.clone(), size });
    }
    file.seek(SeekFrom::Start(start)).map_err(|e| WriteError::from_io(rel, e))?;
    w.base = Some(base);
    // What was copied must still be what is there: an append to a file someone replaced
    // meanwhile would lose their write.
    if base_changed(&w, current.as_ref()) {
        return Err(WriteError::PreconditionFailed { path: rel.clone(), why: "the file changed while it was read" });
    }
    w.file = Some(file);
    Ok(Box::new(w))
}

/// Whether the content an append copied is no longer the file's (as `current` shows it).
fn base_changed(w: &DiskWriter, current: Option<&Stat>) -> bool {
    match &w.base {
        None => false,
        Some(base) => base.as_deref() != current.and_then(stat_etag).as_deref(),
    }
}

impl FileWriter for DiskWriter {
    fn write(&mut self, chunk: &[u8]) -> Result<(), WriteError> {
        let Some(file) = &mut self.file else {
            return Err(WriteError::Io { path: self.rel.clone(), cause: io::Error::other("already committed") });
        };
        file.write_all(chunk).map_err(|e| WriteError::from_io(&self.rel, e))
    }

    fn commit(mut self: Box<Self>) -> Result<Committed, WriteError> {
        let rel = self.rel.clone();
        let (Some(temp), Some(file)) = (self.temp.clone(), &self.file) else {
            return Err(WriteError::Io { path: rel, cause: io::Error::other("already committed") });
        };
        file.sync_all().map_err(|e| WriteError::from_io(&rel, e))?;
        let (tag, size) = file_etag(file).map_err(|e| WriteError::from_io(&rel, e))?;
        let created = {
            let _locked = lock(&[&rel]);
            let current = stat_entry(&self.dir, &self.name, &rel)?;
            if current.as_ref().is_some_and(is_dir) {
                return Err(WriteError::IsADirectory(rel));
            }
            if base_changed(&self, current.as_ref()) {
                return Err(WriteError::PreconditionFailed { path: rel, why: "the file changed during the append" });
            }
            if !self.precondition.holds(current.as_ref().and_then(stat_etag).as_deref()) {
                return Err(WriteError::PreconditionFailed { path: rel, why: "the current file does not match" });
            }
            let no_replace = self.precondition == Precondition::Absent || current.is_none();
            match rename(&self.dir, &temp, &self.dir, &self.name, no_replace) {
                Ok(()) => {}
                // Created meanwhile by another process, where nothing was.
                Err(Errno::EXIST) if self.precondition == Precondition::Absent => {
                    return Err(WriteError::PreconditionFailed { path: rel, why: "the file was created meanwhile" })
                }
                Err(Errno::EXIST) => {
                    rename(&self.dir, &temp, &self.dir, &self.name, false).map_err(|e| err(&rel, e))?
                }
                Err(e) => return Err(err(&rel, e)),
            }
            current.is_none()
        };
        // In place now: nothing to undo any more.
        self.temp = None;
        let created_dirs = std::mem::take(&mut self.created);
        let created_dir = created_dirs.first().map(|d| d.rel.clone());
        rustix::fs::fsync(&self.dir).map_err(|e| err(&rel, e))?;
        for d in &created_dirs {
            rustix::fs::fsync(&d.parent).map_err(|e| err(&d.rel, e))?;
        }
        Ok(Committed { created, etag: tag, size, created_dir })
    }
}

impl Drop for DiskWriter {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            let _ = rustix::fs::unlinkat(&self.dir, temp.as_str(), AtFlags::empty());
        }
        remove_created(&mut self.created);
    }
}

// ---- removing ------------------------------------------------------------------------------

/// Opens the directory that holds `rel`, which must exist: a missing directory (or a file in
/// its place) means `rel` is not there.
fn open_existing_parent(root: &OwnedFd, rel: &DfsPath) -> Result<OwnedFd, WriteError> {
    let parent = rel.parent().unwrap_or_default();
    open_dir(root.as_fd(), &parent).map_err(|e| match e {
        Errno::NOENT | Errno::NOTDIR => WriteError::NotFound(rel.clone()),
        e => err(rel, e),
    })
}

/// Removes the file `rel`.
pub(super) fn remove_file(root: &OwnedFd, rel: &DfsPath) -> Result<(), WriteError> {
    check_name(rel)?;
    let dir = open_existing_parent(root, rel)?;
    let name = rel.name();
    let _locked = lock(&[rel]);
    match stat_entry(&dir, name, rel)? {
        None => return Err(WriteError::NotFound(rel.clone())),
        Some(st) if is_dir(&st) => return Err(WriteError::IsADirectory(rel.clone())),
        Some(_) => {}
    }
    rustix::fs::unlinkat(&dir, name, AtFlags::empty()).map_err(|e| err(rel, e))?;
    rustix::fs::fsync(&dir).map_err(|e| err(rel, e))
}

/// Removes the directory `rel`: only when empty, or with everything in it (`recursive`). The
/// root is emptied, not removed.
pub(super) fn remove_dir(root: &OwnedFd, rel: &DfsPath, recursive: bool) -> Result<(), WriteError> {
    if rel.is_root() {
        if !recursive {
            return Err(WriteError::BadName { path: rel.clone(), why: "the served root cannot be removed" });
        }
        let dir = open_dir(root.as_fd(), rel).map_err(|e| err(rel, e))?;
        let mut left = Leftover::default();
        empty_dir(&dir, rel, &mut left);
        let _ = rustix::fs::fsync(&dir);
        return left.into_result(rel);
    }
    check_name(rel)?;
    let parent = open_existing_parent(root, rel)?;
    let name = rel.name();
    match stat_entry(&parent, name, rel)? {
        None => return Err(WriteError::NotFound(rel.clone())),
        Some(st) if !is_dir(&st) => return Err(WriteError::NotADirectory(rel.clone())),
        Some(_) => {}
    }
    let mut left = Leftover::default();
    if recursive {
        match rustix::fs::openat(&parent, name, DIR, Mode::empty()) {
            Ok(dir) => empty_dir(&dir, rel, &mut left),
            Err(e) => left.note(rel, io_err(e)),
        }
    }
    match rustix::fs::unlinkat(&parent, name, AtFlags::REMOVEDIR) {
        Ok(()) => {}
        Err(Errno::NOTEMPTY | Errno::EXIST) if !recursive => return Err(WriteError::NotEmpty(rel.clone())),
        Err(e) if left.count == 0 => return Err(err(rel, e)),
        Err(_) => {} // counted through what is left inside
    }
    rustix::fs::fsync(&parent).map_err(|e| err(rel, e))?;
    left.into_result(rel)
}

/// What a recursive delete could not remove.
#[derive(Default)]
struct Leftover {
    count: u64,
    first: Option<(DfsPath, io::Error)>,
}

impl Leftover {
    fn note(&mut self, at: &DfsPath, e: io::Error) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some((at.clone(), e));
        }
    }

    fn into_result(self, rel: &DfsPath) -> Result<(), WriteError> {
        match self.first {
            None => Ok(()),
            Some((first, cause)) => Err(WriteError::Incomplete { path: rel.clone(), left: self.count, first, cause }),
        }
    }
}

/// The entries of `dir`, without `.` and `..`.
fn entries(dir: &OwnedFd) -> io::Result<Vec<(std::ffi::CString, FileType)>> {
    let mut out = Vec::new();
    for entry in Dir::read_from(dir).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        out.push((name.to_owned(), entry.file_type()));
    }
    Ok(out)
}

/// The type of `name` in `dir` when the directory entry did not say (some file systems).
fn type_of(dir: &OwnedFd, name: &CStr, said: FileType) -> FileType {
    if said != FileType::Unknown {
        return said;
    }
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .map_or(FileType::Unknown, |st| FileType::from_raw_mode(st.st_mode))
}

/// `rel` joined with a name as the disk has it, for messages (a name that is no path segment
/// of ours is shown as its directory).
fn child(rel: &DfsPath, name: &CStr) -> DfsPath {
    name.to_str().ok().and_then(|n| rel.join(n).ok()).unwrap_or_else(|| rel.clone())
}

/// Removes everything in `dir` (whose path is `rel`), symbolic links as links; notes what
/// could not be removed and goes on with the rest.
fn empty_dir(dir: &OwnedFd, rel: &DfsPath, left: &mut Leftover) {
    let list = match entries(dir) {
        Ok(l) => l,
        Err(e) => return left.note(rel, e),
    };
    for (name, said) in list {
        let at = child(rel, &name);
        if type_of(dir, &name, said) == FileType::Directory {
            match rustix::fs::openat(dir, name.as_c_str(), DIR, Mode::empty()) {
                Ok(sub) => empty_dir(&sub, &at, left),
                Err(e) => {
                    left.note(&at, io_err(e));
                    continue;
                }
            }
            if let Err(e) = rustix::fs::unlinkat(dir, name.as_c_str(), AtFlags::REMOVEDIR) {
                left.note(&at, io_err(e));
            }
        } else if let Err(e) = rustix::fs::unlinkat(dir, name.as_c_str(), AtFlags::empty()) {
            left.note(&at, io_err(e));
        }
    }
}

// ---- directories, moves and copies -----------------------------------------------------------

/// Makes the directory `rel`, whose parent must exist.
pub(super) fn make_dir(root: &OwnedFd, rel: &DfsPath) -> Result<(), WriteError> {
    if rel.is_root() {
        return Err(WriteError::Exists(rel.clone()));
    }
    check_name(rel)?;
    let (dir, _) = open_parent(root.as_fd(), rel, false)?;
    match rustix::fs::mkdirat(&dir, rel.name(), NEW_DIR) {
        Ok(()) => {}
        Err(Errno::EXIST) => return Err(WriteError::Exists(rel.clone())),
        Err(e) => return Err(err(rel, e)),
    }
    rustix::fs::fsync(&dir).map_err(|e| err(rel, e))
}

/// The two ends of a move or a copy, checked and opened.
struct Ends {
    from_dir: OwnedFd,
    from: Stat,
    to_dir: OwnedFd,
}

fn ends(root: &OwnedFd, from: &DfsPath, to: &DfsPath) -> Result<Ends, WriteError> {
    check_name(from)?;
    check_name(to)?;
    if to.is_within(from) || from.is_within(to) {
        let why = if to == from {
            "the source and the destination are the same"
        } else if to.is_within(from) {
            "a directory cannot go into itself"
        } else {
            "a path cannot replace a directory that holds it"
        };
        return Err(WriteError::BadName { path: to.clone(), why });
    }
    let from_dir = open_existing_parent(root, from)?;
    let Some(st) = stat_entry(&from_dir, from.name(), from)? else {
        return Err(WriteError::NotFound(from.clone()));
    };
    let (to_dir, _) = open_parent(root.as_fd(), to, false)?;
    Ok(Ends { from_dir, from: st, to_dir })
}

/// Makes room at `to` for an entry of another kind, or for a directory (a rename replaces a
/// file with a file, or an empty directory with a directory, by itself). Returns whether
/// something was there.
fn clear_destination(e: &Ends, to: &DfsPath, overwrite: bool) -> Result<bool, WriteError> {
    let Some(there) = stat_entry(&e.to_dir, to.name(), to)? else { return Ok(false) };
    if !overwrite {
        return Err(WriteError::Exists(to.clone()));
    }
    if is_dir(&there) {
        let mut left = Leftover::default();
        if let Ok(dir) = rustix::fs::openat(&e.to_dir, to.name(), DIR, Mode::empty()) {
            empty_dir(&dir, to, &mut left);
        }
        left.into_result(to)?;
        match rustix::fs::unlinkat(&e.to_dir, to.name(), AtFlags::REMOVEDIR) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return Err(err(to, e)),
        }
    } else if is_dir(&e.from) {
        match rustix::fs::unlinkat(&e.to_dir, to.name(), AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return Err(err(to, e)),
        }
    }
    Ok(true)
}

/// Moves `from` to `to` on this disk (a rename: atomic for a file, and for a directory onto
/// nothing). `to`'s parent must exist. Returns whether something was replaced.
pub(super) fn rename_entry(root: &OwnedFd, from: &DfsPath, to: &DfsPath, overwrite: bool) -> Result<bool, WriteError> {
    let e = ends(root, from, to)?;
    let replaced = {
        let _locked = lock(&[from, to]);
        let replaced = clear_destination(&e, to, overwrite)?;
        match rename(&e.from_dir, from.name(), &e.to_dir, to.name(), !overwrite) {
            Ok(()) => {}
            Err(Errno::EXIST | Errno::NOTEMPTY) => return Err(WriteError::Exists(to.clone())),
            Err(Errno::NOENT) => return Err(WriteError::NotFound(from.clone())),
            Err(err_) => return Err(err(to, err_)),
        }
        replaced
    };
    rustix::fs::fsync(&e.to_dir).map_err(|e| err(to, e))?;
    rustix::fs::fsync(&e.from_dir).map_err(|e| err(from, e))?;
    Ok(replaced)
}

/// Copies `from` (a file, or a directory with everything in it but symbolic links and special
/// files) to `to`, whose parent must exist. The copy is made under a temporary name beside
/// `to` and renamed into place, so it appears whole or not at all. Returns whether something
/// was replaced.
pub(super) fn copy_entry(root: &OwnedFd, from: &DfsPath, to: &DfsPath, overwrite: bool) -> Result<bool, WriteError> {
    let e = ends(root, from, to)?;
    let temp = if is_dir(&e.from) {
        let name = create_temp_dir(&e.to_dir, to)?;
        let guard = TempTree { dir: &e.to_dir, name: Some(name.clone()) };
        let copy = (|| -> Result<(), WriteError> {
            let src = rustix::fs::openat(&e.from_dir, from.name(), DIR, Mode::empty()).map_err(|x| err(from, x))?;
            let dst = rustix::fs::openat(&e.to_dir, name.as_str(), DIR, Mode::empty()).map_err(|x| err(to, x))?;
            let _ = rustix::fs::fchmod(&dst, stat_perm(&e.from));
            copy_tree(&src, &dst, to)
        })();
        copy?;
        guard
    } else {
        let (name, mut file) = create_temp(&e.to_dir, to)?;
        let guard = TempTree { dir: &e.to_dir, name: Some(name) };
        copy_into(&e.from_dir, from.name(), &mut file, from, to)?;
        guard
    };
    let replaced = {
        let _locked = lock(&[to]);
        let replaced = clear_destination(&e, to, overwrite)?;
        let name = temp.name.clone().unwrap_or_default();
        match rename(&e.to_dir, &name, &e.to_dir, to.name(), !overwrite) {
            Ok(()) => {}
            Err(Errno::EXIST | Errno::NOTEMPTY) => return Err(WriteError::Exists(to.clone())),
            Err(x) => return Err(err(to, x)),
        }
        replaced
    };
    temp.keep();
    rustix::fs::fsync(&e.to_dir).map_err(|x| err(to, x))?;
    Ok(replaced)
}

/// A temporary file or directory, removed (with what is in it) unless kept.
struct TempTree<'a> {
    dir: &'a OwnedFd,
    name: Option<String>,
}

impl TempTree<'_> {
    fn keep(mut self) {
        self.name = None;
    }
}

impl Drop for TempTree<'_> {
    fn drop(&mut self) {
        let Some(name) = self.name.take() else { return };
        if let Ok(sub) = rustix::fs::openat(self.dir, name.as_str(), DIR, Mode::empty()) {
            empty_dir(&sub, &DfsPath::root(), &mut Leftover::default());
            let _ = rustix::fs::unlinkat(self.dir, name.as_str(), AtFlags::REMOVEDIR);
        } else {
            let _ = rustix::fs::unlinkat(self.dir, name.as_str(), AtFlags::empty());
        }
    }
}

/// Copies the regular file `name` of `dir` into `out` (with its permissions), and makes the
/// copy durable.
fn copy_into(
    dir: &OwnedFd,
    name: impl rustix::path::Arg,
    out: &mut File,
    from: &DfsPath,
    to: &DfsPath,
) -> Result<(), WriteError> {
    let src = File::from(rustix::fs::openat(dir, name, READ_EXISTING, Mode::empty()).map_err(|e| err(from, e))?);
    let mut src = regular(src, from)?;
    let st = rustix::fs::fstat(&src).map_err(|e| err(from, e))?;
    io::copy(&mut src, out).map_err(|e| WriteError::from_io(to, e))?;
    let _ = rustix::fs::fchmod(&*out, stat_perm(&st));
    out.sync_all().map_err(|e| WriteError::from_io(to, e))
}

/// Copies what `src` holds into the empty directory `dst`: files and directories; symbolic
/// links, special files and temporary files are left out.
fn copy_tree(src: &OwnedFd, dst: &OwnedFd, rel: &DfsPath) -> Result<(), WriteError> {
    for (name, said) in entries(src).map_err(|e| WriteError::from_io(rel, e))? {
        if is_temp_name(name.as_bytes()) {
            continue;
        }
        let at = child(rel, &name);
        match type_of(src, &name, said) {
            FileType::Directory => {
                rustix::fs::mkdirat(dst, name.as_c_str(), NEW_DIR).map_err(|e| err(&at, e))?;
                let s = rustix::fs::openat(src, name.as_c_str(), DIR, Mode::empty()).map_err(|e| err(&at, e))?;
                let d = rustix::fs::openat(dst, name.as_c_str(), DIR, Mode::empty()).map_err(|e| err(&at, e))?;
                if let Ok(st) = rustix::fs::fstat(&s) {
                    let _ = rustix::fs::fchmod(&d, stat_perm(&st));
                }
                copy_tree(&s, &d, &at)?;
            }
            FileType::RegularFile => {
                let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC | OFlags::NOFOLLOW;
                let fd = rustix::fs::openat(dst, name.as_c_str(), flags, NEW_FILE).map_err(|e| err(&at, e))?;
                copy_into(src, name.as_c_str(), &mut File::from(fd), &at, &at)?;
            }
            _ => {}
        }
    }
    rustix::fs::fsync(dst).map_err(|e| err(rel, e))
}
