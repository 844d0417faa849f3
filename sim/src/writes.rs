//! A client that writes and reads through random nodes while the scenario breaks the network,
//! and what it checks (issue 12's promise for writes, issue 18's for reads):
//!
//! - a write answered 2xx is on a disk when the answer arrives (PUT and MOVE: a disk holds the
//!   path with exactly the bytes sent; DELETE: one disk fewer holds the path), and after
//!   healing the copy that wins the conflict rule over every disk is the last one written;
//! - a write refused (4xx) changed nothing: every disk holds the paths it names as before;
//! - a write with no clear answer (5xx, a cut connection, no answer: the node crashed, or the
//!   owner it forwarded to went away) may have happened or not; its paths are then unsure and
//!   not checked after healing;
//! - a read answered 200 with a whole body gives bytes that were written to that path (one of
//!   the versions sent, or for the scenario's own files the made-up bytes of their size); a
//!   cut body must be visibly cut (shorter than announced, or a chunked body without its end),
//!   never a whole answer with wrong bytes.
//!
//! The client works in `w/`, which the scenario's own disk changes never touch, one request at
//! a time, so that every change under `w/` is one of its own. A path it has just written is
//! not written again for a second: the conflict rule orders by ctime in whole seconds, so two
//! copies of one second (possible during a partition) are ordered by node name, not by when
//! they were written.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::cluster::{Cluster, HTTP_PORT};
use crate::http::{self, Reply};
use crate::memfs::{made_up, MemEntry, MemFs};

/// The rules every node of the scenario runs with: the client's account writes everywhere,
/// anybody reads.
pub fn auth_flags() -> Vec<String> {
    vec!["--auth=writer:pw@/:rw".into(), "--auth=@/".into()]
}

/// `Basic` credentials of `writer:pw` (base64 of it).
const CREDENTIALS: &str = "Basic d3JpdGVyOnB3";

/// How long the client waits for one answer: longer than a node waits for the answer head of
/// an owner it forwards a bodiless request to (30 s), so that the node's own 502 comes first.
/// A forwarded upload whose owner went silent after `100 Continue` is answered only after 300 s
/// (`upstream::UPLOAD_ANSWER_TIMEOUT`, the time an owner may take to make a large file
/// durable); the client gives up before that, as people do, and counts the write as unsure.
/// (Turmoil's TCP does not retransmit: a segment dropped by a partition is lost for good.)
const ANSWER_LIMIT: Duration = Duration::from_secs(35);

/// What the client knows of one path.
#[derive(Clone, Debug)]
enum Known {
    File(Vec<u8>),
    Gone,
    /// A write to it had no clear answer.
    Unsure,
}

impl Known {
    /// What a path is after a removal answered 2xx that left `left` copies on the disks: gone
    /// for good when none is left; else a copy the answering node did not see (written on
    /// the other side of a partition) is still there, and comes back when the partition heals,
    /// since the protocol keeps no record of removals (sim/README.md, "Writes").
    fn after_removal(left: usize) -> Known {
        if left == 0 {
            Known::Gone
        } else {
            Known::Unsure
        }
    }
}

#[derive(Debug)]
struct PathState {
    known: Known,
    /// Every body ever sent to it (a read may return any of them).
    versions: Vec<Vec<u8>>,
    /// When it was last written (simulated, since the start).
    touched: Duration,
}

/// What the client did, for the scenario's summary.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tally {
    pub done: u32,
    pub refused: u32,
    pub unsure: u32,
    pub reads_whole: u32,
    pub reads_cut_or_failed: u32,
}

#[derive(Default)]
struct State {
    stop: bool,
    finished: bool,
    paths: BTreeMap<String, PathState>,
    failures: Vec<String>,
    log: Vec<(Duration, String)>,
    tally: Tally,
}

/// The handle the scenario keeps.
#[derive(Clone)]
pub struct Writes(Rc<RefCell<State>>);

impl Writes {
    /// Starts the client on its own host, against every node of `c`.
    pub fn start(c: &mut Cluster, seed: u64) -> Writes {
        let state = Rc::new(RefCell::new(State::default()));
        let nodes: Vec<(String, MemFs)> = c.nodes.iter().map(|s| (s.name.clone(), s.fs.clone())).collect();
        let client =
            Client { state: state.clone(), nodes, rng: SmallRng::seed_from_u64(seed ^ 0x77_72_69_74), serial: 0 };
        c.client("writer", client.run());
        Writes(state)
    }

