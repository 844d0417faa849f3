//! Where each FTP change goes and what it asks for, decided from where the core routes its
//! path ([`dftp_core::Snapshot::locate_write`]) before anything is done: the command gate asks
//! here to refuse before libunftp answers `150` or `350`, and the back-end asks again, on a
//! newer snapshot, when it makes the change ([`super::write`]).
//!
//! Everything here is a pure function of the core's answer, so that each rule is tested
//! without a socket:
//!
//! - `STOR` replaces a file (or creates one in an existing directory: FTP clients make the
//!   directories they need with `MKD`, and a mistyped path should not grow a tree), `APPE`
//!   appends (creating a missing file), `REST n` + `STOR` writes from byte `n`, and `STOU`
//!   creates a file that must not exist;
//! - `DELE` removes a file, `RMD` an empty directory (every node's part of it), `MKD` a
//!   directory whose parent exists;
//! - `RNFR`/`RNTO` renames on this node, or has the owner of the source do it (a `MOVE`, which
//!   the owner carries out across owners as copy, then delete), or copies a file of this node
//!   to the node that takes the target, then removes it here. A file in the way is replaced (as
//!   `rename(2)` does, so that "upload under a temporary name, then rename" stays atomic); a
//!   directory in the way is not;
//! - a change on another node goes to its public HTTP interface as the HTTP method that makes
//!   it ([`store_request`]), and the owner's refusal comes back as the FTP reply that means
//!   the same ([`owner_refusal`]).

use std::fmt;

use dftp_core::{DfsPath, Forward, Taker, WriteLocation};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use unftp_core::storage::{Error, ErrorKind};

use super::access::Denied;
use crate::localfs::{Precondition, WriteError, WriteMode, WriteOptions};

/// A change refused: the kind of error (which sets the FTP reply code) and the reason the
/// client is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub kind: ErrorKind,
    pub why: String,
}

impl Refusal {
    pub fn new(kind: ErrorKind, why: impl fmt::Display) -> Refusal {
        Refusal { kind, why: why.to_string() }
    }

    /// `550` for anything that is, or is not, where the command needs it.
    fn file(why: impl fmt::Display) -> Refusal {
        Refusal::new(ErrorKind::PermanentFileNotAvailable, why)
    }

    fn not_found(p: &DfsPath) -> Refusal {
        Refusal::file(format_args!("{p}: not found"))
    }

    /// `553`: a name no change may use.
    pub fn bad_name(why: impl fmt::Display) -> Refusal {
        Refusal::new(ErrorKind::FileNameNotAllowedError, why)
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.why)
    }
}

impl From<Denied> for Refusal {
    fn from(d: Denied) -> Refusal {
        Refusal::new(ErrorKind::PermissionDenied, d)
    }
}

/// The reply each failure of the write layer documents: `426` for an upload cut short (the
/// old file stays), `452` for a full disk, `553` for a name no write may use, `550` (with the
/// reason) for the rest of what the client asked wrongly, `451` for a local failure.
impl From<WriteError> for Refusal {
    fn from(e: WriteError) -> Refusal {
        let kind = match &e {
            WriteError::Body { .. } => ErrorKind::ConnectionClosed,
            WriteError::NoSpace => ErrorKind::InsufficientStorageSpaceError,
            WriteError::BadName { .. } => ErrorKind::FileNameNotAllowedError,
            WriteError::NotEmpty(_) => ErrorKind::PermanentDirectoryNotEmpty,
            WriteError::Refused(_) | WriteError::ReadOnly => ErrorKind::PermissionDenied,
            WriteError::Io { .. } => ErrorKind::LocalError,
            WriteError::NotFound(_)
            | WriteError::ParentMissing(_)
            | WriteError::IsADirectory(_)
            | WriteError::NotADirectory(_)
            | WriteError::Exists(_)
            | WriteError::PreconditionFailed { .. }
            | WriteError::BadOffset { .. }
            | WriteError::Incomplete { .. } => ErrorKind::PermanentFileNotAvailable,
        };
        Refusal::new(kind, e)
    }
}

