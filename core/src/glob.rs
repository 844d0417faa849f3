//! Shell-style name patterns for `GET /find/?q=`: `*`, `?`, `[…]`, case-insensitive.
//!
//! A pattern comes from any client, so its cost is bounded before it is used: it is at most
//! [`MAX_PATTERN_LEN`] bytes, runs of `*` collapse into one, and matching is the classic
//! two-pointer walk that only ever goes back to the last `*` seen, so one name costs at most
//! O(name × pattern) steps and no allocation, whatever the pattern. (A recursive matcher, or a
//! translation to a backtracking regex, is exponential on `*a*a*a…b`.)
//!
//! The syntax is `fnmatch(3)`'s without flags, as `find -iname` takes it:
//!
//! - `*` any run of characters (`/` included: a name holds none anyway), `?` any one character;
//! - `[abc]`, `[a-z]`, `[!a-z]` or `[^a-z]`: one character of (or not of) the set; a `]` right
//!   after the opening `[` (or `[!`) is a member, and so is a `-` first or last;
//! - `\c` is the character `c` itself, so `\*` matches a star.
//!
//! Where `fnmatch` would quietly read a malformed pattern as literal text (an unclosed `[`, a
//! trailing `\`), this refuses it with a reason, so that a typo is not an empty result.
//!
//! Case folding is per character (`char::to_lowercase` when that is one character): `straße`
//! does not match `STRASSE`, as with `find -iname`.

use std::fmt;

/// The longest pattern accepted, in bytes: as long as the longest name most file systems allow,
/// so no useful pattern is refused.
pub const MAX_PATTERN_LEN: usize = 255;

/// A parsed pattern.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Glob {
    tokens: Vec<Token>,
}

#[derive(Clone, PartialEq, Eq, Debug)]
enum Token {
    /// A character, already folded.
    Char(char),
    /// `?`
    Any,
    /// `*` (never two in a row).
    Star,
    /// `[…]`
    Class { negated: bool, items: Vec<ClassItem> },
}

#[derive(Clone, PartialEq, Eq, Debug)]
enum ClassItem {
    One(char),
    /// Inclusive, `lo <= hi`.
    Range(char, char),
}

/// Why a pattern is refused.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum GlobError {
    TooLong {
        len: usize,
    },
    /// A `[` at this byte offset has no closing `]`.
    UnclosedClass {
        at: usize,
    },
    /// A range whose end comes before its start, like `z-a`.
    ReversedRange {
        lo: char,
        hi: char,
    },
    /// A `\` with nothing after it.
    TrailingBackslash,
}

impl fmt::Display for GlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GlobError::TooLong { len } => {
                write!(f, "the pattern is {len} bytes long; at most {MAX_PATTERN_LEN} are allowed")
            }
            GlobError::UnclosedClass { at } => {
                write!(f, "the '[' at byte {at} has no closing ']' (write \\[ for a literal '[')")
            }
            GlobError::ReversedRange { lo, hi } => write!(f, "the range {lo:?}-{hi:?} is reversed"),
            GlobError::TrailingBackslash => write!(f, "the pattern ends with a lone '\\'"),
        }
    }
}

impl std::error::Error for GlobError {}

