//! Single requests: answers, errors, routing, start-up checks, and calls from
//! one or many tasks sharing the socket.

use std::time::Duration;

use bytes::Bytes;
use grid_proto::Error;

use crate::conformance::cluster::{handlers::*, Cluster, ClusterOptions};
use crate::conformance::{elapsed, TestRuntime};
use crate::manager::{ManagerBuilder, StartError};
use crate::router::Router;

use super::{remote, WAIT};

/// A single request is answered.
pub async fn echo<R: TestRuntime>(rt: R) {
    let cluster = Cluster::start(&rt, 2).await;
    let reply = cluster.conn(0, 1).request(ECHO, "hello").await.unwrap();
    assert_eq!(reply, Bytes::from_static(b"hello"));
    let reply = cluster.conn(1, 0).request(ECHO, "back").await.unwrap();
    assert_eq!(reply, Bytes::from_static(b"back"));
    cluster.assert_no_calls_left(WAIT).await;
    cluster.shutdown().await;
}

/// A handler's error reaches the caller byte for byte.
pub async fn remote_error_is_the_exact_value<R: TestRuntime>(rt: R) {
    let cluster = Cluster::start(&rt, 2).await;
    let error = cluster
        .conn(0, 1)
        .request(FAIL, "disk full")
        .await
        .unwrap_err();
    assert_eq!(error, remote("failed: disk full"));
    assert!(!error.is_retryable());
    cluster.assert_no_calls_left(WAIT).await;
    cluster.shutdown().await;
}