impl From<Refusal> for Error {
    fn from(r: Refusal) -> Error {
        Error::new(r.kind, r.why)
    }
}

/// The upload command, which libunftp does not tell the back-end: it hands over `APPE` as a
/// write from the file's size as it last saw it (and a concurrent append would be
/// overwritten), so the gate, which sees the verb, passes it on ([`super::write::NextUpload`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UploadKind {
    /// `STOR`: the whole content, or from the `REST` offset on.
    Store,
    /// `APPE`: after whatever the file holds when the upload lands.
    Append,
    /// `STOU`: a new file under a name libunftp made up, which nothing may hold yet.
    Unique,
}

/// Where a change is made: on this node's disk (the path relative to `--dfsroot`), or by
/// another node, through its public interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum At {
    Here(DfsPath),
    Owner(Forward),
}

/// The node that takes a change of `p`, or why there is none.
fn taker(p: &DfsPath, t: Taker) -> Result<At, Refusal> {
    match t {
        Taker::Local(local) => Ok(At::Here(local)),
        Taker::Remote(f) => Ok(At::Owner(f)),
        Taker::Unreachable { owner } => Err(Refusal::new(
            ErrorKind::TransientFileNotAvailable,
            format_args!("node {owner}, which takes changes of {p}, is not reachable"),
        )),
        Taker::TooManyHops { owner, hops } => Err(Refusal::new(
            ErrorKind::LocalError,
            format_args!("{p} belongs to node {owner}, but the request has already passed {hops} nodes"),
        )),
    }
}

/// A new entry's parent must exist (FTP makes no directories on the way).
fn parent_exists(p: &DfsPath, loc: &WriteLocation) -> Result<(), Refusal> {
    if loc.parent_missing(p) {
        let parent = p.parent().unwrap_or_else(DfsPath::root);
        return Err(Refusal::file(format_args!("the directory {parent} does not exist")));
    }
    Ok(())
}

/// An upload: where it goes and how it is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Store {
    pub at: At,
    pub opts: WriteOptions,
}

/// `STOR` (from `start`, the `REST` offset), `APPE` or `STOU` of `p`, which the core locates
/// at `loc`.
pub fn store(p: &DfsPath, loc: WriteLocation, kind: UploadKind, start: u64) -> Result<Store, Refusal> {
    let (at, exists) = match loc {
        WriteLocation::File { at, .. } => (at, true),
        WriteLocation::New { .. } => {
            parent_exists(p, &loc)?;
            let WriteLocation::New { at, .. } = loc else { unreachable!("matched above") };
            (at, false)
        }
        WriteLocation::Directory { .. } => return Err(Refusal::file(format_args!("{p} is a directory"))),
        WriteLocation::Refused(why) => return Err(Refusal::file(why)),
    };
    let (mode, precondition) = match (kind, exists) {
        (UploadKind::Unique, true) => return Err(Refusal::file(format_args!("{p} already exists"))),
        (UploadKind::Unique, false) => (WriteMode::Replace, Precondition::Absent),
        (UploadKind::Append, true) => (WriteMode::Append, Precondition::None),
        (UploadKind::Store, true) if start > 0 => (WriteMode::At(start), Precondition::None),
        (UploadKind::Store, false) if start > 0 => {
            return Err(Refusal::file(format_args!("{p} does not exist: there is no byte {start} to write from")));
        }
        // Nothing to append to or to keep: a whole new content.
        (UploadKind::Append, false) | (UploadKind::Store, _) => (WriteMode::Replace, Precondition::None),
    };
    let at = taker(p, at)?;
    Ok(Store { at, opts: WriteOptions { mode, precondition, create_parents: false } })
}

