//! The cluster secret (`--cluster-secret-file`) between real nodes: nodes with the key form a
//! cluster, a node with another key never joins; forged management requests (no tag, a wrong
//! one, a stale one, a replayed one) answer 401 and change nothing; keys rotate without the
//! cluster coming apart; a key file others may read is refused. And the attack of issue 14:
//! a greeting in a peer's name with the attacker's address, with and without a secret.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dftp_core::cluster_auth::{BodyDigest, Keys, HEADER};
use dftp_core::Time;
use dftp_e2e::signing::{nonce, now};
use dftp_e2e::*;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);
const OLD: &str = "3f1c0e5a9b7d2c4e6f8a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e";
const NEW: &str = "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f90123";
const WRONG: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A key file of `keys` (one per line) with mode 600, in `dir`.
fn key_file(dir: &Path, name: &str, keys: &[&str]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, keys.join("\n") + "\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn with_secret(opts: NodeOpts, file: &Path) -> NodeOpts {
    opts.arg("--cluster-secret-file").arg(file.to_str().unwrap())
}

/// A request to `node`'s management interface, signed with `keys` as made at `at`.
fn signed(node: &Node, keys: &Keys, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8], at: Time) -> Resp {
    let stamp = keys.sign_request(method, path, at, nonce(), BodyDigest::of(body));
    let mut all = headers.to_vec();
    all.push((HEADER, &stamp));
    send(node.mgmt, method, path, &all, Some(body))
}

/// `GET /cluster/`, signed with the node's key, and its answer checked as a node checks it.
fn cluster_of(node: &Node, keys: &Keys) -> Value {
    let n = nonce();
    let stamp = keys.sign_request("GET", "/cluster/", now(), n, BodyDigest::of(b""));
    let r = send(node.mgmt, "GET", "/cluster/", &[(HEADER, &stamp)], Some(b""));
    assert_eq!(r.status, 200, "{}", r.text());
    keys.verify_response(r.header(HEADER).map(str::as_bytes), n, 200, BodyDigest::of(&r.body))
        .expect("the table is signed, over our request");
    r.json()
}

fn peers_of(node: &Node, keys: &Keys) -> Vec<String> {
    cluster_of(node, keys)["Peers"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

/// Waits until `node` serves `rel` with `content`.
fn wait_for_file(node: &Node, rel: &str, content: &[u8]) {
    wait_until(&format!("{rel} on {}", node.name), WAIT, || {
        let r = node.get(&format!("/fs/{rel}"));
        (r.status == 200 && r.body == content).then_some(())
    });
}

fn update_body(sender: &str, path: &str, epoch: u64, seq: u64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "SenderNodeName": sender, "Full": false, "UpdateTime": 1795605982, "Epoch": epoch, "Seq": seq,
        "Files": [{"FullName": path, "Basename": path, "Dir": false, "LastModified": 1477174081,
                   "LastInfoUpdated": 4102444800u64, "SizeInBytes": 6, "FileMode": 420,
                   "OwnerNode": sender, "Deletion": false}],
    }))
    .unwrap()
}

#[test]
fn nodes_with_the_secret_form_a_cluster_and_a_node_with_another_key_never_joins() {
    let keys_dir = tempfile::tempdir().unwrap();
    let good = key_file(keys_dir.path(), "good", &[OLD]);
    let wrong = key_file(keys_dir.path(), "wrong", &[WRONG]);
    let (ra, rb, rc) = (awkward_tempdir("sa"), awkward_tempdir("sb"), awkward_tempdir("sc"));
    write_file(ra.path(), "from-a.txt", b"a\n");
    write_file(rb.path(), "from-b.txt", b"b\n");
    write_file(rc.path(), "from-c.txt", b"c\n");
    let a = Node::start(with_secret(NodeOpts::new("a", ra.path()), &good));
    let b = Node::start(with_secret(NodeOpts::new("b", rb.path()).join(&a.mgmt_addr()), &good));
    let c = Node::start(with_secret(NodeOpts::new("c", rc.path()).join(&a.mgmt_addr()), &wrong));
    wait_for_file(&a, "from-b.txt", b"b\n");
    wait_for_file(&b, "from-a.txt", b"a\n");
    // c greets a at every ping: wait until a has logged a refusal (at most one a minute, so maybe
    // of the harness's unsigned check at a's start) and c has been refused with a 401.
    wait_until("a refusing c", WAIT, || a.log().contains("cluster secret: refused").then_some(()));
    wait_until("c told of the refusal", WAIT, || {
        c.log().lines().any(|l| l.contains("401") && l.contains("not signed with the cluster secret")).then_some(())
    });
    // A later change of b still reaches a, so a has had every chance to take c in too.
    write_file(rb.path(), "later-b.txt", b"later\n");
    wait_for_file(&a, "later-b.txt", b"later\n");
    let keys = Keys::new(OLD.as_bytes(), None).unwrap();
    assert_eq!(peers_of(&a, &keys), ["b"], "c is no peer of a");
    assert!(!a.find().contains("from-c.txt"), "{}", a.find());
    assert!(!c.find().contains("from-a.txt"), "c believed no table of a: {}", c.find());
    // An unsigned read of the table is refused too, with the reason.
    let r = get(&a.mgmt_url("/cluster/"));
    assert_eq!(r.status, 401);
    assert!(r.text().contains("no X-Dftp-Auth tag"), "{}", r.text());
}