/// A panicking handler is an internal error for its caller, naming the
/// handler but not the panic's text, and nothing more.
pub async fn handler_panic_is_an_internal_error<R: TestRuntime>(rt: R) {
    let cluster = Cluster::start(&rt, 2).await;
    let error = cluster.conn(0, 1).request(PANIC, "").await.unwrap_err();
    match &error {
        Error::Internal(text) => {
            assert!(text.contains(&format!("handler {PANIC}")), "{text}");
            assert!(!text.contains("blew up"), "{text}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(!error.is_retryable());
    // The connection is still up.
    assert_eq!(cluster.conn(0, 1).request(ECHO, "ok").await.unwrap(), "ok");
    cluster.shutdown().await;
}

/// A 1 MiB payload goes there and back intact.
pub async fn one_mib_echo<R: TestRuntime>(rt: R) {
    let cluster = Cluster::start(&rt, 2).await;
    let payload: Bytes = (0..1024 * 1024)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<_>>()
        .into();
    let reply = cluster
        .conn(0, 1)
        .request(ECHO, payload.clone())
        .await
        .unwrap();
    assert_eq!(reply, payload);
    cluster.assert_no_calls_left(WAIT).await;
    cluster.shutdown().await;
}

/// Unknown handlers and subroutes are a clear error, not a hang.
pub async fn unknown_handler_and_subroute<R: TestRuntime>(rt: R) {
    let cluster = Cluster::start(&rt, 2).await;
    let conn = cluster.conn(0, 1);
    assert_eq!(conn.request(999, "x").await, Err(Error::UnknownHandler));
    assert_eq!(
        conn.request(DISK, "x").subroute("disk-9").await,
        Err(Error::UnknownHandler)
    );
    assert_eq!(conn.request(DISK, "x").await, Err(Error::UnknownHandler));
    let mut stream = conn.stream(999, "x").open().await.unwrap();
    assert_eq!(
        stream.receiver.recv().await,
        Some(Err(Error::UnknownHandler))
    );
    cluster.assert_no_calls_left(WAIT).await;
    cluster.shutdown().await;
}

/// Each subroute reaches its own handler, which sees the subroute.
pub async fn subroutes_reach_their_handlers<R: TestRuntime>(rt: R) {
    let cluster = Cluster::start(&rt, 2).await;
    let conn = cluster.conn(0, 1);
    assert_eq!(
        conn.request(DISK, "a").subroute("disk-1").await.unwrap(),
        "disk-1:a"
    );
    assert_eq!(
        conn.request(DISK, "b").subroute("disk-2").await.unwrap(),
        "disk-2:b"
    );
    cluster.shutdown().await;
}

/// Registering one handler id and subroute twice fails at start.
pub async fn duplicate_registration_is_an_error<R: TestRuntime>(rt: R) {
    let builder = ManagerBuilder::new(rt, "127.0.0.1:1")
        .secret("conformance secret")
        .no_listener()
        .router(
            Router::new()
                .single(1, |_, request: Bytes| async move { Ok(request) })
                .single(1, |_, request: Bytes| async move { Ok(request) }),
        );
    match builder.start().await {
        Err(StartError::DuplicateHandler(duplicate)) => assert_eq!(duplicate.handler, 1),
        other => panic!("expected a duplicate error, got {:?}", other.map(|_| ())),
    }
}

/// A cluster secret under 16 bytes is refused at start, with an error that
/// says how to make a good one; 16 bytes is enough.
pub async fn short_secrets_are_refused_at_start<R: TestRuntime>(rt: R) {
    let start = |secret: &'static str| {
        ManagerBuilder::new(rt.clone(), "127.0.0.1:1")
            .secret(secret)
            .no_listener()
            .start()
    };
    match start("fifteen bytes!!").await {
        Err(error @ StartError::WeakSecret { len: 15 }) => {
            let text = error.to_string();
            assert!(text.contains("at least 16 bytes"), "{text}");
            assert!(text.contains("openssl rand"), "{text}");
        }
        other => panic!("expected a weak secret error, got {:?}", other.map(|_| ())),
    }
    let node = start("sixteen bytes!!!")
        .await
        .expect("a 16-byte secret starts");
    node.shutdown(Duration::ZERO).await;
}

/// A call alone on its connection is written by its caller, the others by
/// the connection's driver. First one task makes calls alone, some larger
/// than what a socket takes at once, so that its caller's write stops halfway
/// and the driver must finish it; then two tasks on each node at once, so
/// that calls switch between alone and shared. Every call gets its own
/// answer. The connections' own timers are ten seconds away, so a write or a
/// wake-up that went missing would show as a stall, not be covered up by a
/// keepalive.
pub async fn lone_and_concurrent_calls_share_the_socket<R: TestRuntime>(rt: R) {
    let options = ClusterOptions {
        timeouts: Some(crate::conformance::cluster::quiet_timeouts()),
        ..ClusterOptions::default()
    };
    let cluster = Cluster::start_with(&rt, 2, options).await;
    let started = rt.now();
    echo_calls(cluster.conn(0, 1), 0, 40).await;
    let mut workers = Vec::new();
    for worker in 0..4usize {
        let conn = cluster.conn(worker % 2, 1 - worker % 2);
        let (work, done) = futures_util::FutureExt::remote_handle(echo_calls(conn, worker, 300));
        rt.spawn(work);
        workers.push(done);
    }
    futures_util::future::join_all(workers).await;
    assert!(
        elapsed(&rt, started) < Duration::from_secs(8),
        "took {:?}",
        elapsed(&rt, started)
    );
    cluster.assert_no_calls_left(WAIT).await;
    cluster.shutdown().await;
}

/// Calls made at once by many tasks leave in shared socket writes, not one
/// system call each, whatever order the runtime runs woken tasks in: 32
/// tasks, each making echo calls one after another, and the callers' socket
/// takes at most one write per four calls.
pub async fn calls_from_many_tasks_share_socket_writes<R: TestRuntime>(rt: R) {
    const TASKS: usize = 32;
    const CALLS: usize = 50;
    let options = ClusterOptions {
        timeouts: Some(crate::conformance::cluster::quiet_timeouts()),
        ..ClusterOptions::default()
    };
    let cluster = Cluster::start_with(&rt, 2, options).await;
    let conn = cluster.conn(0, 1);
    let before = conn.stats();
    let callers = (0..TASKS).map(|task| {
        let conn = conn.clone();
        let (work, done) = futures_util::FutureExt::remote_handle(async move {
            for call in 0..CALLS {
                let payload = format!("{task}:{call}");
                let answer = conn.request(ECHO, payload.clone()).await.unwrap();
                assert_eq!(answer, payload.as_bytes());
            }
        });
        rt.spawn(work);
        done
    });
    futures_util::future::join_all(callers.collect::<Vec<_>>()).await;
    let after = conn.stats();
    let calls = (TASKS * CALLS) as u64;
    let frames = after.protocol.messages_sent - before.protocol.messages_sent;
    let writes = after.socket_writes - before.socket_writes;
    assert_eq!(frames, calls);
    assert!(
        writes * 4 <= calls,
        "{calls} calls from {TASKS} tasks took {writes} socket writes"
    );
    cluster.shutdown().await;
}

/// `calls` echo calls one after another, every tenth of 1 MiB, the others
/// of up to 300 bytes; each payload names its worker and call.
async fn echo_calls(conn: crate::peer::Peer, worker: usize, calls: usize) {
    for call in 0..calls {
        let size = if call % 10 == 7 {
            1 << 20
        } else {
            1 + (call * 37 + worker * 11) % 300
        };
        let mut payload = format!("{worker}:{call}:").into_bytes();
        payload.resize(size.max(payload.len()), (call % 251) as u8);
        let reply = conn.request(ECHO, payload.clone()).await.unwrap();
        assert!(
            reply == payload,
            "worker {worker} call {call}: wrong answer"
        );
    }
}

/// Five nodes, every node calls every other both ways.
pub async fn five_node_mesh<R: TestRuntime>(rt: R) {
    let cluster = Cluster::start(&rt, 5).await;
    let mut calls = Vec::new();
    for from in 0..5 {
        for to in 0..5 {
            if from != to {
                let payload = format!("{from}->{to}");
                calls.push((
                    payload.clone(),
                    cluster.conn(from, to).request(ECHO, payload),
                ));
            }
        }
    }
    let results = futures_util::future::join_all(
        calls
            .into_iter()
            .map(|(payload, call)| async move { (payload, call.await) }),
    )
    .await;
    for (payload, result) in results {
        assert_eq!(result.unwrap(), payload.as_bytes());
    }
    cluster.assert_no_calls_left(WAIT).await;
    cluster.shutdown().await;
}
