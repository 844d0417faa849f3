//! A cluster of real dftp daemons on turmoil hosts, the faults a scenario applies to it, and the
//! checks: convergence to the tree the conflict rule gives, and no path listed long after the
//! last live node holding it let it go.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use clap::Parser;
use dftp::blocking::Blocking;
use dftp::config::Cli;
use dftp::driver::Handle;
use dftp::metrics::Direction;
use dftp::settings::Settings;
use dftp::traffic::{Kind, Tally, Traffic};
use dftp::Env;
use dftp_core::Snapshot;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::memfs::{MemEntry, MemFs};
use crate::net::TurmoilNet;
use crate::oracle::{self, View};

pub const HTTP_PORT: u16 = 7040;
pub const MGMT_PORT: u16 = 7041;
pub const GROUP: &str = "224.0.0.9:7041";

/// Intervals and network of a simulated cluster.
#[derive(Clone, Debug)]
pub struct Params {
    pub ping: Duration,
    pub peer_timeout: Duration,
    pub full_update: Duration,
    pub announce: Duration,
    /// Multicast discovery on.
    pub discovery: bool,
    /// Simulated time per step.
    pub tick: Duration,
    pub min_latency: Duration,
    pub max_latency: Duration,
    /// How often the checks look at every node.
    pub observe_every: Duration,
    /// How the nodes watch each other: the original's greetings unless a scenario asks for
    /// SWIM (`sim/tests/swim.rs`, the scale scenario); the checks' [`Params::stale_bound`]
    /// follows it.
    pub membership: Membership,
}

/// `--membership` (and `--swim-probe-interval`) of every node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Membership {
    /// Every node greets every peer every ping interval; a peer silent for the peer timeout is
    /// lost (the original's protocol).
    Ping,
    /// SWIM between our nodes, a probe every `probe`; the peer timeout stays for peers SWIM
    /// does not watch.
    Swim { probe: Duration },
}

impl Membership {
    fn flags(self) -> Vec<String> {
        match self {
            Membership::Ping => vec!["--membership=ping".into()],
            Membership::Swim { probe } => {
                vec!["--membership=swim".into(), format!("--swim-probe-interval={}ms", probe.as_millis())]
            }
        }
    }
}

impl Default for Params {
    fn default() -> Params {
        Params {
            ping: Duration::from_secs(1),
            peer_timeout: Duration::from_secs(3),
            full_update: Duration::from_secs(30),
            announce: Duration::from_secs(1),
            discovery: true,
            tick: Duration::from_millis(10),
            min_latency: Duration::ZERO,
            max_latency: Duration::from_millis(20),
            observe_every: Duration::from_millis(100),
            membership: Membership::Ping,
        }
    }
}

impl Params {
    /// How long after the last live holder let a path go (or the last release of held
    /// messages, which may carry old news) a node of a cluster of `nodes` may still list it: a
    /// peer is removed when it has been silent for the peer timeout, checked every ping
    /// interval; with SWIM, also when SWIM declares it down, which may take longer (see
    /// [`Params::swim_detection`]).
    pub fn stale_bound(&self, nodes: usize) -> Duration {
        let silent = self.peer_timeout + self.ping + self.max_latency * 4 + Duration::from_millis(500);
        match self.membership {
            Membership::Ping => silent,
            Membership::Swim { probe } => silent.max(Self::swim_detection(probe, nodes) + self.max_latency * 4),
        }
    }

    /// How long after a partition a node may still list the files of a node on the other
    /// side. With the ping protocol, as for a crash: every peer is greeted every interval. With
    /// SWIM, a node on the small side hears of the other side's members mostly from its own
    /// probes (its few fellows seldom talk to it: most of their probes also fail, and so do
    /// their indirect probes through the other side), and foca probes its members in turn, one
    /// a period: up to a whole round of `nodes` periods before it suspects the last of them,
    /// then the suspicion — memberlist and every SWIM behave so. Hence `nodes` periods more
    /// than a crash.
    pub fn partition_bound(&self, nodes: usize) -> Duration {
        match self.membership {
            Membership::Ping => self.stale_bound(nodes),
            Membership::Swim { probe } => self.stale_bound(nodes) + probe * nodes as u32,
        }
    }

    /// An upper bound on the time for every member of a SWIM cluster of `nodes` to declare a
    /// silent member down, in probe periods: a period or two until someone probes it and its
    /// direct and indirect probes fail, the suspicion (`4 · max(1, log10 N)` periods, our
    /// `SwimConfig`), and the news's spread, which rides on probes (each member passes it to
    /// one or a few others a period: `log2 N` rounds to reach everyone, doubled for losses and
    /// for the order of foca's probe list). The core measured, at N = 200 and 1 % loss, all
    /// members declaring a crash within 18 periods (`core/tests/swim.rs`); this gives 27.5.
    pub fn swim_detection(probe: Duration, nodes: usize) -> Duration {
        let n = nodes.max(2) as f64;
        let periods = 3.0 + 4.0 * n.log10().max(1.0) + 2.0 * n.log2();
        probe.mul_f64(periods)
    }
}

