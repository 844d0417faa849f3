//! What a WebDAV request asks, from its headers and its XML body: `Depth`, `Timeout`, and the
//! bodies of `PROPFIND`, `PROPPATCH` and `LOCK` (RFC 4918, sections 9 and 14).

use super::xml::{self, BadXml, Element, DAV};
use crate::Span;

/// A property's name: its namespace and local name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PropName {
    pub ns: String,
    pub name: String,
}

impl PropName {
    pub fn dav(name: &str) -> PropName {
        PropName { ns: DAV.into(), name: name.into() }
    }

    fn of(e: &Element) -> PropName {
        PropName { ns: e.ns.clone(), name: e.name.clone() }
    }

    /// `<name xmlns="ns"/>`.
    pub fn write_empty(&self, out: &mut String) {
        out.push_str(&format!("<{} xmlns=\"{}\"/>", self.name, xml::escape(&self.ns)));
    }
}

/// `Depth` (section 10.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    Zero,
    One,
    Infinity,
}

impl Depth {
    /// The header's value; `None` (absent) is `default`. Anything else is a `400`.
    pub fn parse(value: Option<&str>, default: Depth) -> Result<Depth, String> {
        match value.map(str::trim) {
            None => Ok(default),
            Some("0") => Ok(Depth::Zero),
            Some("1") => Ok(Depth::One),
            Some(v) if v.eq_ignore_ascii_case("infinity") => Ok(Depth::Infinity),
            Some(v) => Err(format!("bad Depth header {v:?}: it is 0, 1 or infinity")),
        }
    }
}

/// The longest a lock lasts before it must be refreshed, whatever the client asks: a client
/// that went away holds a path for at most this long.
pub const MAX_LOCK_TIMEOUT: Span = Span(3600 * 1000);

/// `Timeout` of `LOCK` (section 10.7): the first value we understand, capped at
/// [`MAX_LOCK_TIMEOUT`]; `Infinite`, an absent or unreadable header, the cap.
pub fn lock_timeout(value: Option<&str>) -> Span {
    for part in value.unwrap_or("").split(',').map(str::trim) {
        if part.eq_ignore_ascii_case("infinite") {
            return MAX_LOCK_TIMEOUT;
        }
        let secs =
            part.get(..7).filter(|p| p.eq_ignore_ascii_case("second-")).and_then(|_| part[7..].parse::<u64>().ok());
        if let Some(secs) = secs {
            return Span::from_secs(secs.max(1)).min(MAX_LOCK_TIMEOUT);
        }
    }
    MAX_LOCK_TIMEOUT
}

/// What a `PROPFIND` asks for (section 9.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PropfindAsk {
    /// Every property (an empty body too; `<include>` names nothing we would leave out).
    AllProp,
    /// The names of the properties, without values.
    PropName,
    /// These properties.
    Prop(Vec<PropName>),
}

/// The body of a `PROPFIND`.
pub fn propfind(body: &[u8]) -> Result<PropfindAsk, BadXml> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(PropfindAsk::AllProp);
    }
    let root = xml::parse(body)?;
    if !root.is(DAV, "propfind") {
        return Err(BadXml("the root element of a PROPFIND body is DAV:propfind".into()));
    }
    for e in root.elements() {
        match (e.ns.as_str(), e.name.as_str()) {
            (DAV, "allprop") => return Ok(PropfindAsk::AllProp),
            (DAV, "propname") => return Ok(PropfindAsk::PropName),
            (DAV, "prop") => return Ok(PropfindAsk::Prop(e.elements().map(PropName::of).collect())),
            _ => {}
        }
    }
    Err(BadXml("DAV:propfind holds none of allprop, propname and prop".into()))
}

/// One instruction of a `PROPPATCH`, in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PatchOp {
    /// Set the property to this element (written as [`Element::write`] does).
    Set(PropName, String),
    Remove(PropName),
}

impl PatchOp {
    pub fn name(&self) -> &PropName {
        match self {
            PatchOp::Set(n, _) | PatchOp::Remove(n) => n,
        }
    }
}

/// The body of a `PROPPATCH` (section 9.2).
pub fn proppatch(body: &[u8]) -> Result<Vec<PatchOp>, BadXml> {
    let root = xml::parse(body)?;
    if !root.is(DAV, "propertyupdate") {
        return Err(BadXml("the root element of a PROPPATCH body is DAV:propertyupdate".into()));
    }
    let mut ops = Vec::new();
    for e in root.elements() {
        let set = match (e.ns.as_str(), e.name.as_str()) {
            (DAV, "set") => true,
            (DAV, "remove") => false,
            _ => continue,
        };
        for prop in e.elements().filter(|p| p.is(DAV, "prop")) {
            for p in prop.elements() {
                ops.push(if set {
                    let mut value = String::new();
                    p.write(&mut value);
                    PatchOp::Set(PropName::of(p), value)
                } else {
                    PatchOp::Remove(PropName::of(p))
                });
            }
        }
    }
    if ops.is_empty() {
        return Err(BadXml("the PROPPATCH body sets and removes nothing".into()));
    }
    Ok(ops)
}

/// Exclusive or shared (section 6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Exclusive,
    Shared,
}

/// The body of a `LOCK` that asks for a new lock (section 9.10; an empty body refreshes one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockInfo {
    pub scope: Scope,
    /// The `DAV:owner` element as the client sent it, given back in `lockdiscovery`.
    pub owner: Option<String>,
}

