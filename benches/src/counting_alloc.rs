//! A global allocator that counts allocations, for allocation budgets in benchmarks.
//!
//! [`CountingAlloc`] wraps [`std::alloc::System`]. Install it in a benchmark
//! binary (a `#[global_allocator]` must be declared in the final binary, not in
//! this library):
//!
//! ```
//! use grid_benches::counting_alloc::{self, CountingAlloc};
//!
//! #[global_allocator]
//! static ALLOC: CountingAlloc = CountingAlloc::new();
//!
//! fn main() {
//!     let (v, counts) = counting_alloc::measure(|| {
//!         let mut v = Vec::with_capacity(100);
//!         v.extend_from_slice(&[1u8; 100]);
//!         v.reserve(1000);
//!         v
//!     });
//!     assert_eq!((counts.allocs, counts.reallocs, counts.frees), (1, 1, 0));
//!     assert_eq!(counts.live_bytes, v.capacity() as i64);
//!     let ((), counts) = counting_alloc::measure(|| drop(v));
//!     assert_eq!(counts.frees, 1);
//! }
//! ```
//!
//! Counting is off unless a [`measure`] (or [`CountingGuard`]) is active, so
//! timing benchmarks that run with the allocator installed pay only one relaxed
//! atomic load per allocator call. While counting is on, every allocator call
//! costs a few extra atomic additions: do not time code while counting it.
//!
//! The counters are process-wide: allocations made by *every* thread while
//! counting is on are counted. That is what end-to-end benchmarks with runtime
//! worker threads want; it also means nothing else (such as a benchmark
//! harness) may run concurrently with a measurement.

// `GlobalAlloc` is an unsafe trait; the implementation only forwards to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::ops::Sub;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};

/// Number of active [`CountingGuard`]s; counting is on while it is non-zero.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static REALLOCS: AtomicU64 = AtomicU64::new(0);
static FREES: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
static LIVE: AtomicI64 = AtomicI64::new(0);

/// A [`GlobalAlloc`] that forwards to [`System`] and counts calls and bytes
/// while counting is on. See the [module documentation](self).
#[derive(Debug, Default)]
pub struct CountingAlloc {
    _private: (),
}

impl CountingAlloc {
    /// The allocator, for a `#[global_allocator]` static.
    pub const fn new() -> CountingAlloc {
        CountingAlloc { _private: () }
    }
}

#[inline]
fn counting() -> bool {
    ACTIVE.load(Relaxed) != 0
}

#[inline]
fn size_delta(new: usize, old: usize) -> i64 {
    // Sizes of live allocations fit in isize, hence in i64.
    new as i64 - old as i64
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees carry over; the counting only touches
// atomics and never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() && counting() {
            ALLOCS.fetch_add(1, Relaxed);
            BYTES.fetch_add(layout.size() as u64, Relaxed);
            LIVE.fetch_add(size_delta(layout.size(), 0), Relaxed);
        }
        ptr
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() && counting() {
            ALLOCS.fetch_add(1, Relaxed);
            BYTES.fetch_add(layout.size() as u64, Relaxed);
            LIVE.fetch_add(size_delta(layout.size(), 0), Relaxed);
        }
        ptr
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) };
        if counting() {
            FREES.fetch_add(1, Relaxed);
            LIVE.fetch_sub(size_delta(layout.size(), 0), Relaxed);
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() && counting() {
            REALLOCS.fetch_add(1, Relaxed);
            BYTES.fetch_add(new_size.saturating_sub(layout.size()) as u64, Relaxed);
            LIVE.fetch_add(size_delta(new_size, layout.size()), Relaxed);
        }
        new
    }
}

/// Allocator activity counted while counting was on, or a difference of two
/// snapshots of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Fresh allocations (`alloc` and `alloc_zeroed` calls).
    pub allocs: u64,
    /// `realloc` calls (growing or shrinking an allocation, possibly in place).
    pub reallocs: u64,
    /// `dealloc` calls.
    pub frees: u64,
    /// Bytes requested: sizes of fresh allocations plus the growth of reallocations.
    pub bytes: u64,
    /// Net change of live heap bytes (allocated minus freed). Counted only
    /// while counting is on, so memory allocated before and freed during a
    /// measurement makes it negative.
    pub live_bytes: i64,
}

