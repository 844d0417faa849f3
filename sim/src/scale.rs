//! The cluster at scale: hundreds of nodes that join through a few seeds, a partition of 10 % of
//! them from the rest, the loss of 20 % at once; and the cluster traffic per node, by kind, read
//! from every node's own counters (`dftp::traffic`, the same ones `/metrics` shows).
//!
//! The nodes' flags are a parameter ([`Scale::flags`], extra daemon arguments for every node),
//! so the same scenario runs one protocol or another by flags alone, in the same run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use dftp::metrics::Direction;
use dftp::traffic::{Kind, Tally};
use rand::seq::index::sample;

use crate::cluster::{Cluster, NodeOpts, Params};
use crate::memfs::MemFs;
use crate::oracle;
use crate::runner::Outcome;

/// A scale scenario: how many nodes, with which flags, at which intervals.
#[derive(Clone, Debug)]
pub struct Scale {
    pub nodes: usize,
    /// Extra daemon flags of every node (e.g. a protocol choice).
    pub flags: Vec<String>,
    pub params: Params,
    /// Files on each node's disk at the start, each its own path.
    pub files: usize,
    /// Nodes the others `--join` (the seeds of the cluster; multicast is off).
    pub seeds: usize,
}

impl Scale {
    /// `nodes` nodes: ping every 2 s, peers dropped after 6 s of silence, full updates every
    /// 60 s, no multicast (every node joins through three seeds), 3 files each.
    pub fn new(nodes: usize) -> Scale {
        let params = Params {
            ping: Duration::from_secs(2),
            peer_timeout: Duration::from_secs(6),
            full_update: Duration::from_secs(60),
            discovery: false,
            ..Params::default()
        };
        Scale { nodes, flags: Vec::new(), params, files: 3, seeds: 3 }
    }

    pub fn with_flags(self, flags: &[&str]) -> Scale {
        Scale { flags: flags.iter().map(|f| f.to_string()).collect(), ..self }
    }
}

/// Cluster traffic of every node, by kind: messages sent (requests and announcements) and the
/// bytes of those messages and of the answers to them.
pub type Traffic = BTreeMap<Kind, Tally>;

/// What every node sent so far, summed.
pub fn traffic(c: &Cluster) -> Traffic {
    let mut out = Traffic::new();
    for slot in &c.nodes {
        for kind in Kind::ALL {
            let sent = slot.traffic(kind, Direction::Sent);
            let answers = slot.traffic(kind, Direction::Received);
            // An announcement heard is one another node sent: counted once, by its sender.
            let answers = if kind == Kind::Announcement { Tally::default() } else { answers };
            let t = out.entry(kind).or_default();
            *t += Tally { messages: sent.messages, bytes: sent.bytes + answers.bytes };
        }
    }
    out
}

/// `after - before`.
pub fn delta(after: &Traffic, before: &Traffic) -> Traffic {
    after
        .iter()
        .map(|(k, a)| {
            let b = before.get(k).copied().unwrap_or_default();
            (*k, Tally { messages: a.messages - b.messages, bytes: a.bytes - b.bytes })
        })
        .collect()
}

/// Membership (greetings, joins, SWIM, announcements) and anti-entropy (updates, digests).
pub fn split(t: &Traffic) -> (Tally, Tally) {
    let (mut membership, mut anti_entropy) = (Tally::default(), Tally::default());
    for (kind, tally) in t {
        match kind {
            Kind::FullUpdate | Kind::IncrementalUpdate | Kind::Digest => anti_entropy += *tally,
            _ => membership += *tally,
        }
    }
    (membership, anti_entropy)
}

/// One line per kind that moved: messages and bytes per node per `per` over `over`.
pub fn describe(t: &Traffic, nodes: usize, over: Duration, per: Duration) -> String {
    let scale = per.as_secs_f64() / over.as_secs_f64() / nodes as f64;
    let mut s = String::new();
    for (kind, tally) in t.iter().filter(|(_, t)| t.messages > 0) {
        let _ = write!(
            s,
            " {}: {:.1} msg {:.0} B;",
            kind.label(),
            tally.messages as f64 * scale,
            tally.bytes as f64 * scale
        );
    }
    s
}

/// Starts the nodes: the seeds first, the others each joining one seed, every node with its
/// own files (in a few shared directories, so directories have several owners).
fn start(c: &mut Cluster, s: &Scale) {
    for i in 0..s.nodes {
        let join = if i < s.seeds { (0..i).collect() } else { vec![c.pick(s.seeds)] };
        let fs = MemFs::new();
        let now = c.now_secs();
        for f in 0..s.files {
            let dir = format!("d{}", (i + f) % 10);
            if fs.get(&dir).is_none() {
                fs.mkdir(&dir, now);
            }
            fs.write(&format!("{dir}/n{i}-f{f}"), 100 + f as u64, now);
        }
        let name = format!("n{i}");
        c.add_named(&name, NodeOpts { join, extra: s.flags.clone(), ..NodeOpts::default() }, fs);
    }
}

/// Whether every node of `side` shows the tree of `side`'s disks alone.
fn side_converged(c: &Cluster, side: &[usize]) -> bool {
    let trees: Vec<(String, BTreeMap<String, crate::memfs::MemEntry>)> =
        side.iter().map(|&i| (c.nodes[i].name.clone(), c.nodes[i].cluster_entries())).collect();
    let expected = oracle::expected(trees.iter().map(|(n, t)| (n.as_str(), t)));
    side.iter().all(|&i| c.nodes[i].shown().is_some_and(|s| s.view == expected))
}

