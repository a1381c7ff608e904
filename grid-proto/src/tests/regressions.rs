//! Cases found in review, each once a connection-killing or contract-breaking bug.

use std::time::Duration;

use bytes::Bytes;

use crate::config::Role;
use crate::decoder::FrameDecoder;
use crate::frame::Op;
use crate::sim::events::read_messages;
use crate::sim::frames::raw_frame;
use crate::sim::streams::window_of;
use crate::sim::{sim_config, Pair};
use crate::{CallTarget, CloseReason, Error, Event};

#[test]
fn credit_between_fragments_of_a_large_message_is_not_a_protocol_error() {
    let mut pair = Pair::connected(1);
    let (id, call) = pair.accepted_stream(window_of(4, 1), 4);
    let call = call.id;
    for _ in 0..4 {
        pair.server
            .conn
            .send_message(call, Bytes::from_static(b"s"))
            .unwrap();
    }
    pair.drive();
    // The client sends a large message and, while its fragments are queued,
    // reads the server's messages: credit frames interleave with them.
    pair.client
        .conn
        .send_message(id, Bytes::from(vec![7u8; 100_000]))
        .unwrap();
    let first = pair.client.conn.poll_transmit(pair.now).unwrap();
    pair.server.conn.handle_input(pair.now, &first);
    let mut read = std::collections::VecDeque::new();
    for _ in 0..4 {
        pair.client.conn.read(id, &mut read, 1).unwrap();
    }
    assert_eq!(read.len(), 4);
    pair.drive();
    assert!(
        !pair.server.conn.is_closed(),
        "{:?}",
        pair.server.conn.close_reason()
    );
    assert!(pair
        .server
        .take_events()
        .contains(&Event::StreamReadable { id: call }));
    assert_eq!(
        read_messages(&mut pair.server.conn, call),
        vec![Bytes::from(vec![7u8; 100_000])]
    );
}

#[test]
fn cancelling_a_partly_sent_request_keeps_the_connection() {
    let mut pair = Pair::connected(2);
    let id = pair
        .client
        .conn
        .open_request(
            pair.now,
            CallTarget::new(1),
            Bytes::from(vec![1u8; 100_000]),
            None,
        )
        .unwrap();
    let first = pair.client.conn.poll_transmit(pair.now).unwrap();
    pair.server.conn.handle_input(pair.now, &first);
    pair.client.conn.cancel(id).unwrap();
    let second = pair
        .client
        .conn
        .open_request(
            pair.now,
            CallTarget::new(1),
            Bytes::from_static(b"next"),
            None,
        )
        .unwrap();
    pair.drive();
    assert!(
        !pair.server.conn.is_closed(),
        "{:?}",
        pair.server.conn.close_reason()
    );
    let events = pair.server.take_events();
    assert!(
        matches!(&events[..], [Event::IncomingRequest(call)] if call.payload.as_ref() == b"next"),
        "{events:?}"
    );
    assert_eq!(pair.server.conn.stats().buffered_bytes, 0);
    let _ = second;
}

#[test]
fn closed_is_the_last_event_when_a_drain_ends_with_an_outgoing_call() {
    let mut pair = Pair::connected(3);
    let id = pair
        .server
        .conn
        .open_request(
            pair.now,
            CallTarget::new(1),
            Bytes::from(vec![1u8; 100_000]),
            None,
        )
        .unwrap();
    pair.drive();
    let incoming = match &pair.client.take_events()[..] {
        [Event::IncomingRequest(call)] => call.id,
        other => panic!("{other:?}"),
    };
    pair.server
        .conn
        .begin_drain(pair.now, Duration::from_secs(5));
    pair.drive();
    pair.client
        .conn
        .respond(incoming, Bytes::from_static(b"a"))
        .unwrap();
    pair.drive();
    assert_eq!(
        pair.server.take_events(),
        vec![
            Event::RequestEnded {
                id,
                result: Ok(Bytes::from_static(b"a"))
            },
            Event::Closed(CloseReason::Drained),
        ]
    );
}

