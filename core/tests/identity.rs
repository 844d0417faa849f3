//! A peer's name is bound to the addresses it answers at: a message in a live peer's name with
//! other addresses is not believed unless the cluster is authenticated; and a stream position
//! an update in the peer's name claimed, which the peer itself denies, is forgotten.

use dftp_core::{
    Action, ClusterInfo, Config, DfsPath, Event, FileInfo, FileMode, Greeting, Node, NodeInfo, Notice, PeerAddr, Span,
    StreamPos, Time, Update,
};

fn addr(s: &str) -> PeerAddr {
    PeerAddr::parse(s).unwrap()
}

fn t(secs: u64) -> Time {
    Time::from_secs(1_800_000_000 + secs)
}

fn node(authenticated: bool) -> Node {
    let mut cfg = Config::new("a", "dftp", addr("10.0.0.1:7040"), addr("10.0.0.1:7041"), 1);
    cfg.announce_interval = None;
    cfg.authenticated = authenticated;
    Node::new(cfg, t(0))
}

fn greeting(name: &str, host: &str) -> Event {
    Event::GreetingReceived {
        greeting: Greeting {
            name: name.into(),
            public_addr: addr(&format!("{host}:7040")),
            mgmt_addr: addr(&format!("{host}:7041")),
            request_full_update: false,
        },
        from_host: Some(host.into()),
    }
}

fn table(name: &str, host: &str, epoch: u64, seq: u64) -> ClusterInfo {
    let me = NodeInfo {
        name: name.into(),
        public_addr: format!("{host}:7040"),
        mgmt_addr: format!("{host}:7041"),
        last_alive: 0,
        last_update_pushed: 0,
        last_update_received: 0,
        last_full_update_received: 0,
        epoch: Some(epoch),
        seq: Some(seq),
        digest: None,
        swim: None,
    };
    ClusterInfo { name: "dftp".into(), me, peers: Default::default() }
}

fn update(sender: &str, path: &str, full: bool, epoch: u64, seq: u64) -> Update {
    Update {
        files: vec![FileInfo {
            full_name: path.into(),
            dir: false,
            last_modified: 1,
            last_info_updated: 1,
            size_in_bytes: 3,
            file_mode: FileMode::file(0o644),
            owner_node: sender.into(),
            deletion: false,
        }],
        update_time: 1,
        full,
        sender_node_name: sender.into(),
        epoch: Some(epoch),
        seq: Some(seq),
        buckets: None,
    }
}

/// Where `a` would fetch b's files from.
fn public_of(a: &Node, now: Time, name: &str) -> Option<String> {
    a.snapshot(now).cluster().peers.get(name).map(|p| p.public_addr.clone())
}

fn conflicts(actions: &[Action]) -> usize {
    actions.iter().filter(|x| matches!(x, Action::Notice(Notice::AddressConflict { .. }))).count()
}

/// b, genuine at 10.0.0.2, is a live peer of a.
fn with_b(authenticated: bool) -> Node {
    let mut a = node(authenticated);
    a.handle(t(1), greeting("b", "10.0.0.2"));
    a.handle(t(1), Event::GreetingAnswered { to: addr("10.0.0.2:7041"), reply: table("b", "10.0.0.2", 5, 0) });
    assert_eq!(public_of(&a, t(1), "b").as_deref(), Some("10.0.0.2:7040"));
    a
}

#[test]
fn an_unsigned_greeting_in_a_live_peers_name_keeps_its_addresses_while_it_answers() {
    let mut a = with_b(false);
    // The attack: a greeting in b's name, from the attacker's address.
    let actions = a.handle(t(2), greeting("b", "10.6.6.6"));
    assert_eq!(conflicts(&actions), 1, "the conflict is reported: {actions:?}");
    assert_eq!(public_of(&a, t(2), "b").as_deref(), Some("10.0.0.2:7040"), "b's files still come from b");
    assert!(
        !actions.iter().any(|x| matches!(x, Action::Greet { to, .. } | Action::SendFullUpdate { addr: to, .. } if to.host() == "10.6.6.6")),
        "nothing goes to the claimed address: {actions:?}"
    );
    // Said once: the same claim again is not reported again.
    assert_eq!(conflicts(&a.handle(t(2), greeting("b", "10.6.6.6"))), 0);
    // The same through an answer: a table in b's name from an address a greeted.
    let actions =
        a.handle(t(3), Event::GreetingAnswered { to: addr("10.6.6.7:7041"), reply: table("b", "10.6.6.7", 5, 0) });
    assert_eq!(conflicts(&actions), 1);
    assert_eq!(public_of(&a, t(3), "b").as_deref(), Some("10.0.0.2:7040"));

    // b keeps answering at its address: it stays b's, however often the claim comes.
    let mut now = t(3);
    for _ in 0..10 {
        now = now + Span::from_secs(10);
        a.handle(now, Event::Timer);
        a.handle(now, Event::GreetingAnswered { to: addr("10.0.0.2:7041"), reply: table("b", "10.0.0.2", 5, 0) });
        a.handle(now, greeting("b", "10.6.6.6"));
        assert_eq!(public_of(&a, now, "b").as_deref(), Some("10.0.0.2:7040"));
    }
    // b stops answering there (it moved, say): once it is lost, a greeting in its name is taken.
    for _ in 0..6 {
        now = now + Span::from_secs(10);
        a.handle(now, Event::Timer);
    }
    assert_eq!(public_of(&a, now, "b"), None, "b is lost");
    let actions = a.handle(now, greeting("b", "10.0.0.9"));
    assert_eq!(conflicts(&actions), 0);
    assert!(actions.iter().any(|x| matches!(x, Action::Notice(Notice::PeerReturned { .. }))));
    a.handle(now, Event::GreetingAnswered { to: addr("10.0.0.9:7041"), reply: table("b", "10.0.0.9", 6, 0) });
    assert_eq!(public_of(&a, now, "b").as_deref(), Some("10.0.0.9:7040"));
}

