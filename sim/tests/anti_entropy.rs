//! Anti-entropy by digest (`--anti-entropy digest`, the default) in the simulator: a cluster
//! under every kind of fault, with digests every second and no periodic full update to help,
//! converges; and in a quiet steady state our nodes send each other no update at all, where
//! `--anti-entropy full` keeps sending full ones.

use std::collections::BTreeMap;
use std::time::Duration;

use dftp_core::Time;
use sim::scenarios::convergence_bound;
use sim::{Cluster, NodeOpts, Outcome, Params};

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn opts(mode: &str) -> NodeOpts {
    NodeOpts { extra: vec![format!("--anti-entropy={mode}"), "--digest-interval=1s".into()], ..NodeOpts::default() }
}

/// Four nodes, digests every second and full updates only hourly: partitions (both ways and
/// one way), held and released messages, crashes, restarts and slow links, with changes all
/// along; then the network heals and every running node must show the expected tree.
fn digest_chaos(seed: u64) -> Outcome {
    let mut c = Cluster::new(seed, Params { full_update: Duration::from_secs(3600), ..Params::default() });
    let n = 4;
    for i in 0..n {
        c.add_node(opts("digest"));
        for _ in 0..4 {
            c.random_change(i);
        }
    }
    let warmup = c.rand_secs(1.0, 4.0);
    c.run_with_changes(warmup, secs(0.4));
    let mut held = Vec::new();
    for _ in 0..4 + c.pick(6) {
        let a = c.pick(n);
        let b = (a + 1 + c.pick(n - 1)) % n;
        match c.pick(8) {
            0 => c.partition(a, b),
            1 => c.partition_oneway(a, b),
            2 => {
                c.hold(a, b);
                held.push((a, b));
            }
            3 => {
                if let Some((x, y)) = held.pop() {
                    c.release(x, y);
                }
            }
            4 => {
                let d = c.rand_secs(0.1, 2.0);
                c.set_max_latency(d);
            }
            5 if c.nodes[a].running => c.crash(a),
            5 | 6 => c.restart(a),
            _ => c.heal_all(),
        }
        let t = c.rand_secs(0.5, 5.0);
        c.run_with_changes(t, secs(0.3));
    }
    c.set_max_latency(Params::default().max_latency);
    c.heal_all();
    for i in 0..n {
        if !c.nodes[i].running {
            c.restart(i);
        }
    }
    let bound = convergence_bound(&c.params);
    let took = c.converge(bound, c.params.ping * 2);
    // Digests keep flowing after convergence; they must not disturb it.
    c.run_for(secs(5.0));
    if !c.differences().is_empty() {
        c.fail("diverged while digests flowed");
    }
    Outcome { converged: Some(took), bound: Some(bound), trace: c.trace() }
}

#[test]
fn digest_chaos_converges() {
    sim::run_seeds("digest_chaos", 100, digest_chaos);
}

/// When each node last received an update from each peer, as its snapshot says.
fn last_updates(c: &Cluster) -> BTreeMap<(String, String), Option<Time>> {
    let mut out = BTreeMap::new();
    for slot in &c.nodes {
        let snap = slot.snapshot().expect("every node serves");
        for m in snap.members().iter().filter(|m| !m.is_me) {
            out.insert((slot.name.clone(), m.name.to_string()), m.last_update_in);
        }
    }
    out
}

/// Four nodes with full updates every 2 s, formed and converged, then 20 quiet seconds: with
/// digests no node receives any update (digests say all is in sync); with `full`, every node
/// keeps receiving full updates from every peer.
fn quiet(seed: u64, mode: &str) -> usize {
    let mut c = Cluster::new(seed, Params { full_update: Duration::from_secs(2), ..Params::default() });
    for i in 0..4 {
        c.add_node(opts(mode));
        for _ in 0..5 {
            c.random_change(i);
        }
    }
    c.run_for(secs(3.0));
    let bound = convergence_bound(&c.params);
    c.converge_with(bound, c.params.ping * 2, Duration::ZERO);
    // Past the join: every full update asked for has been answered.
    c.run_for(secs(5.0));
    let before = last_updates(&c);
    assert_eq!(before.len(), 12, "every node knows every other: {before:?}");
    c.run_for(secs(20.0));
    let after = last_updates(&c);
    assert!(c.differences().is_empty());
    before.iter().filter(|(k, t)| after.get(*k) != Some(*t)).count()
}

#[test]
fn a_quiet_cluster_sends_no_update_between_our_nodes() {
    for seed in 0..3 {
        assert_eq!(quiet(seed, "digest"), 0, "seed {seed}: an update was received in a quiet cluster");
        assert_eq!(quiet(seed, "full"), 12, "seed {seed}: with --anti-entropy full, hourly-style full updates go on");
    }
}
