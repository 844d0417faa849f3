//! The rules of delivery, which the shell only carries out: one update at a time per peer, in
//! order; after a failed one, no incremental update until a full one got through; a full
//! update holds the files of when it goes out, not of when it was asked for.
//!
//! Nodes a and b are real nodes on the harness's network: what a sends b stays in flight until
//! the test delivers it (to b, which applies it, then the receipt back to a) or fails it.

mod common;

use common::*;
use dftp_core::{Action, Change, Event, Notice, Span, Update};

const A: usize = 0;
const B: usize = 1;

/// Nodes a and b, met, with nothing in flight, one second after they started.
fn pair() -> Net {
    let mut net = Net::new([config("a", 1, 1), config("b", 2, 1)]);
    net.join(B, A);
    assert!(net.node(A).peers().contains_key("b"));
    assert!(net.in_flight().is_empty(), "{:?}", net.in_flight());
    net.now = net.now + Span::from_secs(1);
    net
}

/// A local change on a, handled; what a sends stays in flight.
fn change(net: &mut Net, path: &str) -> Vec<Action> {
    net.handle(A, Event::LocalChanges(vec![Change::Upsert(p(path), file_meta(1))]))
}

fn paths(u: &Update) -> Vec<String> {
    u.files.iter().map(|f| f.full_name.to_string()).collect()
}

/// The paths of the updates in flight from a to b.
fn in_flight(net: &Net) -> Vec<Vec<String>> {
    net.updates_on(A, B).iter().map(paths).collect()
}

/// Which of `names` b's tree shows.
fn on_b<'a>(net: &Net, names: &[&'a str]) -> Vec<&'a str> {
    let snap = net.snapshot(B);
    names.iter().copied().filter(|n| snap.lookup(&p(n)).is_some()).collect()
}

/// The oldest update in flight from a to b arrives and b's receipt comes back; returns what a
/// sends b next.
fn delivered(net: &mut Net) -> Vec<Update> {
    let id = net.update_on(A, B).expect("an update in flight to b");
    updates_to(&net.exchange(id), "b")
}

/// The oldest update in flight from a to b fails on the way; returns what a sends b next.
fn failed(net: &mut Net) -> Vec<Update> {
    let id = net.update_on(A, B).expect("an update in flight to b");
    updates_to(&net.fail(id), "b")
}

/// The updates b applied from a, as `(full, files)`, after its first `skip` notices.
fn applied_on_b(net: &Net, skip: usize) -> Vec<(bool, usize)> {
    net.notices_of(B)[skip..]
        .iter()
        .filter_map(|n| match n {
            Notice::UpdateApplied { from, full, files, .. } if from == "a" => Some((*full, *files)),
            _ => None,
        })
        .collect()
}

#[test]
fn one_update_at_a_time_in_order() {
    let mut net = pair();
    let first = updates_to(&change(&mut net, "one"), "b");
    assert_eq!(first.iter().map(paths).collect::<Vec<_>>(), [["one"]]);
    assert!(updates_to(&change(&mut net, "two"), "b").is_empty(), "sent while the first is under way");
    assert!(updates_to(&change(&mut net, "three"), "b").is_empty());
    assert_eq!(in_flight(&net), [["one"]], "one request on the wire");
    let next = delivered(&mut net);
    assert_eq!(next.iter().map(paths).collect::<Vec<_>>(), [["two"]]);
    assert_eq!(on_b(&net, &["one", "two", "three"]), ["one"]);
    let next = delivered(&mut net);
    assert_eq!(next.iter().map(paths).collect::<Vec<_>>(), [["three"]]);
    assert!(delivered(&mut net).is_empty());
    assert_eq!(on_b(&net, &["one", "two", "three"]), ["one", "two", "three"]);
    assert_eq!(net.gaps(B), 0);
}

#[test]
fn after_a_failure_only_a_full_update_goes_out_and_it_holds_the_latest_files() {
    let mut net = pair();
    assert_eq!(updates_to(&change(&mut net, "one"), "b").len(), 1);
    change(&mut net, "two");
    change(&mut net, "three");
    // The first fails: "two" and "three" must not trickle in after it.
    assert!(failed(&mut net).is_empty(), "incremental updates sent after a failure");
    assert!(updates_to(&change(&mut net, "four"), "b").is_empty(), "an incremental update to a peer owed a full one");
    assert!(net.in_flight().is_empty(), "{:?}", net.in_flight());
    // At the next contact the peer gets a full update, with every file, "four" included.
    net.now = net.now + Span::from_secs(1);
    let actions = net.handle(A, Event::GreetingReceived { greeting: greeting_of(net.cfg(B), false), from_host: None });
    let sent = updates_to(&actions, "b");
    assert_eq!(sent.len(), 1, "{actions:?}");
    assert!(sent[0].full);
    let mut files = paths(&sent[0]);
    files.sort();
    assert_eq!(files, ["four", "one", "three", "two"]);
    // Once it arrived, incremental updates flow again.
    assert!(delivered(&mut net).is_empty());
    assert_eq!(on_b(&net, &["one", "two", "three", "four"]), ["one", "two", "three", "four"]);
    assert_eq!(updates_to(&change(&mut net, "five"), "b").iter().map(paths).collect::<Vec<_>>(), [["five"]]);
}

