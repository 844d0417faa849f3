//! Node-level properties: convergence whatever the delivery order (a), a full update plus
//! incremental ones equals one full update (b), and a silent peer takes exactly its paths with
//! it (c). Updates come from real sender nodes on the harness's network, so their epochs,
//! sequence numbers and full bodies are the ones the code really produces; the receiver holds
//! them, and the tests hand them to it in the orders they choose.

mod common;

use common::*;
use dftp_core::{DfsPath, Event, Meta, Notice, Span, Time, Update};
use proptest::collection::vec;
use proptest::prelude::*;

/// The receiver's name; the senders are `n0`.. ([`NODES`]).
const RECEIVER: &str = "r";

fn local_strategy() -> impl Strategy<Value = Option<Vec<(DfsPath, Meta)>>> {
    prop::option::of(vec((path_strategy(), meta_strategy()), 0..5))
}

/// `senders` sender nodes and, last, the receiver r, which has joined each of them and holds
/// every update sent to it: the tests take each sender's stream ([`Net::take_held`]) and hand
/// it to r in whatever order they choose.
fn network(senders: usize) -> Net {
    let cfgs = (0..senders).map(|i| config(NODES[i], i as u8 + 1, 100 + i as u64)).chain([config(RECEIVER, 200, 7)]);
    let mut net = Net::new(cfgs);
    let r = senders;
    net.hold_updates_to(r);
    for s in 0..senders {
        net.join(r, s);
    }
    net
}

/// Sender `s` does `op`, to quiescence (what it sends r is held).
fn apply(net: &mut Net, s: usize, op: &SenderOp) {
    let receiver = net.cfg(net.len() - 1).clone();
    net.run(s, op_event(op, &receiver));
}

/// The network of [`network`] after each sender has done its operations; returns it, r's
/// index, and each sender's stream of updates to r (its first-contact full update first).
fn senders_and_receiver(ops: &[Vec<SenderOp>]) -> (Net, usize, Vec<Vec<Update>>) {
    let mut net = network(ops.len());
    let r = ops.len();
    for (s, ops) in ops.iter().enumerate() {
        for op in ops {
            apply(&mut net, s, op);
        }
    }
    let streams = (0..r).map(|s| net.take_held(s, r)).collect();
    (net, r, streams)
}

/// The model of what every receiver should show: each sender's final view and the receiver's
/// own scan (the last record of a path wins, as in a scan).
fn expected(net: &Net, senders: usize, local: &Option<Vec<(DfsPath, Meta)>>) -> Model {
    let mut model = Model::new();
    for s in 0..senders {
        model.insert(net.name(s).to_string(), net.local_files(s));
    }
    if let Some(local) = local {
        model.insert(RECEIVER.to_string(), local.iter().cloned().collect());
    }
    model
}

