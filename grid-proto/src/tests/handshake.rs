use std::time::Duration;

use crate::config::Role;
use crate::frame::Op;
use crate::sim::{sim_config, Pair};
use crate::{CloseReason, ConnectionState, Event, Refusal};

#[test]
fn handshake_succeeds_and_names_the_peer() {
    let mut pair = Pair::new(1);
    pair.max_chunk = 1;
    pair.drive();
    let client = pair.client.take_events();
    let server = pair.server.take_events();
    match (&client[..], &server[..]) {
        ([Event::Connected(server_info)], [Event::Connected(client_info)]) => {
            assert_eq!(server_info.node_name, "server");
            assert_eq!(client_info.node_name, "client");
        }
        other => panic!("unexpected events {other:?}"),
    }
    assert_eq!(pair.client.conn.state(), ConnectionState::Established);
}

#[test]
fn wrong_secret_is_rejected_with_a_reason_on_both_sides() {
    let client = sim_config(Role::Dialer, 1);
    let mut server = sim_config(Role::Acceptor, 2);
    server.secret = b"another secret".to_vec().into();
    let mut pair = Pair::with_configs(client, server, 3);
    pair.drive();
    let reasons: Vec<CloseReason> = [pair.client.take_events(), pair.server.take_events()]
        .into_iter()
        .flatten()
        .filter_map(|event| match event {
            Event::Closed(reason) => Some(reason),
            Event::Connected(_) => panic!("connected with a wrong secret"),
            _ => None,
        })
        .collect();
    // The acceptor could not verify the dialer's proof; the dialer learns
    // that its own secret was refused, each side with its own reason.
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons.contains(&CloseReason::PeerUnauthenticated),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|reason| matches!(
            reason,
            CloseReason::SecretRefused(text) if text.contains("cluster secret")
        )),
        "{reasons:?}"
    );
}

#[test]
fn handshake_times_out_when_the_peer_is_silent() {
    let mut pair = Pair::new(4);
    pair.server.stalled = true;
    pair.client.stalled = true;
    pair.advance(Duration::from_secs(11));
    let events = pair.client.take_events();
    assert_eq!(events, vec![Event::Closed(CloseReason::HandshakeTimeout)]);
}

/// Every frame `conn` queued, decoded, after handing them to `peer`.
fn sent_frames(
    conn: &mut crate::Connection,
    peer: &mut crate::Connection,
    now: std::time::Instant,
) -> Vec<crate::Header> {
    let mut decoder = crate::FrameDecoder::new(1 << 20);
    while let Some(bytes) = conn.poll_transmit(now) {
        decoder.push(&bytes);
        peer.handle_input(now, &bytes);
    }
    std::iter::from_fn(|| decoder.next_frame().unwrap())
        .map(|(header, _)| header)
        .collect()
}

#[test]
fn the_acceptor_proves_nothing_to_a_dialer_without_the_secret() {
    let mut client = sim_config(Role::Dialer, 1);
    client.secret = b"a guessed secret".to_vec().into();
    let server = sim_config(Role::Acceptor, 2);
    let mut pair = Pair::with_configs(client, server, 3);
    let now = pair.now;
    // The dialer's Hello and Auth, then the acceptor's answer to them.
    let hello = pair.server.conn.poll_transmit(now).unwrap();
    pair.client.conn.handle_input(now, &hello);
    while let Some(bytes) = pair.client.conn.poll_transmit(now) {
        pair.server.conn.handle_input(now, &bytes);
    }
    let answer: Vec<Op> = sent_frames(&mut pair.server.conn, &mut pair.client.conn, now)
        .iter()
        .map(|header| header.op)
        .collect();
    assert_eq!(answer, vec![Op::Reject]);
    assert_eq!(
        pair.server.conn.close_reason(),
        Some(&CloseReason::PeerUnauthenticated)
    );
}

#[test]
fn the_acceptor_sends_its_proof_only_after_the_dialers() {
    let mut pair = Pair::new(4);
    let now = pair.now;
    let hello = pair.client.conn.poll_transmit(now).unwrap();
    pair.server.conn.handle_input(now, &hello);
    let before: Vec<Op> = sent_frames(&mut pair.server.conn, &mut pair.client.conn, now)
        .iter()
        .map(|header| header.op)
        .collect();
    assert_eq!(before, vec![Op::Hello], "no proof before the dialer's");
    pair.drive();
    assert_eq!(pair.client.conn.state(), ConnectionState::Established);
    assert_eq!(pair.server.conn.state(), ConnectionState::Established);
}

#[test]
fn a_refusal_after_the_handshake_reaches_the_peer_with_its_code() {
    for refusal in [
        Refusal::NotAPeer,
        Refusal::WrongSide,
        Refusal::ShuttingDown,
        Refusal::Replaced,
        Refusal::ReplacingTooOften,
        Refusal::IdentityMismatch,
    ] {
        let mut pair = Pair::connected(5);
        pair.server.conn.refuse(refusal, "go away");
        pair.drive();
        let expected = CloseReason::Refused(refusal, "go away".into());
        assert_eq!(pair.server.conn.close_reason(), Some(&expected));
        assert_eq!(pair.client.conn.close_reason(), Some(&expected));
    }
}

#[test]
fn a_refusal_right_after_verifying_the_dialer_still_reaches_it() {
    let mut pair = Pair::new(6);
    let now = pair.now;
    let hello = pair.server.conn.poll_transmit(now).unwrap();
    pair.client.conn.handle_input(now, &hello);
    while let Some(bytes) = pair.client.conn.poll_transmit(now) {
        pair.server.conn.handle_input(now, &bytes);
    }
    // Established, its proof not yet written: the refusal drops it.
    assert_eq!(pair.server.conn.state(), ConnectionState::Established);
    pair.server.conn.refuse(Refusal::NotAPeer, "stranger");
    pair.drive();
    assert_eq!(
        pair.client.conn.close_reason(),
        Some(&CloseReason::Refused(Refusal::NotAPeer, "stranger".into()))
    );
}
