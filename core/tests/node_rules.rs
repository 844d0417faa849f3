//! The node's rules, one scenario each: who may update what, the conflict rule, deletions,
//! discovery, bad addresses, full updates on request, liveness, gaps and stale updates, and
//! determinism.
//!
//! Node r (or a) meets its peers through the harness's network: they are real nodes that
//! answer its greetings with their own tables. Most tests then speak for the peers' updates
//! themselves, so r holds the updates its peers send it ([`Net::hold_updates_to`]) and is
//! handed the hand-made ones, one event at a time ([`Net::handle`]).

mod common;

use common::*;
use dftp_core::{
    file_info, Action, ClusterInfo, Config, DfsPath, Event, FileInfo, Greeting, Kind, Meta, Node, Notice, Owner,
    PeerAddr, Request, Span, StreamPos, Time, Update, WireError,
};

fn at(secs: u64) -> Time {
    t0() + Span::from_secs(secs)
}

const R: usize = 0;
const A: usize = 0;
const B: usize = 1;
const C: usize = 2;
const D: usize = 3;

/// The nodes `names`, the k-th at address `10.0.0.{k+1}`, epoch 1; the first holds the updates
/// sent to it (the tests hand it theirs). Nobody has met.
fn net_of(names: &[&str]) -> Net {
    let mut net = Net::new(names.iter().zip(1u8..).map(|(name, i)| config(name, i, 1)));
    net.hold_updates_to(0);
    net
}

/// Peer `i` joins the first node, to quiescence: they know each other, nothing is in flight.
fn meet(net: &mut Net, i: usize) {
    net.join(i, 0);
    assert!(net.node(0).peers().contains_key(net.name(i)), "{} met {}", net.name(0), net.name(i));
    assert!(net.in_flight().is_empty(), "{:?}", net.in_flight());
}

/// The table a node just started answers a greeting with.
fn fresh_table(cfg: &Config) -> ClusterInfo {
    Net::new([cfg.clone()]).table(0)
}

fn file(path: &str, t: i64, owner: &str) -> FileInfo {
    file_info(&p(path), file_meta(t), owner, false)
}

fn sized(path: &str, t: i64, size: u64, owner: &str) -> FileInfo {
    let meta = Meta { size, ..file_meta(t) };
    file_info(&p(path), meta, owner, false)
}

fn dir(path: &str, t: i64, owner: &str) -> FileInfo {
    file_info(&p(path), dir_meta(t), owner, false)
}

fn deletion(path: &str, owner: &str) -> FileInfo {
    let mut f = file(path, 0, owner);
    f.deletion = true;
    f
}

fn update(from: &str, full: bool, seq: u64, files: Vec<FileInfo>) -> Update {
    Update { files, update_time: 0, full, sender_node_name: from.into(), epoch: Some(1), seq: Some(seq), buckets: None }
}

/// Who owns `path` in the first node's tree.
fn owner(net: &Net, path: &str) -> Option<String> {
    net.snapshot(0).lookup(&p(path)).map(|e| e.owner.as_str().to_string())
}

/// Every path of the first node's tree.
fn paths(net: &Net) -> Vec<String> {
    net.snapshot(0).find("").map(|p| p.as_str().to_string()).collect()
}

fn applied(actions: &[Action]) -> Vec<(usize, usize, usize)> {
    notices(actions)
        .into_iter()
        .filter_map(|n| match n {
            Notice::UpdateApplied { files, changed, rejected, .. } => Some((files, changed, rejected)),
            _ => None,
        })
        .collect()
}

#[test]
fn updates_from_unknown_senders_are_ignored() {
    let mut net = net_of(&["r", "stranger"]);
    let u = update("stranger", true, 0, vec![file("x.txt", 1, "stranger")]);
    let actions = net.handle(R, Event::UpdateReceived(u.clone()));
    assert!(
        notices(&actions).iter().any(|n| matches!(n, Notice::UpdateIgnored { from, .. } if from == "stranger")),
        "{actions:?}"
    );
    assert!(applied(&actions).is_empty());
    assert!(paths(&net).is_empty());
    assert!(net.node(R).peers().is_empty(), "an update does not make its sender a peer");

    // Once it has greeted, the same update is applied.
    meet(&mut net, 1);
    let actions = net.handle(R, Event::UpdateReceived(u));
    assert_eq!(applied(&actions), vec![(1, 1, 0)]);
    assert_eq!(owner(&net, "x.txt").as_deref(), Some("stranger"));
}

