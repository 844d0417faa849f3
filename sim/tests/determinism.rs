//! The same seed gives the same run: everything every node showed at every look is equal.

use sim::scenarios;

#[test]
fn a_seed_replays_exactly() {
    let seed = 7;
    for (name, scenario) in
        [("partition_heal", scenarios::partition_heal as fn(u64) -> sim::Outcome), ("chaos", scenarios::chaos)]
    {
        let a = scenario(seed);
        let b = scenario(seed);
        assert_eq!(a.trace, b.trace, "{name} seed {seed}: two runs differ");
        assert_eq!(a.converged, b.converged, "{name} seed {seed}: two runs differ");
    }
}
