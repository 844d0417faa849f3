//! `GET /find/`: the same on every node, the union of the roots (directories included, as the
//! original and Unix find list them), every line starting with `/`, sorted bytewise.

use dftp_e2e::{http, Fixture};

#[test]
fn find_is_the_union_of_the_roots_on_every_node() {
    let f = Fixture::start(false);
    let want = f.expected_find();
    // Spot-check the expectation itself, so that a broken fixture cannot make this pass.
    for line in ["/<b>.html", "/emptydir", "/sub dir", "/sub dir/alpha.txt", "/sub dir/beta.txt", "/gamma.txt"] {
        assert!(want.lines().any(|l| l == line), "{line} missing from the expected tree:\n{want}");
    }
    assert!(!want.contains("passwd-link") && !want.contains("etc-link"), "symlinks are not listed");

    for n in &f.nodes {
        let r = n.get("/find/");
        assert_eq!(r.status, 200);
        assert!(r.header("content-type").unwrap_or("").starts_with("text/plain"), "{:?}", r.headers);
        let body = r.text();
        assert_eq!(body, want, "/find/ on {}", n.name);
        let lines: Vec<&str> = body.lines().collect();
        assert!(lines.iter().all(|l| l.starts_with('/')), "every line starts with /");
        let mut sorted = lines.clone();
        sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        sorted.dedup();
        assert_eq!(lines, sorted, "sorted bytewise, without duplicates");
    }
}

#[test]
fn find_prefix_and_head() {
    let f = Fixture::start(false);
    let want = f.expected_find();
    for n in &f.nodes {
        let narrowed = n.get("/find/?prefix=%2Fsub%20dir").text();
        let expected: String = want.lines().filter(|l| l.starts_with("/sub dir")).map(|l| format!("{l}\n")).collect();
        assert_eq!(narrowed, expected, "?prefix= on {}", n.name);
        assert!(narrowed.contains("/sub dir2/nested/deep.txt"), "a plain string prefix: {narrowed}");

        let head = http("HEAD", &n.url("/find/"), &[], None);
        assert_eq!(head.status, 200);
        assert!(head.body.is_empty());
    }
}
