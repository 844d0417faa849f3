//! The libunftp storage backend over the merged tree: metadata and listings from a snapshot,
//! contents from the local disk or the owner node, changes made where the core routes them
//! ([`super::write`]). Every read is checked by [`access::may_read`], every write by
//! [`access::may_write`] (the command gate refuses them first, with the same answer).

use std::fmt::{self, Debug};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use dftp_core::{DfsPath, Entry, Location, Snapshot};
use tokio::io::AsyncRead;
use unftp_core::storage::{Error, ErrorKind, Fileinfo, Metadata, Permissions, Result, StorageBackend, FEATURE_RESTART};

use super::access::{self, FtpUser};
use super::listing::{format_line, Line};
use super::transfer::{self, Failure};
use super::write::NextUpload;
use crate::accounts::Accounts;
use crate::content::{Content, Writer};
use crate::driver::Handle;
use dftp_core::ftp_path::{resolve, Refused};

/// What every session's backend shares.
pub struct Shared {
    pub handle: Handle,
    pub content: Content,
    pub accounts: Arc<Accounts>,
    /// Writes to this node's disk and writes passed on to their owners.
    pub writer: Writer,
}

/// One session's view of the tree (libunftp makes one per control connection).
#[derive(Clone)]
pub struct Backend {
    shared: Arc<Shared>,
    /// What the session's gate tells its back-end about the upload it let through.
    next_upload: Arc<NextUpload>,
}

impl Backend {
    /// The node's metrics (the gate counts commands there).
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        self.shared.handle.metrics()
    }

    /// The back-end of a session, or its gate's view of it: both share `next_upload`.
    pub fn new(shared: Arc<Shared>, next_upload: Arc<NextUpload>) -> Backend {
        Backend { shared, next_upload }
    }

    pub(super) fn shared(&self) -> &Shared {
        &self.shared
    }

    pub(super) fn next_upload(&self) -> &NextUpload {
        &self.next_upload
    }
}

impl Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("dftp::ftp::Backend")
    }
}

/// An entry's metadata as FTP shows it.
#[derive(Debug, Clone)]
pub struct FtpMeta {
    dir: bool,
    len: u64,
    /// Unix seconds.
    modified: i64,
    perm: u32,
    owner: String,
}

impl Metadata for FtpMeta {
    fn len(&self) -> u64 {
        self.len
    }
    fn is_dir(&self) -> bool {
        self.dir
    }
    fn is_file(&self) -> bool {
        !self.dir
    }
    fn is_symlink(&self) -> bool {
        false // symlinks are never scanned, so never in the tree
    }
    fn modified(&self) -> Result<SystemTime> {
        Ok(UNIX_EPOCH + Duration::from_secs(self.modified.max(0) as u64))
    }
    fn gid(&self) -> u32 {
        0
    }
    fn uid(&self) -> u32 {
        0
    }
    fn permissions(&self) -> Permissions {
        Permissions(self.perm)
    }
}

fn not_found(kind: ErrorKind, what: impl fmt::Display) -> Error {
    Error::new(kind, what.to_string())
}

fn denied(why: access::Denied) -> Error {
    Error::new(ErrorKind::PermissionDenied, why)
}

/// What an FTP path names, as the command gate needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Missing,
    Dir,
    File,
}

/// The metadata of `e`. A directory known only from what lies below it takes the newest date
/// of its children.
fn meta_of(snap: &Snapshot, e: &Entry) -> FtpMeta {
    let dir = e.is_dir();
    let modified = match e.meta {
        Some(m) => m.modified,
        None => snap.list(&e.path).and_then(|c| c.iter().filter_map(|c| c.meta.map(|m| m.modified)).max()).unwrap_or(0),
    };
    let perm = match e.meta.map(|m| m.mode.perm() & 0o777) {
        Some(p) if p != 0 => p,
        _ if dir => 0o755,
        _ => 0o644,
    };
    FtpMeta { dir, len: e.size(), modified, perm, owner: e.owner.as_str().to_owned() }
}

/// A name an FTP listing can carry: its lines end at CR or LF, so such names cannot be shown
/// (nor asked for by any command).
fn listable(name: &str) -> bool {
    !name.contains(['\r', '\n'])
}

impl Backend {
    pub(super) fn snapshot(&self) -> Snapshot {
        self.shared.handle.snapshot()
    }

    pub fn rules(&self) -> &dftp_core::Rules {
        self.shared.accounts.rules()
    }

    /// The name of this node.
    pub fn node_name(&self) -> String {
        self.snapshot().me().to_string()
    }

    /// The cluster path an FTP path names, and what is there.
    pub fn target(&self, path: &Path) -> std::result::Result<(DfsPath, Target), Refused> {
        let p = resolve(path)?;
        let target = match self.snapshot().lookup(&p) {
            None => Target::Missing,
            Some(e) if e.is_dir() => Target::Dir,
            Some(_) => Target::File,
        };
        Ok((p, target))
    }

