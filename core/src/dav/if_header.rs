//! The `If` header (RFC 4918, section 10.4): lists of conditions on lock tokens and entity
//! tags, optionally tagged with the resource they are about. It does two things: the request
//! goes ahead only if it holds (else `412`), and the lock tokens named in it are the ones the
//! client submits, which lets it change what its locks cover ([`super::locks`]).

/// One condition of a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    pub not: bool,
    pub test: Test,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Test {
    /// A state token (a lock token, or any other URI, such as `DAV:no-lock`, which no
    /// resource ever has).
    Token(String),
    /// An entity tag, as sent (`"…"` or `W/"…"`).
    ETag(String),
}

/// A list of conditions, all of which must hold, about `resource` (the request's own resource
/// when `None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct List {
    pub resource: Option<String>,
    pub conditions: Vec<Condition>,
}

/// The header: it holds when any of its lists does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfHeader {
    pub lists: Vec<List>,
}

/// What a condition is checked against: a resource's current state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// Its entity tag, if it is a file (as `GET` sends it).
    pub etag: Option<String>,
    /// The tokens of the locks that cover it.
    pub tokens: Vec<String>,
}

/// The most lists and conditions a header may hold: enough for any client, and a bound on the
/// work one request makes.
const MAX_CONDITIONS: usize = 64;

impl IfHeader {
    /// Reads the header's value; `Err` (a `400`) names what is wrong.
    pub fn parse(value: &str) -> Result<IfHeader, String> {
        let mut p = Parser { s: value.as_bytes(), i: 0 };
        let mut lists = Vec::new();
        let mut tagged = None;
        let mut count = 0;
        loop {
            p.skip_ws();
            match p.peek() {
                None => break,
                Some(b'<') => {
                    let tag = p.angle()?;
                    if tagged == Some(false) {
                        return Err("an If header mixes tagged and untagged lists".into());
                    }
                    tagged = Some(true);
                    p.skip_ws();
                    if p.peek() != Some(b'(') {
                        return Err("a resource tag of an If header must be followed by a list".into());
                    }
                    while {
                        p.skip_ws();
                        p.peek() == Some(b'(')
                    } {
                        let conditions = p.list(&mut count)?;
                        lists.push(List { resource: Some(tag.clone()), conditions });
                    }
                }
                Some(b'(') => {
                    if tagged == Some(true) {
                        return Err("an If header mixes tagged and untagged lists".into());
                    }
                    tagged = Some(false);
                    let conditions = p.list(&mut count)?;
                    lists.push(List { resource: None, conditions });
                }
                Some(c) => return Err(format!("unexpected {:?} in the If header", c as char)),
            }
        }
        if lists.is_empty() {
            return Err("an empty If header".into());
        }
        Ok(IfHeader { lists })
    }

    /// Whether it holds: some list all of whose conditions hold of the state of its resource
    /// (`state(None)` is the request's own resource, `state(Some(tag))` the one a tagged list
    /// names). Entity tags compare strongly: a weak tag never matches.
    pub fn holds(&self, mut state: impl FnMut(Option<&str>) -> State) -> bool {
        self.lists.iter().any(|list| {
            let s = state(list.resource.as_deref());
            list.conditions.iter().all(|c| {
                let matched = match &c.test {
                    Test::Token(t) => s.tokens.iter().any(|have| have == t),
                    Test::ETag(t) => s.etag.as_deref() == Some(t.as_str()),
                };
                matched != c.not
            })
        })
    }

