//! SWIM ([`dftp_core::swim`]) with many members over an in-memory network that loses and
//! delays packets, deterministically (seeded): formation, detection of a crash, no false
//! positives under loss, and a restart. Time is simulated: no assertion depends on the
//! machine's speed.
//!
//! `cargo test -p dftp-core --test swim -- --ignored --nocapture` prints the measurements of
//! the note (detection time, false positives, messages and bytes per node per minute).

use std::collections::{BTreeMap, BTreeSet};

use dftp_core::swim::{Swim, SwimConfig, SwimId, SwimOut};
use dftp_core::{ClusterInfo, Greeting, NodeInfo, PeerAddr, Span, Time};

/// A small deterministic generator for the network's choices (loss, latency).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn chance(&mut self, per_million: u64) -> bool {
        self.next() % 1_000_000 < per_million
    }
}

fn id(i: usize, epoch: u64) -> SwimId {
    let addr = PeerAddr::parse(&format!("10.0.{}.{}:7041", i / 250, i % 250 + 1)).unwrap();
    SwimId::new(&format!("node{i}"), &addr, epoch, 0)
}

/// Members over a network with `loss` (per million packets) and 1 to 20 ms of latency.
struct Cluster {
    now: Time,
    members: Vec<Option<Swim>>,
    by_addr: BTreeMap<String, usize>,
    /// Packets on their way: (arrival, order) -> (to, packet).
    wire: BTreeMap<(Time, u64), (usize, Vec<u8>)>,
    order: u64,
    rng: Lcg,
    loss: u64,
    /// Per member: the members it sees as up (from its notifications).
    up: Vec<BTreeSet<String>>,
    /// Every `Down` notification: (when, who saw it, about whom, that one's epoch).
    downs: Vec<(Time, usize, String, u64)>,
    sent: Vec<(u64, u64)>,
    cfg: SwimConfig,
}

impl Cluster {
    fn new(n: usize, loss: u64, seed: u64) -> Cluster {
        let cfg = SwimConfig::new(0);
        let mut c = Cluster {
            now: Time::from_secs(1_000_000),
            members: Vec::new(),
            by_addr: BTreeMap::new(),
            wire: BTreeMap::new(),
            order: 0,
            rng: Lcg(seed),
            loss,
            up: vec![BTreeSet::new(); n],
            downs: Vec::new(),
            sent: vec![(0, 0); n],
            cfg,
        };
        for i in 0..n {
            c.by_addr.insert(id(i, 1).addr.to_string(), i);
            c.members.push(None);
            c.start(i, 1);
        }
        c
    }

    /// Starts member `i` (again) in run `epoch`, meeting member 0 (or 1, for member 0).
    fn start(&mut self, i: usize, epoch: u64) {
        let cfg = SwimConfig { seed: self.rng.next(), ..self.cfg.clone() };
        let mut swim = Swim::new(id(i, epoch), cfg);
        let seed = if i == 0 { 1 } else { 0 };
        if seed < self.members.len() {
            swim.meet(self.now, id(seed, 1));
        }
        self.up[i].clear();
        self.members[i] = Some(swim);
        self.drain(i);
    }

    fn crash(&mut self, i: usize) {
        self.members[i] = None;
    }

    fn drain(&mut self, i: usize) {
        let Some(swim) = self.members[i].as_mut() else { return };
        for out in swim.take() {
            match out {
                SwimOut::Send { to, packet } => {
                    self.sent[i].0 += 1;
                    self.sent[i].1 += packet.len() as u64;
                    if self.rng.chance(self.loss) {
                        continue;
                    }
                    let Some(&j) = self.by_addr.get(to.addr.as_str()) else { continue };
                    let at = self.now + Span::from_millis(1 + self.rng.next() % 20);
                    self.wire.insert((at, self.order), (j, packet));
                    self.order += 1;
                }
                SwimOut::Up(m) => {
                    self.up[i].insert(m.name.to_string());
                }
                SwimOut::Down(m) => {
                    self.up[i].remove(m.name.as_str());
                    self.downs.push((self.now, i, m.name.to_string(), m.epoch));
                }
            }
        }
    }

    /// Runs the cluster for `span`, in steps of 10 ms.
    fn run(&mut self, span: Span) {
        let end = self.now + span;
        while self.now < end {
            self.now = self.now + Span::from_millis(10);
            while let Some(entry) = self.wire.first_entry() {
                if entry.key().0 > self.now {
                    break;
                }
                let (to, packet) = entry.remove();
                let now = self.now;
                if let Some(swim) = self.members[to].as_mut() {
                    let _ = swim.receive(now, &packet);
                    self.drain(to);
                }
            }
            for i in 0..self.members.len() {
                let now = self.now;
                if let Some(swim) = self.members[i].as_mut() {
                    if swim.next_wake().is_some_and(|t| t <= now) {
                        swim.tick(now);
                        self.drain(i);
                    }
                }
            }
        }
    }

