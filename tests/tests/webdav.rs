//! WebDAV on `/fs/`, end to end, with the clients people mount it with:
//! - `PROPFIND` Depth 1 of a directory whose entries have three owners lists every one of them,
//!   through each node, with the sizes and `ETag`s `GET` sends;
//! - `Depth: infinity` is refused (403, `propfind-finite-depth`), bodies are bounded (413) and
//!   malformed ones refused (400); a browser's `GET` of a directory still gets the HTML listing;
//! - a client without the right gets 401 (anonymous) or 403 for every method, and its refused
//!   `LOCK` locks nothing;
//! - litmus (`basic`, `copymove`, `props`, `locks`) passes through a node that owns nothing;
//! - rclone's webdav backend syncs a tree up and back down, and `rclone check` finds them equal;
//! - cadaver, scripted: `mkcol`, `put`, `ls`, `get`, `move`, `rm`.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use base64::Engine;
use dftp_core::dav::xml::{self, Element};
use dftp_e2e::*;

// No spaces: cadaver reads them from .netrc, which splits at spaces.
const WRITER: (&str, &str) = ("writer", "w-pass");
const READER: (&str, &str) = ("reader", "r pass");
const LIMITED: (&str, &str) = ("limited", "l pass");

/// `writer` changes everything, `reader` reads everything, `limited` has `/sub dir` only;
/// anonymous clients nothing (see [`readable_rules`]).
fn rules(o: NodeOpts) -> NodeOpts {
    o.arg(&format!("--auth={}:{}@/:rw", WRITER.0, WRITER.1))
        .arg(&format!("--auth={}:{}@/", READER.0, READER.1))
        .arg(&format!("--auth={}:{}@/sub dir:rw", LIMITED.0, LIMITED.1))
}

/// [`rules`], and anonymous clients read everything (the fixture waits for `/find/` so).
fn readable_rules(o: NodeOpts) -> NodeOpts {
    rules(o).arg("--auth=@/")
}

fn basic((user, password): (&str, &str)) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

fn call(
    node: &Node,
    method: &str,
    target: &str,
    login: Option<(&str, &str)>,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Resp {
    let auth = login.map(basic);
    let mut all: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    all.extend_from_slice(headers);
    if method == "HEAD" {
        // The raw client reads a body; a HEAD has none.
        return http(method, &node.url(target), &all, body);
    }
    send(node.http, method, target, &all, body)
}

/// Whether `program` is on this machine. In CI (`CI` set) every client must be: `.ci/run`
/// installs them.
fn have(program: &str) -> bool {
    let found =
        Command::new("sh").args(["-c", &format!("command -v {program}")]).output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(std::env::var_os("CI").is_none(), "{program} is missing in CI: .ci/run installs it");
        eprintln!("skipping: no {program} on this machine (apt-get install {program})");
    }
    found
}

/// What a multistatus says of each href: its properties (`{ns}name` of the DAV namespace by
/// their local name) with their text, from the 200 propstats.
fn multistatus(body: &[u8]) -> BTreeMap<String, BTreeMap<String, String>> {
    let root = xml::parse(body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)));
    assert!(root.is(xml::DAV, "multistatus"), "{}", String::from_utf8_lossy(body));
    let mut out = BTreeMap::new();
    for r in root.elements().filter(|e| e.is(xml::DAV, "response")) {
        let href = r.dav_child("href").expect("an href").text();
        let mut props = BTreeMap::new();
        for ps in r.elements().filter(|e| e.is(xml::DAV, "propstat")) {
            if !ps.dav_child("status").unwrap().text().contains(" 200 ") {
                continue;
            }
            for p in ps.dav_child("prop").unwrap().elements() {
                let value = if p.elements().any(|c: &Element| c.is(xml::DAV, "collection")) {
                    "collection".into()
                } else {
                    p.text()
                };
                props.insert(p.name.clone(), value);
            }
        }
        out.insert(href, props);
    }
    out
}