/// One character folded for comparison: its lowercase form when that is one character.
fn fold(c: char) -> char {
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

/// The uppercase form when that is one character, for ranges written in capitals (`[A-Z]`).
fn upper(c: char) -> char {
    let mut up = c.to_uppercase();
    match (up.next(), up.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

impl ClassItem {
    fn contains(&self, c: char) -> bool {
        match *self {
            ClassItem::One(x) => x == c,
            ClassItem::Range(lo, hi) => (lo..=hi).contains(&c),
        }
    }
}

impl Token {
    /// Whether this one-character token takes `c` (never asked of [`Token::Star`]).
    fn accepts(&self, c: char) -> bool {
        match self {
            Token::Char(x) => *x == fold(c),
            Token::Any => true,
            Token::Star => true,
            Token::Class { negated, items } => {
                let folded = fold(c);
                let up = upper(c);
                let hit = items.iter().any(|i| i.contains(c) || i.contains(folded) || i.contains(up));
                hit != *negated
            }
        }
    }
}

impl Glob {
    /// Parses a pattern, or says why it is refused.
    pub fn parse(pattern: &str) -> Result<Glob, GlobError> {
        if pattern.len() > MAX_PATTERN_LEN {
            return Err(GlobError::TooLong { len: pattern.len() });
        }
        let mut tokens = Vec::new();
        let mut chars = pattern.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            let token = match c {
                '*' => {
                    if tokens.last() == Some(&Token::Star) {
                        continue;
                    }
                    Token::Star
                }
                '?' => Token::Any,
                '\\' => Token::Char(fold(chars.next().ok_or(GlobError::TrailingBackslash)?.1)),
                '[' => {
                    let (token, end) = parse_class(pattern, at)?;
                    while chars.peek().is_some_and(|&(i, _)| i < end) {
                        chars.next();
                    }
                    token
                }
                c => Token::Char(fold(c)),
            };
            tokens.push(token);
        }
        Ok(Glob { tokens })
    }

    /// Whether `name` matches the whole pattern.
    pub fn matches(&self, name: &str) -> bool {
        let toks = &self.tokens;
        // `p`: the next token; `n`: the byte offset of the next character of the name.
        let (mut p, mut n) = (0, 0);
        // After the last `*` seen: the token after it, and where in the name its run ends so far.
        let mut resume: Option<(usize, usize)> = None;
        loop {
            if let Some(tok) = toks.get(p) {
                if *tok == Token::Star {
                    resume = Some((p + 1, n));
                    p += 1;
                    continue;
                }
                if let Some(c) = name[n..].chars().next() {
                    if tok.accepts(c) {
                        p += 1;
                        n += c.len_utf8();
                        continue;
                    }
                }
            } else if n == name.len() {
                return true;
            }
            // A mismatch: let the last `*` take one more character and try again from after it.
            // Earlier stars never need revisiting: whatever a later part would match after them,
            // the last star can match too.
            match resume {
                Some((after, taken)) if taken < name.len() => {
                    let c = name[taken..].chars().next().expect("taken < len, on a char boundary");
                    let next = taken + c.len_utf8();
                    resume = Some((after, next));
                    p = after;
                    n = next;
                }
                _ => return false,
            }
        }
    }
}

/// Parses the class whose `[` is at byte `open` of `pattern`: the token, and the byte offset
/// just past its `]`.
fn parse_class(pattern: &str, open: usize) -> Result<(Token, usize), GlobError> {
    let body = &pattern[open + 1..];
    let mut chars = body.char_indices().peekable();
    let negated = matches!(chars.peek(), Some((_, '!' | '^')));
    if negated {
        chars.next();
    }
    // The members as written, each with whether it was escaped (an escaped `-` makes no range).
    let mut members: Vec<(char, bool)> = Vec::new();
    let end = loop {
        match chars.next() {
            None => return Err(GlobError::UnclosedClass { at: open }),
            Some((i, ']')) if !members.is_empty() => break open + 1 + i + 1,
            Some((_, '\\')) => {
                let (_, c) = chars.next().ok_or(GlobError::UnclosedClass { at: open })?;
                members.push((c, true));
            }
            Some((_, c)) => members.push((c, false)),
        }
    };
    let mut items = Vec::new();
    let mut i = 0;
    while i < members.len() {
        let lo = members[i].0;
        // `a-z`; a `-` first or last is a member.
        if i + 2 < members.len() && members[i + 1] == ('-', false) {
            let hi = members[i + 2].0;
            if hi < lo {
                return Err(GlobError::ReversedRange { lo, hi });
            }
            items.push(ClassItem::Range(lo, hi));
            i += 3;
        } else {
            items.push(ClassItem::One(lo));
            i += 1;
        }
    }
    Ok((Token::Class { negated, items }, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, n: &str) -> bool {
        Glob::parse(p).unwrap_or_else(|e| panic!("{p:?}: {e}")).matches(n)
    }

    #[test]
    fn stars_and_question_marks() {
        assert!(m("*", ""));
        assert!(m("*", "anything.txt"));
        assert!(m("*.txt", "a.txt"));
        assert!(m("*.txt", ".txt"));
        assert!(!m("*.txt", "a.txt.bak"));
        assert!(m("a*b*c", "abc"));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(!m("a*b*c", "aXXbYY"));
        assert!(m("?", "é"), "one character, not one byte");
        assert!(!m("?", ""));
        assert!(!m("??", "a"));
        assert!(m("*a*a*a*b", "aaaaaaaab"));
        assert!(!m("*a*a*a*b", "aaaaaaaaa"));
        assert!(m("", ""));
        assert!(!m("", "a"));
    }

    #[test]
    fn case_is_ignored() {
        assert!(m("*.TXT", "notes.txt"));
        assert!(m("readme", "README"));
        assert!(m("ÉTÉ", "été"));
        assert!(m("[a-c]x", "Bx"));
        assert!(m("[A-C]x", "bx"));
        assert!(!m("[!a-c]x", "Bx"));
    }

    #[test]
    fn classes() {
        assert!(m("[abc]", "b"));
        assert!(!m("[abc]", "d"));
        assert!(m("[!abc]", "d"));
        assert!(m("[^abc]", "d"));
        assert!(!m("[^abc]", "a"));
        assert!(m("[]]", "]"));
        assert!(m("[!]]", "a"));
        assert!(!m("[!]]", "]"));
        assert!(m("[a-]", "-"));
        assert!(m("[-a]", "-"));
        assert!(m("x[0-9][0-9]", "x42"));
        assert!(!m("x[0-9][0-9]", "x4a"));
        assert!(m("[\\]]", "]"));
        assert!(m("[*?]", "*"));
        assert!(!m("[*?]", "a"));
    }

    #[test]
    fn escapes() {
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
        assert!(m("a\\?", "a?"));
        assert!(!m("a\\?", "ab"));
        assert!(m("\\[x]", "[x]"));
    }

    #[test]
    fn refusals_say_why() {
        assert_eq!(Glob::parse("a[bc"), Err(GlobError::UnclosedClass { at: 1 }));
        assert_eq!(Glob::parse("[]"), Err(GlobError::UnclosedClass { at: 0 }));
        assert_eq!(Glob::parse("[!]"), Err(GlobError::UnclosedClass { at: 0 }));
        assert_eq!(Glob::parse("[z-a]"), Err(GlobError::ReversedRange { lo: 'z', hi: 'a' }));
        assert_eq!(Glob::parse("ab\\"), Err(GlobError::TrailingBackslash));
        let long = "a".repeat(MAX_PATTERN_LEN + 1);
        assert_eq!(Glob::parse(&long), Err(GlobError::TooLong { len: MAX_PATTERN_LEN + 1 }));
        assert!(Glob::parse(&"a".repeat(MAX_PATTERN_LEN)).is_ok());
        let msg = Glob::parse("a[bc").unwrap_err().to_string();
        assert!(msg.contains("no closing ']'"), "{msg}");
    }

    #[test]
    fn runs_of_stars_collapse() {
        let g = Glob::parse(&format!("{}x", "*".repeat(200))).unwrap();
        assert_eq!(g.tokens, vec![Token::Star, Token::Char('x')]);
        assert!(g.matches("abcx"));
        assert!(!g.matches(&"a".repeat(255)));
    }
}