/// The HTTP request that makes the upload `opts` on the owner: `PUT` for a whole content,
/// `PATCH` with `X-Update-Range` (the SabreDAV/dufs form) for an append or a write from an
/// offset, `If-None-Match: *` when nothing may be there yet.
pub fn store_request(opts: &WriteOptions) -> (Method, HeaderMap) {
    let mut headers = HeaderMap::new();
    let method = match opts.mode {
        WriteMode::Replace => Method::PUT,
        WriteMode::Append => {
            headers.insert("x-update-range", HeaderValue::from_static("append"));
            Method::PATCH
        }
        WriteMode::At(n) => {
            let range = HeaderValue::try_from(format!("bytes={n}-")).expect("digits are a valid header");
            headers.insert("x-update-range", range);
            Method::PATCH
        }
    };
    if opts.precondition == Precondition::Absent {
        headers.insert(http::header::IF_NONE_MATCH, HeaderValue::from_static("*"));
    }
    (method, headers)
}

/// `DELE` of `p`: a file, where it lives.
pub fn delete(p: &DfsPath, loc: WriteLocation) -> Result<At, Refusal> {
    match loc {
        WriteLocation::File { at, .. } => taker(p, at),
        WriteLocation::Directory { .. } => {
            Err(Refusal::file(format_args!("{p} is a directory (RMD removes an empty directory)")))
        }
        WriteLocation::New { .. } | WriteLocation::Refused(_) => Err(Refusal::not_found(p)),
    }
}

/// `MKD` of `p`: a new directory, made by the node that takes new entries there.
pub fn make_dir(p: &DfsPath, loc: WriteLocation) -> Result<At, Refusal> {
    match loc {
        WriteLocation::New { .. } => {
            parent_exists(p, &loc)?;
            let WriteLocation::New { at, .. } = loc else { unreachable!("matched above") };
            taker(p, at)
        }
        WriteLocation::File { .. } | WriteLocation::Directory { .. } => {
            Err(Refusal::file(format_args!("{p} already exists")))
        }
        WriteLocation::Refused(why) => Err(Refusal::file(why)),
    }
}

/// The parts of a directory to remove: this node's (its path on our disk) and the other nodes
/// that hold one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parts {
    pub here: Option<DfsPath>,
    pub others: Vec<Forward>,
}

/// `RMD` of `p`, which is `empty` in the merged tree: every node's part of it.
pub fn remove_dir(p: &DfsPath, loc: WriteLocation, empty: bool) -> Result<Parts, Refusal> {
    match loc {
        _ if p.is_root() => Err(Refusal::file("the root of the tree cannot be removed")),
        WriteLocation::Directory { local, others, .. } if empty => Ok(Parts { here: local, others }),
        WriteLocation::Directory { .. } => Err(Refusal::from(WriteError::NotEmpty(p.clone()))),
        WriteLocation::File { .. } => Err(Refusal::file(format_args!("{p} is not a directory"))),
        WriteLocation::New { .. } | WriteLocation::Refused(_) => Err(Refusal::not_found(p)),
    }
}

/// What `RNFR` names: a file or a directory, and who can move it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub at: At,
    pub dir: bool,
    /// A file's size, for a copy to another node.
    pub len: u64,
}

/// `RNFR` of `p`: something that exists, held by one node. A directory spread over several
/// nodes has no one node to rename it.
pub fn rename_source(p: &DfsPath, loc: WriteLocation) -> Result<Source, Refusal> {
    match loc {
        _ if p.is_root() => Err(Refusal::file("the root of the tree cannot be renamed")),
        WriteLocation::File { entry, at } => Ok(Source { at: taker(p, at)?, dir: false, len: entry.size() }),
        WriteLocation::Directory { local, mut others, .. } => {
            let at = match (local, others.len()) {
                (Some(local), 0) => At::Here(local),
                (None, 1) => At::Owner(others.remove(0)),
                (local, _) => {
                    let mut holders: Vec<String> = others.iter().map(|f| f.owner.to_string()).collect();
                    if local.is_some() {
                        holders.push("this node".into());
                    }
                    return Err(Refusal::file(format_args!(
                        "{p} is held by several nodes ({}): it cannot be renamed as one",
                        holders.join(", ")
                    )));
                }
            };
            Ok(Source { at, dir: true, len: 0 })
        }
        WriteLocation::New { .. } | WriteLocation::Refused(_) => Err(Refusal::not_found(p)),
    }
}

