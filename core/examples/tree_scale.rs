//! Memory and CPU per path of the merged tree at scale, through the same code path as
//! `POST /update/`: each peer's full update is serialised to JSON, parsed by [`UpdateParser`] in
//! 64 KiB chunks, and applied by [`Node::handle`] (`Event::UpdateReceived`).
//!
//!   cargo run --release -p dftp-core --example tree_scale -- TOTAL_PATHS [ROUNDS]
//!
//! The tree is built from full updates of 500,000 files each from as many peers as it takes,
//! then one more peer (the measured one) sends a full update of 1,000,000 files. Reported:
//! - resident memory (VmRSS of /proc/self/status) and live allocator bytes (a counting global
//!   allocator) per path, before and after, with every update body freed;
//! - CPU time (of this single thread, /proc/thread-self/schedstat, nanoseconds) of parsing the
//!   measured update and of applying it: `first` (a new peer: every path is new), `repeat` (the
//!   same full update again: the hourly full update when nothing changed), `drop` (an empty full
//!   update, the peer's view emptied). Best of ROUNDS (the first round is the one measured for
//!   memory; later rounds empty and refill the view).
//!
//! The shape: peer `nodeNNN` holds `nodeNNN/dirDDDD/...` directories of 250 files at four depths
//! (`dirDDDD/`, `dirDDDD/sub/`, `dirDDDD/sub/deeper-DDDDD/`, `projects/dirDDDD/src/module_MMM/`),
//! names `file-NNNNNN.dat` (3 in 5), `NNNNNN.c` (1 in 5) and a 42-byte
//! `generated_protocol_bindings_NNNNNNN.tar.gz` (1 in 5); every directory is listed too, as a
//! node's full update lists them, and each update is sorted by path (as ours are sent).
//!
//! Nothing is asserted about times: the machine is shared. Output lines are `key: value` for
//! `bench/scale.sh`.

use std::collections::BTreeMap;

use dftp_core::{
    Action, Config, Event, FileInfo, FileMode, Greeting, Node, Notice, PeerAddr, Time, Update, UpdateParser,
};
use smol_str::SmolStr;

#[path = "../benches/common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::live;

const PER_PEER: usize = 500_000;
const MEASURED: usize = 1_000_000;
const FILES_PER_DIR: usize = 250;
const CHUNK: usize = 64 * 1024;

fn rss_bytes() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
    let kb: i64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("VmRSS value");
    kb * 1024
}

/// CPU time of this thread, in nanoseconds (the benchmark is single-threaded).
fn cpu_ns() -> u64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").expect("/proc/thread-self/schedstat");
    s.split_whitespace().next().and_then(|v| v.parse().ok()).expect("schedstat")
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let start = cpu_ns();
    let out = f();
    (out, (cpu_ns() - start) as f64 / 1e9)
}

/// A deterministic stand-in for random numbers (SplitMix64).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d049bb133111eb);
    x ^ (x >> 31)
}

/// Peer `peer`'s `files` files and their directories, sorted by path: (path, is a directory).
fn peer_paths(peer: usize, files: usize) -> Vec<(String, bool)> {
    let root = format!("node{peer:03}");
    let mut out: BTreeMap<String, bool> = BTreeMap::new();
    let add_dirs = |dir: &str, out: &mut BTreeMap<String, bool>| {
        let mut d = dir;
        loop {
            out.insert(d.to_string(), true);
            match d.rfind('/') {
                Some(i) => d = &d[..i],
                None => break,
            }
        }
    };
    for d in 0..files.div_ceil(FILES_PER_DIR) {
        let dir = match d % 4 {
            0 => format!("{root}/dir{d:04}"),
            1 => format!("{root}/dir{d:04}/sub"),
            2 => format!("{root}/dir{d:04}/sub/deeper-{d:05}"),
            _ => format!("{root}/projects/dir{d:04}/src/module_{:03}", d % 97),
        };
        add_dirs(&dir, &mut out);
        for i in d * FILES_PER_DIR..((d + 1) * FILES_PER_DIR).min(files) {
            let name = match i % 5 {
                3 => format!("{i:06}.c"),
                4 => format!("generated_protocol_bindings_{i:07}.tar.gz"),
                _ => format!("file-{i:06}.dat"),
            };
            out.insert(format!("{dir}/{name}"), false);
        }
    }
    out.into_iter().collect()
}

