//! WebDAV on `/fs/` (RFC 4918, classes 1 and 2): `OPTIONS`, `PROPFIND`, `PROPPATCH`, `LOCK`
//! and `UNLOCK` here; the write methods stay in `write.rs`, with the `If` header and the locks
//! checked here first ([`Public::dav_check`]); `GET` and `HEAD` stay on `files.rs`'s path.
//! Every decision (what a body asks, whether `If` holds, whether a lock is in the way, what a
//! property says) is `dftp_core::dav`'s; this reads requests and writes answers.
//!
//! - `PROPFIND` answers from the merged tree on this node: entries of every owner, with the
//!   `ETag` `GET` sends ([`dftp_core::http_file::etag`]). `Depth: infinity` (the default) is
//!   refused with `403` and `propfind-finite-depth`: a whole tree in one answer is work without
//!   a bound, and every client walks it one level at a time.
//! - Locks and dead properties are this node's, in memory ([`dftp_core::dav::locks`],
//!   [`dftp_core::dav::props`]): a client mounts one address, and its locks and properties are
//!   seen through that node. The `If` header is not passed on with a write to its owner.
//! - Request bodies are read up to [`MAX_BODY`] (`413` past it) and parsed without panics
//!   (fuzzed: `fuzz/fuzz_targets/dav_body.rs`, `dav_if.rs`).

use std::sync::Mutex;

use dftp_core::dav::if_header::{IfHeader, State};
use dftp_core::dav::locks::{self, Change, Lock, Locks};
use dftp_core::dav::props::{self, DeadProps, Resource, MULTISTATUS_END, MULTISTATUS_START};
use dftp_core::dav::request::{self, Depth};
use dftp_core::dav::xml::escape;
use dftp_core::{DfsPath, Entry, Need, Time};
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use hyper::body::Incoming;

use super::guard::{Cleared, Destination};
use super::{files, fs_path, Public, Query};
use crate::body::Body;
use crate::content::encode_path;
use crate::respond::{text, with_type};

/// The largest request body of `PROPFIND`, `PROPPATCH` and `LOCK`.
pub const MAX_BODY: usize = 1 << 20;

/// What WebDAV keeps on this node.
#[derive(Default)]
pub struct DavState {
    locks: Mutex<Locks>,
    dead: Mutex<DeadProps>,
}

/// An answer that refuses a request before anything is done (boxed: it travels in `Err`).
pub(super) type Refused = Box<Response<Body>>;

fn refused(r: Response<Body>) -> Refused {
    Box::new(r)
}

/// The URL path of `path` (a collection's ends with `/`).
fn href(path: &DfsPath, dir: bool) -> String {
    if path.is_root() {
        return "/fs/".into();
    }
    format!("/fs/{}{}", encode_path(path), if dir { "/" } else { "" })
}

fn lock_root_href(path: &DfsPath) -> String {
    href(path, false)
}

/// A multistatus or other XML answer.
fn xml(status: StatusCode, body: String) -> Response<Body> {
    with_type(status, "application/xml; charset=utf-8", body)
}

/// An error answer with a precondition element of RFC 4918 (section 16).
fn condition(status: StatusCode, element: &str) -> Response<Body> {
    xml(status, format!("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:error xmlns:D=\"DAV:\">{element}</D:error>\n"))
}

/// `423` naming the lock in the way.
fn locked(root: &DfsPath) -> Response<Body> {
    condition(
        StatusCode::LOCKED,
        &format!("<D:lock-token-submitted><D:href>{}</D:href></D:lock-token-submitted>", escape(&lock_root_href(root))),
    )
}

/// The tree path a URL names (an absolute URL or a path, under `/fs/`), for `If`'s tags.
fn path_of_url(url: &str) -> Option<DfsPath> {
    let uri: Uri = url.parse().ok()?;
    let raw = uri.path().strip_prefix("/fs").filter(|r| r.starts_with('/'))?;
    fs_path(raw).ok()
}