/// How a rename is made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rename {
    /// Both ends on this node's disk.
    Here { from: DfsPath, to: DfsPath, overwrite: bool },
    /// The source's owner is asked to `MOVE` it (and moves it on to another node if it must).
    AtOwner { owner: Forward, overwrite: bool },
    /// A file of this node, whose new name another node takes: copied there, then removed.
    CopyThenDelete { from: DfsPath, len: u64, to: Forward, overwrite: bool },
}

/// `RNTO` `to` after `RNFR` `from`, which the core locates at `from_loc` and `to_loc`.
pub fn rename(from: &DfsPath, from_loc: WriteLocation, to: &DfsPath, to_loc: WriteLocation) -> Result<Rename, Refusal> {
    let source = rename_source(from, from_loc)?;
    if from == to {
        return Err(Refusal::file(format_args!("{from} already has that name")));
    }
    // What is in the way: a file is replaced, a directory is not; nothing may be made below
    // a missing directory.
    let (to_at, overwrite) = match to_loc {
        WriteLocation::File { at, .. } if !source.dir => (at, true),
        WriteLocation::File { .. } => {
            return Err(Refusal::file(format_args!("{to} is a file: a directory cannot take its place")));
        }
        WriteLocation::Directory { .. } => return Err(Refusal::file(format_args!("{to} already exists"))),
        WriteLocation::New { .. } => {
            parent_exists(to, &to_loc)?;
            let WriteLocation::New { at, .. } = to_loc else { unreachable!("matched above") };
            (at, false)
        }
        WriteLocation::Refused(why) => return Err(Refusal::file(why)),
    };
    let to_at = taker(to, to_at)?;
    match (source.at, to_at) {
        (At::Here(from), At::Here(to)) => Ok(Rename::Here { from, to, overwrite }),
        (At::Owner(owner), _) => Ok(Rename::AtOwner { owner, overwrite }),
        (At::Here(_), At::Owner(taker)) if source.dir => Err(Refusal::file(format_args!(
            "{from} is a directory of this node and node {} takes {to}: directories are not moved between nodes over FTP",
            taker.owner
        ))),
        (At::Here(from), At::Owner(to)) => Ok(Rename::CopyThenDelete { from, len: source.len, to, overwrite }),
    }
}

/// The refusal that an owner's answer `status` (with `reason`, the start of its body) to a
/// change of `p` passed on to it means, or `None` for a success.
pub fn owner_refusal(status: StatusCode, reason: &str, owner: &str, p: &DfsPath) -> Option<Refusal> {
    if status.is_success() {
        return None;
    }
    let reason = reason.trim();
    let why = if reason.is_empty() {
        format!("node {owner} refused the change of {p}: {status}")
    } else {
        format!("node {owner} refused the change of {p}: {reason}")
    };
    let kind = match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ErrorKind::PermissionDenied,
        StatusCode::INSUFFICIENT_STORAGE => ErrorKind::InsufficientStorageSpaceError,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorKind::ExceededStorageAllocationError,
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => {
            ErrorKind::TransientFileNotAvailable
        }
        s if s.is_server_error() => ErrorKind::LocalError,
        _ => ErrorKind::PermanentFileNotAvailable,
    };
    Some(Refusal::new(kind, why))
}

#[cfg(test)]
mod tests {
    use dftp_core::{Entry, FileMode, Kind, Meta, Owner, PeerAddr, WriteRefusal};

    use super::*;

    fn p(s: &str) -> DfsPath {
        DfsPath::parse_request(s).unwrap()
    }

    fn fwd(owner: &str) -> Forward {
        Forward { owner: owner.into(), addr: PeerAddr::parse("127.0.0.1:9").unwrap(), hops: 1 }
    }

