//! The scenarios, each a function of its seed. The tests in `tests/` run them over many seeds;
//! `tests/regressions.rs` replays the seeds that found bugs (so a scenario's random draws must
//! not change once a seed of it is kept there).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::cluster::{Cluster, NodeOpts, Params};
use crate::memfs::MemFs;
use crate::runner::Outcome;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// How long after the last fault every node must show the right tree: a lost peer is pinged
/// every interval and a greeting times out after one, so it is back within two pings of the
/// repair, then a full update each way; a peer that was lost on one side only is dropped by
/// the other within the peer timeout and a ping first.
pub fn convergence_bound(p: &Params) -> Duration {
    p.peer_timeout + p.ping * 3 + secs(1.0)
}

/// Starts `n` nodes with a few random files each.
fn start(c: &mut Cluster, n: usize, files: usize) {
    for i in 0..n {
        c.add_node(NodeOpts::default());
        for _ in 0..files {
            c.random_change(i);
        }
    }
}

fn finish(c: &mut Cluster) -> Outcome {
    let bound = convergence_bound(&c.params);
    let steady = c.params.ping * 2;
    let took = c.converge(bound, steady);
    Outcome { converged: Some(took), bound: Some(bound), trace: c.trace() }
}

/// Three nodes; one is cut off from one or both others (both ways or one way), files change
/// everywhere, and the network heals.
pub fn partition_heal(seed: u64) -> Outcome {
    let mut c = Cluster::new(seed, Params::default());
    start(&mut c, 3, 6);
    let warmup = c.rand_secs(2.0, 6.0);
    c.run_with_changes(warmup, secs(0.4));
    let victim = c.pick(3);
    let others: Vec<usize> = (0..3).filter(|&i| i != victim).collect();
    let other = others[c.pick(2)];
    match c.pick(4) {
        0 => c.partition(victim, other),
        1 => c.partition_oneway(victim, other),
        2 => c.partition_oneway(other, victim),
        _ => c.isolate(victim),
    }
    let cut = c.rand_secs(0.5, 10.0);
    c.run_with_changes(cut, secs(0.3));
    c.heal_all();
    finish(&mut c)
}

/// Five nodes restarted one after the other: killed and started at once, or down for a while
/// (shorter or longer than the peer timeout) while files keep changing, their own included.
pub fn rolling_restarts(seed: u64) -> Outcome {
    let mut c = Cluster::new(seed, Params::default());
    start(&mut c, 5, 5);
    let warmup = c.rand_secs(2.0, 4.0);
    c.run_with_changes(warmup, secs(0.4));
    let first = c.pick(5);
    for k in 0..5 {
        let i = (first + k) % 5;
        if c.pick(3) == 0 {
            c.restart(i);
        } else {
            c.crash(i);
            let down = c.rand_secs(0.2, 4.5);
            c.run_with_changes(down, secs(0.3));
            c.restart(i);
        }
        if k < 4 {
            let gap = c.rand_secs(0.3, 2.0);
            c.run_with_changes(gap, secs(0.3));
        }
    }
    finish(&mut c)
}