/// One node of the cluster.
pub struct Slot {
    pub name: String,
    /// Its disk.
    pub fs: MemFs,
    /// Where its tree appears in the cluster (`--dfsmount`).
    pub mount: String,
    /// Its flags at the next start.
    args: Rc<RefCell<Vec<String>>>,
    /// Its snapshots, once it serves.
    snap: Arc<Mutex<Option<watch::Receiver<Snapshot>>>>,
    /// What it showed at the last look, kept until it publishes another snapshot.
    view: RefCell<Option<Rc<Shown>>>,
    /// The last snapshot of it the checks looked at (it shows `view`).
    seen: RefCell<Option<Snapshot>>,
    /// What the stale check found in that view: the paths it lists that no running node holds.
    unheld: RefCell<Option<Unheld>>,
    pub running: bool,
    /// [`NodeOpts::group`].
    pub group: u8,
    /// The cluster traffic counters of each of its runs (a restart starts new ones).
    traffic: Arc<Mutex<Vec<Traffic>>>,
}

/// The paths a view lists that no running node holds, and what they were computed from: the
/// check every 100 ms recomputes them only when the view or the held paths change.
struct Unheld {
    shown: Rc<Shown>,
    held: Rc<BTreeSet<String>>,
    /// (path, owner)
    paths: Vec<(String, String)>,
}

/// A node's tree as the checks see it.
pub struct Shown {
    pub view: View,
    /// A digest of `view`.
    pub hash: u64,
}

impl Slot {
    /// What it shows now (`None` until it serves).
    pub fn shown(&self) -> Option<Rc<Shown>> {
        let mut guard = self.snap.lock().unwrap_or_else(|e| e.into_inner());
        let rx = guard.as_mut()?;
        let mut cache = self.view.borrow_mut();
        if cache.is_none() || rx.has_changed().unwrap_or(false) {
            let snapshot = rx.borrow_and_update().clone();
            // A node publishes a snapshot at every event it handles, mostly with the same tree:
            // the same tree by construction costs nothing to tell, comparing costs no
            // allocation, building the view does.
            let mut seen = self.seen.borrow_mut();
            let same = seen.as_ref().is_some_and(|s| s.same_tree(&snapshot));
            if cache.is_some() && (same || cache.as_ref().is_some_and(|c| oracle::shows(&snapshot, &c.view))) {
                *seen = Some(snapshot);
                return cache.clone();
            }
            *seen = Some(snapshot.clone());
            let view = oracle::actual(&snapshot);
            let mut hash = FNV_START;
            for (path, owner) in &view {
                mix_bytes(&mut hash, path.as_bytes());
                mix_bytes(&mut hash, owner.as_bytes());
            }
            *cache = Some(Rc::new(Shown { view, hash }));
        }
        cache.clone()
    }

    /// Its cluster traffic of `kind` in `direction` so far, over all its runs.
    pub fn traffic(&self, kind: Kind, direction: Direction) -> Tally {
        let mut sum = Tally::default();
        for t in self.traffic.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            sum += t.tally(kind, direction);
        }
        sum
    }

    /// Its latest snapshot (`None` until it serves).
    pub fn snapshot(&self) -> Option<Snapshot> {
        self.snap.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|rx| rx.borrow().clone())
    }

    fn forget_snapshots(&self) {
        *self.snap.lock().unwrap_or_else(|e| e.into_inner()) = None;
        *self.view.borrow_mut() = None;
        *self.seen.borrow_mut() = None;
    }

    /// The tree it contributes, in cluster paths.
    pub fn cluster_entries(&self) -> BTreeMap<String, MemEntry> {
        let entries = self.fs.entries();
        if self.mount.is_empty() {
            return entries;
        }
        entries.into_iter().map(|(k, v)| (format!("{}/{k}", self.mount), v)).collect()
    }
}

thread_local! {
    /// The first panic on this thread since the last look (tokio swallows panics of spawned
    /// tasks; a panic hook records them here).
    static PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
    static HOOKED: Cell<bool> = const { Cell::new(false) };
}

fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = format!("{info}");
            PANIC.with(|p| {
                p.borrow_mut().get_or_insert(msg);
            });
            if !HOOKED.with(Cell::get) {
                default(info);
            }
        }));
    });
}

/// Options of a node at its first start.
#[derive(Clone, Debug, Default)]
pub struct NodeOpts {
    pub mount: String,
    /// `--join` targets (node indexes).
    pub join: Vec<usize>,
    /// Extra flags.
    pub extra: Vec<String>,
    /// Nodes of different groups must never form one cluster (a node with another cluster
    /// secret): each group is checked against its own members' disks.
    pub group: u8,
}

