//! Three nodes, one cut off (both ways or one way) and healed, with files changing everywhere.

#[test]
fn three_nodes_one_partitioned() {
    sim::run_seeds("three_nodes_one_partitioned", 1000, sim::scenarios::partition_heal);
}