#[test]
fn updates_from_unknown_senders_stay_ignored_while_a_join_is_under_way() {
    // A full update may overtake the answer to our greeting; one from a name that the answer
    // does not give must still never be applied. b's own full update does overtake it here:
    // b sends it before its answer, and the net delivers it first.
    let mut net = Net::new([config("r", 1, 1), config("b", 2, 1)]);
    net.run(B, Event::LocalScan(vec![(p("b.txt"), file_meta(1))]));
    let b = net.cfg(B).clone();
    let actions = net.handle(R, Event::JoinRequested(vec![b.mgmt_addr.clone()]));
    assert_eq!(greets(&actions), vec![(b.mgmt_addr.clone(), true)]);
    net.handle(R, Event::UpdateReceived(update("mallory", true, 0, vec![file("evil", 9, "mallory")])));
    let actions = net.handle(R, Event::UpdateReceived(update("mallory", false, 1, vec![file("evil2", 9, "mallory")])));
    assert!(notices(&actions).iter().any(|n| matches!(n, Notice::UpdateIgnored { .. })), "{actions:?}");
    let greeting = net.find(|f| f.is_greeting() && f.from == R).expect("r's greeting in flight");
    net.deliver(greeting);
    let full = net.update_on(B, R).expect("b's full update, sent before its answer");
    let kept = net.deliver(full);
    assert!(applied(&kept).is_empty(), "applied before b's answer named b: {kept:?}");
    net.now = at(1);
    net.deliver(net.reply_to(greeting).expect("b's answer"));
    assert_eq!(paths(&net), vec!["b.txt"], "b's early full update applies, mallory's does not");
    assert!(!net.node(R).peers().contains_key("mallory"));
    let mut ignored_later = false;
    for s in 2..=60 {
        // b answers our pings; mallory never answers anything.
        net.now = at(s);
        let actions = net.tick(R);
        ignored_later |=
            notices(&actions).iter().any(|n| matches!(n, Notice::UpdateIgnored { from, .. } if from == "mallory"));
        assert_eq!(paths(&net), vec!["b.txt"]);
    }
    assert!(ignored_later, "the kept update is dropped once the wait is over");
}

#[test]
fn entries_owned_by_another_node_are_rejected() {
    let mut net = net_of(&["r", "b", "c"]);
    meet(&mut net, B);
    meet(&mut net, C);
    net.handle(R, Event::UpdateReceived(update("c", true, 0, vec![file("c.txt", 1, "c")])));

    // b claims c's file, a new file in c's name, and one in nobody's name.
    let claims = vec![file("b.txt", 1, "b"), file("c.txt", 9, "c"), file("forged.txt", 9, "c"), file("anon", 9, "")];
    let actions = net.handle(R, Event::UpdateReceived(update("b", true, 0, claims)));
    assert_eq!(applied(&actions), vec![(4, 1, 3)]);
    assert_eq!(owner(&net, "b.txt").as_deref(), Some("b"));
    assert_eq!(owner(&net, "c.txt").as_deref(), Some("c"));
    assert_eq!(net.snapshot(R).lookup(&p("c.txt")).and_then(|e| e.meta).map(|m| m.info_updated), Some(1));
    assert_eq!(owner(&net, "forged.txt"), None);
    assert_eq!(owner(&net, "anon"), None);

    // Nor can b delete c's file, in c's name or in its own.
    let actions = net.handle(R, Event::UpdateReceived(update("b", false, 1, vec![deletion("c.txt", "c")])));
    assert_eq!(applied(&actions), vec![(1, 0, 1)]);
    let actions = net.handle(R, Event::UpdateReceived(update("b", false, 2, vec![deletion("c.txt", "b")])));
    assert_eq!(applied(&actions), vec![(1, 0, 0)]);
    assert_eq!(owner(&net, "c.txt").as_deref(), Some("c"));
}

#[test]
fn entries_with_bad_paths_are_rejected() {
    let mut net = net_of(&["r", "b"]);
    meet(&mut net, B);
    let mut files = vec![file("ok", 1, "b")];
    for bad in ["../etc/passwd", "/abs", "a//b", "a/./b", "", "a\\b", "nul\0"] {
        let mut f = file("x", 1, "b");
        f.full_name = bad.into();
        files.push(f);
    }
    let actions = net.handle(R, Event::UpdateReceived(update("b", true, 0, files)));
    assert_eq!(applied(&actions), vec![(8, 1, 7)]);
    assert_eq!(paths(&net), vec!["ok"]);

    // A deletion record inside a full update lists nothing (and prunes what it names).
    let files = vec![file("ok2", 1, "b"), deletion("ok", "b")];
    let actions = net.handle(R, Event::UpdateReceived(update("b", true, 1, files)));
    assert_eq!(applied(&actions), vec![(2, 2, 0)]);
    assert_eq!(paths(&net), vec!["ok2"]);
}