#[test]
fn forged_updates_answer_401_and_change_nothing() {
    let keys_dir = tempfile::tempdir().unwrap();
    let good = key_file(keys_dir.path(), "good", &[OLD]);
    let (ra, rb) = (awkward_tempdir("fa"), awkward_tempdir("fb"));
    write_file(ra.path(), "from-a.txt", b"a\n");
    write_file(rb.path(), "from-b.txt", b"b\n");
    let a = Node::start(with_secret(NodeOpts::new("a", ra.path()), &good));
    let b = Node::start(with_secret(NodeOpts::new("b", rb.path()).join(&a.mgmt_addr()), &good));
    wait_for_file(&a, "from-b.txt", b"b\n");
    let keys = Keys::new(OLD.as_bytes(), None).unwrap();
    let wrong = Keys::new(WRONG.as_bytes(), None).unwrap();
    let b_epoch = cluster_of(&b, &keys)["Me"]["Epoch"].as_u64().expect("b's epoch");
    let before = a.find();

    // The attack of the issue: an update in b's name, b's epoch, Seq at its maximum.
    let body = update_body("b", "evil.txt", b_epoch, u64::MAX);
    let json = [("Content-Type", "application/json")];
    let no_tag = send(a.mgmt, "POST", "/update/", &json, Some(&body));
    let bad_tag = signed(&a, &wrong, "POST", "/update/", &json, &body, now());
    let stale = signed(&a, &keys, "POST", "/update/", &json, &body, Time(now().0 - 600_000));
    let future = signed(&a, &keys, "POST", "/update/", &json, &body, Time(now().0 + 600_000));
    // Signed over another body than the one sent.
    let stamp = keys.sign_request("POST", "/update/", now(), nonce(), BodyDigest::of(b"{}"));
    let other_body = send(a.mgmt, "POST", "/update/", &[json[0], (HEADER, &stamp)], Some(&body));
    let garbled = send(a.mgmt, "POST", "/update/", &[json[0], (HEADER, "v1.1.2.3")], Some(&body));
    for (what, r, reason) in [
        ("no tag", &no_tag, "no X-Dftp-Auth tag"),
        ("a wrong key", &bad_tag, "wrong X-Dftp-Auth tag"),
        ("a stale time", &stale, "more than 300 s away"),
        ("a time ahead", &future, "more than 300 s away"),
        ("another body", &other_body, "wrong X-Dftp-Auth tag"),
        ("a garbled tag", &garbled, "malformed X-Dftp-Auth"),
    ] {
        assert_eq!(r.status, 401, "{what}: {}", r.text());
        assert!(r.text().contains(reason), "{what}: {}", r.text());
    }

    // A replay: a request a key holder signed, sent twice. The first is taken (and its answer
    // signed over it); the second, byte for byte the same, is not.
    let form = format!("peer={}", b.mgmt_addr());
    let stamp = keys.sign_request("POST", "/join/", now(), nonce(), BodyDigest::of(form.as_bytes()));
    let headers = [("Content-Type", "application/x-www-form-urlencoded"), (HEADER, stamp.as_str())];
    let first = send(a.mgmt, "POST", "/join/", &headers, Some(form.as_bytes()));
    assert_eq!(first.status, 200, "{}", first.text());
    let again = send(a.mgmt, "POST", "/join/", &headers, Some(form.as_bytes()));
    assert_eq!(again.status, 401);
    assert!(again.text().contains("replayed"), "{}", again.text());

    assert_eq!(a.find(), before, "nothing changed");
    // b's genuine updates still arrive: the forged Seq was never taken.
    write_file(rb.path(), "after.txt", b"after\n");
    wait_for_file(&a, "after.txt", b"after\n");
    assert!(!a.find().contains("evil.txt"));
    assert!(a.log().contains("cluster secret: refused"), "the refusals are logged");
}