/// A node with a larger tree (600 files) crashes while it pushes a full update: killed (what is on the wire
/// still arrives, then the connection closes), or its machine gone at once (what is on the wire
/// is lost too); sometimes the receiver dies instead. Then it comes back, or not.
pub fn crash_during_full_update(seed: u64) -> Outcome {
    // Every segment spends a little time on the wire, where the scenario can see it.
    let params = Params { min_latency: Duration::from_millis(1), ..Params::default() };
    let mut c = Cluster::new(seed, params);
    let big = MemFs::new();
    let files = 600;
    for k in 0..files {
        // Some of them are held by the others too, so their owners change when it goes.
        big.write(&format!("big/d{}/f{}", k % 30, k / 30), 100 + k, 1_700_000_000 - 3600 + (k % 7) as i64);
    }
    let sender = c.add_named("n0", NodeOpts::default(), big);
    for _ in 1..3 {
        let i = c.add_node(NodeOpts::default());
        for _ in 0..4 {
            c.random_change(i);
        }
        let now = c.now_secs();
        for k in 0..5 {
            let path = format!("big/d{k}/f{}", c.pick(50));
            c.nodes[i].fs.write(&path, 7, now + k as i64);
        }
    }
    let warmup = c.rand_secs(1.0, 3.0);
    c.run_with_changes(warmup, secs(0.5));
    // Make n0 push a full update to a receiver: the receiver restarts and asks for one.
    let receiver = 1 + c.pick(2);
    c.restart(receiver);
    let seen = c.run_until(secs(5.0), |c| c.full_update_in_flight(sender, receiver));
    if !seen {
        c.fail("no full update from n0 went out within 5 s of the receiver's restart");
    }
    // A tick or two later, the body partly on the wire.
    let ticks = c.pick(3);
    let tick = c.params.tick;
    c.run_for(tick * ticks as u32);
    let victim = if c.pick(4) == 0 { receiver } else { sender };
    c.crash(victim);
    if c.pick(2) == 0 {
        // The machine is gone: nothing more arrives from it, not even the end of the stream.
        c.partition(sender, receiver);
        c.repair(sender, receiver);
    }
    let down = c.rand_secs(0.0, 6.0);
    c.run_with_changes(down, secs(0.4));
    if c.pick(3) != 0 {
        c.restart(victim);
    }
    finish(&mut c)
}

/// One link slowed down across a restart: what a node sent before it crashed (incremental
/// updates, a full update) arrives after what it sends once it is back.
pub fn delayed_across_restart(seed: u64) -> Outcome {
    let mut c = Cluster::new(seed, Params::default());
    start(&mut c, 3, 5);
    let warmup = c.rand_secs(1.5, 4.0);
    c.run_with_changes(warmup, secs(0.4));
    let a = c.pick(3);
    let b = (a + 1 + c.pick(2)) % 3;
    let slow = c.rand_secs(0.5, 4.0);
    c.set_link_latency(a, b, Some(slow));
    if c.pick(2) == 0 {
        // b asks a for a full update, which goes out on the slow link.
        c.restart(b);
        let t = c.rand_secs(0.1, 1.0);
        c.run_for(t);
    }
    for _ in 0..1 + c.pick(4) {
        c.random_change(a);
        let t = c.rand_secs(0.05, 0.4);
        c.run_for(t);
    }
    c.crash(a);
    c.set_link_latency(a, b, None);
    for _ in 0..c.pick(4) {
        c.random_change(a);
    }
    let down = c.rand_secs(0.0, 1.0);
    c.run_for(down);
    c.restart(a);
    finish(&mut c)
}

/// The same path created on three nodes at once (the same second, so the name decides), then
/// rewritten, deleted and created again on some of them, sometimes with one node cut off.
pub fn same_path(seed: u64) -> Outcome {
    let mut c = Cluster::new(seed, Params::default());
    start(&mut c, 3, 2);
    let warmup = c.rand_secs(1.5, 3.0);
    c.run_for(warmup);
    for round in 0..4 {
        let path = format!("shared/p{}", c.pick(3));
        let cut = if c.pick(3) == 0 {
            let i = c.pick(3);
            c.isolate(i);
            Some(i)
        } else {
            None
        };
        let now = c.now_secs();
        for i in 0..3 {
            let size = 10 * (round + 1) + i as u64;
            c.nodes[i].fs.write(&path, size, now);
        }
        c.note(format!("all: write {path} at {now}"));
        let wait = c.rand_secs(0.0, 2.0);
        c.run_for(wait);
        // Follow-ups: the current winner (the greatest name) deletes or rewrites it, or a loser
        // rewrites it later (a newer ctime takes it over).
        let who = c.pick(3);
        let now = c.now_secs();
        match c.pick(3) {
            0 => {
                c.nodes[who].fs.remove(&path, now);
                c.note(format!("n{who}: remove {path}"));
            }
            1 => {
                c.nodes[who].fs.write(&path, 999, now + 1);
                c.note(format!("n{who}: rewrite {path} at {}", now + 1));
            }
            _ => {
                c.nodes[who].fs.chmod(&path, now);
                c.note(format!("n{who}: chmod {path}"));
            }
        }
        let wait = c.rand_secs(0.2, 3.0);
        c.run_for(wait);
        if cut.is_some() {
            c.heal_all();
        }
    }
    finish(&mut c)
}

