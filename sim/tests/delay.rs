//! Messages delayed across a restart: old news from a node's previous run arrives late.

#[test]
fn slow_link_across_a_restart() {
    sim::run_seeds("slow_link_across_a_restart", 800, sim::scenarios::delayed_across_restart);
}
