//! What a write to the local tree is asked to do and how it can fail, whatever file system
//! carries it out (the disk, [`super::disk_write`]; the simulator's tree in memory).
//!
//! Paths are relative to the served root (`--dfsroot`), as everywhere in [`super::LocalFs`];
//! an error names them so, and the content layer turns them back into paths of the cluster's
//! tree before anyone sees them ([`WriteError::in_cluster`]).

use std::io;
use std::time::{SystemTime, UNIX_EPOCH};

use dftp_core::{DfsPath, Mount};

/// Names that start with this are the temporary files (and directories, for a copy) of writes
/// under way: the scan, the watcher, listings and `/find/` never show them, no write may use
/// such a name, and the ones a crash left behind are removed at start
/// ([`super::LocalFs::scan_at_start`]).
pub const TEMP_PREFIX: &str = ".dftp-part-";

/// Whether `name` (one segment) is a temporary file's.
pub fn is_temp_name(name: &[u8]) -> bool {
    name.starts_with(TEMP_PREFIX.as_bytes())
}

/// Whether any segment of `path` is a temporary file's.
pub fn has_temp_segment(path: &str) -> bool {
    path.split('/').any(|s| is_temp_name(s.as_bytes()))
}

/// The validator of a file's content: [`dftp_core::http_file::etag`] of its size and its
/// modification time in whole seconds, the one definition `GET`, `PROPFIND` and the write
/// preconditions share. `None` for a time before 1970, for which no `ETag` is sent either.
pub fn etag(len: u64, modified: SystemTime) -> Option<String> {
    let t = modified.duration_since(UNIX_EPOCH).ok()?;
    dftp_core::http_file::etag(len, i64::try_from(t.as_secs()).ok()?)
}

/// Where the body of a file write goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    /// The body is the whole new content (PUT, STOR, COPY).
    Replace,
    /// The body goes after the current content (PATCH `X-Update-Range: append`, APPE); a
    /// missing file is created.
    Append,
    /// The body is written from this offset, over what is there and beyond it (PATCH
    /// `X-Update-Range: bytes=N-`, REST N + STOR); the bytes before it, and any after the
    /// body's end, stay. An offset past the end is refused ([`WriteError::BadOffset`]).
    At(u64),
}

pub use dftp_core::precondition::Precondition;

/// How to write one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteOptions {
    pub mode: WriteMode,
    pub precondition: Precondition,
    /// Create the missing directories above the file (PUT, STOR), or refuse with
    /// [`WriteError::ParentMissing`] (COPY and MOVE targets).
    pub create_parents: bool,
}

impl WriteOptions {
    /// A whole new content, with missing directories created: PUT and STOR.
    pub fn replace() -> WriteOptions {
        WriteOptions { mode: WriteMode::Replace, precondition: Precondition::None, create_parents: true }
    }
}

/// A file write that went through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    /// Nothing was at the path before (201 rather than 204).
    pub created: bool,
    /// The new content's validator ([`etag`]), for the `ETag` of the answer.
    pub etag: Option<String>,
    /// The file's size now.
    pub size: u64,
    /// The outermost directory the write created above the file, if it created any: what
    /// changed on disk is that directory's subtree, or else the file.
    pub created_dir: Option<DfsPath>,
}

impl Committed {
    /// The local path whose subtree the write changed.
    pub fn changed_root(&self, file: &DfsPath) -> DfsPath {
        self.created_dir.clone().unwrap_or_else(|| file.clone())
    }
}

/// A file being written: its body goes to a temporary file beside the target, which takes the
/// target's place only at [`FileWriter::commit`]. Dropped without a commit, it leaves nothing
/// behind (neither the temporary file nor the directories it created).
pub trait FileWriter: Send {
    /// Appends the next piece of the body (blocking).
    fn write(&mut self, chunk: &[u8]) -> Result<(), WriteError>;
    /// Makes the content durable and puts it in place, if the precondition still holds
    /// (blocking).
    fn commit(self: Box<Self>) -> Result<Committed, WriteError>;
}

