//! Wire compatibility with the original Go implementation, by replaying the bodies it was
//! captured sending (tests/fixtures/seed-wire/): a node of the original, "nodeA", is played by a fake
//! server here; it greets our node with its captured greeting form and pushes its captured full
//! update, and our node must list nodeA's files as nodeA's, fetch them from nodeA the way the
//! original does (`?redirN=1`), speak to nodeA in the original's formats, and answer the
//! original's error cases with the same statuses (bugs aside).

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use dftp_e2e::*;

const WIRE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/seed-wire/");

fn capture(name: &str) -> String {
    let path = format!("{WIRE}{name}");
    fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("the captured traffic {path} ({e}): tests/fixtures/seed-wire/ is part of the repository")
    })
}

/// Splits a captured HTTP message into its head and its body (cut at Content-Length).
fn split_message(msg: &str) -> (String, Vec<u8>) {
    let (head, rest) = msg.split_once("\r\n\r\n").expect("a head and a body");
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .map(|v| v.trim().parse::<usize>().unwrap())
        .unwrap_or(rest.trim_end().len());
    (head.to_string(), rest.as_bytes()[..len].to_vec())
}

/// The bodies nodeA sent to a peer: its greeting form and its full update.
fn captured_requests() -> (Vec<u8>, Vec<u8>) {
    let text = capture("A_outgoing_requests_captured_by_fake_peer.txt");
    let (mut greeting, mut update) = (None, None);
    for block in text.split("=====REQUEST=====\n").filter(|b| !b.trim().is_empty()) {
        let (head, body) = split_message(block);
        if head.starts_with("POST /cluster/") {
            greeting = Some(body);
        } else if head.starts_with("POST /update/") {
            assert!(head.contains("\r\nContent-Type: application/json\r\n"));
            update = Some(body);
        }
    }
    (greeting.expect("a captured greeting"), update.expect("a captured update"))
}

/// What the fake nodeA sends for test.txt: the 20 bytes its captured update announces.
const TEST_TXT: &[u8] = b"This is a text file\n";

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
}

