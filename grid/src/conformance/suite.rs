//! The conformance tests, each generic over the runtime.

use std::future::{Future, IntoFuture};
use std::time::{Duration, Instant};

use bytes::Bytes;
use grid_proto::{dials, CloseReason, Error};

use crate::conformance::bare::{drive_to_close, raw_connection, NoHandlers};
use crate::conformance::cluster::{handlers::*, Cluster, ClusterOptions};
use crate::conformance::paused_reads::{PausedReads, ReadSwitch};
use crate::conformance::TestRuntime;
use crate::driver::Exit;
use crate::manager::{ManagerBuilder, StartError};
use crate::router::Router;
use crate::runtime::sleep_until;

pub use super::admission::{
    replacement_churn_is_rate_limited, strangers_and_wrong_side_dialers_are_refused,
};

const WAIT: Duration = Duration::from_secs(5);

/// Polls `call` until `started` resolves (the handler is running), so the test
/// can then act on a call that is known to be in flight.
async fn until_started<F, S>(call: &mut F, started: S)
where
    F: Future + Unpin,
    F::Output: std::fmt::Debug,
    S: Future,
{
    match futures_util::future::select(call, std::pin::pin!(started)).await {
        futures_util::future::Either::Left((result, _)) => panic!("call ended early: {result:?}"),
        futures_util::future::Either::Right(_) => {}
    }
}

fn remote(text: &str) -> Error {
    Error::Remote(Bytes::copy_from_slice(text.as_bytes()))
}

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

/// A panicking handler is an error for its caller and nothing more.
pub async fn handler_panic_is_a_remote_error<R: TestRuntime>(rt: R) {
    let cluster = Cluster::start(&rt, 2).await;
    let error = cluster.conn(0, 1).request(PANIC, "").await.unwrap_err();
    match error {
        Error::Remote(message) => {
            assert!(String::from_utf8_lossy(&message).contains("handler blew up"))
        }
        other => panic!("unexpected {other:?}"),
    }
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

/// A two-way stream echoes 0..10 in lock step and ends cleanly.
pub async fn lock_step_stream_echo<R: TestRuntime>(rt: R) {
    let cluster = Cluster::start(&rt, 2).await;
    let stream = cluster
        .conn(0, 1)
        .stream(STREAM_ECHO, "")
        .open()
        .await
        .unwrap();
    let (mut tx, mut rx) = stream.split();
    for i in 0..10u8 {
        tx.send(Bytes::from(vec![i])).await.unwrap();
        assert_eq!(rx.recv().await, Some(Ok(Bytes::from(vec![i]))));
    }
    tx.finish().unwrap();
    assert_eq!(rx.recv().await, None);
    drop((tx, rx));
    cluster.assert_no_calls_left(WAIT).await;
    cluster.shutdown().await;
}

/// A stream handler's error arrives after every message it sent.
pub async fn stream_handler_error_arrives_after_its_messages<R: TestRuntime>(rt: R) {
    let cluster = Cluster::start(&rt, 2).await;
    let mut stream = cluster
        .conn(0, 1)
        .stream(STREAM_FAIL, "")
        .open()
        .await
        .unwrap();
    assert_eq!(
        stream.receiver.recv().await,
        Some(Ok(Bytes::from_static(b"before")))
    );
    assert_eq!(
        stream.receiver.recv().await,
        Some(Err(remote("stream failed")))
    );
    assert_eq!(stream.receiver.recv().await, None);
    drop(stream);
    cluster.assert_no_calls_left(WAIT).await;
    cluster.shutdown().await;
}

/// Dropping both halves of a stream cancels the handler, whatever its input
/// capacity and however full its input is.
pub async fn client_cancel_reaches_the_handler<R: TestRuntime>(rt: R) {
    let cluster = Cluster::start(&rt, 2).await;
    let conn = cluster.conn(0, 1);
    // Receive window 0.
    let stream = conn.stream(STREAM_IN0, "").open().await.unwrap();
    cluster.probe.wait_for(&rt, "in0:start", WAIT).await;
    drop(stream);
    cluster.probe.wait_for(&rt, "in0:end", WAIT).await;
    // Receive window of one message, full: the handler never reads.
    let stream = conn.stream(STREAM_IN1, "").open().await.unwrap();
    let (mut tx, rx) = stream.split();
    cluster.probe.wait_for(&rt, "in1:start", WAIT).await;
    tx.send(Bytes::from_static(b"fills the queue"))
        .await
        .unwrap();
    drop((tx, rx));
    cluster.probe.wait_for(&rt, "in1:end", WAIT).await;
    cluster.assert_no_calls_left(WAIT).await;
    cluster.shutdown().await;
}

/// Dropping a single request's future cancels its handler.
pub async fn dropping_a_request_cancels_the_handler<R: TestRuntime>(rt: R) {
    let cluster = Cluster::start(&rt, 2).await;
    let mut request = Box::pin(cluster.conn(0, 1).request(HANG, "").into_future());
    until_started(
        &mut request,
        cluster.probe.wait_for(&rt, "hang:start", WAIT),
    )
    .await;
    drop(request);
    cluster.probe.wait_for(&rt, "hang:end", WAIT).await;
    cluster.assert_no_calls_left(WAIT).await;
    cluster.shutdown().await;
}

/// A 50 ms deadline reaches the handler, which is cancelled when it passes;
/// the caller sees `DeadlineExceeded`.
pub async fn deadline_reaches_the_handler<R: TestRuntime>(rt: R) {
    let cluster = Cluster::start(&rt, 2).await;
    let started = Instant::now();
    let result = cluster
        .conn(0, 1)
        .request(DEADLINE, "")
        .timeout(Duration::from_millis(50))
        .await;
    assert_eq!(result, Err(Error::DeadlineExceeded));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
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
        timeouts: Some(super::cluster::quiet_timeouts()),
        ..ClusterOptions::default()
    };
    let cluster = Cluster::start_with(&rt, 2, options).await;
    let proxy = cluster.proxy.clone().unwrap();
    let conn = cluster.conn(0, 1);
    assert_eq!(conn.request(ECHO, "warm").await.unwrap(), "warm");
    proxy.stall(true);
    let started = Instant::now();
    let result = conn
        .request(ECHO, "lost")
        .timeout(Duration::from_millis(50))
        .await;
    assert_eq!(result, Err(Error::DeadlineExceeded));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    proxy.stall(false);
    assert_eq!(conn.request(ECHO, "again").await.unwrap(), "again");
    cluster.shutdown().await;
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
        timeouts: Some(super::cluster::quiet_timeouts()),
        ..ClusterOptions::default()
    };
    let cluster = Cluster::start_with(&rt, 2, options).await;
    let started = Instant::now();
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
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    cluster.assert_no_calls_left(WAIT).await;
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