#[test]
fn deleting_a_nested_file_removes_only_that_entry() {
    for announce_dir in [true, false] {
        let mut net = net_of(&["r", "b"]);
        meet(&mut net, B);
        let mut files = vec![file("a/b.txt", 1, "b"), file("a/c.txt", 1, "b"), file("a/sub/d.txt", 1, "b")];
        if announce_dir {
            files.push(dir("a", 1, "b"));
            files.push(dir("a/sub", 1, "b"));
        }
        net.handle(R, Event::UpdateReceived(update("b", true, 0, files)));
        let actions = net.handle(R, Event::UpdateReceived(update("b", false, 1, vec![deletion("a/b.txt", "b")])));
        assert_eq!(applied(&actions), vec![(1, 1, 0)]);

        let snap = net.snapshot(R);
        assert_eq!(snap.lookup(&p("a/b.txt")), None);
        let a = snap.lookup(&p("a")).expect("the directory stays");
        assert_eq!((a.kind, a.owner), (Kind::Dir, Owner::Node("b".into())));
        let listed: Vec<String> =
            snap.list(&p("a")).expect("a lists").iter().map(|e| e.path.name().to_string()).collect();
        assert_eq!(listed, vec!["sub", "c.txt"], "announced dirs: {announce_dir}");
        assert_eq!(paths(&net), vec!["a", "a/c.txt", "a/sub", "a/sub/d.txt"]);
        let root: Vec<String> =
            snap.list(&DfsPath::root()).expect("root").iter().map(|e| e.path.name().to_string()).collect();
        assert_eq!(root, vec!["a"]);

        // Deleting the rest: an announced directory stays (empty), a derived one goes.
        net.handle(
            R,
            Event::UpdateReceived(update("b", false, 2, vec![deletion("a/c.txt", "b"), deletion("a/sub/d.txt", "b")])),
        );
        let left = paths(&net);
        if announce_dir {
            assert_eq!(left, vec!["a", "a/sub"]);
            assert_eq!(net.snapshot(R).list(&p("a/sub")), Some(vec![]));
        } else {
            assert!(left.is_empty(), "{left:?}");
        }
    }
}

#[test]
fn announcements_of_another_cluster_are_ignored() {
    let mut net = net_of(&["r"]);
    let other = dftp_core::Announcement::ping("elsewhere", "x", &addr(5, 7041));
    let actions = net.handle(R, Event::AnnouncementReceived { announcement: other, from_host: None });
    assert!(greets(&actions).is_empty(), "{actions:?}");
    assert!(notices(&actions).iter().any(|n| matches!(n, Notice::AnnouncementIgnored { .. })));

    // Our own cluster's is greeted, our own echo is not.
    let ours = dftp_core::Announcement::ping("dftp", "x", &addr(5, 7041));
    let actions = net.handle(R, Event::AnnouncementReceived { announcement: ours, from_host: None });
    assert_eq!(greets(&actions), vec![(addr(5, 7041), true)]);
    let echo = dftp_core::Announcement::ping("dftp", "r", &addr(1, 7041));
    let actions = net.handle(R, Event::AnnouncementReceived { announcement: echo, from_host: None });
    assert!(greets(&actions).is_empty());
}

#[test]
fn addresses_without_a_port_are_errors_not_panics() {
    for bad in ["nocolon", "host:", ":", "host:notaport", "host:0", "host:65536", "[::1]", "::1"] {
        assert!(matches!(PeerAddr::parse(bad), Err(WireError::Addr(_))), "{bad}");
    }
    for form in [
        "name=x&public-addr=nocolon&mgmt-addr=h%3A1",
        "name=x&public-addr=h%3A1&mgmt-addr=nocolon",
        "name=x&public-addr=h%3A1&mgmt-addr=h%3A",
    ] {
        assert!(matches!(Greeting::from_form(form.as_bytes()), Err(WireError::Addr(_))), "{form}");
    }
    assert!(matches!(Greeting::from_form(b"name=x&public-addr=h%3A1"), Err(WireError::Form(_))));

    // A cluster table with a bad address is refused as a whole, and its sender not added.
    let mut net = net_of(&["r", "b", "c"]);
    let (b, c) = (net.cfg(B).clone(), net.cfg(C).clone());
    let actions = net.handle(R, Event::JoinRequested(vec![b.mgmt_addr.clone()]));
    assert_eq!(greets(&actions), vec![(b.mgmt_addr.clone(), true)]);
    // b's real table, spoiled on the way.
    let mut reply = net.table(B);
    reply.me.public_addr = "nocolon".into();
    let actions = net.handle(R, Event::GreetingAnswered { to: b.mgmt_addr.clone(), reply });
    assert!(notices(&actions).iter().any(|n| matches!(n, Notice::UpdateIgnored { .. })), "{actions:?}");
    assert!(net.node(R).peers().is_empty());

    // A good table whose other peers have bad addresses: the good ones are met, the bad skipped.
    let mut reply = net.table(B);
    let mut bad = net.table(C).me;
    bad.name = "d".into();
    bad.mgmt_addr = "nocolon".into();
    reply.peers.insert("c".into(), net.table(C).me);
    reply.peers.insert("d".into(), bad);
    let actions = net.handle(R, Event::GreetingAnswered { to: b.mgmt_addr.clone(), reply });
    assert!(net.node(R).peers().contains_key("b"));
    // b itself is asked for its files (the first greeting's answer was refused), and c is met.
    assert_eq!(greets(&actions), vec![(b.mgmt_addr.clone(), true), (c.mgmt_addr.clone(), true)]);
}

