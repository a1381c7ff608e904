//! Failures: dead, cut, stopped, draining and vanished peers, and close reasons
//! that must arrive.

use std::future::IntoFuture;
use std::time::Duration;

use bytes::Bytes;
use grid_proto::{dials, CloseReason, Error};

use crate::conformance::bare::{drive_to_close, raw_connection, NoHandlers};
use crate::conformance::cluster::{handlers::*, Cluster, ClusterOptions};
use crate::conformance::paused_reads::{PausedReads, ReadSwitch};
use crate::conformance::transport::dial_as;
use crate::conformance::TestRuntime;
use crate::conformance::{elapsed, sleep};
use crate::driver::Exit;

use super::{until_started, WAIT};

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
    let started = rt.now();
    assert_eq!(call.await, Err(Error::Disconnected));
    let bound = crate::conformance::cluster::test_timeouts().idle
        + crate::conformance::cluster::test_timeouts().keepalive_interval;
    assert!(
        elapsed(&rt, started) <= bound + Duration::from_millis(300),
        "took {:?}",
        elapsed(&rt, started)
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
    let deadline = rt.now() + WAIT;
    while conn.is_connected() && rt.now() < deadline {
        sleep(&rt, Duration::from_millis(5)).await;
    }
    let started = rt.now();
    assert_eq!(conn.request(ECHO, "x").await, Err(Error::Disconnected));
    assert!(Error::Disconnected.is_retryable());
    assert!(
        elapsed(&rt, started) < Duration::from_millis(50),
        "{:?}",
        elapsed(&rt, started)
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
    let deadline = rt.now() + WAIT;
    let refused = loop {
        match conn.request(ECHO, "new").await {
            Err(error) => break error,
            Ok(_) if rt.now() < deadline => sleep(&rt, Duration::from_millis(2)).await,
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
    let deadline = rt.now() + WAIT;
    while !drained.load(std::sync::atomic::Ordering::SeqCst) && rt.now() < deadline {
        sleep(&rt, Duration::from_millis(5)).await;
    }
    assert!(drained.load(std::sync::atomic::Ordering::SeqCst));
    cluster.stop(1).await;
    cluster.shutdown().await;
}

/// A node that closes while its peer is still sending to it (so it has input
/// it never read, and the peer has paused its reading for a moment) still
/// gets its reason across: the peer reads the `Close` it sent, not a reset,
/// every time.
pub async fn close_reason_arrives_despite_unread_input<R: TestRuntime>(rt: R) {
    use std::sync::atomic::{AtomicUsize, Ordering};

    // The sink grants its whole window at once (it is not tuned), so that
    // the sender gets well ahead of the closing node's reads.
    let options = ClusterOptions {
        limits: Some(grid_proto::Limits {
            stream_window_start: u32::MAX,
            ..grid_proto::Limits::default()
        }),
        ..ClusterOptions::default()
    };
    let mut cluster = Cluster::start_with(&rt, 2, options).await;
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
        let start = rt.now();
        while cluster.conn(closer, sender).is_connected() {
            assert!(
                elapsed(&rt, start) < WAIT,
                "the old connection never closed"
            );
            sleep(&rt, Duration::from_millis(5)).await;
        }
        let reads = ReadSwitch::default();
        let io = dial_as(&rt, &cluster.names[closer], &cluster.names[sender])
            .await
            .expect("connect");
        let io = Box::new(PausedReads::new(io, reads.clone()));
        let (shared, mut driver) = raw_connection(&rt, io, &cluster.names[sender]);
        match std::future::poll_fn(|cx| driver.poll_drive(cx, &NoHandlers)).await {
            Exit::Connected(_) => {}
            Exit::Closed(reason) => panic!("round {round}: handshake failed: {reason}"),
        }
        let slot = crate::peer::PeerSlot::new(
            &cluster.names[closer],
            crate::runtime::clock(&rt),
            Default::default(),
        );
        slot.install(shared, 0, rt.now(), Duration::ZERO);
        let peer = crate::peer::Peer { slot };
        let sent = AtomicUsize::new(0);
        let send = async {
            let (mut tx, _rx) = peer.stream(STREAM_SINK, "").open().await.unwrap().split();
            let message = Bytes::from(vec![1u8; 16 * 1024]);
            // The first message waits for the sink's credit; the next sixty
            // or so are within it and wait for no read, the rest wait for
            // credit until the close ends the stream.
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
            // Well into the stream, so the closing node has input in flight;
            // within the sink's window (1 MiB, 63 of these messages), since
            // the sender reads no credit while its reads are paused.
            while sent.load(Ordering::Relaxed) < 40 {
                sleep(&rt, Duration::from_millis(1)).await;
            }
            cluster.stop(closer).await;
            sleep(&rt, Duration::from_millis(200)).await;
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
    let started = rt.now();
    cluster.wait_connected().await;
    assert!(
        elapsed(&rt, started) < Duration::from_secs(3),
        "reconnected after {:?}",
        elapsed(&rt, started)
    );
    assert_eq!(conn.request(ECHO, "back").await.unwrap(), "back");
    cluster.shutdown().await;
}