#[test]
fn propfind_lists_entries_of_every_owner_as_get_sends_them() {
    let f = Fixture::start_with(false, readable_rules);
    for n in &f.nodes {
        let r = call(n, "PROPFIND", "/fs/", Some(READER), &[("Depth", "1")], None);
        assert_eq!(r.status, 207, "{}", r.text());
        assert!(r.header("content-type").unwrap().starts_with("application/xml"));
        let listed = multistatus(&r.body);
        // The listing names each entry and its owner: every entry of the root is in the
        // PROPFIND, whoever owns it, and the owners are the three nodes.
        let listing = get(&format!("{}?format=json", n.url("/fs/")));
        let listing = listing.json();
        let entries = listing["entries"].as_array().unwrap();
        let owners: std::collections::BTreeSet<&str> =
            entries.iter().filter(|e| e["type"] == "file").map(|e| e["owner"].as_str().unwrap()).collect();
        assert_eq!(owners.into_iter().collect::<Vec<_>>(), ["alpha", "beta", "gamma"]);
        assert_eq!(listed.len(), entries.len() + 1, "the root and each entry: {listed:#?}");
        assert_eq!(listed["/fs/"]["resourcetype"], "collection");
        for e in entries {
            let name = e["name"].as_str().unwrap();
            let dir = e["type"] == "dir";
            let href = format!("/fs/{}{}", encode_segment(name), if dir { "/" } else { "" });
            let props = listed.get(&href).unwrap_or_else(|| panic!("{href} through {}: {listed:#?}", n.name));
            assert_eq!(props["displayname"], name);
            if dir {
                assert_eq!(props["resourcetype"], "collection");
                continue;
            }
            let got = call(n, "GET", &href, Some(READER), &[], None);
            assert_eq!(got.status, 200, "{href}");
            assert_eq!(props["getcontentlength"], got.body.len().to_string(), "{href} through {}", n.name);
            assert_eq!(props["getetag"], got.header("etag").expect("an ETag"), "{href} through {}", n.name);
            assert_eq!(props["getcontenttype"], got.header("content-type").unwrap(), "{href}");
            assert_eq!(props["getlastmodified"], got.header("last-modified").unwrap(), "{href}");
        }
    }
    // Depth 0 of a file of another node, through gamma.
    let r = call(f.node("gamma"), "PROPFIND", "/fs/sub%20dir/alpha.txt", Some(READER), &[("Depth", "0")], None);
    assert_eq!(r.status, 207);
    let one = multistatus(&r.body);
    assert_eq!(one.keys().collect::<Vec<_>>(), ["/fs/sub%20dir/alpha.txt"]);
    assert_eq!(one["/fs/sub%20dir/alpha.txt"]["getcontentlength"], f.content("sub dir/alpha.txt").len().to_string());
    // Asked for by name: what it has, and a 404 propstat for what it has not.
    let body =
        br#"<?xml version="1.0"?><propfind xmlns="DAV:"><prop><getetag/><x xmlns="urn:nope"/></prop></propfind>"#;
    let r = call(f.node("beta"), "PROPFIND", "/fs/gamma.txt", Some(READER), &[("Depth", "0")], Some(body));
    assert_eq!(r.status, 207);
    let text = r.text();
    assert!(
        text.contains("<D:getetag>") && text.contains("<x xmlns=\"urn:nope\"/>") && text.contains("404 Not Found"),
        "{text}"
    );
    assert!(!text.contains("getcontentlength"), "only what was asked: {text}");
}