#[test]
fn a_request_for_a_full_update_gets_exactly_the_local_files() {
    let mut net = net_of(&["r", "b", "c", "d"]);
    let local = vec![(p("docs"), dir_meta(1)), (p("docs/x.txt"), file_meta(2)), (p("top"), file_meta(3))];
    net.handle(R, Event::LocalScan(local.clone()));
    // A peer's files are in the tree, but not r's to send.
    meet(&mut net, C);
    net.handle(R, Event::UpdateReceived(update("c", true, 0, vec![file("docs/c.txt", 9, "c"), file("top", 9, "c")])));
    assert_eq!(owner(&net, "top").as_deref(), Some("c"));

    let b = net.cfg(B).clone();
    let actions = net.handle(R, Event::GreetingReceived { greeting: greeting_of(&b, true), from_host: None });
    let fulls: Vec<&Action> = actions.iter().filter(|a| matches!(a, Action::SendFullUpdate { .. })).collect();
    assert_eq!(fulls.len(), 1, "{actions:?}");
    let Action::SendFullUpdate { to, addr, .. } = fulls[0] else { unreachable!() };
    assert_eq!((to.as_str(), addr), ("b", &b.mgmt_addr));
    let u = full_update_of(fulls[0], 16).expect("a full update");
    assert!(u.full);
    assert_eq!(u.sender_node_name, "r");
    let want: Vec<FileInfo> = local.iter().map(|(path, m)| file_info(path, *m, "r", false)).collect();
    assert_eq!(u.files, want);

    // Without the request, a new peer gets no full update.
    let d = net.cfg(D).clone();
    let actions = net.handle(R, Event::GreetingReceived { greeting: greeting_of(&d, false), from_host: None });
    assert!(!actions.iter().any(|a| matches!(a, Action::SendFullUpdate { .. })), "{actions:?}");
}

#[test]
fn same_path_on_three_nodes_greatest_info_time_then_name_wins() {
    let mut net = net_of(&["r", "b", "c", "d"]);
    for peer in [B, C, D] {
        meet(&mut net, peer);
    }
    // x: b at 5, c and d tied at 7 -> d (name). y: b newest -> b.
    net.handle(R, Event::UpdateReceived(update("c", true, 0, vec![sized("x", 7, 3, "c"), sized("y", 1, 3, "c")])));
    net.handle(R, Event::UpdateReceived(update("d", true, 0, vec![sized("x", 7, 4, "d"), sized("y", 3, 4, "d")])));
    net.handle(R, Event::UpdateReceived(update("b", true, 0, vec![sized("x", 5, 2, "b"), sized("y", 9, 2, "b")])));
    let size = |net: &Net, path: &str| net.snapshot(R).lookup(&p(path)).map(|e| e.size());
    assert_eq!((owner(&net, "x").as_deref(), size(&net, "x")), (Some("d"), Some(4)));
    assert_eq!((owner(&net, "y").as_deref(), size(&net, "y")), (Some("b"), Some(2)));

    // The winner drops x: the next holder (c, the other 7) takes over; then b.
    net.handle(R, Event::UpdateReceived(update("d", false, 1, vec![deletion("x", "d")])));
    assert_eq!((owner(&net, "x").as_deref(), size(&net, "x")), (Some("c"), Some(3)));
    net.handle(R, Event::UpdateReceived(update("c", false, 1, vec![deletion("x", "c")])));
    assert_eq!((owner(&net, "x").as_deref(), size(&net, "x")), (Some("b"), Some(2)));

    // A local copy with the same time beats b and c by name ("r" > "d" > "c" > "b").
    net.handle(R, Event::LocalScan(vec![(p("y"), Meta { size: 1, ..file_meta(9) })]));
    assert_eq!((owner(&net, "y").as_deref(), size(&net, "y")), (Some("r"), Some(1)));
    // And a newer copy elsewhere beats the local one.
    net.handle(R, Event::UpdateReceived(update("c", false, 2, vec![sized("y", 10, 3, "c")])));
    assert_eq!(owner(&net, "y").as_deref(), Some("c"));
    // The directory above paths won by several nodes is "(multiple)".
    net.handle(R, Event::UpdateReceived(update("b", false, 1, vec![file("d/1", 1, "b")])));
    net.handle(R, Event::UpdateReceived(update("d", false, 2, vec![file("d/2", 1, "d")])));
    assert_eq!(owner(&net, "d").as_deref(), Some("(multiple)"));
}

