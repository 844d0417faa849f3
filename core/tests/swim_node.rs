//! SWIM inside the node (`--membership swim`): peers that speak it are watched by SWIM and no
//! longer greeted every ping interval; a peer SWIM declares down loses its files as a timed-out
//! one does, and comes back; the original's nodes (no `Swim` in their table) are greeted as
//! before; a SWIM packet from a stranger is refused.

mod common;

use common::*;
use dftp_core::swim::{Membership, Swim, SwimConfig, SwimId, SwimOut};
use dftp_core::{Action, Config, DfsPath, Event, Meta, Notice};

fn swim_config(name: &str, i: u8) -> Config {
    let mut cfg = config(name, i, 1_000 + u64::from(i));
    cfg.membership = Membership::Swim;
    cfg
}

/// A cluster of `swim` SWIM nodes and `ping` nodes of the original's kind, all joined to node 0.
fn cluster(swim: usize, ping: usize) -> Net {
    let cfgs = (0..swim + ping).map(|i| {
        let name = format!("n{i}");
        if i < swim {
            swim_config(&name, i as u8 + 1)
        } else {
            config(&name, i as u8 + 1, 1_000 + i as u64)
        }
    });
    let mut net = Net::new(cfgs);
    for i in 1..net.len() {
        net.join(i, 0);
    }
    net.advance(30);
    net
}

/// Runs `secs` seconds; gives the greetings (from, to) and the SWIM packets sent meanwhile.
fn run(net: &mut Net, secs: u64) -> (Vec<(usize, usize)>, usize) {
    let before = net.sent().len();
    net.advance(secs);
    let sent = &net.sent()[before..];
    let greetings =
        sent.iter().filter(|f| f.is_greeting()).map(|f| (f.from, f.to.expect("a node of the net"))).collect();
    let packets = sent.iter().filter(|f| matches!(f.carried, Carried::Swim(_))).count();
    (greetings, packets)
}

fn all_alive(net: &Net) -> bool {
    (0..net.len()).all(|i| net.node(i).peers().values().filter(|p| p.is_alive()).count() == net.len() - 1)
}

#[test]
fn swim_peers_are_watched_by_swim_and_not_greeted() {
    let mut net = cluster(4, 0);
    assert!(all_alive(&net));
    let (greetings, packets) = run(&mut net, 60);
    assert_eq!(greetings, [], "greetings between SWIM peers");
    // A probe and its answer per node per probe period (1 s), about.
    assert!((4 * 60..=4 * 60 * 4).contains(&packets), "{packets} packets");
    assert!(all_alive(&net));
}

#[test]
fn the_original_nodes_are_still_greeted_every_ping_interval() {
    let mut net = cluster(3, 1);
    assert!(all_alive(&net));
    let (greetings, _) = run(&mut net, 60);
    let between_swim = greetings.iter().filter(|(i, j)| *i < 3 && *j < 3).count();
    let to_original = greetings.iter().filter(|(i, j)| *i < 3 && *j == 3).count();
    let from_original = greetings.iter().filter(|(i, _)| *i == 3).count();
    assert_eq!(between_swim, 0);
    // Every 10 s, each of the three greets it, and it greets each of them.
    assert!((15..=21).contains(&to_original), "{to_original}: {greetings:?}");
    assert!((15..=21).contains(&from_original), "{from_original}");
    assert!(all_alive(&net));
}