    /// Asks the client to stop after the request it is making.
    pub fn stop(&self) {
        self.0.borrow_mut().stop = true;
    }

    pub fn finished(&self) -> bool {
        self.0.borrow().finished
    }

    pub fn tally(&self) -> Tally {
        self.0.borrow().tally
    }

    /// The first thing the client found wrong, with its recent requests.
    pub fn failure(&self) -> Option<String> {
        let s = self.0.borrow();
        let first = s.failures.first()?;
        Some(format!("{first}\nthe client's last requests:\n{}", s.recent()))
    }

    /// After convergence: every path whose last write was answered 2xx is, on the disks, as
    /// that write left it.
    pub fn check_after_healing(&self, c: &Cluster) -> Result<(), String> {
        let s = self.0.borrow();
        for (path, p) in &s.paths {
            let winner = winning_copy(c, path);
            let wrong = match (&p.known, &winner) {
                (Known::Unsure, _) => None,
                (Known::File(want), Some((node, got))) if got != want => Some(format!(
                    "{path}: the copy that wins is node {node}'s, {} bytes, not the {} bytes of the last write",
                    got.len(),
                    want.len()
                )),
                (Known::File(want), None) => Some(format!(
                    "{path}: no disk holds it, but its last write ({} bytes) was answered 2xx",
                    want.len()
                )),
                (Known::Gone, Some((node, got))) => Some(format!(
                    "{path}: removed with a 2xx and no copy left then, but node {node} holds {} bytes of it",
                    got.len()
                )),
                _ => None,
            };
            if let Some(w) = wrong {
                return Err(format!("{w}\nthe client's last requests:\n{}", s.recent()));
            }
        }
        Ok(())
    }
}

impl State {
    fn note(&mut self, what: String) {
        self.log.push((turmoil::elapsed(), what));
    }

    fn recent(&self) -> String {
        let skip = self.log.len().saturating_sub(25);
        self.log[skip..].iter().map(|(t, e)| format!("  {:>8.3} {e}\n", t.as_secs_f64())).collect()
    }

    fn fail(&mut self, what: String) {
        self.note(format!("WRONG: {what}"));
        self.failures.push(what);
    }
}

/// The copy of `path` the conflict rule picks over every disk, running or not: the greatest
/// `(ctime, node name)`.
fn winning_copy(c: &Cluster, path: &str) -> Option<(String, Vec<u8>)> {
    let copies = c.nodes.iter().filter_map(|s| Some((s.fs.get(path).filter(|e| !e.dir)?, s)));
    let (_, slot) = copies.max_by(|(a, x), (b, y)| (a.ctime, &x.name).cmp(&(b.ctime, &y.name)))?;
    Some((slot.name.clone(), slot.fs.bytes(path)?))
}

/// How every disk holds some paths: compared before and after a refused write.
type Holdings = Vec<(String, Option<MemEntry>, Option<Vec<u8>>)>;

enum Op {
    Put { path: String, body: Vec<u8> },
    Delete { path: String },
    Move { from: String, to: String },
    Mkcol { path: String },
    Get { path: String },
}

impl Op {
    fn paths(&self) -> Vec<&str> {
        match self {
            Op::Put { path, .. } | Op::Delete { path } | Op::Mkcol { path } | Op::Get { path } => vec![path],
            Op::Move { from, to } => vec![from, to],
        }
    }

    fn describe(&self) -> String {
        match self {
            Op::Put { path, body } => format!("PUT {path} ({} bytes)", body.len()),
            Op::Delete { path } => format!("DELETE {path}"),
            Op::Move { from, to } => format!("MOVE {from} -> {to}"),
            Op::Mkcol { path } => format!("MKCOL {path}"),
            Op::Get { path } => format!("GET {path}"),
        }
    }
}

struct Client {
    state: Rc<RefCell<State>>,
    nodes: Vec<(String, MemFs)>,
    rng: SmallRng,
    serial: u64,
}

impl Client {
    async fn run(mut self) -> turmoil::Result {
        loop {
            let pause = Duration::from_millis(self.rng.random_range(100..900));
            tokio::time::sleep(pause).await;
            if self.state.borrow().stop {
                break;
            }
            let op = self.choose();
            let node = self.nodes[self.rng.random_range(0..self.nodes.len())].0.clone();
            self.perform(&node, op).await;
        }
        self.state.borrow_mut().finished = true;
        Ok(())
    }

