//! The one access check of the public HTTP interface, made in [`super::Public::route`] before
//! anything else looks at the request (as dufs does): who the client is (anonymous, or HTTP
//! Basic credentials checked by [`Accounts`]), what the request needs where, and the rules'
//! answer ([`dftp_core::Rules::decide`]). A request that passes goes on unchanged, with what its
//! client may see ([`Cleared`]).
//!
//! What a method needs follows from the method alone: `GET`, `HEAD`, `OPTIONS` and `PROPFIND`
//! read; `COPY` reads its source; `PUT`, `DELETE`, `MKCOL`, `PATCH`, `MOVE`, WebDAV's
//! `PROPPATCH`, `LOCK` and `UNLOCK`, and any method not named here change the tree; `MOVE` and `COPY` also change their `Destination`. Refused:
//! `401` with a Basic challenge for an anonymous client (a login might help), `403` for a
//! logged-in one, or for a change where there are no accounts at all.
//!
//! A client that may read only part of the tree sees only that part: a directory on the way to
//! a granted path lists only the entries that lead to something readable, and `/find/` lists
//! only readable paths. Other paths are refused before they are looked up, so a refusal says
//! nothing about whether a path exists.
//!
//! A request passed on to the node that owns a file keeps its `Authorization` (`peers.rs`), and
//! that node's guard checks it again against its own rules.

use std::sync::Arc;

use dftp_core::access::Visibility;
use dftp_core::{Credentials, Decision, DfsPath, Need, Who};
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};

use super::fs_path;
use crate::accounts::Accounts;
use crate::body::Body;
use crate::respond::text;

/// The challenge of a `401`.
pub const CHALLENGE: &str = "Basic realm=\"dftp\"";

/// The guard's own answer to a request it does not let through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    status: StatusCode,
    reason: String,
}

impl Refusal {
    fn new(status: StatusCode, reason: impl Into<String>) -> Refusal {
        Refusal { status, reason: reason.into() }
    }

    /// `400`: a path or header the request cannot mean anything with.
    fn bad(reason: impl Into<String>) -> Refusal {
        Refusal::new(StatusCode::BAD_REQUEST, reason)
    }

    /// `401` with the Basic challenge.
    fn challenge(reason: impl Into<String>) -> Refusal {
        Refusal::new(StatusCode::UNAUTHORIZED, reason)
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The response: the reason in plain text, and a `401`'s challenge.
    pub fn into_response(self) -> Response<Body> {
        let mut r = text(self.status, self.reason);
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(CHALLENGE));
        }
        r
    }
}

/// The access check of the public interface.
pub struct Guard {
    accounts: Arc<Accounts>,
}

/// A request the guard let through, and what its client may see.
pub struct Cleared {
    accounts: Arc<Accounts>,
    pub who: Who,
    /// The path may be listed (a directory on the way to a grant) but not read as a file.
    listing_only: bool,
    /// The tree path a `/fs/` request names, decoded and checked once, here.
    fs_path: Option<DfsPath>,
}

/// Which paths `/find/` shows a client.
pub type PathFilter = Arc<dyn Fn(&DfsPath) -> bool + Send + Sync>;

impl Cleared {
    /// The tree path of a request for `/fs/…` (and only of such a request).
    pub fn fs_path(&self) -> Option<&DfsPath> {
        self.fs_path.as_ref()
    }

    /// Whether the path the request named may only be listed, not read (a request for a file
    /// there is refused with [`Cleared::refusal`]).
    pub fn listing_only(&self) -> bool {
        self.listing_only
    }

    /// Whether everything below `dir` is readable: its listing needs no filter.
    pub fn reads_all_below(&self, dir: &DfsPath) -> bool {
        self.accounts.rules().visibility(&self.who, dir) == Visibility::Readable
    }

    /// Whether a listing shows `path`: readable, or on the way to something readable.
    pub fn shows(&self, path: &DfsPath) -> bool {
        self.accounts.rules().visibility(&self.who, path) != Visibility::Hidden
    }

    /// The paths `/find/` may list for this client: only readable ones. `None`: all of them.
    pub fn find_filter(&self) -> Option<PathFilter> {
        if !self.accounts.rules().has_accounts() {
            return None;
        }
        let (accounts, who) = (self.accounts.clone(), self.who.clone());
        Some(Arc::new(move |p: &DfsPath| accounts.rules().access(&who, p).is_some()))
    }