/// Nodes join by `--join`, by `POST /join/` (from a client host) and by being named in one,
/// without multicast discovery, with files changing and a partition during the joins.
pub fn joins(seed: u64) -> Outcome {
    let params = Params { discovery: false, ..Params::default() };
    let mut c = Cluster::new(seed, params);
    let a = c.add_node(NodeOpts::default());
    for _ in 0..4 {
        c.random_change(a);
    }
    let t = c.rand_secs(0.2, 2.0);
    c.run_with_changes(t, secs(0.4));
    // b joins a by flag.
    let b = c.add_node(NodeOpts { join: vec![a], ..NodeOpts::default() });
    // d starts alone, then is told to join b.
    let d = c.add_node(NodeOpts::default());
    for i in [b, d] {
        for _ in 0..3 {
            c.random_change(i);
        }
    }
    let t = c.rand_secs(0.2, 2.0);
    c.run_with_changes(t, secs(0.4));
    if c.pick(2) == 0 {
        c.partition(a, d);
        let t = c.rand_secs(0.5, 5.0);
        c.join_http(d, &[b]);
        c.run_with_changes(t, secs(0.4));
        c.repair(a, d);
    } else {
        c.join_http(d, &[b]);
    }
    // e starts alone; a is told to join it (the other way round).
    let e = c.add_node(NodeOpts::default());
    for _ in 0..3 {
        c.random_change(e);
    }
    let t = c.rand_secs(0.5, 2.0);
    c.run_with_changes(t, secs(0.4));
    c.join_http(a, &[e]);
    // Every node must hear of every other: the answers to the joins introduce them.
    let outcome = finish(&mut c);
    for r in c.join_results() {
        if !r.contains(" 200 ") {
            c.fail(&format!("a join was refused: {r}"));
        }
    }
    if c.join_results().len() != 2 {
        c.fail(&format!("the /join/ clients did not all finish: {:?}", c.join_results()));
    }
    outcome
}