/// A stream whose consumer does not read (100 messages queued) does not stop
/// single requests on the same connection, and its messages arrive complete
/// and in order afterwards. Same for a handler whose input is full.
pub async fn stalled_stream_does_not_block_requests<R: TestRuntime>(rt: R) {
    let cluster = Cluster::start(&rt, 2).await;
    let conn = cluster.conn(0, 1);
    // Output congestion: the handler wants to send 100 messages, nobody reads.
    let mut produced = conn
        .stream(STREAM_PRODUCE, "100")
        .window(4096)
        .open()
        .await
        .unwrap();
    // Input congestion: the handler never reads its input.
    let blocked = conn.stream(STREAM_IN1, "").open().await.unwrap();
    let (mut blocked_tx, blocked_rx) = blocked.split();
    blocked_tx
        .send(Bytes::from_static(b"queued"))
        .await
        .unwrap();
    for i in 0..100 {
        let payload = format!("request {i}");
        assert_eq!(
            conn.request(ECHO, payload.clone()).await.unwrap(),
            payload.as_bytes()
        );
    }
    for i in 0..100 {
        assert_eq!(
            produced.receiver.recv().await,
            Some(Ok(Bytes::from(i.to_string())))
        );
    }
    assert_eq!(produced.receiver.recv().await, None);
    drop((produced, blocked_tx, blocked_rx));
    cluster.assert_no_calls_left(WAIT).await;
    cluster.shutdown().await;
}

/// A consumer that never reads, then cancels, leaves nothing behind on either side.
pub async fn blocked_consumer_and_cancel_clean_up_both_sides<R: TestRuntime>(rt: R) {
    let cluster = Cluster::start(&rt, 2).await;
    let stream = cluster
        .conn(0, 1)
        .stream(STREAM_PRODUCE, "1000")
        .window(80)
        .open()
        .await
        .unwrap();
    // Let the handler fill the window, then give up.
    sleep_until(&rt, Instant::now() + Duration::from_millis(50)).await;
    drop(stream);
    cluster.probe.wait_for(&rt, "produce:end", WAIT).await;
    cluster.assert_no_calls_left(WAIT).await;
    cluster.shutdown().await;
}

