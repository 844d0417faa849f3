//! Every kind of fault, in random order, on four nodes.

#[test]
fn mixed_faults() {
    sim::run_seeds("mixed_faults", 1500, sim::scenarios::chaos);
}