#[test]
fn with_the_cluster_secret_a_signed_greeting_moves_a_peer_at_once() {
    let mut a = with_b(true);
    let actions = a.handle(t(2), greeting("b", "10.0.0.9"));
    assert_eq!(conflicts(&actions), 0);
    assert_eq!(public_of(&a, t(2), "b").as_deref(), Some("10.0.0.9:7040"));
}

#[test]
fn a_forged_seq_at_its_maximum_is_undone_by_the_peers_own_table() {
    let mut a = with_b(false);
    let x = DfsPath::parse("x.txt").unwrap();
    let y = DfsPath::parse("y.txt").unwrap();
    a.handle(t(2), Event::UpdateReceived(update("b", "x.txt", true, 5, 0)));
    assert!(a.snapshot(t(2)).lookup(&x).is_some());
    // The attack: an update in b's name, b's epoch, Seq = u64::MAX.
    a.handle(t(3), Event::UpdateReceived(update("b", "evil.txt", false, 5, u64::MAX)));
    // b's genuine next update is ignored now...
    a.handle(t(4), Event::UpdateReceived(update("b", "y.txt", false, 5, 1)));
    assert!(a.snapshot(t(4)).lookup(&y).is_none(), "the attack works on the update alone");
    // ...and so is its full update (the one the gap asked for).
    a.handle(t(5), Event::UpdateReceived(update("b", "y.txt", true, 5, 1)));
    assert!(a.snapshot(t(5)).lookup(&y).is_none());
    // ...until a's next ping: b's table says it is at 1, so MAX was never b's.
    let actions =
        a.handle(t(10), Event::GreetingAnswered { to: addr("10.0.0.2:7041"), reply: table("b", "10.0.0.2", 5, 1) });
    let forged = StreamPos { epoch: 5, seq: u64::MAX };
    assert!(
        actions.iter().any(
            |x| matches!(x, Action::Notice(Notice::ForgedPosition { applied, told, .. }) if *applied == forged && told.seq == 1)
        ),
        "{actions:?}"
    );
    // b's full update (at 1) is taken, and its later updates too.
    a.handle(t(11), Event::UpdateReceived(update("b", "y.txt", true, 5, 1)));
    assert!(a.snapshot(t(11)).lookup(&y).is_some());
    assert!(a.snapshot(t(11)).lookup(&DfsPath::parse("evil.txt").unwrap()).is_none(), "the full update replaced it");
    a.handle(t(12), Event::UpdateReceived(update("b", "z.txt", false, 5, 2)));
    assert!(a.snapshot(t(12)).lookup(&DfsPath::parse("z.txt").unwrap()).is_some());
}

#[test]
fn a_genuine_position_is_never_taken_for_a_forged_one() {
    let mut a = with_b(false);
    a.handle(t(2), Event::UpdateReceived(update("b", "x.txt", true, 5, 3)));
    a.handle(t(3), Event::UpdateReceived(update("b", "y.txt", false, 5, 4)));
    // b's table is made after its updates, so it is at 4 or beyond.
    for seq in [4, 9] {
        let actions = a
            .handle(t(5), Event::GreetingAnswered { to: addr("10.0.0.2:7041"), reply: table("b", "10.0.0.2", 5, seq) });
        assert!(!actions.iter().any(|x| matches!(x, Action::Notice(Notice::ForgedPosition { .. }))), "{actions:?}");
    }
}

#[test]
fn a_claimed_address_is_taken_when_the_known_one_stops_answering() {
    use dftp_core::Request;
    let mut a = with_b(false);
    let failed = |to: &str| Event::RequestFailed { request: Request::Greet(addr(to)), reason: "refused".into() };
    // A claim, then b answers where it is: the claim is forgotten, and a later failure there
    // moves nothing.
    a.handle(t(2), greeting("b", "10.0.0.9"));
    a.handle(t(3), Event::GreetingAnswered { to: addr("10.0.0.2:7041"), reply: table("b", "10.0.0.2", 5, 0) });
    let actions = a.handle(t(4), failed("10.0.0.2:7041"));
    assert!(!actions.iter().any(|x| matches!(x, Action::Notice(Notice::PeerMoved { .. }))), "{actions:?}");
    assert_eq!(public_of(&a, t(4), "b").as_deref(), Some("10.0.0.2:7040"));
    // b restarted elsewhere: its greeting from there is a claim (reported before), and the
    // next greeting to its old address fails: now it has moved, and is greeted at its new address.
    let actions = a.handle(t(5), greeting("b", "10.0.0.9"));
    assert_eq!(conflicts(&actions), 0, "already reported");
    let actions = a.handle(t(6), failed("10.0.0.2:7041"));
    assert!(actions.iter().any(|x| matches!(x, Action::Notice(Notice::PeerMoved { .. }))), "{actions:?}");
    assert!(
        actions.iter().any(|x| matches!(x, Action::Greet { to, .. } if *to == addr("10.0.0.9:7041"))),
        "{actions:?}"
    );
    assert_eq!(public_of(&a, t(6), "b").as_deref(), Some("10.0.0.9:7040"));
    // A failure of a greeting to an address nobody claimed anything for changes nothing.
    let actions = a.handle(t(7), failed("10.0.0.7:7041"));
    assert!(!actions.iter().any(|x| matches!(x, Action::Notice(Notice::PeerMoved { .. }))));
}
