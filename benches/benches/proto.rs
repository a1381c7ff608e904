//! Micro-benchmark of the sans-IO core, `grid-proto`: two connections wired in
//! memory (see [`grid_benches::proto`]), driven directly.
//!
//! Workloads, each over one handshaken pair that lives for the whole benchmark:
//!
//! - `request/{32B,64KiB}/{x1,x64}`: request/response cycles with 1 call in
//!   flight, or 64 pipelined (open 64, deliver, answer all, deliver). Criterion
//!   reports cycles per second.
//! - `stream/{32B,64KiB}/w64`: one-way stream messages with a receive window of
//!   64 messages, read by the receiver as they arrive so credits flow back.
//!   An iteration is one window: 64 messages sent, delivered, read, and
//!   their credit returned. Criterion reports messages per second.
//!
//! Before criterion runs, an allocation pass runs each workload with the
//! counting allocator on and prints allocations per cycle or message, and a
//! quick single timed run of each that also gives payload bytes per second.
//! It is skipped with `--list`, `--profile-time` or `GRID_ALLOC_PASS=0`, and
//! shortened in test mode (`cargo test --benches`, `cargo bench -- --test`).
//!
//! Payloads are static `Bytes` (see [`grid_benches::proto::payload`]), so the
//! application's payload management costs nothing and every allocation counted
//! is the protocol core's.
//!
//! The 64 KiB workloads are sensitive to the allocator: with glibc's default
//! thresholds, freed large buffers go back to the kernel and are faulted in
//! again, and page faults can dominate. Running with
//! `GLIBC_TUNABLES=glibc.malloc.trim_threshold=4000000000:glibc.malloc.mmap_threshold=33554432`
//! shows the cost without that churn.
//!
//! Quick run: `cargo bench -p grid-benches --bench proto -- --quick`.
//! Profiling one workload: `... --bench proto -- --profile-time 10 request/32B/x64`,
//! or the plain loop of the `proto_loop` example (see its documentation).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use grid_benches::counting_alloc::{self, CountingAlloc, Counts};
use grid_benches::proto::{Shape, Workload};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

/// Small payload, in bytes.
const SMALL: usize = 32;
/// Large payload, in bytes.
const LARGE: usize = 64 * 1024;
/// Pipelined calls per round.
const DEPTH: usize = 64;
/// Stream receive window, in messages.
const WINDOW: u32 = 64;

/// The benchmarked workloads.
const SHAPES: [Shape; 6] = [
    Shape::Request {
        len: SMALL,
        in_flight: 1,
    },
    Shape::Request {
        len: SMALL,
        in_flight: DEPTH,
    },
    Shape::Request {
        len: LARGE,
        in_flight: 1,
    },
    Shape::Request {
        len: LARGE,
        in_flight: DEPTH,
    },
    Shape::Stream {
        len: SMALL,
        window: WINDOW,
    },
    Shape::Stream {
        len: LARGE,
        window: WINDOW,
    },
];

fn is_large(shape: Shape) -> bool {
    shape.payload_len() >= 4096
}

/// Cycles or messages run on a new workload before anything is measured, so
/// that buffers, maps, slabs and queues have reached their steady-state sizes.
fn warm_up_calls(shape: Shape) -> u64 {
    if is_large(shape) {
        2_000
    } else {
        20_000
    }
}

/// A new workload, warmed up.
fn build(shape: Shape) -> Workload {
    let mut workload = shape.build();
    workload.run_calls(warm_up_calls(shape));
    workload
}

// ----- allocation pass -----

/// What the allocation pass found for one workload.
struct AllocResult {
    shape: Shape,
    calls: u64,
    counts: Counts,
    elapsed: Duration,
}

