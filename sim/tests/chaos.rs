//! Every kind of fault, in random order, on four nodes.

#[test]
fn mixed_faults() {
    sim::run_seeds("mixed_faults", 30, sim::scenarios::chaos);
}
