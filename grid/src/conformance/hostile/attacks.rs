//! Attacks the protocol's existing limits stop: floods of cheap frames,
//! credit overflow, partial messages on many muxes, rapid open and cancel.
//! Each test completes a real handshake as a known peer, attacks while a
//! legitimate node keeps calling, and checks the victim's accounting.

use std::time::Duration;

use grid_proto::Limits;

use super::arena::{handlers::*, Arena, ArenaOptions, WAIT};
use super::observe::{eventually, LegitCalls, Watch};
use super::peer::Ending;
use super::wire::{close_code, error_code, op, request_payload, stream_open_payload, Frame};
use crate::conformance::TestRuntime;
use crate::runtime::sleep_until;

/// Lets the legitimate node make a few more calls after an attack, so a
/// victim that broke only once the attack ended shows too.
pub(super) async fn settle<R: TestRuntime>(rt: &R) {
    sleep_until(rt, std::time::Instant::now() + Duration::from_millis(100)).await;
}

/// Fails unless the victim closed the connection with `code`.
#[track_caller]
pub(super) fn assert_closed_with(ending: &Ending, code: u32) {
    match ending {
        Ending::Closed { code: sent, .. } if *sent == code => {}
        other => panic!("the victim should have closed the attacker with code {code}: {other:?}"),
    }
}

/// Limits that make cheap-frame floods reach the budget in a few hundred
/// frames.
fn small_cheap_budget() -> Limits {
    Limits {
        cheap_frame_burst: 200,
        cheap_frames_per_second: 200,
        max_control_backlog: 64 * 1024,
        ..Limits::default()
    }
}

/// A peer that floods pings beyond the cheap-frame budget is closed with
/// `LimitExceeded`; the pongs it makes the victim queue stay under
/// `max_control_backlog`.
pub async fn ping_flood_is_closed<R: TestRuntime>(rt: R) {
    let limits = small_cheap_budget();
    let options = ArenaOptions {
        limits: limits.clone(),
        ..ArenaOptions::default()
    };
    let arena = Arena::start(&rt, options).await;
    let legit = LegitCalls::start(&rt, arena.legit_to_victim());
    let mut attacker = arena.attack().await;
    let watch = Watch::start(&rt, arena.attacker_at_victim());
    attacker
        .ping(1, WAIT)
        .await
        .expect("a ping within the budget is answered");

    let flood: Vec<Frame> = (2..3000)
        .map(|id| Frame::new(op::PING, 0, id, Vec::new()))
        .collect();
    // The victim may close while the flood is still being written.
    let _ = attacker.send(&flood).await;
    let (ending, _) = attacker.ending(WAIT).await;
    assert_closed_with(&ending, close_code::LIMIT_EXCEEDED);

    settle(&rt).await;
    let samples = watch.finish().await;
    samples.print_peaks("ping_flood_is_closed");
    let queued = samples.peak(|s| s.send_buffered);
    assert!(
        queued <= limits.max_control_backlog,
        "pongs queued for the flood: {queued} bytes, over {}",
        limits.max_control_backlog
    );
    legit.finish().await.assert_all_succeeded(3);
    arena.shutdown().await;
}

/// Empty fragments cost their sender nothing; a flood of them is closed with
/// `LimitExceeded` and leaves no buffered bytes behind.
pub async fn empty_fragment_flood_is_closed<R: TestRuntime>(rt: R) {
    let limits = small_cheap_budget();
    let options = ArenaOptions {
        limits: limits.clone(),
        ..ArenaOptions::default()
    };
    let arena = Arena::start(&rt, options).await;
    let legit = LegitCalls::start(&rt, arena.legit_to_victim());
    let mut attacker = arena.attack().await;
    let watch = Watch::start(&rt, arena.attacker_at_victim());

    // One request's first fragment, then its empty continuations forever.
    let mut flood = vec![Frame::new(op::REQUEST, 1, 1000, request_payload(ECHO, b"", b"x")).more()];
    flood.extend((0..3000).map(|_| Frame::new(op::REQUEST, 1, 1000, Vec::new()).more()));
    let _ = attacker.send(&flood).await;
    let (ending, _) = attacker.ending(WAIT).await;
    assert_closed_with(&ending, close_code::LIMIT_EXCEEDED);

    settle(&rt).await;
    let samples = watch.finish().await;
    samples.print_peaks("empty_fragment_flood_is_closed");
    let buffered = samples.peak(|s| s.buffered_bytes);
    assert!(buffered <= 16, "empty fragments buffered {buffered} bytes");
    legit.finish().await.assert_all_succeeded(3);
    arena.shutdown().await;
}