impl Counts {
    /// Calls that obtained memory: fresh allocations plus reallocations.
    pub fn allocations(&self) -> u64 {
        self.allocs + self.reallocs
    }

    /// These counts divided by `calls`, for per-operation figures.
    pub fn per(&self, calls: u64) -> PerCall {
        let calls = calls.max(1) as f64;
        PerCall {
            allocs: self.allocs as f64 / calls,
            reallocs: self.reallocs as f64 / calls,
            frees: self.frees as f64 / calls,
            bytes: self.bytes as f64 / calls,
            live_bytes: self.live_bytes as f64 / calls,
        }
    }
}

impl Sub for Counts {
    type Output = Counts;

    fn sub(self, earlier: Counts) -> Counts {
        Counts {
            allocs: self.allocs.wrapping_sub(earlier.allocs),
            reallocs: self.reallocs.wrapping_sub(earlier.reallocs),
            frees: self.frees.wrapping_sub(earlier.frees),
            bytes: self.bytes.wrapping_sub(earlier.bytes),
            live_bytes: self.live_bytes.wrapping_sub(earlier.live_bytes),
        }
    }
}

/// [`Counts`] averaged over a number of operations.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PerCall {
    /// Fresh allocations per operation.
    pub allocs: f64,
    /// Reallocations per operation.
    pub reallocs: f64,
    /// Frees per operation.
    pub frees: f64,
    /// Bytes requested per operation.
    pub bytes: f64,
    /// Net live heap growth per operation, in bytes.
    pub live_bytes: f64,
}

/// The counters as they are now (they only move while counting is on).
pub fn snapshot() -> Counts {
    Counts {
        allocs: ALLOCS.load(Relaxed),
        reallocs: REALLOCS.load(Relaxed),
        frees: FREES.load(Relaxed),
        bytes: BYTES.load(Relaxed),
        live_bytes: LIVE.load(Relaxed),
    }
}

/// Keeps counting on while it lives. Guards nest.
#[derive(Debug)]
#[must_use = "counting stops when the guard is dropped"]
pub struct CountingGuard {
    start: Counts,
}

impl CountingGuard {
    /// Turns counting on.
    pub fn start() -> CountingGuard {
        ACTIVE.fetch_add(1, Relaxed);
        CountingGuard { start: snapshot() }
    }

    /// What was counted since this guard started (including other threads).
    pub fn counts(&self) -> Counts {
        snapshot() - self.start
    }
}

impl Drop for CountingGuard {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, Relaxed);
    }
}

/// Runs `f` with counting on and returns its result with what it allocated.
///
/// Only meaningful when [`CountingAlloc`] is the global allocator; otherwise
/// every count is zero.
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, Counts) {
    let guard = CountingGuard::start();
    let result = f();
    let counts = guard.counts();
    drop(guard);
    (result, counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_differences_of_snapshots() {
        let a = Counts {
            allocs: 5,
            reallocs: 1,
            frees: 4,
            bytes: 100,
            live_bytes: 10,
        };
        let b = Counts {
            allocs: 9,
            reallocs: 3,
            frees: 9,
            bytes: 180,
            live_bytes: -6,
        };
        let d = b - a;
        assert_eq!(d.allocations(), 6);
        assert_eq!(d.frees, 5);
        assert_eq!(d.live_bytes, -16);
        assert_eq!(d.per(2).allocs, 2.0);
    }

    #[test]
    fn without_the_global_allocator_nothing_is_counted() {
        // The test binary uses the default allocator, so the counters stay put.
        let (v, counts) = measure(|| vec![1u8; 64]);
        assert_eq!(v.len(), 64);
        assert_eq!(counts, Counts::default());
    }
}