    /// The lock tokens the client submits: every state token the header names.
    pub fn tokens(&self) -> impl Iterator<Item = &str> {
        self.lists.iter().flat_map(|l| &l.conditions).filter_map(|c| match &c.test {
            Test::Token(t) => Some(t.as_str()),
            Test::ETag(_) => None,
        })
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.i += 1;
        }
    }

    /// Up to the byte `end`, which is consumed; the bytes before it.
    fn until(&mut self, end: u8, what: &str) -> Result<String, String> {
        let rest = &self.s[self.i..];
        let n =
            rest.iter().position(|&c| c == end).ok_or_else(|| format!("an unterminated {what} in the If header"))?;
        let got = std::str::from_utf8(&rest[..n]).map_err(|_| "the If header is not UTF-8".to_string())?;
        self.i += n + 1;
        Ok(got.to_owned())
    }

    /// `<…>`: a resource tag or a state token.
    fn angle(&mut self) -> Result<String, String> {
        self.i += 1;
        let got = self.until(b'>', "<URI>")?;
        if got.is_empty() || got.bytes().any(|c| c.is_ascii_whitespace() || c == b'<') {
            return Err(format!("bad URI <{got}> in the If header"));
        }
        Ok(got)
    }

    /// `( condition… )`.
    fn list(&mut self, count: &mut usize) -> Result<Vec<Condition>, String> {
        self.i += 1;
        let mut conditions = Vec::new();
        loop {
            self.skip_ws();
            let not = if self.s[self.i..].len() >= 3 && self.s[self.i..self.i + 3].eq_ignore_ascii_case(b"not") {
                self.i += 3;
                self.skip_ws();
                true
            } else {
                false
            };
            let test = match self.peek() {
                Some(b')') if !not => {
                    self.i += 1;
                    break;
                }
                Some(b'<') => Test::Token(self.angle()?),
                Some(b'[') => {
                    self.i += 1;
                    let tag = self.until(b']', "[entity tag]")?;
                    let quoted = tag.strip_prefix("W/").unwrap_or(&tag);
                    if quoted.len() < 2 || !quoted.starts_with('"') || !quoted.ends_with('"') {
                        return Err(format!("bad entity tag [{tag}] in the If header"));
                    }
                    Test::ETag(tag)
                }
                _ => return Err("a condition of the If header is a <state token> or an [entity tag]".into()),
            };
            *count += 1;
            if *count > MAX_CONDITIONS {
                return Err(format!("more than {MAX_CONDITIONS} conditions in the If header"));
            }
            conditions.push(Condition { not, test });
        }
        if conditions.is_empty() {
            return Err("an empty list in the If header".into());
        }
        Ok(conditions)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn token(t: &str) -> Condition {
        Condition { not: false, test: Test::Token(t.into()) }
    }

    #[test]
    fn the_forms_of_rfc_4918() {
        let h = IfHeader::parse(
            "(<urn:uuid:181d4fae-7d8c-11d0-a765-00a0c91e6bf2> [\"I am an ETag\"]) ([\"I am another ETag\"])",
        )
        .unwrap();
        assert_eq!(h.lists.len(), 2);
        assert_eq!(h.lists[0].conditions[0], token("urn:uuid:181d4fae-7d8c-11d0-a765-00a0c91e6bf2"));
        assert_eq!(h.lists[0].conditions[1].test, Test::ETag("\"I am an ETag\"".into()));
        let h = IfHeader::parse("(Not <urn:uuid:x> <urn:uuid:y>)").unwrap();
        assert!(h.lists[0].conditions[0].not && !h.lists[0].conditions[1].not);
        let h =
            IfHeader::parse("<http://www.example.com/specs/> (<urn:uuid:a>) (<urn:uuid:b>) </x> ([W/\"t\"])").unwrap();
        let tags: Vec<_> = h.lists.iter().map(|l| l.resource.as_deref()).collect();
        assert_eq!(tags, [Some("http://www.example.com/specs/"), Some("http://www.example.com/specs/"), Some("/x")]);
        assert_eq!(h.tokens().collect::<Vec<_>>(), ["urn:uuid:a", "urn:uuid:b"]);
        for bad in [
            "",
            "  ",
            "()",
            "(<a>",
            "(<a> x)",
            "<a>",
            "(<a>) <b> (<c>)",
            "<b> (<c>) (<a>)x",
            "([noquotes])",
            "(Not)",
            "(<a b>)",
        ] {
            assert!(IfHeader::parse(bad).is_err(), "{bad:?}");
        }
        let many = "(<a>)".repeat(MAX_CONDITIONS + 1);
        assert!(IfHeader::parse(&many).is_err());
    }

    #[test]
    fn evaluation() {
        let locked = |tag: Option<&str>| match tag {
            None => State { etag: Some("\"e1\"".into()), tokens: vec!["urn:t1".into()] },
            Some(_) => State::default(),
        };
        let holds = |h: &str| IfHeader::parse(h).unwrap().holds(locked);
        assert!(holds("(<urn:t1>)"));
        assert!(holds("(<urn:t1> [\"e1\"])"));
        assert!(!holds("(<urn:t1> [\"e2\"])"));
        assert!(!holds("(<urn:t1> [W/\"e1\"])"), "weak tags never match");
        assert!(holds("(<urn:t2>) (Not <DAV:no-lock>)"), "any list");
        assert!(!holds("(<DAV:no-lock>)"));
        assert!(holds("(<urn:t1> [\"e1\"]) (Not <DAV:no-lock> [\"e1\"])"));
        assert!(!holds("(<urn:t2> [\"bad\"]) (Not <DAV:no-lock> [\"bad\"])"));
        assert!(!holds("</other> (<urn:t1>)"), "the other resource is not locked");
    }

    proptest! {
        /// Whatever the header, parsing answers without panicking; what parses holds or not,
        /// and names only tokens it holds.
        #[test]
        fn any_header(s in "[ ()<>\\[\\]\"NotW/a-z:]{0,40}") {
            if let Ok(h) = IfHeader::parse(&s) {
                let _ = h.holds(|_| State::default());
                prop_assert!(h.tokens().all(|t| !t.is_empty()));
            }
        }

        /// A list of one token holds exactly when the resource has that token.
        #[test]
        fn one_token(t in "[a-z]{1,8}", have in proptest::collection::vec("[a-z]{1,8}", 0..4), not: bool) {
            let h = IfHeader::parse(&format!("({}<urn:{t}>)", if not { "Not " } else { "" })).unwrap();
            let tokens: Vec<String> = have.iter().map(|h| format!("urn:{h}")).collect();
            let has = tokens.contains(&format!("urn:{t}"));
            prop_assert_eq!(h.holds(|_| State { etag: None, tokens: tokens.clone() }), has != not);
        }
    }
}
