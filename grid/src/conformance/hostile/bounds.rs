//! Attacks on what a node holds for a peer that does not keep up: answers it
//! never reads, answers it reads too slowly, and large requests its handlers
//! hold. The victim's bounds (`max_outbound_backlog`,
//! `max_held_request_bytes`, `write_stall`) must hold each of them.

use std::time::{Duration, Instant};

use grid_proto::{Limits, Timeouts};

use super::arena::{handlers::*, Arena, ArenaOptions, WAIT};
use super::attacks::{assert_closed_with, settle};
use super::observe::{eventually, LegitCalls, Watch};
use super::peer::within;
use super::wire::{close_code, error_code, op, request_payload, Frame};
use crate::conformance::cluster::test_timeouts;
use crate::conformance::TestRuntime;
use crate::runtime::sleep_until;

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

/// Timeouts for a peer that stops reading: the write-stall rule, not the
/// dead-peer rule, must be what ends it.
fn stall_timeouts() -> Timeouts {
    Timeouts {
        write_stall: Duration::from_secs(1),
        idle: Duration::from_secs(20),
        ..test_timeouts()
    }
}

/// A peer that sends echo requests and never reads the answers: the victim
/// stops admitting its calls once the queued answers pass
/// `max_outbound_backlog`, so the backlog stays bounded (the bound plus the
/// answers of calls admitted before it was crossed, which
/// `max_held_request_bytes` bounds for echoes), and after `write_stall`
/// without progress the victim closes with `PeerNotReading`.
pub async fn never_reading_peer_is_closed_as_not_reading<R: TestRuntime>(rt: R) {
    let limits = Limits {
        max_outbound_backlog: MIB,
        max_held_request_bytes: MIB,
        ..Limits::default()
    };
    let timeouts = stall_timeouts();
    let options = ArenaOptions {
        limits: limits.clone(),
        timeouts: timeouts.clone(),
        ..ArenaOptions::default()
    };
    let arena = Arena::start(&rt, options).await;
    let legit = LegitCalls::start(&rt, arena.legit_to_victim());
    let mut attacker = arena.attack().await;
    let watch = Watch::start(&rt, arena.attacker_at_victim());
    let victim = arena.attacker_at_victim();

    // Echo requests of 32 KiB, eight to a write, until the victim refuses
    // them: the kernel's buffers are full and the backlog is over its bound.
    let body = vec![0x42; 32 * KIB];
    let mut mux = 1u32;
    let mut sent = 0usize;
    while victim.stats().protocol.refused_overloaded < 16 && sent < 64 * MIB {
        let batch: Vec<Frame> = (0..8)
            .map(|_| {
                mux += 2;
                Frame::new(op::REQUEST, mux, 30_000, request_payload(ECHO, b"", &body))
            })
            .collect();
        match within(&rt, WAIT, attacker.send(&batch)).await {
            Some(Ok(())) => sent += 8 * body.len(),
            Some(Err(_)) => break,
            None => panic!("the victim stopped reading: a write waited {WAIT:?}"),
        }
    }
    let attack_ended = Instant::now();
    assert!(
        victim.stats().protocol.refused_overloaded > 0,
        "the victim admitted all {sent} bytes of echo requests"
    );

    eventually(
        &rt,
        timeouts.write_stall + Duration::from_secs(3),
        "the victim closes a connection that does not read",
        || !victim.is_connected(),
    )
    .await;
    let closed_after = attack_ended.elapsed();
    let (ending, _) = attacker.ending(WAIT).await;
    assert_closed_with(&ending, close_code::PEER_NOT_READING);

    settle(&rt).await;
    let samples = watch.finish().await;
    samples.print_peaks("never_reading_peer_is_closed_as_not_reading");
    let backlog = samples.peak(|s| s.outbound_backlog);
    let allowed = limits.max_outbound_backlog + limits.max_held_request_bytes + 64 * KIB;
    assert!(
        backlog <= allowed,
        "outbound backlog reached {backlog} bytes, over {allowed}"
    );
    assert!(
        closed_after <= timeouts.write_stall + Duration::from_secs(2),
        "closed {closed_after:?} after the attack, write_stall is {:?}",
        timeouts.write_stall
    );
    legit.finish().await.assert_all_succeeded(10);
    arena.shutdown().await;
}