    /// The `ls -l` lines of `path` (a directory's children, or a file on its own), without line
    /// ends: `LIST` sends them over the data connection, `STAT <path>` over the control one.
    pub fn long_listing(&self, user: &FtpUser, path: &Path) -> Result<Vec<String>> {
        let (snap, entries) = self.entries(user, path)?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        Ok(entries
            .iter()
            .map(|e| {
                let m = meta_of(&snap, e);
                let line = Line {
                    dir: m.dir,
                    perm: m.perm,
                    owner: &m.owner,
                    size: m.len,
                    modified: m.modified,
                    name: e.path.name(),
                };
                format_line(&line, now)
            })
            .collect())
    }

    /// Whether `user` may read what `p` names in `snap` (refused before it is looked up for
    /// the client: a refusal says nothing about whether the path exists).
    fn may_read(
        &self,
        user: Option<&FtpUser>,
        snap: &Snapshot,
        p: &DfsPath,
    ) -> std::result::Result<(), access::Denied> {
        let is_dir = snap.lookup(p).is_some_and(|e| e.is_dir());
        access::may_read(self.rules(), user, p, is_dir)
    }

    /// Whether `user` may read the path an FTP path names (the gate's question); `None` for a
    /// path that names nothing in the tree (the command's own check refuses it).
    pub fn refuse_read(&self, user: Option<&FtpUser>, path: &Path) -> Option<access::Denied> {
        let p = resolve(path).ok()?;
        self.may_read(user, &self.snapshot(), &p).err()
    }

    /// The entry an FTP path names, if `user` may read it, or the reply for a path that names
    /// nothing.
    fn entry(&self, user: &FtpUser, path: &Path, missing: ErrorKind) -> Result<(Snapshot, DfsPath, Entry)> {
        let p = resolve(path).map_err(|e| Error::new(missing, e))?;
        let snap = self.snapshot();
        self.may_read(Some(user), &snap, &p).map_err(denied)?;
        let entry = snap.lookup(&p).ok_or_else(|| not_found(missing, format_args!("{p}: not found")))?;
        Ok((snap, p, entry))
    }

    /// The entries `LIST`, `NLST` and `MLSD` show `user` for `path`: a directory's children
    /// (those it may see), or a file on its own.
    fn entries(&self, user: &FtpUser, path: &Path) -> Result<(Snapshot, Vec<Entry>)> {
        let (snap, p, entry) = self.entry(user, path, ErrorKind::PermanentDirectoryNotAvailable)?;
        let list = if entry.is_dir() {
            snap.list(&p).ok_or_else(|| not_found(ErrorKind::PermanentDirectoryNotAvailable, &p))?
        } else {
            vec![entry]
        };
        let shows = access::listing_filter(self.rules(), user, &p);
        let list = list
            .into_iter()
            .filter(|e| listable(e.path.name()) && shows.as_ref().is_none_or(|shows| shows(&e.path)))
            .collect();
        Ok((snap, list))
    }

    /// Copies the file at `path` from byte `start` to `out`.
    async fn copy<W>(&self, user: &FtpUser, path: &Path, start: u64, out: &mut W) -> Result<u64>
    where
        W: tokio::io::AsyncWrite + Unpin + ?Sized,
    {
        let (snap, p, entry) = self.entry(user, path, ErrorKind::PermanentFileNotAvailable)?;
        // An FTP client is where a request starts: no hops yet.
        let location = snap.locate(&p, 0);
        let proxied = matches!(location, Location::RemoteFile { .. });
        let result = match location {
            Location::Directory(_) => {
                return Err(not_found(ErrorKind::PermanentFileNotAvailable, format_args!("{p} is a directory")));
            }
            Location::LocalFile { local, .. } => {
                let content = &self.shared.content;
                transfer::local(content, &local, entry.meta.map_or(0, |m| m.size), start, out).await
            }
            Location::RemoteFile { addr, hops, .. } => {
                let auth = user.authorization();
                transfer::remote(&self.shared.content, &addr, &p, hops, auth, start, out).await
            }
            Location::OwnerUnreachable { owner, .. } => {
                return Err(Error::new(
                    ErrorKind::TransientFileNotAvailable,
                    format!("the owner of {p} (node {owner}) is not reachable"),
                ));
            }
            Location::NotFound | Location::TooManyHops { .. } => {
                return Err(not_found(ErrorKind::PermanentFileNotAvailable, &p));
            }
        };
        if let Ok(sent) = &result {
            self.shared.handle.metrics().ftp_sent(proxied, *sent);
        }
        result.map_err(|f| match f {
            Failure::NotFound(why) => {
                tracing::debug!("FTP RETR {p}: {why}");
                not_found(ErrorKind::PermanentFileNotAvailable, format_args!("{p}: not found"))
            }
            Failure::Refused(why) => {
                tracing::info!("FTP RETR {p}: {why}");
                Error::new(ErrorKind::PermissionDenied, why)
            }
            Failure::Source(why) => {
                tracing::warn!("FTP RETR {p} from {}: {why}", entry.owner.as_str());
                Error::new(ErrorKind::LocalError, why)
            }
            Failure::Client(e) => Error::from(e),
        })
    }
}