    fn entry(path: &str, kind: Kind) -> Entry {
        Entry { path: p(path), kind, owner: Owner::Node("a".into()), meta: None }
    }

    fn file(path: &str, at: Taker) -> WriteLocation {
        WriteLocation::File { entry: entry(path, Kind::File), at }
    }

    fn dir(path: &str, local: Option<&str>, others: &[&str]) -> WriteLocation {
        WriteLocation::Directory {
            entry: entry(path, Kind::Dir),
            local: local.map(p),
            others: others.iter().map(|o| fwd(o)).collect(),
        }
    }

    fn new(under: &str, at: Taker) -> WriteLocation {
        WriteLocation::New { dir: p(under), at }
    }

    fn here(s: &str) -> Taker {
        Taker::Local(p(s))
    }

    fn there(owner: &str) -> Taker {
        Taker::Remote(fwd(owner))
    }

    fn kind<T: fmt::Debug>(r: Result<T, Refusal>) -> (ErrorKind, String) {
        let r = r.unwrap_err();
        (r.kind, r.why)
    }

    const FILE_ERROR: ErrorKind = ErrorKind::PermanentFileNotAvailable;

    #[test]
    fn uploads_by_command_and_what_is_there() {
        let f = p("d/f");
        let opts = |mode, precondition| WriteOptions { mode, precondition, create_parents: false };
        let cases = [
            (file("d/f", here("f")), UploadKind::Store, 0, WriteMode::Replace, Precondition::None),
            (file("d/f", here("f")), UploadKind::Store, 7, WriteMode::At(7), Precondition::None),
            (file("d/f", here("f")), UploadKind::Append, 0, WriteMode::Append, Precondition::None),
            // libunftp passes APPE the size it saw: the append lands after what is there then.
            (file("d/f", here("f")), UploadKind::Append, 5, WriteMode::Append, Precondition::None),
            (new("d", here("f")), UploadKind::Store, 0, WriteMode::Replace, Precondition::None),
            (new("d", here("f")), UploadKind::Append, 0, WriteMode::Replace, Precondition::None),
            (new("d", here("f")), UploadKind::Unique, 0, WriteMode::Replace, Precondition::Absent),
        ];
        for (loc, kind, start, mode, pre) in cases {
            let what = format!("{kind:?} from {start} at {loc:?}");
            let plan = store(&f, loc, kind, start).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(plan, Store { at: At::Here(p("f")), opts: opts(mode, pre) }, "{what}");
        }
        let plan = store(&f, file("d/f", there("b")), UploadKind::Store, 0).unwrap();
        assert_eq!(plan.at, At::Owner(fwd("b")));

        assert_eq!(
            kind(store(&f, dir("d/f", Some("f"), &[]), UploadKind::Store, 0)),
            (FILE_ERROR, "/d/f is a directory".into())
        );
        assert_eq!(
            kind(store(&f, new("", here("d/f")), UploadKind::Store, 0)),
            (FILE_ERROR, "the directory /d does not exist".into()),
            "no directories are made on the way"
        );
        assert_eq!(
            kind(store(&f, new("d", here("f")), UploadKind::Store, 3)),
            (FILE_ERROR, "/d/f does not exist: there is no byte 3 to write from".into())
        );
        assert_eq!(kind(store(&f, file("d/f", here("f")), UploadKind::Unique, 0)).1, "/d/f already exists");
        let refused = WriteLocation::Refused(WriteRefusal::AncestorIsFile(p("d")));
        assert_eq!(
            kind(store(&f, refused, UploadKind::Store, 0)),
            (FILE_ERROR, "/d is a file, not a directory".into())
        );
        let gone = file("d/f", Taker::Unreachable { owner: "b".into() });
        assert_eq!(
            kind(store(&f, gone, UploadKind::Store, 0)),
            (ErrorKind::TransientFileNotAvailable, "node b, which takes changes of /d/f, is not reachable".into())
        );
    }