pub struct Cluster {
    pub seed: u64,
    sim: turmoil::Sim<'static>,
    /// The scenario's own randomness (faults, changes), apart from turmoil's.
    pub rng: SmallRng,
    pub params: Params,
    pub nodes: Vec<Slot>,
    clients: usize,
    /// Results of the `/join/` clients.
    join_results: Rc<RefCell<Vec<String>>>,
    last_release: Duration,
    /// The latencies set on the network, to widen the failure timeout by.
    latency: Latencies,
    /// When a link was last cut ([`Cluster::partition`]): the stale check's bound follows.
    last_cut: Option<Duration>,
    /// Every path some running node holds, with its ancestors, and what it was computed from
    /// (which nodes ran, and their disks' versions).
    held: (Vec<Option<u64>>, Rc<BTreeSet<String>>),
    /// The expected tree of each group, likewise.
    expected: RefCell<BTreeMap<u8, Computed<View>>>,
    /// When each path no longer held was last held.
    last_held: BTreeMap<String, Duration>,
    next_observe: Duration,
    /// A digest of everything every node showed at every look: equal for equal seeds.
    trace: u64,
    log: Vec<(Duration, String)>,
    /// Counter for unique file names.
    serial: u64,
}

impl Cluster {
    pub fn new(seed: u64, params: Params) -> Cluster {
        install_panic_hook();
        HOOKED.with(|h| h.set(std::env::var_os("SIM_SEED").is_none()));
        PANIC.with(|p| p.borrow_mut().take());
        crate::logging::init();
        let sim = turmoil::Builder::new()
            .rng_seed(seed)
            .epoch(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
            .simulation_duration(Duration::from_secs(365 * 86400))
            .tick_duration(params.tick)
            .min_message_latency(params.min_latency)
            .max_message_latency(params.max_latency)
            .tcp_capacity(1 << 16)
            .udp_capacity(1 << 12)
            .build();
        Cluster {
            seed,
            sim,
            rng: SmallRng::seed_from_u64(seed ^ 0x5eed_5eed_5eed_5eed),
            params,
            nodes: Vec::new(),
            clients: 0,
            join_results: Rc::default(),
            last_release: Duration::ZERO,
            latency: Latencies::default(),
            last_cut: None,
            held: (Vec::new(), Rc::default()),
            expected: RefCell::default(),
            last_held: BTreeMap::new(),
            next_observe: Duration::ZERO,
            trace: FNV_START,
            log: Vec::new(),
            serial: 0,
        }
    }

    /// Simulated time since the start.
    pub fn elapsed(&self) -> Duration {
        self.sim.elapsed()
    }

    /// Simulated Unix seconds: the ctime of a change made now.
    pub fn now_secs(&self) -> i64 {
        self.sim.since_epoch().as_secs() as i64
    }

    /// A random duration in `lo..hi` seconds, from the scenario's rng.
    pub fn rand_secs(&mut self, lo: f64, hi: f64) -> Duration {
        Duration::from_secs_f64(self.rng.random_range(lo..hi))
    }

    /// A random index below `n`.
    pub fn pick(&mut self, n: usize) -> usize {
        self.rng.random_range(0..n)
    }

    pub fn trace(&self) -> u64 {
        self.trace
    }

    pub fn note(&mut self, what: impl Into<String>) {
        let at = self.elapsed();
        self.log.push((at, what.into()));
    }

    /// The daemon's flags for a node.
    fn args_for(&self, name: &str, opts: &NodeOpts) -> Vec<String> {
        let p = &self.params;
        let secs = |d: Duration| format!("{}ms", d.as_millis());
        let mut args = vec![
            "dftp".to_string(),
            format!("--node-name={name}"),
            format!("--http-listen=:{HTTP_PORT}"),
            format!("--http-mgmt-listen=:{MGMT_PORT}"),
            "--ftp-listen=".to_string(),
            format!("--multicast-discovery-addr={}", if p.discovery { GROUP } else { "" }),
            format!("--ping-interval={}", secs(p.ping)),
            format!("--peer-timeout={}", secs(p.peer_timeout)),
            format!("--full-update-interval={}", secs(p.full_update)),
            format!("--announce-interval={}", secs(p.announce)),
            format!("--dfsmount={}", opts.mount),
            "--dfsroot=/sim".to_string(),
        ];
        for j in &opts.join {
            args.push(format!("--join={}:{MGMT_PORT}", self.nodes[*j].name));
        }
        args.extend(p.membership.flags());
        // A node's own flags (`--flag=value`) override the cluster's: a scenario mixing both
        // `--membership` kinds, or a peer timeout only SWIM can beat.
        let flag = |a: &str| a.split('=').next().unwrap_or(a).to_string();
        let own: Vec<String> = opts.extra.iter().map(|a| flag(a)).collect();
        args.retain(|a| !own.contains(&flag(a)));
        args.extend(opts.extra.iter().cloned());
        args
    }

    /// Adds a node with an empty disk; it starts at once.
    pub fn add_node(&mut self, opts: NodeOpts) -> usize {
        let i = self.nodes.len();
        let name = format!("n{i}");
        self.add_named(&name, opts, MemFs::new())
    }

    /// Adds a node with this disk; it starts at once.
    pub fn add_named(&mut self, name: &str, opts: NodeOpts, fs: MemFs) -> usize {
        let args = Rc::new(RefCell::new(self.args_for(name, &opts)));
        let snap: Arc<Mutex<Option<watch::Receiver<Snapshot>>>> = Arc::default();
        let traffic: Arc<Mutex<Vec<Traffic>>> = Arc::default();
        let (a, f, s, t) = (args.clone(), fs.clone(), snap.clone(), traffic.clone());
        let mut swim_seed = FNV_START ^ self.seed;
        mix_bytes(&mut swim_seed, name.as_bytes());
        self.sim.host(name, move || {
            let args = a.borrow().clone();
            let fs = f.clone();
            let snap = s.clone();
            let traffic = t.clone();
            async move {
                let cli = Cli::try_parse_from(&args).map_err(|e| e.to_string())?;
                let settings = Settings::from_cli(cli)?;
                let start_unix_ms = turmoil::since_epoch().map_or(0, |d| d.as_millis() as u64);
                let on_ready = Box::new(move |h: &Handle| {
                    *snap.lock().unwrap_or_else(|e| e.into_inner()) = Some(h.snapshots());
                    traffic.lock().unwrap_or_else(|e| e.into_inner()).push(h.metrics().traffic().clone());
                });
                let env = Env {
                    net: Arc::new(TurmoilNet),
                    fs: Arc::new(fs),
                    start_unix_ms,
                    blocking: Blocking::Inline,
                    on_ready: Some(on_ready),
                    // From the run's seed, the node and its start: a replay makes the same choices.
                    swim_seed: Some(swim_seed ^ start_unix_ms),
                };
                // Never stopped gracefully: hosts crash.
                let (stop, stopped) = watch::channel(false);
                let result = dftp::run(settings, env, stopped).await;
                drop(stop);
                result.map_err(|e| format!("dftp::run: {e}").into())
            }
        });
        self.nodes.push(Slot {
            name: name.to_string(),
            fs,
            mount: opts.mount.clone(),
            args,
            snap,
            view: RefCell::new(None),
            seen: RefCell::new(None),
            unheld: RefCell::new(None),
            running: true,
            group: opts.group,
            traffic,
        });
        self.note(format!("start {name} {:?}", opts));
        self.nodes.len() - 1
    }

    /// Changes a stopped node's `--join` targets for its next start.
    pub fn set_join(&mut self, i: usize, join: &[usize]) {
        let targets: Vec<String> = join.iter().map(|j| format!("--join={}:{MGMT_PORT}", self.nodes[*j].name)).collect();
        let mut args = self.nodes[i].args.borrow_mut();
        args.retain(|a| !a.starts_with("--join="));
        args.extend(targets);
    }

    pub fn crash(&mut self, i: usize) {
        // What it holds now, it held until now (it may be newer than the last look).
        self.mark_held();
        let name = self.nodes[i].name.clone();
        self.sim.crash(name.as_str());
        self.nodes[i].running = false;
        self.nodes[i].forget_snapshots();
        self.note(format!("crash {name}"));
    }

    /// Starts a stopped node again, or kills and restarts a running one.
    pub fn restart(&mut self, i: usize) {
        let name = self.nodes[i].name.clone();
        self.nodes[i].forget_snapshots();
        self.sim.bounce(name.as_str());
        self.nodes[i].running = true;
        self.note(format!("restart {name}"));
    }

    pub fn partition(&mut self, a: usize, b: usize) {
        self.last_cut = Some(self.elapsed());
        self.sim.partition(self.nodes[a].name.as_str(), self.nodes[b].name.as_str());
        self.note(format!("partition {} {}", self.nodes[a].name, self.nodes[b].name));
    }

    pub fn partition_oneway(&mut self, from: usize, to: usize) {
        self.last_cut = Some(self.elapsed());
        self.sim.partition_oneway(self.nodes[from].name.as_str(), self.nodes[to].name.as_str());
        self.note(format!("partition {} -> {}", self.nodes[from].name, self.nodes[to].name));
    }

    pub fn repair(&mut self, a: usize, b: usize) {
        self.sim.repair(self.nodes[a].name.as_str(), self.nodes[b].name.as_str());
        self.note(format!("repair {} {}", self.nodes[a].name, self.nodes[b].name));
    }

    /// Holds every message between `a` and `b` until released.
    pub fn hold(&mut self, a: usize, b: usize) {
        self.sim.hold(self.nodes[a].name.as_str(), self.nodes[b].name.as_str());
        self.note(format!("hold {} {}", self.nodes[a].name, self.nodes[b].name));
    }

    pub fn release(&mut self, a: usize, b: usize) {
        self.sim.release(self.nodes[a].name.as_str(), self.nodes[b].name.as_str());
        self.last_release = self.elapsed();
        self.note(format!("release {} {}", self.nodes[a].name, self.nodes[b].name));
    }

    /// Cuts node `i` off from every other node.
    pub fn isolate(&mut self, i: usize) {
        for j in 0..self.nodes.len() {
            if j != i {
                self.sim.partition(self.nodes[i].name.as_str(), self.nodes[j].name.as_str());
            }
        }
        self.note(format!("isolate {}", self.nodes[i].name));
    }

    /// Repairs and releases every link between nodes.
    pub fn heal_all(&mut self) {
        for a in 0..self.nodes.len() {
            for b in a + 1..self.nodes.len() {
                self.sim.repair(self.nodes[a].name.as_str(), self.nodes[b].name.as_str());
                self.sim.release(self.nodes[a].name.as_str(), self.nodes[b].name.as_str());
            }
        }
        self.last_release = self.elapsed();
        self.note("heal all");
    }

    /// Sets the latency of every message between `a` and `b` (`None`: back to the default
    /// range). Messages already on the wire keep theirs.
    pub fn set_link_latency(&mut self, a: usize, b: usize, d: Option<Duration>) {
        let (na, nb) = (self.nodes[a].name.clone(), self.nodes[b].name.clone());
        match d {
            Some(d) => {
                self.sim.set_link_latency(na.as_str(), nb.as_str(), d);
                let now = self.elapsed();
                if let Some(old) = self.latency.links.insert((a.min(b), a.max(b)), d) {
                    self.latency.lowered.push((old, now));
                }
            }
            None => {
                let now = self.elapsed();
                if let Some(old) = self.latency.links.remove(&(a.min(b), a.max(b))) {
                    self.latency.lowered.push((old, now));
                }
                self.sim.set_link_latency(na.as_str(), nb.as_str(), self.params.min_latency);
                self.sim.set_link_max_message_latency(na.as_str(), nb.as_str(), self.params.max_latency);
            }
        }
        self.note(format!("latency {na} {nb} {d:?}"));
    }

    /// Whether a TCP segment from node `from` to node `to`'s management port that carries
    /// part of a full update (a chunked `POST /update/`, or its data) is on the wire.
    pub fn full_update_in_flight(&self, from: usize, to: usize) -> bool {
        let (src, dst) =
            (self.sim.lookup(self.nodes[from].name.as_str()), self.sim.lookup(self.nodes[to].name.as_str()));
        let mut found = false;
        self.sim.links(|links| {
            for link in links {
                for sent in link {
                    let (s, d) = sent.pair();
                    if s.ip() != src || d.ip() != dst || d.port() != MGMT_PORT {
                        continue;
                    }
                    if let turmoil::Protocol::Tcp(turmoil::Segment::Data(_, bytes)) = sent.protocol() {
                        let b = bytes.as_ref();
                        let has = |needle: &[u8]| b.windows(needle.len()).any(|w| w == needle);
                        if has(b"transfer-encoding: chunked") || has(b"\"Full\":true") {
                            found = true;
                        }
                    }
                }
            }
        });
        found
    }

    /// Runs until `cond` holds, at most `limit`; returns whether it held.
    pub fn run_until(&mut self, limit: Duration, mut cond: impl FnMut(&Cluster) -> bool) -> bool {
        let until = self.elapsed() + limit;
        while self.elapsed() < until {
            if cond(self) {
                return true;
            }
            self.step();
        }
        cond(self)
    }

    /// Sets the largest message latency on every link.
    pub fn set_max_latency(&mut self, d: Duration) {
        self.sim.set_max_message_latency(d);
        let now = self.elapsed();
        let old = self.latency.global.replace(d);
        if let Some(old) = old {
            self.latency.lowered.push((old, now));
        }
        self.note(format!("max latency {d:?}"));
    }

    /// `POST /join/` to node `at` from a client host, naming `peers`.
    pub fn join_http(&mut self, at: usize, peers: &[usize]) {
        let host = format!("client{}", self.clients);
        self.clients += 1;
        let target = self.nodes[at].name.clone();
        let body: Vec<String> = peers.iter().map(|p| format!("peer={}:{MGMT_PORT}", self.nodes[*p].name)).collect();
        let body = body.join("&");
        self.note(format!("POST /join/ to {target}: {body}"));
        let results = self.join_results.clone();
        self.sim.client(host.as_str(), async move {
            let outcome = async {
                let mut s = turmoil::net::TcpStream::connect((target.as_str(), MGMT_PORT)).await?;
                let req = format!(
                    "POST /join/ HTTP/1.1\r\nHost: {target}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                s.write_all(req.as_bytes()).await?;
                let mut resp = Vec::new();
                let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut resp)).await;
                Ok::<_, std::io::Error>(String::from_utf8_lossy(&resp).lines().next().unwrap_or("").to_string())
            };
            let line = match tokio::time::timeout(Duration::from_secs(10), outcome).await {
                Ok(Ok(line)) => line,
                Ok(Err(e)) => format!("error: {e}"),
                Err(_) => "timed out".to_string(),
            };
            results.borrow_mut().push(format!("/join/ to {target}: {line}"));
            Ok(())
        });
    }

