//! Deadlines: they reach handlers, fire without an answer, and bound the whole
//! call including the wait for room to send.

use std::future::IntoFuture;
use std::time::{Duration, Instant};

use bytes::Bytes;
use grid_proto::Error;

use crate::conformance::cluster::{handlers::*, Cluster, ClusterOptions};
use crate::conformance::TestRuntime;
use crate::conformance::{elapsed, sleep};

use super::{until_started, WAIT};

/// A 50 ms deadline reaches the handler, which is cancelled when it passes;
/// the caller sees `DeadlineExceeded`.
pub async fn deadline_reaches_the_handler<R: TestRuntime>(rt: R) {
    let cluster = Cluster::start(&rt, 2).await;
    let started = rt.now();
    let result = cluster
        .conn(0, 1)
        .request(DEADLINE, "")
        .timeout(Duration::from_millis(50))
        .await;
    assert_eq!(result, Err(Error::DeadlineExceeded));
    assert!(
        elapsed(&rt, started) < Duration::from_secs(2),
        "{:?}",
        elapsed(&rt, started)
    );
    let seen = cluster.probe.wait_for(&rt, "deadline:", WAIT).await;
    let left: u64 = seen.trim_start_matches("deadline:").parse().unwrap();
    assert!(left <= 50, "handler saw {left} ms left");
    cluster.probe.wait_for(&rt, "deadline:end", WAIT).await;
    cluster.assert_no_calls_left(WAIT).await;
    cluster.shutdown().await;
}

/// A lone call on an idle connection is written by its caller, not by the
/// connection's driver; its deadline must still wake the driver's timer. The
/// peer never answers (a stalled proxy) and the connection's own timers are
/// ten seconds away, so only the call's 50 ms deadline can end it.
pub async fn lone_call_deadline_fires_without_an_answer<R: TestRuntime>(rt: R) {
    let options = ClusterOptions {
        proxy_between_0_and_1: true,
        timeouts: Some(crate::conformance::cluster::quiet_timeouts()),
        ..ClusterOptions::default()
    };
    let cluster = Cluster::start_with(&rt, 2, options).await;
    let proxy = cluster.proxy.clone().unwrap();
    let conn = cluster.conn(0, 1);
    assert_eq!(conn.request(ECHO, "warm").await.unwrap(), "warm");
    proxy.stall(true);
    let started = rt.now();
    let result = conn
        .request(ECHO, "lost")
        .timeout(Duration::from_millis(50))
        .await;
    assert_eq!(result, Err(Error::DeadlineExceeded));
    assert!(
        elapsed(&rt, started) < Duration::from_secs(3),
        "took {:?}",
        elapsed(&rt, started)
    );
    proxy.stall(false);
    assert_eq!(conn.request(ECHO, "again").await.unwrap(), "again");
    cluster.shutdown().await;
}

/// Send buffer of the nodes in the deadline tests: small, so a few requests
/// fill it.
const SMALL_SEND_BUFFER: usize = 64 * 1024;

/// Two nodes whose connection runs through a stalled proxy, with node 0's send
/// buffer full of requests that are waiting for the peer to read: a new call
/// from node 0 finds no room.
async fn full_send_buffer<R: TestRuntime>(rt: &R) -> Cluster<R> {
    let options = ClusterOptions {
        proxy_between_0_and_1: true,
        limits: Some(grid_proto::Limits {
            send_buffer_size: SMALL_SEND_BUFFER,
            ..grid_proto::Limits::default()
        }),
        // The stalled peer must not be declared dead during the test.
        timeouts: Some(crate::conformance::cluster::quiet_timeouts()),
    };
    let cluster = Cluster::start_with(rt, 2, options).await;
    cluster.proxy.as_ref().unwrap().stall(true);
    let conn = cluster.conn(0, 1);
    let filler = Bytes::from(vec![7u8; 256 * 1024]);
    let started = rt.now();
    // The kernel's socket buffers take the first few MiB.
    loop {
        let queued = cluster.node(0).stats()[0].protocol.send_buffered;
        if queued >= SMALL_SEND_BUFFER {
            return cluster;
        }
        assert!(elapsed(rt, started) < WAIT, "send buffer never filled");
        let request = conn
            .request(ECHO, filler.clone())
            .timeout(Duration::from_secs(50));
        rt.spawn(async move {
            let _ = request.await;
        });
        sleep(rt, Duration::from_millis(5)).await;
    }
}

