//! The management interface under bad input: wrong methods, missing fields, malformed JSON,
//! wrong Content-Type, addresses without a port (the original panicked), oversize bodies, and
//! updates from unknown nodes or claiming files of another node. Each is refused or ignored,
//! the tree stays as it was, and the node stays up.

use dftp_e2e::*;
use serde_json::json;

fn update(sender: &str, full: bool, files: &[(&str, &str, bool)]) -> Vec<u8> {
    let files: Vec<Value> = files
        .iter()
        .map(|(path, owner, deletion)| {
            json!({
                "Deletion": deletion,
                "FullName": path,
                "Basename": path.rsplit('/').next().unwrap(),
                "Dir": false,
                "LastModified": 1477174081,
                "LastInfoUpdated": 4102444800u64, // 2100: newer than anything on disk
                "SizeInBytes": 6,
                "FileMode": 420,
                "OwnerNode": owner,
            })
        })
        .collect();
    serde_json::to_vec(&json!({"SenderNodeName": sender, "Full": full, "UpdateTime": 1795605982, "Files": files}))
        .unwrap()
}

/// A one-node cluster with a couple of files, a small update limit and a long peer timeout
/// (so a fake peer that never answers stays registered for the whole test).
fn solo() -> (Node, tempfile::TempDir) {
    let root = awkward_tempdir("solo");
    write_file(root.path(), "test.txt", b"a text\n");
    write_file(root.path(), "somedir/a.txt", b"a\n");
    let node = Node::start(
        NodeOpts::new("solo", root.path()).arg("--max-update-bytes").arg("4096").arg("--peer-timeout").arg("1h"),
    );
    (node, root)
}

fn no_panic(r: &Resp) {
    let t = r.text();
    assert!(!t.contains("panic") && !t.contains("PANIC") && !t.contains(".rs:"), "a stack trace: {t}");
}

#[test]
fn bad_requests_are_refused_and_the_node_stays_up() {
    let (mut node, root) = solo();
    let tree = node.find();
    let secrets = vec![root.path().to_string_lossy().into_owned()];
    let check = |what: &str, r: Resp, status: u16| {
        assert_eq!(r.status, status, "{what}: {}", r.text());
        no_panic(&r);
        assert_contained(what, &r.body, &secrets);
        r
    };

    let r = check("GET /join/", get(&node.mgmt_url("/join/")), 405);
    assert!(r.text().contains("POST"), "{}", r.text());
    check("POST /join/ without peer", post_form(&node.mgmt_url("/join/"), &[]), 400);
    check("POST /join/ other field", post_form(&node.mgmt_url("/join/"), &[("peers", "127.0.0.1:1")]), 400);
    check("POST /join/ peer without port", post_form(&node.mgmt_url("/join/"), &[("peer", "nocolon")]), 400);
    check("GET /update/", get(&node.mgmt_url("/update/")), 405);
    check("GET /nowhere", get(&node.mgmt_url("/nowhere")), 404);

    // Content-Type: exactly application/json (parameters allowed), nothing else.
    let body = update("stranger", false, &[("x.txt", "stranger", false)]);
    let url = node.mgmt_url("/update/");
    for ctype in ["application/x-www-form-urlencoded", "text/plain", "application/jsonx", "json"] {
        check(ctype, http("POST", &url, &[("Content-Type", ctype)], Some(&body)), 400);
    }
    check("no Content-Type", http("POST", &url, &[], Some(&body)), 400);
    check(
        "with a charset",
        http("POST", &url, &[("Content-Type", "application/json; charset=utf-8")], Some(&body)),
        // Taken as JSON (else 400), and refused at its first record: "stranger" is no peer.
        403,
    );

    // Malformed JSON, and JSON that is not an object (serde alone would take `[]` as an empty update).
    for bad in
        [&b"{bad"[..], b"", b"null", b"[]", b"{\"Files\": 3}", b"{\"SenderNodeName\": 1, \"Files\": []}", b"\xff\xfe"]
    {
        check(&format!("body {:?}", String::from_utf8_lossy(bad)), post_json(&url, bad), 400);
    }
    let mut truncated = update("stranger", true, &[("x.txt", "stranger", false)]);
    truncated.truncate(truncated.len() / 2);
    check("truncated JSON", post_json(&url, &truncated), 400);

    // Bodies over --max-update-bytes (4096 here), with and without a Content-Length.
    let files: Vec<String> = (0..100).map(|i| format!("padding/file-{i:04}.txt")).collect();
    let big = update("stranger", true, &files.iter().map(|f| (f.as_str(), "stranger", false)).collect::<Vec<_>>());
    assert!(big.len() > 4096);
    check("oversize update", post_json(&url, &big), 413);
    let chunked = format!(
        "POST /update/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n{:x}\r\n{}\r\n0\r\n\r\n",
        big.len(),
        String::from_utf8(big.clone()).unwrap()
    );
    assert_eq!(raw_status(&raw_request(node.mgmt, chunked.as_bytes())), 413, "oversize chunked update");
    let form = format!("peer={}", "x".repeat(100_000));
    check("oversize form", http("POST", &node.mgmt_url("/join/"), &[], Some(form.as_bytes())), 413);

    // Greetings with bad fields: 400 with a reason (the original panicked with a stack trace).
    let greet = |fields: &[(&str, &str)]| post_form(&node.mgmt_url("/cluster/"), fields);
    check("greeting without fields", greet(&[]), 400);
    check("greeting without mgmt-addr", greet(&[("name", "x"), ("public-addr", "127.0.0.1:1")]), 400);
    let r = check(
        "public-addr without a colon",
        greet(&[("name", "x"), ("public-addr", "nocolon"), ("mgmt-addr", "127.0.0.1:1")]),
        400,
    );
    assert!(r.text().contains("nocolon"), "the reason names the bad field: {}", r.text());
    check("mgmt-addr without a colon", greet(&[("name", "x"), ("public-addr", "h:1"), ("mgmt-addr", "nocolon")]), 400);
    check("port out of range", greet(&[("name", "x"), ("public-addr", "h:99999"), ("mgmt-addr", "h:1")]), 400);
    check("our own name", greet(&[("name", "solo"), ("public-addr", "h:1"), ("mgmt-addr", "h:2")]), 400);
    check("an empty name", greet(&[("name", ""), ("public-addr", "h:1"), ("mgmt-addr", "h:2")]), 400);

    // Like the original, any other method on /cluster/ reads the table.
    let r = check("PUT /cluster/", http("PUT", &node.mgmt_url("/cluster/"), &[], None), 200);
    assert_eq!(r.json()["Me"]["Name"], "solo");

    assert!(node.is_up(), "the node died:\n{}", node.log());
    assert_eq!(node.find(), tree, "the tree changed");
    assert!(node.peers().is_empty(), "a refused greeting registered a peer: {:?}", node.peers());
    assert_eq!(node.get("/fs/test.txt").body, b"a text\n");
}

