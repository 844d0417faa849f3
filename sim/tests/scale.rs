//! `SIM_SCALE_NODES` nodes (50 by default; 200 is the size, see sim/README.md for its cost) form a cluster through three seeds, survive a
//! partition of 10 % of them and the loss of 20 % at once, converging each time; prints the
//! convergence times, the traffic per node per ping interval at rest, and the wall time per
//! simulated second. One seed by default (`SIM_SCALE_SEEDS=<n>` for more, or `SIM_SEED`).
//! `SIM_SCALE_FLAGS` adds daemon flags to every node (space-separated), to run a protocol
//! choice.

use sim::scale::{self, Scale};

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok().map(|v| v.trim().parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a number")))
}

#[test]
fn many_nodes_survive_a_partition_and_the_loss_of_a_fifth() {
    let name = "many_nodes_survive_a_partition_and_the_loss_of_a_fifth";
    let seeds = env_usize("SIM_SCALE_SEEDS").unwrap_or(1) as u64;
    sim::run_seeds(name, seeds, |seed| {
        let flags = std::env::var("SIM_SCALE_FLAGS").unwrap_or_default();
        let flags: Vec<&str> = flags.split_whitespace().collect();
        let s = Scale::new(env_usize("SIM_SCALE_NODES").unwrap_or(50)).with_flags(&flags);
        let (outcome, report) = scale::run(seed, &s);
        scale::print("scale", seed, &s, &report);
        outcome
    });
}