/// Hands r the updates of `list` in order, with the local scan (if any) just before position
/// `at`.
fn deliver_all(net: &mut Net, r: usize, list: &[Update], local: &Option<Vec<(DfsPath, Meta)>>, at: usize) {
    let at = at % (list.len() + 1);
    for (k, u) in list.iter().enumerate() {
        if k == at {
            if let Some(l) = local {
                net.run(r, Event::LocalScan(l.clone()));
            }
        }
        net.receive(r, u);
    }
    if at == list.len() {
        if let Some(l) = local {
            net.run(r, Event::LocalScan(l.clone()));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// (a) Two nodes that get the same updates, each sender's stream in its order but
    /// interleaved differently across senders, with redeliveries of earlier messages inserted
    /// later, show the same tree, and it is the merge of the senders' views.
    #[test]
    fn same_updates_in_any_interleaving_give_the_same_tree(
        ops in vec(vec(sender_op_strategy(), 0..8), 1..=4),
        local in local_strategy(),
        sched_x in vec(any::<usize>(), 0..48),
        sched_y in vec(any::<usize>(), 0..48),
        dups_x in vec((any::<usize>(), any::<usize>()), 0..6),
        dups_y in vec((any::<usize>(), any::<usize>()), 0..6),
        local_at in (any::<usize>(), any::<usize>()),
    ) {
        let (mut x, r, streams) = senders_and_receiver(&ops);
        let (mut y, _, streams_y) = senders_and_receiver(&ops);
        prop_assert_eq!(&streams, &streams_y, "the same operations give the same streams");
        let mut list_x = interleave(&streams, &sched_x);
        let mut list_y = interleave(&streams, &sched_y);
        insert_duplicates(&mut list_x, &dups_x);
        insert_duplicates(&mut list_y, &dups_y);

        deliver_all(&mut x, r, &list_x, &local, local_at.0);
        deliver_all(&mut y, r, &list_y, &local, local_at.1);

        let cx = x.canon(r);
        prop_assert_eq!(&cx, &y.canon(r));
        prop_assert_eq!(&cx, &model_canon(&expected(&x, r, &local)));
        // In-order streams with redeliveries never look like a lost update...
        prop_assert_eq!(x.gaps(r) + y.gaps(r), 0);
        // ...and every full update asked for at the first contact has arrived.
        for net in [&x, &y] {
            prop_assert!(net.awaited_full_updates(r).is_empty(), "{:?}", net.awaited_full_updates(r));
        }
    }

    /// (a) One sender's stream arbitrarily reordered (and redelivered): the node either already
    /// shows the same tree, or it has asked that sender for a full update; once the full updates
    /// it asked for arrive, the trees are equal.
    #[test]
    fn reordered_stream_converges_once_requested_full_updates_arrive(
        ops in vec(vec(sender_op_strategy(), 0..8), 1..=4),
        which in any::<usize>(),
        keys in vec(any::<u32>(), 0..16),
        sched in vec(any::<usize>(), 0..48),
        dups in vec((any::<usize>(), any::<usize>()), 0..4),
    ) {
        let (mut x, r, streams) = senders_and_receiver(&ops);
        let (mut y, _, _) = senders_and_receiver(&ops);
        let s = which % r;
        let s_name = x.name(s).to_string();

        for u in interleave(&streams, &sched) {
            x.receive(r, &u);
        }

        let mut streams_y = streams.clone();
        streams_y[s] = permute(&streams[s], &keys);
        let mut list_y = interleave(&streams_y, &sched);
        insert_duplicates(&mut list_y, &dups);
        for u in &list_y {
            y.receive(r, u);
        }

        let model = model_canon(&expected(&x, r, &None));
        prop_assert_eq!(&x.canon(r), &model);
        for name in y.awaited_full_updates(r) {
            prop_assert!(name == s_name, "{} kept its order but a full update is outstanding", name);
        }
        if !y.awaits_full_from(r, &s_name) {
            // Nothing asked for: the node must not have silently diverged.
            prop_assert_eq!(&y.canon(r), &model, "diverged without asking for a full update");
        }

        // The sender answered the request with its current state, held for r until now.
        if y.awaits_full_from(r, &s_name) {
            let answer = y.take_held(s, r);
            prop_assert!(!answer.is_empty() && answer.iter().all(|u| u.full), "asked for a full update: {:?}", answer);
            for u in &answer {
                y.receive(r, u);
            }
        }
        prop_assert!(y.awaited_full_updates(r).is_empty(), "{:?}", y.awaited_full_updates(r));
        prop_assert_eq!(&y.canon(r), &model);
    }

    /// (b) A full update followed by incremental ones gives the same tree as one full update of
    /// the final state (with another sender's files around, so that ranks matter).
    #[test]
    fn full_then_incrementals_equals_single_full(
        base in vec(incremental_op_strategy(), 0..5),
        incs in vec(incremental_op_strategy(), 0..8),
        other in vec(incremental_op_strategy(), 0..5),
    ) {
        let run = || {
            let mut net = network(2);
            let r = 2;
            for op in &base {
                apply(&mut net, 0, op);
            }
            net.take_held(0, r); // the first-contact full update and what base sent: not delivered
            apply(&mut net, 0, &SenderOp::Full);
            let first_full = net.take_held(0, r);
            for op in &incs {
                apply(&mut net, 0, op);
            }
            let incrementals = net.take_held(0, r);
            apply(&mut net, 0, &SenderOp::Full);
            let last_full = net.take_held(0, r);
            for op in &other {
                apply(&mut net, 1, op);
            }
            let s1_stream = net.take_held(1, r);
            (net, r, first_full, incrementals, last_full, s1_stream)
        };
        let (mut x, r, first_full, incrementals, last_full, s1_stream) = run();
        let (mut y, ..) = run();
        prop_assert_eq!(first_full.len(), 1);
        prop_assert_eq!(last_full.len(), 1);
        prop_assert!(first_full[0].full && last_full[0].full);
        prop_assert!(incrementals.iter().all(|u| !u.full));

        for u in &s1_stream {
            x.receive(r, u);
            y.receive(r, u);
        }
        x.receive(r, &first_full[0]);
        for u in &incrementals {
            x.receive(r, u);
        }
        y.receive(r, &last_full[0]);

        prop_assert_eq!(x.gaps(r), 0);
        let cx = x.canon(r);
        prop_assert_eq!(&cx, &y.canon(r));
        prop_assert_eq!(&cx, &model_canon(&expected(&x, r, &None)));
    }

    /// (c) A peer that falls silent past `peer_timeout` is removed by the timer with exactly its
    /// paths; paths that others also hold switch to the next holder by the rule.
    #[test]
    fn silent_peer_is_removed_with_exactly_its_paths(
        ops in vec(vec(incremental_op_strategy(), 0..6), 2..=4),
        local in local_strategy(),
        victim in any::<usize>(),
    ) {
        let (mut net, r, streams) = senders_and_receiver(&ops);
        let victim = victim % r;
        let victim_name = net.name(victim).to_string();
        if let Some(l) = &local {
            net.run(r, Event::LocalScan(l.clone()));
        }
        for stream in &streams {
            for u in stream {
                net.receive(r, u);
            }
        }
        let mut model = expected(&net, r, &local);
        prop_assert_eq!(&net.canon(r), &model_canon(&model));

        // The victim stops answering; the others keep greeting (their pings), and answer r's.
        net.isolate(victim);
        let timeout = net.cfg(r).peer_timeout;
        net.now = Time(t0().0 + timeout.as_millis() * 2 / 3);
        for s in (0..r).filter(|&s| s != victim) {
            net.tick(s);
        }
        prop_assert_eq!(&net.canon(r), &model_canon(&model), "nobody is removed before the timeout");
        net.now = t0() + timeout + Span::from_secs(1);
        net.tick(r);

        let lost: Vec<(String, usize)> = net
            .notices_of(r)
            .into_iter()
            .filter_map(|n| match n {
                Notice::PeerLost { name, files_removed } => Some((name.to_string(), files_removed)),
                _ => None,
            })
            .collect();
        let victim_view = model.remove(victim_name.as_str()).unwrap_or_default();
        prop_assert_eq!(lost, vec![(victim_name.clone(), victim_view.len())]);
        let after = net.canon(r);
        prop_assert_eq!(&after, &model_canon(&model));

        // Spelled out: each path the victim held is gone, or now shows the best other holder.
        let winners = model_winners(&model);
        let snap = net.snapshot(r);
        for path in victim_view.keys() {
            match winners.get(path.as_str()) {
                Some((_, meta)) => {
                    let e = snap.lookup(path);
                    prop_assert_eq!(e.and_then(|e| e.meta), Some(*meta));
                }
                None => prop_assert!(
                    after.iter().all(|e| e.0 != path.as_str() || e.1 == dftp_core::Kind::Dir),
                    "{:?} only held by the victim is still there", path
                ),
            }
        }
        prop_assert!(!snap.cluster().peers.contains_key(victim_name.as_str()));
        prop_assert_eq!(snap.cluster().peers.len(), r - 1);
    }
}