/// Credit that overflows a stream's `u32` counter, or credit on a request,
/// fails that call alone with `Error(Protocol)`: the connection stays up
/// and the handlers are told.
pub async fn credit_overflow_fails_only_its_call<R: TestRuntime>(rt: R) {
    let arena = Arena::start(&rt, ArenaOptions::default()).await;
    let legit = LegitCalls::start(&rt, arena.legit_to_victim());
    let mut attacker = arena.attack().await;
    let watch = Watch::start(&rt, arena.attacker_at_victim());

    let credit = |mux, arg| Frame::new(op::CREDIT, mux, arg, Vec::new());
    attacker
        .send(&[
            // Window 1, then a grant of u32::MAX: 1 + MAX overflows at once.
            Frame::new(
                op::STREAM_OPEN,
                1,
                5000,
                stream_open_payload(STREAM_HOLD, 1, b""),
            ),
            credit(1, u32::MAX),
            // Window 0, then two grants of 2^31: legal alone, over 2^32 - 1 together.
            Frame::new(
                op::STREAM_OPEN,
                3,
                5000,
                stream_open_payload(STREAM_HOLD, 0, b""),
            ),
            credit(3, 0x8000_0000),
            credit(3, 0x8000_0000),
            // Credit on a single request fits no call of that kind.
            Frame::new(op::REQUEST, 5, 5000, request_payload(HOLD, b"", b"held")),
            credit(5, 5),
        ])
        .await
        .expect("send the attack");

    let mut failed = Vec::new();
    while failed.len() < 3 {
        match attacker.next(WAIT).await {
            Some(Ok(frame)) if frame.op == op::ERROR => {
                assert_eq!(
                    frame.arg,
                    error_code::PROTOCOL,
                    "error on mux {}: {frame:?}",
                    frame.mux
                );
                failed.push(frame.mux);
            }
            // The victim grants its own stream window: not an answer.
            Some(Ok(frame)) if frame.op == op::CREDIT => {}
            other => panic!(
                "expected Error(Protocol) on muxes 1, 3 and 5, got {other:?} after {failed:?}"
            ),
        }
    }
    failed.sort_unstable();
    assert_eq!(failed, [1, 3, 5]);

    attacker
        .ping(100, WAIT)
        .await
        .expect("the connection survives per-call violations");
    let victim = arena.attacker_at_victim();
    eventually(&rt, WAIT, "the failed calls' handlers end", || {
        victim.stats().protocol.incoming_calls == 0 && arena.holding() == 0
    })
    .await;
    settle(&rt).await;
    let samples = watch.finish().await;
    samples.print_peaks("credit_overflow_fails_only_its_call");
    assert!(samples.peak(|s| s.incoming_calls) <= 3);
    legit.finish().await.assert_all_succeeded(3);
    arena.shutdown().await;
}