/// Asserts that a call given a 200 ms deadline ended within about it.
fn ended_at_its_deadline<R: TestRuntime>(rt: &R, started: Instant) {
    let took = elapsed(rt, started);
    assert!(
        took >= Duration::from_millis(190) && took < Duration::from_millis(700),
        "took {took:?}"
    );
}

/// A request's deadline bounds its wait for room in a full send buffer: it
/// ends with `DeadlineExceeded` within about the deadline and is never sent.
/// The deadline counts from the request's creation, and the handler is told
/// the time left.
pub async fn full_send_buffer_ends_a_request_at_its_deadline<R: TestRuntime>(rt: R) {
    let cluster = full_send_buffer(&rt).await;
    let conn = cluster.conn(0, 1);
    let started = rt.now();
    let result = conn
        .request(DEADLINE, "never sent")
        .timeout(Duration::from_millis(200))
        .await;
    assert_eq!(result, Err(Error::DeadlineExceeded));
    ended_at_its_deadline(&rt, started);

    // Once the peer reads again the fillers are answered; the expired call
    // never reached it.
    cluster.proxy.as_ref().unwrap().stall(false);
    cluster.assert_no_calls_left(WAIT).await;
    assert_eq!(cluster.probe.count("deadline:"), 0);

    // The deadline counts from the request's creation: one that passed while
    // the request sat unawaited ends it, though there is room now.
    let late = conn
        .request(DEADLINE, "never sent")
        .timeout(Duration::from_millis(50));
    sleep(&rt, Duration::from_millis(100)).await;
    assert_eq!(late.await, Err(Error::DeadlineExceeded));
    assert_eq!(cluster.probe.count("deadline:"), 0);

    // A call created a while before it is awaited is told the time it has left.
    let mut call = Box::pin(
        conn.request(DEADLINE, "")
            .timeout(Duration::from_secs(2))
            .into_future(),
    );
    sleep(&rt, Duration::from_millis(500)).await;
    until_started(&mut call, cluster.probe.wait_for(&rt, "deadline:", WAIT)).await;
    let seen = cluster
        .probe
        .events()
        .into_iter()
        .find(|e| e.starts_with("deadline:"));
    let left: u64 = seen
        .unwrap()
        .trim_start_matches("deadline:")
        .parse()
        .unwrap();
    assert!(left <= 1500, "handler saw {left} ms left of 2000 after 500");
    drop(call);
    cluster.assert_no_calls_left(WAIT).await;
    cluster.shutdown().await;
}

/// Opening a stream waits for room in a full send buffer at most until the
/// stream's deadline, then fails with `DeadlineExceeded`; the stream never
/// reaches the peer.
pub async fn full_send_buffer_ends_a_stream_open_at_its_deadline<R: TestRuntime>(rt: R) {
    let cluster = full_send_buffer(&rt).await;
    let started = rt.now();
    let result = cluster
        .conn(0, 1)
        .stream(STREAM_IN0, "")
        .timeout(Duration::from_millis(200))
        .open()
        .await;
    assert!(
        matches!(result, Err(Error::DeadlineExceeded)),
        "{:?}",
        result.map(|_| ())
    );
    ended_at_its_deadline(&rt, started);
    cluster.proxy.as_ref().unwrap().stall(false);
    cluster.assert_no_calls_left(WAIT).await;
    assert_eq!(cluster.probe.count("in0:start"), 0);
    cluster.shutdown().await;
}
