//! The public HTTP interface: `/`, `/fs/` (listings and files), `/find/`.

mod files;
mod find;
mod listing;
mod plain_owner;
mod serve_dir;

use std::net::SocketAddr;
use std::sync::Arc;

use dftp_core::{DfsPath, Location};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use percent_encoding::percent_decode_str;

use crate::body::Body;
use crate::content::{self, Content};
use crate::driver::Handle;
use crate::respond::{method_not_allowed, redirect, text, with_type};
use crate::server::Handler;

/// What the public handlers share.
pub struct Public {
    handle: Handle,
    files: files::Files,
}

impl Public {
    pub fn new(handle: Handle, content: Content) -> Public {
        Public { handle, files: files::Files::new(content) }
    }

    pub fn handler(self) -> Handler {
        let this = Arc::new(self);
        Arc::new(move |req, peer| {
            let this = this.clone();
            Box::pin(async move { this.route(req, peer).await })
        })
    }

    async fn route(&self, req: Request<Incoming>, _peer: SocketAddr) -> Response<Body> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return method_not_allowed("GET, HEAD", "only GET and HEAD are supported");
        }
        let path = req.uri().path().to_owned();
        let query = Query::parse(req.uri().query());
        match path.as_str() {
            "/" => self.greeting(),
            "/fs" => redirect("/fs/"),
            "/find/" | "/find" => {
                find::find(self.handle.snapshot(), &query, req.method() == Method::HEAD, self.handle.blocking())
            }
            p if p.starts_with("/fs/") => self.fs(req, &p["/fs".len()..], &query).await,
            _ => text(StatusCode::NOT_FOUND, "not found: try /fs/ or /find/"),
        }
    }

    fn greeting(&self) -> Response<Body> {
        let snap = self.handle.snapshot();
        let page = format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>dftp</title></head><body>\
             <h1>dftp</h1><p>Node <b>{}</b> of cluster <b>{}</b>.</p>\
             <p><a href=\"/fs/\">Browse the files</a> &middot; <a href=\"/find/\">list every path</a></p>\
             </body></html>",
            listing::html_escape(snap.me()),
            listing::html_escape(&snap.cluster().name),
        );
        with_type(StatusCode::OK, "text/html; charset=utf-8", page)
    }

    /// `raw` is the URL path after `/fs`, still percent-encoded, with its leading `/`.
    async fn fs(&self, req: Request<Incoming>, raw: &str, query: &Query) -> Response<Body> {
        let decoded = match percent_decode_str(raw).decode_utf8() {
            Ok(d) => d,
            Err(_) => return text(StatusCode::BAD_REQUEST, "bad path: it is not valid UTF-8 once decoded"),
        };
        let path = match DfsPath::parse_request(&decoded) {
            Ok(p) => p,
            Err(e) => return text(StatusCode::BAD_REQUEST, format!("bad path: {e}")),
        };
        let snapshot = self.handle.snapshot();
        let wants_dir = raw.ends_with('/');
        let location = snapshot.locate(&path, query.hops);
        if let Location::Directory(_) = location {
            if !wants_dir {
                let mut location = format!("/fs{raw}/");
                if let Some(q) = req.uri().query() {
                    location = format!("{location}?{q}");
                }
                return redirect(&location);
            }
            let Some(children) = snapshot.list(&path) else {
                return text(StatusCode::NOT_FOUND, format!("not found: {path}"));
            };
            return if query.format.as_deref() == Some("json") {
                listing::json(&path, &children)
            } else {
                listing::html(&path, &children)
            };
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

/// The query parameters we know.
#[derive(Default, Debug)]
pub struct Query {
    pub format: Option<String>,
    /// Nodes the request has passed through ([`content::incoming_hops`]).
    pub hops: u32,
    pub prefix: Option<String>,
}

impl Query {
    fn parse(q: Option<&str>) -> Query {
        let mut out = Query { hops: content::incoming_hops(q), ..Query::default() };
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q.unwrap_or("")).unwrap_or_default();
        for (k, v) in pairs {
            match k.as_str() {
                "format" => out.format = Some(v),
                "prefix" => out.prefix = Some(v),
                _ => {}
            }
        }
        out
    }
}
