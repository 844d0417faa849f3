//! SWIM packets (`POST /swim/`): decoded by foca through our codec, which checks every identity
//! in them. Whatever the bytes, nothing panics, and a member SWIM then watches has a valid node
//! name and management address; a node refuses a packet whose sender is not its peer.

#![no_main]

use dftp_core::swim::{sender_of, Membership, Swim, SwimConfig, SwimId};
use dftp_core::{wire, Action, Config, Event, Node, PeerAddr, Time};
use libfuzzer_sys::fuzz_target;

fn now() -> Time {
    Time::from_secs(1_800_000_000)
}

fuzz_target!(|data: &[u8]| {
    let addr = |port| PeerAddr::new_unchecked("127.0.0.1", port);
    let sender = sender_of(data);

    let mut swim = Swim::new(SwimId::new("self", &addr(7041), 1, 0), SwimConfig::new(1));
    swim.meet(now(), SwimId::new("peer", &addr(7051), 1, 0));
    let _ = swim.receive(now(), data);
    swim.tick(now() + dftp_core::Span::from_secs(60));
    for m in swim.members() {
        assert!(wire::check_name(&m.name).is_ok(), "{m:?}");
        assert!(m.mgmt_addr().is_some(), "{m:?}");
    }

    let mut cfg = Config::new("self", "dftp", addr(7040), addr(7041), 1);
    cfg.announce_interval = None;
    cfg.membership = Membership::Swim;
    let mut node = Node::new(cfg, now());
    let actions =
        node.handle(now(), Event::SwimReceived { packet: data.to_vec(), from_host: Some("127.0.0.1".into()) });
    // It knows no peer: every packet is refused, and nothing is sent.
    assert!(actions.iter().any(|a| matches!(a, Action::Refuse(_))), "{sender:?}");
    assert!(!actions.iter().any(|a| matches!(a, Action::SwimSend { .. } | Action::Greet { .. })));
});