#[test]
fn calls_queued_before_the_goaway_arrives_are_refused_not_lost() {
    let mut pair = Pair::connected(4);
    // The client queues requests but has not written them when the GoAway and
    // its ping arrive.
    let ids: Vec<_> = (0..3)
        .map(|_| {
            pair.client
                .conn
                .open_request(pair.now, CallTarget::new(1), Bytes::from_static(b"x"), None)
                .unwrap()
        })
        .collect();
    pair.server
        .conn
        .begin_drain(pair.now, Duration::from_secs(5));
    while let Some(bytes) = pair.server.conn.poll_transmit(pair.now) {
        pair.client.conn.handle_input(pair.now, &bytes);
    }
    pair.drive();
    let events = pair.client.take_events();
    for id in ids {
        assert!(
            events.contains(&Event::RequestEnded {
                id,
                result: Err(Error::Draining)
            }),
            "{events:?}"
        );
    }
    assert!(events.contains(&Event::Closed(CloseReason::Peer("drained".into()))));
}

#[test]
fn a_deadline_clamped_by_the_responder_fails_the_caller_at_the_clamped_time() {
    let client = sim_config(Role::Dialer, 1);
    let mut server = sim_config(Role::Acceptor, 2);
    server.timeouts.max_deadline = Duration::from_secs(1);
    let mut pair = Pair::connected_with(client, server, 5);
    let id = pair
        .client
        .conn
        .open_request(
            pair.now,
            CallTarget::new(1),
            Bytes::new(),
            Some(Duration::from_secs(30)),
        )
        .unwrap();
    pair.advance(Duration::from_millis(1100));
    assert_eq!(
        pair.client.take_events(),
        vec![Event::RequestEnded {
            id,
            result: Err(Error::DeadlineExceeded)
        }]
    );
}

#[test]
fn reject_after_the_handshake_keeps_the_peers_reason() {
    let mut pair = Pair::connected(6);
    let wire = raw_frame(Op::Reject, 0, 0, 0, b"handshake timed out");
    pair.client.conn.handle_input(pair.now, &wire);
    assert_eq!(
        pair.client.take_events(),
        vec![Event::Closed(CloseReason::Rejected(
            "handshake timed out".into()
        ))]
    );
}

#[test]
fn empty_fragments_cannot_create_unbounded_partial_messages() {
    let mut pair = Pair::connected(7);
    let mut wire = Vec::new();
    for mux in 1..100_000u32 {
        wire.extend(raw_frame(
            Op::Message,
            crate::FLAG_MORE,
            mux | 1 << 31,
            0,
            b"",
        ));
    }
    pair.client.conn.handle_input(pair.now, &wire);
    assert!(matches!(
        pair.client.take_events().last(),
        Some(Event::Closed(CloseReason::LimitExceeded(_)))
    ));
}

/// Found by the `connection_input` fuzz target: a pong held back until this
/// side's calls opened before the peer's drain are written went out after a
/// `Close` that came first.
#[test]
fn a_pong_held_back_for_a_drain_never_follows_the_close() {
    let mut pair = Pair::connected(3);
    pair.server
        .conn
        .open_request(
            pair.now,
            CallTarget::new(1),
            Bytes::from(vec![1u8; 100_000]),
            None,
        )
        .unwrap();
    // The client drains: its ping must be answered after the server's open,
    // which has not been written yet.
    let mut wire = raw_frame(Op::GoAway, 0, 0, 0, &[]);
    wire.extend(raw_frame(Op::Ping, 0, 0, 159, &[]));
    pair.server.conn.handle_input(pair.now, &wire);
    pair.server.conn.close("closing before the pong");
    let mut written = FrameDecoder::new(u32::MAX);
    while let Some(bytes) = pair.server.conn.poll_transmit(pair.now) {
        written.push(&bytes);
    }
    let ops: Vec<Op> = std::iter::from_fn(|| written.next_frame().unwrap())
        .map(|(header, _)| header.op)
        .collect();
    assert_eq!(ops.last(), Some(&Op::Close), "{ops:?}");
    assert!(!pair.server.conn.wants_write());
}
