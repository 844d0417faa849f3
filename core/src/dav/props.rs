//! Properties of WebDAV resources: the live ones, made from what the merged tree knows of each
//! path, written into a `PROPFIND`'s multistatus ([`write_response`]); and the dead ones,
//! which clients set with `PROPPATCH` ([`DeadProps`]).
//!
//! Dead properties are kept by the node that was asked, in memory, per path of the tree: they
//! follow `COPY`, `MOVE` and `DELETE` made through that node, and are gone when it restarts.
//! They are what desktop clients put there (Windows' file attributes and times, Finder's tags),
//! which the files themselves do not need; keeping them on the owners' disks (extended
//! attributes) would tie every `PROPPATCH` to an owner for little gain.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::locks::Lock;
use super::request::{PatchOp, PropName, PropfindAsk, Scope};
use super::xml::{escape, DAV};
use crate::{DfsPath, Time};

/// The live properties, in the order `allprop` and `propname` give them. Each is made here
/// from the tree; none can be set.
pub const LIVE: [&str; 8] = [
    "resourcetype",
    "displayname",
    "getcontentlength",
    "getlastmodified",
    "getetag",
    "getcontenttype",
    "supportedlock",
    "lockdiscovery",
];

/// Whether `name` is a live property (`PROPPATCH` may not change it: `403`).
pub fn is_live(name: &PropName) -> bool {
    name.ns == DAV && (LIVE.contains(&name.name.as_str()) || name.name == "creationdate")
}

/// What a `PROPFIND` says of one resource.
#[derive(Clone, Debug)]
pub struct Resource<'a> {
    /// Its URL path, percent-encoded (a collection's ends with `/`).
    pub href: &'a str,
    /// Its name (`displayname`).
    pub name: &'a str,
    pub dir: bool,
    pub size: u64,
    /// Last modification, Unix seconds, if known.
    pub modified: Option<i64>,
    /// Its media type (files only), as `GET` sends it.
    pub content_type: Option<&'a str>,
    /// The entity tag `GET` sends (files only).
    pub etag: Option<&'a str>,
}

/// The start of a multistatus body.
pub const MULTISTATUS_START: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:multistatus xmlns:D=\"DAV:\">";
/// Its end.
pub const MULTISTATUS_END: &str = "</D:multistatus>\n";

/// The value of live property `name` of `r`, or `None` where it has none (a collection's
/// length). `locks` are the locks covering it; `href_of` makes the URL of a lock's root.
fn live_value(
    name: &str,
    r: &Resource,
    locks: &[&Lock],
    now: Time,
    href_of: &dyn Fn(&DfsPath) -> String,
) -> Option<String> {
    match name {
        "resourcetype" => Some(if r.dir { "<D:collection/>".into() } else { String::new() }),
        "displayname" => Some(escape(r.name)),
        "getcontentlength" if !r.dir => Some(r.size.to_string()),
        "getlastmodified" => r.modified.and_then(crate::http_file::http_date),
        "getetag" if !r.dir => r.etag.map(escape),
        "getcontenttype" if !r.dir => r.content_type.map(escape),
        "supportedlock" => Some(
            "<D:lockentry><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>\
             <D:lockentry><D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>"
                .into(),
        ),
        "lockdiscovery" => {
            let mut out = String::new();
            for l in locks {
                write_activelock(&mut out, l, now, href_of);
            }
            Some(out)
        }
        _ => None,
    }
}

/// One `DAV:activelock`, for `lockdiscovery` and the answer to `LOCK`.
pub fn write_activelock(out: &mut String, l: &Lock, now: Time, href_of: &dyn Fn(&DfsPath) -> String) {
    let scope = match l.scope {
        Scope::Exclusive => "exclusive",
        Scope::Shared => "shared",
    };
    let _ = write!(
        out,
        "<D:activelock><D:locktype><D:write/></D:locktype><D:lockscope><D:{scope}/></D:lockscope>\
         <D:depth>{}</D:depth>{}<D:timeout>Second-{}</D:timeout>\
         <D:locktoken><D:href>{}</D:href></D:locktoken><D:lockroot><D:href>{}</D:href></D:lockroot></D:activelock>",
        if l.infinite { "infinity" } else { "0" },
        l.owner.as_deref().unwrap_or(""),
        l.seconds_left(now),
        escape(&l.token),
        escape(&href_of(&l.root)),
    );
}

