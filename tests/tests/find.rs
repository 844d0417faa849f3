//! `GET /find/`: the same on every node, the union of the roots (directories included, as the
//! original and Unix find list them), every line starting with `/`, sorted bytewise.

use dftp_e2e::*;

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

/// Names with a newline or another control character would make one path two lines of
/// `/find/` (and forge a path that does not exist): the scan and the watcher skip them, each
/// with a warning naming the file, and serve the rest. Through a peer too, since the rule is the
/// tree's own.
#[test]
fn names_with_control_characters_are_skipped_with_a_warning() {
    let root = awkward_tempdir("control");
    let bad = ["new\nline.txt", "tab\there.txt", "esc\u{1b}[31mred.txt", "bad\ndir/inside.txt"];
    for rel in bad {
        write_file(root.path(), rel, b"x\n");
    }
    write_file(root.path(), "good.txt", b"good\n");
    let node = Node::start(NodeOpts::new("ctl", root.path()));
    let other_root = awkward_tempdir("control-peer");
    let peer = Node::start(NodeOpts::new("peer", other_root.path()).join(&node.mgmt_addr()));
    wait_until("the peer to list good.txt", WAIT, || peer.find().contains("/good.txt").then_some(()));

    // One created while the node runs, seen by the watcher; and a good one after it, so that
    // waiting for the good one shows the watcher got past the bad one.
    write_file(root.path(), "later\nforged.txt", b"x\n");
    write_file(root.path(), "later-good.txt", b"x\n");
    wait_until("the watcher to list later-good.txt", WAIT, || node.find().contains("/later-good.txt").then_some(()));

    for n in [&node, &peer] {
        let find = wait_until("both nodes to agree", WAIT, || {
            let f = n.find();
            f.contains("/later-good.txt").then_some(f)
        });
        assert_eq!(find, "/good.txt\n/later-good.txt\n", "on {}", n.name);
    }
    let log = wait_until("the watcher's warning", WAIT, || {
        let log = node.log();
        log.contains(r#"later\nforged.txt"#).then_some(log)
    });
    for rel in ["new\nline.txt", "tab\there.txt", "esc\u{1b}[31mred.txt", "bad\ndir", "later\nforged.txt"] {
        let shown = format!("{rel:?}");
        let shown = shown.trim_matches('"');
        assert!(
            log.lines().any(|l| l.contains("WARN") && l.contains("control character") && l.contains(shown)),
            "no warning naming {rel:?}:\n{log}"
        );
    }
    let skipped: Vec<&str> = log.lines().filter(|l| l.contains("WARN") && l.contains(r#"bad\ndir"#)).collect();
    assert_eq!(skipped.len(), 1, "one warning for the directory, none for what is inside: {skipped:?}");
}
