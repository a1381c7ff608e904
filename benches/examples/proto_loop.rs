//! One workload of the `proto` micro-benchmark in a plain loop, for profilers.
//!
//! ```text
//! cargo build --profile bench -p grid-benches --example proto_loop
//! target/release/examples/proto_loop request/32B/x64 1000000
//! valgrind --tool=callgrind --toggle-collect='proto_loop::measured' \
//!     target/release/examples/proto_loop request/32B/x64 100000
//! perf record -g target/release/examples/proto_loop request/32B/x64 20000000
//! ```
//!
//! Arguments: a workload name as the benchmark names it (`request/32B/x1`,
//! `request/64KiB/x64`, `stream/32B/w64`, …) and the number of cycles or
//! messages to measure (default 1 000 000), run after a warm-up of a tenth as
//! many. Prints the time per call; under a profiler, only [`measured`] matters.

use std::time::Instant;

use grid_benches::proto::{Shape, Workload};

/// The measured loop, kept out of line so profilers can select it.
#[inline(never)]
fn measured(workload: &mut Workload, calls: u64) -> u64 {
    workload.run_calls(calls)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "request/32B/x64".to_owned());
    let Some(shape) = Shape::parse(&name) else {
        eprintln!("unknown workload {name:?}; try request/32B/x64 or stream/64KiB/w64");
        std::process::exit(2);
    };
    let calls: u64 = match args.next().map(|n| n.parse()) {
        None => 1_000_000,
        Some(Ok(n)) => n,
        Some(Err(error)) => {
            eprintln!("bad call count: {error}");
            std::process::exit(2);
        }
    };
    let mut workload = shape.build();
    workload.run_calls(calls / 10);
    let start = Instant::now();
    let done = measured(&mut workload, calls);
    let elapsed = start.elapsed();
    println!(
        "{}: {done} {}s in {elapsed:?}, {:.1} ns/{}, {:.0} {}s/s",
        shape.name(),
        shape.unit(),
        elapsed.as_secs_f64() * 1e9 / done as f64,
        shape.unit(),
        done as f64 / elapsed.as_secs_f64(),
        shape.unit(),
    );
}
