//! Node-level properties: convergence whatever the delivery order (a), a full update plus
//! incremental ones equals one full update (b), and a silent peer takes exactly its paths with
//! it (c). Updates come from real sender nodes, so their epochs, sequence numbers and full
//! bodies are the ones the code really produces.

mod common;

use common::*;
use dftp_core::{Event, Meta, Notice, Span, Time};
use proptest::collection::vec;
use proptest::prelude::*;

fn local_strategy() -> impl Strategy<Value = Option<Vec<(dftp_core::DfsPath, Meta)>>> {
    prop::option::of(vec((path_strategy(), meta_strategy()), 0..5))
}

/// The model of what every receiver should show: each sender's final view and the receiver's
/// own scan (the last record of a path wins, as in a scan).
fn expected(senders: &[Sender], local: &Option<Vec<(dftp_core::DfsPath, Meta)>>) -> Model {
    let mut model = Model::new();
    for s in senders {
        model.insert(s.cfg.name.to_string(), s.view());
    }
    if let Some(local) = local {
        model.insert(RECEIVER.to_string(), local.iter().cloned().collect());
    }
    model
}

/// Delivers `list` in order, with the local scan (if any) just before position `at`.
fn deliver_all(
    r: &mut Receiver,
    list: &[dftp_core::Update],
    local: &Option<Vec<(dftp_core::DfsPath, Meta)>>,
    at: usize,
) {
    let at = at % (list.len() + 1);
    for (k, u) in list.iter().enumerate() {
        if k == at {
            if let Some(l) = local {
                r.handle(Event::LocalScan(l.clone()));
            }
        }
        r.deliver(u);
    }
    if at == list.len() {
        if let Some(l) = local {
            r.handle(Event::LocalScan(l.clone()));
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
        let (senders, streams) = run_senders(&ops);
        let mut list_x = interleave(&streams, &sched_x);
        let mut list_y = interleave(&streams, &sched_y);
        insert_duplicates(&mut list_x, &dups_x);
        insert_duplicates(&mut list_y, &dups_y);

        let mut x = Receiver::new(&senders);
        let mut y = Receiver::new(&senders);
        deliver_all(&mut x, &list_x, &local, local_at.0);
        deliver_all(&mut y, &list_y, &local, local_at.1);

        let cx = x.canon();
        prop_assert_eq!(&cx, &y.canon());
        prop_assert_eq!(&cx, &model_canon(&expected(&senders, &local)));
        // In-order streams with redeliveries never look like a lost update...
        prop_assert_eq!(x.gaps() + y.gaps(), 0);
        // ...and every full update asked for at the first contact has arrived.
        for r in [&x, &y] {
            prop_assert!(r.outstanding.values().all(|o| !o), "{:?}", r.outstanding);
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
        let (mut senders, streams) = run_senders(&ops);
        let s = which % senders.len();
        let s_name = senders[s].cfg.name.to_string();

        let mut x = Receiver::new(&senders);
        for u in interleave(&streams, &sched) {
            x.deliver(&u);
        }

        let mut streams_y = streams.clone();
        streams_y[s] = permute(&streams[s], &keys);
        let mut list_y = interleave(&streams_y, &sched);
        insert_duplicates(&mut list_y, &dups);
        let mut y = Receiver::new(&senders);
        for u in &list_y {
            y.deliver(u);
        }

        let model = model_canon(&expected(&senders, &None));
        prop_assert_eq!(&x.canon(), &model);
        for (name, outstanding) in &y.outstanding {
            if *name != s_name {
                prop_assert!(!outstanding, "{} kept its order but a full update is outstanding", name);
            }
        }
        if !y.outstanding.get(&s_name).copied().unwrap_or(false) {
            // Nothing asked for: the node must not have silently diverged.
            prop_assert_eq!(&y.canon(), &model, "diverged without asking for a full update");
        }

        // The sender answers the requests with its current state.
        if y.outstanding.get(&s_name).copied().unwrap_or(false) {
            let full = senders[s].full_now();
            y.deliver(&full);
        }
        prop_assert!(y.outstanding.values().all(|o| !o), "{:?}", y.outstanding);
        prop_assert_eq!(&y.canon(), &model);
    }

    /// (b) A full update followed by incremental ones gives the same tree as one full update of
    /// the final state (with another sender's files around, so that ranks matter).
    #[test]
    fn full_then_incrementals_equals_single_full(
        base in vec(incremental_op_strategy(), 0..5),
        incs in vec(incremental_op_strategy(), 0..8),
        other in vec(incremental_op_strategy(), 0..5),
    ) {
        let (mut s0, _) = Sender::new(0);
        for op in &base {
            s0.apply(op);
        }
        let first_full = s0.full_now();
        let mut incrementals = Vec::new();
        for op in &incs {
            incrementals.extend(s0.apply(op));
        }
        prop_assert!(incrementals.iter().all(|u| !u.full));
        let last_full = s0.full_now();

        let (mut s1, s1_first) = Sender::new(1);
        let mut s1_stream = vec![s1_first];
        for op in &other {
            s1_stream.extend(s1.apply(op));
        }
        let senders = vec![s0, s1];

        let mut x = Receiver::new(&senders);
        let mut y = Receiver::new(&senders);
        for u in &s1_stream {
            x.deliver(u);
            y.deliver(u);
        }
        x.deliver(&first_full);
        for u in &incrementals {
            x.deliver(u);
        }
        y.deliver(&last_full);

        prop_assert_eq!(x.gaps(), 0);
        let cx = x.canon();
        prop_assert_eq!(&cx, &y.canon());
        prop_assert_eq!(&cx, &model_canon(&expected(&senders, &None)));
    }

    /// (c) A peer that falls silent past `peer_timeout` is removed by the timer with exactly its
    /// paths; paths that others also hold switch to the next holder by the rule.
    #[test]
    fn silent_peer_is_removed_with_exactly_its_paths(
        ops in vec(vec(incremental_op_strategy(), 0..6), 2..=4),
        local in local_strategy(),
        victim in any::<usize>(),
    ) {
        let (senders, streams) = run_senders(&ops);
        let victim = victim % senders.len();
        let victim_name = senders[victim].cfg.name.clone();
        let mut r = Receiver::new(&senders);
        if let Some(l) = &local {
            r.handle(Event::LocalScan(l.clone()));
        }
        for stream in &streams {
            for u in stream {
                r.deliver(u);
            }
        }
        let mut model = expected(&senders, &local);
        prop_assert_eq!(&r.canon(), &model_canon(&model));

        // The victim stops answering; the others keep greeting.
        r.tables.remove(&senders[victim].cfg.mgmt_addr);
        let timeout = r.node.config().peer_timeout;
        let half = Time(t0().0 + timeout.as_millis() * 2 / 3);
        r.now = half;
        for (i, s) in senders.iter().enumerate() {
            if i != victim {
                r.handle(Event::GreetingReceived { greeting: greeting_of(&s.cfg, false), from_host: None });
            }
        }
        prop_assert_eq!(&r.canon(), &model_canon(&model), "nobody is removed before the timeout");
        r.now = t0() + timeout + Span::from_secs(1);
        r.handle(Event::Timer);

        let lost: Vec<(String, usize)> = r
            .notices
            .iter()
            .filter_map(|n| match n {
                Notice::PeerLost { name, files_removed } => Some((name.to_string(), *files_removed)),
                _ => None,
            })
            .collect();
        let victim_view = model.remove(victim_name.as_str()).unwrap_or_default();
        prop_assert_eq!(lost, vec![(victim_name.to_string(), victim_view.len())]);
        let after = r.canon();
        prop_assert_eq!(&after, &model_canon(&model));

        // Spelled out: each path the victim held is gone, or now shows the best other holder.
        let winners = model_winners(&model);
        let snap = r.node.snapshot(r.now);
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
        prop_assert_eq!(snap.cluster().peers.len(), senders.len() - 1);
    }
}
