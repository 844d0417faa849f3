//! See `sim::scenarios::secret_keeps_strangers_out`.

#[test]
fn a_node_with_another_key_never_joins() {
    sim::run_seeds("a_node_with_another_key_never_joins", 300, sim::scenarios::secret_keeps_strangers_out);
}