/// A new lock token: a random UUID (version 4) as a URN.
fn new_token() -> Option<String> {
    let mut b = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).ok()?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Some(format!("urn:uuid:{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]))
}

/// What `PROPFIND` says of `entry` (the root when `None`).
struct Described {
    path: DfsPath,
    href: String,
    name: String,
    dir: bool,
    size: u64,
    modified: Option<i64>,
    content_type: Option<&'static str>,
    etag: Option<String>,
}

impl Described {
    fn of(path: &DfsPath, entry: Option<&Entry>) -> Described {
        let dir = entry.is_none_or(Entry::is_dir);
        let meta = entry.and_then(|e| e.meta);
        let name = path.name().to_owned();
        Described {
            path: path.clone(),
            href: href(path, dir),
            content_type: (!dir).then(|| files::content_type(&name)),
            name,
            dir,
            size: entry.map_or(0, Entry::size),
            modified: meta.map(|m| m.modified),
            etag: if dir { None } else { meta.and_then(|m| dftp_core::http_file::etag(m.size, m.modified)) },
        }
    }

    fn resource(&self) -> Resource<'_> {
        Resource {
            href: &self.href,
            name: &self.name,
            dir: self.dir,
            size: self.size,
            modified: self.modified,
            content_type: self.content_type,
            etag: self.etag.as_deref(),
        }
    }
}

impl Public {
    /// `OPTIONS`: what `/fs/` answers, and that it speaks WebDAV.
    pub(super) fn options(&self) -> Response<Body> {
        let mut r = Response::new(crate::body::full_body(bytes::Bytes::new()));
        let h = r.headers_mut();
        h.insert(header::ALLOW, HeaderValue::from_static(super::write::FS_METHODS));
        h.insert("dav", HeaderValue::from_static("1, 2"));
        // Windows' WebDAV client looks for it before it offers to write.
        h.insert("ms-author-via", HeaderValue::from_static("DAV"));
        r
    }

    fn now(&self) -> Time {
        self.handle.now()
    }

    /// Reads a request body of at most [`MAX_BODY`].
    async fn dav_body(req: Request<Incoming>) -> Result<bytes::Bytes, Response<Body>> {
        crate::mgmt::read_body(req, MAX_BODY).await
    }

    /// The state of `path` that `If` conditions test: its `ETag` and the tokens of its locks.
    fn state_of(&self, path: Option<DfsPath>, locks: &Locks, now: Time) -> State {
        let Some(path) = path else { return State::default() };
        let snapshot = self.handle.snapshot();
        let etag = snapshot
            .lookup(&path)
            .filter(|e| !e.is_dir())
            .and_then(|e| e.meta)
            .and_then(|m| dftp_core::http_file::etag(m.size, m.modified));
        let tokens = locks.covering(&path, now).into_iter().map(|l| l.token.clone()).collect();
        State { etag, tokens }
    }

    /// The `If` header of `req`, if any, checked against `path`: `Err` is the answer (`400` for
    /// a bad header, `412` when it does not hold).
    fn if_header(
        &self,
        headers: &HeaderMap,
        path: &DfsPath,
        locks: &Locks,
        now: Time,
    ) -> Result<Option<IfHeader>, Refused> {
        let Some(value) = headers.get("if") else { return Ok(None) };
        let value = value.to_str().map_err(|_| refused(text(StatusCode::BAD_REQUEST, "bad If header: not ASCII")))?;
        let h = IfHeader::parse(value)
            .map_err(|e| refused(text(StatusCode::BAD_REQUEST, format!("bad If header: {e}"))))?;
        let holds = h.holds(|tag| match tag {
            None => self.state_of(Some(path.clone()), locks, now),
            Some(url) => self.state_of(path_of_url(url), locks, now),
        });
        if !holds {
            return Err(refused(text(StatusCode::PRECONDITION_FAILED, "the If header's conditions do not hold")));
        }
        Ok(Some(h))
    }