fn alloc_pass_one(shape: Shape, calls: u64) -> AllocResult {
    let mut workload = build(shape);
    let (done, counts) = counting_alloc::measure(|| workload.run_calls(calls));
    // A second, timed run with counting off (counting costs atomics per allocation).
    let start = Instant::now();
    let timed = workload.run_calls(done);
    let elapsed = start.elapsed();
    assert_eq!(timed, done);
    AllocResult {
        shape,
        calls: done,
        counts,
        elapsed,
    }
}

fn si(value: f64) -> String {
    if value >= 1e9 {
        format!("{:.2} G", value / 1e9)
    } else if value >= 1e6 {
        format!("{:.2} M", value / 1e6)
    } else if value >= 1e3 {
        format!("{:.1} k", value / 1e3)
    } else {
        format!("{value:.0} ")
    }
}

fn label(shape: Shape) -> String {
    shape.name().replace('/', " ")
}

fn alloc_pass(scale: u64) {
    println!("== grid-proto allocation pass ==");
    println!(
        "counting allocator on; payloads are static Bytes (cloning them neither allocates \
         nor counts references), so every allocation counted is the protocol core's"
    );
    let mut results = Vec::new();
    for shape in SHAPES {
        let calls = if is_large(shape) { 10_000 } else { 100_000 } / scale;
        let result = alloc_pass_one(shape, calls.max(1));
        let per = result.counts.per(result.calls);
        println!(
            "allocs/call {}: {:.2}   (per {} over {}: {:.2} allocs + {:.2} reallocs, {:.2} frees, \
             {:.0} B requested, live heap {:+.1} B)",
            label(shape),
            per.allocs + per.reallocs,
            shape.unit(),
            result.calls,
            per.allocs,
            per.reallocs,
            per.frees,
            per.bytes,
            per.live_bytes,
        );
        results.push(result);
    }
    println!();
    println!(
        "single timed run of the same calls, counting off (criterion's figures below are the reference):"
    );
    println!(
        "{:<22} {:>10} {:>12} {:>14} {:>14}",
        "workload", "ns/call", "calls/s", "payload B/s", "payload MiB/s"
    );
    for r in &results {
        let secs = r.elapsed.as_secs_f64();
        let rate = r.calls as f64 / secs;
        let bytes = rate * r.shape.bytes_per_call() as f64;
        println!(
            "{:<22} {:>10.1} {:>12} {:>14} {:>14.1}",
            label(r.shape),
            secs * 1e9 / r.calls as f64,
            si(rate),
            format!("{}B/s", si(bytes)),
            bytes / (1024.0 * 1024.0),
        );
    }
    println!();
}

// ----- criterion -----

fn benchmarks(c: &mut Criterion) {
    for kind in ["request", "stream"] {
        let mut group = c.benchmark_group(kind);
        for shape in SHAPES.into_iter().filter(|s| s.kind() == kind) {
            group.throughput(Throughput::Elements(shape.calls_per_round()));
            if is_large(shape) {
                group.sampling_mode(SamplingMode::Flat).sample_size(20);
            } else {
                group.sampling_mode(SamplingMode::Auto).sample_size(50);
            }
            // Criterion calls the closure once per sample, and only when the
            // benchmark is selected: the workload is built on the first call
            // (filtered-out ones never are) and lives on across samples.
            let mut workload: Option<Workload> = None;
            group.bench_function(shape.variant(), |b| {
                let workload = workload.get_or_insert_with(|| build(shape));
                b.iter_custom(|rounds| {
                    let start = Instant::now();
                    workload.run_rounds(black_box(rounds));
                    start.elapsed()
                })
            });
        }
        group.finish();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    let skip = has("--list")
        || args.iter().any(|a| a.starts_with("--profile-time"))
        || std::env::var("GRID_ALLOC_PASS").is_ok_and(|v| v == "0");
    let test_mode = !has("--bench") || has("--test");
    if !skip {
        alloc_pass(if test_mode { 100 } else { 1 });
    }
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    benchmarks(&mut criterion);
    criterion.final_summary();
}