/// First fragments that never get their last one count against
/// `max_buffered_bytes`, and more partial messages than calls allowed close
/// the connection with `LimitExceeded` before the bytes bound is crossed.
pub async fn partial_messages_on_many_muxes_are_bounded<R: TestRuntime>(rt: R) {
    let limits = Limits {
        max_incoming_calls: 32,
        max_buffered_bytes: 256 * 1024,
        ..Limits::default()
    };
    let options = ArenaOptions {
        limits: limits.clone(),
        ..ArenaOptions::default()
    };
    let arena = Arena::start(&rt, options).await;
    let legit = LegitCalls::start(&rt, arena.legit_to_victim());
    let mut attacker = arena.attack().await;
    let watch = Watch::start(&rt, arena.attacker_at_victim());

    const FRAGMENT: usize = 4 * 1024;
    let first_fragment = |mux: u32| {
        Frame::new(
            op::REQUEST,
            mux,
            5000,
            request_payload(ECHO, b"", &[7; FRAGMENT]),
        )
        .more()
    };
    // Sixteen partial messages: within every limit, and accounted.
    attacker
        .send(&(1..=16).map(first_fragment).collect::<Vec<_>>())
        .await
        .expect("send partial messages");
    let victim = arena.attacker_at_victim();
    eventually(
        &rt,
        WAIT,
        "partial messages are counted as buffered bytes",
        || victim.stats().protocol.buffered_bytes >= 16 * FRAGMENT,
    )
    .await;
    attacker
        .ping(1, WAIT)
        .await
        .expect("partial messages within the limits are harmless");

    // Then many more muxes: past max_incoming_calls + 1 partial messages.
    let _ = attacker
        .send(&(17..=200).map(first_fragment).collect::<Vec<_>>())
        .await;
    let (ending, _) = attacker.ending(WAIT).await;
    assert_closed_with(&ending, close_code::LIMIT_EXCEEDED);

    settle(&rt).await;
    let samples = watch.finish().await;
    samples.print_peaks("partial_messages_on_many_muxes_are_bounded");
    let buffered = samples.peak(|s| s.buffered_bytes);
    assert!(
        buffered <= limits.max_buffered_bytes,
        "partial messages buffered {buffered} bytes, over {}",
        limits.max_buffered_bytes
    );
    legit.finish().await.assert_all_succeeded(3);
    arena.shutdown().await;
}

/// Opening and at once cancelling thousands of calls is harmless: calls in
/// flight never exceed `max_incoming_calls`, every cancelled handler ends,
/// and the connection stays up.
pub async fn rapid_open_cancel_leaves_nothing_behind<R: TestRuntime>(rt: R) {
    let limits = Limits {
        max_incoming_calls: 64,
        ..Limits::default()
    };
    let options = ArenaOptions {
        limits: limits.clone(),
        ..ArenaOptions::default()
    };
    let arena = Arena::start(&rt, options).await;
    let legit = LegitCalls::start(&rt, arena.legit_to_victim());
    let mut attacker = arena.attack().await;
    attacker.start_reading();
    let watch = Watch::start(&rt, arena.attacker_at_victim());

    let mut mux = 1u32;
    for _ in 0..40 {
        let mut round = Vec::new();
        for _ in 0..100 {
            round.push(Frame::new(
                op::REQUEST,
                mux,
                5000,
                request_payload(HOLD, b"", b"work"),
            ));
            round.push(Frame::new(op::CANCEL, mux, 0, Vec::new()));
            mux += 1;
        }
        attacker
            .send(&round)
            .await
            .expect("the victim keeps reading");
    }

    let answers = attacker
        .ping(1, WAIT)
        .await
        .expect("the connection survives open/cancel churn");
    // The only answers allowed are refusals of calls over the limit.
    for frame in &answers {
        assert!(
            frame.op == op::ERROR && frame.arg == error_code::OVERLOADED,
            "unexpected answer to a cancelled call: {frame:?}"
        );
    }
    let victim = arena.attacker_at_victim();
    eventually(&rt, WAIT, "every cancelled handler ends", || {
        victim.stats().protocol.incoming_calls == 0 && arena.holding() == 0
    })
    .await;
    settle(&rt).await;
    let samples = watch.finish().await;
    samples.print_peaks("rapid_open_cancel_leaves_nothing_behind");
    let calls = samples.peak(|s| s.incoming_calls);
    assert!(
        calls <= limits.max_incoming_calls as usize,
        "{calls} calls in flight, over {}",
        limits.max_incoming_calls
    );
    attacker
        .ping(2, WAIT)
        .await
        .expect("the connection is still up once the churn is over");
    legit.finish().await.assert_all_succeeded(3);
    arena.shutdown().await;
}