/// A peer that reads, but slower than its backlog drains, and answers and
/// sends pings to look alive: the victim refuses its new calls while the
/// backlog is over `max_outbound_backlog` and closes it with `PeerTooSlow`
/// after `write_stall`.
pub async fn slow_reader_is_closed_as_too_slow<R: TestRuntime>(rt: R) {
    let limits = Limits {
        max_outbound_backlog: 512 * KIB,
        ..Limits::default()
    };
    let timeouts = stall_timeouts();
    let options = ArenaOptions {
        limits: limits.clone(),
        timeouts: timeouts.clone(),
        ..ArenaOptions::default()
    };
    let arena = Arena::start(&rt, options).await;
    let legit = LegitCalls::start(&rt, arena.legit_to_victim());
    let mut attacker = arena.attack().await;
    attacker.set_pace(256 * KIB as u64);
    attacker.start_reading();
    let watch = Watch::start(&rt, arena.attacker_at_victim());
    let victim = arena.attacker_at_victim();

    // A burst of small requests with 256 KiB answers: 12 MiB to send back,
    // far more than the kernel's buffers and the bound.
    let bloat = |mux: u32| {
        let size = (256 * KIB as u32).to_le_bytes();
        Frame::new(op::REQUEST, mux, 30_000, request_payload(BLOAT, b"", &size))
    };
    let burst: Vec<Frame> = (0..48).map(|i| bloat(2 * i + 1)).collect();
    attacker.send(&burst).await.expect("send the burst");

    // Then a request and a ping every 100 ms: the requests must be refused
    // while the backlog is over its bound, and the pings must not keep the
    // connection open.
    let started = Instant::now();
    let mut trickle = 0u32;
    let mut mux = 1001u32;
    while victim.is_connected() && started.elapsed() < Duration::from_secs(8) {
        sleep_until(&rt, Instant::now() + Duration::from_millis(100)).await;
        mux += 2;
        let frames = [bloat(mux), Frame::new(op::PING, 0, mux, Vec::new())];
        if attacker.send(&frames).await.is_err() {
            break;
        }
        trickle += 1;
    }
    assert!(!victim.is_connected(), "a too-slow reader was never closed");
    attacker.set_pace(0);
    let (ending, _) = attacker.ending(WAIT).await;
    assert_closed_with(&ending, close_code::PEER_TOO_SLOW);

    settle(&rt).await;
    let samples = watch.finish().await;
    samples.print_peaks("slow_reader_is_closed_as_too_slow");
    let refused = samples.peak_count(|s| s.refused_overloaded);
    assert!(
        refused * 2 >= u64::from(trickle),
        "only {refused} of {trickle} calls sent while the backlog was over its bound were refused"
    );
    let backlog = samples.peak(|s| s.outbound_backlog);
    let allowed = limits.max_outbound_backlog + burst.len() * 256 * KIB;
    assert!(
        backlog <= allowed,
        "outbound backlog reached {backlog} bytes: more than the burst's answers ({allowed})"
    );
    legit.finish().await.assert_all_succeeded(10);
    arena.shutdown().await;
}

/// Large requests to a handler that waits: the victim admits them while
/// their payloads fit `max_held_request_bytes` and refuses the rest with
/// `Overloaded`; once the held calls end, new ones are admitted again. The
/// connection stays up throughout.
pub async fn held_requests_are_bounded<R: TestRuntime>(rt: R) {
    let limits = Limits {
        max_held_request_bytes: MIB,
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
    let victim = arena.attacker_at_victim();

    // A 256 KiB request in 32 KiB fragments.
    let large = |mux: u32| {
        let payload = request_payload(HOLD, b"", &vec![0x17; 256 * KIB]);
        let chunks: Vec<&[u8]> = payload.chunks(32 * KIB).collect();
        let last = chunks.len() - 1;
        chunks
            .iter()
            .enumerate()
            .map(|(i, chunk)| {
                let frame = Frame::new(op::REQUEST, mux, 30_000, chunk.to_vec());
                if i < last {
                    frame.more()
                } else {
                    frame
                }
            })
            .collect::<Vec<_>>()
    };
    const CALLS: u32 = 12;
    let attack: Vec<Frame> = (1..=CALLS).flat_map(large).collect();
    attacker.send(&attack).await.expect("send large requests");

    let mut refused = 0u32;
    let deadline = Instant::now() + WAIT;
    while refused + (arena.holding() as u32) < CALLS {
        let left = deadline.saturating_duration_since(Instant::now());
        match attacker.next(left.min(Duration::from_millis(50))).await {
            Some(Ok(frame)) if frame.op == op::ERROR && frame.arg == error_code::OVERLOADED => {
                refused += 1;
            }
            Some(Ok(frame)) => panic!("unexpected answer to a held call: {frame:?}"),
            Some(Err(ending)) => panic!("the victim ended the connection: {ending:?}"),
            None => assert!(
                Instant::now() < deadline,
                "{refused} refused and {} held of {CALLS} calls",
                arena.holding()
            ),
        }
    }
    let held = arena.holding();
    assert!(
        (3..=4).contains(&held),
        "{held} calls of 256 KiB held under a bound of 1 MiB"
    );
    assert!(
        victim.stats().protocol.refused_overloaded >= u64::from(refused),
        "refusals are counted"
    );

    // Ending the held calls frees their bytes: a new large call is admitted.
    let cancels: Vec<Frame> = (1..=CALLS)
        .map(|mux| Frame::new(op::CANCEL, mux, 0, Vec::new()))
        .collect();
    attacker.send(&cancels).await.expect("send cancels");
    eventually(&rt, WAIT, "cancelled calls release their payloads", || {
        arena.holding() == 0 && victim.stats().protocol.held_request_bytes == 0
    })
    .await;
    attacker
        .send(&large(CALLS + 1))
        .await
        .expect("send one more");
    eventually(&rt, WAIT, "a call is admitted once bytes are free", || {
        arena.holding() == 1
    })
    .await;
    attacker
        .ping(1, WAIT)
        .await
        .expect("refusing calls leaves the connection up");

    settle(&rt).await;
    let samples = watch.finish().await;
    samples.print_peaks("held_requests_are_bounded");
    let peak = samples.peak(|s| s.held_request_bytes);
    assert!(
        peak <= limits.max_held_request_bytes,
        "held request bytes reached {peak}, over {}",
        limits.max_held_request_bytes
    );
    legit.finish().await.assert_all_succeeded(3);
    arena.shutdown().await;
}
