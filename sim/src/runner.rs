//! Runs a scenario over many seeds, in parallel, prints the distribution of its convergence
//! times, and reports failing seeds with the command that replays each.
//!
//! - default: `default_seeds` seeds starting at `SIM_SEED_BASE` (0);
//! - `SIM_SEEDS=<n>`: n seeds instead;
//! - `SIM_SEED=<n>`: that seed alone, with its panic message and (with `SIM_LOG=debug`) the
//!   daemons' logs;
//! - `SIM_THREADS=<n>`: seeds run on n threads (default: one per core).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What one seed's run measured.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Simulated time from the moment the scenario stopped changing anything (its last fault
    /// healed, its last node restarted, its last file changed) to the first look from which
    /// every running node showed the expected tree until the end of the run (see
    /// [`crate::Cluster::converge`]).
    pub converged: Option<Duration>,
    /// The longest `converged` the scenario accepts.
    pub bound: Option<Duration>,
    /// Digest of every look at every node: the same seed gives the same digest.
    pub trace: u64,
}

/// The distribution of the convergence times of a scenario's seeds, in simulated time.
#[derive(Clone, Debug, PartialEq)]
pub struct Convergence {
    /// Seeds that converged (the passing ones).
    pub seeds: usize,
    pub median: Duration,
    /// The 99th percentile (nearest rank: 99 % of the seeds took at most this).
    pub p99: Duration,
    pub max: Duration,
    /// The first seed that took `max`.
    pub max_seed: u64,
    /// The scenario's bound, the largest over the seeds.
    pub bound: Option<Duration>,
}

impl Convergence {
    /// `None` when no seed measured a convergence time.
    pub fn of<'a>(results: impl IntoIterator<Item = (u64, &'a Outcome)>) -> Option<Convergence> {
        let mut bound = None;
        let mut times: Vec<(Duration, u64)> = Vec::new();
        for (seed, o) in results {
            bound = bound.max(o.bound);
            if let Some(t) = o.converged {
                times.push((t, seed));
            }
        }
        // Ties in time go to the lower seed, so that `max_seed` is the first seed that took it.
        times.sort_by_key(|&(t, seed)| (t, std::cmp::Reverse(seed)));
        let rank = |p: usize| times[(times.len() * p).div_ceil(100).max(1) - 1].0;
        let &(max, max_seed) = times.last()?;
        Some(Convergence { seeds: times.len(), median: rank(50), p99: rank(99), max, max_seed, bound })
    }

    /// One line of the table the README describes.
    pub fn line(&self, test: &str) -> String {
        let s = |d: Duration| format!("{:.2}", d.as_secs_f64());
        format!(
            "convergence | {test} | {} seeds | median {} s | p99 {} s | max {} s (seed {}) | bound {}",
            self.seeds,
            s(self.median),
            s(self.p99),
            s(self.max),
            self.max_seed,
            self.bound.map_or("-".into(), |b| format!("{} s", s(b)))
        )
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    match v.trim().parse() {
        Ok(n) => Some(n),
        Err(_) => panic!("{name}={v:?} is not a number"),
    }
}

/// The message of a caught panic.
fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Runs `scenario` for every seed, prints how long convergence took (median, 99th percentile,
/// max); panics listing the failing seeds and their replay commands.
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
    let threads = env_u64("SIM_THREADS")
        .map(|n| n.max(1) as usize)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let workers = threads.min(count.max(1) as usize);
    // A long sweep says how far it got, every tenth of the way (seen with `--nocapture`).
    let tenth = |done: u64| if count >= 1000 { done * 10 / count } else { 0 };
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
                let r = catch_unwind(AssertUnwindSafe(|| scenario(seed))).map_err(panic_message);
                let mut results = results.lock().unwrap_or_else(|e| e.into_inner());
                results.push((seed, r));
                let done = results.len() as u64;
                if tenth(done) != tenth(done - 1) && done < count {
                    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
                    println!("{test}: {} of {count} seeds, {failed} failed, {:.0?}", results.len(), started.elapsed());
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(s, _)| *s);
    let failed: Vec<&(u64, Result<Outcome, String>)> = results.iter().filter(|(_, r)| r.is_err()).collect();
    println!(
        "{test}: {} seed(s) from {base}, {} failed, in {:.1?} on {workers} thread(s)",
        results.len(),
        failed.len(),
        started.elapsed()
    );
    if let Some(c) = Convergence::of(results.iter().filter_map(|(s, r)| Some((*s, r.as_ref().ok()?)))) {
        println!("{}", c.line(test));
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn outcome(t: Option<u64>) -> Outcome {
        Outcome { converged: t.map(ms), bound: Some(ms(7000)), trace: 0 }
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        // Seeds 0..200 took 1..=200 ms, in a shuffled order; seed 500 failed (no time).
        let mut outcomes: Vec<(u64, Outcome)> = (0..200).map(|s| (s, outcome(Some((s * 37) % 200 + 1)))).collect();
        outcomes.push((500, outcome(None)));
        let c = Convergence::of(outcomes.iter().map(|(s, o)| (*s, o))).expect("measured");
        assert_eq!(c.seeds, 200);
        assert_eq!(c.median, ms(100));
        assert_eq!(c.p99, ms(198));
        assert_eq!(c.max, ms(200));
        // (s * 37) % 200 == 199 for s = 27.
        assert_eq!(c.max_seed, 27);
        assert_eq!(c.bound, Some(ms(7000)));
        let line = c.line("t");
        assert!(line.contains("median 0.10 s | p99 0.20 s | max 0.20 s (seed 27) | bound 7.00 s"), "{line}");
    }

    #[test]
    fn one_seed_is_every_percentile_and_none_is_no_table() {
        let one = [(9, outcome(Some(1234)))];
        let c = Convergence::of(one.iter().map(|(s, o)| (*s, o))).expect("measured");
        assert_eq!((c.median, c.p99, c.max, c.max_seed), (ms(1234), ms(1234), ms(1234), 9));
        let none = [(1, outcome(None))];
        assert_eq!(Convergence::of(none.iter().map(|(s, o)| (*s, o))), None);
    }

    #[test]
    fn the_first_seed_with_the_longest_time_is_named() {
        let tied = [(4, outcome(Some(50))), (2, outcome(Some(50))), (3, outcome(Some(10)))];
        let c = Convergence::of(tied.iter().map(|(s, o)| (*s, o))).expect("measured");
        assert_eq!((c.max, c.max_seed), (ms(50), 2));
    }
}
