//! `GET /find/?q=` patterns, on arbitrary UTF-8: the text before the first newline is the
//! pattern, the rest a name. Parsing never panics; a parsed pattern matches any name without
//! panicking (and, since matching is O(name × pattern), without the fuzzer's timeout); a name
//! always matches itself with every character escaped, and `*` around it.

#![no_main]

use dftp_core::glob::MAX_PATTERN_LEN;
use dftp_core::Glob;
use libfuzzer_sys::fuzz_target;

fn escaped(name: &str) -> String {
    name.chars().flat_map(|c| ['\\', c]).collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let (pattern, name) = s.split_once('\n').unwrap_or((s, ""));
    match Glob::parse(pattern) {
        Ok(g) => {
            assert!(pattern.len() <= MAX_PATTERN_LEN);
            let _ = g.matches(name);
            let _ = g.matches(pattern);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    let lit = escaped(name);
    if lit.len() + 2 <= MAX_PATTERN_LEN {
        let g = Glob::parse(&lit).expect("an escaped name is a valid pattern");
        assert!(g.matches(name), "{lit:?} must match {name:?}");
        assert!(Glob::parse(&format!("*{lit}*")).unwrap().matches(name));
        assert!(Glob::parse("*").unwrap().matches(name));
    }
});