    /// Starts a client host named `name` that runs `f` (its network is never cut: the faults
    /// are between nodes).
    pub fn client(&mut self, name: &str, f: impl std::future::Future<Output = turmoil::Result> + 'static) {
        self.note(format!("client {name} starts"));
        self.sim.client(name, f);
    }

    pub fn join_results(&self) -> Vec<String> {
        self.join_results.borrow().clone()
    }

    // ---- file changes ---------------------------------------------------------------------

    /// A random change to node `i`'s disk: create, rewrite, delete, rename or chmod, in a small
    /// namespace so that nodes often hold the same paths.
    pub fn random_change(&mut self, i: usize) {
        let now = self.now_secs();
        let fs = self.nodes[i].fs.clone();
        let dirs = ["a", "b", "a/x", "b/y", "c/z/w"];
        let pick_dir = |rng: &mut SmallRng| dirs[rng.random_range(0..dirs.len())];
        // `w/` belongs to the writing client (`writes.rs`), which must know every change there.
        let existing: Vec<(String, MemEntry)> =
            fs.entries().into_iter().filter(|(p, _)| p != "w" && !p.starts_with("w/")).collect();
        let roll = self.rng.random_range(0..100);
        let name = &self.nodes[i].name;
        let what = if roll < 45 || existing.is_empty() {
            let path = format!("{}/f{}", pick_dir(&mut self.rng), self.rng.random_range(0..8));
            let size = self.rng.random_range(0..1000);
            fs.write(&path, size, now).then(|| format!("{name}: write {path}"))
        } else if roll < 65 {
            let (path, _) = &existing[self.rng.random_range(0..existing.len())];
            fs.remove(path, now).then(|| format!("{name}: remove {path}"))
        } else if roll < 80 {
            let (from, _) = &existing[self.rng.random_range(0..existing.len())];
            self.serial += 1;
            let to = format!("{}/r{}", pick_dir(&mut self.rng), self.serial % 6);
            if !fs.get(parent_of(&to)).is_some_and(|e| e.dir) {
                fs.mkdir(parent_of(&to), now);
            }
            fs.rename(from, &to, now).then(|| format!("{name}: rename {from} {to}"))
        } else if roll < 90 {
            let (path, _) = &existing[self.rng.random_range(0..existing.len())];
            fs.chmod(path, now).then(|| format!("{name}: chmod {path}"))
        } else if roll < 97 {
            let path = format!("{}/e{}", pick_dir(&mut self.rng), self.rng.random_range(0..3));
            fs.mkdir(&path, now).then(|| format!("{name}: mkdir {path}"))
        } else {
            fs.overflow();
            Some(format!("{name}: watcher overflow"))
        };
        if let Some(w) = what {
            self.note(w);
        }
    }

