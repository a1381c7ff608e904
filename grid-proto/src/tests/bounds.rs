//! The byte bounds on what a peer can make this side hold: payloads of calls
//! the application still holds, and output queued for a peer that does not
//! read. Over either bound new calls are refused, and everything else flows.

use std::time::Instant;

use bytes::Bytes;

use crate::config::Role;
use crate::frame::Op;
use crate::sim::frames::raw_frame;
use crate::sim::{sim_config, Pair};
use crate::{CallId, CallTarget, Connection, Error, Event, IncomingCall};

/// Hands everything `from` has queued to `to`.
fn pump(from: &mut Connection, to: &mut Connection, now: Instant) {
    while let Some(bytes) = from.poll_transmit(now) {
        to.handle_input(now, &bytes);
    }
}

fn incoming_requests(conn: &mut Connection) -> Vec<IncomingCall> {
    std::iter::from_fn(|| conn.poll_event())
        .filter_map(|event| match event {
            Event::IncomingRequest(call) => Some(call),
            _ => None,
        })
        .collect()
}

fn request(pair: &mut Pair, size: usize) -> CallId {
    pair.client
        .conn
        .open_request(
            pair.now,
            CallTarget::new(1),
            Bytes::from(vec![7u8; size]),
            None,
        )
        .unwrap()
}

fn ended(conn: &mut Connection) -> Vec<(CallId, Result<usize, Error>)> {
    std::iter::from_fn(|| conn.poll_event())
        .filter_map(|event| match event {
            Event::RequestEnded { id, result } => Some((id, result.map(|body| body.len()))),
            _ => None,
        })
        .collect()
}

#[test]
fn payloads_held_by_handlers_are_bounded_and_released_when_calls_end() {
    let client = sim_config(Role::Dialer, 1);
    let mut server = sim_config(Role::Acceptor, 2);
    server.limits.max_held_request_bytes = 10_000;
    let mut pair = Pair::connected_with(client, server, 3);
    let now = pair.now;
    let ids: Vec<CallId> = (0..3).map(|_| request(&mut pair, 4000)).collect();
    pump(&mut pair.client.conn, &mut pair.server.conn, now);
    let held = incoming_requests(&mut pair.server.conn);
    // The third would take the held bytes to 12 000: refused, not queued.
    assert_eq!(held.len(), 2);
    let stats = pair.server.conn.stats();
    assert_eq!(stats.held_request_bytes, 8000);
    assert_eq!(stats.refused_overloaded, 1);
    pump(&mut pair.server.conn, &mut pair.client.conn, now);
    assert_eq!(
        ended(&mut pair.client.conn),
        vec![(ids[2], Err(Error::Overloaded))]
    );

    // Answering one releases its payload: another call fits again.
    pair.server.conn.respond(held[0].id, Bytes::new()).unwrap();
    assert_eq!(pair.server.conn.stats().held_request_bytes, 4000);
    let again = request(&mut pair, 4000);
    pump(&mut pair.client.conn, &mut pair.server.conn, now);
    assert_eq!(incoming_requests(&mut pair.server.conn).len(), 1);
    assert_eq!(pair.server.conn.stats().held_request_bytes, 8000);

    // Failing and closing release theirs too.
    pair.server
        .conn
        .fail(held[1].id, Error::Remote(Bytes::new()))
        .unwrap();
    assert_eq!(pair.server.conn.stats().held_request_bytes, 4000);
    pair.server.conn.close("done");
    assert_eq!(pair.server.conn.stats().held_request_bytes, 0);
    pump(&mut pair.server.conn, &mut pair.client.conn, now);
    assert!(ended(&mut pair.client.conn)
        .iter()
        .any(|(id, result)| *id == again && result.is_err()));
}

