//! The attacks, each run by the hostile suite's raw peer against a fresh node
//! with every limit at its default. Each says how the node ended the
//! connection (read from the wire, as the attacker sees it) and when.

use std::error::Error;
use std::time::{Duration, Instant};

use grid::conformance::hostile::{
    close_code, error_code, handlers, op, request_payload, Ending, Frame, RawPeer, SECRET,
};
use grid_proto::Limits;
use grid_tokio::Tokio;

use crate::child::Victim;

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

/// How long the attacker waits for the node to end a connection it should
/// end: past the 30 s write-stall default and a keepalive interval.
const PATIENCE: Duration = Duration::from_secs(50);

/// How long reading the node's last frames may take.
const LAST_WORDS: Duration = Duration::from_secs(5);

/// One attack of the measurement.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Attack {
    /// A connection that does nothing: the node's memory without an attack.
    Baseline,
    /// Echo requests, never a byte read back.
    NeverReads,
    /// Requests for large answers, read at 0.5 MiB/s, pings answered.
    SlowReader,
    /// Large requests to a handler that keeps them until cancelled.
    HeldRequests,
    /// First fragments of requests that never get their last one.
    PartialMessages,
}

/// How an attack ended.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// How the node ended the connection, or that it left it open.
    pub(crate) ending: String,
    /// From the first byte of the attack to the node's close.
    pub(crate) closed_after: Option<Duration>,
    /// What else the attacker saw.
    pub(crate) notes: String,
}

impl Attack {
    /// Every attack, the baseline first: the others' memory is compared
    /// with it.
    pub(crate) const ALL: [Attack; 5] = [
        Attack::Baseline,
        Attack::NeverReads,
        Attack::SlowReader,
        Attack::HeldRequests,
        Attack::PartialMessages,
    ];

    /// A short name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Attack::Baseline => "baseline, no attack",
            Attack::NeverReads => "never reads",
            Attack::SlowReader => "slow reader",
            Attack::HeldRequests => "held large requests",
            Attack::PartialMessages => "partial messages",
        }
    }

    /// What the attacker does.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Attack::Baseline => "connects, pings once, idles 3 s, hangs up",
            Attack::NeverReads => {
                "sends 96 MiB of 256 KiB echo requests and never reads; sends blind \
                 Pongs numbered as a sequential ping count would be"
            }
            Attack::SlowReader => {
                "asks for 96 answers of 1 MiB at once, then one more and a Ping every \
                 100 ms; reads 0.5 MiB/s and answers pings"
            }
            Attack::HeldRequests => {
                "sends 40 requests of 8 MiB to a handler that keeps them until \
                 cancelled, holds them 3 s, cancels"
            }
            Attack::PartialMessages => {
                "sends the 64 KiB first fragment of 4000 requests (250 MiB), waits 2 s, \
                 then 300 more"
            }
        }
    }

    /// The accounted bytes the documented bounds let this attack make the
    /// node hold, and which bound that is.
    pub(crate) fn bound(self, limits: &Limits) -> (usize, &'static str) {
        match self {
            Attack::Baseline => (0, "-"),
            Attack::NeverReads | Attack::SlowReader => (
                limits.max_outbound_backlog,
                "max_outbound_backlog, plus answers of calls admitted before it was crossed",
            ),
            Attack::HeldRequests => (limits.max_held_request_bytes, "max_held_request_bytes"),
            Attack::PartialMessages => (limits.max_buffered_bytes, "max_buffered_bytes"),
        }
    }

    /// Runs the attack against `victim`.
    pub(crate) async fn run(self, victim: &Victim) -> Result<Outcome, Box<dyn Error>> {
        match self {
            Attack::Baseline => baseline(victim).await,
            Attack::NeverReads => never_reads(victim).await,
            Attack::SlowReader => slow_reader(victim).await,
            Attack::HeldRequests => held_requests(victim).await,
            Attack::PartialMessages => partial_messages(victim).await,
        }
    }
}

/// Completes a handshake as the peer the node expects.
async fn connect(victim: &Victim) -> Result<RawPeer<Tokio>, Box<dyn Error>> {
    RawPeer::connect(&Tokio, &victim.addr, &victim.attacker, SECRET, 1)
        .await
        .map_err(|ending| format!("the attacker's handshake failed: {ending:?}").into())
}