    /// A path written and then left alone for more than a second, or none.
    fn settled_file(&mut self) -> Option<String> {
        let now = turmoil::elapsed();
        let s = self.state.borrow();
        let files: Vec<&String> = s
            .paths
            .iter()
            .filter(|(_, p)| {
                matches!(p.known, Known::File(_)) && now.saturating_sub(p.touched) > Duration::from_millis(1100)
            })
            .map(|(path, _)| path)
            .collect();
        (!files.is_empty()).then(|| files[self.rng.random_range(0..files.len())].clone())
    }

    fn body(&mut self) -> Vec<u8> {
        let len = if self.rng.random_range(0..10) == 0 {
            self.rng.random_range(20_000..200_000)
        } else {
            self.rng.random_range(0..3000)
        };
        let stamp = format!("write {} of the client\n", self.serial);
        stamp.bytes().chain((0..len).map(|i| b'0' + (i % 10) as u8)).collect()
    }

    fn choose(&mut self) -> Op {
        self.serial += 1;
        let dir = format!("w/d{}", self.rng.random_range(0..3));
        let roll = self.rng.random_range(0..100);
        let settled = if (25..65).contains(&roll) { self.settled_file() } else { None };
        match (roll, settled) {
            (25..40, Some(path)) => {
                let body = self.body();
                Op::Put { path, body }
            }
            (40..52, Some(path)) => Op::Delete { path },
            (52..65, Some(from)) => Op::Move { from, to: format!("{dir}/m{}", self.serial) },
            (65..70, _) => Op::Mkcol { path: format!("w/k{}", self.serial) },
            (70.., _) => {
                let known: Vec<String> = self.state.borrow().paths.keys().cloned().collect();
                let path = match known.len() {
                    0 => "a/f1".to_string(),
                    n => known[self.rng.random_range(0..n)].clone(),
                };
                // Now and then a file of the scenario's, outside `w/`.
                let path =
                    if self.rng.random_range(0..4) == 0 { format!("a/f{}", self.rng.random_range(0..8)) } else { path };
                Op::Get { path }
            }
            _ => {
                let body = self.body();
                Op::Put { path: format!("{dir}/f{}", self.serial), body }
            }
        }
    }

    fn holdings(&self, paths: &[&str]) -> Holdings {
        let mut out = Vec::new();
        for (name, fs) in &self.nodes {
            for p in paths {
                out.push((format!("{name}:{p}"), fs.get(p), fs.bytes(p)));
            }
        }
        out
    }

    fn copies_of(&self, path: &str) -> usize {
        self.nodes.iter().filter(|(_, fs)| fs.get(path).is_some()).count()
    }

    fn holds_exactly(&self, path: &str, body: &[u8]) -> bool {
        self.nodes.iter().any(|(_, fs)| fs.bytes(path).as_deref() == Some(body))
    }

