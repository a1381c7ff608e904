use std::time::Duration;

use bytes::Bytes;

use crate::sim::events::{read_messages, read_to_end};
use crate::sim::streams::window_of;
use crate::sim::{sim_config, Pair};
use crate::{CallId, CallTarget, CommandError, Error, Event, IncomingCall, ReadOutcome, Role};

/// A stream the client opened with the payload `init` and a window of
/// `window`, as both sides know it.
fn open(pair: &mut Pair, window: u32) -> (CallId, IncomingCall) {
    let (id, call) = pair.open_stream(Bytes::from_static(b"init"), window);
    assert_eq!(call.payload.as_ref(), b"init");
    (id, call)
}

#[test]
fn two_way_lock_step_echo_ends_cleanly() {
    let mut pair = Pair::connected(1);
    pair.max_chunk = 7;
    let (id, call) = open(&mut pair, 1);
    pair.server.conn.accept_stream(call.id, 1).unwrap();
    pair.drive();
    assert_eq!(
        pair.client.take_events(),
        vec![Event::StreamWritable { id }]
    );
    for i in 0..10u8 {
        pair.client
            .conn
            .send_message(id, Bytes::from(vec![i]))
            .unwrap();
        pair.drive();
        let events = pair.server.take_events();
        assert!(
            events.contains(&Event::StreamReadable { id: call.id }),
            "{events:?}"
        );
        let got = read_messages(&mut pair.server.conn, call.id);
        assert_eq!(got, vec![Bytes::from(vec![i])]);
        pair.server
            .conn
            .send_message(call.id, Bytes::from(vec![i]))
            .unwrap();
        pair.drive();
        let events = pair.client.take_events();
        assert!(events.contains(&Event::StreamReadable { id }), "{events:?}");
        assert_eq!(
            read_messages(&mut pair.client.conn, id),
            vec![Bytes::from(vec![i])]
        );
        pair.drive();
        pair.client.take_events();
    }
    pair.server.take_events();
    pair.client.conn.finish(id).unwrap();
    pair.drive();
    assert_eq!(
        pair.server.take_events(),
        vec![Event::StreamReadable { id: call.id }]
    );
    assert_eq!(
        read_to_end(&mut pair.server.conn, call.id),
        (Vec::new(), ReadOutcome::Finished)
    );
    pair.server.conn.finish(call.id).unwrap();
    pair.drive();
    assert_eq!(pair.client.take_events(), vec![Event::StreamEnded { id }]);
    assert_eq!(
        read_to_end(&mut pair.client.conn, id),
        (Vec::new(), ReadOutcome::Finished)
    );
    pair.client.conn.cancel(id).unwrap();
    assert_eq!(pair.client.conn.in_flight(), (0, 0));
    assert_eq!(pair.server.conn.in_flight(), (0, 0));
    assert_eq!(pair.client.conn.stats().buffered_bytes, 0);
}

#[test]
fn sender_blocks_without_credit_and_resumes_when_the_receiver_reads() {
    let mut pair = Pair::connected(2);
    let (id, call) = open(&mut pair, window_of(2, 1));
    // The server may send as many messages as the client's window.
    pair.server
        .conn
        .send_message(call.id, Bytes::from_static(b"a"))
        .unwrap();
    pair.server
        .conn
        .send_message(call.id, Bytes::from_static(b"b"))
        .unwrap();
    assert_eq!(
        pair.server
            .conn
            .send_message(call.id, Bytes::from_static(b"c")),
        Err(CommandError::NoCredit)
    );
    assert!(!pair.server.conn.can_send(call.id));
    pair.drive();
    assert_eq!(
        pair.client.take_events(),
        vec![Event::StreamReadable { id }]
    );
    assert_eq!(pair.client.conn.stats().buffered_bytes, 2);
    let mut read = std::collections::VecDeque::new();
    assert_eq!(
        pair.client.conn.read(id, &mut read, 1),
        Ok(ReadOutcome::Messages {
            count: 1,
            credit_granted: true
        })
    );
    assert_eq!(read, [Bytes::from_static(b"a")]);
    pair.drive();
    assert_eq!(
        pair.server.take_events(),
        vec![Event::StreamWritable { id: call.id }]
    );
    pair.server
        .conn
        .send_message(call.id, Bytes::from_static(b"c"))
        .unwrap();
}