#[test]
fn depth_bodies_and_browsers() {
    let root = tempfile::tempdir().unwrap();
    write_file(root.path(), "d/f.txt", b"x\n");
    let n = Node::start(rules(NodeOpts::new("alpha", root.path())));
    for depth in [None, Some("infinity")] {
        let headers: Vec<(&str, &str)> = depth.iter().map(|d| ("Depth", *d)).collect();
        let r = call(&n, "PROPFIND", "/fs/d/", Some(READER), &headers, None);
        assert_eq!(r.status, 403, "{depth:?}");
        assert!(r.text().contains("<D:propfind-finite-depth/>"), "{}", r.text());
    }
    let r = call(&n, "PROPFIND", "/fs/d/", Some(READER), &[("Depth", "2")], None);
    assert_eq!(r.status, 400);
    for bad in [
        &b"<propfind"[..],
        b"<propfind xmlns='DAV:'><prop><a:b xmlns:a=''/></prop></propfind>",
        b"<!DOCTYPE x [<!ENTITY a 'b'>]><x/>",
    ] {
        let r = call(&n, "PROPFIND", "/fs/d/", Some(READER), &[("Depth", "1")], Some(bad));
        assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(bad));
        assert!(r.text().contains("bad XML body"), "{}", r.text());
    }
    let huge = vec![b' '; (1 << 20) + 1];
    let r = call(&n, "PROPFIND", "/fs/d/", Some(READER), &[("Depth", "1")], Some(&huge));
    assert_eq!(r.status, 413);
    let r = call(&n, "PROPFIND", "/fs/nothing/", Some(READER), &[("Depth", "1")], None);
    assert_eq!(r.status, 404);
    // A browser still gets the listing, and OPTIONS says WebDAV.
    let r = call(&n, "GET", "/fs/d/", Some(READER), &[("Accept", "text/html")], None);
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html") && r.text().contains("f.txt"));
    for target in ["/fs/d/", "/"] {
        let r = call(&n, "OPTIONS", target, Some(READER), &[], None);
        assert_eq!(r.status, 200, "{target}");
        assert_eq!(r.header("dav"), Some("1, 2"), "{target}");
        let allow = r.header("allow").unwrap();
        for m in ["PROPFIND", "PROPPATCH", "LOCK", "UNLOCK", "PUT", "MOVE"] {
            assert!(allow.contains(m), "{allow}");
        }
    }
    // The node still answers.
    assert_eq!(call(&n, "GET", "/fs/d/f.txt", Some(READER), &[], None).text(), "x\n");
}

/// Every method needs what it does: read (PROPFIND), write (PROPPATCH, LOCK, UNLOCK and the
/// writes); a refused client changes nothing, and its refused LOCK holds nothing.
#[test]
fn refused_clients_get_401_or_403_for_every_method() {
    let root = tempfile::tempdir().unwrap();
    write_file(root.path(), "top.txt", b"top\n");
    write_file(root.path(), "sub dir/in.txt", b"in\n");
    let n = Node::start(rules(NodeOpts::new("alpha", root.path())));
    let lockinfo =
        b"<lockinfo xmlns='DAV:'><lockscope><exclusive/></lockscope><locktype><write/></locktype></lockinfo>";
    let patch = b"<propertyupdate xmlns='DAV:'><set><prop><a xmlns='urn:x'>1</a></prop></set></propertyupdate>";
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], Option<&'a [u8]>);
    let cases: [Case; 11] = [
        ("PROPFIND", "/fs/top.txt", &[("Depth", "0")], None),
        ("PROPPATCH", "/fs/top.txt", &[], Some(patch)),
        ("LOCK", "/fs/top.txt", &[("Timeout", "Second-600")], Some(lockinfo)),
        ("UNLOCK", "/fs/top.txt", &[("Lock-Token", "<urn:uuid:0>")], None),
        ("PUT", "/fs/top.txt", &[], Some(b"new")),
        ("DELETE", "/fs/top.txt", &[], None),
        ("MKCOL", "/fs/newdir", &[], None),
        ("MOVE", "/fs/top.txt", &[("Destination", "/fs/moved.txt")], None),
        ("COPY", "/fs/top.txt", &[("Destination", "/fs/copied.txt")], None),
        ("GET", "/fs/top.txt", &[], None),
        ("HEAD", "/fs/top.txt", &[], None),
    ];
    for (method, target, headers, body) in cases {
        let anon = call(&n, method, target, None, headers, body);
        assert_eq!(anon.status, 401, "{method} anonymous: {}", anon.text());
        assert!(anon.header("www-authenticate").is_some(), "{method}");
        let limited = call(&n, method, target, Some(LIMITED), headers, body);
        assert_eq!(limited.status, 403, "{method} as limited: {}", limited.text());
        if !matches!(method, "PROPFIND" | "GET" | "HEAD") {
            let reader = call(&n, method, target, Some(READER), headers, body);
            assert_eq!(reader.status, 403, "{method} as reader: {}", reader.text());
        }
    }
    assert_eq!(fs::read(root.path().join("top.txt")).unwrap(), b"top\n");
    assert_eq!(walk(root.path()).len(), 3, "nothing made: {:?}", walk(root.path()));
    // Nothing was locked or set: the writer changes it without a token, and no property is there.
    let r = call(&n, "PROPFIND", "/fs/top.txt", Some(WRITER), &[("Depth", "0")], None);
    assert!(!r.text().contains("urn:x") && !r.text().contains("activelock"), "{}", r.text());
    assert_eq!(call(&n, "PUT", "/fs/top.txt", Some(WRITER), &[], Some(b"w")).status, 204);
    // What limited may change, it may lock; then the writer needs the token.
    let r = call(&n, "LOCK", "/fs/sub%20dir/in.txt", Some(LIMITED), &[("Timeout", "Second-600")], Some(lockinfo));
    assert_eq!(r.status, 200, "{}", r.text());
    let token = r.header("lock-token").unwrap().to_owned();
    let r = call(&n, "PUT", "/fs/sub%20dir/in.txt", Some(WRITER), &[], Some(b"w"));
    assert_eq!(r.status, 423, "{}", r.text());
    // The token is limited's: the writer cannot use it.
    let with_token = format!("({token})");
    let r = call(&n, "PUT", "/fs/sub%20dir/in.txt", Some(WRITER), &[("If", &with_token)], Some(b"w"));
    assert_eq!(r.status, 423, "{}", r.text());
    let r = call(&n, "PUT", "/fs/sub%20dir/in.txt", Some(LIMITED), &[("If", &with_token)], Some(b"mine"));
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(call(&n, "UNLOCK", "/fs/sub%20dir/in.txt", Some(WRITER), &[("Lock-Token", &token)], None).status, 403);
    assert_eq!(call(&n, "UNLOCK", "/fs/sub%20dir/in.txt", Some(LIMITED), &[("Lock-Token", &token)], None).status, 204);
    assert_eq!(call(&n, "PUT", "/fs/sub%20dir/in.txt", Some(WRITER), &[], Some(b"w")).status, 204);
}