#[async_trait]
impl StorageBackend<FtpUser> for Backend {
    type Metadata = FtpMeta;

    fn name(&self) -> &str {
        "dftp"
    }

    fn supported_features(&self) -> u32 {
        FEATURE_RESTART
    }

    async fn metadata<P: AsRef<Path> + Send + Debug>(&self, user: &FtpUser, path: P) -> Result<FtpMeta> {
        let (snap, _, entry) = self.entry(user, path.as_ref(), ErrorKind::PermanentFileNotAvailable)?;
        Ok(meta_of(&snap, &entry))
    }

    async fn list<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &FtpUser,
        path: P,
    ) -> Result<Vec<Fileinfo<PathBuf, FtpMeta>>> {
        let (snap, entries) = self.entries(user, path.as_ref())?;
        Ok(entries
            .iter()
            .map(|e| Fileinfo { path: PathBuf::from(e.path.name()), metadata: meta_of(&snap, e) })
            .collect())
    }

    /// `LIST`: our own `ls -l` lines, with the owner node's name where libunftp would print a
    /// numeric uid.
    async fn list_fmt<P>(&self, user: &FtpUser, path: P) -> std::result::Result<Cursor<Vec<u8>>, Error>
    where
        P: AsRef<Path> + Send + Debug,
        FtpMeta: Metadata + 'static,
    {
        let lines = self.long_listing(user, path.as_ref())?;
        let mut out = String::with_capacity(lines.iter().map(|l| l.len() + 2).sum());
        for line in &lines {
            out.push_str(line);
            out.push_str("\r\n");
        }
        Ok(Cursor::new(out.into_bytes()))
    }

    async fn get_into<'a, P, W>(&self, user: &FtpUser, path: P, start_pos: u64, output: &'a mut W) -> Result<u64>
    where
        W: tokio::io::AsyncWrite + Unpin + Sync + Send + ?Sized,
        P: AsRef<Path> + Send + Debug,
    {
        self.copy(user, path.as_ref(), start_pos, output).await
    }

    /// A reader of the file (libunftp uses [`Self::get_into`] for RETR; this serves anything
    /// else that wants a reader): the copy runs in a task writing into a pipe.
    async fn get<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &FtpUser,
        path: P,
        start_pos: u64,
    ) -> Result<Box<dyn AsyncRead + Send + Sync + Unpin>> {
        // Fail now, with the right reply, for what does not exist.
        let (_, p, entry) = self.entry(user, path.as_ref(), ErrorKind::PermanentFileNotAvailable)?;
        if entry.is_dir() {
            return Err(not_found(ErrorKind::PermanentFileNotAvailable, format_args!("{p} is a directory")));
        }
        let (reader, mut writer) = tokio::io::duplex(256 << 10);
        let this = self.clone();
        let path = path.as_ref().to_path_buf();
        let user = user.clone();
        tokio::spawn(async move {
            // An error shows as a short read; the pipe closes either way.
            let _ = this.copy(&user, &path, start_pos, &mut writer).await;
        });
        Ok(Box::new(reader))
    }

    /// `STOR`, `APPE` (libunftp passes the file's size as `start_pos`; the gate has told us
    /// it is an append), `REST` + `STOR` (`start_pos` is the offset), `STOU`.
    async fn put<P: AsRef<Path> + Send + Debug, R: AsyncRead + Send + Sync + Unpin + 'static>(
        &self,
        user: &FtpUser,
        input: R,
        path: P,
        start_pos: u64,
    ) -> Result<u64> {
        Ok(self.store(user, input, path.as_ref(), start_pos).await?)
    }

    async fn del<P: AsRef<Path> + Send + Debug>(&self, user: &FtpUser, path: P) -> Result<()> {
        Ok(self.delete(user, path.as_ref()).await?)
    }

    async fn mkd<P: AsRef<Path> + Send + Debug>(&self, user: &FtpUser, path: P) -> Result<()> {
        Ok(self.make_dir(user, path.as_ref()).await?)
    }

    async fn rename<P: AsRef<Path> + Send + Debug>(&self, user: &FtpUser, from: P, to: P) -> Result<()> {
        Ok(Backend::rename(self, user, from.as_ref(), to.as_ref()).await?)
    }

    async fn rmd<P: AsRef<Path> + Send + Debug>(&self, user: &FtpUser, path: P) -> Result<()> {
        Ok(self.remove_dir(user, path.as_ref()).await?)
    }

    async fn cwd<P: AsRef<Path> + Send + Debug>(&self, user: &FtpUser, path: P) -> Result<()> {
        let (_, p, entry) = self.entry(user, path.as_ref(), ErrorKind::PermanentDirectoryNotAvailable)?;
        if entry.is_dir() {
            Ok(())
        } else {
            Err(not_found(ErrorKind::PermanentDirectoryNotAvailable, format_args!("{p} is not a directory")))
        }
    }
}