/// Why a write did not go through. Each says what the HTTP and FTP layers answer.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// 404; FTP 550.
    #[error("not found: {0}")]
    NotFound(DfsPath),
    /// The directory the path would be created in does not exist: 409; FTP 550.
    #[error("the directory {0} does not exist")]
    ParentMissing(DfsPath),
    /// A file was expected: PUT onto a directory 409; FTP 550.
    #[error("{0} is a directory")]
    IsADirectory(DfsPath),
    /// A directory was expected (or a file lies above the path): 409; FTP 550.
    #[error("{0} is not a directory")]
    NotADirectory(DfsPath),
    /// MKCOL of an existing path 405; MOVE/COPY without overwrite 412; FTP 550.
    #[error("{0} already exists")]
    Exists(DfsPath),
    /// FTP RMD of a directory with something in it: 550.
    #[error("the directory {0} is not empty")]
    NotEmpty(DfsPath),
    /// `If-Match`, `If-None-Match`, or the file changed while an append to it was under way: 412.
    #[error("precondition failed for {path}: {why}")]
    PreconditionFailed { path: DfsPath, why: &'static str },
    /// A write at an offset past the end of the file: 416; FTP 554.
    #[error("{path} has {size} bytes: cannot write from a later offset")]
    BadOffset { path: DfsPath, size: u64 },
    /// ENOSPC, EDQUOT: 507; FTP 552.
    #[error("no space left on this node's disk")]
    NoSpace,
    /// The path resolves outside the served root or through a symbolic link, or is no regular
    /// file or directory: 403; FTP 550.
    #[error("refused: {0} is outside the served root, a symbolic link or not a regular file")]
    Refused(DfsPath),
    /// A name no write may use (a temporary file's, the served root itself, a directory moved
    /// into itself, too long): 400 (403 for the root); FTP 553.
    #[error("{path}: {why}")]
    BadName { path: DfsPath, why: &'static str },
    /// A recursive delete that left something behind: 500 with what remains; FTP 550.
    #[error("{path} was not removed completely: {left} entr(y/ies) remain, the first {first}: {cause}")]
    Incomplete { path: DfsPath, left: u64, first: DfsPath, cause: io::Error },
    /// The request's body failed (the client went away, or sent less than it announced): the
    /// old content stays. 400 (if anyone is still there); FTP 426.
    #[error("the upload of {path} did not complete: {why}")]
    Body { path: DfsPath, why: String },
    /// This file system cannot be written (a test double): 405; FTP 550.
    #[error("this node's files cannot be written")]
    ReadOnly,
    /// Anything else, with its cause: 500; FTP 451.
    #[error("writing {path} failed: {cause}")]
    Io { path: DfsPath, cause: io::Error },
}

impl WriteError {
    /// The same error naming paths of the cluster's tree: `mount` is where this node's served
    /// root appears in it.
    pub fn in_cluster(self, mount: &Mount) -> WriteError {
        let c = |p: DfsPath| mount.to_cluster(&p).unwrap_or(p);
        match self {
            WriteError::NotFound(p) => WriteError::NotFound(c(p)),
            WriteError::ParentMissing(p) => WriteError::ParentMissing(c(p)),
            WriteError::IsADirectory(p) => WriteError::IsADirectory(c(p)),
            WriteError::NotADirectory(p) => WriteError::NotADirectory(c(p)),
            WriteError::Exists(p) => WriteError::Exists(c(p)),
            WriteError::NotEmpty(p) => WriteError::NotEmpty(c(p)),
            WriteError::PreconditionFailed { path, why } => WriteError::PreconditionFailed { path: c(path), why },
            WriteError::BadOffset { path, size } => WriteError::BadOffset { path: c(path), size },
            WriteError::Refused(p) => WriteError::Refused(c(p)),
            WriteError::BadName { path, why } => WriteError::BadName { path: c(path), why },
            WriteError::Incomplete { path, left, first, cause } => {
                WriteError::Incomplete { path: c(path), left, first: c(first), cause }
            }
            WriteError::Body { path, why } => WriteError::Body { path: c(path), why },
            WriteError::Io { path, cause } => WriteError::Io { path: c(path), cause },
            e @ (WriteError::NoSpace | WriteError::ReadOnly) => e,
        }
    }

    /// The error of a system call on `path` that has no more specific meaning where it failed.
    pub fn from_io(path: &DfsPath, e: io::Error) -> WriteError {
        match e.raw_os_error() {
            Some(libc::ENOSPC | libc::EDQUOT) => WriteError::NoSpace,
            Some(libc::ELOOP | libc::EXDEV) => WriteError::Refused(path.clone()),
            Some(libc::ENAMETOOLONG) => WriteError::BadName { path: path.clone(), why: "a name is too long" },
            _ => WriteError::Io { path: path.clone(), cause: e },
        }
    }
}

/// Refuses names no write may use, and the root itself (which is no file and cannot move):
/// the one check every `LocalFs` makes before a write.
pub fn check_name(rel: &DfsPath) -> Result<(), WriteError> {
    if rel.is_root() {
        return Err(WriteError::BadName {
            path: rel.clone(),
            why: "the served root cannot be written, moved or removed",
        });
    }
    if rel.as_str().split('/').any(|s| is_temp_name(s.as_bytes())) {
        return Err(WriteError::BadName { path: rel.clone(), why: "names starting with .dftp-part- are reserved" });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names() {
        assert!(is_temp_name(b".dftp-part-1f-3"));
        assert!(!is_temp_name(b"dftp-part-1"));
        assert!(has_temp_segment("a/.dftp-part-x/b"));
        assert!(has_temp_segment(".dftp-part-x"));
        assert!(!has_temp_segment("a/b.dftp-part-x"));
    }

    #[test]
    fn errors_name_cluster_paths() {
        let mount = Mount::parse("data").unwrap();
        let e = WriteError::Exists(DfsPath::parse("x/y").unwrap()).in_cluster(&mount);
        assert_eq!(e.to_string(), "/data/x/y already exists");
        let e = WriteError::from_io(&DfsPath::parse("f").unwrap(), io::Error::from_raw_os_error(libc::EDQUOT));
        assert!(matches!(e, WriteError::NoSpace));
    }
}