/// A message as frames no larger than the node's default frame limit.
fn fragments(op: u8, mux: u32, arg: u32, payload: &[u8]) -> Vec<Frame> {
    let limit = Limits::default().max_frame_size as usize;
    let chunks: Vec<&[u8]> = payload.chunks(limit).collect();
    let last = chunks.len().saturating_sub(1);
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let frame = Frame::new(op, mux, arg, chunk.to_vec());
            if i < last {
                frame.more()
            } else {
                frame
            }
        })
        .collect()
}

/// A request for an answer of `size` bytes.
fn bloat(mux: u32, size: usize) -> Frame {
    let size = u32::try_from(size).unwrap_or(u32::MAX).to_le_bytes();
    Frame::new(
        op::REQUEST,
        mux,
        60_000,
        request_payload(handlers::BLOAT, b"", &size),
    )
}

/// The name of a `Close` code (PROTOCOL.md §12.2).
fn close_name(code: u32) -> &'static str {
    match code {
        0 => "Local",
        3 => "PeerTimeout",
        4 => "Protocol",
        close_code::LIMIT_EXCEEDED => "LimitExceeded",
        6 => "Drained",
        close_code::PEER_NOT_READING => "PeerNotReading",
        close_code::PEER_TOO_SLOW => "PeerTooSlow",
        close_code::REPLACED => "Replaced",
        close_code::REPLACING_TOO_OFTEN => "ReplacingTooOften",
        _ => "other",
    }
}

/// How the connection ended, in words.
fn describe(ending: &Ending) -> String {
    match ending {
        Ending::Closed { code, reason } => {
            format!("Close {} ({code}): {reason}", close_name(*code))
        }
        Ending::Rejected(reason) => format!("Reject: {reason}"),
        Ending::Eof => "the node hung up without a Close".to_string(),
        Ending::Failed(error) => format!("transport error: {error}"),
        Ending::StillOpen => "still open".to_string(),
    }
}

async fn baseline(victim: &Victim) -> Result<Outcome, Box<dyn Error>> {
    let mut attacker = connect(victim).await?;
    attacker
        .ping(1, LAST_WORDS)
        .await
        .map_err(|e| format!("{e:?}"))?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    attacker.hang_up().await;
    Ok(Outcome {
        ending: "open until the attacker hung up".to_string(),
        closed_after: None,
        notes: "ping answered".to_string(),
    })
}

async fn never_reads(victim: &Victim) -> Result<Outcome, Box<dyn Error>> {
    let mut attacker = connect(victim).await?;
    let started = Instant::now();
    let body = vec![0x42; 256 * KIB];
    for i in 0..384u32 {
        let payload = request_payload(handlers::ECHO, b"", &body);
        attacker
            .send(&fragments(op::REQUEST, 2 * i + 1, 60_000, &payload))
            .await?;
    }
    let sent = started.elapsed();
    // A peer that reads nothing can only guess the ids of the node's pings;
    // they start at a number it cannot predict, so these answer nothing and
    // the dead-peer rule, or the write-stall rule, closes the connection.
    let interval = grid_proto::Timeouts::default().keepalive_interval;
    let closed_at = loop {
        if let Some(at) = victim.disconnected(Duration::from_millis(250)).await {
            break Some(at);
        }
        if started.elapsed() > PATIENCE {
            break None;
        }
        let latest = (started.elapsed().as_millis() / interval.as_millis()) as u32;
        if latest > 0 {
            let pong = Frame::new(op::PONG, 0, latest, Vec::new());
            if attacker.send(&[pong]).await.is_err() {
                break victim.disconnected(LAST_WORDS).await;
            }
        }
    };
    let (ending, _) = attacker.ending(LAST_WORDS).await;
    let refused = victim.view().peak.refused;
    Ok(Outcome {
        ending: describe(&ending),
        closed_after: closed_at.map(|at| at.duration_since(started)),
        notes: format!(
            "96 MiB sent in {:.1} s; {refused} requests refused with Overloaded",
            sent.as_secs_f64()
        ),
    })
}

