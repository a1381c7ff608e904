//! Leases: kept by refreshes, expired when refreshes stop, and lost by a
//! holder cut off from the quorum.

mod support;

use std::time::{Duration, Instant};

use grid_lock::{AcquireError, Lost, Mode};
use support::cluster::{test_config, test_timing, LockCluster};

/// A holder that keeps refreshing keeps its lock for many leases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshes_keep_a_lock_past_its_lease() {
    let cluster = LockCluster::start(3, 0).await;
    let holder = cluster.client(0, test_config(1));
    let guard = holder.write("kept").await.expect("write lock");
    tokio::time::sleep(test_timing().lease * 3).await;
    assert!(guard.is_held());
    let other = cluster.client(1, test_config(2));
    let refused = other.acquire("kept", Mode::Write, Duration::ZERO).await;
    assert!(
        matches!(refused, Err(AcquireError::Contended { .. })),
        "{refused:?}"
    );
    guard.unlock().await;
    cluster.shutdown().await;
}

/// A holder whose node crashes stops refreshing; the servers expire its
/// grant after the lease, and another client gets the lock then, not before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_holders_lock_expires_and_passes_on() {
    let mut cluster = LockCluster::start(3, 1).await;
    let holder = cluster.client(3, test_config(1));
    let guard = holder.write("crash").await.expect("write lock");
    cluster.stop(3).await;
    let crashed = Instant::now();

    let other = cluster.client(0, test_config(2));
    let got = other
        .write("crash")
        .await
        .expect("the lock once it expires");
    let waited = crashed.elapsed();
    let lease = test_timing().lease;
    // The last refresh was at most one interval before the crash.
    assert!(
        waited >= lease - test_timing().refresh_interval * 2,
        "waited only {waited:?}"
    );
    assert!(waited < lease * 3, "waited {waited:?}");
    assert!(!guard.is_held(), "the crashed holder's guard says lost");
    got.unlock().await;
    cluster.shutdown().await;
}

/// A holder cut off from the other servers sees its refresh fail and reports
/// the loss promptly, before any other client can get the lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_cut_off_from_the_quorum_learns_it_lost_the_lock_first() {
    let cluster = LockCluster::start(5, 0).await;
    let timing = test_timing();
    let holder = cluster.client(0, test_config(1));
    let guard = holder.write("cut").await.expect("write lock");
    let lost = guard.lost();

    cluster.partition.isolate([&cluster.names[0]]);
    let isolated = Instant::now();
    let other = cluster.client(1, test_config(2));
    let contender = tokio::spawn(async move {
        let guard = other.write("cut").await.expect("the lock once it expires");
        (Instant::now(), guard)
    });

    let reason = tokio::time::timeout(timing.refresh_interval + timing.call_deadline * 2, lost)
        .await
        .expect("the loss is reported within a refresh round");
    let lost_at = Instant::now();
    assert!(matches!(reason, Lost::RefreshFailed(_)), "{reason}");
    assert_eq!(guard.check(), Err(reason));

    let (got_at, got) = contender.await.expect("contender");
    assert!(
        got_at > lost_at,
        "the other client got the lock before the holder knew"
    );
    assert!(
        got_at - isolated >= timing.lease - timing.refresh_interval * 2,
        "granted {:?} after the cut, before the lease ran out",
        got_at - isolated
    );
    assert_eq!(cluster.grants("cut")[1..], [1, 1, 1, 1]);
    got.unlock().await;
    cluster.partition.heal();
    cluster.shutdown().await;
}