#[test]
fn a_full_update_is_taken_when_it_goes_out() {
    let mut net = pair();
    assert_eq!(updates_to(&change(&mut net, "one"), "b").len(), 1);
    // b asks for a full update while "one" is under way; "two" comes after the request.
    let ask = Event::GreetingReceived { greeting: greeting_of(net.cfg(B), true), from_host: None };
    assert!(updates_to(&net.handle(A, ask), "b").is_empty(), "a second request to b while one is under way");
    assert!(updates_to(&change(&mut net, "two"), "b").is_empty());
    let later = net.now + Span::from_secs(5);
    net.now = later;
    let sent = delivered(&mut net);
    assert_eq!(sent.len(), 1);
    assert!(sent[0].full);
    assert_eq!(sent[0].update_time, later.unix_secs(), "the files of when it goes out");
    let mut files = paths(&sent[0]);
    files.sort();
    assert_eq!(files, ["one", "two"]);
    // "two" went out inside it: no incremental update repeats it.
    assert!(delivered(&mut net).is_empty());
    assert_eq!(on_b(&net, &["one", "two"]), ["one", "two"]);
}

/// An update held in flight while a makes two more changes: a sends nothing more. The held one
/// then fails and nothing trickles in after it; at b's next ping, b gets one full update with
/// all three changes. Only a network that can hold a request in flight reaches this state.
#[test]
fn a_held_update_that_fails_is_made_good_by_one_full_update_at_the_next_ping() {
    let mut net = pair();
    let three = ["one", "two", "three"];
    for name in three {
        change(&mut net, name);
        assert_eq!(in_flight(&net), [["one"]], "after {name}: one request under way, the rest wait");
    }
    assert!(failed(&mut net).is_empty());
    assert!(net.in_flight().is_empty(), "sent after the failure: {:?}", net.in_flight());
    assert_eq!(on_b(&net, &three), Vec::<&str>::new());

    // b's ping comes when its interval is up; its greeting reaches a, which owes it a full update.
    let seen = net.notices_of(B).len();
    net.now = t0() + net.cfg(B).ping_interval;
    net.tick(B);
    assert_eq!(applied_on_b(&net, seen), [(true, 3)], "one full update with the three changes");
    assert_eq!(on_b(&net, &three), three);
    assert_eq!(net.gaps(B), 0);
}

/// b applies an update but its receipt is lost on the way back: a takes it as failed and owes
/// b a full update, so the next change waits for it instead of going out alone. b sees no gap:
/// the full update starts it over. The request and its reply are separate legs here.
#[test]
fn an_update_whose_receipt_is_lost_is_followed_by_a_full_update() {
    let mut net = pair();
    change(&mut net, "one");
    let id = net.update_on(A, B).expect("one in flight");
    net.deliver(id);
    assert_eq!(on_b(&net, &["one"]), ["one"], "b applied it");
    let receipt = net.reply_to(id).expect("b's receipt in flight");
    assert!(updates_to(&net.fail(receipt), "b").is_empty());
    assert!(updates_to(&change(&mut net, "two"), "b").is_empty(), "an incremental update to a peer owed a full one");

    let seen = net.notices_of(B).len();
    net.now = t0() + net.cfg(B).ping_interval;
    net.tick(B);
    assert_eq!(applied_on_b(&net, seen), [(true, 2)]);
    assert_eq!(on_b(&net, &["one", "two"]), ["one", "two"]);
    assert_eq!(net.gaps(B), 0);
}

/// b asks for a full update twice while an update to it is under way: it gets one, not two
/// (a second would carry the same files).
#[test]
fn two_requests_for_a_full_update_while_one_is_under_way_get_one() {
    let mut net = pair();
    change(&mut net, "one");
    for _ in 0..2 {
        let ask = Event::GreetingReceived { greeting: greeting_of(net.cfg(B), true), from_host: None };
        assert!(updates_to(&net.handle(A, ask), "b").is_empty());
    }
    let sent = delivered(&mut net);
    assert_eq!(sent.iter().map(|u| u.full).collect::<Vec<_>>(), [true]);
    assert!(delivered(&mut net).is_empty(), "a second full update: {:?}", net.in_flight());
}

/// a gives b up (its pings fail for the peer timeout) while an update to b is still in flight
/// with two more queued behind it. When the held one's receipt comes back after all, nothing
/// more goes to b: what was queued went with the peer, and b, once back, gets one full update
/// instead. Only a net that can hold a request in flight past a timeout reaches this state.
#[test]
fn updates_queued_for_a_peer_that_is_lost_are_not_sent_when_the_one_under_way_returns() {
    let mut net = pair();
    let three = ["one", "two", "three"];
    for name in three {
        change(&mut net, name);
    }
    let held = net.update_on(A, B).expect("one in flight");
    let ping = net.cfg(A).ping_interval;
    let lost = |net: &Net| net.notices_of(A).iter().any(|n| matches!(n, Notice::PeerLost { name, .. } if name == "b"));
    for k in 1..=5 {
        net.now = t0() + Span::from_millis(ping.as_millis() * k);
        net.handle(A, Event::Timer);
        net.fail_all(|f| f.is_greeting());
        if lost(&net) {
            break;
        }
    }
    assert!(lost(&net), "a gave b up");
    assert_eq!(in_flight(&net), [["one"]]);
    assert!(updates_to(&net.exchange(held), "b").is_empty(), "sent to a peer that is lost");
    assert!(net.updates_on(A, B).is_empty(), "{:?}", net.in_flight());

    // The update woke b's timers, and its ping is on the way: b is back, and gets one full
    // update with the three changes.
    let seen = net.notices_of(B).len();
    net.settle();
    assert_eq!(applied_on_b(&net, seen), [(true, 3)]);
    assert_eq!(on_b(&net, &three), three);
}