#[test]
fn a_silent_peer_is_removed_with_its_files_and_asked_for_a_full_update_when_back() {
    let mut net = net_of(&["r", "b", "c"]);
    let (b, c) = (net.cfg(B).clone(), net.cfg(C).clone());
    meet(&mut net, B);
    meet(&mut net, C);
    net.handle(R, Event::UpdateReceived(update("b", true, 0, vec![file("b.txt", 1, "b"), file("both", 5, "b")])));
    net.handle(R, Event::UpdateReceived(update("c", true, 0, vec![file("c.txt", 1, "c"), file("both", 2, "c")])));
    assert_eq!(owner(&net, "both").as_deref(), Some("b"));

    // b goes silent; c keeps greeting every 5 s, and answers r's pings. Timers every second.
    net.isolate(B);
    let timeout = net.cfg(R).peer_timeout;
    let ping = net.cfg(R).ping_interval;
    let mut lost_at = None;
    for s in 1..=60u64 {
        let now = at(s);
        let event = if s % 5 == 0 {
            Event::GreetingReceived { greeting: greeting_of(&c, false), from_host: None }
        } else {
            Event::Timer
        };
        net.now = now;
        let actions = net.run(R, event);
        for n in notices(&actions) {
            if let Notice::PeerLost { name, files_removed } = n {
                assert_eq!((name.as_str(), files_removed), ("b", 2));
                assert!(lost_at.is_none(), "lost once");
                lost_at = Some(now);
            }
        }
        if lost_at.is_none() {
            assert_eq!(owner(&net, "b.txt").as_deref(), Some("b"), "still there at {s} s");
        }
    }
    let lost_at = lost_at.expect("b was removed");
    assert!(lost_at > t0() + timeout, "not before the timeout: {lost_at:?}");
    assert!(lost_at <= t0() + timeout + ping + Span::from_secs(1), "within a ping of the timeout: {lost_at:?}");
    assert_eq!(owner(&net, "b.txt"), None);
    assert_eq!(owner(&net, "both").as_deref(), Some("c"), "the next holder takes over");
    assert_eq!(owner(&net, "c.txt").as_deref(), Some("c"));
    assert!(!net.table(R).peers.contains_key("b"));
    assert!(net.table(R).peers.contains_key("c"));

    // b greets again: it is back, asked for a full update, and sent ours.
    net.now = at(61);
    let actions = net.handle(R, Event::GreetingReceived { greeting: greeting_of(&b, false), from_host: None });
    assert!(notices(&actions).contains(&Notice::PeerReturned { name: "b".into() }), "{actions:?}");
    assert_eq!(greets(&actions), vec![(b.mgmt_addr.clone(), true)]);
    assert!(actions.iter().any(|a| matches!(a, Action::SendFullUpdate { to, .. } if to == "b")));
    // Its files come back with its full update.
    net.handle(R, Event::UpdateReceived(update("b", true, 0, vec![file("b.txt", 1, "b"), file("both", 5, "b")])));
    assert_eq!(owner(&net, "both").as_deref(), Some("b"));
    assert_eq!(owner(&net, "b.txt").as_deref(), Some("b"));
}

/// A peer that answers our greetings while its updates do not reach us (in the simulator: a
/// request sent into a partition, lost on its connection, held the changes made after the
/// partition healed) is kept alive only by what shows that we have had its changes. Its answers
/// say how many updates it has made (`Seq`): while we have applied fewer, they do not count, and
/// after the peer timeout it is removed with its files, as a silent peer is. Otherwise it kept a
/// deleted file listed here for as long as it answered, and, cut off later, for a peer timeout
/// more (seed 700097 of the simulator's `mixed_faults`).
#[test]
fn a_peer_whose_updates_stop_arriving_is_removed_though_it_answers_greetings() {
    let mut net = net_of(&["r", "b"]);
    meet(&mut net, B);
    // From here b's stream (epoch 7) and its answers are what the test writes.
    let b = net.cfg(B).clone();
    let mut full = update("b", true, 3, vec![file("b.txt", 1, "b")]);
    full.epoch = Some(7);
    net.handle(R, Event::UpdateReceived(full));
    let answer = |seq: u64| {
        let mut table = fresh_table(&b);
        table.me.epoch = Some(7);
        table.me.seq = Some(seq);
        table
    };
    let (timeout, ping) = (net.node(R).config().peer_timeout, net.node(R).config().ping_interval);
    // Timers every second; b answers every greeting with its counter `seq(s)`, and its updates
    // arrive (or not) as `arrives(s)` says. Returns when b was removed.
    let run = |net: &mut Net, from: u64, to: u64, seq: &dyn Fn(u64) -> u64, arrives: &dyn Fn(u64) -> Option<Update>| {
        let mut lost_at = None;
        for s in from..=to {
            let now = at(s);
            net.now = now;
            let mut actions = net.handle(R, Event::Timer);
            for (to, _) in greets(&actions.clone()) {
                // Answered here, by hand, rather than by the real b.
                while let Some(id) = net.find(|f| f.is_greeting() && f.started_by(R)) {
                    net.drop_flight(id);
                }
                actions.extend(net.handle(R, Event::GreetingAnswered { to, reply: answer(seq(s)) }));
            }
            if let Some(u) = arrives(s) {
                actions.extend(net.handle(R, Event::UpdateReceived(u)));
            }
            if notices(&actions).iter().any(|n| matches!(n, Notice::PeerLost { .. })) {
                lost_at.get_or_insert(now);
            }
        }
        lost_at
    };
    let incremental = |seq: u64, files: Vec<FileInfo>| {
        let mut u = update("b", false, seq, files);
        u.epoch = Some(7);
        u
    };
    // Up to date for a minute: alive. At 30 s b makes change 4, and its answer at the ping
    // overtakes the update (which arrives a second later): that costs nothing.
    let lost = run(&mut net, 1, 60, &|s| if s < 30 { 3 } else { 4 }, &|s| {
        (s == 31).then(|| incremental(4, vec![file("c.txt", 2, "b")]))
    });
    assert_eq!(lost, None, "b was removed while we had all its changes");
    assert_eq!(paths(&net), vec!["b.txt", "c.txt"]);
    // At 61 s b deletes b.txt (change 5), and that update never arrives; b answers as before.
    let changed = at(61);
    let lost = run(&mut net, 61, 150, &|_| 5, &|_| None).expect("b removed");
    assert!(lost > changed + timeout - ping, "not before its last counted answer timed out: {lost:?}");
    assert!(lost <= changed + timeout + ping, "within a ping of the timeout: {lost:?}");
    assert_eq!(owner(&net, "b.txt"), None);
}

