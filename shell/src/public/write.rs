//! The write methods of `/fs/`, with WebDAV's meaning (as dufs, `rclone serve webdav` and
//! nginx's dav module answer them): `PUT`, `PATCH` (resumable uploads, `X-Update-Range` as
//! SabreDAV and dufs read it), `DELETE`, `MKCOL`, `MOVE` and `COPY`.
//!
//! The guard has let the request through (it needs the right to change the path, and the
//! `Destination` of `MOVE` and `COPY`); the core says where the write goes
//! ([`dftp_core::Snapshot::locate_write`]); this maps the request onto the content layer's
//! [`Writer`](crate::content::Writer): on this node, or passed on to the node that takes it,
//! whose answer (status, reason, validator) comes back as it is. What is decided here is only
//! HTTP's part: which status a result is, which headers a request means, and how a request
//! that spans nodes (a directory spread over several, a move from one owner to another) is put
//! together from single writes.

use std::sync::{Arc, OnceLock};

use dftp_core::pace::Pace;
use dftp_core::request::UpdateRange;
use dftp_core::{DfsPath, Forward, StreamPos, Taker, WriteLocation};
use futures_util::future::join_all;
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Incoming;

use super::guard::Destination;
use super::{files, Public, Query};
use crate::body::{full_body, next_paced, Body, BoxError, TooSlow};
use crate::content::write::{not_taken, not_taken_reason};
use crate::content::write::{
    parse_update_header, update_header_value, update_of_header_value, upload, Done, Stored, UPDATE_HEADER,
    UPDATE_OF_HEADER,
};
use crate::localfs::{Contents, Precondition, WriteError, WriteMode, WriteOptions};
use crate::respond::{method_not_allowed, no_content, text};
use crate::upstream::{Fetched, Upload};

/// The methods `/fs/` answers, for `Allow`.
pub const FS_METHODS: &str =
    "GET, HEAD, OPTIONS, PUT, PATCH, DELETE, MKCOL, COPY, MOVE, PROPFIND, PROPPATCH, LOCK, UNLOCK";

/// How much of another node's refusal is read, to name it in an answer that sums up several.
const REASON_MAX: usize = 2 << 10;

/// Headers of the answer of the node that took a write, passed back to the client.
const PASSED_BACK: [HeaderName; 6] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::ETAG,
    header::WWW_AUTHENTICATE,
    header::ALLOW,
    header::CONTENT_RANGE,
];

/// A write refused before anything was done: the status and the reason of the answer.
#[derive(Debug)]
struct Refused {
    status: StatusCode,
    reason: String,
}

impl Refused {
    fn new(status: StatusCode, reason: impl Into<String>) -> Refused {
        Refused { status, reason: reason.into() }
    }

    fn into_response(self) -> Response<Body> {
        text(self.status, self.reason)
    }
}

/// Where one end of a write is carried out: a [`Taker`] that can be reached.
#[derive(Clone, Debug)]
enum End {
    /// On this node's disk, relative to the served root.
    Local(DfsPath),
    /// Passed on to another node.
    Remote(Forward),
}

impl End {
    /// Where `at` is carried out, or the answer when it cannot be reached.
    fn of(at: Taker, path: &DfsPath) -> Result<End, Refused> {
        match at {
            Taker::Local(local) => Ok(End::Local(local)),
            Taker::Remote(to) => Ok(End::Remote(to)),
            Taker::Unreachable { owner } => Err(Refused::new(
                StatusCode::BAD_GATEWAY,
                format!("the node that takes {path} (node {owner}) is not reachable"),
            )),
            // As a read that went round in circles is answered (files.rs).
            Taker::TooManyHops { owner, hops } => Err(Refused::new(
                StatusCode::LOOP_DETECTED,
                format!("{path} (of node {owner}) was passed between nodes {hops} times; giving up"),
            )),
        }
    }

    /// The node it is carried out on, for messages.
    fn node<'a>(&'a self, me: &'a str) -> &'a str {
        match self {
            End::Local(_) => me,
            End::Remote(to) => &to.owner,
        }
    }
}

