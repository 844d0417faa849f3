//! Several real nodes wired together by the in-memory network of `common::harness`, run to
//! quiescence: greetings are answered with the receiver's table, updates are delivered,
//! announcements reach every reachable node, and anything to or from an isolated node fails.
//! The scenarios and the property check that the cluster converges to the merge of every
//! node's local files after joins, partitions and restarts.

mod common;

use common::*;
use dftp_core::{Config, DfsPath, Event, Holdings, Liveness, Meta, Notice};
use proptest::collection::vec;
use proptest::prelude::*;

/// The nodes `n0`.. with the daemon's default intervals (discovery on), every one of which has
/// announced itself and been greeted by the others.
fn started(n: usize) -> Net {
    let cfgs = (0..n).map(|i| Config::new(NODES[i], "dftp", addr(i as u8 + 1, 7040), addr(i as u8 + 1, 7041), 1));
    let mut net = Net::new(cfgs);
    // Every node announces at start; the others greet it.
    for i in 0..n {
        net.tick(i);
    }
    net
}

/// Node `i` restarts (a new epoch, its disk scanned) and joins the first other node.
fn restart(net: &mut Net, i: usize) {
    net.restart(i);
    let first_other = (0..net.len()).find(|&j| j != i).expect("another node");
    net.join(i, first_other);
}

fn ping_secs(net: &Net) -> u64 {
    net.node(0).config().ping_interval.as_millis() / 1000
}

#[test]
fn nodes_find_each_other_and_converge() {
    let mut net = started(3);
    for i in 0..3 {
        assert_eq!(net.node(i).peers().len(), 2, "node {i} met the others: {:?}", net.node(i).peers().keys());
    }
    net.change(0, vec![(p("a/x"), Some(file_meta(1))), (p("shared"), Some(file_meta(5)))]);
    net.change(1, vec![(p("a/y"), Some(file_meta(1))), (p("shared"), Some(file_meta(5)))]);
    net.change(2, vec![(p("b"), Some(dir_meta(1)))]);
    assert_eq!(net.diverged(), Vec::<usize>::new());
    let snap = net.snapshot(2);
    assert_eq!(snap.lookup(&p("shared")).map(|e| e.owner.as_str().to_string()).as_deref(), Some("n1"));
    assert_eq!(snap.lookup(&p("a")).map(|e| e.owner.as_str().to_string()).as_deref(), Some("(multiple)"));
}

#[test]
fn a_partition_drops_the_far_side_and_heals_within_a_ping() {
    let mut net = started(3);
    net.change(0, vec![(p("zero"), Some(file_meta(1)))]);
    net.change(1, vec![(p("one"), Some(file_meta(1)))]);
    net.isolate(1);
    net.advance(45);
    let far = net.snapshot(0);
    assert_eq!(far.lookup(&p("one")), None, "n1's files are gone from n0 after the timeout");
    let mut lost: Vec<(usize, String)> = net
        .notices()
        .iter()
        .filter_map(|(i, n)| match n {
            Notice::PeerLost { name, .. } => Some((*i, name.to_string())),
            _ => None,
        })
        .collect();
    lost.sort();
    assert_eq!(lost, vec![(0, "n1".to_string()), (1, "n0".to_string()), (1, "n2".to_string()), (2, "n1".to_string())]);
    // Changes on both sides while apart.
    net.change(1, vec![(p("one"), None), (p("one-b"), Some(file_meta(2)))]);
    net.change(0, vec![(p("zero-b"), Some(file_meta(2)))]);
    net.rejoin(1);
    net.advance(ping_secs(&net) + 1);
    assert_eq!(net.diverged(), Vec::<usize>::new());
}

#[test]
fn a_node_restarted_within_the_timeout_replaces_its_old_view() {
    let mut net = started(2);
    net.change(1, vec![(p("kept"), Some(file_meta(1))), (p("deleted-while-down"), Some(file_meta(1)))]);
    assert_eq!(net.diverged(), Vec::<usize>::new());
    // n1 goes down, loses a file, and is back before n0 would drop it.
    net.isolate(1);
    net.advance(5);
    net.disk_mut(1).remove(&p("deleted-while-down"));
    net.rejoin(1);
    restart(&mut net, 1);
    net.advance(ping_secs(&net) + 1);
    assert_eq!(net.diverged(), Vec::<usize>::new(), "n0 still shows what n1 deleted while down");
}