#[test]
fn a_skipped_sequence_number_is_a_gap_and_asks_for_a_full_update() {
    let mut net = net_of(&["r", "b", "c"]);
    let (b, c) = (net.cfg(B).clone(), net.cfg(C).clone());
    meet(&mut net, B);
    net.handle(R, Event::UpdateReceived(update("b", true, 0, vec![file("x", 1, "b")])));

    let actions = net.handle(R, Event::UpdateReceived(update("b", false, 1, vec![file("y", 1, "b")])));
    assert!(!notices(&actions).iter().any(|n| matches!(n, Notice::GapDetected { .. })));
    assert!(greets(&actions).is_empty(), "{actions:?}");

    let actions = net.handle(R, Event::UpdateReceived(update("b", false, 3, vec![file("z", 1, "b")])));
    assert!(
        notices(&actions).contains(&Notice::GapDetected {
            from: "b".into(),
            expected: Some(StreamPos { epoch: 1, seq: 2 }),
            got: StreamPos { epoch: 1, seq: 3 },
        }),
        "{actions:?}"
    );
    assert_eq!(greets(&actions), vec![(b.mgmt_addr.clone(), true)]);
    assert_eq!(owner(&net, "z").as_deref(), Some("b"), "what arrived is still applied");
    assert_eq!(net.node(R).streams()["b"], Some(StreamPos { epoch: 1, seq: 3 }));

    // An incremental update with nothing before it is a gap too: what came before is unknown.
    // (c's own full update from the meeting is held: r has nothing of c's stream.)
    meet(&mut net, C);
    let actions = net.handle(R, Event::UpdateReceived(update("c", false, 4, vec![file("c", 1, "c")])));
    let gap = Notice::GapDetected { from: "c".into(), expected: None, got: StreamPos { epoch: 1, seq: 4 } };
    assert!(notices(&actions).contains(&gap), "{actions:?}");
    assert_eq!(greets(&actions), vec![(c.mgmt_addr.clone(), true)]);
}

#[test]
fn a_stale_duplicate_full_update_does_not_roll_back() {
    let mut net = net_of(&["r", "b"]);
    meet(&mut net, B);
    net.handle(R, Event::UpdateReceived(update("b", true, 5, vec![file("new1", 1, "b"), file("new2", 1, "b")])));
    let old = update("b", true, 3, vec![file("old", 1, "b")]);
    let actions = net.handle(R, Event::UpdateReceived(old));
    assert!(notices(&actions).iter().any(|n| matches!(n, Notice::UpdateIgnored { .. })), "{actions:?}");
    assert!(applied(&actions).is_empty());
    assert_eq!(paths(&net), vec!["new1", "new2"]);
    // A stale incremental is ignored too.
    net.handle(R, Event::UpdateReceived(update("b", false, 4, vec![deletion("new1", "b")])));
    assert_eq!(paths(&net), vec!["new1", "new2"]);
    // A full update at the same position is applied (it prunes), and a new epoch starts over.
    net.handle(R, Event::UpdateReceived(update("b", true, 5, vec![file("new1", 1, "b")])));
    assert_eq!(paths(&net), vec!["new1"]);
    let mut restarted = update("b", true, 0, vec![file("after-restart", 1, "b")]);
    restarted.epoch = Some(2);
    net.handle(R, Event::UpdateReceived(restarted));
    assert_eq!(paths(&net), vec!["after-restart"]);
}