    /// Before a change: the `If` header holds, and the client submitted the token of every lock
    /// the change touches (`423` naming the first that is missing).
    pub(super) fn dav_check(&self, req: &Request<Incoming>, path: &DfsPath, cleared: &Cleared) -> Result<(), Refused> {
        let now = self.now();
        let locks = self.dav.locks.lock().unwrap_or_else(|e| e.into_inner());
        let h = self.if_header(req.headers(), path, &locks, now)?;
        let submitted: Vec<&str> = h.as_ref().map(|h| h.tokens().collect()).unwrap_or_default();
        let who = cleared.who.user();
        let exists = || self.handle.snapshot().lookup(path).is_some() || path.is_root();
        let mut touched = Vec::new();
        match req.method().as_str() {
            "PUT" | "PATCH" | "PROPPATCH" if exists() => touched.push((path.clone(), Change::Content)),
            "MOVE" | "COPY" => {
                if req.method() == "MOVE" {
                    touched.push((path.clone(), Change::Membership));
                }
                if let Ok(dest) = Destination::of(req.method(), req.headers()) {
                    touched.push((dest.path, Change::Membership));
                }
            }
            _ => touched.push((path.clone(), Change::Membership)),
        }
        for (at, change) in touched {
            if let Err(locks::Refusal::Locked(root)) = locks.check(&at, change, &submitted, who, now) {
                return Err(refused(locked(&root)));
            }
        }
        Ok(())
    }

    /// After a change went through: locks and dead properties of what is gone go with it.
    pub(super) fn dav_after(&self, method: &Method, headers: &HeaderMap, path: &DfsPath, status: StatusCode) {
        if !status.is_success() {
            return;
        }
        let dest = || Destination::of(method, headers).ok().map(|d| d.path);
        match method.as_str() {
            "DELETE" => {
                self.dav.locks.lock().unwrap_or_else(|e| e.into_inner()).removed(path);
                self.dav.dead.lock().unwrap_or_else(|e| e.into_inner()).removed(path);
            }
            "MOVE" => {
                self.dav.locks.lock().unwrap_or_else(|e| e.into_inner()).removed(path);
                if let Some(to) = dest() {
                    self.dav.dead.lock().unwrap_or_else(|e| e.into_inner()).moved(path, &to);
                }
            }
            "COPY" => {
                if let Some(to) = dest() {
                    self.dav.dead.lock().unwrap_or_else(|e| e.into_inner()).copied(path, &to);
                }
            }
            _ => {}
        }
    }

    /// `PROPFIND` of `path` with `Depth` 0 or 1, from the merged tree.
    pub(super) async fn propfind(&self, req: Request<Incoming>, path: &DfsPath, cleared: &Cleared) -> Response<Body> {
        let depth = match Depth::parse(req.headers().get("depth").and_then(|v| v.to_str().ok()), Depth::Infinity) {
            Ok(Depth::Infinity) => return condition(StatusCode::FORBIDDEN, "<D:propfind-finite-depth/>"),
            Ok(d) => d,
            Err(e) => return text(StatusCode::BAD_REQUEST, e),
        };
        let body = match Self::dav_body(req).await {
            Ok(b) => b,
            Err(r) => return r,
        };
        let ask = match request::propfind(&body) {
            Ok(ask) => ask,
            Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
        };
        let snapshot = self.handle.snapshot();
        let entry = if path.is_root() { None } else { snapshot.lookup(path) };
        if entry.is_none() && !path.is_root() {
            return text(StatusCode::NOT_FOUND, format!("not found: {path}"));
        }
        let dir = entry.as_ref().is_none_or(Entry::is_dir);
        if cleared.listing_only() && !dir {
            return cleared.refusal(path, Need::Read).into_response();
        }
        let mut described = vec![Described::of(path, entry.as_ref())];
        if dir && depth == Depth::One {
            let mut children = snapshot.list(path).unwrap_or_default();
            if !cleared.reads_all_below(path) {
                children.retain(|c| cleared.shows(&c.path));
            }
            described.extend(children.iter().map(|c| Described::of(&c.path, Some(c))));
        }
        let now = self.now();
        let locks = self.dav.locks.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let dead = self.dav.dead.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let produce = move |emit: &mut dyn FnMut(Vec<u8>) -> bool| {
            let mut out = String::from(MULTISTATUS_START);
            for d in &described {
                let covering = if locks.is_empty() { Vec::new() } else { locks.covering(&d.path, now) };
                let dead = dead.of(&d.path);
                props::write_response(&mut out, &d.resource(), &ask, dead, &covering, now, &lock_root_href);
                if out.len() > 64 << 10 && !emit(std::mem::take(&mut out).into_bytes()) {
                    return;
                }
            }
            out.push_str(MULTISTATUS_END);
            emit(out.into_bytes());
        };
        let mut r = Response::new(self.handle.blocking().stream_body(produce));
        *r.status_mut() = StatusCode::MULTI_STATUS;
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml; charset=utf-8"));
        r
    }

