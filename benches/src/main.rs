//! `grid-benches`: the end-to-end comparison of grid against raw TCP, tonic
//! and tarpc on loopback (DESIGN.md §6), and the many-node mesh benchmark.
//!
//! ```text
//! cargo run --release -p grid-benches --features compare -- compare           # about 3 minutes
//! cargo run --release -p grid-benches --features compare -- compare --quick   # under a minute
//! cargo run --release -p grid-benches --features compare -- compare --help    # all options
//! ```
//!
//! Headline rows measure what users run: every caller a task of its own,
//! every setting at its default; extra rows say in their label what differs.
//! Progress goes to stderr, one line per point; the table (every figure with
//! its ratio to raw TCP, tonic and tarpc measured in the same run, then the
//! DESIGN.md targets) and one JSON line per point go to stdout, or the JSON to
//! `--json FILE`. `--only TEXT` runs the points whose label contains TEXT,
//! e.g. `--only grid-tokio --only raw-tcp`; `--repeat N` keeps the median of N
//! runs per point (split-topology figures can be bimodal between runs).
//!
//! Read ratios within one run, never absolute figures across runs: the
//! *single* topology reproduces within about 5 % from run to run, the *split*
//! one does not (its one-in-flight points measure cross-core wake-ups). Points
//! measured while other processes were busy are marked `[others: ..]`.
//!
//! The binary needs the `compare` feature, which brings in tonic, tarpc,
//! async-std and their dependencies; `cargo build --workspace` and
//! `cargo test --workspace` build none of them. The code is in the
//! library's `compare` module.
//!
//! ```text
//! cargo run --release -p grid-benches --features compare -- mesh-scale [--nodes 8,32,128] [--quick]
//! ```
//!
//! runs full meshes of grid-tokio nodes in one process: connect time, file
//! descriptors, resident and allocated memory per idle connection, one
//! all-to-all round of calls (the library's `scale` module says what each
//! figure measures).
//!
//! The binary's global allocator is the counting allocator, for `mesh-scale`'s
//! allocated bytes per connection. With counting off, as it is everywhere but
//! there, it costs one relaxed atomic load per allocator call.

use grid_benches::counting_alloc::CountingAlloc;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some(grid_benches::scale::cli::COMMAND) => grid_benches::scale::main(args),
        _ => grid_benches::compare::main(args),
    };
    std::process::exit(code);
}