impl Public {
    /// Answers a write method on `/fs/`; `raw` is the URL path after `/fs`, still encoded.
    pub(super) async fn write(
        &self,
        req: Request<Incoming>,
        raw: &str,
        path: &DfsPath,
        query: &Query,
    ) -> Response<Body> {
        let hops = query.hops;
        match req.method().as_str() {
            "PUT" => self.put(req, path, raw.ends_with('/'), hops, WriteMode::Replace).await,
            "PATCH" => match patch_mode(req.headers()) {
                Ok(mode) => self.put(req, path, raw.ends_with('/'), hops, mode).await,
                Err(refused) => refused.into_response(),
            },
            "DELETE" => self.delete(req, path, hops).await,
            "MKCOL" => self.mkcol(req, path, hops).await,
            "MOVE" | "COPY" => self.move_or_copy(req, path, hops).await,
            other => method_not_allowed(FS_METHODS, &format!("{other} is not supported on /fs/")),
        }
    }

    /// `PUT` (the body is the file) and `PATCH` (the body goes at the end, or at an offset).
    async fn put(
        &self,
        req: Request<Incoming>,
        path: &DfsPath,
        trailing_slash: bool,
        hops: u32,
        mode: WriteMode,
    ) -> Response<Body> {
        let at = match self.handle.snapshot().locate_write(path, hops) {
            WriteLocation::File { at, .. } | WriteLocation::New { at, .. } => at,
            WriteLocation::Directory { .. } => {
                return text(StatusCode::CONFLICT, format!("{path} is a directory: a file cannot replace it"))
            }
            WriteLocation::Refused(why) => return text(StatusCode::CONFLICT, format!("cannot write {path}: {why}")),
        };
        if trailing_slash {
            return text(StatusCode::BAD_REQUEST, format!("{path}/: the path of a file cannot end with /"));
        }
        let end = match End::of(at, path) {
            Ok(end) => end,
            Err(refused) => return refused.into_response(),
        };
        let (parts, incoming) = req.into_parts();
        let (body, failed) = client_body(incoming, self.pace);
        self.store(end, path, parts.method, &parts.headers, body, mode, Some(&failed)).await
    }

    /// Writes `body` to `path` where `end` says.
    #[allow(clippy::too_many_arguments)]
    async fn store(
        &self,
        end: End,
        path: &DfsPath,
        method: Method,
        headers: &HeaderMap,
        body: Body,
        mode: WriteMode,
        failed: Option<&OnceLock<String>>,
    ) -> Response<Body> {
        match end {
            End::Local(local) => {
                let opts = WriteOptions { mode, precondition: precondition(headers), create_parents: true };
                match self.writer.put(&local, body, content_length(headers), opts).await {
                    Ok(stored) => stored_answer(path, &stored),
                    Err(e) => write_error(&e, &method),
                }
            }
            End::Remote(to) => {
                let upload = upload(body, headers);
                let answer = self.writer.forward(&to, path, method, headers, Some(upload)).await;
                passed_back(answer, &to, path, failed)
            }
        }
    }

    /// An empty file at `path`, where nothing is (`LOCK` of an unmapped URL, RFC 4918 section
    /// 7.3), written as a `PUT` with `If-None-Match: *` would be, with the client's credentials.
    pub(super) async fn create_empty(&self, path: &DfsPath, hops: u32, client: &HeaderMap) -> Response<Body> {
        let location = self.handle.snapshot().locate_write(path, hops);
        if location.parent_missing(path) {
            let parent = path.parent().unwrap_or_else(DfsPath::root);
            return text(StatusCode::CONFLICT, format!("the directory {parent} does not exist"));
        }
        let at = match location {
            WriteLocation::New { at, .. } => at,
            WriteLocation::File { .. } | WriteLocation::Directory { .. } => {
                return text(StatusCode::PRECONDITION_FAILED, format!("{path} already exists"))
            }
            WriteLocation::Refused(why) => return text(StatusCode::CONFLICT, format!("cannot create {path}: {why}")),
        };
        let end = match End::of(at, path) {
            Ok(end) => end,
            Err(refused) => return refused.into_response(),
        };
        let mut headers = HeaderMap::new();
        if let Some(auth) = client.get(header::AUTHORIZATION) {
            headers.insert(header::AUTHORIZATION, auth.clone());
        }
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        self.store(end, path, Method::PUT, &headers, full_body(bytes::Bytes::new()), WriteMode::Replace, None).await
    }

