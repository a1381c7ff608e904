//! Benchmarks of grid.
//!
//! The benchmark binaries live in `benches/`; this library holds what they
//! share: [`counting_alloc`], an allocation-counting global allocator for
//! allocation budgets, and [`proto`], the in-memory workloads of the sans-IO
//! core's micro-benchmark (also exercised by this crate's tests).
//!
//! With the `compare` feature it also holds `compare`, the end-to-end
//! comparison of grid against raw TCP, tonic and tarpc on loopback, run by the
//! `grid-benches` binary:
//!
//! ```text
//! cargo run --release -p grid-benches --features compare -- compare [--quick]
//! ```
//!
//! and `scale`, a full mesh of 8, 32 and 128 nodes in one process (connect
//! time, descriptors, memory per idle connection, an all-to-all round):
//!
//! ```text
//! cargo run --release -p grid-benches --features compare -- mesh-scale [--quick]
//! ```

#[cfg(feature = "compare")]
pub mod compare;
pub mod counting_alloc;
pub mod proto;
#[cfg(feature = "compare")]
pub mod scale;