/// The body of a `LOCK`: `None` for an empty one (a refresh).
pub fn lockinfo(body: &[u8]) -> Result<Option<LockInfo>, BadXml> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let root = xml::parse(body)?;
    if !root.is(DAV, "lockinfo") {
        return Err(BadXml("the root element of a LOCK body is DAV:lockinfo".into()));
    }
    let scope = match root.dav_child("lockscope").and_then(|s| s.elements().next()) {
        Some(s) if s.is(DAV, "exclusive") => Scope::Exclusive,
        Some(s) if s.is(DAV, "shared") => Scope::Shared,
        _ => return Err(BadXml("DAV:lockinfo needs a lockscope of exclusive or shared".into())),
    };
    match root.dav_child("locktype").and_then(|t| t.elements().next()) {
        Some(t) if t.is(DAV, "write") => {}
        _ => return Err(BadXml("DAV:lockinfo needs a locktype of write".into())),
    }
    let owner = root.dav_child("owner").map(|o| {
        let mut s = String::new();
        o.write(&mut s);
        s
    });
    Ok(Some(LockInfo { scope, owner }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_and_timeout() {
        assert_eq!(Depth::parse(None, Depth::Infinity), Ok(Depth::Infinity));
        assert_eq!(Depth::parse(Some("0"), Depth::Infinity), Ok(Depth::Zero));
        assert_eq!(Depth::parse(Some(" 1 "), Depth::Zero), Ok(Depth::One));
        assert_eq!(Depth::parse(Some("Infinity"), Depth::Zero), Ok(Depth::Infinity));
        assert!(Depth::parse(Some("2"), Depth::Zero).is_err());
        assert_eq!(lock_timeout(Some("Second-600")), Span::from_secs(600));
        assert_eq!(lock_timeout(Some("Infinite, Second-4100000000")), MAX_LOCK_TIMEOUT);
        assert_eq!(lock_timeout(Some("Second-99999999999")), MAX_LOCK_TIMEOUT);
        assert_eq!(lock_timeout(Some("bogus, Second-5")), Span::from_secs(5));
        assert_eq!(lock_timeout(Some("Second-0")), Span::from_secs(1));
        assert_eq!(lock_timeout(Some("Second-é")), MAX_LOCK_TIMEOUT);
        assert_eq!(lock_timeout(None), MAX_LOCK_TIMEOUT);
    }

    #[test]
    fn propfind_bodies() {
        assert_eq!(propfind(b""), Ok(PropfindAsk::AllProp));
        assert_eq!(propfind(b"<propfind xmlns=\"DAV:\"><allprop/></propfind>"), Ok(PropfindAsk::AllProp));
        assert_eq!(propfind(b"<D:propfind xmlns:D=\"DAV:\"><D:propname/></D:propfind>"), Ok(PropfindAsk::PropName));
        let asked = propfind(b"<propfind xmlns=\"DAV:\"><prop><getetag/><x:y xmlns:x=\"urn:x\"/></prop></propfind>");
        assert_eq!(
            asked,
            Ok(PropfindAsk::Prop(vec![PropName::dav("getetag"), PropName { ns: "urn:x".into(), name: "y".into() }]))
        );
        assert!(propfind(b"<propfind/>").is_err(), "not in DAV:");
        assert!(propfind(b"<propfind xmlns=\"DAV:\"></propfind>").is_err());
        assert!(propfind(b"<propfind xmlns=\"DAV:\"><prop><bar:foo xmlns:bar=\"\"/></prop></propfind>").is_err());
    }

    #[test]
    fn proppatch_bodies() {
        let body = br#"<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z">
            <D:set><D:prop><Z:a>one</Z:a><Z:b/></D:prop></D:set>
            <D:remove><D:prop><Z:c/></D:prop></D:remove></D:propertyupdate>"#;
        let z = |n: &str| PropName { ns: "urn:z".into(), name: n.into() };
        assert_eq!(
            proppatch(body),
            Ok(vec![
                PatchOp::Set(z("a"), "<a xmlns=\"urn:z\">one</a>".into()),
                PatchOp::Set(z("b"), "<b xmlns=\"urn:z\"/>".into()),
                PatchOp::Remove(z("c")),
            ])
        );
        assert!(proppatch(b"<propertyupdate xmlns=\"DAV:\"/>").is_err());
        assert!(proppatch(b"").is_err());
    }

    #[test]
    fn lock_bodies() {
        assert_eq!(lockinfo(b" \n"), Ok(None));
        let body = br#"<?xml version="1.0" encoding="utf-8" ?><D:lockinfo xmlns:D='DAV:'>
            <D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>
            <D:owner><D:href>http://example.org/~ejw/contact.html</D:href></D:owner></D:lockinfo>"#;
        let info = lockinfo(body).unwrap().unwrap();
        assert_eq!(info.scope, Scope::Exclusive);
        assert_eq!(
            info.owner.as_deref(),
            Some("<owner xmlns=\"DAV:\"><href xmlns=\"DAV:\">http://example.org/~ejw/contact.html</href></owner>")
        );
        let shared = b"<lockinfo xmlns='DAV:'><lockscope><shared/></lockscope><locktype><write/></locktype></lockinfo>";
        assert_eq!(lockinfo(shared).unwrap().unwrap().scope, Scope::Shared);
        assert!(lockinfo(b"<lockinfo xmlns='DAV:'><locktype><write/></locktype></lockinfo>").is_err());
        assert!(lockinfo(b"<lockinfo xmlns='DAV:'><lockscope><exclusive/></lockscope></lockinfo>").is_err());
    }
}