    #[test]
    fn uploads_passed_on_as_http() {
        let req = |mode, precondition| {
            let (m, h) = store_request(&WriteOptions { mode, precondition, create_parents: false });
            let header = |n: &str| h.get(n).map(|v| v.to_str().unwrap().to_string());
            (m, header("x-update-range"), header("if-none-match"))
        };
        assert_eq!(req(WriteMode::Replace, Precondition::None), (Method::PUT, None, None));
        assert_eq!(req(WriteMode::Replace, Precondition::Absent), (Method::PUT, None, Some("*".into())));
        assert_eq!(req(WriteMode::Append, Precondition::None), (Method::PATCH, Some("append".into()), None));
        assert_eq!(req(WriteMode::At(42), Precondition::None), (Method::PATCH, Some("bytes=42-".into()), None));
    }

    #[test]
    fn deletions_and_new_directories() {
        let f = p("d/x");
        assert_eq!(delete(&f, file("d/x", here("x"))), Ok(At::Here(p("x"))));
        assert_eq!(delete(&f, file("d/x", there("b"))), Ok(At::Owner(fwd("b"))));
        assert_eq!(
            kind(delete(&f, dir("d/x", None, &["b"]))).1,
            "/d/x is a directory (RMD removes an empty directory)"
        );
        assert_eq!(kind(delete(&f, new("d", here("x")))), (FILE_ERROR, "/d/x: not found".into()));

        assert_eq!(make_dir(&f, new("d", there("b"))), Ok(At::Owner(fwd("b"))));
        assert_eq!(make_dir(&f, new("d", here("d/x"))), Ok(At::Here(p("d/x"))));
        assert_eq!(kind(make_dir(&f, new("", here("d/x")))).1, "the directory /d does not exist");
        assert_eq!(kind(make_dir(&f, dir("d/x", Some("x"), &[]))).1, "/d/x already exists");
        assert_eq!(kind(make_dir(&f, file("d/x", here("x")))).1, "/d/x already exists");
    }

    #[test]
    fn rmd_takes_every_part_of_an_empty_directory() {
        let d = p("d");
        let parts = remove_dir(&d, dir("d", Some("d"), &["b", "c"]), true).unwrap();
        assert_eq!(parts, Parts { here: Some(p("d")), others: vec![fwd("b"), fwd("c")] });
        assert_eq!(remove_dir(&d, dir("d", None, &["b"]), true).unwrap().here, None);
        assert_eq!(
            kind(remove_dir(&d, dir("d", Some("d"), &[]), false)),
            (ErrorKind::PermanentDirectoryNotEmpty, "the directory /d is not empty".into())
        );
        assert_eq!(kind(remove_dir(&d, file("d", here("d")), true)).1, "/d is not a directory");
        assert_eq!(kind(remove_dir(&d, new("", here("d")), true)).1, "/d: not found");
        let root = DfsPath::root();
        assert_eq!(kind(remove_dir(&root, dir("", Some(""), &[]), true)).1, "the root of the tree cannot be removed");
    }