#[test]
fn a_node_of_the_original_joins_and_its_files_are_served() {
    let (greeting, update) = captured_requests();
    let (cluster_head, cluster_body) = split_message(&capture("A_mgmt_cluster.txt"));
    assert!(cluster_head.starts_with("HTTP/1.1 200"));
    let captured_table: Value = serde_json::from_slice(&cluster_body).unwrap();

    // nodeA, played by a fake server: its captured cluster table (nodeB moved to a closed
    // port) in answer to greetings, "ok" to updates, and a recognisable body for files.
    let closed = free_port();
    let fake_addr = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let addr_for_handler = fake_addr.clone();
    let table = String::from_utf8(cluster_body.clone()).unwrap();
    let nodea = FakeServer::start(move |req| {
        let me = addr_for_handler.get().cloned().unwrap_or_default();
        let plain = "text/plain; charset=utf-8".to_string();
        match (req.method.as_str(), req.target.split('?').next().unwrap()) {
            ("POST", "/cluster/") => {
                let t = table
                    .replace("127.0.0.1:17040", &me)
                    .replace("127.0.0.1:17041", &me)
                    .replace("127.0.0.1:27040", &format!("127.0.0.1:{closed}"))
                    .replace("127.0.0.1:27041", &format!("127.0.0.1:{closed}"));
                (200, plain, t.into_bytes()) // the original's Content-Type for JSON
            }
            ("POST", "/update/") => (200, plain, b"ok".to_vec()),
            ("GET" | "HEAD", "/fs/test.txt") => (200, plain, TEST_TXT.to_vec()),
            ("GET", p) if p.starts_with("/fs/") => (200, plain, format!("nodeA's {p}").into_bytes()),
            _ => (404, plain, b"404 page not found".to_vec()),
        }
    });
    fake_addr.set(nodea.addr.to_string()).unwrap();

    let root = awkward_tempdir("us");
    write_file(root.path(), "ours.txt", b"ours\n");
    // Digests every 200 ms: were one ever sent to the original's node, it would show below.
    let opts = NodeOpts::new("us", root.path()).arg("--peer-timeout").arg("1h").arg("--digest-interval=200ms");
    let us = Node::start(opts);

    // 1. nodeA's captured greeting, with its addresses moved to the fake server.
    let encoded = nodea.addr.to_string().replace(':', "%3A");
    let form = String::from_utf8(greeting)
        .unwrap()
        .replace("127.0.0.1%3A17040", &encoded)
        .replace("127.0.0.1%3A17041", &encoded);
    let r = http(
        "POST",
        &us.mgmt_url("/cluster/"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(form.as_bytes()),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let reply = r.json();
    assert_eq!(reply["Me"]["Name"], "us");
    assert_eq!(reply["Peers"]["nodeA"]["MgmtAddr"], nodea.addr.to_string());
    // The same shape as the original's table; `Me` also has our `Epoch`, `Seq`, `Digest` and
    // `Swim` (`--anti-entropy digest` and `--membership swim`, the defaults), which Go's decoder
    // ignores.
    assert_eq!(keys(&reply), keys(&captured_table));
    let mut ours = keys(&reply["Me"]);
    assert!(
        ours.remove("Epoch") && ours.remove("Seq") && ours.remove("Digest") && ours.remove("Swim"),
        "{}",
        reply["Me"]
    );
    assert_eq!(ours, keys(&captured_table["Me"]));
    assert_eq!(keys(&reply["Peers"]["nodeA"]), keys(&captured_table["Peers"]["nodeB"]));

    // 2. It asked for a full update: ours arrives in the original's format, with exactly the
    //    Content-Type the original insists on.
    let pushed = nodea.wait_for("our full update to nodeA", |r| r.method == "POST" && r.target == "/update/");
    assert_eq!(pushed.header("content-type"), Some("application/json"));
    let body: Value = serde_json::from_slice(&pushed.body).expect("a JSON update");
    let captured_update: Value = serde_json::from_slice(&update).unwrap();
    assert!(keys(&captured_update).is_subset(&keys(&body)), "{body}");
    assert_eq!(body["SenderNodeName"], "us");
    assert_eq!(body["Full"], true);
    let files = body["Files"].as_array().unwrap();
    let ours = files.iter().find(|f| f["FullName"] == "ours.txt").expect("ours.txt in our update");
    assert!(keys(&captured_update["Files"][0]).is_subset(&keys(ours)), "{ours}");
    assert_eq!(ours["OwnerNode"], "us");
    assert_eq!(ours["Basename"], "ours.txt");
    assert_eq!(ours["SizeInBytes"], 5);
    assert_eq!(ours["Dir"], false);

    // Our greeting back (a new peer is greeted) is the original's form.
    let greet = nodea.wait_for("our greeting to nodeA", |r| r.method == "POST" && r.target == "/cluster/");
    assert_eq!(greet.header("content-type"), Some("application/x-www-form-urlencoded"));
    let fields: Vec<(String, String)> = String::from_utf8_lossy(&greet.body)
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace("%3A", ":").replace("%3a", ":")))
        .collect();
    let field = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(field("name"), Some("us"));
    assert_eq!(field("public-addr"), Some(us.http.to_string().as_str()));
    assert_eq!(field("mgmt-addr"), Some(us.mgmt.to_string().as_str()));
    // nodeA's table has no `Swim`: our node (SWIM by default) greets it every ping interval, as
    // the original would, and never sends it a SWIM packet.
    wait_until("greetings of nodeA at every ping interval", Duration::from_secs(60), || {
        let greetings = nodea.requests().iter().filter(|r| r.method == "POST" && r.target == "/cluster/").count();
        (greetings >= 3).then_some(())
    });
    assert!(!nodea.requests().iter().any(|r| r.target.starts_with("/swim")));

    // 3. nodeA's captured full update, byte for byte.
    let r = post_json(&us.mgmt_url("/update/"), &update);
    assert_eq!((r.status, r.text().trim()), (200, "ok"));
    let paths: Vec<String> = captured_update["Files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["FileMode"].as_u64().unwrap() & (1 << 27) == 0) // not symlinks
        .map(|f| format!("/{}", f["FullName"].as_str().unwrap()))
        .collect();
    assert!(paths.contains(&"/<b>.html".to_string()) && paths.contains(&"/somedir/a.txt".to_string()));
    wait_until("nodeA's files in /find/", WAIT, || {
        let find = us.find();
        paths.iter().all(|p| find.lines().any(|l| l == p)).then_some(())
    });
    let find = us.find();
    assert!(find.lines().any(|l| l == "/ours.txt"), "{find}");
    for (dir, name) in [("", "<b>.html"), ("", "test.txt"), ("", ".hidden"), ("", "emptydir"), ("somedir", "g.gif")] {
        assert_eq!(us.owner_in_listing(dir, name).as_deref(), Some("nodeA"), "owner of {dir}/{name}");
    }
    assert_eq!(us.owner_in_listing("", "ours.txt").as_deref(), Some("us"));
    let listing = us.listing("");
    let test_txt = listing["entries"].as_array().unwrap().iter().find(|e| e["name"] == "test.txt").unwrap();
    assert_eq!(test_txt["size"], 20);
    assert_eq!(test_txt["modified"], 1477174081);
    let html = us.get("/fs/").text();
    assert!(html.contains(r#"<a href="./%3Cb%3E.html">&lt;b&gt;.html</a>"#), "{html}");

    // 4. nodeA's files are fetched from nodeA, the original's way.
    let r = us.get("/fs/somedir/a.txt");
    assert_eq!((r.status, r.text()), (200, "nodeA's /fs/somedir/a.txt".to_string()));
    let r = us.get("/fs/%3Cb%3E.html");
    assert_eq!(r.status, 200);
    let fetched = nodea.wait_for("a proxied fetch", |r| r.method == "GET" && r.target.contains(".html"));
    assert_eq!(fetched.target, "/fs/%3Cb%3E.html?redirN=1");
    assert!(nodea.requests().iter().any(|r| r.target == "/fs/somedir/a.txt?redirN=1"));
    // nodeA sends no Accept-Ranges, Last-Modified or ETag, and ignores ranges: our node answers
    // them from the size and time of its captured update (tests/original_files.rs has more).
    let r = us.get("/fs/test.txt");
    assert_eq!((r.status, r.body.as_slice()), (200, TEST_TXT));
    assert_eq!(r.header("last-modified"), Some("Sat, 22 Oct 2016 22:08:01 GMT"));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    let r = http("GET", &us.url("/fs/test.txt"), &[("Range", "bytes=0-3")], None);
    assert_eq!((r.status, r.text().as_str()), (206, "This"));
    assert_eq!(r.header("content-range"), Some("bytes 0-3/20"));
    // A request that has already been passed around twice is refused, not passed on.
    assert!(us.get("/fs/test.txt?redirN=2").status >= 400);

    // 5. The captured security scenario: nodeA deletes one nested file of its own...
    let deletion = serde_json::json!({"SenderNodeName": "nodeA", "Full": false, "UpdateTime": 1795605990,
        "Files": [{"Deletion": true, "FullName": "somedir/a.txt", "Basename": "a.txt", "Dir": false,
                   "LastModified": 0, "LastInfoUpdated": 0, "SizeInBytes": 0, "FileMode": 0, "OwnerNode": "nodeA"}]});
    let r = post_json(&us.mgmt_url("/update/"), &serde_json::to_vec(&deletion).unwrap());
    assert_eq!(r.status, 200);
    wait_until("the deletion", WAIT, || (!us.find().contains("/somedir/a.txt\n")).then_some(()));
    assert!(us.find().contains("/somedir/g.gif\n"));
    assert_eq!(us.get("/fs/somedir/a.txt").status, 404);
    let somedir = us.get("/fs/somedir/");
    assert_eq!(somedir.status, 200);
    assert!(!somedir.text().contains("a.txt") && somedir.text().contains("g.gif"), "{}", somedir.text());
    // ...and a second fake peer cannot hijack nodeA's files or inject files in its name.
    let r = post_form(
        &us.mgmt_url("/cluster/"),
        &[
            ("name", "fakepeer"),
            ("public-addr", &format!("127.0.0.1:{closed}")),
            ("mgmt-addr", &format!("127.0.0.1:{closed}")),
        ],
    );
    assert_eq!(r.status, 200);
    let before = us.find();
    let hijack = serde_json::json!({"SenderNodeName": "fakepeer", "Full": false, "UpdateTime": 1795605990,
        "Files": [{"Deletion": false, "FullName": "test.txt", "Basename": "test.txt", "Dir": false,
                   "LastModified": 0, "LastInfoUpdated": 4102444800u64, "SizeInBytes": 1, "FileMode": 420, "OwnerNode": "nodeA"},
                  {"Deletion": false, "FullName": "injected/evil.txt", "Basename": "evil.txt", "Dir": false,
                   "LastModified": 0, "LastInfoUpdated": 4102444800u64, "SizeInBytes": 1, "FileMode": 420, "OwnerNode": "us"}]});
    // The original answers such an update 200 and ignores it; ours stops at the record owned by
    // "us" (this node, no peer: no update can carry its files) and answers 403.
    assert_eq!(post_json(&us.mgmt_url("/update/"), &serde_json::to_vec(&hijack).unwrap()).status, 403);
    assert_eq!(us.find(), before);
    assert_eq!(us.owner_in_listing("", "test.txt").as_deref(), Some("nodeA"));
    assert_eq!(us.get("/fs/injected/evil.txt").status, 404);
    // The greeting that panicked the original.
    let r = post_form(&us.mgmt_url("/cluster/"), &[("name", "x"), ("public-addr", "nocolon"), ("mgmt-addr", "h:1")]);
    assert_eq!(r.status, 400);
    assert!(!r.text().contains("PANIC") && !r.text().contains("goroutine"));
    // The original's node does not speak digests (its table has no `Digest`): it never got one.
    let targets: Vec<String> = nodea.requests().iter().map(|r| r.target.clone()).collect();
    assert!(!targets.iter().any(|t| t.starts_with("/digest")), "{targets:?}");
}

/// The original's error cases, replayed: the same statuses, except where the original was
/// wrong (it refused `application/json; charset=utf-8`, which we accept).
#[test]
fn the_originals_error_cases_get_the_same_statuses() {
    let text = capture("A_mgmt_error_cases.txt");
    let root = awkward_tempdir("errors");
    write_file(root.path(), "x.txt", b"x\n");
    let node = Node::start(NodeOpts::new("nodeA", root.path()));
    let tree = node.find();
    let update = |sender: &str| format!(r#"{{"SenderNodeName":"{sender}","Full":true,"UpdateTime":1,"Files":[]}}"#);
    let mut seen = 0;
    for section in text.split("### ").filter(|s| !s.trim().is_empty()) {
        let (title, response) = section.split_once('\n').unwrap();
        let status: u16 = response.split_whitespace().nth(1).unwrap().parse().unwrap();
        let url = |p: &str| node.mgmt_url(p);
        let json = [("Content-Type", "application/json")];
        let r = match title.trim() {
            "GET /join/" => get(&url("/join/")),
            "POST /join/ (no peer)" => post_form(&url("/join/"), &[]),
            "GET /update/" => get(&url("/update/")),
            "POST /update/ form ctype" => post_form(&url("/update/"), &[("x", "y")]),
            "POST /update/ ctype with charset" => {
                let r = http(
                    "POST",
                    &url("/update/"),
                    &[("Content-Type", "application/json; charset=utf-8")],
                    Some(update("nodeZ").as_bytes()),
                );
                assert_eq!(status, 400, "the original refused it");
                assert_eq!(r.status, 200, "{title}: we accept parameters: {}", r.text());
                seen += 1;
                continue;
            }
            "POST /update/ bad json" => http("POST", &url("/update/"), &json, Some(b"{bad json}")),
            "POST /update/ unknown sender" => http("POST", &url("/update/"), &json, Some(update("nobody").as_bytes())),
            "POST /cluster/ missing params" => post_form(&url("/cluster/"), &[("name", "x")]),
            "PUT /cluster/ (any non-POST method = GET)" => http("PUT", &url("/cluster/"), &[], None),
            other => panic!("a captured case this test does not know: {other}"),
        };
        assert_eq!(r.status, status, "{title}: {}", r.text());
        seen += 1;
    }
    assert_eq!(seen, 9, "every captured case was replayed");
    assert_eq!(node.find(), tree);
}

/// The deletion records that `us` sent nodeA so far: (path, LastInfoUpdated).
fn deletions_sent(nodea: &FakeOriginal) -> Vec<(String, i64)> {
    let updates = nodea.server.requests().into_iter().filter(|r| r.method == "POST" && r.target == "/update/");
    updates
        .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
        .flat_map(|u| u["Files"].as_array().cloned().unwrap_or_default())
        .filter(|f| f["Deletion"] == true)
        .map(|f| (f["FullName"].as_str().unwrap_or("").to_string(), f["LastInfoUpdated"].as_i64().unwrap_or(-1)))
        .collect()
}

/// A file deleted on our node's disk leaves the tree of a node of the original, which applies a
/// record only when its LastInfoUpdated is greater than the one it holds: the deletion carries
/// the deletion time, in Unix seconds, past the time the file was announced with. A nested
/// deletion, which the original would apply to the top-level directory, leaves that directory
/// and the rest of it alone.
#[test]
fn files_deleted_on_our_node_leave_the_originals_tree() {
    let root = awkward_tempdir("deleting");
    for rel in ["gone.txt", "kept.txt", "dir/nested.txt", "dir/kept.txt"] {
        write_file(root.path(), rel, format!("{rel}\n").as_bytes());
    }
    let us = Node::start(NodeOpts::new("us", root.path()).arg("--peer-timeout").arg("1h"));
    let nodea = FakeOriginal::start("nodeA", vec![("theirs.txt", OriginalFile::new(b"theirs\n".to_vec(), 1477174081))]);
    nodea.join(&us);
    for path in ["gone.txt", "kept.txt", "dir", "dir/nested.txt", "dir/kept.txt"] {
        nodea.wait_listed(path, true);
    }
    wait_until("nodeA's file on our node", WAIT, || us.find().contains("/theirs.txt\n").then_some(()));
    let announced = nodea.tree().entry("gone.txt").unwrap().last_info_updated;
    let ctime = fs::metadata(root.path().join("gone.txt")).unwrap().ctime();
    assert_eq!(announced, ctime, "a file is announced with its status-change time");

    // A top-level file.
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    fs::remove_file(root.path().join("gone.txt")).unwrap();
    nodea.wait_listed("gone.txt", false);
    let after = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let sent = deletions_sent(&nodea);
    let (_, time) = sent.iter().find(|(p, _)| p == "gone.txt").expect("a deletion record for gone.txt");
    assert!(*time > announced, "{time} is past {announced}");
    assert!((before..=after.max(announced + 1)).contains(time), "{time}: Unix seconds, the deletion time");

    // A file made and deleted at once (usually within one second: the deletion time is then
    // the second it was announced with, and must be one past it).
    write_file(root.path(), "quick.txt", b"quick\n");
    nodea.wait_listed("quick.txt", true);
    fs::remove_file(root.path().join("quick.txt")).unwrap();
    nodea.wait_listed("quick.txt", false);

    // A nested file: our node forgets it, and nodeA keeps showing the directory and the rest.
    fs::remove_file(root.path().join("dir/nested.txt")).unwrap();
    wait_until("the nested deletion sent to nodeA", WAIT, || {
        deletions_sent(&nodea).iter().any(|(p, _)| p == "dir/nested.txt").then_some(())
    });
    wait_until("the nested deletion on our node", WAIT, || (!us.find().contains("/dir/nested.txt\n")).then_some(()));
    let listed = nodea.tree().listed();
    for path in ["dir", "dir/kept.txt", "kept.txt"] {
        assert!(listed.contains(path), "{path} is still shown by nodeA: {listed:?}");
    }
    assert!(!nodea.tree().entry("dir").unwrap().deleted);
    assert!(us.find().contains("/theirs.txt\n"), "nodeA's own file is untouched");
}