#[test]
fn finish_delivers_every_buffered_message_before_the_end() {
    let mut pair = fixed_windows(3);
    pair.max_chunk = 1000;
    let (id, call) = open(&mut pair, window_of(64, 100_000));
    let big = Bytes::from(vec![9u8; 100_000]);
    for i in 0..64u32 {
        let payload = if i % 8 == 0 {
            big.clone()
        } else {
            Bytes::from(i.to_le_bytes().to_vec())
        };
        pair.server.conn.send_message(call.id, payload).unwrap();
    }
    pair.server.conn.finish(call.id).unwrap();
    assert_eq!(pair.server.conn.in_flight(), (0, 0));
    pair.drive();
    assert_eq!(
        pair.client.take_events(),
        vec![Event::StreamReadable { id }, Event::StreamEnded { id }]
    );
    let (messages, end) = read_to_end(&mut pair.client.conn, id);
    assert_eq!(messages.len(), 64);
    assert_eq!(end, ReadOutcome::Finished);
    for (i, payload) in messages.iter().enumerate() {
        if i % 8 == 0 {
            assert_eq!(payload, &big);
        } else {
            assert_eq!(payload.as_ref(), (i as u32).to_le_bytes());
        }
    }
}

#[test]
fn handler_error_after_messages_arrives_after_them() {
    let mut pair = Pair::connected(4);
    let (id, call) = open(&mut pair, 4);
    pair.server
        .conn
        .send_message(call.id, Bytes::from_static(b"1"))
        .unwrap();
    pair.server
        .conn
        .fail(call.id, Error::Remote(Bytes::from_static(b"disk gone")))
        .unwrap();
    pair.drive();
    assert_eq!(
        pair.client.take_events(),
        vec![Event::StreamReadable { id }, Event::StreamEnded { id }]
    );
    assert_eq!(
        read_to_end(&mut pair.client.conn, id),
        (
            vec![Bytes::from_static(b"1")],
            ReadOutcome::Failed(Error::Remote(Bytes::from_static(b"disk gone")))
        )
    );
}

#[test]
fn client_cancel_reaches_the_handler_with_a_full_input_queue() {
    for window in [0u32, 1, 4] {
        let mut pair = Pair::connected(5);
        let (id, call) = open(&mut pair, 1);
        pair.server
            .conn
            .accept_stream(call.id, window_of(window, 1))
            .unwrap();
        pair.drive();
        pair.client.take_events();
        // Fill the server's input window without it consuming anything.
        for _ in 0..window {
            pair.client
                .conn
                .send_message(id, Bytes::from_static(b"x"))
                .unwrap();
        }
        assert_eq!(
            pair.client.conn.send_message(id, Bytes::from_static(b"x")),
            Err(CommandError::NoCredit)
        );
        pair.drive();
        pair.server.take_events();
        pair.client.conn.cancel(id).unwrap();
        pair.drive();
        assert_eq!(
            pair.server.take_events(),
            vec![Event::IncomingCancelled {
                id: call.id,
                reason: Error::Cancelled
            }],
            "window {window}"
        );
        assert!(pair.client.take_events().is_empty());
        // The handler's answer after the cancel frees its slot and sends nothing.
        pair.server.conn.finish(call.id).unwrap();
        pair.drive();
        assert_eq!(pair.server.conn.in_flight(), (0, 0));
        assert_eq!(pair.server.conn.stats().buffered_bytes, 0);
        assert!(pair.client.take_events().is_empty());
    }
}

#[test]
fn responder_reset_ends_the_callers_stream() {
    let mut pair = Pair::connected(6);
    let (id, call) = open(&mut pair, 1);
    pair.server.conn.cancel(call.id).unwrap();
    pair.drive();
    assert_eq!(pair.client.take_events(), vec![Event::StreamEnded { id }]);
    assert_eq!(
        read_to_end(&mut pair.client.conn, id),
        (Vec::new(), ReadOutcome::Failed(Error::Cancelled))
    );
}

#[test]
fn blocked_consumer_does_not_stop_keepalive() {
    let mut pair = Pair::connected(7);
    let (_, call) = open(&mut pair, window_of(2, 1));
    pair.latency = Duration::from_millis(5);
    pair.server
        .conn
        .send_message(call.id, Bytes::from_static(b"a"))
        .unwrap();
    pair.server
        .conn
        .send_message(call.id, Bytes::from_static(b"b"))
        .unwrap();
    // Nobody reads for many idle timeouts; pings and pongs keep flowing.
    pair.advance(Duration::from_secs(120));
    assert!(!pair.client.conn.is_closed());
    assert!(!pair.server.conn.is_closed());
    assert!(pair.client.conn.rtt().is_some());
}