    /// `DELETE` of a file, or of a directory with everything in it, on every node that holds
    /// part of it.
    async fn delete(&self, req: Request<Incoming>, path: &DfsPath, hops: u32) -> Response<Body> {
        if path.is_root() {
            return text(StatusCode::FORBIDDEN, "the root of the tree cannot be deleted");
        }
        let snapshot = self.handle.snapshot();
        match snapshot.locate_write(path, hops) {
            WriteLocation::File { at, .. } => match End::of(at, path) {
                Ok(End::Local(local)) => done_answer(path, self.writer.remove_file(&local).await, req.method()),
                Ok(End::Remote(to)) => {
                    let answer = self.writer.forward(&to, path, Method::DELETE, req.headers(), None).await;
                    passed_back(answer, &to, path, None)
                }
                Err(refused) => refused.into_response(),
            },
            WriteLocation::Directory { local, others, .. } => {
                self.delete_dir(req.headers(), path, local, others, snapshot.me()).await
            }
            WriteLocation::New { .. } | WriteLocation::Refused(_) => {
                text(StatusCode::NOT_FOUND, format!("not found: {path}"))
            }
        }
    }

    /// Removes this node's part of directory `path` (`local`) and asks each of `others` to
    /// remove theirs, all at once. Anything left is named in the answer, node by node.
    async fn delete_dir(
        &self,
        headers: &HeaderMap,
        path: &DfsPath,
        local: Option<DfsPath>,
        others: Vec<Forward>,
        me: &str,
    ) -> Response<Body> {
        if local.is_none() && others.is_empty() {
            // A peer's fan-out reached a node that holds nothing of it (any more).
            return text(StatusCode::NOT_FOUND, format!("nothing of {path} is on node {me}"));
        }
        let mine = async {
            match &local {
                Some(local) => Some(self.writer.remove_dir(local, true).await),
                None => None,
            }
        };
        let theirs = join_all(others.iter().map(|to| async move {
            let answer = self.writer.forward(to, path, Method::DELETE, headers, None).await;
            (to, answer)
        }));
        let (mine, theirs) = futures_util::join!(mine, theirs);
        // What remains, node by node, with the status that says why.
        let mut remains: Vec<(StatusCode, String)> = Vec::new();
        let mut update = None;
        match mine {
            Some(Ok(done)) => update = Some(done.update),
            Some(Err(e)) => remains.push((error_status(&e, &Method::DELETE), format!("on node {me}: {e}"))),
            None => {}
        }
        for (to, answer) in theirs {
            match answer {
                Ok(a) if not_taken(a.status) => remains.push((
                    StatusCode::BAD_GATEWAY,
                    format!("on node {}: {}", to.owner, not_taken_reason(&to.owner, a.status)),
                )),
                // A node that holds nothing of it any more has nothing left.
                Ok(a) if a.status.is_success() || a.status == StatusCode::NOT_FOUND => {}
                Ok(a) => {
                    let status = a.status;
                    let why = reason_of(a).await;
                    remains.push((status, format!("on node {}: {status}: {why}", to.owner)));
                }
                Err(e) => {
                    tracing::warn!("passing the deletion of {path} on to {}: {e}", to.owner);
                    remains.push((StatusCode::BAD_GATEWAY, format!("on node {}: it did not answer", to.owner)));
                }
            }
        }
        if remains.is_empty() {
            return with_update(no_content(), update);
        }
        // One status when every part failed alike; else the server's failure in general.
        let status = if remains.iter().all(|(s, _)| *s == remains[0].0) {
            remains[0].0
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        let parts: Vec<String> = remains.into_iter().map(|(_, why)| why).collect();
        text(status, format!("{path} was not deleted completely; what remains: {}", parts.join("; ")))
    }

    /// `MKCOL`: a new directory, whose parent exists.
    async fn mkcol(&self, req: Request<Incoming>, path: &DfsPath, hops: u32) -> Response<Body> {
        if has_body(req.headers()) {
            return text(StatusCode::UNSUPPORTED_MEDIA_TYPE, "MKCOL takes no body");
        }
        let location = self.handle.snapshot().locate_write(path, hops);
        if location.parent_missing(path) {
            let parent = path.parent().unwrap_or_else(DfsPath::root);
            return text(StatusCode::CONFLICT, format!("the directory {parent} does not exist"));
        }
        let at = match location {
            WriteLocation::New { at, .. } => at,
            WriteLocation::File { .. } | WriteLocation::Directory { .. } => {
                return method_not_allowed(FS_METHODS, &format!("{path} already exists"))
            }
            WriteLocation::Refused(why) => return text(StatusCode::CONFLICT, format!("cannot create {path}: {why}")),
        };
        match End::of(at, path) {
            Ok(End::Local(local)) => done_answer(path, self.writer.make_dir(&local).await, req.method()),
            Ok(End::Remote(to)) => {
                let answer = self.writer.forward(&to, path, req.method().clone(), req.headers(), None).await;
                passed_back(answer, &to, path, None)
            }
            Err(refused) => refused.into_response(),
        }
    }

    /// `MOVE` and `COPY` to the `Destination` header's path. A source on another node is
    /// passed on to that node, which does it from there: within one node, a rename or a copy;
    /// to another node (files only), a copy streamed to the node that takes the destination,
    /// then, for a move, the removal of the source, so that a move that fails on the way
    /// leaves the source where it was.
    async fn move_or_copy(&self, req: Request<Incoming>, path: &DfsPath, hops: u32) -> Response<Body> {
        let moving = req.method() == "MOVE";
        let verb = if moving { "moved" } else { "copied" };
        let headers = req.headers();
        let dest = match Destination::of(req.method(), headers) {
            Ok(d) => d,
            Err(refused) => return refused.into_response(),
        };
        if let (Some(named), Some(host)) = (&dest.authority, headers.get(header::HOST)) {
            if !host.as_bytes().eq_ignore_ascii_case(named.as_bytes()) {
                // RFC 4918: a destination on another server is a 502.
                return text(
                    StatusCode::BAD_GATEWAY,
                    format!("the Destination is on another server ({named}): it must be a path of this server's /fs/"),
                );
            }
        }
        let overwrite = match overwrite(headers) {
            Ok(o) => o,
            Err(refused) => return refused.into_response(),
        };
        let to = dest.path;
        if path.is_root() || to.is_root() {
            return text(StatusCode::FORBIDDEN, format!("the root of the tree cannot be {verb} or replaced"));
        }
        if to == *path {
            return text(StatusCode::FORBIDDEN, format!("{path}: the source and the destination are the same"));
        }
        if path.is_within(&to) {
            return text(StatusCode::FORBIDDEN, format!("{to} holds {path}: it cannot be replaced by it"));
        }
        let snapshot = self.handle.snapshot();
        let me = snapshot.me().as_str();
        let (src, src_dir, src_size) = match snapshot.locate_write(path, hops) {
            WriteLocation::File { at, entry } => match End::of(at, path) {
                Ok(end) => (end, false, entry.size()),
                Err(refused) => return refused.into_response(),
            },
            WriteLocation::Directory { local, others, .. } => match one_holder(path, local, others, me) {
                Ok(end) => (end, true, 0),
                Err(refused) => return refused.into_response(),
            },
            WriteLocation::New { .. } | WriteLocation::Refused(_) => {
                return text(StatusCode::NOT_FOUND, format!("not found: {path}"))
            }
        };
        if src_dir && to.is_within(path) {
            return text(StatusCode::FORBIDDEN, format!("{path} is a directory: it cannot go into itself"));
        }
        let target = snapshot.locate_write(&to, hops);
        if target.parent_missing(&to) {
            let parent = to.parent().unwrap_or_else(DfsPath::root);
            return text(StatusCode::CONFLICT, format!("the directory {parent} does not exist"));
        }
        let (dst, exists) = match target {
            WriteLocation::File { at, .. } => match End::of(at, &to) {
                Ok(end) => (end, true),
                Err(refused) => return refused.into_response(),
            },
            WriteLocation::Directory { .. } if !overwrite => return already_there(&to),
            WriteLocation::Directory { local, others, .. } => match one_holder(&to, local, others, me) {
                // A directory is replaced by the node that holds it, from its own disk.
                Ok(end) if end.node(me) == src.node(me) => (end, true),
                Ok(end) => {
                    let why = format!(
                        "{to} is a directory of node {}: only what is on that node can replace it",
                        end.node(me)
                    );
                    return text(StatusCode::CONFLICT, why);
                }
                Err(refused) => return refused.into_response(),
            },
            WriteLocation::New { at, .. } => match End::of(at, &to) {
                Ok(end) => (end, false),
                Err(refused) => return refused.into_response(),
            },
            WriteLocation::Refused(why) => return text(StatusCode::CONFLICT, format!("cannot write {to}: {why}")),
        };
        if exists && !overwrite {
            return already_there(&to);
        }
        match (src, dst) {
            (End::Remote(from), _) => {
                // The source's node does it. The Destination goes as a path, which that node
                // reads as its own.
                let mut passed = headers.clone();
                let dest = format!("/fs/{}", crate::content::encode_path(&to));
                match HeaderValue::try_from(dest) {
                    Ok(v) => passed.insert("destination", v),
                    Err(_) => return text(StatusCode::BAD_REQUEST, "bad Destination header"),
                };
                let answer = self.writer.forward(&from, path, req.method().clone(), &passed, None).await;
                passed_back(answer, &from, path, None)
            }
            (End::Local(from), End::Local(into)) => {
                let done = if moving {
                    self.writer.rename(&from, &into, overwrite).await
                } else {
                    self.writer.copy(&from, &into, overwrite).await
                };
                match done {
                    Ok(done) => with_update(created_or_replaced(&to, !done.replaced), Some(done.update)),
                    Err(e) => write_error(&e, req.method()),
                }
            }
            (End::Local(_), End::Remote(into)) if src_dir => text(
                StatusCode::CONFLICT,
                format!(
                    "{path} is a directory of node {me} and {to} would be on node {}: a directory is {verb} only \
                     within one node (its files can be, one by one)",
                    into.owner
                ),
            ),
            (End::Local(from), End::Remote(into)) => {
                let across = Across { path, from, size: src_size, to: &to, into, overwrite, moving };
                self.across(across, headers).await
            }
        }
    }

    /// A file of this node moved or copied to another node: its bytes streamed into a `PUT`
    /// on the node that takes the destination (which checks the client's credentials against
    /// its own rules), then, for a move, the source removed here.
    async fn across(&self, job: Across<'_>, headers: &HeaderMap) -> Response<Body> {
        let Across { path, from, size, to, into, overwrite, moving } = job;
        let opened = match self.content.open(&from, size).await {
            Ok(opened) => opened,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return text(StatusCode::NOT_FOUND, format!("not found: {path}"))
            }
            Err(e) => {
                tracing::warn!("opening {path} to copy it: {e}");
                return text(StatusCode::INTERNAL_SERVER_ERROR, format!("could not read {path}"));
            }
        };
        let len = opened.meta.len;
        let body = match opened.contents {
            Contents::Bytes(b) => full_body(b),
            Contents::Disk(file) => files::disk_body(file, 0, len),
        };
        let mut put = HeaderMap::new();
        if let Some(auth) = headers.get(header::AUTHORIZATION) {
            put.insert(header::AUTHORIZATION, auth.clone());
        }
        if !overwrite {
            put.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        }
        let upload = Upload { body, len: Some(len) };
        // The update of the node that took the copy: a node that passed this request on waits
        // for it as well as for ours.
        let (created, theirs) = match self.writer.forward(&into, to, Method::PUT, &put, Some(upload)).await {
            Ok(answer) if not_taken(answer.status) => {
                return text(StatusCode::BAD_GATEWAY, not_taken_reason(&into.owner, answer.status))
            }
            Ok(answer) if answer.status.is_success() => {
                (answer.status == StatusCode::CREATED, answer.headers.get(UPDATE_HEADER).and_then(parse_update_header))
            }
            // Refused there (its rules, Overwrite: F, a full disk): its answer, and the source stays.
            Ok(answer) => return pass_back(answer),
            Err(e) => {
                tracing::warn!("copying {path} to {to} on {}: {e}", into.owner);
                let why = format!("{path} could not be copied to {to} on node {}", into.owner);
                return text(StatusCode::BAD_GATEWAY, why);
            }
        };
        let mut answer = created_or_replaced(to, created);
        if let Some(v) = theirs.and_then(|pos| update_of_header_value(&into.owner, pos)) {
            answer.headers_mut().insert(UPDATE_OF_HEADER, v);
        }
        if !moving {
            return answer;
        }
        match self.writer.remove_file(&from).await {
            Ok(done) => with_update(answer, Some(done.update)),
            Err(WriteError::NotFound(_)) => answer,
            Err(e) => {
                let status = error_status(&e, &Method::DELETE);
                let status = if status.is_server_error() { status } else { StatusCode::INTERNAL_SERVER_ERROR };
                text(status, format!("{path} was copied to {to} but could not be removed: {e}"))
            }
        }
    }
}

