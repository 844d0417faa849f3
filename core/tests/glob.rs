//! `Glob` against a naive reference: patterns are generated as tokens, written out as text
//! (escaping what needs it), parsed, and matched against names; the reference matches the
//! tokens by plain recursion over every way to split the name, which is exponential but
//! obviously right.

use dftp_core::Glob;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Tok {
    Char(char),
    Any,
    Star,
    Class { negated: bool, items: Vec<(char, char)> },
}

/// Letters in both cases, a non-ASCII pair, and the characters the syntax gives meaning to.
const ALPHABET: &[char] = &['a', 'b', 'A', 'B', 'z', 'é', 'É', '-', ']', '[', '*', '?', '\\', '!', '^', '.'];

fn any_char() -> impl Strategy<Value = char> {
    prop::sample::select(ALPHABET)
}

fn tok() -> impl Strategy<Value = Tok> {
    prop_oneof![
        4 => any_char().prop_map(Tok::Char),
        1 => Just(Tok::Any),
        2 => Just(Tok::Star),
        1 => (any::<bool>(), prop::collection::vec((any_char(), any_char()), 1..4)).prop_map(|(negated, pairs)| {
            let items = pairs.into_iter().map(|(a, b)| if a <= b { (a, b) } else { (b, a) }).collect();
            Tok::Class { negated, items }
        }),
    ]
}

/// The pattern text of `toks`: specials escaped with `\`, class members all escaped.
fn render(toks: &[Tok]) -> String {
    let mut s = String::new();
    for t in toks {
        match t {
            Tok::Char(c) => {
                if "*?[]\\".contains(*c) {
                    s.push('\\');
                }
                s.push(*c);
            }
            Tok::Any => s.push('?'),
            Tok::Star => s.push('*'),
            Tok::Class { negated, items } => {
                s.push('[');
                if *negated {
                    s.push('!');
                }
                for &(lo, hi) in items {
                    s.push('\\');
                    s.push(lo);
                    if lo != hi {
                        s.push('-');
                        s.push('\\');
                        s.push(hi);
                    }
                }
                s.push(']');
            }
        }
    }
    s
}

fn single(mut it: impl Iterator<Item = char>, c: char) -> char {
    match (it.next(), it.next()) {
        (Some(x), None) => x,
        _ => c,
    }
}

fn lower(c: char) -> char {
    single(c.to_lowercase(), c)
}

fn upper(c: char) -> char {
    single(c.to_uppercase(), c)
}

fn accepts(t: &Tok, c: char) -> bool {
    match t {
        Tok::Char(x) => lower(*x) == lower(c),
        Tok::Any => true,
        Tok::Star => unreachable!(),
        Tok::Class { negated, items } => {
            let hit = [c, lower(c), upper(c)].iter().any(|&v| items.iter().any(|&(lo, hi)| lo <= v && v <= hi));
            hit != *negated
        }
    }
}

fn reference(toks: &[Tok], name: &[char]) -> bool {
    match toks.split_first() {
        None => name.is_empty(),
        Some((Tok::Star, rest)) => (0..=name.len()).any(|i| reference(rest, &name[i..])),
        Some((t, rest)) => !name.is_empty() && accepts(t, name[0]) && reference(rest, &name[1..]),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    #[test]
    fn matches_like_the_reference(
        toks in prop::collection::vec(tok(), 0..8),
        name in prop::collection::vec(any_char(), 0..10),
    ) {
        let text = render(&toks);
        let glob = Glob::parse(&text).map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
        let name_str: String = name.iter().collect();
        prop_assert_eq!(glob.matches(&name_str), reference(&toks, &name), "pattern {:?}, name {:?}", text, name_str);
    }

    /// A name matches the pattern built from its own characters, and from every character of
    /// it replaced by `?` or its case swapped.
    #[test]
    fn a_name_matches_itself(name in prop::collection::vec(any_char(), 0..12), mask in any::<u16>()) {
        let toks: Vec<Tok> = name
            .iter()
            .enumerate()
            .map(|(i, &c)| match (mask >> i) & 3 {
                0 => Tok::Any,
                1 => Tok::Char(upper(c)),
                _ => Tok::Char(c),
            })
            .collect();
        let text = render(&toks);
        let name_str: String = name.iter().collect();
        prop_assert!(Glob::parse(&text).unwrap().matches(&name_str), "{:?} !~ {:?}", text, name_str);
    }

    /// Any text parses or is refused, without panicking; a text with no special character is a
    /// literal.
    #[test]
    fn any_text_parses_or_is_refused(text in prop::collection::vec(any_char(), 0..16), name in "[a-zA-Z.]{0,8}") {
        let text: String = text.into_iter().collect();
        if let Ok(g) = Glob::parse(&text) {
            let _ = g.matches(&name);
        }
        if !text.contains(['*', '?', '[', ']', '\\']) {
            prop_assert_eq!(Glob::parse(&text).unwrap().matches(&name), text.to_lowercase() == name.to_lowercase());
        }
    }
}

/// Patterns that make a backtracking matcher take exponential time answer here (the test
/// finishes), on the longest name and pattern allowed.
#[test]
fn hostile_patterns_finish() {
    let name = "a".repeat(255);
    let pattern = "*a".repeat(127) + "b";
    assert!(!Glob::parse(&pattern).unwrap().matches(&name));
    let pattern = format!("{}b", "*".repeat(254));
    assert!(!Glob::parse(&pattern).unwrap().matches(&name));
    let pattern = "*?".repeat(127);
    assert!(Glob::parse(&pattern).unwrap().matches(&name));
}