    fn live(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.members.len()).filter(|&i| self.members[i].is_some())
    }

    /// Whether every live member sees every other live member as up.
    fn formed(&self) -> bool {
        let live: BTreeSet<String> = self.live().map(|i| format!("node{i}")).collect();
        self.live().all(|i| {
            let watched: BTreeSet<String> =
                self.members[i].as_ref().unwrap().members().map(|m| m.name.to_string()).collect();
            let mut others = live.clone();
            others.remove(&format!("node{i}"));
            watched == others
        })
    }

    /// Runs until `done` holds, checking every 100 ms, for at most `limit`; gives the time it
    /// took.
    fn run_until(&mut self, limit: Span, done: impl Fn(&Cluster) -> bool) -> Option<Span> {
        let start = self.now;
        while self.now.since(start) < limit {
            if done(self) {
                return Some(self.now.since(start));
            }
            self.run(Span::from_millis(100));
        }
        done(self).then(|| self.now.since(start))
    }

    /// Whether every live member has declared `victim` down (and no longer watches it).
    fn all_declared_down(&self, victim: usize) -> bool {
        let name = format!("node{victim}");
        self.live().all(|i| !self.members[i].as_ref().unwrap().watches(&name))
    }

    /// `Down` notifications about members that were alive at the time.
    fn false_downs(&self, dead: &BTreeSet<String>) -> usize {
        self.downs.iter().filter(|(_, _, who, _)| !dead.contains(who)).count()
    }
}

#[test]
fn two_hundred_members_form_a_cluster_from_one_seed() {
    let mut c = Cluster::new(200, 0, 1);
    let took = c.run_until(Span::from_secs(300), Cluster::formed);
    assert!(took.is_some(), "not every member sees the 199 others after 5 simulated minutes");
    assert_eq!(c.downs, [], "nobody was declared down on a lossless network");
}

#[test]
fn a_crashed_member_is_declared_down_by_everyone_within_the_suspicion_bound() {
    let mut c = Cluster::new(200, 10_000, 2);
    assert!(c.run_until(Span::from_secs(300), Cluster::formed).is_some());
    c.crash(77);
    // The first prober reaches it within a few periods, suspects it after its probe and the
    // indirect ones fail, and declares it down a suspicion time later; the news spreads in
    // O(log N) periods. Twice that sum is generous.
    let cfg = SwimConfig::new(0);
    let bound = Span(2 * (cfg.suspicion(200).as_millis() + 20 * cfg.probe_period.as_millis()));
    let took = c.run_until(bound, |c| c.all_declared_down(77));
    assert!(took.is_some(), "not declared down everywhere within {bound:?}");
    let dead: BTreeSet<String> = ["node77".to_string()].into();
    assert_eq!(c.false_downs(&dead), 0, "{:?}", c.downs);
}

#[test]
fn one_percent_loss_declares_no_live_member_down_over_ten_minutes() {
    let mut c = Cluster::new(200, 10_000, 3);
    assert!(c.run_until(Span::from_secs(300), Cluster::formed).is_some());
    c.run(Span::from_secs(600));
    assert_eq!(c.false_downs(&BTreeSet::new()), 0, "{:?}", c.downs);
    assert!(c.formed());
}

#[test]
fn a_restarted_member_comes_back_as_its_new_run() {
    let mut c = Cluster::new(50, 10_000, 4);
    assert!(c.run_until(Span::from_secs(300), Cluster::formed).is_some());
    c.crash(9);
    assert!(c.run_until(Span::from_secs(120), |c| c.all_declared_down(9)).is_some());
    c.start(9, 2);
    assert!(c.run_until(Span::from_secs(120), Cluster::formed).is_some(), "node9 did not come back everywhere");
    // Everyone watches the new run, not the old one.
    for i in c.live().filter(|&i| i != 9) {
        let m = c.members[i].as_ref().unwrap().members().find(|m| m.name == "node9").cloned();
        assert_eq!(m.map(|m| m.epoch), Some(2), "member {i}");
    }
}

