//! `grid-benches`: the end-to-end comparison of grid against raw TCP, tonic
//! and tarpc on loopback (DESIGN.md §6).
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

fn main() {
    std::process::exit(grid_benches::compare::main(std::env::args().skip(1)));
}
