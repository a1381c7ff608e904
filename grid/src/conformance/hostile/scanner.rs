//! Scanners without the cluster secret: one that guesses a proof, one that
//! says nothing. Neither may learn anything it could test guesses against.

use std::time::{Duration, Instant};

use futures_util::io::AsyncReadExt;

use super::arena::{Arena, ArenaOptions, WAIT};
use super::attacks::settle;
use super::observe::LegitCalls;
use super::peer::{within, Ending, RawPeer};
use super::wire::{op, Decoder, Frame};
use crate::conformance::TestRuntime;
use crate::runtime::Runtime;

/// A dialer that does not know the secret sends a guessed proof: the
/// acceptor checks it before proving anything itself, so the scanner gets a
/// `Reject` and never the acceptor's `Auth` (an HMAC over a transcript the
/// scanner knows, which it could test secrets against offline).
pub async fn scanner_without_the_secret_gets_no_proof<R: TestRuntime>(rt: R) {
    let arena = Arena::start(&rt, ArenaOptions::default()).await;
    let legit = LegitCalls::start(&rt, arena.legit_to_victim());
    for seed in 0..3 {
        let attempt = RawPeer::connect(
            &rt,
            &arena.victim_name,
            &arena.attacker_name,
            b"a guess at the cluster secret",
            1000 + seed,
        )
        .await;
        let refused = match attempt {
            Ok(_) => panic!("established without the cluster secret"),
            Err(refused) => refused,
        };
        assert!(
            !refused.victim_sent_auth,
            "the acceptor sent its proof to a dialer that failed to prove: {refused:?}"
        );
        match &refused.ending {
            Ending::Rejected(reason) => assert!(reason.contains("authentication"), "{reason}"),
            other => panic!("the scanner should get a Reject: {other:?}"),
        }
    }
    assert!(!arena.attacker_at_victim().is_connected());
    settle(&rt).await;
    legit.finish().await.assert_all_succeeded(3);
    arena.shutdown().await;
}

/// Reads every frame from a raw connection until it ends, at most `timeout`.
async fn frames_until_end<R: Runtime>(
    rt: &R,
    io: &mut crate::runtime::BoxIo,
    timeout: Duration,
) -> (Vec<Frame>, Ending) {
    let mut decoder = Decoder::new();
    let mut frames = Vec::new();
    let mut chunk = [0u8; 4096];
    let read_all = async {
        loop {
            loop {
                match decoder.next() {
                    Ok(Some(frame)) => frames.push(frame),
                    Ok(None) => break,
                    Err(malformed) => return Ending::Failed(malformed.0),
                }
            }
            match io.read(&mut chunk).await {
                Ok(0) => return Ending::Eof,
                Ok(n) => decoder.push(&chunk[..n]),
                Err(error) => return Ending::Failed(error.to_string()),
            }
        }
    };
    let ending = within(rt, timeout, read_all)
        .await
        .unwrap_or(Ending::StillOpen);
    (frames, ending)
}

/// A scanner that connects and sends nothing gets the victim's `Hello`, then
/// a `Reject` at the handshake timeout, and the victim hangs up.
pub async fn silent_scanner_is_dropped_at_the_handshake_timeout<R: TestRuntime>(rt: R) {
    let options = ArenaOptions::default();
    let handshake = options.timeouts.handshake;
    let arena = Arena::start(&rt, options).await;
    let legit = LegitCalls::start(&rt, arena.legit_to_victim());
    let started = Instant::now();
    let mut io = rt.connect(&arena.victim_name).await.expect("connect");
    let (frames, ending) = frames_until_end(&rt, &mut io, handshake + WAIT).await;
    let elapsed = started.elapsed();

    let ops: Vec<u8> = frames.iter().map(|f| f.op).collect();
    assert_eq!(
        ops,
        [op::HELLO, op::REJECT],
        "a silent scanner gets the Hello and a Reject, nothing more: {frames:?}"
    );
    assert!(
        frames[1].text().contains("handshake timed out"),
        "{:?}",
        frames[1].text()
    );
    assert!(
        matches!(ending, Ending::Eof | Ending::Failed(_)),
        "the victim hangs up after the Reject: {ending:?}"
    );
    assert!(
        elapsed >= handshake.mul_f32(0.9) && elapsed <= handshake + Duration::from_secs(2),
        "dropped after {elapsed:?}, the handshake timeout is {handshake:?}"
    );
    settle(&rt).await;
    legit.finish().await.assert_all_succeeded(3);
    arena.shutdown().await;
}
