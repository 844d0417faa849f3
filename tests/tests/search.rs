//! `GET /find/?q=PATTERN&type=f|d`: a case-insensitive shell pattern on the last segment of each
//! path (as `find -iname`), combinable with `?prefix=`; the answer is exactly the filter of the
//! whole `/find/` that the test computes itself from the roots on disk. Bad patterns are `400`
//! with a reason; hostile ones answer. The listing page's search box is a plain form to it.

use std::collections::BTreeMap;

use dftp_e2e::*;

type Pick = fn(&str) -> bool;

/// Patterns and what the test expects each to pick, written without a glob matcher.
const CASES: &[(&str, Pick)] = &[
    ("*.TXT", |n| n.to_lowercase().ends_with(".txt")),
    ("SUB*", |n| n.to_lowercase().starts_with("sub")),
    ("*[0-9]*", |n| n.chars().any(|c| c.is_ascii_digit())),
    ("[!.]*", |n| !n.starts_with('.')),
    ("?????.txt", |n| n.chars().count() == 9 && n.ends_with(".txt")),
    ("*\\[*", |n| n.contains('[')),
    ("*[?]*", |n| n.contains('?')),
    ("ФАЙЛ.*", |n| n.starts_with("файл.")),
    ("*", |_| true),
    ("nothing-is-called-this", |_| false),
];

/// Every path of the cluster (relative), with whether it is a directory.
fn tree(f: &Fixture) -> BTreeMap<String, bool> {
    let mut all = BTreeMap::new();
    for root in f.root_paths() {
        for (rel, is_dir) in walk(root) {
            *all.entry(rel).or_insert(false) |= is_dir;
        }
    }
    all
}

fn lines<'a>(paths: impl Iterator<Item = &'a String>) -> String {
    paths.map(|p| format!("/{p}\n")).collect()
}

fn query(q: &str) -> String {
    encode_segment(q)
}

#[test]
fn search_is_a_filter_of_find() {
    let f = Fixture::start(false);
    let all = tree(&f);
    let name = |p: &str| p.rsplit('/').next().unwrap().to_string();
    // The test's own expectations must be worth something: some patterns pick a few paths.
    let txt: Vec<&String> = all.keys().filter(|p| CASES[0].1(&name(p))).collect();
    assert!(txt.len() > 10 && txt.len() < all.len(), "{txt:?}");

    for n in &f.nodes {
        for (pattern, pick) in CASES {
            for (kind, keep_kind) in [("", None), ("f", Some(false)), ("d", Some(true))] {
                let want = lines(
                    all.iter()
                        .filter(|(p, is_dir)| pick(&name(p)) && keep_kind.is_none_or(|d| d == **is_dir))
                        .map(|(p, _)| p),
                );
                let url = format!("/find/?q={}&type={kind}", query(pattern));
                let r = n.get(&url);
                assert_eq!(r.status, 200, "{url} on {}: {}", n.name, r.text());
                assert_eq!(r.text(), want, "{url} on {}", n.name);
            }
        }
    }

    // With a prefix: the directory's contents only (the directory itself ends without `/`).
    let a = &f.nodes[1];
    let want = lines(all.keys().filter(|p| p.starts_with("sub dir/") && name(p).ends_with(".txt")));
    assert_eq!(want.lines().count(), 2, "{want}");
    let r = a.get(&format!("/find/?prefix={}&q=*.txt&type=f", query("/sub dir/")));
    assert_eq!(r.text(), want);
    // The name is the last segment only: a pattern naming a directory does not pick its files.
    let r = a.get("/find/?q=sub%20dir");
    assert_eq!(r.text(), "/sub dir\n");
}

#[test]
fn bad_searches_are_refused_with_a_reason() {
    let root = awkward_tempdir("search-bad");
    write_file(root.path(), "a.txt", b"a\n");
    let n = Node::start(NodeOpts::new("solo", root.path()));
    for (q, reason) in [
        ("q=%5Babc", "no closing ']'"),
        ("q=%5Bz-a%5D", "reversed"),
        ("q=abc%5C", "lone '\\'"),
        ("type=x", "bad type"),
        ("type=file", "use f (files) or d"),
    ] {
        let r = n.get(&format!("/find/?{q}"));
        assert_eq!(r.status, 400, "{q}: {}", r.text());
        assert!(r.text().contains(reason), "{q}: {}", r.text());
    }
    // An empty box and "any type", as the search form sends them, are no filter.
    assert_eq!(n.get("/find/?q=&type=").text(), "/a.txt\n");
}

