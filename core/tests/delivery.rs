//! The rules of delivery, which the shell only carries out: one update at a time per peer, in
//! order; after a failed one, no incremental update until a full one got through; a full
//! update holds the files of when it goes out, not of when it was asked for.

mod common;

use common::*;
use dftp_core::{Action, Change, Config, Event, Node, Request, Span, Time, Update};

/// Node a, which has met b; returns them and the time.
fn pair() -> (Node, Config, Time) {
    let mut a = Node::new(config("a", 1, 1), t0());
    let b = config("b", 2, 1);
    let actions = meet(&mut a, t0(), &b);
    // Answer whatever a sent b at the meeting, so that nothing is under way.
    let mut pending = updates_to(&actions, "b");
    while let Some(u) = pending.pop() {
        pending.extend(updates_to(&a.handle(t0(), Event::UpdateDelivered { to: "b".into(), full: u.full }), "b"));
    }
    (a, b, t0() + Span::from_secs(1))
}

fn change(a: &mut Node, now: Time, path: &str) -> Vec<Action> {
    a.handle(now, Event::LocalChanges(vec![Change::Upsert(p(path), file_meta(1))]))
}

fn paths(u: &Update) -> Vec<String> {
    u.files.iter().map(|f| f.full_name.to_string()).collect()
}

fn delivered(a: &mut Node, now: Time, full: bool) -> Vec<Update> {
    updates_to(&a.handle(now, Event::UpdateDelivered { to: "b".into(), full }), "b")
}

fn failed(a: &mut Node, now: Time, full: bool) -> Vec<Update> {
    let reason = "timed out".into();
    updates_to(&a.handle(now, Event::RequestFailed { request: Request::Update { to: "b".into(), full }, reason }), "b")
}

#[test]
fn one_update_at_a_time_in_order() {
    let (mut a, _, now) = pair();
    let first = updates_to(&change(&mut a, now, "one"), "b");
    assert_eq!(first.iter().map(paths).collect::<Vec<_>>(), [["one"]]);
    assert!(updates_to(&change(&mut a, now, "two"), "b").is_empty(), "sent while the first is under way");
    assert!(updates_to(&change(&mut a, now, "three"), "b").is_empty());
    let next = delivered(&mut a, now, false);
    assert_eq!(next.iter().map(paths).collect::<Vec<_>>(), [["two"]]);
    let next = delivered(&mut a, now, false);
    assert_eq!(next.iter().map(paths).collect::<Vec<_>>(), [["three"]]);
    assert!(delivered(&mut a, now, false).is_empty());
}

#[test]
fn after_a_failure_only_a_full_update_goes_out_and_it_holds_the_latest_files() {
    let (mut a, b, now) = pair();
    assert_eq!(updates_to(&change(&mut a, now, "one"), "b").len(), 1);
    change(&mut a, now, "two");
    change(&mut a, now, "three");
    // The first fails: "two" and "three" must not trickle in after it.
    assert!(failed(&mut a, now, false).is_empty(), "incremental updates sent after a failure");
    assert!(
        updates_to(&change(&mut a, now, "four"), "b").is_empty(),
        "an incremental update to a peer owed a full one"
    );
    // At the next contact the peer gets a full update, with every file, "four" included.
    let later = now + Span::from_secs(1);
    let actions = a.handle(later, Event::GreetingReceived { greeting: greeting_of(&b, false), from_host: None });
    let sent = updates_to(&actions, "b");
    assert_eq!(sent.len(), 1, "{actions:?}");
    assert!(sent[0].full);
    let mut files = paths(&sent[0]);
    files.sort();
    assert_eq!(files, ["four", "one", "three", "two"]);
    // Once it arrived, incremental updates flow again.
    assert!(delivered(&mut a, later, true).is_empty());
    assert_eq!(updates_to(&change(&mut a, later, "five"), "b").iter().map(paths).collect::<Vec<_>>(), [["five"]]);
}

#[test]
fn a_full_update_is_taken_when_it_goes_out() {
    let (mut a, b, now) = pair();
    assert_eq!(updates_to(&change(&mut a, now, "one"), "b").len(), 1);
    // b asks for a full update while "one" is under way; "two" comes after the request.
    let ask = Event::GreetingReceived { greeting: greeting_of(&b, true), from_host: None };
    assert!(updates_to(&a.handle(now, ask), "b").is_empty(), "a second request to b while one is under way");
    assert!(updates_to(&change(&mut a, now, "two"), "b").is_empty());
    let later = now + Span::from_secs(5);
    let sent = delivered(&mut a, later, false);
    assert_eq!(sent.len(), 1);
    assert!(sent[0].full);
    assert_eq!(sent[0].update_time, later.unix_secs(), "the files of when it goes out");
    let mut files = paths(&sent[0]);
    files.sort();
    assert_eq!(files, ["one", "two"]);
    // "two" went out inside it: no incremental update repeats it.
    assert!(delivered(&mut a, later, true).is_empty());
}
