//! Mutual exclusion under contention, and read locks shared.

mod support;

use std::time::Duration;

use grid_lock::{AcquireError, Mode};
use support::checker::Checker;
use support::cluster::{test_config, LockCluster};

/// Ten clients on five nodes contend for three names, mostly writing; no
/// write ever overlaps another hold of its name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_exclude_every_other_hold_under_contention() {
    let cluster = LockCluster::start(5, 0).await;
    let checker = Checker::default();
    const ROUNDS: usize = 15;
    let mut tasks = Vec::new();
    for c in 0..10u64 {
        let client = cluster.client(c as usize % 5, test_config(c + 1));
        let checker = checker.clone();
        let me = format!("client{c}");
        tasks.push(tokio::spawn(async move {
            for round in 0..ROUNDS {
                let name = format!("name{}", (c as usize + round) % 3);
                // Every fourth hold a read, so writes meet reads too.
                let mode = match (c as usize + round) % 4 {
                    0 => Mode::Read,
                    _ => Mode::Write,
                };
                let guard = client
                    .acquire(&name, mode, Duration::from_secs(20))
                    .await
                    .unwrap_or_else(|e| panic!("{me}: {e}"));
                guard.check().expect("a fresh lock is valid");
                checker.enter(&me, &name, mode);
                tokio::time::sleep(Duration::from_millis(1 + round as u64 % 3)).await;
                guard
                    .check()
                    .expect("held for milliseconds, well within the lease");
                checker.exit(&name, mode);
                guard.unlock().await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("client task");
    }
    checker.assert_exclusive();
    assert_eq!(checker.holds(), 10 * ROUNDS);
    for name in ["name0", "name1", "name2"] {
        assert_eq!(
            cluster.grants(name),
            vec![0; 5],
            "{name} released everywhere"
        );
    }
    cluster.shutdown().await;
}

/// Readers on three nodes hold one name at once; a writer waits for all of
/// them, and gets it once they let go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_locks_are_shared_and_exclude_writers() {
    let cluster = LockCluster::start(4, 0).await;
    let mut readers = Vec::new();
    for node in 0..3 {
        let client = cluster.client(node, test_config(node as u64 + 10));
        readers.push(client.read("shared").await.expect("read lock"));
    }
    assert!(readers.iter().all(|g| g.is_held()));
    assert_eq!(cluster.grants("shared"), vec![3; 4]);

    let writer = cluster.client(3, test_config(99));
    let refused = writer
        .acquire("shared", Mode::Write, Duration::from_millis(200))
        .await
        .expect_err("a write while readers hold it");
    match &refused {
        AcquireError::Contended { last, .. } => assert_eq!(last.held, 4, "{refused}"),
        other => panic!("expected Contended, got {other}"),
    }
    // Still shared after the writer's attempts were released.
    let another = cluster.client(3, test_config(100));
    let fourth = another.read("shared").await.expect("read lock");
    assert!(readers.iter().all(|g| g.is_held()));

    for guard in readers {
        guard.unlock().await;
    }
    fourth.unlock().await;
    let write = writer
        .write("shared")
        .await
        .expect("write once readers left");
    assert!(write.is_held());
    assert_eq!(cluster.grants("shared"), vec![1; 4]);
    write.unlock().await;
    cluster.shutdown().await;
}
