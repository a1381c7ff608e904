//! Benchmarks of grid.
//!
//! The benchmark binaries live in `benches/`; this library holds what they
//! share: [`counting_alloc`], an allocation-counting global allocator for
//! allocation budgets, and [`proto`], the in-memory workloads of the sans-IO
//! core's micro-benchmark (also exercised by this crate's tests).

pub mod counting_alloc;
pub mod proto;
