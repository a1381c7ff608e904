//! Scanners without the cluster secret: one that guesses a proof, one that
//! says nothing. Neither may learn anything it could test guesses against.

use std::time::{Duration, Instant};

use futures_util::io::{AsyncReadExt, AsyncWriteExt};

use super::arena::{Arena, ArenaOptions, WAIT};
use super::attacks::settle;
use super::handshake::{proof, Hello, DIALER};
use super::observe::LegitCalls;
use super::peer::{within, Ending};
use super::wire::{op, Decoder, Frame};
use crate::conformance::TestRuntime;
use crate::runtime::{BoxIo, Runtime};

/// Reads frames from a raw connection for `duration`, or until it ends.
async fn read_for<R: Runtime>(
    rt: &R,
    io: &mut BoxIo,
    decoder: &mut Decoder,
    duration: Duration,
) -> (Vec<Frame>, Ending) {
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
    let ending = within(rt, duration, read_all)
        .await
        .unwrap_or(Ending::StillOpen);
    (frames, ending)
}

/// A dialer that does not know the secret says `Hello`, waits to see what
/// the acceptor volunteers, then sends a guessed proof: the acceptor checks
/// it before proving anything itself, so the scanner gets a `Reject` and
/// never the acceptor's `Auth` (an HMAC over a transcript the scanner knows,
/// which it could test secrets against offline).
pub async fn scanner_without_the_secret_gets_no_proof<R: TestRuntime>(rt: R) {
    let arena = Arena::start(&rt, ArenaOptions::default()).await;
    let legit = LegitCalls::start(&rt, arena.legit_to_victim());
    let mut io = rt.connect(&arena.victim_name).await.expect("connect");
    let mut decoder = Decoder::new();
    let hello = Hello::dialer(&arena.attacker_name, 7).encode();
    io.write_all(&Frame::new(op::HELLO, 0, 0, hello.clone()).encode())
        .await
        .expect("send Hello");
    // Long enough for an acceptor that proves first to have proven.
    let (mut frames, ending) =
        read_for(&rt, &mut io, &mut decoder, Duration::from_millis(300)).await;
    assert_eq!(
        ending,
        Ending::StillOpen,
        "the acceptor hung up on a Hello: {frames:?}"
    );
    let victim_hello = match frames.first() {
        Some(frame) if frame.op == op::HELLO => frame.payload.clone(),
        other => panic!("the acceptor's first frame is its Hello: {other:?}"),
    };
    let guess = proof(
        b"a guess at the cluster secret",
        DIALER,
        &hello,
        &victim_hello,
    );
    io.write_all(&Frame::new(op::AUTH, 0, 0, guess.to_vec()).encode())
        .await
        .expect("send a guessed Auth");
    let (after, ending) = read_for(&rt, &mut io, &mut decoder, WAIT).await;
    frames.extend(after);

    let ops: Vec<u8> = frames.iter().map(|f| f.op).collect();
    assert!(
        !ops.contains(&op::AUTH),
        "the acceptor sent its proof to a dialer that had not proven anything: ops {ops:02x?}"
    );
    assert_eq!(ops, [op::HELLO, op::REJECT], "ops {ops:02x?}");
    assert!(
        frames[1].text().contains("authentication"),
        "{:?}",
        frames[1].text()
    );
    assert!(
        matches!(ending, Ending::Eof | Ending::Failed(_)),
        "the acceptor hangs up after the Reject: {ending:?}"
    );
    assert!(!arena.attacker_at_victim().is_connected());
    settle(&rt).await;
    legit.finish().await.assert_all_succeeded(3);
    arena.shutdown().await;
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
    let (frames, ending) = read_for(&rt, &mut io, &mut Decoder::new(), handshake + WAIT).await;
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