/// Streams blocked on either side stay open across many keepalive intervals.
pub async fn blocked_streams_survive_keepalives<R: TestRuntime>(rt: R) {
    let cluster = Cluster::start(&rt, 2).await;
    let conn = cluster.conn(0, 1);
    let mut produced = conn
        .stream(STREAM_PRODUCE, "10")
        .window(80)
        .open()
        .await
        .unwrap();
    let blocked = conn.stream(STREAM_IN1, "").open().await.unwrap();
    // Ten keepalive intervals and well past the idle timeout.
    sleep_until(&rt, Instant::now() + Duration::from_millis(1200)).await;
    assert!(conn.is_connected());
    assert_eq!(conn.stats().reconnects, 0);
    for i in 0..10 {
        assert_eq!(
            produced.receiver.recv().await,
            Some(Ok(Bytes::from(i.to_string())))
        );
    }
    assert_eq!(produced.receiver.recv().await, None);
    drop((produced, blocked));
    cluster.assert_no_calls_left(WAIT).await;
    cluster.shutdown().await;
}

/// A peer that stops answering (a stalled proxy) is declared dead within the
/// idle bound, calls fail with `Disconnected`, and the link comes back.
pub async fn stalled_peer_is_detected_dead<R: TestRuntime>(rt: R) {
    let options = ClusterOptions {
        proxy_between_0_and_1: true,
        ..ClusterOptions::default()
    };
    let cluster = Cluster::start_with(&rt, 2, options).await;
    let proxy = cluster.proxy.clone().unwrap();
    let conn = cluster.conn(0, 1);
    let mut call = Box::pin(conn.request(HANG, "").into_future());
    until_started(&mut call, cluster.probe.wait_for(&rt, "hang:start", WAIT)).await;
    proxy.stall(true);
    let started = Instant::now();
    assert_eq!(call.await, Err(Error::Disconnected));
    let bound =
        super::cluster::test_timeouts().idle + super::cluster::test_timeouts().keepalive_interval;
    assert!(
        started.elapsed() <= bound + Duration::from_millis(300),
        "took {:?}",
        started.elapsed()
    );
    proxy.stall(false);
    proxy.cut();
    cluster.wait_connected().await;
    assert_eq!(conn.request(ECHO, "again").await.unwrap(), "again");
    cluster.shutdown().await;
}

/// Cutting the connection during a request and a stream fails both with
/// `Disconnected`, cancels the handlers, and the link reconnects by itself.
pub async fn cut_connection_fails_calls_and_reconnects<R: TestRuntime>(rt: R) {
    let options = ClusterOptions {
        proxy_between_0_and_1: true,
        ..ClusterOptions::default()
    };
    let cluster = Cluster::start_with(&rt, 2, options).await;
    let proxy = cluster.proxy.clone().unwrap();
    let conn = cluster.conn(0, 1);
    let mut request = Box::pin(conn.request(HANG, "").into_future());
    until_started(
        &mut request,
        cluster.probe.wait_for(&rt, "hang:start", WAIT),
    )
    .await;
    let mut stream = conn.stream(STREAM_IN1, "").open().await.unwrap();
    cluster.probe.wait_for(&rt, "in1:start", WAIT).await;
    proxy.cut();
    assert_eq!(request.await, Err(Error::Disconnected));
    assert_eq!(stream.receiver.recv().await, Some(Err(Error::Disconnected)));
    cluster.probe.wait_for(&rt, "hang:end", WAIT).await;
    cluster.probe.wait_for(&rt, "in1:end", WAIT).await;
    cluster.wait_connected().await;
    assert_eq!(conn.request(ECHO, "back").await.unwrap(), "back");
    assert!(conn.stats().reconnects >= 1);
    drop(stream);
    cluster.assert_no_calls_left(WAIT).await;
    cluster.shutdown().await;
}

