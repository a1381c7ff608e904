//! Streams and cancellation: ordering, errors after messages, batching sinks,
//! and dropping a call cancelling its handler.

use std::future::IntoFuture;

use bytes::Bytes;
use grid_proto::Error;

use crate::conformance::cluster::{handlers::*, Cluster};
use crate::conformance::TestRuntime;

use super::{remote, until_started, WAIT};

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
