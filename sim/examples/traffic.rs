//! The cluster traffic per node per minute (simulated) at N = 20, 50, 100, 200: membership
//! (greetings, joins, SWIM, multicast announcements) and anti-entropy (updates, digests),
//! messages and bytes, at rest and with file changes, for each protocol given by flags, side by
//! side in the same run. Read from every node's own counters (`dftp_cluster_*`).
//!
//!     cargo run -p sim --release --example traffic
//!     TRAFFIC_NODES=20,50 TRAFFIC_PROTOCOLS='old=--anti-entropy=full --membership=ping;new=' \
//!         cargo run -p sim --release --example traffic
//!
//! - `TRAFFIC_NODES`: the cluster sizes (default `20,50,100,200`);
//! - `TRAFFIC_PROTOCOLS`: `name=flags` separated by `;`, the flags given to every node (default
//!   `old=--membership=ping --anti-entropy=full;new=--membership=swim --anti-entropy=digest`: the
//!   original's full mesh beside ours, SWIM probing at the daemon's default 1 s);
//! - `TRAFFIC_SEED`: the seed (0).
//!
//! The nodes run at the daemon's default intervals (ping 10 s, peer timeout 30 s, announcements
//! every 55 s, multicast on; each node also joins one of three seeds) except the full updates,
//! every 60 s instead of every hour, so that a minute holds one round of them: at the default,
//! divide the full updates' share by 60. Each node holds 10 files of its own. After the cluster
//! has formed and a full-update interval has passed, one minute at rest is measured, then one
//! minute with a change on a random node every second.

use std::time::{Duration, Instant};

use sim::cluster::Params;
use sim::scale::{self, Scale};

fn main() {
    let nodes: Vec<usize> = std::env::var("TRAFFIC_NODES")
        .unwrap_or_else(|_| "20,50,100,200".into())
        .split(',')
        .map(|n| n.trim().parse().expect("TRAFFIC_NODES: numbers separated by commas"))
        .collect();
    let protocols: Vec<(String, Vec<String>)> = std::env::var("TRAFFIC_PROTOCOLS")
        .unwrap_or_else(|_| {
            "old=--membership=ping --anti-entropy=full;new=--membership=swim --anti-entropy=digest".into()
        })
        .split(';')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let (name, flags) = p.split_once('=').unwrap_or((p, ""));
            (name.trim().to_string(), flags.split_whitespace().map(String::from).collect())
        })
        .collect();
    let seed: u64 = std::env::var("TRAFFIC_SEED").ok().map_or(0, |s| s.parse().expect("TRAFFIC_SEED: a number"));
    let params = Params {
        ping: Duration::from_secs(10),
        peer_timeout: Duration::from_secs(30),
        full_update: Duration::from_secs(60),
        announce: Duration::from_secs(55),
        discovery: true,
        ..Params::default()
    };
    println!("Per node per simulated minute; bytes are those of the messages sent and of the answers to them.");
    println!("Full updates every 60 s here (default 1 h: divide their share by 60).\n");
    println!(
        "| N | protocol | changes | membership msg | membership bytes | anti-entropy msg | anti-entropy bytes | formed (s) | wall (s) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for &n in &nodes {
        for (name, flags) in &protocols {
            let started = Instant::now();
            let flags = flags.clone();
            let s = Scale { nodes: n, flags, params: params.clone(), files: 10, seeds: 3 };
            let m = scale::measure(seed, &s, Duration::from_secs(60), Duration::from_secs(1));
            let wall = started.elapsed().as_secs_f64();
            for (changes, t) in [("none", &m.at_rest), ("1/s", &m.with_changes)] {
                let (membership, anti_entropy) = scale::split(t);
                let per = |x: u64| x as f64 / n as f64;
                println!(
                    "| {n} | {name} | {changes} | {:.1} | {:.0} | {:.1} | {:.0} | {:.1} | {wall:.0} |",
                    per(membership.messages),
                    per(membership.bytes),
                    per(anti_entropy.messages),
                    per(anti_entropy.bytes),
                    m.formed.as_secs_f64(),
                );
            }
            for (changes, t) in [("none", &m.at_rest), ("1/s", &m.with_changes)] {
                eprintln!("N={n} {name} {changes}:{}", scale::describe(t, n, m.window, Duration::from_secs(60)));
            }
        }
    }
}
