//! The management API's inputs: the cluster JSON of `GET /cluster/` (a greeting's reply), the
//! greeting form of `POST /cluster/` and the join form of `POST /join/`, all on the same bytes.
//! Whatever parses is written back and read again unchanged, then fed to a node.

#![no_main]

use dftp_core::{parse_join_form, Action, ClusterInfo, Config, Event, Greeting, Node, PeerAddr, Time};
use libfuzzer_sys::fuzz_target;

fn now() -> Time {
    Time::from_secs(1_800_000_000)
}

fn node() -> Node {
    let addr = |port| PeerAddr::new_unchecked("127.0.0.1", port);
    Node::new(Config::new("self", "dftp", addr(7040), addr(7041), 1), now())
}

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = ClusterInfo::from_json(data) {
        let again = ClusterInfo::from_json(&info.to_json()).expect("our own cluster JSON parses");
        assert_eq!(again, info);
        // As the answer to a greeting we sent, with and without a greeting under way.
        let to = PeerAddr::new_unchecked("", 7041);
        let mut n = node();
        n.handle(now(), Event::JoinRequested(vec![to.clone()]));
        n.handle(now(), Event::GreetingAnswered { to: to.clone(), reply: info.clone() });
        n.handle(now(), Event::GreetingAnswered { to, reply: info });
        n.handle(Time::from_secs(1_800_000_100), Event::Timer);
        let _ = n.snapshot(now()).cluster().to_json();
    }

    if let Ok(greeting) = Greeting::from_form(data) {
        let again = Greeting::from_form(greeting.to_form().as_bytes()).expect("our own greeting form parses");
        assert_eq!(again, greeting);
        let mut n = node();
        for from_host in [None, Some("10.1.2.3".into())] {
            let actions = n.handle(now(), Event::GreetingReceived { greeting: greeting.clone(), from_host });
            if greeting.name == "self" {
                assert!(
                    actions.iter().any(|a| matches!(a, Action::Refuse(_))),
                    "a greeting in our own name is refused"
                );
            }
        }
        let info = n.cluster_info(now());
        let _ = ClusterInfo::from_json(&info.to_json()).expect("our cluster table parses");
    }

    if let Ok(peers) = parse_join_form(data) {
        assert!(!peers.is_empty());
        for p in &peers {
            assert_eq!(PeerAddr::parse(&p.to_string()).as_ref(), Ok(p), "an address round-trips");
        }
        let mut n = node();
        let actions = n.handle(now(), Event::JoinRequested(peers.clone()));
        let greeted = actions.iter().filter(|a| matches!(a, Action::Greet { .. })).count();
        let mut distinct = peers;
        distinct.sort();
        distinct.dedup();
        assert_eq!(greeted, distinct.len(), "each distinct address is greeted once");
    }
});