    /// `PROPPATCH`: dead properties set or removed, all or none; live ones are refused (`403`).
    pub(super) async fn proppatch(&self, req: Request<Incoming>, path: &DfsPath, cleared: &Cleared) -> Response<Body> {
        if let Err(r) = self.dav_check(&req, path, cleared) {
            return *r;
        }
        let body = match Self::dav_body(req).await {
            Ok(b) => b,
            Err(r) => return r,
        };
        let ops = match request::proppatch(&body) {
            Ok(ops) => ops,
            Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
        };
        let snapshot = self.handle.snapshot();
        let entry = snapshot.lookup(path);
        if entry.is_none() && !path.is_root() {
            return text(StatusCode::NOT_FOUND, format!("not found: {path}"));
        }
        let statuses = self.dav.dead.lock().unwrap_or_else(|e| e.into_inner()).patch(path, &ops);
        let dir = entry.as_ref().is_none_or(Entry::is_dir);
        let mut out = format!("{MULTISTATUS_START}<D:response><D:href>{}</D:href>", escape(&href(path, dir)));
        for (name, status) in statuses {
            let mut prop = String::new();
            name.write_empty(&mut prop);
            let reason = StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("");
            out.push_str(&format!(
                "<D:propstat><D:prop>{prop}</D:prop><D:status>HTTP/1.1 {status} {reason}</D:status></D:propstat>"
            ));
        }
        out.push_str("</D:response>");
        out.push_str(MULTISTATUS_END);
        xml(StatusCode::MULTI_STATUS, out)
    }

    /// `LOCK`: a new write lock (creating an empty file where nothing is), or the refresh of
    /// one (no body, its token in `If`).
    pub(super) async fn lock(
        &self,
        req: Request<Incoming>,
        path: &DfsPath,
        query: &Query,
        cleared: &Cleared,
    ) -> Response<Body> {
        let headers = req.headers().clone();
        let timeout = request::lock_timeout(headers.get("timeout").and_then(|v| v.to_str().ok()));
        let depth = match Depth::parse(headers.get("depth").and_then(|v| v.to_str().ok()), Depth::Infinity) {
            Ok(Depth::One) => return text(StatusCode::BAD_REQUEST, "a lock has Depth 0 or infinity"),
            Ok(d) => d,
            Err(e) => return text(StatusCode::BAD_REQUEST, e),
        };
        let body = match Self::dav_body(req).await {
            Ok(b) => b,
            Err(r) => return r,
        };
        let info = match request::lockinfo(&body) {
            Ok(info) => info,
            Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
        };
        let who = cleared.who.user();
        let now = self.now();
        let Some(info) = info else {
            // A refresh.
            let mut locks = self.dav.locks.lock().unwrap_or_else(|e| e.into_inner());
            let h = match self.if_header(&headers, path, &locks, now) {
                Ok(h) => h,
                Err(r) => return *r,
            };
            let submitted: Vec<&str> = h.as_ref().map(|h| h.tokens().collect()).unwrap_or_default();
            return match locks.refresh(path, submitted, who, timeout, now) {
                Ok(l) => lock_answer(StatusCode::OK, l, now, false),
                Err(locks::Refusal::NotTheOwner) => text(StatusCode::FORBIDDEN, "the lock is another user's"),
                Err(locks::Refusal::NoToken) => {
                    text(StatusCode::BAD_REQUEST, "a LOCK without a body refreshes the lock whose token is in If")
                }
                Err(_) => condition(StatusCode::PRECONDITION_FAILED, "<D:lock-token-matches-request-uri/>"),
            };
        };
        let exists = path.is_root() || self.handle.snapshot().lookup(path).is_some();
        let Some(token) = new_token() else {
            return text(StatusCode::INTERNAL_SERVER_ERROR, "no random numbers for a lock token");
        };
        let lock = Lock {
            token: token.clone(),
            root: path.clone(),
            infinite: false,
            scope: info.scope,
            owner: info.owner,
            principal: who.map(str::to_owned),
            timeout,
            expires: now,
        };
        {
            let mut locks = self.dav.locks.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(r) = self.if_header(&headers, path, &locks, now) {
                return *r;
            }
            match locks.acquire(lock, depth, now) {
                Ok(_) => {}
                Err(locks::Refusal::Locked(root)) => {
                    return condition(
                        StatusCode::LOCKED,
                        &format!(
                            "<D:no-conflicting-lock><D:href>{}</D:href></D:no-conflicting-lock>",
                            escape(&lock_root_href(&root))
                        ),
                    )
                }
                Err(_) => return text(StatusCode::SERVICE_UNAVAILABLE, "too many locks on this node"),
            }
        }
        if !exists {
            let created = self.create_empty(path, query.hops, &headers).await;
            if !created.status().is_success() {
                let _ = self.dav.locks.lock().unwrap_or_else(|e| e.into_inner()).release(path, &token, who, now);
                return created;
            }
        }
        let locks = self.dav.locks.lock().unwrap_or_else(|e| e.into_inner());
        match locks.covering(path, now).into_iter().find(|l| l.token == token) {
            Some(l) => lock_answer(if exists { StatusCode::OK } else { StatusCode::CREATED }, l, now, true),
            None => text(StatusCode::INTERNAL_SERVER_ERROR, "the new lock is gone"),
        }
    }

