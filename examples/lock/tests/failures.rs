//! Partial grants released, servers down, and unlock.

mod support;

use std::time::{Duration, Instant};

use grid_lock::wire::{LockRequest, UnlockRequest};
use grid_lock::{AcquireError, Mode};
use support::cluster::{test_config, LockCluster};

/// An attempt that gets some grants but not a quorum gives them back before
/// it reports failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_grants_are_released() {
    let cluster = LockCluster::start(5, 0).await;
    let other = LockRequest {
        name: "part".to_string(),
        uid: 7,
        lease_ms: 600,
    };
    // Another holder has the lock at three of five servers.
    for server in &cluster.servers[2..] {
        server
            .lock("elsewhere", &other, Mode::Write)
            .expect("grant");
    }
    let client = cluster.client(0, test_config(1));
    let error = client
        .acquire("part", Mode::Write, Duration::ZERO)
        .await
        .expect_err("only two of five servers are free");
    match &error {
        AcquireError::Contended { last, .. } => {
            assert_eq!((last.done, last.held, last.needed), (2, 3, 3), "{error}");
        }
        other => panic!("expected Contended, got {other}"),
    }
    assert_eq!(
        cluster.grants("part"),
        vec![0, 0, 1, 1, 1],
        "the two grants were released"
    );

    let release = UnlockRequest {
        name: "part".to_string(),
        uid: 7,
    };
    for server in &cluster.servers[2..] {
        assert!(server.unlock("elsewhere", &release));
    }
    let guard = client.write("part").await.expect("free now");
    assert_eq!(cluster.grants("part"), vec![1; 5]);
    guard.unlock().await;
    cluster.shutdown().await;
}

/// With four servers a write needs three and a read two: one server down
/// stops neither, two down stop writes with a clear error but not reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quorum_up_succeeds_and_fewer_fails_clearly() {
    let mut cluster = LockCluster::start(4, 0).await;
    let client = cluster.client(0, test_config(1));

    cluster.stop(3).await;
    let guard = client
        .write("down")
        .await
        .expect("three of four servers up");
    assert!(guard.is_held());
    guard.unlock().await;

    cluster.stop(2).await;
    let started = Instant::now();
    let error = client
        .acquire("down", Mode::Write, Duration::from_millis(300))
        .await
        .expect_err("two of four servers up");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "gave up on time"
    );
    match &error {
        AcquireError::Unavailable { last, .. } => {
            assert_eq!((last.done, last.unreachable, last.needed), (2, 2, 3));
            assert!(error.to_string().contains("unreachable"), "{error}");
        }
        other => panic!("expected Unavailable, got {other}"),
    }
    assert_eq!(
        cluster.grants("down")[..2],
        [0, 0],
        "failed attempts released"
    );

    let read = client.read("down").await.expect("a read needs two of four");
    assert!(read.is_held());
    // Two servers still answer every refresh: the read stays held.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(read.is_held());
    read.unlock().await;
    cluster.shutdown().await;
}

/// Unlocking releases the grant at every server; so does dropping the guard,
/// in the background.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlock_releases_everywhere() {
    let cluster = LockCluster::start(5, 0).await;
    let client = cluster.client(1, test_config(1));
    let guard = client.write("u").await.expect("write lock");
    assert_eq!(cluster.grants("u"), vec![1; 5]);
    let tally = guard.unlock().await;
    assert_eq!(tally.done, 5, "{tally}");
    assert_eq!(cluster.grants("u"), vec![0; 5]);

    let guard = client.read("v").await.expect("read lock");
    assert_eq!(cluster.grants("v"), vec![1; 5]);
    drop(guard);
    let deadline = Instant::now() + Duration::from_secs(1);
    while cluster.grants("v") != vec![0; 5] {
        assert!(
            Instant::now() < deadline,
            "a dropped guard's grants stay: {:?}",
            cluster.grants("v")
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cluster.shutdown().await;
}
