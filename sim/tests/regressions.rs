//! Seeds that found bugs, replayed on every run, and the bugs as short scripts. Each fix is
//! described in the commit that made it.

use std::time::Duration;

use sim::scenarios;
use sim::{Cluster, NodeOpts, Params};

/// A greeting lost in a partition held the peer's return up to 10 s after the repair, and a lost
/// update held the ones behind it for a minute: seed 3 did not converge.
#[test]
fn partition_heal_seed_3_lost_requests_held_updates() {
    scenarios::partition_heal(3);
}

/// One-way partition: the cut-off side kept a peer's deleted file because the peer's
/// greetings (and its backlog of old updates, one timeout apart) kept it alive.
#[test]
fn partition_heal_seed_2_one_way_partition_kept_stale_files() {
    scenarios::partition_heal(2);
}

/// Moving the last entry out of a directory changed its ctime, which inotify does not report:
/// the cluster kept the old one and gave the empty directory to the wrong node.
#[test]
fn partition_heal_seed_18_directory_ctime_after_a_rename() {
    scenarios::partition_heal(18);
}

/// The same as a script: two nodes hold an empty `c`; the one with the older `c` moves its
/// child out, which makes its `c` the newer one, and so the owner.
#[test]
fn an_emptied_directory_changes_owner_with_its_ctime() {
    let mut c = Cluster::new(1, Params::default());
    let (a, b) = (c.add_node(NodeOpts::default()), c.add_node(NodeOpts::default()));
    let t = c.now_secs();
    c.nodes[a].fs.mkdir("c/z", t - 100);
    c.nodes[a].fs.mkdir("d", t - 100);
    c.nodes[b].fs.mkdir("c", t - 50);
    c.run_for(Duration::from_secs(2));
    assert_eq!(c.differences(), Vec::<String>::new());
    let now = c.now_secs();
    c.nodes[a].fs.rename("c/z", "d/z", now);
    c.converge(Duration::from_secs(2), Duration::from_secs(2));
    assert_eq!(c.expected().get("c").map(String::as_str), Some("n0"));
}

/// Updates a node sent before it crashed, delayed on a slow link, arrived after the full update
/// of its next run and were applied: deleted files came back (seeds 9 and 28), an old copy
/// took a path over again (seed 13).
#[test]
fn slow_link_across_a_restart_seeds_9_13_28_updates_from_an_earlier_run() {
    for seed in [9, 13, 28] {
        scenarios::delayed_across_restart(seed);
    }
}

/// A full update queued behind a request that timed out went out two seconds later with the
/// files of when it was queued: a path deleted meanwhile came back on the receiver, which kept
/// it past the failure timeout.
#[test]
fn mixed_faults_seed_2134_full_update_sent_with_old_files() {
    scenarios::chaos(2134);
}

/// A change queued behind an update lost in a partition (sent into it on a kept-alive
/// connection, so nothing answered it until the update timeout) did not reach the peers, which
/// kept the sender alive on its answers to their greetings; cut off again, it kept a deleted
/// path listed on them for a peer timeout more. Answers count as signs of life only when they
/// show that the greeter has had all the sender's updates.
#[test]
fn mixed_faults_seed_700097_answers_kept_a_peer_alive_whose_updates_were_stuck() {
    scenarios::chaos(700097);
}
