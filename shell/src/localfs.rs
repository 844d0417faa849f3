//! The local file system behind a small trait: the real disk in production, an in-memory tree in
//! the simulator. Paths given to it are relative to `--dfsroot` and already validated
//! ([`DfsPath`]); the disk implementation still refuses anything that resolves outside the root,
//! so a symlink swapped in after the scan serves nothing from elsewhere.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use dftp_core::{DfsPath, FileMode, Meta};
use futures_util::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncSeek, ReadBuf};

/// What a scan found.
#[derive(Debug, Default)]
pub struct ScanReport {
    /// Paths relative to the root, with their records.
    pub entries: Vec<(DfsPath, Meta)>,
    pub files: usize,
    pub skipped_symlinks: usize,
    pub skipped_non_utf8: usize,
    pub errors: usize,
}

/// Metadata of an opened file, as `ServeDir` needs it.
#[derive(Clone, Copy, Debug)]
pub struct FileMeta {
    pub is_dir: bool,
    pub len: u64,
    pub modified: SystemTime,
}

pub trait ReadSeek: AsyncRead + AsyncSeek + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncSeek + Unpin + Send + Sync> ReadSeek for T {}

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
    /// Starts reporting changes to `tx`; watching lasts as long as the returned guard.
    fn watch(&self, tx: tokio::sync::mpsc::UnboundedSender<WatchMsg>) -> io::Result<Box<dyn std::any::Any + Send>>;
    /// Opens a regular file for reading.
    fn open(&self, rel: &str) -> BoxFuture<'static, io::Result<(Box<dyn ReadSeek>, FileMeta)>>;
    /// Opens a regular file as a plain `std::fs::File`, for long sequential copies with blocking
    /// reads straight into the caller's buffer (tokio's async file reads into a buffer of its
    /// own and copies from there: a third more CPU per byte for FTP downloads). `None` where
    /// files are not on a disk (the simulator); callers then use [`LocalFs::open`].
    fn open_std(&self, _rel: &str) -> BoxFuture<'static, io::Result<Option<(std::fs::File, FileMeta)>>> {
        Box::pin(async { Ok(None) })
    }
    /// Stats a path.
    fn stat(&self, rel: &str) -> BoxFuture<'static, io::Result<FileMeta>>;
}

/// Files up to this size are read whole when opened.
const SMALL_FILE: u64 = 64 << 10;

/// The real disk under `--dfsroot`.
pub struct StdFs {
    root: PathBuf,
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
        Ok(StdFs { root })
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
    /// Walks `start` (the root, or a path below it) without following symlinks.
    fn walk(&self, start: &Path, min_depth: usize) -> ScanReport {
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
            let Ok(path) = DfsPath::parse(rel_str) else {
                report.errors += 1;
                tracing::warn!("scan: skipping {rel_str:?}: not a valid path in the tree");
                if entry.file_type().is_dir() {
                    walker.skip_current_dir();
                }
                continue;
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
        Ok(self.walk(&self.root, 1))
    }

    fn scan_below(&self, rel: &DfsPath) -> io::Result<Vec<(DfsPath, Meta)>> {
        if rel.is_root() {
            return self.scan().map(|r| r.entries);
        }
        let start = self.root.join(rel.as_str());
        match std::fs::symlink_metadata(&start) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
            Ok(md) if md.file_type().is_symlink() => Ok(Vec::new()),
            // Its parent may have become a symlink since: then it is not inside the root.
            Ok(_) if Self::resolve(&self.root, rel.as_str()).is_err() => Ok(Vec::new()),
            Ok(_) => Ok(self.walk(&start, 0).entries),
        }
    }

    fn entry(&self, rel: &DfsPath) -> io::Result<Option<Meta>> {
        if rel.is_root() {
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

    fn watch(&self, tx: tokio::sync::mpsc::UnboundedSender<WatchMsg>) -> io::Result<Box<dyn std::any::Any + Send>> {
        use notify::{EventKind, RecursiveMode, Watcher};
        let root = self.root.clone();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
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
                        Ok(rel) => match rel.to_str().map(DfsPath::parse) {
                            Some(Ok(p)) => WatchMsg::Changed(p),
                            _ => continue, // not UTF-8 or not a valid path: never listed either
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
        })
        .map_err(|e| io::Error::other(e.to_string()))?;
        watcher.watch(&self.root, RecursiveMode::Recursive).map_err(|e| match e.kind {
            notify::ErrorKind::MaxFilesWatch => io::Error::other("the inotify watch limit was reached"),
            _ => io::Error::other(e.to_string()),
        })?;
        Ok(Box::new(watcher))
    }

    fn open(&self, rel: &str) -> BoxFuture<'static, io::Result<(Box<dyn ReadSeek>, FileMeta)>> {
        let (root, rel) = (self.root.clone(), rel.to_owned());
        Box::pin(async move {
            // One trip to the blocking pool for the checks, the open and the stat; a small file
            // is read in the same trip, so serving it costs no further trips at all.
            tokio::task::spawn_blocking(move || {
                let mut file = std::fs::File::open(Self::resolve(&root, &rel)?)?;
                let md = file.metadata()?;
                if !md.is_file() {
                    return Err(io::Error::new(io::ErrorKind::NotFound, "not a regular file"));
                }
                let meta = FileMeta { is_dir: false, len: md.len(), modified: md.modified()? };
                if md.len() <= SMALL_FILE {
                    let mut bytes = Vec::with_capacity(md.len() as usize);
                    std::io::Read::read_to_end(&mut file, &mut bytes)?;
                    let meta = FileMeta { len: bytes.len() as u64, ..meta };
                    return Ok((Box::new(std::io::Cursor::new(bytes)) as Box<dyn ReadSeek>, meta));
                }
                Ok((Box::new(tokio::fs::File::from_std(file)) as Box<dyn ReadSeek>, meta))
            })
            .await
            .map_err(io::Error::other)?
        })
    }

