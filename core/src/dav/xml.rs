//! The XML of WebDAV request bodies, read into a small tree of elements with their namespaces
//! resolved ([`parse`]), and written back ([`Element::write`], [`escape`]).
//!
//! Bodies come from anyone, so reading is bounded: the shell caps their size (`413`), and here
//! nesting deeper than [`MAX_DEPTH`] is refused (a deep tree would overflow the stack when it
//! is dropped or written), as are document types (no entity of ours is ever expanded) and
//! anything quick-xml finds malformed, namespace declarations included (`xmlns:p=""`).

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

/// How deep elements may nest in a request body. WebDAV's own bodies need 5; property values
/// get the rest.
pub const MAX_DEPTH: usize = 64;

/// The namespace the `xml` prefix is bound to (`xml:lang`).
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// The namespace of WebDAV's own elements.
pub const DAV: &str = "DAV:";

/// An element, with its namespace resolved ("" for none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Element {
    pub ns: String,
    pub name: String,
    /// Attributes other than namespace declarations: (namespace, local name, value).
    pub attrs: Vec<(String, String, String)>,
    pub children: Vec<Node>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    Text(String),
}

/// Why a body is not one we can read: a `400` with this reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad XML body: {0}")]
pub struct BadXml(pub String);

fn bad(why: impl std::fmt::Display) -> BadXml {
    BadXml(why.to_string())
}

impl Element {
    /// Whether it is `{ns}name`.
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }

    /// The child elements.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// The first child element `{DAV:}name`.
    pub fn dav_child(&self, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.is(DAV, name))
    }

    /// The text inside, all of it.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for n in &self.children {
            match n {
                Node::Text(t) => out.push_str(t),
                Node::Element(e) => out.push_str(&e.text()),
            }
        }
        out
    }

    /// Appends the element as XML that stands alone: each element declares its own namespace
    /// as the default one, each namespaced attribute its own prefix, so that it reads the same
    /// wherever it is put.
    pub fn write(&self, out: &mut String) {
        // The `xml` prefix is bound for good and may not be declared.
        let qname = if self.ns == XML_NS { format!("xml:{}", self.name) } else { self.name.clone() };
        out.push('<');
        out.push_str(&qname);
        if self.ns != XML_NS {
            out.push_str(" xmlns=\"");
            out.push_str(&escape(&self.ns));
            out.push('"');
        }
        for (i, (ns, name, value)) in self.attrs.iter().enumerate() {
            if ns.is_empty() {
                out.push_str(&format!(" {name}=\"{}\"", escape(value)));
            } else if ns == XML_NS {
                out.push_str(&format!(" xml:{name}=\"{}\"", escape(value)));
            } else {
                out.push_str(&format!(" xmlns:a{i}=\"{}\" a{i}:{name}=\"{}\"", escape(ns), escape(value)));
            }
        }
        if self.children.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        for n in &self.children {
            match n {
                Node::Text(t) => out.push_str(&escape(t)),
                Node::Element(e) => e.write(out),
            }
        }
        out.push_str("</");
        out.push_str(&qname);
        out.push('>');
    }
}

/// `s` with the characters XML gives a meaning escaped, for text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

fn namespace(r: ResolveResult<'_>) -> Result<String, BadXml> {
    match r {
        // quick-xml gives the declaration's value as written, references and all.
        ResolveResult::Bound(ns) => {
            let raw = utf8(ns.as_ref())?;
            checked(quick_xml::escape::unescape(&raw).map_err(bad)?.into_owned())
        }
        ResolveResult::Unbound => Ok(String::new()),
        ResolveResult::Unknown(p) => Err(bad(format!("undeclared prefix {}", String::from_utf8_lossy(&p)))),
    }
}

fn utf8(b: &[u8]) -> Result<String, BadXml> {
    std::str::from_utf8(b).map(str::to_owned).map_err(|_| bad("not UTF-8"))
}

/// Whether XML 1.0 allows `c` in a document: quick-xml lets others through, and what we read
/// is written back into answers (dead properties, a lock's owner) that clients must be able
/// to read.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}

/// Text (or a namespace or attribute value) that XML allows.
fn checked(s: String) -> Result<String, BadXml> {
    if s.chars().all(xml_char) {
        Ok(s)
    } else {
        Err(bad("a character XML does not allow"))
    }
}

/// A local name (of an element or attribute) as XML's namespaces allow it (an NCName, with any
/// non-ASCII letter let through): quick-xml reads names leniently, and a name with `"` or `>`
/// in it, written back, would be markup of ours.
fn xml_name(b: &[u8]) -> Result<String, BadXml> {
    let s = utf8(b)?;
    let mut chars = s.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_alphabetic() || c == '_');
    let rest_ok = chars.all(|c| c.is_alphanumeric() || matches!(c, '-' | '.' | '_' | '\u{B7}'));
    if first_ok && rest_ok {
        Ok(s)
    } else {
        Err(bad(format!("{s:?} is not an XML name")))
    }
}