#[test]
fn stalled_stream_does_not_hold_small_requests_hostage() {
    let mut pair = fixed_windows(8);
    let (_, call) = open(&mut pair, window_of(100, 20_000));
    for i in 0..100u32 {
        pair.server
            .conn
            .send_message(call.id, Bytes::from(vec![i as u8; 20_000]))
            .unwrap();
    }
    let request = pair
        .client
        .conn
        .open_request(
            pair.now,
            CallTarget::new(1),
            Bytes::from_static(b"ping"),
            None,
        )
        .unwrap();
    // Let only one transmit buffer through from each side: the request must be in
    // the client's first, and the response must come before the bulk finishes.
    let first = pair.client.conn.poll_transmit(pair.now).unwrap();
    pair.server.conn.handle_input(pair.now, &first);
    let mut server_events = Vec::new();
    while let Some(event) = pair.server.conn.poll_event() {
        server_events.push(event);
    }
    let incoming = server_events
        .iter()
        .find_map(|event| match event {
            Event::IncomingRequest(call) => Some(call.id),
            _ => None,
        })
        .expect("request arrived in the first buffer");
    pair.server
        .conn
        .respond(incoming, Bytes::from_static(b"pong"))
        .unwrap();
    let mut before_response = 0usize;
    loop {
        let buffer = pair.server.conn.poll_transmit(pair.now).unwrap();
        pair.client.conn.handle_input(pair.now, &buffer);
        before_response += buffer.len();
        let mut done = false;
        while let Some(event) = pair.client.conn.poll_event() {
            if let Event::RequestEnded { id, result } = event {
                assert_eq!(id, request);
                assert_eq!(result, Ok(Bytes::from_static(b"pong")));
                done = true;
            }
        }
        if done {
            break;
        }
    }
    // 2 MB of bulk is queued; the response overtook nearly all of it.
    assert!(
        before_response < 200_000,
        "{before_response} bytes before the response"
    );
}

#[test]
fn a_reader_that_stops_reading_never_blocks_its_peer() {
    let mut pair = Pair::connected(9);
    let (id, call) = open(&mut pair, window_of(2, 1));
    for message in [&b"a"[..], b"b"] {
        pair.server
            .conn
            .send_message(call.id, Bytes::copy_from_slice(message))
            .unwrap();
    }
    pair.drive();
    assert!(!pair.server.conn.can_send(call.id));
    assert_eq!(pair.client.conn.stats().buffered_bytes, 2);
    assert_eq!(
        pair.client.take_events(),
        vec![Event::StreamReadable { id }]
    );
    // What waited is dropped and its credit returned; later messages are
    // dropped as they arrive, their credit returned as if read.
    pair.client.conn.stop_reading(id).unwrap();
    assert_eq!(pair.client.conn.stats().buffered_bytes, 0);
    pair.drive();
    for i in 0..20u8 {
        assert!(pair.server.conn.can_send(call.id), "message {i}");
        pair.server
            .conn
            .send_message(call.id, Bytes::from(vec![i; 100]))
            .unwrap();
        pair.drive();
    }
    assert_eq!(pair.client.conn.stats().buffered_bytes, 0);
    assert!(!pair
        .client
        .take_events()
        .iter()
        .any(|event| matches!(event, Event::StreamReadable { .. })));
    // The end still reads as the end.
    pair.server.conn.finish(call.id).unwrap();
    pair.drive();
    assert_eq!(
        read_to_end(&mut pair.client.conn, id),
        (Vec::new(), ReadOutcome::Finished)
    );
}

/// A connected pair whose streams' windows are granted whole at once, for
/// tests that fill a window before anything is read.
fn fixed_windows(seed: u64) -> Pair {
    let [client, server] =
        [(Role::Dialer, seed), (Role::Acceptor, seed + 1)].map(|(role, seed)| {
            let mut config = sim_config(role, seed);
            config.limits.stream_window_start = u32::MAX;
            config
        });
    Pair::connected_with(client, server, seed)
}
