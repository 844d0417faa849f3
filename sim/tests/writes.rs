//! See `sim::scenarios::writes_under_faults` and `sim/src/writes.rs`.

#[test]
fn writes_through_random_nodes_under_faults() {
    sim::run_seeds("writes_through_random_nodes_under_faults", 400, sim::scenarios::writes_under_faults);
}

/// The scenario checks what it claims only if its client meets every kind of answer: writes
/// done, refused and unsure, whole reads and failed ones. Over a few seeds, it does.
#[test]
fn the_writing_client_meets_every_outcome() {
    let mut total = sim::writes::Tally::default();
    for seed in 0..24 {
        let (_, t) = sim::scenarios::writes_with_tally(seed);
        total.done += t.done;
        total.refused += t.refused;
        total.unsure += t.unsure;
        total.reads_whole += t.reads_whole;
        total.reads_cut_or_failed += t.reads_cut_or_failed;
    }
    println!("24 seeds: {total:?}");
    assert!(total.done >= 100, "{total:?}");
    assert!(total.refused >= 3, "{total:?}");
    assert!(total.unsure >= 3, "{total:?}");
    assert!(total.reads_whole >= 30, "{total:?}");
    assert!(total.reads_cut_or_failed >= 3, "{total:?}");
}