#[test]
fn a_peer_swim_declares_down_loses_its_files_and_comes_back() {
    let mut net = cluster(4, 0);
    let path = DfsPath::parse("from3.txt").unwrap();
    let meta = Meta { mode: dftp_core::FileMode::file(0o644), size: 3, modified: 1, info_updated: 1 };
    net.change(3, vec![(path.clone(), Some(meta))]);
    assert!((0..3).all(|i| net.snapshot(i).lookup(&path).is_some()));

    net.isolate(3);
    let lost = |net: &Net, i: usize| {
        net.notices_of(i).iter().any(|n| matches!(n, Notice::PeerLost { name, .. } if name == "n3"))
    };
    let mut waited = 0;
    while !(0..3).all(|i| lost(&net, i)) {
        assert!(waited < 60, "n3 not declared down in a minute");
        run(&mut net, 1);
        waited += 1;
    }
    assert!((0..3).all(|i| net.snapshot(i).lookup(&path).is_none()), "its files are gone");
    assert!(waited < 30, "SWIM's suspicion (about 4 s with 4 nodes) beats the peer timeout: {waited} s");

    net.rejoin(3);
    let mut waited = 0;
    while !(all_alive(&net) && (0..3).all(|i| net.snapshot(i).lookup(&path).is_some())) {
        assert!(waited < 120, "n3 not back in two minutes");
        run(&mut net, 1);
        waited += 1;
    }
    assert!((0..3).all(|i| net.notices_of(i).iter().any(|n| *n == Notice::PeerReturned { name: "n3".into() })));
    // Once SWIM watches everyone again, the greetings stop.
    run(&mut net, 120);
    let (greetings, _) = run(&mut net, 30);
    assert_eq!(greetings, [], "greetings after the return");
    assert!(all_alive(&net));
}

/// Greetings are what brought a peer that missed an update of ours a full one: SWIM peers are
/// not greeted, so it comes at the next ping interval instead.
#[test]
fn a_swim_peer_that_missed_an_update_gets_a_full_one_at_the_next_ping() {
    let mut net = cluster(2, 0);
    let path = DfsPath::parse("lost.txt").unwrap();
    let meta = Meta { mode: dftp_core::FileMode::file(0o644), size: 3, modified: 1, info_updated: 1 };
    // n0's incremental update to n1 fails on its way.
    net.handle(0, Event::LocalChanges(vec![dftp_core::Change::Upsert(path.clone(), meta)]));
    let lost = net.find(|f| f.is_update() && f.from == 0).expect("an update to n1");
    net.fail(lost);
    net.settle();
    assert!(net.snapshot(1).lookup(&path).is_none());
    let (greetings, _) = run(&mut net, 12);
    assert_eq!(greetings, []);
    assert!(net.snapshot(1).lookup(&path).is_some(), "n1 has n0's change from a full update");
}

#[test]
fn a_swim_packet_from_a_stranger_or_garbage_is_refused() {
    let mut net = cluster(2, 0);
    let refusal = |actions: &[Action]| {
        actions.iter().find_map(|a| match a {
            Action::Refuse(r) => Some(r.clone()),
            _ => None,
        })
    };
    // A real SWIM packet, from a node that never answered a greeting.
    let mallory = SwimId::new("mallory", &addr(66, 7041), 1, 0);
    let mut swim = Swim::new(mallory, SwimConfig::new(5));
    let n0 = SwimId::new("n0", &net.cfg(0).mgmt_addr, net.cfg(0).epoch, 0);
    swim.meet(net.now, n0);
    let packet = swim
        .take()
        .into_iter()
        .find_map(|o| match o {
            SwimOut::Send { packet, .. } => Some(packet),
            _ => None,
        })
        .expect("a packet to n0");
    let actions = net.handle(0, Event::SwimReceived { packet: packet.clone(), from_host: Some("10.0.0.66".into()) });
    assert!(refusal(&actions).is_some_and(|r| r.contains("not a peer")), "{actions:?}");
    // In the name of n1, from another host.
    let mut forged = Swim::new(SwimId::new("n1", &net.cfg(1).mgmt_addr, net.cfg(1).epoch, 0), SwimConfig::new(6));
    forged.meet(net.now, SwimId::new("n0", &net.cfg(0).mgmt_addr, net.cfg(0).epoch, 0));
    let packet = forged
        .take()
        .into_iter()
        .find_map(|o| match o {
            SwimOut::Send { packet, .. } => Some(packet),
            _ => None,
        })
        .unwrap();
    let actions = net.handle(0, Event::SwimReceived { packet, from_host: Some("10.0.0.66".into()) });
    assert!(refusal(&actions).is_some_and(|r| r.contains("not at 10.0.0.66")), "{actions:?}");
    // Garbage, and a packet too large.
    for packet in [b"garbage".to_vec(), vec![0u8; 4000], Vec::new()] {
        let actions = net.handle(0, Event::SwimReceived { packet, from_host: Some("10.0.0.2".into()) });
        assert!(refusal(&actions).is_some(), "{actions:?}");
    }
    assert!(all_alive(&net));
}
