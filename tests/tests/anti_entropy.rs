//! Anti-entropy by digest between real nodes (`POST /digest/`, `--anti-entropy`,
//! `--digest-interval`): once two of our nodes have met, digests flow and no further full
//! update is sent; a forged, oversized or garbage digest gets a 4xx with the reason and changes
//! nothing; with the cluster secret, an untagged one gets 401.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use dftp_e2e::{get, http, send, wait_until, write_file, Node, NodeOpts, WAIT};
use serde_json::{json, Value};

/// A sample of `node`'s `/metrics`; 0 when the series is not there yet.
fn metric(node: &Node, series: &str) -> f64 {
    let page = get(&node.mgmt_url("/metrics")).text();
    page.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')).and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

const FULL_SENT: &str = "dftp_updates_total{direction=\"sent\",kind=\"full\"}";
const IN_SYNC_SENT: &str = "dftp_digests_total{direction=\"sent\",answer=\"in-sync\"}";

/// Two nodes that digest every 300 ms and would send full updates every second.
fn pair(ra: &Path, rb: &Path) -> (Node, Node) {
    let opts = |o: NodeOpts| o.arg("--digest-interval=300ms").arg("--full-update-interval=1s");
    let a = Node::start(opts(NodeOpts::new("a", ra)));
    let b = Node::start(opts(NodeOpts::new("b", rb).join(&a.mgmt_addr())));
    wait_until("a and b to hold each other's files", WAIT, || {
        let both = |n: &Node| n.find().contains("a1.txt") && n.find().contains("b1.txt");
        (both(&a) && both(&b)).then_some(())
    });
    (a, b)
}

fn roots() -> (tempfile::TempDir, tempfile::TempDir) {
    let (ra, rb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for i in 0..20 {
        write_file(ra.path(), &format!("a{i}.txt"), b"from a\n");
        write_file(rb.path(), &format!("b{i}.txt"), b"from b\n");
    }
    (ra, rb)
}

#[test]
fn after_the_join_digests_flow_and_no_further_full_update_is_sent() {
    let (ra, rb) = roots();
    let (a, b) = pair(ra.path(), rb.path());
    // Digests in sync both ways: the join is over.
    let synced = |n: &Node, at_least: f64| {
        wait_until(&format!("{} to have {at_least} digests answered in sync", n.name), WAIT, || {
            (metric(n, IN_SYNC_SENT) >= at_least).then_some(())
        })
    };
    synced(&a, 2.0);
    synced(&b, 2.0);
    let full = (metric(&a, FULL_SENT), metric(&b, FULL_SENT));
    assert!(full.0 >= 1.0 && full.1 >= 1.0, "each sent the other a full update at the join: {full:?}");
    // Ten more digests each (three seconds, three --full-update-interval): no full update.
    let (da, db) = (metric(&a, IN_SYNC_SENT), metric(&b, IN_SYNC_SENT));
    synced(&a, da + 10.0);
    synced(&b, db + 10.0);
    assert_eq!((metric(&a, FULL_SENT), metric(&b, FULL_SENT)), full, "no full update while digests flow");
    // And b's view of a is still a's: a change goes by an incremental update as before.
    write_file(ra.path(), "later.txt", b"later\n");
    wait_until("b to see later.txt", WAIT, || b.find().contains("later.txt").then_some(()));
    synced(&a, metric(&a, IN_SYNC_SENT) + 2.0);
    assert_eq!((metric(&a, FULL_SENT), metric(&b, FULL_SENT)), full);
}

/// `POST /digest/` to `node`'s management interface with `body`.
fn digest(node: &Node, content_type: &str, body: &[u8]) -> dftp_e2e::Resp {
    http("POST", &node.mgmt_url("/digest/"), &[("Content-Type", content_type)], Some(body))
}

#[test]
fn hostile_digests_are_refused_with_a_reason_and_change_nothing() {
    let (ra, rb) = roots();
    let (a, b) = pair(ra.path(), rb.path());
    let find_before = a.find();
    let table: Value = get(&b.mgmt_url("/cluster/")).json();
    let (epoch, seq) = (table["Me"]["Epoch"].as_u64().unwrap(), table["Me"]["Seq"].as_u64().unwrap());
    assert_eq!(table["Me"]["Digest"], "xxh3-64/64", "b says it speaks digests");

    let msg = |sender: &str, seq: u64, d: u64| {
        serde_json::to_vec(&json!({"SenderNodeName": sender, "Epoch": epoch, "Seq": seq, "Count": 1, "Digest": d}))
            .unwrap()
    };
    // In b's name at b's position with a wrong digest: a answers with its bucket sums of b's
    // view, and changes nothing.
    let r = digest(&a, "application/json", &msg("b", seq, 12345));
    assert_eq!(r.status, 200, "{}", r.text());
    let answer = r.json();
    assert_eq!(answer["State"], "differs");
    assert_eq!(answer["Count"], 20, "b's 20 files");
    assert_eq!(answer["Buckets"].as_array().map(Vec::len), Some(64));
    // At a position a has not applied: nothing to compare.
    assert_eq!(digest(&a, "application/json", &msg("b", seq + 5, 1)).json()["State"], "behind");

    let refusals: Vec<(u16, &str, Vec<u8>, &str)> = vec![
        (403, "application/json", msg("stranger", 0, 1), "not a live peer"),
        (400, "application/json", b"{\"SenderNodeName\":\"b\"".to_vec(), "EOF"),
        (400, "application/json", b"[1,2,3]".to_vec(), "Error decoding json"),
        (400, "application/json", msg("", seq, 1), "name"),
        (400, "text/plain", msg("b", seq, 1), "Content-Type"),
        (413, "application/json", vec![b' '; 5000], "larger than 4096 bytes"),
    ];
    for (status, ct, body, why) in refusals {
        let r = digest(&a, ct, &body);
        assert_eq!(r.status, status, "{}: {}", String::from_utf8_lossy(&body[..body.len().min(60)]), r.text());
        assert!(r.text().contains(why), "{:?} should say {why:?}", r.text());
    }
    let r = http("GET", &a.mgmt_url("/digest/"), &[], None);
    assert_eq!(r.status, 405);
    // Nothing changed: a serves the same tree, still knows b, and is up.
    assert_eq!(a.find(), find_before);
    assert!(a.peers().contains("b"));
    assert!(!a.log().contains("panicked"));
}

#[test]
fn with_a_secret_an_untagged_digest_gets_401() {
    let ra = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let file: PathBuf = keys.path().join("secret");
    std::fs::write(&file, "3f1c0e5a9b7d2c4e6f8a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let a = Node::start(NodeOpts::new("a", ra.path()).arg("--cluster-secret-file").arg(file.to_str().unwrap()));
    let body = br#"{"SenderNodeName":"b","Epoch":1,"Seq":0,"Count":0,"Digest":0}"#;
    let r = send(a.mgmt, "POST", "/digest/", &[("Content-Type", "application/json")], Some(body));
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(!r.text().is_empty(), "with the reason");
}