async fn slow_reader(victim: &Victim) -> Result<Outcome, Box<dyn Error>> {
    let mut attacker = connect(victim).await?;
    attacker.set_pace(512 * KIB as u64);
    attacker.start_reading();
    let started = Instant::now();
    let burst: Vec<Frame> = (0..96).map(|i| bloat(2 * i + 1, MIB)).collect();
    attacker.send(&burst).await?;
    let mut mux = 1001u32;
    let mut trickle = 0u32;
    while victim.view().disconnected_at.is_none() && started.elapsed() < PATIENCE {
        tokio::time::sleep(Duration::from_millis(100)).await;
        mux += 2;
        let frames = [bloat(mux, MIB), Frame::new(op::PING, 0, mux, Vec::new())];
        if attacker.send(&frames).await.is_err() {
            break;
        }
        trickle += 1;
    }
    let closed_at = victim.disconnected(LAST_WORDS).await;
    attacker.set_pace(0);
    let (ending, _) = attacker.ending(LAST_WORDS).await;
    let refused = victim.view().peak.refused;
    Ok(Outcome {
        ending: describe(&ending),
        closed_after: closed_at.map(|at| at.duration_since(started)),
        notes: format!(
            "{trickle} more requests after the burst, {refused} refused with Overloaded"
        ),
    })
}

async fn held_requests(victim: &Victim) -> Result<Outcome, Box<dyn Error>> {
    const CALLS: u32 = 40;
    let mut attacker = connect(victim).await?;
    attacker.start_reading();
    let body = vec![0x17; 8 * MIB];
    let payload = request_payload(handlers::HOLD, b"", &body);
    for i in 0..CALLS {
        attacker
            .send(&fragments(op::REQUEST, 2 * i + 1, 60_000, &payload))
            .await?;
    }
    let mut refused = 0u32;
    let deadline = Instant::now() + Duration::from_secs(10);
    while refused as usize + victim.view().latest.calls < CALLS as usize {
        if Instant::now() > deadline {
            return Err(format!("{refused} refused, the rest not admitted within 10 s").into());
        }
        match attacker.next(Duration::from_millis(50)).await {
            Some(Ok(frame)) if frame.op == op::ERROR && frame.arg == error_code::OVERLOADED => {
                refused += 1;
            }
            Some(Ok(_)) | None => {}
            Some(Err(ending)) => {
                return Ok(Outcome {
                    ending: describe(&ending),
                    closed_after: None,
                    notes: format!("{refused} refused before the close"),
                })
            }
        }
    }
    let held = victim.view().latest;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let up = attacker.ping(1, LAST_WORDS).await.is_ok();
    let cancels: Vec<Frame> = (0..CALLS)
        .map(|i| Frame::new(op::CANCEL, 2 * i + 1, 0, Vec::new()))
        .collect();
    attacker.send(&cancels).await?;
    let released = victim
        .reports(LAST_WORDS, |now| now.held == 0 && now.calls == 0)
        .await;
    attacker.hang_up().await;
    Ok(Outcome {
        ending: if up {
            "open: a ping after the attack was answered".to_string()
        } else {
            "a ping after the attack went unanswered".to_string()
        },
        closed_after: None,
        notes: format!(
            "{} calls admitted and held ({} MiB), {refused} refused with Overloaded; \
             cancelling released every byte: {released}",
            held.calls,
            held.held / MIB
        ),
    })
}

async fn partial_messages(victim: &Victim) -> Result<Outcome, Box<dyn Error>> {
    const FIRST: u32 = 4000;
    const MORE: u32 = 300;
    let mut attacker = connect(victim).await?;
    attacker.start_reading();
    let started = Instant::now();
    let fragment = Limits::default().max_frame_size as usize;
    let first_fragment = |mux: u32| {
        let body = vec![7u8; fragment - 3];
        Frame::new(
            op::REQUEST,
            mux,
            60_000,
            request_payload(handlers::ECHO, b"", &body),
        )
        .more()
    };
    for batch in (1..=FIRST).collect::<Vec<_>>().chunks(100) {
        let frames: Vec<Frame> = batch.iter().map(|&mux| first_fragment(mux)).collect();
        attacker.send(&frames).await?;
    }
    let expected = FIRST as usize * fragment;
    let counted = victim
        .reports(LAST_WORDS, |now| now.buffered >= expected)
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let up = attacker.ping(1, LAST_WORDS).await.is_ok();
    let more: Vec<Frame> = (FIRST + 1..=FIRST + MORE).map(first_fragment).collect();
    // The node may close while these are still being written.
    let _ = attacker.send(&more).await;
    let (ending, _) = attacker.ending(LAST_WORDS).await;
    let closed_at = victim.disconnected(LAST_WORDS).await;
    Ok(Outcome {
        ending: describe(&ending),
        closed_after: closed_at.map(|at| at.duration_since(started)),
        notes: format!(
            "{FIRST} partial messages counted as buffered: {counted}; \
             ping answered while within the bounds: {up}"
        ),
    })
}