    /// The answer to this client for `need` at `path`, which the rules refuse.
    pub fn refusal(&self, path: &DfsPath, need: Need) -> Refusal {
        let decision = self.accounts.rules().decide(&self.who, path, need);
        refusal(&self.accounts, decision, &self.who, path, need)
    }
}

impl Guard {
    pub fn new(accounts: Arc<Accounts>) -> Guard {
        Guard { accounts }
    }

    fn cleared(&self, who: Who, listing_only: bool, fs_path: Option<DfsPath>) -> Cleared {
        Cleared { accounts: self.accounts.clone(), who, listing_only, fs_path }
    }

    /// Lets `req` through, or answers it.
    pub async fn check<B>(&self, req: &Request<B>) -> Result<Cleared, Refusal> {
        let url_path = req.uri().path();
        let raw = match url_path.strip_prefix("/fs") {
            Some(raw) if raw.starts_with('/') => Some(raw),
            // `/status/` names the nodes and their addresses: no more open than the tree.
            _ if matches!(url_path, "/find/" | "/find" | "/status/" | "/status") => None,
            // The greeting, the redirect of `/fs`, and 404s: nothing of the tree.
            _ => return Ok(self.cleared(Who::anonymous(), false, None)),
        };
        let who = self.identify(req.headers()).await?;
        let rules = self.accounts.rules();
        let Some(raw) = raw else {
            // `/find/`: only what the client may read. Anonymous clients that may read nothing
            // are asked to log in (to `/status/` too).
            if rules.visibility(&who, &DfsPath::root()) == Visibility::Hidden {
                return Err(Refusal::challenge("the tree needs a login (HTTP Basic)"));
            }
            return Ok(self.cleared(who, false, None));
        };
        let path = fs_path(raw).map_err(Refusal::bad)?;
        // A file manager walks (PROPFIND) to a granted directory as a browser does (GET).
        let lists = matches!(req.method().as_str(), "GET" | "HEAD" | "PROPFIND");
        let mut listing_only = false;
        for (at, need) in needs(req.method(), req.headers(), &path)? {
            match rules.decide(&who, &at, need) {
                Decision::Allow => {}
                // A directory on the way to a grant may be listed, showing only what leads on.
                _ if lists && at == path && rules.visibility(&who, &at) == Visibility::Passage => listing_only = true,
                refused => return Err(refusal(&self.accounts, refused, &who, &at, need)),
            }
        }
        Ok(self.cleared(who, listing_only, Some(path)))
    }

    /// The client: anonymous without `Authorization` (or where there are no accounts, so that
    /// credentials mean nothing), else the user its Basic credentials log in.
    async fn identify(&self, headers: &HeaderMap) -> Result<Who, Refusal> {
        if !self.accounts.rules().has_accounts() {
            return Ok(Who::anonymous());
        }
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Ok(Who::anonymous());
        };
        let creds = Credentials::from_basic(value.as_bytes()).map_err(|e| Refusal::challenge(e.to_string()))?;
        self.accounts.login(&creds).await.map_err(|refused| Refusal::challenge(refused.to_string()))
    }
}

/// What `method` needs: at `path`, and for `MOVE` and `COPY` at their `Destination` too.
fn needs(method: &Method, headers: &HeaderMap, path: &DfsPath) -> Result<Vec<(DfsPath, Need)>, Refusal> {
    let at_source = match method.as_str() {
        "GET" | "HEAD" | "OPTIONS" | "PROPFIND" | "COPY" => Need::Read,
        // PUT, DELETE, MKCOL, PATCH, MOVE; and any other method, so that a method added later
        // is never open by accident.
        _ => Need::Write,
    };
    let mut needs = vec![(path.clone(), at_source)];
    if matches!(method.as_str(), "MOVE" | "COPY") {
        needs.push((Destination::of(method, headers)?.path, Need::Write));
    }
    Ok(needs)
}

/// The `Destination` header of `MOVE` and `COPY`: an absolute URL or an absolute path, under
/// `/fs/`. Read here for the guard and again by the write methods, so that both read the same.
pub struct Destination {
    /// The tree path it names.
    pub path: DfsPath,
    /// The `host[:port]` of an absolute URL (`None` for a path).
    pub authority: Option<String>,
}

impl Destination {
    pub fn of(method: &Method, headers: &HeaderMap) -> Result<Destination, Refusal> {
        let bad = |why: &str| Refusal::bad(format!("bad Destination header: {why}"));
        let value =
            headers.get("destination").ok_or_else(|| Refusal::bad(format!("{method} needs a Destination header")))?;
        let uri: Uri = value.to_str().ok().and_then(|v| v.parse().ok()).ok_or_else(|| bad("not a URL"))?;
        let path = dftp_core::request::destination_path(uri.path()).map_err(|e| bad(&e))?;
        Ok(Destination { path, authority: uri.authority().map(|a| a.as_str().to_owned()) })
    }
}