    fn open_std(&self, rel: &str) -> BoxFuture<'static, io::Result<Option<(std::fs::File, FileMeta)>>> {
        let (root, rel) = (self.root.clone(), rel.to_owned());
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let file = std::fs::File::open(Self::resolve(&root, &rel)?)?;
                let md = file.metadata()?;
                if !md.is_file() {
                    return Err(io::Error::new(io::ErrorKind::NotFound, "not a regular file"));
                }
                Ok(Some((file, FileMeta { is_dir: false, len: md.len(), modified: md.modified()? })))
            })
            .await
            .map_err(io::Error::other)?
        })
    }

    fn stat(&self, rel: &str) -> BoxFuture<'static, io::Result<FileMeta>> {
        let (root, rel) = (self.root.clone(), rel.to_owned());
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let md = std::fs::metadata(Self::resolve(&root, &rel)?)?;
                Ok(FileMeta { is_dir: md.is_dir(), len: md.len(), modified: md.modified()? })
            })
            .await
            .map_err(io::Error::other)?
        })
    }
}

// ---- the adapter that lets tower-http's ServeDir read through a LocalFs ----------------------

/// Plugs a [`LocalFs`] into `ServeDir::with_backend`, which then does ranges, validators and
/// 304s for us.
#[derive(Clone)]
pub struct FsBackend(pub Arc<dyn LocalFs>);

pub struct BackendFile {
    inner: Box<dyn ReadSeek>,
    meta: FileMeta,
}

impl tower_http::services::fs::Metadata for FileMeta {
    fn is_dir(&self) -> bool {
        self.is_dir
    }
    fn modified(&self) -> io::Result<SystemTime> {
        Ok(self.modified)
    }
    fn len(&self) -> u64 {
        self.len
    }
}

impl AsyncRead for BackendFile {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncSeek for BackendFile {
    fn start_seek(mut self: Pin<&mut Self>, pos: io::SeekFrom) -> io::Result<()> {
        Pin::new(&mut self.inner).start_seek(pos)
    }
    fn poll_complete(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Pin::new(&mut self.inner).poll_complete(cx)
    }
}

impl tower_http::services::fs::File for BackendFile {
    type Metadata = FileMeta;
    type MetadataFuture<'a> = std::future::Ready<io::Result<FileMeta>>;

    fn metadata(&self) -> Self::MetadataFuture<'_> {
        std::future::ready(Ok(self.meta))
    }
}

/// ServeDir hands us `<base>/<decoded path>` (with base "" that is `./<path>`): keep the normal
/// components, which ServeDir has already checked are all there is.
fn rel_of(path: &Path) -> io::Result<String> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            std::path::Component::Normal(s) => {
                parts.push(s.to_str().ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "not UTF-8"))?)
            }
            std::path::Component::CurDir | std::path::Component::RootDir => {}
            _ => return Err(io::Error::new(io::ErrorKind::NotFound, "not a plain relative path")),
        }
    }
    Ok(parts.join("/"))
}

impl tower_http::services::fs::Backend for FsBackend {
    type File = BackendFile;
    type Metadata = FileMeta;
    type OpenFuture = BoxFuture<'static, io::Result<BackendFile>>;
    type MetadataFuture = BoxFuture<'static, io::Result<FileMeta>>;

    fn open(&self, path: PathBuf) -> Self::OpenFuture {
        let fs = self.0.clone();
        Box::pin(async move {
            let (inner, meta) = fs.open(&rel_of(&path)?).await?;
            Ok(BackendFile { inner, meta })
        })
    }

    fn metadata(&self, path: PathBuf) -> Self::MetadataFuture {
        let fs = self.0.clone();
        Box::pin(async move { fs.stat(&rel_of(&path)?).await })
    }
}