/// A node that stops and starts again is reconnected by its peers.
pub async fn restarted_node_is_reconnected<R: TestRuntime>(rt: R) {
    let mut cluster = Cluster::start(&rt, 3).await;
    cluster.stop(2).await;
    cluster.restart(2).await;
    cluster.wait_connected().await;
    for from in 0..3 {
        for to in 0..3 {
            if from != to {
                let reply = cluster
                    .conn(from, to)
                    .request(ECHO, "healed")
                    .await
                    .unwrap();
                assert_eq!(reply, "healed");
            }
        }
    }
    cluster.shutdown().await;
}

/// While a node is down, calls to it fail at once with `Disconnected`.
pub async fn calls_to_a_stopped_node_fail_fast<R: TestRuntime>(rt: R) {
    let mut cluster = Cluster::start(&rt, 2).await;
    let conn = cluster.conn(0, 1);
    cluster.stop(1).await;
    // Wait until node 0 has noticed.
    let deadline = Instant::now() + WAIT;
    while conn.is_connected() && Instant::now() < deadline {
        sleep_until(&rt, Instant::now() + Duration::from_millis(5)).await;
    }
    let started = Instant::now();
    assert_eq!(conn.request(ECHO, "x").await, Err(Error::Disconnected));
    assert!(Error::Disconnected.is_retryable());
    assert!(
        started.elapsed() < Duration::from_millis(50),
        "{:?}",
        started.elapsed()
    );
    assert!(conn.stream(STREAM_ECHO, "").open().await.is_err());
    cluster.shutdown().await;
}