fn refusal(accounts: &Accounts, decision: Decision, who: &Who, path: &DfsPath, need: Need) -> Refusal {
    let verb = match need {
        Need::Read => "read",
        Need::Write => "change",
    };
    match (decision, who.user()) {
        (Decision::Unauthenticated, _) => Refusal::challenge(format!("{path}: log in (HTTP Basic) to {verb} it")),
        _ if !accounts.rules().has_accounts() => {
            Refusal::new(StatusCode::FORBIDDEN, "this node accepts no changes: it has no accounts (see --auth)")
        }
        (_, Some(user)) => Refusal::new(StatusCode::FORBIDDEN, format!("user {user} may not {verb} {path}")),
        // Where there are accounts, anonymous clients are asked to log in.
        (_, None) => Refusal::challenge(format!("{path}: log in (HTTP Basic) to {verb} it")),
    }
}

#[cfg(test)]
mod tests {
    use dftp_core::{Rule, Rules, Secret};

    use super::*;
    use crate::blocking::Blocking;

    fn guard(rules: &[&str]) -> Guard {
        let rules = if rules.is_empty() {
            Rules::open()
        } else {
            Rules::new(rules.iter().map(|r| Rule::parse(r).unwrap())).unwrap()
        };
        Guard::new(Arc::new(Accounts::new(rules, Blocking::Inline)))
    }