/// A file of this node moved or copied to another node.
struct Across<'a> {
    path: &'a DfsPath,
    /// The source, on this node's disk.
    from: DfsPath,
    /// The source's size in the tree (small files are read whole).
    size: u64,
    to: &'a DfsPath,
    /// The node that takes the destination.
    into: Forward,
    overwrite: bool,
    moving: bool,
}

/// The answer to `Overwrite: F` where something is.
fn already_there(to: &DfsPath) -> Response<Body> {
    text(StatusCode::PRECONDITION_FAILED, format!("{to} already exists (Overwrite: F)"))
}

/// The one node that holds all of directory `path`, for a move or a copy of it (or onto it).
fn one_holder(path: &DfsPath, local: Option<DfsPath>, others: Vec<Forward>, me: &str) -> Result<End, Refused> {
    match (local, others.as_slice()) {
        (Some(local), []) => Ok(End::Local(local)),
        (None, [one]) => Ok(End::Remote(one.clone())),
        (None, []) => Err(Refused::new(StatusCode::NOT_FOUND, format!("nothing of {path} is on node {me}"))),
        (local, others) => {
            let mut nodes: Vec<&str> = others.iter().map(|f| f.owner.as_str()).collect();
            if local.is_some() {
                nodes.push(me);
            }
            nodes.sort_unstable();
            let why = format!(
                "{path} is a directory spread over several nodes ({}): it can be moved, copied or replaced only \
                 where one node holds it all",
                nodes.join(", ")
            );
            Err(Refused::new(StatusCode::CONFLICT, why))
        }
    }
}