    /// `UNLOCK` with the `Lock-Token` header.
    pub(super) fn unlock(&self, req: &Request<Incoming>, path: &DfsPath, cleared: &Cleared) -> Response<Body> {
        let token = req
            .headers()
            .get("lock-token")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .and_then(|v| v.strip_prefix('<')?.strip_suffix('>'));
        let Some(token) = token else {
            return text(StatusCode::BAD_REQUEST, "UNLOCK needs a Lock-Token header: <token>");
        };
        let mut locks = self.dav.locks.lock().unwrap_or_else(|e| e.into_inner());
        match locks.release(path, token, cleared.who.user(), self.now()) {
            Ok(()) => crate::respond::no_content(),
            Err(locks::Refusal::NotTheOwner) => text(StatusCode::FORBIDDEN, "the lock is another user's"),
            Err(_) => condition(StatusCode::CONFLICT, "<D:lock-token-matches-request-uri/>"),
        }
    }
}

/// The answer to a `LOCK`: the lock in `lockdiscovery`, and a new lock's token in `Lock-Token`.
fn lock_answer(status: StatusCode, l: &Lock, now: Time, new: bool) -> Response<Body> {
    let mut body =
        String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:prop xmlns:D=\"DAV:\"><D:lockdiscovery>");
    props::write_activelock(&mut body, l, now, &lock_root_href);
    body.push_str("</D:lockdiscovery></D:prop>\n");
    let mut r = xml(status, body);
    if new {
        if let Ok(v) = HeaderValue::try_from(format!("<{}>", l.token)) {
            r.headers_mut().insert("lock-token", v);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_of_if_tags_and_tokens() {
        let p = |s: &str| DfsPath::parse(s).unwrap();
        assert_eq!(path_of_url("http://h:1/fs/a%20b/c"), Some(p("a b/c")));
        assert_eq!(path_of_url("/fs/a/"), Some(p("a")));
        assert_eq!(path_of_url("/fs/"), Some(DfsPath::root()));
        for bad in ["/elsewhere/a", "/fs/../x", "not a url", "/fsx/a"] {
            assert_eq!(path_of_url(bad), None, "{bad}");
        }
        assert_eq!(href(&p("a b/c"), true), "/fs/a%20b/c/");
        assert_eq!(href(&DfsPath::root(), true), "/fs/");
        let (t1, t2) = (new_token().unwrap(), new_token().unwrap());
        assert_ne!(t1, t2);
        assert_eq!(t1.len(), "urn:uuid:".len() + 36);
        assert_eq!(&t1[9 + 14..9 + 15], "4", "a version 4 UUID: {t1}");
    }
}
