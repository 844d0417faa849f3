//! The public HTTP interface: `/`, `/fs/` (listings and files), `/find/`, `/status/`.

mod archive;
mod dav;
mod files;
mod find;
pub mod guard;
mod listing;
mod plain_owner;
mod serve_dir;
mod status;
mod walls;
mod write;

use std::net::SocketAddr;
use std::sync::Arc;

use dftp_core::request::{fs_path, Query};
use dftp_core::{DfsPath, ListingOrder, Location, Need};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::accounts::Accounts;
use crate::body::Body;
use crate::content::{Content, Writer};
use crate::driver::Handle;
use crate::respond::{method_not_allowed, redirect, text, with_type};
use crate::server::Handler;

/// What the public handlers share.
pub struct Public {
    handle: Handle,
    files: files::Files,
    /// Reads for the write methods: the source of a move or copy from one node to another.
    content: Content,
    guard: guard::Guard,
    /// Writes to this node's disk and writes passed on to their owners.
    writer: Writer,
    /// How slowly an upload's body may come (`--body-min-rate`).
    pace: dftp_core::pace::Pace,
    /// WebDAV's locks and dead properties.
    dav: dav::DavState,
}

impl Public {
    pub fn new(handle: Handle, content: Content, writer: Writer, accounts: Arc<Accounts>) -> Public {
        let files = files::Files::new(content.clone());
        let pace = dftp_core::pace::Pace::default();
        Public {
            handle,
            files,
            content,
            guard: guard::Guard::new(accounts),
            writer,
            pace,
            dav: dav::DavState::default(),
        }
    }

    /// Sets how slowly an upload's body may come (`--body-min-rate`).
    pub fn with_body_pace(mut self, pace: dftp_core::pace::Pace) -> Public {
        self.pace = pace;
        self
    }

    pub fn handler(self) -> Handler {
        let this = Arc::new(self);
        Arc::new(move |req, peer| {
            let this = this.clone();
            Box::pin(async move { walls::apply(this.route(req, peer).await) })
        })
    }

    async fn route(&self, req: Request<Incoming>, _peer: SocketAddr) -> Response<Body> {
        // Before anything looks at the request: who asks, and may they?
        let cleared = match self.guard.check(&req).await {
            Ok(cleared) => cleared,
            Err(refused) => return refused.into_response(),
        };
        let path = req.uri().path().to_owned();
        let query = Query::parse(req.uri().query());
        if let Some(fs_path) = cleared.fs_path() {
            // The guard parsed the path of every request for `/fs/…`.
            let raw = &path["/fs".len()..];
            return match req.method().as_str() {
                "GET" | "HEAD" => self.fs(req, raw, fs_path, &query, &cleared).await,
                "OPTIONS" => self.options(),
                "PROPFIND" => self.propfind(req, fs_path, &cleared).await,
                "PROPPATCH" => self.proppatch(req, fs_path, &cleared).await,
                "LOCK" => self.lock(req, fs_path, &query, &cleared).await,
                "UNLOCK" => self.unlock(&req, fs_path, &cleared),
                _ => {
                    if let Err(refused) = self.dav_check(&req, fs_path, &cleared) {
                        return *refused;
                    }
                    let (method, headers) = (req.method().clone(), req.headers().clone());
                    let r = self.write(req, raw, fs_path, &query).await;
                    self.dav_after(&method, &headers, fs_path, r.status());
                    r
                }
            };
        }
        if req.method() == Method::OPTIONS {
            // WebDAV clients ask the server's root first.
            return self.options();
        }
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return method_not_allowed("GET, HEAD", "only GET and HEAD are supported here (writes go to /fs/)");
        }
        match path.as_str() {
            "/" => self.greeting(),
            "/fs" => redirect("/fs/"),
            "/find/" | "/find" => {
                let head = req.method() == Method::HEAD;
                find::find(self.handle.snapshot(), &query, head, self.handle.blocking(), cleared.find_filter())
            }
            "/status/" | "/status" => {
                let json = query.format.as_deref() == Some("json");
                status::page(&self.handle.snapshot(), self.handle.now(), self.handle.uptime(), json)
            }
            _ => text(StatusCode::NOT_FOUND, "not found: try /fs/, /find/ or /status/"),
        }
    }

    fn greeting(&self) -> Response<Body> {
        let snap = self.handle.snapshot();
        let page = format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>dftp</title></head><body>\
             <h1>dftp</h1><p>Node <b>{}</b> of cluster <b>{}</b>.</p>\
             <p><a href=\"/fs/\">Browse the files</a> &middot; <a href=\"/find/\">list every path</a> &middot; \
             <a href=\"/status/\">cluster status</a></p>\
             </body></html>",
            listing::html_escape(snap.me()),
            listing::html_escape(&snap.cluster().name),
        );
        with_type(StatusCode::OK, "text/html; charset=utf-8", page)
    }

    /// `raw` is the URL path after `/fs`, still percent-encoded, with its leading `/`.
    async fn fs(
        &self,
        req: Request<Incoming>,
        raw: &str,
        path: &DfsPath,
        query: &Query,
        cleared: &guard::Cleared,
    ) -> Response<Body> {
        let snapshot = self.handle.snapshot();
        let wants_dir = raw.ends_with('/');
        let location = snapshot.locate(path, query.hops);
        if let Location::Directory(_) = location {
            if !wants_dir {
                let mut location = format!("/fs{raw}/");
                if let Some(q) = req.uri().query() {
                    location = format!("{location}?{q}");
                }
                return redirect(&location);
            }
            if let Some(format) = archive::Format::from_query(query.format.as_deref()) {
                let request = archive::Request {
                    format,
                    snapshot,
                    dir: path.clone(),
                    hops: query.hops,
                    content: self.content.clone(),
                    authorization: req.headers().get(http::header::AUTHORIZATION).cloned(),
                    only: cleared.find_filter(),
                };
                return archive::respond(request, req.method() == Method::HEAD);
            }
            let order = match ListingOrder::parse(query.sort.as_deref(), query.order.as_deref()) {
                Ok(order) => order,
                Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
            };
            let Some(mut children) = snapshot.list(path) else {
                return text(StatusCode::NOT_FOUND, format!("not found: {path}"));
            };
            if !cleared.reads_all_below(path) {
                children.retain(|c| cleared.shows(&c.path));
            }
            order.sort(&mut children);
            return if query.format.as_deref() == Some("json") {
                listing::json(path, &children)
            } else {
                listing::html(path, &children, order)
            };
        }
        if cleared.listing_only() {
            // Only as a directory on the way to a grant was this path let through.
            return cleared.refusal(path, Need::Read).into_response();
        }
        if location == Location::NotFound {
            return text(StatusCode::NOT_FOUND, format!("not found: {path}"));
        }
        if wants_dir && !path.is_root() {
            return text(StatusCode::NOT_FOUND, format!("not a directory: {path}"));
        }
        self.files.serve(req, location, query).await
    }
}
