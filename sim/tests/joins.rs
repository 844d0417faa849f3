//! Joins by `--join` and by `POST /join/` from a client host, without multicast discovery.

#[test]
fn joins_without_discovery() {
    sim::run_seeds("joins_without_discovery", 700, sim::scenarios::joins);
}