/// alpha and beta hold files; gamma holds nothing and is the one clients talk to.
struct Empty {
    nodes: Vec<Node>,
    roots: Vec<tempfile::TempDir>,
}

fn cluster_through_empty() -> Empty {
    let roots: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    write_file(roots[0].path(), "alpha dir/a.txt", b"from alpha\n");
    write_file(roots[1].path(), "beta dir/b.txt", b"from beta\n");
    let a = Node::start(rules(NodeOpts::new("alpha", roots[0].path())));
    let b = Node::start(rules(NodeOpts::new("beta", roots[1].path()).join(&a.mgmt_addr())));
    let c = Node::start(rules(NodeOpts::new("gamma", roots[2].path()).join(&a.mgmt_addr())));
    let want = expected_find(&roots.iter().map(|r| r.path()).collect::<Vec<_>>());
    for n in [&a, &b, &c] {
        let auth = basic(READER);
        wait_until(&format!("{} to list the tree", n.name), WAIT, || {
            (send(n.http, "GET", "/find/", &[("Authorization", &auth)], None).text() == want).then_some(())
        });
    }
    Empty { nodes: vec![a, b, c], roots }
}

#[test]
fn litmus_passes_through_a_node_that_owns_nothing() {
    if !have("litmus") {
        return;
    }
    let c = cluster_through_empty();
    let gamma = &c.nodes[2];
    // Under alpha's directory: every write goes through gamma to alpha.
    let r = call(gamma, "MKCOL", "/fs/alpha%20dir/litmus", Some(WRITER), &[], None);
    assert_eq!(r.status, 201, "{}", r.text());
    let url = format!("http://{}/fs/alpha%20dir/litmus/", gamma.http);
    let logs = tempfile::tempdir().unwrap();
    let out = Command::new("litmus")
        .env("TESTS", "basic copymove props locks")
        .current_dir(logs.path())
        .args([&url, WRITER.0, WRITER.1])
        .stdin(Stdio::null())
        .output()
        .expect("run litmus");
    let log = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    for group in ["basic", "copymove", "props", "locks"] {
        let summary = log
            .lines()
            .find(|l| l.contains(&format!("summary for `{group}'")))
            .unwrap_or_else(|| panic!("no {group} in:\n{log}"));
        assert!(summary.contains(" 0 failed") && summary.contains("100.0%"), "{summary}\n{log}");
    }
    assert!(out.status.success(), "{log}");
    // It ran on alpha's disk, through gamma, which still holds nothing.
    assert!(c.roots[0].path().join("alpha dir/litmus").is_dir());
    assert!(walk(c.roots[2].path()).is_empty(), "{:?}", walk(c.roots[2].path()));
}