/// A scripted run touching every kind of event, with time moving past timeouts.
fn script() -> Vec<(Time, Event)> {
    let (b, c) = (config("b", 2, 1), config("c", 3, 1));
    let g = |cfg: &Config, full| Event::GreetingReceived { greeting: greeting_of(cfg, full), from_host: None };
    vec![
        (t0(), Event::LocalScan(vec![(p("l/1"), file_meta(1)), (p("l"), dir_meta(1)), (p("shared"), file_meta(4))])),
        (at(1), g(&b, true)),
        (at(1), Event::GreetingAnswered { to: b.mgmt_addr.clone(), reply: fresh_table(&b) }),
        (at(2), Event::JoinRequested(vec![c.mgmt_addr.clone(), addr(9, 7041)])),
        (at(2), Event::GreetingAnswered { to: c.mgmt_addr.clone(), reply: fresh_table(&c) }),
        (at(3), Event::UpdateReceived(update("b", true, 0, vec![file("shared", 4, "b"), file("b/x", 1, "b")]))),
        (at(3), Event::UpdateReceived(update("c", true, 0, vec![file("shared", 4, "c")]))),
        (at(4), Event::LocalChanges(vec![dftp_core::Change::Remove(p("l/1"))])),
        (at(4), Event::UpdateDelivered { to: "b".into(), full: false }),
        (at(5), Event::RequestFailed { request: Request::Update { to: "c".into(), full: false }, reason: "x".into() }),
        (at(5), Event::UpdateReceived(update("b", false, 2, vec![deletion("b/x", "b")]))),
        (
            at(6),
            Event::AnnouncementReceived {
                announcement: dftp_core::Announcement::ping("dftp", "e", &addr(7, 7041)),
                from_host: None,
            },
        ),
        (at(6), Event::RequestFailed { request: Request::Greet(addr(9, 7041)), reason: "x".into() }),
        (at(12), Event::Timer),
        (at(20), g(&c, false)),
        (at(45), Event::Timer),
        (at(50), Event::LocalChanges(vec![dftp_core::Change::Upsert(p("late"), file_meta(50))])),
        (at(3700), Event::Timer),
        (at(3701), g(&b, false)),
    ]
}

#[test]
fn the_same_events_give_the_same_actions() {
    let run_script = || {
        let mut cfg = config("r", 1, 77);
        cfg.announce_interval = Some(Span::from_secs(55));
        let mut n = Node::new(cfg, t0());
        let mut log = Vec::new();
        for (now, event) in script() {
            for a in n.handle(now, event) {
                log.push(format!("{a:?}"));
                if let Some(u) = full_update_of(&a, 32) {
                    log.push(String::from_utf8(u.to_json()).expect("UTF-8"));
                }
            }
        }
        let end = at(3701);
        (log, snapshot_canon(&n.snapshot(end)), n.cluster_info(end), n.streams())
    };
    let (a, b) = (run_script(), run_script());
    assert!(a.0.len() > 30, "the script does things: {:?}", a.0);
    assert!(a.0.iter().any(|s| s.contains("PeerLost")), "{:?}", a.0);
    assert!(a.0.iter().any(|s| s.starts_with("SendUpdate")), "{:?}", a.0);
    assert_eq!(a.0, b.0);
    assert_eq!(a.1, b.1);
    assert_eq!(a.2, b.2);
    assert_eq!(a.3, b.3);
}

#[test]
fn a_greeting_with_our_own_name_is_refused() {
    let mut net = net_of(&["r"]);
    let me = config("r", 2, 1);
    let actions = net.handle(R, Event::GreetingReceived { greeting: greeting_of(&me, true), from_host: None });
    assert!(actions.iter().any(|a| matches!(a, Action::Refuse(_))), "{actions:?}");
    assert!(net.node(R).peers().is_empty());
}

#[test]
fn an_empty_host_is_taken_from_the_connection() {
    let mut net = net_of(&["r"]);
    let g = Greeting::from_form(b"name=b&public-addr=%3A7040&mgmt-addr=%3A7041").expect("parses");
    let actions = net.handle(R, Event::GreetingReceived { greeting: g, from_host: Some("10.1.2.3".into()) });
    let peer = &net.node(R).peers()["b"];
    assert_eq!(peer.public_addr.to_string(), "10.1.2.3:7040");
    assert_eq!(peer.mgmt_addr.to_string(), "10.1.2.3:7041");
    assert_eq!(greets(&actions), vec![(PeerAddr::parse("10.1.2.3:7041").expect("valid"), true)]);
}

/// The records of `update` as (path, LastInfoUpdated), for deletions only.
fn deletion_times(update: &Update) -> Vec<(String, i64)> {
    update.files.iter().filter(|f| f.deletion).map(|f| (f.full_name.to_string(), f.last_info_updated)).collect()
}

