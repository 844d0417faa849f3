//! `--membership swim` with real daemons: a cluster forms with SWIM between its nodes, a
//! crashed node's files disappear from the others within SWIM's detection time (the checks'
//! stale bound, that of a 3 s peer timeout, while the nodes' own peer timeout is an hour), and
//! the node comes back after a restart. And a cluster of
//! SWIM nodes with one of the original's kind (`--membership ping`: no `Swim` in its table, so
//! it is greeted as before) converges the same way.

use std::time::Duration;

use sim::cluster::Membership;
use sim::{Cluster, NodeOpts, Outcome, Params};

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// SWIM probing every 250 ms: with 5 nodes the suspicion is 4 periods (1 s), so a crash is
/// declared within a few seconds; the peer timeout (the checks' stale bound, and SWIM's
/// fallback for a peer it does not watch) is set just above that.
fn params() -> Params {
    Params { membership: Membership::Swim { probe: secs(0.25) }, peer_timeout: secs(3.0), ..Params::default() }
}

fn opts(join: Vec<usize>, membership: &str, only_swim: bool) -> NodeOpts {
    let mut extra = vec!["--swim-probe-interval=250ms".to_string(), format!("--membership={membership}")];
    if only_swim {
        // The checks' stale bound stays that of a 3 s peer timeout, but the nodes' own is an
        // hour: a crashed node's files go in time only if SWIM declares it down.
        extra.push("--peer-timeout=1h".into());
    }
    NodeOpts { join, extra, ..NodeOpts::default() }
}

fn finish(c: &mut Cluster) -> Outcome {
    let bound = c.params.peer_timeout + c.params.ping * 3 + secs(1.0);
    let took = c.converge(bound, c.params.ping * 2);
    Outcome { converged: Some(took), bound: Some(bound), trace: c.trace() }
}

/// Five nodes (the last of the original's kind when `mixed`), each joined to the first; one
/// crashes while files change, stays down, and restarts.
fn crash_and_return(seed: u64, mixed: bool) -> Outcome {
    let mut c = Cluster::new(seed, params());
    for i in 0..5 {
        let membership = if mixed && i == 4 { "ping" } else { "swim" };
        c.add_node(opts(if i == 0 { vec![] } else { vec![0] }, membership, !mixed));
        for _ in 0..4 {
            c.random_change(i);
        }
    }
    let warmup = c.rand_secs(3.0, 6.0);
    c.run_with_changes(warmup, secs(0.4));
    let took = finish(&mut c).converged;
    c.note(format!("formed after {took:?}"));
    let victim = 1 + c.pick(4);
    c.crash(victim);
    // The look every 100 ms fails the run if a node lists the victim's files past the bound.
    let down = c.rand_secs(4.0, 8.0);
    c.run_with_changes(down, secs(0.4));
    c.restart(victim);
    finish(&mut c)
}

#[test]
fn swim_cluster_forms_drops_a_crashed_node_and_takes_it_back() {
    sim::run_seeds("swim_cluster_forms_drops_a_crashed_node_and_takes_it_back", 20, |seed| {
        crash_and_return(seed, false)
    });
}

#[test]
fn swim_nodes_and_an_original_node_together() {
    sim::run_seeds("swim_nodes_and_an_original_node_together", 10, |seed| crash_and_return(seed, true));
}
