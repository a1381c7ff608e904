use std::time::Duration;

use crate::config::Role;
use crate::sim::{sim_config, Pair};
use crate::{CloseReason, ConnectionState, Event};

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
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    for reason in reasons {
        match reason {
            CloseReason::Rejected(text) => assert!(text.contains("cluster secret"), "{text}"),
            other => panic!("unexpected reason {other:?}"),
        }
    }
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
