//! Runs a scenario over many seeds, in parallel, and reports failing seeds with the command that
//! replays each.
//!
//! - default: `default_seeds` seeds starting at `SIM_SEED_BASE` (0);
//! - `SIM_SEEDS=<n>`: n seeds instead;
//! - `SIM_SEED=<n>`: that seed alone, with its panic message and (with `SIM_LOG=debug`) the
//!   daemons' logs.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What one seed's run measured.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Time from the last fault (or the start) to convergence, simulated.
    pub converged: Option<Duration>,
    /// Digest of every look at every node: the same seed gives the same digest.
    pub trace: u64,
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    match v.trim().parse() {
        Ok(n) => Some(n),
        Err(_) => panic!("{name}={v:?} is not a number"),
    }
}

/// Runs `scenario` for every seed; panics listing the failing seeds and their replay commands.
pub fn run_seeds(test: &str, default_seeds: u64, scenario: fn(u64) -> Outcome) -> Vec<(u64, Outcome)> {
    if let Some(seed) = env_u64("SIM_SEED") {
        let started = Instant::now();
        let outcome = scenario(seed);
        println!(
            "{test}: seed {seed} passed in {:.1?} (converged after {}, trace {:016x})",
            started.elapsed(),
            outcome.converged.map_or("-".into(), |d| format!("{:.2}s", d.as_secs_f64())),
            outcome.trace
        );
        return vec![(seed, outcome)];
    }
    let count = env_u64("SIM_SEEDS").unwrap_or(default_seeds);
    let base = env_u64("SIM_SEED_BASE").unwrap_or(0);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).min(count.max(1) as usize);
    let next = AtomicU64::new(base);
    let results: Mutex<Vec<(u64, Result<Outcome, String>)>> = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= base + count {
                    return;
                }
                let r = catch_unwind(AssertUnwindSafe(|| scenario(seed))).map_err(|p| {
                    p.downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "a panic without a message".into())
                });
                results.lock().unwrap_or_else(|e| e.into_inner()).push((seed, r));
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(s, _)| *s);
    let mut times: Vec<(Duration, u64)> =
        results.iter().filter_map(|(s, r)| r.as_ref().ok()?.converged.map(|d| (d, *s))).collect();
    times.sort();
    let stats = match (times.first(), times.get(times.len() / 2), times.last()) {
        (Some(min), Some(med), Some(max)) => format!(
            "; convergence after the last fault: min {:.2}s, median {:.2}s, max {:.2}s (seed {})",
            min.0.as_secs_f64(),
            med.0.as_secs_f64(),
            max.0.as_secs_f64(),
            max.1
        ),
        _ => String::new(),
    };
    let failed: Vec<&(u64, Result<Outcome, String>)> = results.iter().filter(|(_, r)| r.is_err()).collect();
    println!(
        "{test}: {} seed(s) from {base}, {} failed, in {:.1?}{stats}",
        results.len(),
        failed.len(),
        started.elapsed()
    );
    if !failed.is_empty() {
        let mut msg = format!("{test}: {} of {} seed(s) failed\n", failed.len(), results.len());
        for (seed, r) in failed.iter().take(5) {
            let why = r.as_ref().err().map_or("", String::as_str);
            msg.push_str(&format!("\n--- seed {seed}: {why}\n"));
        }
        msg.push_str("\nreplay with:\n");
        for (seed, _) in &failed {
            msg.push_str(&format!("  SIM_SEED={seed} cargo test -p sim {test}\n"));
        }
        panic!("{msg}");
    }
    results.into_iter().map(|(s, r)| (s, r.unwrap_or_default())).collect()
}
