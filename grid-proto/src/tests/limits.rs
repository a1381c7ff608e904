use std::time::Duration;

use bytes::Bytes;

use crate::config::Role;
use crate::frame::Op;
use crate::sim::events::{closed_reason, read_to_end};
use crate::sim::frames::raw_frame;
use crate::sim::streams::window_of;
use crate::sim::{sim_config, Pair};
use crate::{CallTarget, CloseReason, CommandError, Error, Event, ReadOutcome};

#[test]
fn excess_incoming_calls_get_overloaded_at_once() {
    let client = sim_config(Role::Dialer, 1);
    let mut server = sim_config(Role::Acceptor, 2);
    server.limits.max_incoming_calls = 2;
    let mut pair = Pair::connected_with(client, server, 3);
    // The client knows the limit from the handshake and refuses locally...
    let ids: Vec<_> = (0..2)
        .map(|_| {
            pair.client
                .conn
                .open_request(pair.now, CallTarget::new(1), Bytes::new(), None)
                .unwrap()
        })
        .collect();
    assert_eq!(
        pair.client
            .conn
            .open_request(pair.now, CallTarget::new(1), Bytes::new(), None),
        Err(CommandError::Call(Error::Overloaded))
    );
    pair.drive();
    assert_eq!(pair.server.take_events().len(), 2);
    // ...and a call the server still counts (cancelled, but not yet ended by its
    // application) keeps its slot, so a cancel flood cannot exceed the limit.
    pair.client.conn.cancel(ids[0]).unwrap();
    let third = pair
        .client
        .conn
        .open_request(pair.now, CallTarget::new(1), Bytes::new(), None)
        .unwrap();
    pair.drive();
    assert_eq!(
        pair.client.take_events(),
        vec![Event::RequestEnded {
            id: third,
            result: Err(Error::Overloaded)
        }]
    );
}

#[test]
fn oversized_messages_fail_locally() {
    let mut pair = Pair::connected(4);
    let max = pair.server.conn.config().limits.max_message_size as usize;
    let result = pair.client.conn.open_request(
        pair.now,
        CallTarget::new(1),
        Bytes::from(vec![0u8; max]),
        None,
    );
    assert!(
        matches!(result, Err(CommandError::Call(Error::TooLarge { .. }))),
        "{result:?}"
    );
    let subroute = [b'x'; 256];
    assert!(matches!(
        pair.client.conn.open_request(
            pair.now,
            CallTarget::with_subroute(1, &subroute),
            Bytes::new(),
            None
        ),
        Err(CommandError::Call(Error::TooLarge {
            size: 256,
            max: 255
        }))
    ));
}

#[test]
fn deadlines_under_a_millisecond_fail_locally_and_long_ones_are_clamped() {
    let mut pair = Pair::connected(5);
    assert_eq!(
        pair.client.conn.open_request(
            pair.now,
            CallTarget::new(1),
            Bytes::new(),
            Some(Duration::from_micros(900))
        ),
        Err(CommandError::Call(Error::DeadlineExceeded))
    );
    pair.client
        .conn
        .open_request(
            pair.now,
            CallTarget::new(1),
            Bytes::new(),
            Some(Duration::from_secs(1_000_000)),
        )
        .unwrap();
    pair.drive();
    let max = pair.server.conn.config().timeouts.max_deadline;
    match &pair.server.take_events()[..] {
        [Event::IncomingRequest(call)] => assert_eq!(call.deadline, pair.now + max),
        other => panic!("{other:?}"),
    }
}

#[test]
fn send_buffer_refuses_when_full_and_says_when_writable() {
    let mut client = sim_config(Role::Dialer, 1);
    client.limits.send_buffer_size = 100_000;
    let server = sim_config(Role::Acceptor, 2);
    let mut pair = Pair::with_configs(client, server, 6);
    pair.drive();
    pair.client.take_events();
    let payload = Bytes::from(vec![0u8; 60_000]);
    pair.client
        .conn
        .open_request(pair.now, CallTarget::new(1), payload.clone(), None)
        .unwrap();
    pair.client
        .conn
        .open_request(pair.now, CallTarget::new(1), payload.clone(), None)
        .unwrap();
    assert_eq!(
        pair.client
            .conn
            .open_request(pair.now, CallTarget::new(1), payload, None),
        Err(CommandError::SendBufferFull)
    );
    pair.drive();
    assert!(pair.client.take_events().contains(&Event::Writable));
}

