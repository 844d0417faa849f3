//! A 20-node cluster forming: by multicast discovery, and by a chain of `--join`s. Prints the
//! convergence times (simulated seconds from the start until every node shows the whole tree).

fn report(what: &str, results: Vec<(u64, sim::Outcome)>) {
    for (seed, outcome) in results {
        if let Some(t) = outcome.converged {
            println!(
                "20-node cluster {what}, seed {seed}: every node shows the whole tree after {:.2} simulated s",
                t.as_secs_f64()
            );
        }
    }
}

#[test]
fn twenty_nodes_form_a_cluster_by_multicast() {
    let name = "twenty_nodes_form_a_cluster_by_multicast";
    report("by multicast", sim::run_seeds(name, 1, |seed| sim::scenarios::formation(seed, 20, true)));
}

#[test]
fn twenty_nodes_form_a_cluster_by_a_chain_of_joins() {
    let name = "twenty_nodes_form_a_cluster_by_a_chain_of_joins";
    report("by a chain of --join", sim::run_seeds(name, 1, |seed| sim::scenarios::formation(seed, 20, false)));
}