    async fn perform(&mut self, node: &str, op: Op) {
        let before = self.holdings(&op.paths());
        let copies_before = match &op {
            Op::Delete { path } => self.copies_of(path),
            _ => 0,
        };
        let auth = [("Authorization", CREDENTIALS.to_string())];
        let reply = match &op {
            Op::Put { path, body } => {
                http::request(node, HTTP_PORT, "PUT", &format!("/fs/{path}"), &auth, body, ANSWER_LIMIT).await
            }
            Op::Delete { path } => {
                http::request(node, HTTP_PORT, "DELETE", &format!("/fs/{path}"), &auth, b"", ANSWER_LIMIT).await
            }
            Op::Mkcol { path } => {
                http::request(node, HTTP_PORT, "MKCOL", &format!("/fs/{path}"), &auth, b"", ANSWER_LIMIT).await
            }
            Op::Move { from, to } => {
                let headers = [auth[0].clone(), ("Destination", format!("/fs/{to}")), ("Overwrite", "F".to_string())];
                http::request(node, HTTP_PORT, "MOVE", &format!("/fs/{from}"), &headers, b"", ANSWER_LIMIT).await
            }
            Op::Get { path } => {
                http::request(node, HTTP_PORT, "GET", &format!("/fs/{path}"), &[], b"", ANSWER_LIMIT).await
            }
        };
        let what = format!("{} via {node}: {}", op.describe(), summary(&reply));
        let now = turmoil::elapsed();
        let mut s = self.state.borrow_mut();
        s.note(what.clone());
        if let Op::Get { path } = &op {
            match &reply {
                Ok(r) if r.status == 200 && r.complete => {
                    s.tally.reads_whole += 1;
                    let written = s.paths.get(path).is_some_and(|p| p.versions.contains(&r.body));
                    let made_up = !path.starts_with("w/") && r.body == made_up(r.body.len() as u64);
                    if !written && !made_up {
                        s.fail(format!("{what}: {} bytes that were never written to {path}", r.body.len()));
                    }
                }
                _ => s.tally.reads_cut_or_failed += 1,
            }
            return;
        }
        let status = reply.as_ref().map_or(0, |r| r.status);
        let paths: Vec<String> = op.paths().into_iter().map(String::from).collect();
        match status {
            200..=299 => {
                s.tally.done += 1;
                match op {
                    Op::Put { path, body } => {
                        if !self.holds_exactly(&path, &body) {
                            s.fail(format!("{what}: answered {status}, but no disk holds {path} with the bytes sent"));
                        }
                        s.record(path, Known::File(body.clone()), Some(body), now);
                    }
                    Op::Delete { path } => {
                        let left = self.copies_of(&path);
                        if left >= copies_before {
                            s.fail(format!("{what}: answered {status}, but as many disks hold {path} as before"));
                        }
                        s.record(path, Known::after_removal(left), None, now);
                    }
                    Op::Move { from, to } => {
                        // The copy the answering node saw moved; during a partition that may be
                        // an older one than the client wrote last.
                        let landed = self.nodes.iter().find_map(|(_, fs)| fs.bytes(&to));
                        let versions = s.paths.get(&from).map(|p| p.versions.clone()).unwrap_or_default();
                        match landed {
                            Some(b) if versions.contains(&b) => {
                                s.record(to.clone(), Known::File(b.clone()), Some(b), now);
                            }
                            Some(b) => {
                                s.fail(format!(
                                    "{what}: answered {status}, but {to} holds {} bytes never written to {from}",
                                    b.len()
                                ));
                            }
                            None => s.fail(format!("{what}: answered {status}, but no disk holds {to}")),
                        }
                        if let Some(p) = s.paths.get_mut(&to) {
                            p.versions.extend(versions);
                        }
                        let left = self.copies_of(&from);
                        s.record(from, Known::after_removal(left), None, now);
                    }
                    Op::Mkcol { path } => {
                        if !self.nodes.iter().any(|(_, fs)| fs.get(&path).is_some_and(|e| e.dir)) {
                            s.fail(format!("{what}: answered {status}, but no disk holds the directory {path}"));
                        }
                    }
                    Op::Get { .. } => {}
                }
            }
            400..=499 => {
                s.tally.refused += 1;
                if self.holdings(&op.paths()) != before {
                    s.fail(format!("{what}: refused, but the disks changed under {}", paths.join(" and ")));
                }
            }
            _ => {
                s.tally.unsure += 1;
                for p in &paths {
                    let sent = if let Op::Put { body, .. } = &op { Some(body.clone()) } else { None };
                    s.record(p.clone(), Known::Unsure, sent, now);
                }
                // A moved file may be at either place: what a read of the new name gets.
                if let Op::Move { from, to } = &op {
                    let versions = s.paths.get(from).map(|p| p.versions.clone()).unwrap_or_default();
                    if let Some(p) = s.paths.get_mut(to) {
                        p.versions.extend(versions);
                    }
                }
            }
        }
    }
}

impl State {
    fn record(&mut self, path: String, known: Known, sent: Option<Vec<u8>>, now: Duration) {
        let p = self.paths.entry(path).or_insert(PathState { known: Known::Gone, versions: Vec::new(), touched: now });
        // A MOVE carries the source's versions along (see `perform`); here only the bytes sent.
        p.known = known;
        p.touched = now;
        if let Some(b) = sent {
            p.versions.push(b);
        }
    }
}

fn summary(reply: &Result<Reply, String>) -> String {
    match reply {
        Ok(r) => {
            let reason = String::from_utf8_lossy(&r.body[..r.body.len().min(80)]).replace('\n', " ");
            let cut = if r.complete { "" } else { " (cut)" };
            if r.status < 300 {
                format!("{}{cut}, {} bytes", r.status, r.body.len())
            } else {
                format!("{}{cut} {reason}", r.status)
            }
        }
        Err(e) => format!("no answer: {e}"),
    }
}
