//! Stuck and too-slow readers, on a simulated clock: the server's output is
//! handed out only when the test says its peer read.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::config::{Config, Role};
use crate::frame::Op;
use crate::sim::events::closed_reason;
use crate::sim::frames::raw_frame;
use crate::sim::{sim_config, Pair};
use crate::{CallTarget, CloseReason, Connection, Event};

const STALL: Duration = Duration::from_secs(10);

/// A server whose keepalive cannot fire first: only the write-stall rules
/// can end the connection in these tests.
fn server_config(seed: u64) -> Config {
    let mut server = sim_config(Role::Acceptor, seed);
    server.timeouts.write_stall = STALL;
    server.timeouts.idle = Duration::from_secs(3600);
    server
}

/// Connects, then has the client open `calls` requests that the server
/// answers with `answer` bytes each; the answers stay queued at the server.
fn answers_queued(seed: u64, server: Config, calls: usize, answer: usize) -> Pair {
    let mut pair = Pair::connected_with(sim_config(Role::Dialer, seed), server, seed);
    let now = pair.now;
    for _ in 0..calls {
        pair.client
            .conn
            .open_request(now, CallTarget::new(1), Bytes::new(), None)
            .unwrap();
    }
    while let Some(bytes) = pair.client.conn.poll_transmit(now) {
        pair.server.conn.handle_input(now, &bytes);
    }
    let ids: Vec<_> = std::iter::from_fn(|| pair.server.conn.poll_event())
        .filter_map(|event| match event {
            Event::IncomingRequest(call) => Some(call.id),
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), calls);
    for id in ids {
        let body = Bytes::from(vec![5u8; answer]);
        pair.server.conn.respond(id, body).unwrap();
    }
    pair
}

/// Runs the server's timers up to `end`, feeding it a client ping every
/// second (a peer that keeps talking but never reads), and handing out one
/// buffer of output each `read_every` if set. Returns why it closed.
fn run_server(
    conn: &mut Connection,
    start: Instant,
    end: Instant,
    read_every: Option<Duration>,
) -> Option<(Instant, CloseReason)> {
    let mut now = start;
    let mut ping = 1;
    let mut next_read = read_every.map(|every| start + every);
    while now < end {
        let next_ping = now + Duration::from_secs(1);
        let mut next = next_ping.min(end);
        if let Some(timer) = conn.poll_timeout() {
            next = next.min(timer);
        }
        if let Some(read) = next_read {
            next = next.min(read);
        }
        now = next;
        if now == next_ping {
            conn.handle_input(now, &raw_frame(Op::Ping, 0, 0, ping, &[]));
            ping += 1;
        }
        if next_read == Some(now) {
            conn.poll_transmit(now);
            next_read = read_every.map(|every| now + every);
        }
        conn.handle_timeout(now);
        let events: Vec<Event> = std::iter::from_fn(|| conn.poll_event()).collect();
        if let Some(reason) = closed_reason(&events) {
            return Some((now, reason));
        }
    }
    None
}

#[test]
fn queued_output_without_progress_closes_with_peer_not_reading() {
    let mut pair = answers_queued(1, server_config(2), 1, 100);
    let start = pair.now;
    // Output queued by `respond` starts waiting at the next look with a clock.
    pair.server.conn.handle_timeout(start);
    assert!(pair.server.conn.poll_timeout() <= Some(start + STALL));
    let closed = run_server(&mut pair.server.conn, start, start + STALL * 2, None);
    // Pings kept arriving and were answered into the queue: no reset.
    assert_eq!(
        closed,
        Some((start + STALL, CloseReason::PeerNotReading(STALL)))
    );
    // The peer is told why, as far as it can still read.
    let close = pair.server.conn.poll_transmit(start + STALL).unwrap();
    assert_eq!(close[4], Op::Close as u8);
    assert_eq!(close[10], 7, "close code PeerNotReading");
}

#[test]
fn output_that_keeps_leaving_does_not_count_as_a_stall() {
    let mut pair = answers_queued(3, server_config(4), 40, 8 * 1024);
    let start = pair.now;
    pair.server.conn.handle_timeout(start);
    // One buffer every few seconds: slow, but progress, and the backlog is
    // within its bound.
    let closed = run_server(
        &mut pair.server.conn,
        start,
        start + STALL * 3,
        Some(STALL / 3),
    );
    assert_eq!(closed, None);
}

#[test]
fn a_backlog_over_its_bound_that_drains_too_slowly_closes_with_peer_too_slow() {
    let mut server = server_config(6);
    server.limits.max_outbound_backlog = 64 * 1024;
    // 20 answers of 16 KiB: 320 KiB queued, five times the bound.
    let mut pair = answers_queued(5, server, 20, 16 * 1024);
    let start = pair.now;
    pair.server.conn.handle_timeout(start);
    let closed = run_server(
        &mut pair.server.conn,
        start,
        start + STALL * 3,
        Some(Duration::from_secs(1)),
    );
    match closed {
        Some((at, CloseReason::PeerTooSlow(text))) => {
            assert_eq!(at, start + STALL);
            assert!(text.contains("B/s"), "{text}");
        }
        other => panic!("expected PeerTooSlow, got {other:?}"),
    }
}

#[test]
fn the_peer_decodes_the_stall_close_code_as_its_own_reason() {
    let mut pair = answers_queued(7, server_config(8), 1, 10);
    let start = pair.now;
    pair.server.conn.handle_timeout(start);
    let at = start + STALL;
    pair.server.conn.handle_timeout(at);
    assert_eq!(
        pair.server.conn.close_reason(),
        Some(&CloseReason::PeerNotReading(STALL))
    );
    while let Some(bytes) = pair.server.conn.poll_transmit(at) {
        pair.client.conn.handle_input(at, &bytes);
    }
    match pair.client.conn.close_reason() {
        Some(CloseReason::Peer(text)) => assert!(text.contains("not reading"), "{text}"),
        other => panic!("{other:?}"),
    }
}