/// Appends the `DAV:response` of `r` to a multistatus body: what `ask` asks for, from the live
/// properties and `dead` ones; properties asked for by name that it does not have in a
/// `404` propstat.
pub fn write_response(
    out: &mut String,
    r: &Resource,
    ask: &PropfindAsk,
    dead: Option<&BTreeMap<PropName, String>>,
    locks: &[&Lock],
    now: Time,
    href_of: &dyn Fn(&DfsPath) -> String,
) {
    let _ = write!(out, "<D:response><D:href>{}</D:href>", escape(r.href));
    let mut found = String::new();
    let mut missing = String::new();
    match ask {
        PropfindAsk::AllProp | PropfindAsk::PropName => {
            let names_only = matches!(ask, PropfindAsk::PropName);
            for name in LIVE {
                if let Some(v) = live_value(name, r, locks, now, href_of) {
                    if names_only || v.is_empty() {
                        let _ = write!(found, "<D:{name}/>");
                    } else {
                        let _ = write!(found, "<D:{name}>{v}</D:{name}>");
                    }
                }
            }
            for (name, value) in dead.into_iter().flatten() {
                if names_only {
                    name.write_empty(&mut found);
                } else {
                    found.push_str(value);
                }
            }
        }
        PropfindAsk::Prop(names) => {
            for name in names {
                let live = (name.ns == DAV).then(|| live_value(&name.name, r, locks, now, href_of)).flatten();
                match (live, dead.and_then(|d| d.get(name))) {
                    (Some(v), _) if v.is_empty() => {
                        let _ = write!(found, "<D:{}/>", name.name);
                    }
                    (Some(v), _) => {
                        let _ = write!(found, "<D:{0}>{v}</D:{0}>", name.name);
                    }
                    (None, Some(value)) => found.push_str(value),
                    (None, None) => name.write_empty(&mut missing),
                }
            }
        }
    }
    if !found.is_empty() || missing.is_empty() {
        let _ = write!(out, "<D:propstat><D:prop>{found}</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>");
    }
    if !missing.is_empty() {
        let _ = write!(
            out,
            "<D:propstat><D:prop>{missing}</D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>"
        );
    }
    out.push_str("</D:response>");
}

/// The most bytes of dead properties a node keeps, all paths together: past it, `PROPPATCH`
/// answers `507`.
pub const MAX_DEAD_BYTES: usize = 16 << 20;

/// The dead properties of the paths of the tree, as set through this node.
#[derive(Clone, Debug, Default)]
pub struct DeadProps {
    by_path: BTreeMap<DfsPath, BTreeMap<PropName, String>>,
    bytes: usize,
}

fn size_of(name: &PropName, value: &str) -> usize {
    name.ns.len() + name.name.len() + value.len()
}

impl DeadProps {
    pub fn new() -> DeadProps {
        DeadProps::default()
    }

    pub fn of(&self, path: &DfsPath) -> Option<&BTreeMap<PropName, String>> {
        self.by_path.get(path)
    }

    /// Applies a `PROPPATCH` to `path`, all of it or nothing: the status of each property
    /// (`200`; `403` for a live one, and then `424` for the others; `507` when they do not
    /// fit).
    pub fn patch(&mut self, path: &DfsPath, ops: &[PatchOp]) -> Vec<(PropName, u16)> {
        let protected = ops.iter().any(|op| is_live(op.name()));
        let mut props = self.by_path.get(path).cloned().unwrap_or_default();
        let before: usize = props.iter().map(|(n, v)| size_of(n, v)).sum();
        for op in ops {
            match op {
                PatchOp::Set(name, value) => {
                    props.insert(name.clone(), value.clone());
                }
                PatchOp::Remove(name) => {
                    props.remove(name);
                }
            }
        }
        let after: usize = props.iter().map(|(n, v)| size_of(n, v)).sum();
        let fits = self.bytes - before + after <= MAX_DEAD_BYTES;
        let statuses = ops
            .iter()
            .map(|op| {
                let status = match (protected, is_live(op.name()), fits) {
                    (true, true, _) => 403,
                    (true, false, _) => 424,
                    (false, _, false) => 507,
                    (false, _, true) => 200,
                };
                (op.name().clone(), status)
            })
            .collect();
        if !protected && fits {
            self.bytes = self.bytes - before + after;
            if props.is_empty() {
                self.by_path.remove(path);
            } else {
                self.by_path.insert(path.clone(), props);
            }
        }
        statuses
    }

    /// The paths at and below `path`, with their properties.
    fn below(&self, path: &DfsPath) -> Vec<DfsPath> {
        self.by_path.keys().filter(|p| p.is_within(path)).cloned().collect()
    }

