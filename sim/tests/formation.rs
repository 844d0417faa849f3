//! A 20-node cluster forming by multicast discovery: prints its convergence time.

#[test]
fn twenty_nodes_form_a_cluster() {
    let results = sim::run_seeds("twenty_nodes_form_a_cluster", 2, |seed| sim::scenarios::formation(seed, 20));
    for (seed, outcome) in results {
        if let Some(t) = outcome.converged {
            println!(
                "20-node cluster, seed {seed}: every node shows the whole tree after {:.2} simulated s",
                t.as_secs_f64()
            );
        }
    }
}