#[test]
fn keys_rotate_without_the_cluster_coming_apart() {
    let keys_dir = tempfile::tempdir().unwrap();
    let a_keys = key_file(keys_dir.path(), "a", &[NEW, OLD]);
    let b_old = key_file(keys_dir.path(), "b-old", &[OLD]);
    let b_new = key_file(keys_dir.path(), "b-new", &[NEW]);
    let (ra, rb) = (awkward_tempdir("ra"), awkward_tempdir("rb"));
    write_file(ra.path(), "from-a.txt", b"a\n");
    write_file(rb.path(), "from-b.txt", b"b\n");
    // a has [new, old], b only old: a signs with both, so each takes the other's messages.
    let a = Node::start(with_secret(NodeOpts::new("a", ra.path()), &a_keys));
    let b = Node::start(with_secret(NodeOpts::new("b", rb.path()).join(&a.mgmt_addr()), &b_old));
    wait_for_file(&a, "from-b.txt", b"b\n");
    wait_for_file(&b, "from-a.txt", b"a\n");
    let old = Keys::new(OLD.as_bytes(), None).unwrap();
    assert_eq!(peers_of(&b, &old), ["a"], "b takes a's tables: a signs with both keys");
    // b moves on to [new] (restarted with it, on new ports: a signed greeting moves a peer).
    drop(b);
    let b = Node::start(with_secret(NodeOpts::new("b", rb.path()).join(&a.mgmt_addr()), &b_new));
    write_file(rb.path(), "after-rotation.txt", b"new\n");
    wait_for_file(&a, "after-rotation.txt", b"new\n");
    wait_for_file(&b, "from-a.txt", b"a\n");
    let new = Keys::new(NEW.as_bytes(), None).unwrap();
    assert_eq!(peers_of(&a, &new), ["b"]);
    assert_eq!(peers_of(&b, &new), ["a"]);
}

/// A server that answers every request with `EVIL` and counts the requests: the attacker's.
fn evil_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            counted.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0; 4096];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nEVIL\n");
        }
    });
    (addr, hits)
}

/// The greeting of the attack: b's name, the attacker's addresses.
fn forged_greeting(evil: SocketAddr) -> Vec<u8> {
    format!("name=b&public-addr={evil}&mgmt-addr={evil}").into_bytes()
}

#[test]
fn a_greeting_in_a_peers_name_does_not_move_it_without_a_secret() {
    let (ra, rb) = (awkward_tempdir("ga"), awkward_tempdir("gb"));
    write_file(rb.path(), "b-file.txt", b"genuine\n");
    let a = Node::start(NodeOpts::new("a", ra.path()));
    let b = Node::start(NodeOpts::new("b", rb.path()).join(&a.mgmt_addr()));
    wait_for_file(&a, "b-file.txt", b"genuine\n");
    let (evil, hits) = evil_server();
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let r = send(a.mgmt, "POST", "/cluster/", &form, Some(&forged_greeting(evil)));
    // The original's protocol answers a greeting with the table; the claim is just not believed.
    assert_eq!(r.status, 200, "{}", r.text());
    wait_until("the conflict in a's log", WAIT, || a.log().contains("address conflict").then_some(()));
    let line = a.log().lines().find(|l| l.contains("address conflict")).unwrap().to_owned();
    assert!(line.contains(&evil.to_string()) && line.contains(&b.http.to_string()), "{line}");
    // b keeps answering a's pings: after more of them, b's files still come from b.
    let pings = a.log().matches("update from b").count();
    write_file(rb.path(), "b-later.txt", b"later\n");
    wait_for_file(&a, "b-later.txt", b"later\n");
    assert!(a.log().matches("update from b").count() > pings);
    assert_eq!(a.get("/fs/b-file.txt").body, b"genuine\n");
    let table = get(&a.mgmt_url("/cluster/")).json();
    assert_eq!(table["Peers"]["b"]["PublicAddr"], b.http.to_string());
    assert_eq!(hits.load(Ordering::SeqCst), 0, "a never asked the attacker for anything");
}

