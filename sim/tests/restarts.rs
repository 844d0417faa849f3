//! Five nodes restarted one after the other, down for less or more than the peer timeout.

#[test]
fn five_nodes_rolling_restarts() {
    sim::run_seeds("five_nodes_rolling_restarts", 400, sim::scenarios::rolling_restarts);
}