#[test]
fn oversized_frame_header_closes_the_connection_before_buffering() {
    let mut pair = Pair::connected(7);
    let mut header = Vec::new();
    crate::Header {
        len: u32::MAX,
        op: Op::Message,
        flags: 0,
        mux: 1,
        arg: 0,
    }
    .encode(&mut header);
    pair.server.conn.handle_input(pair.now, &header);
    pair.drive();
    assert!(
        matches!(closed_reason(&pair.server.take_events()).expect("connection closed"), CloseReason::Protocol(text) if text.contains("exceeds"))
    );
}

#[test]
fn peer_opening_a_call_in_our_namespace_is_a_protocol_error() {
    let mut pair = Pair::connected(8);
    // Mux 5 without bit 31 belongs to the dialer (client); the client must not accept it.
    let frame = raw_frame(Op::Request, 0, 5, 1000, &[1, 0, 0]);
    pair.client.conn.handle_input(pair.now, &frame);
    assert!(matches!(
        closed_reason(&pair.client.take_events()).expect("connection closed"),
        CloseReason::Protocol(_)
    ));
}

#[test]
fn stray_frames_for_unknown_calls_are_ignored() {
    let mut pair = Pair::connected(9);
    let mut wire = raw_frame(Op::Response, 0, 77, 0, b"late");
    wire.extend(raw_frame(Op::Cancel, 0, 0x8000_0005, 0, b""));
    wire.extend(raw_frame(Op::Message, 0, 0x8000_0005, 0, b"m"));
    pair.client.conn.handle_input(pair.now, &wire);
    pair.drive();
    assert!(pair.client.take_events().is_empty());
    assert!(!pair.client.conn.is_closed());
}

#[test]
fn message_beyond_credit_fails_only_that_call() {
    let mut pair = Pair::connected(10);
    let (id, _) = pair.open_stream(Bytes::new(), 1);
    // Forge two messages from the server where one credit was granted.
    let mut wire = raw_frame(Op::Message, 0, id.raw(), 0, b"one");
    wire.extend(raw_frame(Op::Message, 0, id.raw(), 1, b"two"));
    pair.client.conn.handle_input(pair.now, &wire);
    let events = pair.client.take_events();
    assert_eq!(
        events,
        vec![Event::StreamReadable { id }, Event::StreamEnded { id }]
    );
    let (messages, end) = read_to_end(&mut pair.client.conn, id);
    assert_eq!(messages, vec![Bytes::from_static(b"one")]);
    assert!(
        matches!(&end, ReadOutcome::Failed(Error::Protocol(text)) if text.contains("credit")),
        "{end:?}"
    );
    assert!(!pair.client.conn.is_closed());
}

#[test]
fn ping_flood_exhausts_the_cheap_frame_budget() {
    let mut pair = Pair::connected(11);
    let burst = pair.server.conn.config().limits.cheap_frame_burst as usize;
    let ping = raw_frame(Op::Ping, 0, 0, 1, b"");
    let flood: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * (burst + 10))
        .collect();
    pair.server.conn.handle_input(pair.now, &flood);
    assert!(matches!(
        closed_reason(&pair.server.take_events()).expect("connection closed"),
        CloseReason::LimitExceeded(_)
    ));
}

#[test]
fn unconsumed_input_beyond_the_buffer_limit_closes_the_connection() {
    let client = sim_config(Role::Dialer, 1);
    let mut server = sim_config(Role::Acceptor, 2);
    server.limits.max_buffered_bytes = 100_000;
    // The whole window at once, so that the three messages are sent unread.
    server.limits.stream_window_start = u32::MAX;
    let mut pair = Pair::connected_with(client, server, 12);
    let (id, _) = pair.accepted_stream(0, window_of(3, 40_000));
    for _ in 0..3 {
        pair.client
            .conn
            .send_message(id, Bytes::from(vec![0u8; 40_000]))
            .unwrap();
    }
    pair.drive();
    assert!(matches!(
        closed_reason(&pair.server.take_events()).expect("connection closed"),
        CloseReason::LimitExceeded(_)
    ));
}

#[test]
fn more_on_an_unfragmentable_frame_is_a_protocol_error_even_on_an_unknown_mux() {
    for op in [Op::Credit, Op::Fin, Op::Cancel, Op::Messages] {
        let mut pair = Pair::connected(40);
        // Mux 12345 was never opened: the frame would otherwise be dropped.
        let frame = raw_frame(op, crate::FLAG_MORE, 12345, 1, &[]);
        pair.server.conn.handle_input(pair.now, &frame);
        match pair.server.conn.close_reason() {
            Some(CloseReason::Protocol(text)) => assert!(text.contains("MORE"), "{text}"),
            other => panic!("{op:?}: {other:?}"),
        }
    }
}