/// Reads a body into its root element. Whitespace between elements is dropped.
pub fn parse(body: &[u8]) -> Result<Element, BadXml> {
    let mut reader = NsReader::from_reader(body);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let (resolved, event) = reader.read_resolved_event_into(&mut buf).map_err(bad)?;
        let empty = matches!(event, Event::Empty(_));
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                if root.is_some() {
                    return Err(bad("more than one root element"));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(bad(format!("elements nest deeper than {MAX_DEPTH}")));
                }
                let ns = namespace(resolved)?;
                let name = xml_name(e.local_name().as_ref())?;
                let mut attrs = Vec::new();
                for a in e.attributes() {
                    let a = a.map_err(bad)?;
                    let key = a.key;
                    if key.as_namespace_binding().is_some() {
                        continue;
                    }
                    let (ans, local) = reader.resolve_attribute(key);
                    let ans = namespace(ans)?;
                    let value = a.decode_and_unescape_value(reader.decoder()).map_err(bad)?.into_owned();
                    attrs.push((ans, xml_name(local.as_ref())?, checked(value)?));
                }
                let el = Element { ns, name, attrs, children: Vec::new() };
                if empty {
                    close(el, &mut stack, &mut root);
                } else {
                    stack.push(el);
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or_else(|| bad("an end tag without a start"))?;
                close(el, &mut stack, &mut root);
            }
            Event::Text(t) => text(&mut stack, &t.decode().map_err(bad)?)?,
            Event::CData(t) => text(&mut stack, &utf8(&t)?)?,
            Event::GeneralRef(r) => {
                let c = if r.is_char_ref() {
                    r.resolve_char_ref().map_err(bad)?.ok_or_else(|| bad("a bad character reference"))?.to_string()
                } else {
                    let name = r.decode().map_err(bad)?;
                    quick_xml::escape::resolve_predefined_entity(&name)
                        .ok_or_else(|| bad(format!("unknown entity &{name};")))?
                        .to_owned()
                };
                text(&mut stack, &c)?;
            }
            Event::DocType(_) => return Err(bad("document types are not accepted")),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(bad("the body ends inside an element"));
    }
    root.ok_or_else(|| bad("no root element"))
}

/// Text inside the innermost open element, joined to the text just before it (an entity
/// reference comes as an event of its own). Outside the root, only whitespace may be.
fn text(stack: &mut [Element], t: &str) -> Result<(), BadXml> {
    if !t.chars().all(xml_char) {
        return Err(bad("a character XML does not allow"));
    }
    let Some(parent) = stack.last_mut() else {
        return if t.trim().is_empty() { Ok(()) } else { Err(bad("text outside the root element")) };
    };
    match parent.children.last_mut() {
        Some(Node::Text(before)) => before.push_str(t),
        _ => parent.children.push(Node::Text(t.to_owned())),
    }
    Ok(())
}

/// Ends an element: whitespace between its child elements is layout, not content.
fn close(mut el: Element, stack: &mut [Element], root: &mut Option<Element>) {
    if el.children.iter().any(|n| matches!(n, Node::Element(_))) {
        el.children.retain(|n| !matches!(n, Node::Text(t) if t.trim().is_empty()));
    }
    match stack.last_mut() {
        Some(parent) => parent.children.push(Node::Element(el)),
        None => *root = Some(el),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_resolved_and_written_back() {
        let body = br#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:z="urn:z">
            <D:prop><z:a z:k="v&amp;">x &lt; y<b xmlns="">in</b></z:a></D:prop></D:propfind>"#;
        let root = parse(body).unwrap();
        assert!(root.is(DAV, "propfind"));
        let a = root.dav_child("prop").unwrap().elements().next().unwrap();
        assert!(a.is("urn:z", "a"));
        assert_eq!(a.attrs, vec![("urn:z".into(), "k".into(), "v&".into())]);
        assert_eq!(a.text(), "x < yin");
        let mut out = String::new();
        a.write(&mut out);
        assert_eq!(out, r#"<a xmlns="urn:z" xmlns:a0="urn:z" a0:k="v&amp;">x &lt; y<b xmlns="">in</b></a>"#);
        // What was written reads back the same.
        assert_eq!(&parse(out.as_bytes()).unwrap(), a);
        // A namespace is read with its references resolved, as it is written back.
        let odd = parse(b"<a xmlns=\"urn:x&amp;y>\"/>").unwrap();
        assert_eq!(odd.ns, "urn:x&y>");
        // The xml prefix needs no declaration (and may have none).
        let lang = parse(b"<a xml:lang=\"en\"/>").unwrap();
        let mut out = String::new();
        lang.write(&mut out);
        assert_eq!(out, "<a xmlns=\"\" xml:lang=\"en\"/>");
        assert_eq!(parse(out.as_bytes()).unwrap(), lang);
    }

    #[test]
    fn malformed_bodies_are_refused() {
        for body in [
            &b""[..],
            b"<a>",
            b"<a></b>",
            b"<a/><b/>",
            b"<x:a/>",
            b"text",
            b"<!DOCTYPE a [<!ENTITY e \"x\">]><a>&e;</a>",
            b"<a>&unknown;</a>",
            b"<a xmlns:p=\"\"><p:b/></a>",
            b"<D:a\0b xmlns:D=\"DAV:\"/>",
            b"<a\"b/>",
            b"<a>\x01</a>",
            b"<a k=\"\x02\"/>",
            b"<D:gete\0tag/mlns:z=\"urn:z\"/>",
        ] {
            assert!(parse(body).is_err(), "{}", String::from_utf8_lossy(body));
        }
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert!(parse(deep.as_bytes()).is_err());
        let ok = "<a>".repeat(MAX_DEPTH) + &"</a>".repeat(MAX_DEPTH);
        assert!(parse(ok.as_bytes()).is_ok());
    }
}
