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

use crate::cluster::{Cluster, Membership, NodeOpts, Params};
use crate::memfs::MemFs;
use crate::oracle;
use crate::runner::Outcome;

/// The cluster protocols the scale scenario compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// The original's: every node greets every peer every ping interval (each answer the whole
    /// peer table) and sends every peer all its files every full-update interval.
    FullMesh,
    /// Ours between our nodes: SWIM probes every 250 ms, digests instead of periodic full
    /// updates. The probe period is a quarter of the daemon's default so that the scenario
    /// needs fewer simulated seconds: at 200 nodes, turmoil visits every link of the network
    /// for every host at every 10 ms step (a link for each pair that ever talked), so a
    /// simulated second costs seconds of wall time whatever the traffic.
    SwimDigest,
}

impl Protocol {
    pub fn label(self) -> &'static str {
        match self {
            Protocol::FullMesh => "full mesh (ping, full updates)",
            Protocol::SwimDigest => "SWIM + digests",
        }
    }

    fn membership(self) -> Membership {
        match self {
            Protocol::FullMesh => Membership::Ping,
            Protocol::SwimDigest => Membership::Swim { probe: Duration::from_millis(250) },
        }
    }

    fn anti_entropy(self) -> &'static str {
        match self {
            Protocol::FullMesh => "--anti-entropy=full",
            Protocol::SwimDigest => "--anti-entropy=digest",
        }
    }
}

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
    /// `nodes` nodes speaking `protocol`: ping every 2 s, peers dropped after 6 s of silence,
    /// full updates (or digests) every 60 s, no multicast (every node joins through three
    /// seeds), 3 files each.
    pub fn new(nodes: usize, protocol: Protocol) -> Scale {
        let params = Params {
            ping: Duration::from_secs(2),
            peer_timeout: Duration::from_secs(6),
            full_update: Duration::from_secs(60),
            discovery: false,
            membership: protocol.membership(),
            ..Params::default()
        };
        let flags = vec![protocol.anti_entropy().to_string(), "--digest-interval=60s".to_string()];
        Scale { nodes, flags, params, files: 3, seeds: 3 }
    }

    /// With more daemon flags for every node (a node's own flag overrides the cluster's).
    pub fn with_flags(mut self, flags: &[&str]) -> Scale {
        self.flags.extend(flags.iter().map(|f| f.to_string()));
        self
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

/// The tree of `side`'s disks alone.
fn side_expected(c: &Cluster, side: &[usize]) -> oracle::View {
    let trees: Vec<(String, BTreeMap<String, crate::memfs::MemEntry>)> =
        side.iter().map(|&i| (c.nodes[i].name.clone(), c.nodes[i].cluster_entries())).collect();
    oracle::expected(trees.iter().map(|(n, t)| (n.as_str(), t)))
}

/// Whether every node of `side` shows the tree of `side`'s disks alone.
fn side_converged(c: &Cluster, side: &[usize]) -> bool {
    let expected = side_expected(c, side);
    side.iter().all(|&i| c.nodes[i].shown().is_some_and(|s| s.view == expected))
}

/// How the first node of `side` that differs from its side's tree differs (for a failure).
fn side_difference(c: &Cluster, side: &[usize]) -> String {
    let expected = side_expected(c, side);
    let wrong = side.iter().filter(|&&i| c.nodes[i].shown().is_none_or(|s| s.view != expected)).count();
    for &i in side {
        let Some(shown) = c.nodes[i].shown() else { return format!("{} does not serve", c.nodes[i].name) };
        if shown.view == expected {
            continue;
        }
        let extra: Vec<_> = shown.view.iter().filter(|(p, o)| expected.get(*p) != Some(o)).take(3).collect();
        let missing: Vec<_> = expected.iter().filter(|(p, o)| shown.view.get(*p) != Some(o)).take(3).collect();
        return format!(
            "{wrong} of {} node(s) differ; {} shows {extra:?} (path, owner) it should not, lacks {missing:?}",
            side.len(),
            c.nodes[i].name
        );
    }
    "none differs".into()
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
    /// For each node of the crashed fifth: how long until the first survivor, and until the
    /// last, stopped listing its files (its failure detected and acted on).
    pub detection: Vec<(Duration, Duration)>,
}

/// Runs until every survivor shows none of `lost`'s own files (or `bound` passes), and returns
/// for each lost node the time the first and the last survivor stopped listing them.
fn detection(c: &mut Cluster, lost: &[usize], bound: Duration) -> Vec<(Duration, Duration)> {
    let start = c.elapsed();
    let names: Vec<String> = lost.iter().map(|&i| c.nodes[i].name.clone()).collect();
    let survivors: Vec<usize> = (0..c.nodes.len()).filter(|i| !lost.contains(i)).collect();
    // (first, last) survivor to drop each lost node; a survivor drops it when none of the
    // paths it shows is owned by it.
    let mut dropped: Vec<Vec<Option<Duration>>> = vec![vec![None; survivors.len()]; names.len()];
    while c.elapsed() - start <= bound {
        let now = c.elapsed() - start;
        for (k, &i) in survivors.iter().enumerate() {
            let Some(shown) = c.nodes[i].shown() else { continue };
            for (l, name) in names.iter().enumerate() {
                if dropped[l][k].is_none() && !shown.view.values().any(|o| o == name) {
                    dropped[l][k] = Some(now);
                }
            }
        }
        if dropped.iter().flatten().all(Option::is_some) {
            break;
        }
        c.run_for(Duration::from_millis(100));
    }
    dropped
        .iter()
        .map(|d| {
            let times: Vec<Duration> = d.iter().map(|t| t.unwrap_or(bound)).collect();
            (times.iter().copied().min().unwrap_or_default(), times.iter().copied().max().unwrap_or_default())
        })
        .collect()
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
    progress(&c, started, "formed");

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
    // Each side drops the other's files once it has declared those nodes lost, and has its own
    // side's changes by then.
    let bound = p.partition_bound(s.nodes) + p.ping * 3 + Duration::from_secs(5);
    while !(side_converged(&c, &cut) && side_converged(&c, &rest)) {
        if c.elapsed() - cut_at > bound {
            let (a, b) = (side_difference(&c, &cut), side_difference(&c, &rest));
            c.fail(&format!(
                "the two sides of the partition did not each converge within {bound:?}: cut off: {a}; the rest: {b}"
            ));
        }
        c.run_for(Duration::from_millis(100));
    }
    report.times.push(("partitioned (each side)", c.elapsed() - cut_at));
    progress(&c, started, "partitioned, each side converged");
    for &a in &cut {
        for &b in &rest {
            c.repair(a, b);
        }
    }
    c.note("healed");
    // A lost peer is greeted again every ping interval (back within two of the repair, then a
    // full update each way); a crashed one is dropped within the stale bound.
    let bound =
        crate::scenarios::convergence_bound(&p).max(p.stale_bound(s.nodes) + p.ping * 3) + Duration::from_secs(10);
    report.times.push(("healed", c.converge(bound, p.ping * 2)));
    progress(&c, started, "healed, converged");

    // The loss of 20 % at once.
    let lost: Vec<usize> = sample(&mut c.rng, s.nodes, (s.nodes / 5).max(1)).into_vec();
    for &i in &lost {
        c.crash(i);
    }
    let crashed_at = c.elapsed();
    report.detection = detection(&mut c, &lost, bound);
    let watched = c.elapsed() - crashed_at;
    let took = c.converge(bound.saturating_sub(watched), p.ping * 2);
    report.times.push(("20 % crashed", watched + took));
    progress(&c, started, "20 % crashed, converged");
    for &i in &lost {
        c.restart(i);
    }
    report.times.push(("restarted", c.converge(bound, p.ping * 2)));
    report.wall = started.elapsed();
    report.simulated = c.elapsed();
    let outcome = Outcome { converged: Some(formed), bound: Some(Duration::from_secs(60)), trace: c.trace() };
    (outcome, report)
}

/// A line on stderr as each step ends: a run at 200 nodes takes minutes.
fn progress(c: &Cluster, started: Instant, what: &str) {
    eprintln!("scale: {what} at {:.1} simulated s, {:.1?} of wall time", c.elapsed().as_secs_f64(), started.elapsed());
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
    if !r.detection.is_empty() {
        let n = r.detection.len() as f64;
        let mean =
            |f: fn(&(Duration, Duration)) -> Duration| r.detection.iter().map(|d| f(d).as_secs_f64()).sum::<f64>() / n;
        let max = |f: fn(&(Duration, Duration)) -> Duration| {
            r.detection.iter().map(|d| f(d).as_secs_f64()).fold(0.0, f64::max)
        };
        println!(
            "{name} | a crashed node's files gone from the first survivor: mean {:.2} s, max {:.2} s; from every survivor: mean {:.2} s, max {:.2} s ({} crashed at once)",
            mean(|d| d.0),
            max(|d| d.0),
            mean(|d| d.1),
            max(|d| d.1),
            r.detection.len()
        );
    }
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
