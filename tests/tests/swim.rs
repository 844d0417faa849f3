//! `--membership swim` between real processes: the nodes say so in their `/cluster/` table, a
//! killed node is dropped by SWIM and comes back when it restarts, and `POST /swim/` refuses
//! what is not a SWIM packet of a peer (garbage, oversize, another method) with a reason,
//! leaving the node up and its peers as they were.

use std::time::Duration;

use dftp_e2e::*;

const PATIENCE: Duration = Duration::from_secs(60);

fn node(name: &str, root: &std::path::Path, join: Option<&Node>) -> Node {
    // A long peer timeout: only SWIM can drop a peer within the test.
    let mut opts = NodeOpts::new(name, root).arg("--peer-timeout=1h").arg("--swim-probe-interval=200ms");
    if let Some(j) = join {
        opts = opts.join(&j.mgmt_addr());
    }
    Node::start(opts)
}

#[test]
fn swim_nodes_drop_a_killed_peer_and_take_it_back() {
    let (ra, rb) = (awkward_tempdir("swim-a"), awkward_tempdir("swim-b"));
    write_file(rb.path(), "from-b.txt", b"b\n");
    let a = node("a", ra.path(), None);
    let b = node("b", rb.path(), Some(&a));
    wait_until("a and b to know each other", PATIENCE, || {
        (a.peers().contains("b") && b.peers().contains("a")).then_some(())
    });
    let table = get(&a.mgmt_url("/cluster/")).json();
    assert!(table["Me"]["Swim"].is_u64(), "a says it speaks SWIM: {table}");
    wait_until("b's file at a", PATIENCE, || a.find().contains("from-b.txt").then_some(()));

    drop(b);
    // Its peer timeout is an hour: only SWIM can tell it is gone.
    wait_until("a to drop b", PATIENCE, || (!a.peers().contains("b")).then_some(()));
    assert!(!a.find().contains("from-b.txt"));
    assert!(a.log().contains("peer b stopped answering"), "{}", a.log());

    let _b = node("b", rb.path(), Some(&a));
    wait_until("b back at a, with its file", PATIENCE, || {
        (a.peers().contains("b") && a.find().contains("from-b.txt")).then_some(())
    });
}

#[test]
fn garbage_to_swim_is_refused_and_the_node_stays_up() {
    let (ra, rb) = (awkward_tempdir("swim-ga"), awkward_tempdir("swim-gb"));
    let mut a = node("a", ra.path(), None);
    let b = node("b", rb.path(), Some(&a));
    wait_until("a and b to know each other", PATIENCE, || {
        (a.peers().contains("b") && b.peers().contains("a")).then_some(())
    });
    let url = a.mgmt_url("/swim/");
    let octets = [("Content-Type", "application/octet-stream")];

    let r = http("POST", &url, &octets, Some(b"this is no SWIM packet"));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("not a SWIM packet"), "{}", r.text());

    let r = http("POST", &url, &octets, Some(&pseudo_random(1000, 7)));
    assert_eq!(r.status, 400, "{}", r.text());

    let r = http("POST", &url, &octets, Some(&[]));
    assert_eq!(r.status, 400, "{}", r.text());

    let r = http("POST", &url, &octets, Some(&vec![0u8; 64 << 10]));
    assert_eq!(r.status, 413, "{}", r.text());

    let r = get(&url);
    assert_eq!(r.status, 405, "{}", r.text());
    assert!(r.text().contains("POST"), "{}", r.text());

    assert!(a.is_up());
    assert!(a.peers().contains("b"), "b is still a's peer");
}

#[test]
fn ping_nodes_do_not_take_swim_packets() {
    let r = awkward_tempdir("swim-ping");
    let a = Node::start(NodeOpts::new("a", r.path()).arg("--membership=ping"));
    let table = get(&a.mgmt_url("/cluster/")).json();
    assert!(table["Me"].get("Swim").is_none(), "{table}");
    let resp = http("POST", &a.mgmt_url("/swim/"), &[], Some(b"x"));
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert!(resp.text().contains("--membership ping"), "{}", resp.text());
}