/// The original's nodes apply a record only when its LastInfoUpdated is greater than the one
/// they hold (its `dfsfat/update.go`), so a deletion must carry a time past the one they got
/// for the path: the deletion time, or one second past the entry's own time when that is not
/// less (a file created and deleted within one second, or a status-change time ahead of our
/// clock). A nested deletion, or one of a path that another node still holds, carries 0: the
/// original would apply it to the wrong entry (see `Node::deletion_record`).
#[test]
fn a_deletion_carries_a_time_the_original_applies() {
    let now = at(5);
    let now_secs = now.unix_secs();
    // (status-change time of x.txt, the time its deletion must carry)
    for (ctime, want) in [(now_secs - 100, now_secs), (now_secs, now_secs + 1), (now_secs + 1000, now_secs + 1001)] {
        for how in ["changes", "scan", "subtree"] {
            let mut net = net_of(&["a", "r", "c"]);
            let local = vec![
                (p("x.txt"), file_meta(ctime)),
                (p("d"), dir_meta(1)),
                (p("d/y.txt"), file_meta(1)),
                (p("shared"), file_meta(1)),
            ];
            net.handle(A, Event::LocalScan(local.clone()));
            meet(&mut net, 1);
            meet(&mut net, 2);
            net.handle(A, Event::UpdateReceived(update("c", true, 0, vec![file("shared", 0, "c")])));
            let gone = [p("x.txt"), p("d/y.txt"), p("shared")];
            let event = match how {
                "changes" => Event::LocalChanges(gone.iter().cloned().map(dftp_core::Change::Remove).collect()),
                "scan" => Event::LocalScan(local.iter().filter(|(q, _)| !gone.contains(q)).cloned().collect()),
                _ => Event::LocalSubtrees(gone.iter().map(|q| (q.clone(), Vec::new())).collect()),
            };
            net.now = now;
            let actions = net.handle(A, event);
            let sent = updates_to(&actions, "r");
            assert_eq!(sent.len(), 1, "{how}: {actions:?}");
            let mut times = deletion_times(&sent[0]);
            times.sort();
            assert_eq!(
                times,
                vec![("d/y.txt".into(), 0), ("shared".into(), 0), ("x.txt".into(), want)],
                "{how}, ctime {ctime}"
            );
            let x = sent[0].files.iter().find(|f| f.full_name == "x.txt").unwrap();
            assert_eq!((x.basename(), x.dir, x.owner_node.as_str()), ("x.txt", false, "a"), "{how}");
        }
    }

    // A whole top-level directory: the directory's record carries the time, the records below
    // it do not (the original applies every deletion to the top-level entry of its path).
    let mut net = net_of(&["a", "r"]);
    net.handle(A, Event::LocalScan(vec![(p("d"), dir_meta(1)), (p("d/y.txt"), file_meta(1))]));
    meet(&mut net, 1);
    net.now = now;
    let actions = net.handle(A, Event::LocalSubtrees(vec![(p("d"), Vec::new())]));
    let sent = updates_to(&actions, "r");
    let mut times = deletion_times(&sent[0]);
    times.sort();
    assert_eq!(times, vec![("d".into(), now_secs), ("d/y.txt".into(), 0)]);
}

/// Our receivers order a sender's updates by Epoch/Seq and rank holders by their own rule: the
/// time a deletion now carries changes neither. The deletion removes the sender's copy only
/// (the receiver's own copy of the path, older than the deletion time, stays), and a copy made
/// again with a status-change time before the deletion time is applied.
#[test]
fn deletion_times_do_not_change_how_our_nodes_apply_deletions() {
    // A sender and a receiver, both real. The receiver's updates are kept from the sender: with
    // r's copy of x.txt in its tree, the sender's deletion of x.txt would carry 0 (a path that
    // another node still holds), which is the other test's business.
    let mut net = Net::new([config("n0", 1, 100), config("r", 200, 7)]);
    let (s, r) = (0, 1);
    net.hold_updates_to(s);
    net.join(r, s);
    let sender = net.name(s).to_string();
    let base = T0 as i64;
    net.run(r, Event::LocalScan(vec![(p("x.txt"), file_meta(base + 20))]));
    let apply = |net: &mut Net, op: SenderOp| updates_to(&net.run(s, op_event(&op, net.cfg(r))), "r");
    apply(
        &mut net,
        SenderOp::Changes(vec![(p("x.txt"), Some(file_meta(base + 50))), (p("y.txt"), Some(file_meta(base + 50)))]),
    );
    let owner_on_r = |net: &Net, path: &str| {
        net.snapshot(r).lookup(&p(path)).map(|e| (e.owner.as_str().to_string(), e.meta.unwrap().info_updated))
    };
    assert_eq!(owner_on_r(&net, "x.txt"), Some((sender.clone(), base + 50)), "the newer copy wins");

    let deleted = apply(&mut net, SenderOp::Changes(vec![(p("x.txt"), None), (p("y.txt"), None)]));
    assert_eq!(deleted.len(), 1);
    assert_eq!(
        deletion_times(&deleted[0]),
        vec![("x.txt".into(), base + 51), ("y.txt".into(), base + 51)],
        "past the entries' own (future) times"
    );
    assert_eq!(owner_on_r(&net, "x.txt"), Some(("r".into(), base + 20)), "the receiver's own copy stays");
    assert_eq!(owner_on_r(&net, "y.txt"), None);

    // Made again, with a status-change time before the deletion's time: applied all the same.
    apply(&mut net, SenderOp::Changes(vec![(p("y.txt"), Some(file_meta(base + 10)))]));
    assert_eq!(owner_on_r(&net, "y.txt"), Some((sender, base + 10)));
    assert_eq!(net.gaps(r), 0);
}
