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

/// The same bug from a sweep of seeds 1000000 to 1002999: a change made in a partition (seeds
/// 1000984, 1002301: a node mounted at `a` removes `a/x`) or during a one-way partition (seed
/// 1002042), its update lost; after the heal the receiver kept the sender alive on its answers
/// until the sender crashed or was cut off again, a peer timeout more.
#[test]
fn mixed_faults_seeds_1000984_1002042_1002301_answers_kept_a_peer_alive_whose_updates_were_lost() {
    for seed in [1000984, 1002042, 1002301] {
        scenarios::chaos(seed);
    }
}

/// The same as a script, and what it cost once fixed: an update sent into a partition is lost
/// on its kept-alive connection. Its receiver no longer counts the sender's answers as signs of
/// life, so the full update that replaces the lost one must arrive within the peer timeout: with
/// incremental updates timing out only after a peer timeout, the receiver dropped the sender
/// with all its files, and took it back a moment later, at every lost update.
#[test]
fn an_update_lost_in_a_partition_is_replaced_before_the_sender_times_out() {
    for seed in 1..=5 {
        let mut c = Cluster::new(seed, Params::default());
        let (a, b) = (c.add_node(NodeOpts::default()), c.add_node(NodeOpts::default()));
        let t = c.now_secs();
        c.nodes[b].fs.write("keep", 1, t);
        c.nodes[b].fs.write("gone", 1, t);
        let warmup = c.rand_secs(2.0, 3.0);
        c.run_for(warmup);
        assert_eq!(c.differences(), Vec::<String>::new(), "seed {seed}");
        c.partition(a, b);
        let before = c.rand_secs(0.05, 0.5);
        c.run_for(before);
        let now = c.now_secs();
        c.nodes[b].fs.remove("gone", now);
        let after = c.rand_secs(0.05, 0.5);
        c.run_for(after);
        c.repair(a, b);
        let until = c.elapsed() + c.params.peer_timeout * 2;
        while c.elapsed() < until {
            c.run_for(c.params.tick);
            let shown = c.nodes[a].shown().expect("serving");
            assert!(shown.view.contains_key("keep"), "seed {seed}: n1 was dropped at {:?}", c.elapsed());
        }
        assert_eq!(c.differences(), Vec::<String>::new(), "seed {seed}");
    }
}