#[test]
fn a_greeting_in_a_peers_name_is_refused_with_a_secret() {
    let keys_dir = tempfile::tempdir().unwrap();
    let good = key_file(keys_dir.path(), "good", &[OLD]);
    let (ra, rb) = (awkward_tempdir("ha"), awkward_tempdir("hb"));
    write_file(rb.path(), "b-file.txt", b"genuine\n");
    let a = Node::start(with_secret(NodeOpts::new("a", ra.path()), &good));
    let b = Node::start(with_secret(NodeOpts::new("b", rb.path()).join(&a.mgmt_addr()), &good));
    wait_for_file(&a, "b-file.txt", b"genuine\n");
    let (evil, hits) = evil_server();
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let r = send(a.mgmt, "POST", "/cluster/", &form, Some(&forged_greeting(evil)));
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.header(HEADER).is_none(), "a refusal before the tag was checked is not signed");
    let wrong = Keys::new(WRONG.as_bytes(), None).unwrap();
    let r = signed(&a, &wrong, "POST", "/cluster/", &form, &forged_greeting(evil), now());
    assert_eq!(r.status, 401, "{}", r.text());
    let keys = Keys::new(OLD.as_bytes(), None).unwrap();
    assert_eq!(cluster_of(&a, &keys)["Peers"]["b"]["PublicAddr"], b.http.to_string());
    assert_eq!(a.get("/fs/b-file.txt").body, b"genuine\n");
    assert!(!a.log().contains("address conflict"), "the claim never reached the node");
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[test]
fn a_key_file_others_may_read_or_a_short_key_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let root = awkward_tempdir("kf");
    let root = root.path().to_str().unwrap();
    let file = key_file(dir.path(), "key", &[OLD]);
    for mode in [0o640, 0o604, 0o660] {
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
        let out = run_dftp(&["--dfsroot", root, "--cluster-secret-file", file.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "mode {mode:o}: {err}");
        assert!(err.contains("--cluster-secret-file") && err.contains("chmod 600"), "{err}");
        assert!(!err.contains(OLD), "the key is never shown: {err}");
    }
    let short = key_file(dir.path(), "short", &["tooshort"]);
    let out = run_dftp(&["--dfsroot", root, "--cluster-secret-file", short.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--cluster-secret-file") && err.contains("shorter than 32"), "{err}");
    let missing = dir.path().join("nonexistent");
    let out = run_dftp(&["--dfsroot", root, "--cluster-secret-file", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}

/// `contrib/dftp-mgmt.py`, the operator's signed request from a shell: an implementation of the
/// tags of its own (Python's hmac), so this also checks the format against a second reader.
fn mgmt_py(key: &Path, method: &str, url: &str, body: Option<&str>) -> Option<std::process::Output> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/dftp-mgmt.py");
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(&script).arg(key).arg(method).arg(url);
    if let Some(b) = body {
        cmd.arg(b);
    }
    match cmd.output() {
        Ok(out) => Some(out),
        Err(e) => {
            eprintln!("skipping: python3 does not run: {e}");
            None
        }
    }
}

#[test]
fn an_operator_joins_nodes_with_the_signed_request_tool() {
    let keys_dir = tempfile::tempdir().unwrap();
    let good = key_file(keys_dir.path(), "good", &[NEW, OLD]);
    let only_old = key_file(keys_dir.path(), "old", &[OLD]);
    let wrong = key_file(keys_dir.path(), "wrong", &[WRONG]);
    let (ra, rb) = (awkward_tempdir("oa"), awkward_tempdir("ob"));
    write_file(ra.path(), "from-a.txt", b"a\n");
    write_file(rb.path(), "from-b.txt", b"b\n");
    let a = Node::start(with_secret(NodeOpts::new("a", ra.path()), &good));
    let b = Node::start(with_secret(NodeOpts::new("b", rb.path()), &good));
    let join = format!("peer={}", b.mgmt_addr());
    // Unsigned, as curl would send it: refused.
    let r = post_form(&a.mgmt_url("/join/"), &[("peer", &b.mgmt_addr())]);
    assert_eq!(r.status, 401, "{}", r.text());
    // With a wrong key: refused, and the tool says so.
    let Some(out) = mgmt_py(&wrong, "POST", &a.mgmt_url("/join/"), Some(&join)) else { return };
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("wrong X-Dftp-Auth tag"));
    assert_eq!(a.find(), "/from-a.txt\n", "no join happened");
    // With the cluster's keys (the old one alone is enough while the nodes still hold it).
    let out = mgmt_py(&only_old, "POST", &a.mgmt_url("/join/"), Some(&join)).unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    wait_for_file(&a, "from-b.txt", b"b\n");
    wait_for_file(&b, "from-a.txt", b"a\n");
    let out = mgmt_py(&good, "GET", &b.mgmt_url("/cluster/"), None).unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let table: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(table["Peers"]["a"]["MgmtAddr"], a.mgmt_addr());
}

/// With a secret, Prometheus (which cannot sign) still reads `GET /metrics`; every other
/// request to the management port, `/metrics` by another method included, needs a tag.
#[test]
fn metrics_are_read_without_a_tag_and_nothing_else_is() {
    let dir = tempfile::tempdir().unwrap();
    let file = key_file(dir.path(), "key", &["a key of at least thirty-two characters, for metrics"]);
    let root = awkward_tempdir("secret-metrics");
    write_file(root.path(), "a.txt", b"a");
    let node = Node::start(with_secret(NodeOpts::new("alone", root.path()), &file));
    let page = http("GET", &node.mgmt_url("/metrics"), &[], None);
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(page.text().contains("dftp_tree_paths"), "{}", page.text());
    assert_eq!(http("POST", &node.mgmt_url("/metrics"), &[], Some(b"")).status, 401);
    assert_eq!(http("GET", &node.mgmt_url("/cluster/"), &[], None).status, 401);
}
