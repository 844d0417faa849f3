//! The shared net's own mechanics that no scenario elsewhere leans on yet, checked so that a
//! test built on them can trust them: delivering only what goes to one node, reordering a
//! link's queue, and dropping a leg without telling anyone.

mod common;

use common::*;
use dftp_core::{Event, Notice};

const A: usize = 0;
const B: usize = 1;
const C: usize = 2;

fn knows(net: &Net, i: usize, name: &str) -> bool {
    net.node(i).peers().contains_key(name)
}

#[test]
fn deliver_to_one_node_reorder_and_drop() {
    let mut net = Net::new([config("a", 1, 1), config("b", 2, 1), config("c", 3, 1)]);
    let (b, c) = (net.cfg(B).mgmt_addr.clone(), net.cfg(C).mgmt_addr.clone());
    net.handle(A, Event::JoinRequested(vec![b, c]));
    assert_eq!((net.queue(A, B).len(), net.queue(A, C).len()), (1, 1), "{:?}", net.in_flight());

    // Only what goes to c: c meets a, and what c sends back waits on the link c -> a.
    net.deliver_to(C);
    assert!(knows(&net, C, "a"));
    assert!(!knows(&net, B, "a"), "b got a's greeting too");
    assert!(!knows(&net, A, "c"), "a got c's answer");
    assert_eq!(net.queue(A, B).len(), 1);

    // The link c -> a reversed: the other links keep their order.
    let ids = |net: &Net, from, to| net.queue(from, to).iter().map(|f| f.id).collect::<Vec<_>>();
    let before = ids(&net, C, A);
    assert!(before.len() >= 2, "c answers a and greets it back: {:?}", net.queue(C, A));
    let keys: Vec<u32> = (0..before.len() as u32).rev().collect();
    let a_to_b = ids(&net, A, B);
    net.reorder(C, A, &keys);
    let mut reversed = before.clone();
    reversed.reverse();
    assert_eq!(ids(&net, C, A), reversed);
    assert_eq!(ids(&net, A, B), a_to_b);

    // a's greeting to b dropped: b never hears of a, and a is not told (it waits for an answer).
    let greeting = net.find(|f| f.from == A && f.to == Some(B)).expect("a's greeting to b");
    let seeds_failed =
        |net: &Net| net.notices_of(A).iter().filter(|n| matches!(n, Notice::SeedUnanswered { .. })).count();
    let failed_before = seeds_failed(&net);
    net.drop_flight(greeting);
    net.settle();
    assert!(knows(&net, A, "c") && knows(&net, C, "a"));
    assert!(!knows(&net, B, "a") && !knows(&net, A, "b"));
    assert_eq!(seeds_failed(&net), failed_before, "a was told of the dropped greeting");
    assert!(net.in_flight().is_empty());
}
