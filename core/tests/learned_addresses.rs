//! Addresses a node is handed by others (`POST /join/`, multicast announcements, greetings in
//! invented names) cost it connections: they are bounded, retried with backoff, and forgotten
//! after minutes when they never answer (issue 14: 2,500 announced addresses used to cost about
//! 5,000 connections every 10 s, and a never-answering peer was pinged for 24 hours).
//!
//! One node, driven by hand: every greeting it sends fails 50 ms later, as to an address where
//! nothing listens.

mod common;

use std::collections::BTreeSet;

use common::*;
use dftp_core::node::MAX_PEERS;
use dftp_core::seeds::{LEARNED_FORGET_AFTER, MAX_SEEDS};
use dftp_core::{Action, Announcement, Event, Greeting, Node, Notice, PeerAddr, Request, Span, Time};

fn stranger(i: u32) -> PeerAddr {
    PeerAddr::parse(&format!("10.{}.{}.{}:7041", (i >> 16) & 255, (i >> 8) & 255, i & 255)).unwrap()
}

/// Runs `node` from `from` for `span` in steps of 50 ms; every greeting fails at the next step.
/// Gives the greetings sent, by address, and the notices.
fn run_failing(node: &mut Node, from: Time, span: Span, first: Vec<Action>) -> (Vec<PeerAddr>, Vec<Notice>) {
    let mut sent = Vec::new();
    let mut seen = Vec::new();
    let mut pending: Vec<PeerAddr> = greets(&first).into_iter().map(|(a, _)| a).collect();
    seen.extend(notices(&first));
    let mut now = from;
    while now < from + span {
        now = now + Span::from_millis(50);
        let mut actions = Vec::new();
        for to in std::mem::take(&mut pending) {
            sent.push(to.clone());
            actions.extend(
                node.handle(now, Event::RequestFailed { request: Request::Greet(to), reason: "refused".into() }),
            );
        }
        actions.extend(node.handle(now, Event::Timer));
        pending.extend(greets(&actions).into_iter().map(|(a, _)| a));
        seen.extend(notices(&actions));
    }
    (sent, seen)
}

#[test]
fn a_flood_of_announced_addresses_costs_a_bounded_number_of_greetings_then_none() {
    let mut cfg = config("r", 1, 1);
    cfg.announce_interval = None;
    let mut r = Node::new(cfg, t0());
    let mut first = Vec::new();
    for i in 0..2_500 {
        let a = Announcement::ping("dftp", &format!("fake{i}"), &stranger(i));
        first.extend(r.handle(t0(), Event::AnnouncementReceived { announcement: a, from_host: None }));
    }
    let greeted_at_once = greets(&first).len();
    assert_eq!(greeted_at_once, MAX_SEEDS, "at most MAX_SEEDS addresses are taken");
    let refused = notices(&first).iter().filter(|n| matches!(n, Notice::SeedRefused { .. })).count();
    assert_eq!(refused, 2_500 - MAX_SEEDS, "the others are refused, and said so");

    // The same announcements again and again do not make the node greet more often.
    let (sent, seen) = run_failing(&mut r, t0(), Span::from_millis(LEARNED_FORGET_AFTER.as_millis() + 30_000), first);
    let distinct: BTreeSet<_> = sent.iter().collect();
    assert_eq!(distinct.len(), MAX_SEEDS);
    // Per address: 0.5 s, 1, 2, 4, 8 s, then every 10 s (the ping interval) for 10 minutes:
    // about 64 greetings, not 60 per minute for 24 hours.
    let per_address = sent.len() / MAX_SEEDS;
    assert!((55..=70).contains(&per_address), "{per_address} greetings per address in 10 minutes");
    let forgotten = seen.iter().filter(|n| matches!(n, Notice::SeedForgotten { .. })).count();
    assert_eq!(forgotten, MAX_SEEDS, "every one forgotten after 10 minutes");
    assert!(
        !seen.iter().any(|n| matches!(n, Notice::SeedUnanswered { .. })),
        "heard-of addresses are not warned about"
    );

    // Then nothing more is sent.
    let later = t0() + LEARNED_FORGET_AFTER + Span::from_secs(30);
    let (after, _) = run_failing(&mut r, later, Span::from_secs(120), Vec::new());
    assert!(after.is_empty(), "{} greetings after the addresses were forgotten", after.len());
}