/// The size of a full-mesh greeting and its answer (a cluster table of `n` nodes), in bytes,
/// without HTTP's heads.
fn greeting_bytes(n: usize) -> (usize, usize) {
    let addr = |i: usize| format!("10.0.{}.{}:7041", i / 250, i % 250 + 1);
    let greeting = Greeting {
        name: "node0".into(),
        public_addr: PeerAddr::parse("10.0.0.1:7040").unwrap(),
        mgmt_addr: PeerAddr::parse(&addr(0)).unwrap(),
        request_full_update: false,
    };
    let info = |i: usize| NodeInfo {
        name: format!("node{i}").into(),
        public_addr: addr(i),
        mgmt_addr: addr(i),
        last_alive: 1_764_000_000,
        last_update_pushed: 1_764_000_000,
        last_update_received: 1_764_000_000,
        last_full_update_received: 1_764_000_000,
        epoch: None,
        seq: None,
        swim: None,
        digest: None,
    };
    let table = ClusterInfo {
        name: "dftp".into(),
        me: NodeInfo { epoch: Some(1_764_000_000_000), seq: Some(42), ..info(1) },
        peers: (2..=n).map(|i| (format!("node{i}").into(), info(i))).collect(),
    };
    (greeting.to_form().len(), table.to_json().len())
}

/// The HTTP/1.1 heads of one management request and its answer, as the shell sends them
/// (request line, Host, Content-Type, Content-Length; status line, Content-Type,
/// Content-Length, Date), without the cluster secret's tag (about 150 bytes more each way).
const HTTP_HEADS: usize = 200;

#[test]
#[ignore = "measurements for the note; prints a table"]
fn measure() {
    println!("\n## SWIM (foca) against full-mesh greetings, per node per minute, no loss");
    println!(
        "| N | SWIM messages | SWIM bytes (body) | SWIM bytes (with HTTP) | greetings | greeting bytes (with HTTP) |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for n in [20, 50, 100, 200] {
        let mut c = Cluster::new(n, 0, 10);
        c.run_until(Span::from_secs(300), Cluster::formed).expect("formed");
        c.run(Span::from_secs(60));
        let before = c.sent.clone();
        c.run(Span::from_secs(300));
        let (msgs, bytes) =
            c.sent.iter().zip(&before).fold((0, 0), |(m, b), (now, then)| (m + now.0 - then.0, b + now.1 - then.1));
        let per = |x: u64| x as f64 / n as f64 / 5.0;
        let (g, t) = greeting_bytes(n);
        // One greeting per peer per 10 s ping interval; each is a request and an answer.
        let greets = (n - 1) as f64 * 6.0;
        println!(
            "| {n} | {:.0} | {:.0} | {:.0} | {greets:.0} | {:.0} |",
            per(msgs),
            per(bytes),
            per(bytes) + per(msgs) * HTTP_HEADS as f64,
            greets * (g + t + 2 * HTTP_HEADS) as f64
        );
    }

    println!("\n## Failure detection at N = 200, 1 % loss, memberlist's LAN defaults (1 s probe, 3 indirect, suspicion 4·log10 N s)");
    let mut c = Cluster::new(200, 10_000, 11);
    c.run_until(Span::from_secs(300), Cluster::formed).expect("formed");
    let mut firsts = Vec::new();
    let mut alls = Vec::new();
    let mut dead = BTreeSet::new();
    for (k, victim) in [13usize, 57, 101, 149, 188, 31, 77, 122, 166, 5].into_iter().enumerate() {
        c.run(Span::from_secs(30 + 7 * k as u64));
        let crashed_at = c.now;
        c.crash(victim);
        dead.insert(format!("node{victim}"));
        let all = c.run_until(Span::from_secs(300), |c| c.all_declared_down(victim)).expect("detected");
        let first = c
            .downs
            .iter()
            .filter(|(t, _, who, _)| *t >= crashed_at && *who == format!("node{victim}"))
            .map(|(t, ..)| t.since(crashed_at))
            .min()
            .expect("a first detection");
        firsts.push(first.as_millis());
        alls.push(all.as_millis());
    }
    let stats =
        |v: &[u64]| (v.iter().sum::<u64>() as f64 / v.len() as f64 / 1000.0, *v.iter().max().unwrap() as f64 / 1000.0);
    let (fm, fx) = stats(&firsts);
    let (am, ax) = stats(&alls);
    println!("crashes: {}; first member to declare it down: mean {fm:.1} s, max {fx:.1} s", firsts.len());
    println!("every member declared it down: mean {am:.1} s, max {ax:.1} s");
    println!("suspicion time at N = 200: {:.1} s", SwimConfig::new(0).suspicion(200).as_millis() as f64 / 1000.0);
    let fp_before = c.false_downs(&dead);
    c.run(Span::from_secs(1800));
    println!(
        "false positives (a live member declared down by someone): {} during the crashes, {} more over 30 minutes after",
        fp_before,
        c.false_downs(&dead) - fp_before
    );
}
