//! Cluster simulator: the dftp daemon's real code ([`dftp::run`]) on turmoil hosts, with the
//! network trait over turmoil's TCP and UDP ([`net`]) and the file-system trait over an in-memory
//! tree the scenario changes ([`memfs`]). Faults come from the scenario's seed; the checker
//! ([`cluster::Cluster::converge`], and a look at every node every 100 ms) compares every node
//! with the tree the conflict rule gives for the live nodes' disks ([`oracle`]).
//!
//! Every scenario in `tests/` runs many seeds ([`runner::run_seeds`]); a failing seed is
//! reported with the command that replays it: `SIM_SEED=<n> cargo test -p sim <test>`.

pub mod cluster;
pub mod http;
pub mod logging;
pub mod memfs;
pub mod net;
pub mod oracle;
pub mod runner;
pub mod scale;
pub mod scenarios;
pub mod writes;

pub use cluster::{Cluster, NodeOpts, Params};
pub use runner::{run_seeds, Outcome};