#[test]
fn the_operators_join_is_kept_until_it_answers() {
    let mut r = Node::new(config("r", 1, 1), t0());
    let first = r.handle(t0(), Event::JoinConfigured(vec![stranger(7)]));
    let (sent, seen) = run_failing(&mut r, t0(), Span::from_secs(3600), first);
    assert!(sent.len() > 300, "still greeted every ping interval after an hour: {}", sent.len());
    let last_hour = sent.len();
    assert!(!seen.iter().any(|n| matches!(n, Notice::SeedForgotten { .. })));
    let warned = seen.iter().filter(|n| matches!(n, Notice::SeedUnanswered { .. })).count();
    assert_eq!(warned, 60, "warned at once, then once a minute");
    assert!(last_hour < 400, "{last_hour}: at most one greeting per ping interval after the backoff");
}

#[test]
fn a_join_asked_over_the_api_is_forgotten_after_minutes() {
    let mut r = Node::new(config("r", 1, 1), t0());
    let first = r.handle(t0(), Event::JoinRequested(vec![stranger(7)]));
    let (sent, seen) = run_failing(&mut r, t0(), Span::from_millis(LEARNED_FORGET_AFTER.as_millis() + 60_000), first);
    assert!(seen.contains(&Notice::SeedForgotten { addr: stranger(7) }));
    assert!(seen.iter().any(|n| matches!(n, Notice::SeedUnanswered { .. })), "the operator's request is warned about");
    let n = sent.len();
    let (more, _) = run_failing(&mut r, t0() + LEARNED_FORGET_AFTER + Span::from_secs(60), Span::from_secs(60), vec![]);
    assert!(more.is_empty() && n > 0);
}

fn invented(i: u32) -> Greeting {
    Greeting {
        name: format!("invented{i}").into(),
        public_addr: PeerAddr::parse(&format!("10.9.{}.{}:7040", (i >> 8) & 255, i & 255)).unwrap(),
        mgmt_addr: stranger(i + 100_000),
        request_full_update: false,
    }
}

#[test]
fn a_peer_known_only_from_its_greeting_is_forgotten_minutes_after_it_is_lost() {
    let mut r = Node::new(config("r", 1, 1), t0());
    let first = r.handle(t0(), Event::GreetingReceived { greeting: invented(1), from_host: None });
    assert!(r.peers().contains_key("invented1"));
    let span = Span::from_millis(LEARNED_FORGET_AFTER.as_millis() + 70_000);
    let (_, seen) = run_failing(&mut r, t0(), span, first);
    assert!(seen.iter().any(|n| matches!(n, Notice::PeerLost { .. })));
    assert!(seen.contains(&Notice::PeerForgotten { name: "invented1".into() }), "{seen:?}");
    assert!(!r.peers().contains_key("invented1"));
}

#[test]
fn a_peer_that_answered_once_is_pinged_for_the_whole_forget_after() {
    let mut r = Node::new(config("r", 1, 1), t0());
    let b = config("b", 2, 1);
    let mut first = r.handle(t0(), Event::JoinConfigured(vec![b.mgmt_addr.clone()]));
    let reply = Net::new([b.clone()]).table(0);
    first.extend(r.handle(t0(), Event::GreetingAnswered { to: b.mgmt_addr.clone(), reply }));
    assert!(r.peers()["b"].answered);
    // b vanishes: r loses it, and keeps greeting it long after 10 minutes.
    let (sent, seen) = run_failing(&mut r, t0(), Span::from_secs(3600), first);
    assert!(seen.iter().any(|n| matches!(n, Notice::PeerLost { .. })));
    assert!(!seen.iter().any(|n| matches!(n, Notice::PeerForgotten { .. })));
    assert!(sent.len() > 300, "{}", sent.len());
}

#[test]
fn greetings_in_new_names_are_refused_beyond_max_peers() {
    let mut r = Node::new(config("r", 1, 1), t0());
    for i in 0..MAX_PEERS as u32 {
        let actions = r.handle(t0(), Event::GreetingReceived { greeting: invented(i), from_host: None });
        assert!(!actions.iter().any(|a| matches!(a, Action::Refuse(_))), "greeting {i} refused");
    }
    assert_eq!(r.peers().len(), MAX_PEERS);
    let over = MAX_PEERS as u32;
    let actions = r.handle(t0(), Event::GreetingReceived { greeting: invented(over), from_host: None });
    assert!(actions.iter().any(|a| matches!(a, Action::Refuse(why) if why.contains("peers already"))), "{actions:?}");
    assert!(notices(&actions).contains(&Notice::PeerRefused { name: format!("invented{over}").into() }));
    assert_eq!(r.peers().len(), MAX_PEERS);
    // A known name still greets.
    let again = r.handle(t0(), Event::GreetingReceived { greeting: invented(3), from_host: None });
    assert!(!again.iter().any(|a| matches!(a, Action::Refuse(_))));
}
