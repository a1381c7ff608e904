use std::time::Duration;

use bytes::Bytes;

use crate::sim::Pair;
use crate::{CallTarget, Error, Event};

fn answer_all(pair: &mut Pair) {
    for event in pair.server.take_events() {
        if let Event::IncomingRequest(call) = event {
            let mut reply = call.payload.to_vec();
            reply.reverse();
            pair.server
                .conn
                .respond(call.id, Bytes::from(reply))
                .unwrap();
        }
    }
}

#[test]
fn request_gets_its_response() {
    let mut pair = Pair::connected(1);
    pair.max_chunk = 3;
    let id = pair
        .client
        .conn
        .open_request(
            pair.now,
            CallTarget::with_subroute(7, b"disk-1"),
            Bytes::from_static(b"abc"),
            None,
        )
        .unwrap();
    pair.drive();
    let events = pair.server.take_events();
    let Event::IncomingRequest(call) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(call.handler, 7);
    assert_eq!(call.subroute.as_ref(), b"disk-1");
    assert_eq!(call.deadline, pair.now + Duration::from_secs(60));
    pair.server.events.extend(events);
    answer_all(&mut pair);
    pair.drive();
    assert_eq!(
        pair.client.take_events(),
        vec![Event::RequestEnded {
            id,
            result: Ok(Bytes::from_static(b"cba"))
        }]
    );
    assert_eq!(pair.client.conn.in_flight(), (0, 0));
    assert_eq!(pair.server.conn.in_flight(), (0, 0));
}

#[test]
fn deadline_fails_the_caller_and_cancels_the_handler() {
    let mut pair = Pair::connected(2);
    pair.latency = Duration::from_millis(1);
    let id = pair
        .client
        .conn
        .open_request(
            pair.now,
            CallTarget::new(1),
            Bytes::new(),
            Some(Duration::from_millis(50)),
        )
        .unwrap();
    pair.advance(Duration::from_millis(60));
    assert_eq!(
        pair.client.take_events(),
        vec![Event::RequestEnded {
            id,
            result: Err(Error::DeadlineExceeded)
        }]
    );
    let server = pair.server.take_events();
    assert!(matches!(server[0], Event::IncomingRequest(_)));
    assert!(
        matches!(
            server[1],
            Event::IncomingCancelled {
                reason: Error::DeadlineExceeded,
                ..
            }
        ),
        "{server:?}"
    );
}

#[test]
fn deadline_bookkeeping_stays_bounded_when_no_timer_fires() {
    let mut pair = Pair::connected(3);
    for _ in 0..10_000 {
        pair.client
            .conn
            .open_request(pair.now, CallTarget::new(1), Bytes::from_static(b"x"), None)
            .unwrap();
        pair.drive();
        answer_all(&mut pair);
        pair.drive();
        pair.client.take_events();
    }
    assert!(
        pair.client.conn.pending_deadlines() <= 70,
        "stale deadlines pile up"
    );
    assert!(
        pair.server.conn.pending_deadlines() <= 70,
        "stale deadlines pile up"
    );
}

#[test]
fn open_prefixes_of_every_subroute_length_arrive_intact() {
    // Around the size kept inline (24 bytes: 3 + subroute + a stream's 4)
    // and at the longest subroute.
    for len in [0usize, 1, 17, 18, 20, 21, 22, 255] {
        let mut pair = Pair::connected(40 + len as u64);
        let subroute: Vec<u8> = (0..len).map(|i| i as u8 ^ 0x5a).collect();
        let target = CallTarget::with_subroute(0xbeef, &subroute);
        let body = Bytes::from_static(b"body");
        let now = pair.now;
        let request = pair
            .client
            .conn
            .open_request(now, target.clone(), body.clone(), None)
            .unwrap();
        let stream = pair
            .client
            .conn
            // Under the window a stream starts with, so announced as given.
            .open_stream(now, target, body.clone(), None, 0xf0e1)
            .unwrap();
        pair.drive();
        let events = pair.server.take_events();
        let [Event::IncomingRequest(first), Event::IncomingStream(second)] = &events[..] else {
            panic!("subroute of {len}: {events:?}")
        };
        for (call, id) in [(first, request), (second, stream)] {
            assert_eq!(call.id, id);
            assert_eq!(call.handler, 0xbeef, "subroute of {len}");
            assert_eq!(call.subroute.as_ref(), &subroute[..], "subroute of {len}");
            assert_eq!(call.payload, body, "subroute of {len}");
        }
        assert_eq!(
            pair.server.conn.send_credit(stream),
            0xf0e1,
            "subroute of {len}"
        );
    }
}