    /// Forgets the properties at and below `path`, which is gone.
    pub fn removed(&mut self, path: &DfsPath) {
        for p in self.below(path) {
            if let Some(props) = self.by_path.remove(&p) {
                self.bytes -= props.iter().map(|(n, v)| size_of(n, v)).sum::<usize>();
            }
        }
    }

    /// `from` was copied to `to` (replacing what was there): the properties go along, as far as
    /// they fit.
    pub fn copied(&mut self, from: &DfsPath, to: &DfsPath) {
        self.removed(to);
        for p in self.below(from) {
            let Some(rest) = p.strip_dir(from) else { continue };
            let Ok(target) = (if rest.is_empty() {
                Ok(to.clone())
            } else {
                to.join_path(&DfsPath::parse(rest).unwrap_or_default())
            }) else {
                continue;
            };
            let props = self.by_path[&p].clone();
            let size: usize = props.iter().map(|(n, v)| size_of(n, v)).sum();
            if self.bytes + size <= MAX_DEAD_BYTES {
                self.bytes += size;
                self.by_path.insert(target, props);
            }
        }
    }

    /// `from` was moved to `to`.
    pub fn moved(&mut self, from: &DfsPath, to: &DfsPath) {
        self.copied(from, to);
        self.removed(from);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dav::request::proppatch;

    fn p(s: &str) -> DfsPath {
        DfsPath::parse(s).unwrap()
    }

    fn z(n: &str) -> PropName {
        PropName { ns: "urn:z".into(), name: n.into() }
    }

    #[test]
    fn responses_say_what_was_asked() {
        let r = Resource {
            href: "/fs/a%20b.txt",
            name: "a b.txt",
            dir: false,
            size: 12,
            modified: Some(1_000_000_000),
            content_type: Some("text/plain"),
            etag: Some("\"x-c\""),
        };
        let href = |p: &DfsPath| format!("/fs/{p}");
        let mut out = String::new();
        write_response(&mut out, &r, &PropfindAsk::AllProp, None, &[], Time(0), &href);
        for want in [
            "<D:href>/fs/a%20b.txt</D:href>",
            "<D:resourcetype/>",
            "<D:displayname>a b.txt</D:displayname>",
            "<D:getcontentlength>12</D:getcontentlength>",
            "<D:getlastmodified>Sun, 09 Sep 2001 01:46:40 GMT</D:getlastmodified>",
            "<D:getetag>&quot;x-c&quot;</D:getetag>",
            "<D:getcontenttype>text/plain</D:getcontenttype>",
            "HTTP/1.1 200 OK",
        ] {
            assert!(out.contains(want), "{want} in {out}");
        }
        assert!(!out.contains("404"));
        let mut out = String::new();
        let ask = PropfindAsk::Prop(vec![PropName::dav("getcontentlength"), z("nope")]);
        let dir = Resource { dir: true, href: "/fs/d/", ..r.clone() };
        write_response(&mut out, &dir, &ask, None, &[], Time(0), &href);
        assert!(
            out.contains(
                "<D:prop><getcontentlength xmlns=\"DAV:\"/><nope xmlns=\"urn:z\"/></D:prop><D:status>HTTP/1.1 404"
            ),
            "{out}"
        );
    }

    #[test]
    fn dead_properties_follow_the_tree() {
        let mut d = DeadProps::new();
        let ops = proppatch(
            br#"<propertyupdate xmlns="DAV:"><set><prop><a xmlns="urn:z">1</a></prop></set></propertyupdate>"#,
        )
        .unwrap();
        assert_eq!(d.patch(&p("x/f"), &ops), vec![(z("a"), 200)]);
        let bad = vec![PatchOp::Set(z("b"), "<b xmlns=\"urn:z\"/>".into()), PatchOp::Remove(PropName::dav("getetag"))];
        assert_eq!(d.patch(&p("x/f"), &bad), vec![(z("b"), 424), (PropName::dav("getetag"), 403)]);
        assert_eq!(d.of(&p("x/f")).unwrap().len(), 1, "all or nothing");
        d.copied(&p("x"), &p("y"));
        assert!(d.of(&p("y/f")).is_some() && d.of(&p("x/f")).is_some());
        d.moved(&p("y"), &p("w"));
        assert!(d.of(&p("y/f")).is_none() && d.of(&p("w/f")).is_some());
        d.removed(&p("x"));
        d.removed(&p("w"));
        assert!(d.by_path.is_empty());
        assert_eq!(d.bytes, 0);
        let huge = vec![PatchOp::Set(z("h"), "x".repeat(MAX_DEAD_BYTES))];
        assert_eq!(d.patch(&p("f"), &huge), vec![(z("h"), 507)]);
        assert_eq!(d.bytes, 0);
    }
}
