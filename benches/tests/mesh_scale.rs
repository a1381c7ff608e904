//! A small mesh through `mesh-scale`'s runner, in a test binary of its own:
//! the runner reads process-wide descriptor and heap counts, which other
//! tests running beside it would disturb.

use std::time::Duration;

use grid_benches::counting_alloc::CountingAlloc;
use grid_benches::scale::run::{allocations_counted, run};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

#[test]
fn a_small_mesh_connects_calls_is_measured_and_closes_everything() {
    assert!(allocations_counted());
    let row = run(4, Duration::from_millis(20)).unwrap();
    assert_eq!((row.nodes, row.connections, row.reconnects), (4, 6, 0));
    assert_eq!(row.round_calls, 12);
    // Both ends of each connection are this process's.
    assert!(row.fds_idle >= row.fds_before + 12, "{row:?}");
    // Shutting the nodes and the runtime down closes every socket.
    assert_eq!(row.fds_after, row.fds_start, "{row:?}");
    let per_end = row.alloc_per_end().unwrap();
    let used = row.alloc_per_end_used().unwrap();
    // A connection costs something, and nowhere near a megabyte when idle.
    assert!(per_end > 256.0 && per_end < 1024.0 * 1024.0, "{row:?}");
    assert!(used > 256.0 && used < 1024.0 * 1024.0, "{row:?}");
    assert!(row.alloc_per_end_gross().unwrap() >= per_end);
}
