//! The snapshot's membership tables are kept from one snapshot to the next while nothing they
//! show changed (`core/src/node/tables.rs`): they must never show an older state than the
//! node's, not even within the second they were built in, and must be shared when nothing
//! changed (that sharing is what makes a snapshot after each SWIM packet cheap).

use dftp_core::{Config, Event, Greeting, Liveness, Node, PeerAddr, Span, Time, Update};

fn addr(port: u16) -> PeerAddr {
    PeerAddr::new_unchecked("127.0.0.1", port)
}

fn greet(node: &mut Node, now: Time, name: &str, port: u16) {
    let greeting =
        Greeting { name: name.into(), public_addr: addr(port), mgmt_addr: addr(port + 1), request_full_update: false };
    node.handle(now, Event::GreetingReceived { greeting, from_host: None });
}

#[test]
fn a_peer_that_greets_shows_in_the_next_snapshot_of_the_same_second() {
    let t = Time::from_secs(1_800_000_000);
    let mut node = Node::new(Config::new("me", "c", addr(7040), addr(7041), 1), t);
    let before = node.snapshot(t);
    assert!(before.cluster().peers.is_empty());
    greet(&mut node, t + Span::from_millis(10), "b", 8000);
    let after = node.snapshot(t + Span::from_millis(20));
    assert!(after.cluster().peers.contains_key("b"), "the new peer is in the wire table");
    assert!(after.members().iter().any(|m| m.name == "b" && m.liveness == Liveness::Alive));
    // The earlier snapshot is untouched: readers holding it see what it was.
    assert!(before.cluster().peers.is_empty());
}

#[test]
fn an_update_shows_as_the_peers_last_update_in_the_same_second() {
    let t = Time::from_secs(1_800_000_000);
    let mut node = Node::new(Config::new("me", "c", addr(7040), addr(7041), 1), t);
    greet(&mut node, t, "b", 8000);
    let last_in =
        |node: &Node| node.snapshot(t).members().iter().find(|m| m.name == "b").and_then(|m| m.last_update_in);
    assert_eq!(last_in(&node), None);
    let update = Update {
        files: vec![],
        update_time: 1,
        full: true,
        sender_node_name: "b".into(),
        epoch: Some(1),
        seq: Some(0),
        buckets: None,
    };
    node.handle(t, Event::UpdateReceived(update));
    assert_eq!(last_in(&node), Some(t));
}

#[test]
fn tables_are_shared_while_nothing_changes_and_rebuilt_each_second() {
    let t = Time::from_secs(1_800_000_000);
    let mut node = Node::new(Config::new("me", "c", addr(7040), addr(7041), 1), t);
    greet(&mut node, t, "b", 8000);
    let a = node.snapshot(t);
    node.handle(t + Span::from_millis(300), Event::Timer);
    let b = node.snapshot(t + Span::from_millis(300));
    assert!(std::ptr::eq(a.cluster(), b.cluster()), "nothing shown changed: the same table");
    let later = t + Span::from_millis(1_000);
    let c = node.snapshot(later);
    assert!(!std::ptr::eq(a.cluster(), c.cluster()), "a new second: our own LastAlive moved");
    assert_eq!(c.cluster().me.last_alive, later.unix_secs());
}