/// A tree of files and directories with awkward names, some large.
fn local_tree(at: &Path) {
    write_file(at, "one.txt", b"one\n");
    write_file(at, "a dir/two words.txt", b"two\n");
    write_file(at, "a dir/b/big.bin", &pseudo_random(3 << 20, 11));
    write_file(at, "ünï cødé/100% [x] #1.txt", b"odd\n");
    write_file(at, "a dir/empty.txt", b"");
}

#[test]
fn rclone_syncs_up_and_down_through_a_node_that_owns_nothing() {
    if !have("rclone") {
        return;
    }
    let c = cluster_through_empty();
    let gamma = &c.nodes[2];
    let work = tempfile::tempdir().unwrap();
    let (up, down) = (work.path().join("up"), work.path().join("down"));
    local_tree(&up);
    let obscured = Command::new("rclone").args(["obscure", WRITER.1]).output().unwrap();
    let obscured = String::from_utf8(obscured.stdout).unwrap().trim().to_owned();
    let remote = format!(":webdav,url='http://{}/fs/',user={},pass={obscured}:alpha dir/synced", gamma.http, WRITER.0);
    let rclone = |args: &[&str]| {
        let out = Command::new("rclone")
            .env("RCLONE_CONFIG", work.path().join("rclone.conf"))
            .env("HOME", work.path())
            .args(args)
            .args(["--retries", "1", "--low-level-retries", "1"])
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "rclone {args:?}:\n{log}");
        log
    };
    rclone(&["sync", up.to_str().unwrap(), &remote]);
    rclone(&["check", up.to_str().unwrap(), &remote]);
    rclone(&["sync", &remote, down.to_str().unwrap()]);
    rclone(&["check", up.to_str().unwrap(), down.to_str().unwrap()]);
    // The files are on alpha's disk (the owner of the directory), not on gamma's.
    let on_alpha = c.roots[0].path().join("alpha dir/synced");
    for (rel, _) in walk(&up).into_iter().filter(|(_, dir)| !dir) {
        assert_eq!(fs::read(on_alpha.join(&rel)).unwrap(), fs::read(up.join(&rel)).unwrap(), "{rel}");
    }
    assert!(walk(c.roots[2].path()).is_empty());
    // A change on one side and a second sync: only that file moves, and check is clean again.
    fs::write(up.join("one.txt"), b"changed\n").unwrap();
    fs::remove_file(up.join("a dir/two words.txt")).unwrap();
    rclone(&["sync", up.to_str().unwrap(), &remote]);
    rclone(&["check", up.to_str().unwrap(), &remote]);
    assert!(!on_alpha.join("a dir/two words.txt").exists());
    assert_eq!(fs::read(on_alpha.join("one.txt")).unwrap(), b"changed\n");
    let listed = rclone(&["lsf", "-R", &remote]);
    assert!(listed.contains("ünï cødé/100% [x] #1.txt"), "{listed}");
}

#[test]
fn cadaver_scripted() {
    if !have("cadaver") {
        return;
    }
    let c = cluster_through_empty();
    let gamma = &c.nodes[2];
    let home = tempfile::tempdir().unwrap();
    fs::write(home.path().join(".netrc"), format!("machine 127.0.0.1 login {} password {}\n", WRITER.0, WRITER.1))
        .unwrap();
    fs::write(home.path().join("local.txt"), b"put by cadaver\n").unwrap();
    let script = "cd \"beta dir\"\nls\nmkcol made\nput local.txt made/f.txt\nget b.txt fetched.txt\nmove made/f.txt moved.txt\nls\nrm b.txt\nls\nquit\n";
    let mut child = Command::new("cadaver")
        .env("HOME", home.path())
        .current_dir(home.path())
        .arg(format!("http://{}/fs/", gamma.http))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!log.contains("failed:"), "{log}");
    let beta = c.roots[1].path().join("beta dir");
    assert_eq!(fs::read(home.path().join("fetched.txt")).ok().as_deref(), Some(&b"from beta\n"[..]), "{log}");
    assert_eq!(fs::read(beta.join("moved.txt")).unwrap(), b"put by cadaver\n", "{log}");
    assert!(beta.join("made").is_dir() && !beta.join("made/f.txt").exists(), "{log}");
    assert!(!beta.join("b.txt").exists(), "{log}");
    assert!(log.contains("b.txt") && log.contains("moved.txt"), "ls shows them:\n{log}");
    assert!(walk(c.roots[2].path()).is_empty());
}