/// The status of a write error, as each [`WriteError`] documents it.
fn error_status(e: &WriteError, method: &Method) -> StatusCode {
    match e {
        WriteError::NotFound(_) => StatusCode::NOT_FOUND,
        WriteError::ParentMissing(_)
        | WriteError::IsADirectory(_)
        | WriteError::NotADirectory(_)
        | WriteError::NotEmpty(_) => StatusCode::CONFLICT,
        WriteError::Exists(_) if method == "MKCOL" => StatusCode::METHOD_NOT_ALLOWED,
        WriteError::Exists(_) | WriteError::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
        WriteError::BadOffset { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
        WriteError::NoSpace => StatusCode::INSUFFICIENT_STORAGE,
        WriteError::Refused(_) => StatusCode::FORBIDDEN,
        WriteError::BadName { path, .. } if path.is_root() => StatusCode::FORBIDDEN,
        WriteError::BadName { .. } | WriteError::Body { .. } => StatusCode::BAD_REQUEST,
        WriteError::ReadOnly => StatusCode::METHOD_NOT_ALLOWED,
        WriteError::Incomplete { .. } | WriteError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The answer to a write of this node that failed.
fn write_error(e: &WriteError, method: &Method) -> Response<Body> {
    let status = error_status(e, method);
    if status.is_server_error() {
        tracing::warn!("{method}: {e}");
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        return method_not_allowed(FS_METHODS, &e.to_string());
    }
    let mut r = text(status, e.to_string());
    if let WriteError::BadOffset { size, .. } = e {
        // Where a resumed upload can go on from.
        if let Ok(v) = HeaderValue::try_from(format!("bytes */{size}")) {
            r.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    r
}

/// `201` with a short text for something new at `path`, `204` for something replaced.
fn created_or_replaced(path: &DfsPath, created: bool) -> Response<Body> {
    if created {
        text(StatusCode::CREATED, format!("created {path}"))
    } else {
        no_content()
    }
}

/// The answer to a write of this node, naming the update that carries the change
/// ([`UPDATE_HEADER`]): a node that passed the write on waits for it before it answers.
fn with_update(mut r: Response<Body>, update: Option<StreamPos>) -> Response<Body> {
    if let Some(pos) = update {
        r.headers_mut().insert(UPDATE_HEADER, update_header_value(pos));
    }
    r
}

fn stored_answer(path: &DfsPath, stored: &Stored) -> Response<Body> {
    let mut r = with_update(created_or_replaced(path, stored.created), Some(stored.update));
    if let Some(tag) = stored.etag.as_deref().and_then(|t| HeaderValue::try_from(t).ok()) {
        r.headers_mut().insert(header::ETAG, tag);
    }
    r
}

/// The answer to a removal or a new directory of this node.
fn done_answer(path: &DfsPath, done: Result<Done, WriteError>, method: &Method) -> Response<Body> {
    match done {
        Ok(done) if method == "MKCOL" => with_update(created_or_replaced(path, true), Some(done.update)),
        Ok(done) => with_update(no_content(), Some(done.update)),
        Err(e) => write_error(&e, method),
    }
}

/// The answer of the node a write was passed on to, as the client gets it. `failed` tells
/// whether the client's own body failed, when the forward did: the client's fault, not the
/// other node's.
fn passed_back(
    answer: Result<Fetched, String>,
    to: &Forward,
    path: &DfsPath,
    failed: Option<&OnceLock<String>>,
) -> Response<Body> {
    match answer {
        Ok(fetched) if not_taken(fetched.status) => {
            text(StatusCode::BAD_GATEWAY, not_taken_reason(&to.owner, fetched.status))
        }
        Ok(fetched) => pass_back(fetched),
        Err(e) => {
            if let Some(why) = failed.and_then(OnceLock::get) {
                return text(StatusCode::BAD_REQUEST, format!("the upload of {path} did not complete: {why}"));
            }
            tracing::warn!("passing a write of {path} on to {}: {e}", to.owner);
            text(StatusCode::BAD_GATEWAY, format!("the node that takes {path} (node {}) did not answer", to.owner))
        }
    }
}

/// Another node's answer, passed back: its status, the headers that matter, its body. Its
/// [`UPDATE_HEADER`] and [`UPDATE_OF_HEADER`] are not: they are for the node that talked to
/// it, which has waited for them.
fn pass_back(fetched: Fetched) -> Response<Body> {
    let mut resp = Response::builder().status(fetched.status);
    for name in &PASSED_BACK {
        if let Some(v) = fetched.headers.get(name) {
            resp = resp.header(name, v);
        }
    }
    resp = resp.header("x-content-type-options", "nosniff");
    let body = fetched.into_body(None);
    resp.body(body).unwrap_or_else(|_| text(StatusCode::BAD_GATEWAY, "a bad answer from another node"))
}

/// The first [`REASON_MAX`] bytes of another node's answer, as one line of text.
async fn reason_of(fetched: Fetched) -> String {
    let mut body = fetched.into_body(None);
    let mut got = Vec::new();
    while got.len() < REASON_MAX {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    got.extend_from_slice(&data);
                }
            }
            _ => break,
        }
    }
    got.truncate(REASON_MAX);
    String::from_utf8_lossy(&got).split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The request's body as the write layer takes it, and where its failure is noted: a client
/// that goes away, sends less than it announced, or sends its body slower than `pace` allows
/// (`--body-min-rate`, and nothing for a minute): its upload fails and changes nothing, rather
/// than keep a temporary file and the path's lock for as long as it likes.
fn client_body(incoming: Incoming, pace: Pace) -> (Body, Arc<OnceLock<String>>) {
    let failed = Arc::new(OnceLock::new());
    let noted = failed.clone();
    let started = tokio::time::Instant::now();
    let frames = futures_util::stream::unfold(Some((incoming, 0u64)), move |state| {
        let noted = noted.clone();
        async move {
            let (mut body, received) = state?;
            let why = match next_paced(&mut body, &pace, started, received).await {
                Ok(None) => return None,
                Ok(Some(Ok(frame))) => {
                    let len = frame.data_ref().map_or(0, |d| d.len() as u64);
                    return Some((Ok(frame), Some((body, received + len))));
                }
                Ok(Some(Err(e))) => format!("the client's body failed: {e}"),
                Err(TooSlow(why)) => why,
            };
            let _ = noted.set(why.clone());
            Some((Err(BoxError::from(why)), None))
        }
    });
    (StreamBody::new(frames).boxed_unsync(), failed)
}

/// `Content-Length`, when the client sent one.
fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.trim().parse().ok())
}

/// Whether the request has a body.
fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING) || content_length(headers).is_some_and(|n| n > 0)
}

