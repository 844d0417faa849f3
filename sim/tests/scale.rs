//! The cluster at scale, in both protocols, in the same run: `SIM_SCALE_NODES` nodes (200 by
//! default) speaking ours (SWIM probes, digests) and `SIM_SCALE_OLD_NODES` (50 by default: a
//! simulated second of the full mesh costs about N³, ≈ 45 s of wall time at 200 nodes, see
//! sim/README.md) speaking the original's full mesh (greetings to every peer, periodic full
//! updates) form a cluster through three seeds, survive a partition of 10 % of them and the
//! loss of 20 % at once, converging each time; each prints its convergence times, the traffic
//! per node per ping interval at rest, and the wall time per simulated second. One seed by
//! default (`SIM_SCALE_SEEDS=<n>` for more, or `SIM_SEED`). `SIM_SCALE_FLAGS` adds daemon flags
//! to every node (space-separated).

use sim::scale::{self, Protocol, Scale};
use sim::Outcome;

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok().map(|v| v.trim().parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a number")))
}

fn run(seed: u64, protocol: Protocol, nodes: usize) -> Outcome {
    let flags = std::env::var("SIM_SCALE_FLAGS").unwrap_or_default();
    let flags: Vec<&str> = flags.split_whitespace().collect();
    let s = Scale::new(nodes, protocol).with_flags(&flags);
    let (outcome, report) = scale::run(seed, &s);
    scale::print(protocol.label(), seed, &s, &report);
    outcome
}

fn seeds() -> u64 {
    env_usize("SIM_SCALE_SEEDS").unwrap_or(1) as u64
}

#[test]
fn many_nodes_survive_a_partition_and_the_loss_of_a_fifth_with_swim_and_digests() {
    let name = "many_nodes_survive_a_partition_and_the_loss_of_a_fifth_with_swim_and_digests";
    sim::run_seeds(name, seeds(), |seed| run(seed, Protocol::SwimDigest, env_usize("SIM_SCALE_NODES").unwrap_or(200)));
}

#[test]
fn many_nodes_survive_a_partition_and_the_loss_of_a_fifth_with_the_full_mesh() {
    let name = "many_nodes_survive_a_partition_and_the_loss_of_a_fifth_with_the_full_mesh";
    sim::run_seeds(name, seeds(), |seed| run(seed, Protocol::FullMesh, env_usize("SIM_SCALE_OLD_NODES").unwrap_or(50)));
}