/// What one run of [`run`] measured.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Simulated seconds to converge: forming, partitioned (each side alone), healed, after the
    /// loss, after the restart.
    pub times: Vec<(&'static str, Duration)>,
    /// Traffic at rest after forming, over `window`.
    pub steady: Traffic,
    pub window: Duration,
    /// Wall time of the whole run, and the simulated time it covered.
    pub wall: Duration,
    pub simulated: Duration,
}

/// Forms the cluster, measures its traffic at rest, cuts 10 % of the nodes off (each side must
/// then show its own side's files alone), heals, crashes 20 % at once (their files must go from
/// every survivor), restarts them; every step must converge.
pub fn run(seed: u64, s: &Scale) -> (Outcome, Report) {
    let started = Instant::now();
    let mut c = Cluster::new(seed, s.params.clone());
    let p = c.params.clone();
    let mut report = Report::default();
    start(&mut c, s);
    let formed = c.converge_with(Duration::from_secs(60), p.ping * 2, Duration::ZERO);
    report.times.push(("formed", formed));

    // Traffic at rest: five ping intervals.
    report.window = p.ping * 5;
    let before = traffic(&c);
    c.run_for(report.window);
    report.steady = delta(&traffic(&c), &before);

    // A partition of 10 % of the nodes from the rest, with changes on both sides.
    let cut: Vec<usize> = sample(&mut c.rng, s.nodes, (s.nodes / 10).max(1)).into_vec();
    let rest: Vec<usize> = (0..s.nodes).filter(|i| !cut.contains(i)).collect();
    c.note(format!("partition {} node(s) from the rest", cut.len()));
    for &a in &cut {
        for &b in &rest {
            c.partition(a, b);
        }
    }
    for _ in 0..3 {
        let i = cut[c.pick(cut.len())];
        c.random_change(i);
        let j = rest[c.pick(rest.len())];
        c.random_change(j);
    }
    let cut_at = c.elapsed();
    let bound = p.peer_timeout + p.ping * 4 + Duration::from_secs(5);
    while !(side_converged(&c, &cut) && side_converged(&c, &rest)) {
        if c.elapsed() - cut_at > bound {
            c.fail(&format!("the two sides of the partition did not each converge within {bound:?}"));
        }
        c.run_for(Duration::from_millis(100));
    }
    report.times.push(("partitioned (each side)", c.elapsed() - cut_at));
    for &a in &cut {
        for &b in &rest {
            c.repair(a, b);
        }
    }
    c.note("healed");
    let bound = crate::scenarios::convergence_bound(&p) + Duration::from_secs(10);
    report.times.push(("healed", c.converge(bound, p.ping * 2)));

    // The loss of 20 % at once.
    let lost: Vec<usize> = sample(&mut c.rng, s.nodes, (s.nodes / 5).max(1)).into_vec();
    for &i in &lost {
        c.crash(i);
    }
    report.times.push(("20 % crashed", c.converge(bound, p.ping * 2)));
    for &i in &lost {
        c.restart(i);
    }
    report.times.push(("restarted", c.converge(bound, p.ping * 2)));
    report.wall = started.elapsed();
    report.simulated = c.elapsed();
    let outcome = Outcome { converged: Some(formed), bound: Some(Duration::from_secs(60)), trace: c.trace() };
    (outcome, report)
}

/// The report's lines.
pub fn print(name: &str, seed: u64, s: &Scale, r: &Report) {
    let times: Vec<String> = r.times.iter().map(|(w, t)| format!("{w} {:.2} s", t.as_secs_f64())).collect();
    println!("{name} | seed {seed} | {} nodes | flags {:?} | converged: {}", s.nodes, s.flags, times.join(", "));
    println!(
        "{name} | at rest, per node per ping interval ({:?}):{}",
        s.params.ping,
        describe(&r.steady, s.nodes, r.window, s.params.ping)
    );
    println!(
        "{name} | wall {:.1?} for {:.0} simulated s ({:.2} s of wall per simulated s)",
        r.wall,
        r.simulated.as_secs_f64(),
        r.wall.as_secs_f64() / r.simulated.as_secs_f64()
    );
}

/// What [`measure`] measured: every node's traffic over `window` at rest and with changes.
#[derive(Clone, Debug, Default)]
pub struct Measured {
    pub formed: Duration,
    pub window: Duration,
    pub at_rest: Traffic,
    pub with_changes: Traffic,
}

/// Forms the cluster, lets a full-update interval pass (the joins' full updates are behind),
/// then counts every node's traffic over `window` at rest, and over another `window` with a
/// change on a random node every `change_every` on average.
pub fn measure(seed: u64, s: &Scale, window: Duration, change_every: Duration) -> Measured {
    let mut c = Cluster::new(seed, s.params.clone());
    start(&mut c, s);
    let formed = c.converge_with(Duration::from_secs(300), c.params.ping * 2, Duration::ZERO);
    let full_update = c.params.full_update;
    c.run_for(full_update);
    let before = traffic(&c);
    c.run_for(window);
    let rest = traffic(&c);
    c.run_with_changes(window, change_every);
    let changed = traffic(&c);
    Measured { formed, window, at_rest: delta(&rest, &before), with_changes: delta(&changed, &rest) }
}