/// `If-Match` and `If-None-Match`, as the write layer checks them.
fn precondition(headers: &HeaderMap) -> Precondition {
    let value = |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    Precondition::from_http(value(header::IF_MATCH), value(header::IF_NONE_MATCH))
}

/// `Overwrite: T` (the default) or `F` ([`dftp_core::request::overwrite`]).
fn overwrite(headers: &HeaderMap) -> Result<bool, Refused> {
    dftp_core::request::overwrite(headers.get("overwrite").map(HeaderValue::as_bytes))
        .map_err(|why| Refused::new(StatusCode::BAD_REQUEST, why))
}

/// Where a `PATCH` puts its body: `X-Update-Range` ([`dftp_core::request::update_range`]).
fn patch_mode(headers: &HeaderMap) -> Result<WriteMode, Refused> {
    match dftp_core::request::update_range(headers.get("x-update-range").map(HeaderValue::as_bytes)) {
        Ok(UpdateRange::Append) => Ok(WriteMode::Append),
        Ok(UpdateRange::At(offset)) => Ok(WriteMode::At(offset)),
        Err(why) => Err(Refused::new(StatusCode::BAD_REQUEST, why)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn patch_ranges() {
        let mode = |v| patch_mode(&headers(&[("x-update-range", v)])).map_err(|r| r.status);
        assert_eq!(mode("append"), Ok(WriteMode::Append));
        assert_eq!(mode(" Append "), Ok(WriteMode::Append));
        assert_eq!(mode("bytes=0-"), Ok(WriteMode::At(0)));
        assert_eq!(mode("bytes=1048576-"), Ok(WriteMode::At(1 << 20)));
        for bad in ["bytes=5-9", "bytes=-5", "bytes=x-", "bytes=-", "5-", "prepend", "bytes=18446744073709551616-"] {
            assert_eq!(mode(bad), Err(StatusCode::BAD_REQUEST), "{bad}");
        }
        assert_eq!(patch_mode(&HeaderMap::new()).map_err(|r| r.status), Err(StatusCode::BAD_REQUEST));
    }

    #[test]
    fn overwrite_and_bodies() {
        let ow = |h: &[(&'static str, &'static str)]| overwrite(&headers(h)).map_err(|r| r.status);
        assert_eq!(ow(&[]), Ok(true));
        assert_eq!(ow(&[("overwrite", "T")]), Ok(true));
        assert_eq!(ow(&[("overwrite", "F")]), Ok(false));
        assert_eq!(ow(&[("overwrite", "no")]), Err(StatusCode::BAD_REQUEST));
        assert!(!has_body(&headers(&[("content-length", "0")])));
        assert!(has_body(&headers(&[("content-length", "3")])));
        assert!(has_body(&headers(&[("transfer-encoding", "chunked")])));
        assert!(!has_body(&HeaderMap::new()));
        assert_eq!(content_length(&headers(&[("content-length", "12")])), Some(12));
        assert_eq!(content_length(&headers(&[("content-length", "x")])), None);
    }

    #[test]
    fn statuses_of_write_errors() {
        let p = DfsPath::parse("a/b").unwrap();
        let cases = [
            (WriteError::NotFound(p.clone()), "DELETE", 404),
            (WriteError::ParentMissing(p.clone()), "PUT", 409),
            (WriteError::IsADirectory(p.clone()), "PUT", 409),
            (WriteError::Exists(p.clone()), "MKCOL", 405),
            (WriteError::Exists(p.clone()), "MOVE", 412),
            (WriteError::PreconditionFailed { path: p.clone(), why: "x" }, "PUT", 412),
            (WriteError::BadOffset { path: p.clone(), size: 3 }, "PATCH", 416),
            (WriteError::NoSpace, "PUT", 507),
            (WriteError::Refused(p.clone()), "PUT", 403),
            (WriteError::BadName { path: p.clone(), why: "reserved" }, "PUT", 400),
            (WriteError::BadName { path: DfsPath::root(), why: "root" }, "DELETE", 403),
            (WriteError::Body { path: p.clone(), why: "gone".into() }, "PUT", 400),
            (WriteError::ReadOnly, "PUT", 405),
        ];
        for (e, method, want) in cases {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let r = write_error(&e, &method);
            assert_eq!(r.status().as_u16(), want, "{e}");
            if want == 405 {
                assert_eq!(r.headers().get(header::ALLOW).unwrap(), FS_METHODS);
            }
            if want == 416 {
                assert_eq!(r.headers().get(header::CONTENT_RANGE).unwrap(), "bytes */3");
            }
        }
    }
}
