//! The merged tree at scale: a 1,000,000-file full update, applied through the node and
//! directly to the tree, then a snapshot, a 1,000-entry listing and a walk of `find("")`.
//!
//! Run with `cargo bench -p dftp-core --bench tree`. The target: 1M files applied in at
//! most 2 s. Heap per file is measured by the `heap` bench target.
//!
//! On a shared machine (other builds running), wall time says more about the neighbours than
//! about the code: `DFTP_BENCH_CLOCK=cpu cargo bench -p dftp-core --bench tree` measures the
//! bench thread's CPU time instead (Linux).

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{BatchSize, Criterion, SamplingMode, Throughput};
use dftp_core::{Config, Event, Greeting, Node, PeerAddr, Time, Tree};

mod common;

fn now() -> Time {
    Time::from_secs(1_800_000_000)
}

/// A node that knows [`common::SENDER`], so that it accepts the sender's updates.
fn node_knowing_sender() -> Node {
    let addr = |port| PeerAddr::new_unchecked("127.0.0.1", port);
    let mut node = Node::new(Config::new("node-a", "bench", addr(7040), addr(7041), 1), now());
    let greeting = Greeting {
        name: common::SENDER.into(),
        public_addr: addr(8040),
        mgmt_addr: addr(8041),
        request_full_update: false,
    };
    node.handle(now(), Event::GreetingReceived { greeting, from_host: None });
    assert!(node.peers().contains_key(common::SENDER));
    node
}

fn apply<M: Measurement>(c: &mut Criterion<M>, clock: &str) {
    let items = common::items();
    let update = common::full_update(&items);
    let mut g = c.benchmark_group(format!("apply_1m{clock}"));
    g.sampling_mode(SamplingMode::Flat).sample_size(10).warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(items.len() as u64));

    // What `POST /update/` costs once parsed: checks, path parsing, sort, merge.
    g.bench_function("node_update_received", |b| {
        b.iter_batched(
            || (node_knowing_sender(), update.clone()),
            |(mut node, update)| {
                let actions = node.handle(now(), Event::UpdateReceived(update));
                (node, actions)
            },
            BatchSize::PerIteration,
        )
    });

    // The merge alone.
    g.bench_function("tree_replace_view", |b| {
        b.iter_batched(
            || {
                let mut tree = Tree::new();
                let id = tree.intern(common::SENDER);
                (tree, id, items.clone())
            },
            |(mut tree, id, items)| {
                let changes = tree.replace_view(id, items);
                (tree, changes)
            },
            BatchSize::PerIteration,
        )
    });

    // The hourly full update that changes nothing: the steady state.
    let mut base = Tree::new();
    let id = base.intern(common::SENDER);
    base.replace_view(id, items.clone());
    g.bench_function("tree_replace_view_unchanged", |b| {
        b.iter_batched(
            || (base.clone(), items.clone()),
            |(mut tree, items)| {
                let changes = tree.replace_view(id, items);
                assert!(changes.is_empty());
                (tree, changes)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn queries<M: Measurement>(c: &mut Criterion<M>, clock: &str) {
    let mut node = node_knowing_sender();
    let items = common::items();
    let total = items.len();
    node.handle(now(), Event::UpdateReceived(common::full_update(&items)));
    drop(items);
    let snap = node.snapshot(now());
    let dir = common::list_dir();
    assert_eq!(snap.list(&dir).unwrap().len(), common::FILES_PER_DIR);
    let everything = snap.find("").count();
    assert!(everything >= total, "{everything} < {total}");

    let mut g = c.benchmark_group(format!("queries_1m{clock}"));
    g.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    g.bench_function("snapshot", |b| b.iter(|| black_box(node.snapshot(now()))));
    g.throughput(Throughput::Elements(common::FILES_PER_DIR as u64));
    g.bench_function("list_1000_entry_dir", |b| b.iter(|| black_box(snap.list(black_box(&dir)))));
    g.throughput(Throughput::Elements(everything as u64));
    g.bench_function("find_all", |b| b.iter(|| snap.find(black_box("")).fold(0usize, |n, p| n + p.as_str().len())));
    g.finish();
}

fn main() {
    if std::env::var("DFTP_BENCH_CLOCK").is_ok_and(|v| v == "cpu") {
        let mut c = Criterion::default().with_measurement(ThreadCpuTime).configure_from_args();
        apply(&mut c, "_cpu");
        queries(&mut c, "_cpu");
        c.final_summary();
    } else {
        let mut c = Criterion::default().configure_from_args();
        apply(&mut c, "");
        queries(&mut c, "");
        c.final_summary();
    }
}

/// CPU time of the benchmarking thread, in nanoseconds: what the code costs, whatever else
/// runs on the machine.
struct ThreadCpuTime;

#[cfg(target_os = "linux")]
fn thread_cpu_nanos() -> u64 {
    #[repr(C)]
    struct Timespec {
        sec: i64,
        nsec: i64,
    }
    unsafe extern "C" {
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut t = Timespec { sec: 0, nsec: 0 };
    // SAFETY: `t` is a valid, writable timespec; this clock exists on every Linux.
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    t.sec as u64 * 1_000_000_000 + t.nsec as u64
}

#[cfg(not(target_os = "linux"))]
fn thread_cpu_nanos() -> u64 {
    panic!("DFTP_BENCH_CLOCK=cpu needs Linux")
}

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_nanos()
    }

    fn end(&self, start: u64) -> u64 {
        thread_cpu_nanos().saturating_sub(start)
    }

    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }

    fn zero(&self) -> u64 {
        0
    }

    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (div, unit) = match typical {
            t if t < 1e3 => (1.0, "ns cpu"),
            t if t < 1e6 => (1e3, "µs cpu"),
            t if t < 1e9 => (1e6, "ms cpu"),
            _ => (1e9, "s cpu"),
        };
        values.iter_mut().for_each(|v| *v /= div);
        unit
    }

    fn scale_throughputs(&self, _typical: f64, throughput: &Throughput, values: &mut [f64]) -> &'static str {
        let (n, unit) = match *throughput {
            Throughput::Elements(n) => (n as f64, "Kelem/s cpu"),
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) => (n as f64, "KB/s cpu"),
            Throughput::Bits(n) => (n as f64, "Kb/s cpu"),
            _ => (1.0, "K/s cpu"),
        };
        values.iter_mut().for_each(|v| *v = n * 1e9 / *v / 1e3);
        unit
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}