#[test]
fn updates_from_strangers_or_for_other_owners_change_nothing() {
    let (mut node, root) = solo();
    let tree = node.find();
    let url = node.mgmt_url("/update/");
    let secrets = vec![root.path().to_string_lossy().into_owned()];

    // An unknown sender: accepted as the original does ("ok"), and ignored.
    let r = post_json(&url, &update("stranger", true, &[("injected/evil.txt", "stranger", false)]));
    assert!(r.status == 200 || r.status == 400 || r.status == 403, "{}", r.status);
    let r = post_json(&url, &update("stranger", false, &[("test.txt", "stranger", false)]));
    assert!(r.status < 500);
    assert_eq!(node.find(), tree, "an unknown node changed the tree");

    // A registered peer that never answers (closed ports).
    let closed = format!("127.0.0.1:{}", free_port());
    let r = post_form(
        &node.mgmt_url("/cluster/"),
        &[("name", "mallory"), ("public-addr", &closed), ("mgmt-addr", &closed)],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["Peers"]["mallory"].is_object(), "{}", r.text());

    // It may not claim, inject or delete files in another node's name...
    for (files, what) in [
        (vec![("test.txt", "solo", false)], "claiming a file of solo's"),
        (vec![("injected/evil.txt", "solo", false)], "injecting a file in solo's name"),
        (vec![("test.txt", "solo", true), ("somedir/a.txt", "solo", true)], "deleting solo's files"),
        (vec![("other.txt", "someone-else", false)], "a file of a third node"),
        (
            vec![("../escape.txt", "mallory", false), ("a/./b", "mallory", false), ("x\u{0}y", "mallory", false)],
            "bad paths",
        ),
        (
            vec![
                ("x\n/etc/passwd", "mallory", false),
                ("tab\there", "mallory", false),
                ("e\u{1b}[31m", "mallory", false),
            ],
            "names with control characters (a newline would forge a line of /find/)",
        ),
    ] {
        for full in [false, true] {
            let r = post_json(&url, &update("mallory", full, &files));
            // 403: a record of another owner than a peer stops the parse there.
            assert!(r.status == 200 || r.status == 400 || r.status == 403, "{what}: {} {}", r.status, r.text());
            assert_eq!(node.find(), tree, "{what} (full: {full}) changed the tree");
        }
    }
    assert_eq!(node.owner_in_listing("", "test.txt").as_deref(), Some("solo"));
    assert_eq!(node.get("/fs/test.txt").body, b"a text\n");
    assert_eq!(node.get("/fs/injected/evil.txt").status, 404);

    // ...but its own files go in (so the refusals above are not vacuous), and fetching one
    // fails cleanly since it does not answer.
    let r = post_json(&url, &update("mallory", false, &[("mallory.txt", "mallory", false)]));
    assert_eq!(r.status, 200);
    wait_until("mallory's own file", WAIT, || node.find().contains("/mallory.txt\n").then_some(()));
    assert_eq!(node.owner_in_listing("", "mallory.txt").as_deref(), Some("mallory"));
    let r = node.get("/fs/mallory.txt");
    assert!(r.status >= 500, "{}", r.status);
    no_panic(&r);
    assert_contained("an unreachable owner", &r.body, &secrets);

    assert!(node.is_up(), "the node died:\n{}", node.log());
}