/// Shutdown lets calls in flight finish, and new calls to the draining node
/// fail with the retryable `Draining` error.
pub async fn graceful_shutdown_drains<R: TestRuntime>(rt: R) {
    let mut cluster = Cluster::start(&rt, 2).await;
    let conn = cluster.conn(0, 1);
    let mut stream = conn
        .stream(STREAM_PRODUCE, "20")
        .window(1)
        .open()
        .await
        .unwrap();
    assert_eq!(
        stream.receiver.recv().await,
        Some(Ok(Bytes::from_static(b"0")))
    );
    let node = cluster.node(1).clone();
    let shutdown = rt.clone();
    let drained = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = drained.clone();
    shutdown.spawn(async move {
        node.shutdown(Duration::from_secs(5)).await;
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    // New calls fail fast with Draining once the GoAway arrived.
    let deadline = Instant::now() + WAIT;
    let refused = loop {
        match conn.request(ECHO, "new").await {
            Err(error) => break error,
            Ok(_) if Instant::now() < deadline => {
                sleep_until(&rt, Instant::now() + Duration::from_millis(2)).await
            }
            Ok(_) => panic!("node never started draining"),
        }
    };
    assert_eq!(refused, Error::Draining);
    assert!(refused.is_retryable());
    // The stream in flight completes.
    for i in 1..20 {
        assert_eq!(
            stream.receiver.recv().await,
            Some(Ok(Bytes::from(i.to_string())))
        );
    }
    assert_eq!(stream.receiver.recv().await, None);
    drop(stream);
    let deadline = Instant::now() + WAIT;
    while !drained.load(std::sync::atomic::Ordering::SeqCst) && Instant::now() < deadline {
        sleep_until(&rt, Instant::now() + Duration::from_millis(5)).await;
    }
    assert!(drained.load(std::sync::atomic::Ordering::SeqCst));
    cluster.stop(1).await;
    cluster.shutdown().await;
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

/// A stream sender with credit left but a full send buffer waits for the
/// buffer to drain, and is woken when it does.
pub async fn full_send_buffer_wakes_stream_senders<R: TestRuntime>(rt: R) {
    let options = ClusterOptions {
        limits: Some(grid_proto::Limits {
            send_buffer_size: 64 * 1024,
            ..grid_proto::Limits::default()
        }),
        ..ClusterOptions::default()
    };
    let cluster = Cluster::start_with(&rt, 2, options).await;
    let stream = cluster
        .conn(0, 1)
        .stream(STREAM_SINK, "")
        .open()
        .await
        .unwrap();
    let (mut tx, mut rx) = stream.split();
    let message = Bytes::from(vec![5u8; 16 * 1024]);
    for _ in 0..200 {
        tx.send(message.clone()).await.unwrap();
    }
    tx.finish().unwrap();
    assert_eq!(
        rx.recv().await,
        Some(Ok(Bytes::from((200 * 16 * 1024).to_string())))
    );
    assert_eq!(rx.recv().await, None);
    drop((tx, rx));
    cluster.assert_no_calls_left(WAIT).await;
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
        timeouts: Some(super::cluster::quiet_timeouts()),
    };
    let cluster = Cluster::start_with(rt, 2, options).await;
    cluster.proxy.as_ref().unwrap().stall(true);
    let conn = cluster.conn(0, 1);
    let filler = Bytes::from(vec![7u8; 256 * 1024]);
    let started = Instant::now();
    // The kernel's socket buffers take the first few MiB.
    loop {
        let queued = cluster.node(0).stats()[0].protocol.send_buffered;
        if queued >= SMALL_SEND_BUFFER {
            return cluster;
        }
        assert!(started.elapsed() < WAIT, "send buffer never filled");
        let request = conn
            .request(ECHO, filler.clone())
            .timeout(Duration::from_secs(50));
        rt.spawn(async move {
            let _ = request.await;
        });
        sleep_until(rt, Instant::now() + Duration::from_millis(5)).await;
    }
}

/// Asserts that a call given a 200 ms deadline ended within about it.
fn ended_at_its_deadline(started: Instant) {
    let took = started.elapsed();
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
    let started = Instant::now();
    let result = conn
        .request(DEADLINE, "never sent")
        .timeout(Duration::from_millis(200))
        .await;
    assert_eq!(result, Err(Error::DeadlineExceeded));
    ended_at_its_deadline(started);

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
    sleep_until(&rt, Instant::now() + Duration::from_millis(100)).await;
    assert_eq!(late.await, Err(Error::DeadlineExceeded));
    assert_eq!(cluster.probe.count("deadline:"), 0);

    // A call created a while before it is awaited is told the time it has left.
    let mut call = Box::pin(
        conn.request(DEADLINE, "")
            .timeout(Duration::from_secs(2))
            .into_future(),
    );
    sleep_until(&rt, Instant::now() + Duration::from_millis(500)).await;
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
    let started = Instant::now();
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
    ended_at_its_deadline(started);
    cluster.proxy.as_ref().unwrap().stall(false);
    cluster.assert_no_calls_left(WAIT).await;
    assert_eq!(cluster.probe.count("in0:start"), 0);
    cluster.shutdown().await;
}

/// A node that closes while its peer is still sending to it (so it has input
/// it never read, and the peer has paused its reading for a moment) still
/// gets its reason across: the peer reads the `Close` it sent, not a reset,
/// every time.
pub async fn close_reason_arrives_despite_unread_input<R: TestRuntime>(rt: R) {
    use std::sync::atomic::{AtomicUsize, Ordering};

    let mut cluster = Cluster::start(&rt, 2).await;
    // A bare connection takes the place of the node that dials the other.
    let (closer, sender) = if dials(&cluster.names[1], &cluster.names[0]) {
        (0, 1)
    } else {
        (1, 0)
    };
    cluster.stop(sender).await;
    for round in 0..5 {
        if round > 0 {
            cluster.restart(closer).await;
        }
        let start = Instant::now();
        while cluster.conn(closer, sender).is_connected() {
            assert!(start.elapsed() < WAIT, "the old connection never closed");
            sleep_until(&rt, Instant::now() + Duration::from_millis(5)).await;
        }
        let reads = ReadSwitch::default();
        let io = rt.connect(&cluster.names[closer]).await.expect("connect");
        let io = Box::new(PausedReads::new(io, reads.clone()));
        let (shared, mut driver) = raw_connection(&rt, io, &cluster.names[sender]);
        match std::future::poll_fn(|cx| driver.poll_drive(cx, &NoHandlers)).await {
            Exit::Connected(_) => {}
            Exit::Closed(reason) => panic!("round {round}: handshake failed: {reason}"),
        }
        let slot = crate::peer::PeerSlot::new(&cluster.names[closer]);
        slot.install(shared, 0, Instant::now(), Duration::ZERO);
        let peer = crate::peer::Peer { slot };
        let sent = AtomicUsize::new(0);
        let send = async {
            let (mut tx, _rx) = peer.stream(STREAM_SINK, "").open().await.unwrap().split();
            let message = Bytes::from(vec![1u8; 16 * 1024]);
            // The first message waits for the sink's credit; the rest are
            // within it, so none of them waits for a read.
            tx.send(message.clone()).await.unwrap();
            reads.pause();
            for _ in 1..300 {
                if tx.send(message.clone()).await.is_err() {
                    break;
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
        };
        let close = async {
            // Well into the stream, so the closing node has input in flight.
            while sent.load(Ordering::Relaxed) < 100 {
                sleep_until(&rt, Instant::now() + Duration::from_millis(1)).await;
            }
            cluster.stop(closer).await;
            sleep_until(&rt, Instant::now() + Duration::from_millis(200)).await;
            reads.resume();
        };
        let (reason, (), ()) =
            futures_util::future::join3(drive_to_close(&mut driver), send, close).await;
        assert!(
            matches!(reason, CloseReason::Peer(_)),
            "round {round}: the peer saw {reason:?} after {} messages",
            sent.load(Ordering::Relaxed)
        );
    }
}

/// A stream's `Sink` gathers messages and hands them over in batches: whatever
/// the peer's credit, every message arrives once and in order, including those
/// fed and never flushed before the sender was dropped; a message larger than
/// the peer accepts is refused as it is fed.
pub async fn sink_batches_arrive_whole_and_in_order<R: TestRuntime>(rt: R) {
    use futures_util::{SinkExt, StreamExt};

    let cluster = Cluster::start(&rt, 2).await;
    // Echo with an input window of 160 bytes and a receive window of 120
    // (three short messages): batches are cut by credit.
    let (mut tx, mut rx) = cluster
        .conn(0, 1)
        .stream(STREAM_ECHO, "")
        .window(120)
        .open()
        .await
        .unwrap()
        .split();
    let numbered = |i: u32| Bytes::from(i.to_le_bytes().to_vec());
    let send = async {
        let mut messages = futures_util::stream::iter((0..2000).map(numbered).map(Ok));
        tx.send_all(&mut messages).await.unwrap();
        tx.close().await.unwrap();
    };
    let receive = async {
        let mut next = 0;
        while let Some(message) = rx.next().await {
            assert_eq!(message.unwrap(), numbered(next));
            next += 1;
        }
        next
    };
    let ((), received) = futures_util::future::join(send, receive).await;
    assert_eq!(received, 2000);
    drop((tx, rx));

    // Fed without a flush, then dropped: the messages still arrive, then the end.
    let (mut tx, mut rx) = cluster
        .conn(0, 1)
        .stream(STREAM_SINK, "")
        .open()
        .await
        .unwrap()
        .split();
    let mut sent = 0;
    for size in 1..=100 {
        tx.feed(Bytes::from(vec![7u8; size])).await.unwrap();
        sent += size;
    }
    let max = grid_proto::Limits::default().max_message_size as usize;
    let too_large = tx.feed(Bytes::from(vec![0u8; max + 1])).await;
    let too_large_error = Error::TooLarge { size: max + 1, max };
    assert_eq!(too_large, Err(crate::SendError::Failed(too_large_error)));
    drop(tx);
    assert_eq!(rx.recv().await, Some(Ok(Bytes::from(sent.to_string()))));
    assert_eq!(rx.recv().await, None);
    drop(rx);
    cluster.assert_no_calls_left(WAIT).await;
    cluster.shutdown().await;
}

/// A peer that vanishes with megabytes still unsent to it (its host is gone:
/// nothing is acknowledged, nothing is reset) is declared dead, and the dialer
/// reconnects at once instead of waiting on its full socket.
pub async fn vanished_peer_with_unsent_data_is_redialed<R: TestRuntime>(rt: R) {
    let options = ClusterOptions {
        proxy_between_0_and_1: true,
        ..ClusterOptions::default()
    };
    let cluster = Cluster::start_with(&rt, 2, options).await;
    let proxy = cluster.proxy.clone().unwrap();
    // The dialer sends, so that it is the side left with a full socket.
    let (dialer, acceptor) = if dials(&cluster.names[0], &cluster.names[1]) {
        (0, 1)
    } else {
        (1, 0)
    };
    let conn = cluster.conn(dialer, acceptor);
    proxy.blackhole();
    let big = Bytes::from(vec![1u8; 1024 * 1024]);
    let calls = (0..8).map(|_| conn.request(ECHO, big.clone()).into_future());
    for result in futures_util::future::join_all(calls).await {
        assert_eq!(result, Err(Error::Disconnected));
    }
    let started = Instant::now();
    cluster.wait_connected().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "reconnected after {:?}",
        started.elapsed()
    );
    assert_eq!(conn.request(ECHO, "back").await.unwrap(), "back");
    cluster.shutdown().await;
}