    /// A random change on a random node (running or not: a stopped node's disk changes too).
    pub fn random_change_anywhere(&mut self) {
        let i = self.rng.random_range(0..self.nodes.len());
        self.random_change(i);
    }

    // ---- running and checking ---------------------------------------------------------------

    /// Runs the simulation for `d`, checking as it goes.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.elapsed() + d;
        while self.elapsed() < until {
            self.step();
        }
    }

    /// Runs for `d` with a random change somewhere every `every` on average.
    pub fn run_with_changes(&mut self, d: Duration, every: Duration) {
        let until = self.elapsed() + d;
        while self.elapsed() < until {
            let gap = self.rng.random_range(0..=2 * every.as_millis() as u64);
            let next = (self.elapsed() + Duration::from_millis(gap)).min(until);
            self.run_for(next - self.elapsed());
            if self.elapsed() < until {
                self.random_change_anywhere();
            }
        }
    }

    fn step(&mut self) {
        if let Err(e) = self.sim.step() {
            self.fail(&format!("the simulation stopped: {e}"));
        }
        if let Some(p) = PANIC.with(|p| p.borrow_mut().take()) {
            self.fail(&format!("a task panicked: {p}"));
        }
        if self.elapsed() >= self.next_observe {
            self.next_observe = self.elapsed() + self.params.observe_every;
            self.observe();
        }
    }

    /// Which nodes run, and their disks' versions: what the held set and the expected tree
    /// are computed from.
    fn state_key(&self) -> Vec<Option<u64>> {
        self.nodes.iter().map(|s| s.running.then(|| s.fs.version())).collect()
    }

    /// Every path a running node holds on its disk, with its ancestors.
    fn held_now(&self) -> BTreeSet<String> {
        let mut held = BTreeSet::new();
        for slot in self.nodes.iter().filter(|s| s.running) {
            for path in slot.cluster_entries().into_keys() {
                let mut p = path.as_str();
                while let Some(i) = p.rfind('/') {
                    p = &p[..i];
                    if !held.insert(p.to_string()) {
                        break;
                    }
                }
                held.insert(path);
            }
        }
        held
    }

    /// The paths held now; records when the others were last held (those that stopped being
    /// held since the last look, and those removed in between).
    fn mark_held(&mut self) -> Rc<BTreeSet<String>> {
        let now = self.elapsed();
        for slot in &self.nodes {
            for path in slot.fs.take_gone() {
                let path = if slot.mount.is_empty() { path } else { format!("{}/{path}", slot.mount) };
                let mut p = path.as_str();
                while let Some(i) = p.rfind('/') {
                    p = &p[..i];
                    self.last_held.insert(p.to_string(), now);
                }
                self.last_held.insert(path, now);
            }
        }
        let key = self.state_key();
        if key != self.held.0 {
            let held = Rc::new(self.held_now());
            for p in self.held.1.difference(&held) {
                self.last_held.insert(p.clone(), now);
            }
            self.held = (key, held);
        }
        self.held.1.clone()
    }

    /// How long after its last live holder let a path go a node may still list it: the stale
    /// bound of the parameters, with the slowest latency in effect (or lately in effect: what
    /// was sent then may still be on its way) in place of theirs.
    fn stale_bound(&mut self) -> Duration {
        let now = self.elapsed();
        let n = self.nodes.len();
        // After a cut, a node may take the partition's bound to drop what the other side let
        // go (with SWIM, longer than for a crash: see `Params::partition_bound`). Twice that
        // after the last cut, every node has dropped the other side's nodes, and what they let
        // go later is not listed anyway.
        let cut = self.last_cut.is_some_and(|t| now <= t + self.params.partition_bound(n) * 2);
        let base = if cut { self.params.partition_bound(n) } else { self.params.stale_bound(n) };
        let l = &mut self.latency;
        l.lowered.retain(|(lat, at)| now <= *at + *lat * 4 + base);
        let worst =
            l.global.into_iter().chain(l.links.values().copied()).chain(l.lowered.iter().map(|(d, _)| *d)).max();
        base + worst.map_or(Duration::ZERO, |w| w.saturating_sub(self.params.max_latency) * 4)
    }

    /// The look every `observe_every`: records what every node shows (for the determinism
    /// digest) and checks that nothing is listed long after its last live holder let it go.
    fn observe(&mut self) {
        let now = self.elapsed();
        let held = self.mark_held();
        let bound = self.stale_bound();
        let mut trouble = None;
        for (i, slot) in self.nodes.iter().enumerate() {
            let Some(shown) = slot.shown().filter(|_| slot.running) else { continue };
            mix(&mut self.trace, now.as_millis() as u64);
            mix(&mut self.trace, i as u64);
            mix(&mut self.trace, shown.hash);
            if trouble.is_some() {
                continue;
            }
            let mut unheld = slot.unheld.borrow_mut();
            let fresh = unheld.as_ref().is_some_and(|u| Rc::ptr_eq(&u.shown, &shown) && Rc::ptr_eq(&u.held, &held));
            if !fresh {
                let paths = shown.view.iter().filter(|(p, _)| !held.contains(*p));
                let paths = paths.map(|(p, o)| (p.clone(), o.clone())).collect();
                *unheld = Some(Unheld { shown: shown.clone(), held: held.clone(), paths });
            }
            for (path, owner) in unheld.iter().flat_map(|u| &u.paths) {
                let since = self.last_held.get(path).copied().unwrap_or(Duration::ZERO).max(self.last_release);
                if now.saturating_sub(since) > bound {
                    trouble = Some(format!(
                        "{} still lists {path:?} (owner {owner}), which no live node has held since {} \
                         (now {:.1}s, bound {:.1}s)",
                        slot.name,
                        self.last_held.get(path).map_or("ever".into(), |t| format!("{:.1}s", t.as_secs_f64())),
                        now.as_secs_f64(),
                        bound.as_secs_f64()
                    ));
                    break;
                }
            }
        }
        if let Some(t) = trouble {
            self.fail(&t);
        }
    }

    /// The tree every running node should show (of group 0, the only one most scenarios have).
    pub fn expected(&self) -> Rc<View> {
        self.expected_of(0)
    }

    /// The tree every running node of `group` should show: the conflict rule over its running
    /// members' disks.
    pub fn expected_of(&self, group: u8) -> Rc<View> {
        let key = self.state_key();
        let mut cache = self.expected.borrow_mut();
        let slot = cache.entry(group).or_default();
        if slot.0 != key || key.is_empty() {
            let trees: Vec<(String, BTreeMap<String, MemEntry>)> = self
                .nodes
                .iter()
                .filter(|s| s.running && s.group == group)
                .map(|s| (s.name.clone(), s.cluster_entries()))
                .collect();
            *slot = (key, Rc::new(oracle::expected(trees.iter().map(|(n, t)| (n.as_str(), t)))));
        }
        slot.1.clone()
    }

    /// The differences of every running node from the expected tree (empty when converged).
    pub fn differences(&self) -> Vec<String> {
        let mut out = Vec::new();
        for slot in self.nodes.iter().filter(|s| s.running) {
            let expected = self.expected_of(slot.group);
            match slot.shown() {
                None => out.push(format!("{}: not serving yet", slot.name)),
                Some(shown) if shown.view == *expected => {}
                Some(shown) => {
                    out.push(format!("{}: {}", slot.name, oracle::diff(&expected, &shown.view, 8).join("; ")))
                }
            }
        }
        out
    }

    /// With the network healed and no more changes, runs until every running node shows the
    /// expected tree and keeps showing it for `steady`; fails if that takes longer than
    /// `bound`. Returns how long convergence took (to the start of the steady stretch).
    ///
    /// For one peer timeout and a ping after the last fault, a node may still act on the
    /// silence before it (drop a peer whose answers were lost until the repair, then take it
    /// back at the next ping): the tree may come and go then. After that it must hold.
    pub fn converge(&mut self, bound: Duration, steady: Duration) -> Duration {
        let grace = self.params.peer_timeout + self.params.ping;
        self.converge_with(bound, steady, grace)
    }

    /// [`Cluster::converge`] with a chosen grace (zero when there was no fault).
    pub fn converge_with(&mut self, bound: Duration, steady: Duration, grace: Duration) -> Duration {
        let start = self.elapsed();
        self.note("quiet: waiting for convergence");
        let check_every = Duration::from_millis(50);
        let mut since: Option<Duration> = None;
        loop {
            let now = self.elapsed();
            let d = self.differences();
            match (d.is_empty(), since) {
                (true, None) => {
                    since = Some(now);
                    self.note(format!("converged after {:.2}s", (now - start).as_secs_f64()));
                }
                (false, Some(_)) if now - start > grace => {
                    self.fail(&format!("converged, then diverged:\n  {}", d.join("\n  ")));
                }
                (false, Some(_)) => {
                    since = None;
                    self.note("diverged again (within the grace after the last fault)");
                }
                _ => {}
            }
            match since {
                Some(t) if now - t >= steady && now - start >= grace => return t - start,
                None if now - start > bound => {
                    self.fail(&format!(
                        "not converged {:.1}s after the last fault:\n  {}",
                        bound.as_secs_f64(),
                        d.join("\n  ")
                    ));
                }
                _ => {}
            }
            self.run_for(check_every);
        }
    }

    /// Fails the run with the recent history.
    pub fn fail(&self, msg: &str) -> ! {
        let mut s = String::new();
        let _ = writeln!(s, "{msg}\nlast events (simulated seconds):");
        let skip = self.log.len().saturating_sub(60);
        for (t, e) in &self.log[skip..] {
            let _ = writeln!(s, "  {:>8.3} {e}", t.as_secs_f64());
        }
        panic!("{s}");
    }
}

fn parent_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(p, _)| p)
}

/// Something computed from the disks, with the state it was computed from ([`Cluster::state_key`]).
type Computed<T> = (Vec<Option<u64>>, Rc<T>);

/// The latencies a scenario set.
#[derive(Default)]
struct Latencies {
    /// On every link, when set.
    global: Option<Duration>,
    /// On single links (by node indexes, lower first).
    links: BTreeMap<(usize, usize), Duration>,
    /// Latencies replaced, and when: messages sent before may still be on the wire.
    lowered: Vec<(Duration, Duration)>,
}

const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

fn mix(h: &mut u64, v: u64) {
    mix_bytes(h, &v.to_le_bytes());
}

fn mix_bytes(h: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *h ^= u64::from(*b);
        *h = h.wrapping_mul(0x100_0000_01b3);
    }
    *h ^= 0xff;
    *h = h.wrapping_mul(0x100_0000_01b3);
}