#[test]
fn a_peer_that_does_not_read_answers_gets_overloaded_but_its_pings_and_answers_flow() {
    let client = sim_config(Role::Dialer, 4);
    let mut server = sim_config(Role::Acceptor, 5);
    server.limits.max_outbound_backlog = 64 * 1024;
    let mut pair = Pair::connected_with(client, server, 6);
    let now = pair.now;
    // The server calls the client too: its answer must still get through.
    let own = pair
        .server
        .conn
        .open_request(now, CallTarget::new(2), Bytes::new(), None)
        .unwrap();
    pump(&mut pair.server.conn, &mut pair.client.conn, now);
    let to_answer = std::iter::from_fn(|| pair.client.conn.poll_event())
        .find_map(|event| match event {
            Event::IncomingRequest(call) => Some(call.id),
            _ => None,
        })
        .unwrap();

    // Three answers of 32 KiB wait for a client that is not read from.
    let first: Vec<CallId> = (0..3).map(|_| request(&mut pair, 10)).collect();
    pump(&mut pair.client.conn, &mut pair.server.conn, now);
    for call in incoming_requests(&mut pair.server.conn) {
        let answer = Bytes::from(vec![1u8; 32 * 1024]);
        pair.server.conn.respond(call.id, answer).unwrap();
    }
    let backlog = pair.server.conn.stats().outbound_backlog;
    assert!(backlog > 64 * 1024, "{backlog}");

    // Over the bound: a new call is refused at once...
    let refused = request(&mut pair, 10);
    // ...while pings and the answer to the server's own call are still read.
    pair.client
        .conn
        .respond(to_answer, Bytes::from_static(b"ok"))
        .unwrap();
    pump(&mut pair.client.conn, &mut pair.server.conn, now);
    pair.server
        .conn
        .handle_input(now, &raw_frame(Op::Ping, 0, 0, 77, &[]));
    let events: Vec<Event> = std::iter::from_fn(|| pair.server.conn.poll_event()).collect();
    assert_eq!(
        events,
        vec![Event::RequestEnded {
            id: own,
            result: Ok(Bytes::from_static(b"ok"))
        }],
        "no new call was admitted, and the answer to the server's own call arrived"
    );
    assert_eq!(pair.server.conn.stats().refused_overloaded, 1);
    assert!(!pair.server.conn.is_closed());

    // Once the client reads, the admitted calls' answers all arrive.
    let mut decoded = crate::FrameDecoder::new(1 << 20);
    while let Some(bytes) = pair.server.conn.poll_transmit(now) {
        decoded.push(&bytes);
        pair.client.conn.handle_input(now, &bytes);
    }
    let pong = std::iter::from_fn(|| decoded.next_frame().unwrap())
        .any(|(header, _)| header.op == Op::Pong && header.arg == 77);
    assert!(pong, "the ping was answered");
    let mut results = ended(&mut pair.client.conn);
    results.sort_by_key(|(id, _)| id.0);
    let mut expected: Vec<_> = first.iter().map(|id| (*id, Ok(32 * 1024))).collect();
    expected.push((refused, Err(Error::Overloaded)));
    assert_eq!(results, expected);
    assert_eq!(pair.server.conn.stats().outbound_backlog, 0);
}

#[test]
fn own_calls_are_refused_for_room_while_the_backlog_is_over_its_bound() {
    let client = sim_config(Role::Dialer, 7);
    let mut server = sim_config(Role::Acceptor, 8);
    server.limits.max_outbound_backlog = 16 * 1024;
    let mut pair = Pair::connected_with(client, server, 9);
    let now = pair.now;
    let open = |conn: &mut Connection| {
        conn.open_request(now, CallTarget::new(1), Bytes::from(vec![0u8; 8192]), None)
    };
    assert!(open(&mut pair.server.conn).is_ok());
    assert!(open(&mut pair.server.conn).is_ok());
    assert_eq!(
        open(&mut pair.server.conn),
        Err(crate::CommandError::SendBufferFull)
    );
    pump(&mut pair.server.conn, &mut pair.client.conn, now);
    assert!(std::iter::from_fn(|| pair.server.conn.poll_event()).any(|e| e == Event::Writable));
}
