//! Backpressure: a stalled stream or a full send buffer holds back only what it
//! must, and waiting senders are woken.

use std::time::Duration;

use bytes::Bytes;

use crate::conformance::cluster::{handlers::*, Cluster, ClusterOptions};
use crate::conformance::{sleep, TestRuntime};

use super::WAIT;

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
    sleep(&rt, Duration::from_millis(50)).await;
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
    sleep(&rt, Duration::from_millis(1200)).await;
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
