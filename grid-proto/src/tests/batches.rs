//! Runs of small stream messages travel in shared `Messages` frames; the
//! receiver sees each message on its own, and a malformed batch fails only its
//! call.

use bytes::Bytes;

use crate::frame::{Op, FLAG_MORE};
use crate::sim::events::{closed_reason, read_messages, read_to_end};
use crate::sim::frames::{batch, raw_frame};
use crate::sim::streams::window_of;
use crate::sim::Pair;
use crate::{CallId, CloseReason, Connection, Error, Event, ReadOutcome};

/// The protocol error stream `id` ended with, if `events` say it ended; the
/// messages before it are read (and returned) first.
fn stream_error(
    conn: &mut Connection,
    id: CallId,
    events: &[Event],
) -> (Vec<Bytes>, Option<String>) {
    if !events.contains(&Event::StreamEnded { id }) {
        return (Vec::new(), None);
    }
    match read_to_end(conn, id) {
        (messages, ReadOutcome::Failed(Error::Protocol(text))) => (messages, Some(text)),
        (messages, _) => (messages, None),
    }
}

#[test]
fn a_run_of_small_messages_shares_frames_and_arrives_whole_and_in_order() {
    let mut pair = Pair::connected(40);
    let (id, _) = pair.accepted_stream(0, 64 * 1024);
    let sent: Vec<Bytes> = (0..600u32)
        .map(|i| Bytes::from(vec![i as u8; (i % 40) as usize]))
        .collect();
    for message in &sent {
        pair.client.conn.send_message(id, message.clone()).unwrap();
    }
    let wire_before = pair.client.conn.stats().bytes_sent;
    pair.drive();
    let wire = pair.client.conn.stats().bytes_sent - wire_before;
    // A frame each would cost 14 bytes of header per message; a batch entry 4.
    let payload: usize = sent.iter().map(Bytes::len).sum();
    assert!(
        (wire as usize) < payload + 600 * 6,
        "{wire} bytes on the wire for {payload} bytes of 600 messages"
    );
    let id = match &pair.server.take_events()[..] {
        [Event::StreamReadable { id }] => *id,
        other => panic!("{other:?}"),
    };
    assert_eq!(read_messages(&mut pair.server.conn, id), sent);
    assert!(!pair.server.conn.is_closed());
}

#[test]
fn malformed_batches_fail_only_their_call() {
    let cases: [(&str, Vec<u8>); 3] = [
        ("empty", Vec::new()),
        ("cut inside a length", vec![1, 0, 0]),
        ("overruns", {
            let mut payload = batch(&[b"ok"]);
            payload.extend_from_slice(&9u32.to_le_bytes());
            payload.extend_from_slice(b"short");
            payload
        }),
    ];
    for (seed, (what, payload)) in (41..).zip(cases) {
        let mut pair = Pair::connected(seed);
        let id = pair.open_stream(Bytes::new(), 8).0;
        let wire = raw_frame(Op::Messages, 0, id.raw(), 0, &payload);
        pair.client.conn.handle_input(pair.now, &wire);
        let events = pair.client.take_events();
        let (_, error) = stream_error(&mut pair.client.conn, id, &events);
        assert!(error.is_some(), "{what}: {events:?}");
        assert!(!pair.client.conn.is_closed(), "{what}");
    }
}

#[test]
fn a_batch_beyond_credit_delivers_what_was_granted_then_fails_the_call() {
    let mut pair = Pair::connected(45);
    let id = pair.open_stream(Bytes::new(), window_of(2, 3)).0;
    let wire = raw_frame(
        Op::Messages,
        0,
        id.raw(),
        0,
        &batch(&[b"one", b"two", b"three"]),
    );
    pair.client.conn.handle_input(pair.now, &wire);
    let events = pair.client.take_events();
    let (messages, error) = stream_error(&mut pair.client.conn, id, &events);
    assert_eq!(
        messages,
        vec![Bytes::from_static(b"one"), Bytes::from_static(b"two")]
    );
    assert!(
        error.is_some_and(|text| text.contains("credit")),
        "{events:?}"
    );
    assert!(!pair.client.conn.is_closed());
}

#[test]
fn a_fragmented_batch_closes_the_connection() {
    let mut pair = Pair::connected(46);
    let mux = pair.open_stream(Bytes::new(), 8).0.raw();
    let wire = raw_frame(Op::Messages, FLAG_MORE, mux, 0, &batch(&[b"one"]));
    pair.client.conn.handle_input(pair.now, &wire);
    let closed = closed_reason(&pair.client.take_events());
    assert!(
        matches!(&closed, Some(CloseReason::Protocol(text)) if text.contains("fragmented")),
        "{closed:?}"
    );
}
