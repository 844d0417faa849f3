//! A node crashing while it pushes a full update (or the receiver crashing while it reads one).

#[test]
fn crash_while_pushing_a_full_update() {
    sim::run_seeds("crash_while_pushing_a_full_update", 400, sim::scenarios::crash_during_full_update);
}