/// Patterns that make a naive matcher run for ages, or allocate, answer (a result or a `400`);
/// the node serves on afterwards.
#[test]
fn hostile_patterns_answer() {
    let root = awkward_tempdir("search-hostile");
    let long = "a".repeat(250);
    write_file(root.path(), &long, b"x\n");
    for i in 0..200 {
        write_file(root.path(), &format!("d/{}{i}", "a".repeat(200)), b"x\n");
    }
    let n = Node::start(NodeOpts::new("solo", root.path()));
    wait_until("the scan", WAIT, || n.find().contains(&long).then_some(()));

    let r = n.get(&format!("/find/?q={}x", "*".repeat(1000)));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("at most 255"), "{}", r.text());

    let stars = format!("{}x", "*".repeat(200));
    let r = n.get(&format!("/find/?q={}", query(&stars)));
    assert_eq!((r.status, r.text()), (200, String::new()));

    let alternating = format!("{}b", "*a".repeat(127));
    let r = n.get(&format!("/find/?q={}", query(&alternating)));
    assert_eq!((r.status, r.text()), (200, String::new()));

    let r = n.get(&format!("/find/?q={}", query(&"*a".repeat(127))));
    assert_eq!(r.status, 200);
    assert_eq!(r.text().lines().count(), 1, "only the 250-character name has 127 a's");

    let r = n.get(&format!("/find/?q={}", query(&"[a-a]".repeat(51))));
    assert_eq!(r.status, 200);
    assert_eq!(n.get("/find/?q=a.txt").status, 200, "the node still serves");
}

/// The listing page carries a search form (no script: the page policy allows forms to this node
/// only) whose fields, as a browser sends them, give the search below the directory.
#[test]
fn the_listing_page_has_a_search_box() {
    let root = awkward_tempdir("search-form");
    write_file(root.path(), "sub dir/one.txt", b"1\n");
    write_file(root.path(), "sub dir/two.bin", b"2\n");
    write_file(root.path(), "three.txt", b"3\n");
    let n = Node::start(NodeOpts::new("solo", root.path()));
    let page = n.get("/fs/sub%20dir/");
    let body = page.text();
    assert!(body.contains("<form action=\"/find/\" method=\"get\">"), "{body}");
    assert!(body.contains("<input type=\"hidden\" name=\"prefix\" value=\"/sub dir/\">"), "{body}");
    assert!(body.contains("name=\"q\"") && body.contains("name=\"type\""), "{body}");
    assert!(!body.contains("<script"), "{body}");
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("form-action 'self'") && csp.contains("default-src 'none'"), "{csp}");
    // What a browser sends for the box filled with *.TXT and "any".
    let r = n.get("/find/?prefix=%2Fsub+dir%2F&q=*.TXT&type=");
    assert_eq!(r.text(), "/sub dir/one.txt\n");
    // The root's form has no prefix.
    assert!(!n.get("/fs/").text().contains("name=\"prefix\""));
}

/// With access rules, a search lists only what `/find/` would: readable paths.
#[test]
fn search_lists_only_readable_paths() {
    let root = awkward_tempdir("search-auth");
    for rel in ["pub/a.txt", "pub/b.log", "private/c.txt", "private/pub.txt"] {
        write_file(root.path(), rel, b"x\n");
    }
    let n = Node::start(NodeOpts::new("solo", root.path()).arg("--auth").arg("@/pub").arg("--auth").arg("bob:pw@/"));
    assert_eq!(n.get("/find/?q=*.txt").text(), "/pub/a.txt\n");
    assert_eq!(n.get("/find/?q=pub*&type=d").text(), "/pub\n");
    let bob = http("GET", &n.url("/find/?q=*.txt&type=f"), &[("authorization", "Basic Ym9iOnB3")], None);
    assert_eq!(bob.text(), "/private/c.txt\n/private/pub.txt\n/pub/a.txt\n");
}
