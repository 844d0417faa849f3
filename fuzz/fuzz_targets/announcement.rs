//! Multicast discovery packets: parse, then hand to a node of the packet's cluster and to a node
//! of another one. Only the first may greet, and only the address the packet names.

#![no_main]

use dftp_core::{Action, Announcement, Config, Event, Node, PeerAddr, Time};
use libfuzzer_sys::fuzz_target;

fn now() -> Time {
    Time::from_secs(1_800_000_000)
}

fn node(cluster: &str) -> Node {
    let addr = |port| PeerAddr::new_unchecked("127.0.0.1", port);
    let mut cfg = Config::new("self", cluster, addr(7040), addr(7041), 1);
    cfg.announce_interval = None;
    Node::new(cfg, now())
}

fuzz_target!(|data: &[u8]| {
    let Ok(a) = Announcement::from_json(data) else { return };
    let again = Announcement::from_json(&a.to_json()).expect("our own announcement parses");
    assert_eq!(again, a);

    for from_host in [None, Some("192.0.2.7".into())] {
        let greets = |cluster: &str| -> Vec<PeerAddr> {
            let mut n = node(cluster);
            let event = Event::AnnouncementReceived { announcement: a.clone(), from_host: from_host.clone() };
            n.handle(now(), event)
                .into_iter()
                .filter_map(|act| match act {
                    Action::Greet { to, .. } => Some(to),
                    _ => None,
                })
                .collect()
        };
        let other = if a.cluster_name == "dftp" { "other" } else { "dftp" };
        assert!(greets(other).is_empty(), "an announcement of another cluster is ignored");
        let same = greets(&a.cluster_name);
        match PeerAddr::parse(&a.mgmt_addr) {
            Ok(addr) if a.node_name != "self" => {
                assert_eq!(same, vec![addr.or_host(from_host.as_deref())], "the announced node is greeted")
            }
            _ => assert!(same.is_empty(), "nothing to greet"),
        }
    }
});
