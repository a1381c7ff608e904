use std::time::Duration;

use bytes::Bytes;

use crate::sim::Pair;
use crate::{CallTarget, CloseReason, CommandError, ConnectionState, Error, Event};

fn request(pair: &mut Pair, payload: &'static [u8]) -> crate::CallId {
    pair.client
        .conn
        .open_request(
            pair.now,
            CallTarget::new(1),
            Bytes::from_static(payload),
            None,
        )
        .unwrap()
}

#[test]
fn keepalive_measures_rtt_and_keeps_an_idle_connection_open() {
    let mut pair = Pair::connected(1);
    pair.latency = Duration::from_millis(3);
    pair.advance(Duration::from_secs(300));
    assert_eq!(pair.client.conn.state(), ConnectionState::Established);
    assert_eq!(pair.client.conn.rtt(), Some(Duration::from_millis(6)));
    assert_eq!(pair.server.conn.rtt(), Some(Duration::from_millis(6)));
}

#[test]
fn a_peer_that_stops_reading_is_detected_within_the_bound() {
    let mut pair = Pair::connected(2);
    let id = request(&mut pair, b"x");
    pair.drive();
    pair.server.take_events();
    // A stalled proxy: nothing moves either way, the peer process is alive.
    pair.server.stalled = true;
    pair.client.stalled = true;
    let timeouts = pair.client.conn.config().timeouts.clone();
    let bound = timeouts.idle + timeouts.keepalive_interval;
    pair.advance(bound);
    let events = pair.client.take_events();
    assert_eq!(
        events,
        vec![
            Event::RequestEnded {
                id,
                result: Err(Error::Disconnected)
            },
            Event::Closed(CloseReason::PeerTimeout(timeouts.idle)),
        ]
    );
}

#[test]
fn transport_loss_fails_calls_and_cancels_handlers() {
    let mut pair = Pair::connected(3);
    let id = request(&mut pair, b"x");
    pair.drive();
    let incoming = match &pair.server.take_events()[..] {
        [Event::IncomingRequest(call)] => call.id,
        other => panic!("{other:?}"),
    };
    pair.client.conn.handle_transport_closed("connection reset");
    pair.server.conn.handle_transport_closed("connection reset");
    assert_eq!(
        pair.client.take_events(),
        vec![
            Event::RequestEnded {
                id,
                result: Err(Error::Disconnected)
            },
            Event::Closed(CloseReason::Transport("connection reset".into())),
        ]
    );
    assert_eq!(
        pair.server.take_events()[0],
        Event::IncomingCancelled {
            id: incoming,
            reason: Error::Disconnected
        }
    );
    assert_eq!(
        pair.client
            .conn
            .open_request(pair.now, CallTarget::new(1), Bytes::new(), None),
        Err(CommandError::Call(Error::Disconnected))
    );
    assert!(!pair.client.conn.wants_write());
}

#[test]
fn drain_finishes_in_flight_calls_and_refuses_new_ones() {
    let mut pair = Pair::connected(4);
    let first = request(&mut pair, b"in flight");
    pair.drive();
    let incoming = match &pair.server.take_events()[..] {
        [Event::IncomingRequest(call)] => call.id,
        other => panic!("{other:?}"),
    };
    pair.server
        .conn
        .begin_drain(pair.now, Duration::from_secs(10));
    pair.drive();
    assert_eq!(pair.client.take_events(), vec![Event::PeerDraining]);
    // New calls fail fast, locally, with a retryable error.
    let refused = pair
        .client
        .conn
        .open_request(pair.now, CallTarget::new(1), Bytes::new(), None);
    assert_eq!(refused, Err(CommandError::Call(Error::Draining)));
    assert!(Error::Draining.is_retryable());
    // The draining side refuses new calls too.
    assert_eq!(
        pair.server
            .conn
            .open_request(pair.now, CallTarget::new(1), Bytes::new(), None),
        Err(CommandError::Call(Error::Draining))
    );
    // The call in flight completes, then the connection closes by itself.
    pair.server
        .conn
        .respond(incoming, Bytes::from_static(b"done"))
        .unwrap();
    pair.drive();
    assert_eq!(
        pair.client.take_events(),
        vec![
            Event::RequestEnded {
                id: first,
                result: Ok(Bytes::from_static(b"done"))
            },
            Event::Closed(CloseReason::Peer("drained".into())),
        ]
    );
    assert_eq!(
        pair.server.take_events(),
        vec![Event::Closed(CloseReason::Drained)]
    );
}

