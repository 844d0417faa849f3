//! The same path created on three nodes at once: every node picks the same winner.

#[test]
fn same_path_on_three_nodes() {
    sim::run_seeds("same_path_on_three_nodes", 800, sim::scenarios::same_path);
}