/// Faults of every kind in a random order on four nodes (one of them sometimes mounted at `a`,
/// full updates every 2 to 20 s): partitions (both ways or one way),
/// held and released links, slow links, crashes, restarts, joins, lost watcher events, with
/// files changing throughout.
pub fn chaos(seed: u64) -> Outcome {
    // Periodic full updates now and then, and one node's tree mounted inside the others'.
    let mut r = SmallRng::seed_from_u64(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let full_update = Duration::from_secs(r.random_range(2..20));
    let mut c = Cluster::new(seed, Params { full_update, ..Params::default() });
    for i in 0..4 {
        let mount = if i == 3 && r.random_bool(0.5) { "a".to_string() } else { String::new() };
        c.add_node(NodeOpts { mount, ..NodeOpts::default() });
        for _ in 0..4 {
            c.random_change(i);
        }
    }
    let warmup = c.rand_secs(1.0, 4.0);
    c.run_with_changes(warmup, secs(0.4));
    let n = 4;
    let steps = 4 + c.pick(6);
    let mut held: Vec<(usize, usize)> = Vec::new();
    for _ in 0..steps {
        let (a, b) = {
            let a = c.pick(n);
            let b = (a + 1 + c.pick(n - 1)) % n;
            (a, b)
        };
        match c.pick(10) {
            0 => c.partition(a, b),
            1 => c.partition_oneway(a, b),
            2 => c.isolate(a),
            3 => {
                c.hold(a, b);
                held.push((a, b));
            }
            4 => {
                if let Some((x, y)) = held.pop() {
                    c.release(x, y);
                }
            }
            5 => {
                let d = c.rand_secs(0.1, 2.0);
                c.set_max_latency(d);
            }
            6 => {
                if c.nodes[a].running {
                    c.crash(a);
                } else {
                    c.restart(a);
                }
            }
            7 => c.restart(a),
            8 => c.join_http(a, &[b]),
            _ => c.heal_all(),
        }
        let t = c.rand_secs(0.2, 5.0);
        c.run_with_changes(t, secs(0.3));
    }
    let latency = Params::default().max_latency;
    c.set_max_latency(latency);
    c.heal_all();
    // Some stay down.
    for i in 0..n {
        if !c.nodes[i].running && c.pick(2) == 0 {
            c.restart(i);
        }
    }
    finish(&mut c)
}

/// `n` nodes start at once and find each other by multicast (some also by `--join`), or,
/// without discovery, each joins only the one started before it (they meet the rest through
/// the cluster tables in the answers); returns the simulated time until every node shows the
/// whole tree.
pub fn formation(seed: u64, n: usize, discovery: bool) -> Outcome {
    let mut c = Cluster::new(seed, Params { discovery, ..Params::default() });
    for i in 0..n {
        let join = match (discovery, i) {
            (_, 0) => vec![],
            (false, _) => vec![i - 1],
            (true, _) if c.pick(4) == 0 => vec![c.pick(i)],
            (true, _) => vec![],
        };
        c.add_node(NodeOpts { join, ..NodeOpts::default() });
        for _ in 0..3 {
            c.random_change(i);
        }
    }
    let bound = secs(30.0);
    let took = c.converge_with(bound, c.params.ping * 2, Duration::ZERO);
    Outcome { converged: Some(took), bound: Some(bound), trace: c.trace() }
}

/// A client writes and reads through random nodes (PUT, DELETE, MOVE, MKCOL, GET; `writes.rs`
/// says what it checks) while four nodes are cut apart, crash and restart, and their files
/// change; after healing, every node shows the disks' tree and every write answered 2xx is
/// there.
pub fn writes_under_faults(seed: u64) -> Outcome {
    writes_with_tally(seed).0
}

/// [`writes_under_faults`], with what the client did.
pub fn writes_with_tally(seed: u64) -> (Outcome, crate::writes::Tally) {
    let mut c = Cluster::new(seed, Params::default());
    let n = 4;
    for i in 0..n {
        c.add_node(NodeOpts { extra: crate::writes::auth_flags(), ..NodeOpts::default() });
        for _ in 0..3 {
            c.random_change(i);
        }
    }
    let writes = crate::writes::Writes::start(&mut c, seed);
    let warmup = c.rand_secs(1.0, 3.0);
    c.run_with_changes(warmup, secs(0.5));
    for _ in 0..3 + c.pick(4) {
        let a = c.pick(n);
        let b = (a + 1 + c.pick(n - 1)) % n;
        match c.pick(7) {
            0 => c.partition(a, b),
            1 => c.partition_oneway(a, b),
            2 => c.isolate(a),
            3 if c.nodes[a].running => c.crash(a),
            3 | 4 => c.restart(a),
            5 => {
                let d = c.rand_secs(0.1, 1.5);
                c.set_max_latency(d);
            }
            _ => c.heal_all(),
        }
        let t = c.rand_secs(0.5, 4.0);
        c.run_with_changes(t, secs(0.5));
        if let Some(f) = writes.failure() {
            c.fail(&f);
        }
    }
    c.set_max_latency(Params::default().max_latency);
    c.heal_all();
    for i in 0..n {
        if !c.nodes[i].running && c.pick(3) != 0 {
            c.restart(i);
        }
    }
    writes.stop();
    if !c.run_until(secs(60.0), |_| writes.finished()) {
        c.fail("the writing client did not finish its last request within 60 s");
    }
    if let Some(f) = writes.failure() {
        c.fail(&f);
    }
    let outcome = finish(&mut c);
    if let Err(e) = writes.check_after_healing(&c) {
        c.fail(&e);
    }
    (outcome, writes.tally())
}

/// Writes a cluster secret file of its own for this run (mode 0600, as the daemon demands) and
/// returns its path.
fn secret_file(seed: u64, name: &str) -> String {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = std::env::temp_dir().join(format!("dftp-sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory for the key files");
    let path = dir.join(format!("{name}-{seed}.key"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .expect("a key file");
    // At least 32 characters; different seeds and names give different keys.
    writeln!(f, "sim key {name} {seed:016x} {:016x}", seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)).expect("written");
    path.to_string_lossy().into_owned()
}

/// Three nodes share a cluster secret; a fourth has another key and tries to join them (by
/// multicast, by `--join`, by `POST /join/`), and a client host sends them updates forged in a
/// member's name, while the members are cut apart and restarted and files change everywhere.
/// The members must converge to their own disks' tree, the stranger to its own: no path of
/// the stranger's and no forged path ever counts.
pub fn secret_keeps_strangers_out(seed: u64) -> Outcome {
    let mut c = Cluster::new(seed, Params::default());
    let (our_key, their_key) = (secret_file(seed, "ours"), secret_file(seed, "theirs"));
    let ours = format!("--cluster-secret-file={our_key}");
    let theirs = format!("--cluster-secret-file={their_key}");
    for i in 0..3 {
        c.add_node(NodeOpts { extra: vec![ours.clone()], ..NodeOpts::default() });
        for _ in 0..3 {
            c.random_change(i);
        }
    }
    let join = if c.pick(2) == 0 { vec![c.pick(3)] } else { vec![] };
    let stranger = c.add_node(NodeOpts { extra: vec![theirs], join, group: 1, ..NodeOpts::default() });
    for _ in 0..4 {
        c.random_change(stranger);
    }
    let forged = Rc::new(RefCell::new(Vec::new()));
    let warmup = c.rand_secs(1.0, 3.0);
    c.run_with_changes(warmup, secs(0.4));
    for _ in 0..3 + c.pick(4) {
        let a = c.pick(3);
        let b = (a + 1 + c.pick(2)) % 3;
        match c.pick(6) {
            0 => c.partition(a, b),
            1 => c.restart(a),
            2 => c.join_http(a, &[stranger]),
            3 => c.join_http(stranger, &[a]),
            4 => forge_update(&mut c, a, b, &forged),
            _ => c.heal_all(),
        }
        let t = c.rand_secs(0.3, 3.0);
        c.run_with_changes(t, secs(0.4));
    }
    c.heal_all();
    let outcome = finish(&mut c);
    for answer in forged.borrow().iter() {
        if !answer.contains(" 401 ") {
            c.fail(&format!("a forged update was not refused with 401: {answer}"));
        }
    }
    for key in [our_key, their_key] {
        let _ = std::fs::remove_file(key);
    }
    outcome
}

/// `POST /update/` to node `to` in node `sender`'s name, with no tag: it adds a path.
fn forge_update(c: &mut Cluster, to: usize, sender: usize, answers: &Rc<RefCell<Vec<String>>>) {
    let (to_name, sender_name) = (c.nodes[to].name.clone(), c.nodes[sender].name.clone());
    let now = c.now_secs();
    let body = format!(
        r#"{{"Files":[{{"FullName":"forged/by-{sender_name}","Basename":"by-{sender_name}","Dir":false,"LastModified":{now},"LastInfoUpdated":{now},"SizeInBytes":1,"FileMode":420,"OwnerNode":"{sender_name}","Deletion":false}}],"UpdateTime":{now},"Full":false,"SenderNodeName":"{sender_name}"}}"#
    );
    c.note(format!("forged update to {to_name} in {sender_name}'s name"));
    let answers = answers.clone();
    let host = format!("forger{}", answers.borrow().len() + c.pick(1_000_000));
    c.client(&host, async move {
        let headers = [("Content-Type", "application/json".to_string())];
        let r = crate::http::request(
            &to_name,
            crate::cluster::MGMT_PORT,
            "POST",
            "/update/",
            &headers,
            body.as_bytes(),
            Duration::from_secs(10),
        )
        .await;
        let line = match r {
            Ok(r) => format!("to {to_name}: HTTP {} {}", r.status, String::from_utf8_lossy(&r.body)),
            Err(e) => format!("to {to_name}: no answer ({e})"),
        };
        answers.borrow_mut().push(line);
        Ok(())
    });
}