#[test]
fn drain_deadline_closes_with_calls_still_in_flight() {
    let mut pair = Pair::connected(5);
    let id = request(&mut pair, b"slow");
    pair.drive();
    pair.server.take_events();
    pair.server
        .conn
        .begin_drain(pair.now, Duration::from_secs(1));
    pair.advance(Duration::from_secs(2));
    let events = pair.client.take_events();
    assert!(
        events.contains(&Event::RequestEnded {
            id,
            result: Err(Error::Disconnected)
        }),
        "{events:?}"
    );
    assert!(pair.server.conn.is_closed());
}

#[test]
fn a_call_racing_the_goaway_is_refused_with_draining() {
    let mut pair = Pair::connected(6);
    pair.latency = Duration::from_millis(10);
    let id = request(&mut pair, b"racing");
    // The server starts draining before the request reaches it.
    pair.server
        .conn
        .begin_drain(pair.now, Duration::from_secs(5));
    pair.advance(Duration::from_millis(50));
    let events = pair.client.take_events();
    assert!(
        events.contains(&Event::RequestEnded {
            id,
            result: Err(Error::Draining)
        }),
        "{events:?}"
    );
}

#[test]
fn local_close_tells_the_peer_why() {
    let mut pair = Pair::connected(7);
    pair.client.conn.close("shutting down");
    pair.drive();
    assert_eq!(
        pair.server.take_events(),
        vec![Event::Closed(CloseReason::Peer("shutting down".into()))]
    );
}

#[test]
fn late_response_after_cancel_is_dropped_silently() {
    let mut pair = Pair::connected(8);
    pair.latency = Duration::from_millis(5);
    let id = request(&mut pair, b"x");
    pair.advance(Duration::from_millis(5));
    let incoming = match &pair.server.take_events()[..] {
        [Event::IncomingRequest(call)] => call.id,
        other => panic!("{other:?}"),
    };
    pair.server
        .conn
        .respond(incoming, Bytes::from_static(b"late"))
        .unwrap();
    pair.client.conn.cancel(id).unwrap();
    pair.advance(Duration::from_millis(20));
    assert!(pair.client.take_events().is_empty());
    assert!(!pair.client.conn.is_closed());
}

/// A peer that never reads cannot pass for alive by answering pings it never
/// saw: ping ids start where the peer cannot guess, so pongs sent blind (every
/// id a numbering from 0 or 1 would have reached) answer nothing, and the
/// dead-peer rule closes the connection within its bound.
#[test]
fn blind_pongs_do_not_keep_a_peer_that_never_reads_alive() {
    let mut pair = Pair::connected(9);
    let timeouts = pair.server.conn.config().timeouts.clone();
    let server = &mut pair.server.conn;
    let mut now = pair.now;
    let end = now + timeouts.idle + timeouts.keepalive_interval * 2;
    while now < end && server.state() != ConnectionState::Closed {
        now += Duration::from_millis(100);
        server.handle_timeout(now);
        // Never read: whatever the server sends is dropped.
        while server.poll_transmit(now).is_some() {}
        // Every id a ping numbered from 0 or 1 could have by now.
        let pings_so_far =
            ((now - pair.now).as_millis() / timeouts.keepalive_interval.as_millis()) as u32;
        for guess in 0..=pings_so_far + 1 {
            let pong = crate::sim::frames::raw_frame(crate::frame::Op::Pong, 0, 0, guess, b"");
            server.handle_input(now, &pong);
        }
    }
    let closed: Vec<Event> = std::iter::from_fn(|| server.poll_event())
        .filter(|event| matches!(event, Event::Closed(_)))
        .collect();
    assert_eq!(
        closed,
        vec![Event::Closed(CloseReason::PeerTimeout(timeouts.idle))],
        "the blind peer was not declared dead by {:?}",
        now - pair.now
    );
}