/// One direction of a link fails: n0's requests reach n1, but everything n1 sends n0, its
/// answers to n0's pings included, is lost. A greeting received shows only that the peer's
/// messages reach us, so n0 loses n1 and its files although n1 hears and answers every ping,
/// and n1 loses n0 although n0's greetings keep arriving.
/// n0's update during the cut is applied on n1 but its receipt is lost. Once the link is
/// mended, both are whole again within a ping. Only a net that carries a request and its
/// reply as separate legs can lose one and not the other.
#[test]
fn a_one_way_link_loses_the_answers_and_the_peer_with_them() {
    let mut net = started(2);
    net.change(0, vec![(p("zero"), Some(file_meta(1)))]);
    net.change(1, vec![(p("one"), Some(file_meta(1)))]);
    assert_eq!(net.diverged(), Vec::<usize>::new());
    net.cut(1, 0);
    net.change(0, vec![(p("zero-b"), Some(file_meta(2)))]);
    assert!(net.snapshot(1).lookup(&p("zero-b")).is_some(), "the update reached n1");

    // n0's ping reaches n1, which answers; the answer is lost on the way back.
    net.now = t0() + net.cfg(0).ping_interval;
    net.handle(0, Event::Timer);
    let ping = net.find(|f| f.is_greeting() && f.from == 0).expect("n0 pings n1");
    net.deliver(ping);
    let answer = net.reply_to(ping).expect("n1 answered the ping");
    net.deliver(answer);
    assert!(net.node(0).peers()["n1"].last_alive < net.now, "n1 counted alive without an answer");
    net.settle();

    net.advance(35);
    assert_eq!(net.snapshot(0).lookup(&p("one")), None, "n1's files are gone from n0 after the timeout");
    let lost: Vec<(usize, String)> = net
        .notices()
        .iter()
        .filter_map(|(i, n)| match n {
            Notice::PeerLost { name, .. } => Some((*i, name.to_string())),
            _ => None,
        })
        .collect();
    assert!(lost.contains(&(0, "n1".to_string())), "{lost:?}");
    // And n1, whose own pings fail, loses n0 although n0's greetings kept arriving.
    assert!(lost.contains(&(1, "n0".to_string())), "{lost:?}");

    net.mend(1, 0);
    net.advance(ping_secs(&net) + 1);
    assert_eq!(net.diverged(), Vec::<usize>::new());
}

#[derive(Clone, Debug)]
enum Step {
    Change(usize, Vec<(DfsPath, Option<Meta>)>),
    Isolate(usize),
    Rejoin(usize),
    Restart(usize),
    Wait(u64),
}

fn step_strategy() -> impl Strategy<Value = Step> {
    let node = 0..3usize;
    prop_oneof![
        6 => (node.clone(), vec((path_strategy(), prop::option::weighted(0.7, meta_strategy())), 1..4))
            .prop_map(|(i, c)| Step::Change(i, c)),
        1 => node.clone().prop_map(Step::Isolate),
        1 => node.clone().prop_map(Step::Rejoin),
        1 => node.prop_map(Step::Restart),
        2 => prop_oneof![1u64..5, 25u64..45].prop_map(Step::Wait),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever happened (changes anywhere, partitions, restarts), once the network is whole
    /// again every node shows the merge of every node's files within a ping interval.
    #[test]
    fn the_cluster_converges_after_anything(steps in vec(step_strategy(), 0..24)) {
        let mut net = started(3);
        for step in steps {
            match step {
                Step::Change(i, c) => {
                    net.change(i, c);
                }
                Step::Isolate(i) => net.isolate(i),
                Step::Rejoin(i) => net.rejoin(i),
                Step::Restart(i) => restart(&mut net, i),
                Step::Wait(s) => net.advance(s),
            }
        }
        net.rejoin_all();
        net.advance(ping_secs(&net) + 1);
        prop_assert_eq!(net.diverged(), Vec::<usize>::new());
    }
}

/// The status page's and the metrics' view: a node lists itself first, then every peer by name,
/// a lost one too (the wire table has only live ones), and what each holds.
#[test]
fn members_keep_lost_peers_and_holdings_follow_the_tree() {
    let mut net = started(3);
    net.change(0, vec![(p("zero"), Some(file_meta(1)))]);
    net.change(1, vec![(p("one"), Some(file_meta(1))), (p("one-dir"), Some(dir_meta(1)))]);
    let before = net.snapshot(0);
    assert_eq!(before.holdings()["n1"].paths, 2);
    assert_eq!(before.holdings()["n1"].files, 1);
    net.isolate(1);
    net.advance(45);
    let snap = net.snapshot(0);
    let members = snap.members();
    let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["n0", "n1", "n2"]);
    assert!(members[0].is_me && !members[1].is_me && !members[2].is_me);
    assert_eq!(members[0].liveness, Liveness::Alive);
    assert!(matches!(members[1].liveness, Liveness::Lost { .. }), "{:?}", members[1]);
    assert_eq!(members[2].liveness, Liveness::Alive);
    assert!(members[1].last_seen < members[2].last_seen, "n1 was last seen before the partition");
    assert!(members[2].last_update_in.is_some() && members[2].last_update_out.is_some());
    assert!(!snap.cluster().peers.contains_key("n1"), "the wire table keeps only live peers");
    let held = snap.holdings();
    assert_eq!(held["n1"], Holdings::default(), "a lost node's files left the tree");
    assert_eq!(held["n0"].files, 1);
}