    #[test]
    fn renames_where_the_source_lives() {
        let (a, b) = (p("a"), p("b"));
        let plan = |from, to| rename(&a, from, &b, to);
        assert_eq!(
            plan(file("a", here("a")), new("", here("b"))),
            Ok(Rename::Here { from: p("a"), to: p("b"), overwrite: false })
        );
        assert_eq!(
            plan(file("a", here("a")), file("b", here("b"))),
            Ok(Rename::Here { from: p("a"), to: p("b"), overwrite: true }),
            "a file in the way is replaced"
        );
        assert_eq!(
            plan(file("a", there("x")), new("", here("b"))),
            Ok(Rename::AtOwner { owner: fwd("x"), overwrite: false }),
            "the source's owner moves it, wherever the target goes"
        );
        assert_eq!(
            plan(dir("a", None, &["x"]), new("", there("y"))),
            Ok(Rename::AtOwner { owner: fwd("x"), overwrite: false })
        );
        let mut sized = file("a", here("a"));
        if let WriteLocation::File { entry, .. } = &mut sized {
            entry.meta = Some(Meta { mode: FileMode::file(0o644), size: 11, modified: 0, info_updated: 0 });
        }
        assert_eq!(
            plan(sized, new("", there("y"))),
            Ok(Rename::CopyThenDelete { from: p("a"), len: 11, to: fwd("y"), overwrite: false }),
            "a file of ours whose new name another node takes"
        );

        assert_eq!(kind(plan(file("a", here("a")), dir("b", Some("b"), &[]))).1, "/b already exists");
        assert_eq!(
            kind(plan(dir("a", Some("a"), &[]), file("b", here("b")))).1,
            "/b is a file: a directory cannot take its place"
        );
        assert!(kind(plan(dir("a", Some("a"), &[]), new("", there("y")))).1.contains("directories are not moved"));
        assert_eq!(
            kind(plan(dir("a", Some("a"), &["x"]), new("", here("b")))).1,
            "/a is held by several nodes (x, this node): it cannot be renamed as one"
        );
        assert_eq!(kind(plan(new("", here("a")), new("", here("b")))).1, "/a: not found");
        let cb = p("c/b");
        assert_eq!(
            kind(rename(&a, file("a", here("a")), &cb, new("", here("c/b")))).1,
            "the directory /c does not exist"
        );
        assert_eq!(kind(rename(&a, file("a", here("a")), &a, file("a", here("a")))).1, "/a already has that name");
    }

    #[test]
    fn write_errors_keep_their_reply_codes() {
        let f = p("f");
        let cases = [
            (WriteError::Body { path: f.clone(), why: "gone".into() }, ErrorKind::ConnectionClosed),
            (WriteError::NoSpace, ErrorKind::InsufficientStorageSpaceError),
            (WriteError::BadName { path: f.clone(), why: "reserved" }, ErrorKind::FileNameNotAllowedError),
            (WriteError::NotEmpty(f.clone()), ErrorKind::PermanentDirectoryNotEmpty),
            (WriteError::Exists(f.clone()), FILE_ERROR),
            (WriteError::BadOffset { path: f.clone(), size: 3 }, FILE_ERROR),
            (WriteError::Io { path: f.clone(), cause: std::io::Error::other("disk") }, ErrorKind::LocalError),
        ];
        for (e, want) in cases {
            let text = e.to_string();
            let r = Refusal::from(e);
            assert_eq!((r.kind, r.why.as_str()), (want, text.as_str()));
        }
    }

    #[test]
    fn owner_answers() {
        let f = p("f");
        assert_eq!(owner_refusal(StatusCode::CREATED, "", "b", &f), None);
        assert_eq!(owner_refusal(StatusCode::NO_CONTENT, "", "b", &f), None);
        let r = |s, body| owner_refusal(s, body, "b", &f).unwrap();
        assert_eq!(
            r(StatusCode::FORBIDDEN, "permission denied: eve may not change /f\n").kind,
            ErrorKind::PermissionDenied
        );
        assert_eq!(
            r(StatusCode::FORBIDDEN, "permission denied: eve may not change /f\n").why,
            "node b refused the change of /f: permission denied: eve may not change /f"
        );
        assert_eq!(r(StatusCode::UNAUTHORIZED, "").why, "node b refused the change of /f: 401 Unauthorized");
        assert_eq!(r(StatusCode::INSUFFICIENT_STORAGE, "").kind, ErrorKind::InsufficientStorageSpaceError);
        assert_eq!(r(StatusCode::CONFLICT, "").kind, FILE_ERROR);
        assert_eq!(r(StatusCode::PRECONDITION_FAILED, "").kind, FILE_ERROR);
        assert_eq!(r(StatusCode::BAD_GATEWAY, "").kind, ErrorKind::TransientFileNotAvailable);
        assert_eq!(r(StatusCode::INTERNAL_SERVER_ERROR, "").kind, ErrorKind::LocalError);
    }
}