fn body(peer: &str, paths: &[(String, bool)], full: bool) -> Vec<u8> {
    let files = paths
        .iter()
        .enumerate()
        .map(|(i, (p, dir))| {
            let r = mix(i as u64 ^ (p.len() as u64) << 40);
            let t = 1_700_000_000 + (r % 50_000_000) as i64;
            FileInfo {
                full_name: SmolStr::new(p),
                dir: *dir,
                last_modified: t,
                last_info_updated: t + (r >> 60) as i64,
                size_in_bytes: if *dir { 0 } else { (r >> 20) % 100_000_000 },
                file_mode: if *dir { FileMode::dir(0o755) } else { FileMode::file(0o644) },
                owner_node: SmolStr::new(peer),
                deletion: false,
            }
        })
        .collect::<Vec<FileInfo>>();
    // Written field by field, not from an `Update`, so that the same example builds at an older
    // commit whose `Update` has other fields (bench/scale.sh builds it there too).
    let mut out =
        format!(r#"{{"SenderNodeName":{peer:?},"Full":{full},"UpdateTime":1800000000,"Epoch":1,"Seq":0,"Files":"#)
            .into_bytes();
    out.extend(serde_json::to_vec(&files).expect("records serialize"));
    out.push(b'}');
    out
}

fn parse(body: &[u8]) -> Update {
    let mut p = UpdateParser::new();
    for chunk in body.chunks(CHUNK) {
        p.push(chunk).expect("a valid body");
    }
    p.finish().expect("a valid body")
}

/// Applies `update` and returns how many paths changed.
fn apply(node: &mut Node, now: Time, update: Update) -> usize {
    let actions = node.handle(now, Event::UpdateReceived(update));
    let applied = actions.iter().find_map(|a| match a {
        Action::Notice(Notice::UpdateApplied { changed, rejected, .. }) => Some((*changed, *rejected)),
        _ => None,
    });
    let (changed, rejected) = applied.expect("the update was applied");
    assert_eq!(rejected, 0);
    changed
}

fn main() {
    let mut args = std::env::args().skip(1);
    let total: usize = args.next().and_then(|a| a.replace('_', "").parse().ok()).unwrap_or(1_000_000);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let measured = MEASURED.min(total);
    let others = (total - measured).div_ceil(PER_PEER);

    let addr = |port| PeerAddr::new_unchecked("127.0.0.1", port);
    let now = Time::from_secs(1_800_000_000);
    let mut node = Node::new(Config::new("me", "bench", addr(7040), addr(7041), 1), now);
    let names: Vec<String> = (0..=others).map(|p| format!("node{p:03}")).collect();
    for (i, name) in names.iter().enumerate() {
        let port = 8000 + 2 * i as u16;
        let greeting = Greeting {
            name: name.as_str().into(),
            public_addr: addr(port),
            mgmt_addr: addr(port + 1),
            request_full_update: false,
        };
        node.handle(now, Event::GreetingReceived { greeting, from_host: None });
    }
    let (rss0, live0) = (rss_bytes(), live());

    let mut paths = 0;
    let mut left = total - measured;
    for name in &names[1..] {
        let files = left.min(PER_PEER);
        left -= files;
        let listed = peer_paths(names.iter().position(|n| n == name).unwrap(), files);
        let update = parse(&body(name, &listed, true));
        let n = listed.len();
        drop(listed);
        assert_eq!(apply(&mut node, now, update), n, "a new peer's every path changes");
        paths += n;
    }
    let others_paths = paths;

    let me = &names[0];
    let listed = peer_paths(0, measured);
    let measured_paths = listed.len();
    let full = body(me, &listed, true);
    let empty = body(me, &[], true);
    drop(listed);
    let mut best = BTreeMap::<&str, f64>::new();
    let mut note = |key: &'static str, secs: f64| {
        let b = best.entry(key).or_insert(f64::INFINITY);
        *b = b.min(secs);
    };
    let mut memory = None;
    for round in 0..rounds {
        if round > 0 {
            let (changed, secs) = timed(|| apply(&mut node, now, parse(&empty)));
            assert_eq!(changed, measured_paths);
            note("apply_drop", secs);
        }
        let (update, secs) = timed(|| parse(&full));
        note("parse", secs);
        let (changed, secs) = timed(|| apply(&mut node, now, update));
        assert_eq!(changed, measured_paths, "a new peer's every path changes");
        note("apply_first", secs);
        if round == 0 {
            // The bodies are still allocated: count them out.
            let held = (full.capacity() + empty.capacity()) as i64;
            memory = Some((rss_bytes() - held, live() as i64 - held));
        }
        let update = parse(&full);
        let (changed, secs) = timed(|| apply(&mut node, now, update));
        assert_eq!(changed, 0, "the same full update changes nothing");
        note("apply_repeat", secs);
    }
    let (rss1, live1) = memory.expect("at least one round");
    let paths = others_paths + measured_paths;
    println!("paths: {paths} ({} peers of {PER_PEER} files + 1 of {measured}, with their directories)", others);
    println!("measured_update_paths: {measured_paths}");
    println!("rss_bytes_per_path: {:.1}", (rss1 - rss0) as f64 / paths as f64);
    println!("heap_bytes_per_path: {:.1}", (live1 - live0 as i64) as f64 / paths as f64);
    for (key, secs) in best {
        println!("{key}_cpu_s: {secs:.3}");
    }
    drop(node);
}