    fn req(method: &str, uri: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    fn basic(user: &str, password: &str) -> String {
        Credentials::new(user, Secret::new(password)).to_basic()
    }

    /// The status of the guard's answer (200: let through), and its challenge.
    async fn status(g: &Guard, r: Request<()>) -> (u16, Option<String>) {
        match g.check(&r).await {
            Ok(_) => (200, None),
            Err(refusal) => {
                let resp = refusal.into_response();
                let challenge = resp.headers().get(header::WWW_AUTHENTICATE).map(|v| v.to_str().unwrap().to_owned());
                (resp.status().as_u16(), challenge)
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn methods_need_what_they_do() {
        let g = guard(&["@/pub", "alice:pw@/pub/alice:rw,/in:rw"]);
        let alice = basic("alice", "pw");
        let a = [("authorization", alice.as_str())];
        let challenge = Some(CHALLENGE.to_string());
        for (method, uri, headers, want) in [
            ("GET", "/fs/pub/x", &[][..], (200, None)),
            ("HEAD", "/fs/pub/x", &[], (200, None)),
            ("PROPFIND", "/fs/pub/", &[], (200, None)),
            ("PUT", "/fs/pub/x", &[], (401, challenge.clone())),
            ("GET", "/fs/in/x", &[], (401, challenge.clone())),
            ("PUT", "/fs/pub/alice/x", &a, (200, None)),
            ("PUT", "/fs/pub/x", &a, (403, None)),
            ("DELETE", "/fs/pub/alice/x", &a, (200, None)),
            ("MKCOL", "/fs/pub/alicex/", &a, (403, None)),
            ("PATCH", "/fs/in/x", &a, (200, None)),
            ("POST", "/fs/in/x", &a, (200, None)),
            ("POST", "/fs/pub/x", &a, (403, None)),
            ("FROB", "/fs/pub/x", &[], (401, challenge.clone())),
            // WebDAV: locks and properties are changes.
            ("LOCK", "/fs/pub/x", &[], (401, challenge.clone())),
            ("UNLOCK", "/fs/pub/x", &a, (403, None)),
            ("PROPPATCH", "/fs/pub/x", &a, (403, None)),
            ("LOCK", "/fs/pub/alice/x", &a, (200, None)),
            ("PROPPATCH", "/fs/in/x", &a, (200, None)),
            // The greeting and unknown paths are nobody's.
            ("GET", "/", &[], (200, None)),
            ("GET", "/nothing", &[], (200, None)),
            ("GET", "/fs", &[], (200, None)),
            // A bad path is refused here, as the route would.
            ("GET", "/fs/a/../b", &[], (400, None)),
        ] {
            assert_eq!(status(&g, req(method, uri, headers)).await, want, "{method} {uri} {headers:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn move_and_copy_need_their_destination() {
        let g = guard(&["alice:pw@/pub,/in:rw,/out:rw"]);
        let alice = basic("alice", "pw");
        for (method, from, to, want) in [
            ("COPY", "/fs/pub/a", Some("/fs/in/a"), 200),
            ("COPY", "/fs/pub/a", Some("http://node:7040/fs/in/a%20b"), 200),
            ("MOVE", "/fs/pub/a", Some("/fs/in/a"), 403), // moving takes it away from /pub
            ("MOVE", "/fs/in/a", Some("/fs/out/a"), 200),
            ("MOVE", "/fs/in/a", Some("/fs/pub/a"), 403),
            ("COPY", "/fs/in/a", Some("/fs/pub/a"), 403),
            ("COPY", "/fs/secret/a", Some("/fs/in/a"), 403),
            ("MOVE", "/fs/in/a", None, 400),
            ("MOVE", "/fs/in/a", Some("/elsewhere/a"), 400),
            ("MOVE", "/fs/in/a", Some("/fs/in/../../etc"), 400),
            ("COPY", "/fs/in/a", Some("not a url"), 400),
        ] {
            let mut headers = vec![("authorization", alice.as_str())];
            headers.extend(to.map(|t| ("destination", t)));
            assert_eq!(status(&g, req(method, from, &headers)).await.0, want, "{method} {from} -> {to:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn credentials() {
        let g = guard(&["@/pub", "alice:pw@/"]);
        let challenge = Some(CHALLENGE.to_string());
        for (auth, want) in [
            (basic("alice", "pw"), (200, None)),
            (basic("alice", "wrong"), (401, challenge.clone())),
            (basic("nobody", "pw"), (401, challenge.clone())),
            ("Bearer x".into(), (401, challenge.clone())),
            ("Basic !!!".into(), (401, challenge.clone())),
        ] {
            // Wrong credentials are refused even where anonymous clients may read.
            let got = status(&g, req("GET", "/fs/pub/x", &[("authorization", &auth)])).await;
            assert_eq!(got, want, "{auth}");
        }
        // Where there are no accounts, credentials mean nothing: everyone reads, nobody writes.
        let open = guard(&[]);
        let wrong = basic("x", "y");
        assert_eq!(status(&open, req("GET", "/fs/a", &[("authorization", &wrong)])).await, (200, None));
        assert_eq!(status(&open, req("PUT", "/fs/a", &[])).await, (403, None));
    }

    #[tokio::test(start_paused = true)]
    async fn partial_readers_list_the_way_and_find_what_they_read() {
        let g = guard(&["alice:pw@/home/alice:rw"]);
        let alice = basic("alice", "pw");
        let a = [("authorization", alice.as_str())];
        let home = g.check(&req("GET", "/fs/home/", &a)).await.expect("the way to a grant is listed");
        assert!(home.listing_only());
        assert!(home.shows(&DfsPath::parse("home/alice").unwrap()));
        assert!(!home.shows(&DfsPath::parse("home/bob").unwrap()));
        assert!(!home.reads_all_below(&DfsPath::parse("home").unwrap()));
        assert_eq!(home.refusal(&DfsPath::parse("home").unwrap(), Need::Read).status(), StatusCode::FORBIDDEN);
        let own = g.check(&req("GET", "/fs/home/alice/", &a)).await.unwrap();
        assert!(!own.listing_only() && own.reads_all_below(&DfsPath::parse("home/alice").unwrap()));
        // A file manager walks there as a browser does.
        let walked = g.check(&req("PROPFIND", "/fs/home/", &a)).await.expect("PROPFIND lists the way too");
        assert!(walked.listing_only());
        // Only reading lists the way: no change there.
        assert_eq!(status(&g, req("MKCOL", "/fs/home/x/", &a)).await.0, 403);
        let find = g.check(&req("GET", "/find/", &a)).await.unwrap();
        let filter = find.find_filter().expect("a filter where there are accounts");
        assert!(filter(&DfsPath::parse("home/alice/x").unwrap()));
        assert!(!filter(&DfsPath::parse("home").unwrap()) && !filter(&DfsPath::parse("home/bob").unwrap()));
        // Anonymous clients, who may read nothing here, are asked to log in.
        assert_eq!(status(&g, req("GET", "/find/", &[])).await.0, 401);
        assert_eq!(status(&g, req("GET", "/fs/", &[])).await.0, 401);
        assert!(guard(&[]).check(&req("GET", "/find/", &[])).await.unwrap().find_filter().is_none());
    }
}
