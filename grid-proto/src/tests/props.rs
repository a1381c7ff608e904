//! Property tests: random operation sequences applied to both sides of a
//! simulated [`Pair`], checked against a model of what each side's application
//! believes.
//!
//! Every step applies one operation to one side (open a request or stream,
//! accept, send, consume, finish, respond, fail, cancel in either role, drain,
//! close), or to the pair (advance the virtual clock, change chunking and
//! latency), or writes a few transmit buffers of one side by hand, as a driver
//! with a slow socket does; then it usually drives the pipes. Every event is
//! checked against the model as it is taken, and after every step the model is
//! compared with what the connections report. At the end both applications end
//! everything they hold and the pair settles.
//!
//! Properties (numbers as in the test plan):
//!
//! 1. *Every call ends exactly once.* A call a side opened gets exactly one
//!    terminal event (`Response` or `StreamFinished`) unless that side cancelled
//!    it itself (then none); no event names a call after its terminal event (or,
//!    for an incoming call, after the application ended it or after its
//!    `Cancelled`); `Closed` comes after the terminal event of every call of the
//!    side, after the `Cancelled` of every incoming call, and is the side's last
//!    event. Results must be justified ([`check_terminal`]): an answer is exactly
//!    what the responder's application answered, `Cancelled` only after the
//!    responder reset the call, `DeadlineExceeded` only once the deadline (or the
//!    responder's clamped deadline) passed, `Disconnected` only on a closed
//!    connection, `Draining` and `Overloaded` only from a responder that is so,
//!    never a protocol error; likewise for `Cancelled` events and for every
//!    command's result (each refusal needs its condition, and a command with no
//!    applicable refusal succeeds). A connection closes only because the test
//!    closed or drained it, or (small limits) for unconsumed input over
//!    `max_buffered_bytes`, and its `Close` always reaches the peer.
//! 2. *Credits.* A receiver is never delivered more messages on a stream than the
//!    window it granted plus the messages it consumed (unconsumed delivered
//!    messages ≤ window), and `send_message` never succeeds beyond window +
//!    messages consumed by the peer. Liveness: once the pair has settled, a sender
//!    whose peer consumed everything delivered (and granted a window ≥ 1) can send.
//! 3. *No mux outlives its call.* `in_flight()` and the stream gauges of
//!    `stats()` always equal the model's counts, within the incoming-call limits;
//!    after the final wind-down they are all zero, as are `buffered_bytes` and
//!    `send_buffered`, and a `SendBufferFull` refusal has been followed by
//!    `Writable`.
//! 4. *Buffered bytes stay within limits.* After every step
//!    `stats().buffered_bytes <= max_buffered_bytes`; when settled it is the bytes
//!    of delivered, unconsumed messages of calls the side still holds (plus at
//!    most a partial message per call cancelled here). With small limits and big
//!    messages the receiver closes with `CloseReason::LimitExceeded` instead of
//!    exceeding the limit.
//! 5. *Both sides agree on what is open* (see [`Harness::check_agreement`]).
//! 6. *Stream messages arrive complete and in order*; each payload carries its
//!    sequence number and is compared byte for byte; the end of a direction
//!    (`InputFinished`, `StreamFinished` after the responder's `finish` or
//!    `fail`) comes only after every message sent before it was delivered.
//!
//! And for drains: a drain that completes before its deadline ends no call with
//! `Disconnected` on either side, and every answer made before it is delivered.
//!
//! The runs are deterministic: proptest uses a fixed seed, the simulator a seed
//! drawn by proptest, and no failure-persistence files are written.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;
use proptest::strategy::Union;
use proptest::test_runner::{RngSeed, TestRunner};

use crate::config::Role;
use crate::connection::Connection;
use crate::sim::{sim_config, Pair, Side, Which};
use crate::{
    CallId, CallTarget, CloseReason, Config, ConnectionState, Error, Event, Limits, Timeouts,
};

const HANDLER: u16 = 7;
const SUBROUTE: &[u8] = b"props";
/// Deadlines under this fail locally (`connection/commands.rs` `MIN_DEADLINE`).
const MIN_DEADLINE: Duration = Duration::from_millis(1);
const BOTH: [Which; 2] = [Which::Client, Which::Server];
const CLOSE_TEXT: &str = "props test closes";

// ----- operations and their strategies -----

#[derive(Clone, Debug)]
enum Op {
    OpenRequest {
        side: Which,
        size: usize,
        timeout: Option<Duration>,
    },
    OpenStream {
        side: Which,
        size: usize,
        window: u32,
        timeout: Option<Duration>,
    },
    /// `accept_stream` on an incoming stream the side holds.
    Accept {
        side: Which,
        pick: usize,
        window: u32,
    },
    /// `send_message` on a stream the side holds, in either role.
    Send {
        side: Which,
        pick: usize,
        size: usize,
    },
    /// Consumes the oldest unconsumed message of a stream.
    Consume {
        side: Which,
        pick: usize,
    },
    /// `finish` on a call the side holds, in either role.
    Finish {
        side: Which,
        pick: usize,
    },
    Respond {
        side: Which,
        pick: usize,
        size: usize,
    },
    Fail {
        side: Which,
        pick: usize,
        remote: bool,
    },
    /// `cancel` of a call the side holds, in either role.
    Cancel {
        side: Which,
        pick: usize,
    },
    Advance(Duration),
    Network {
        max_chunk: usize,
        latency: Duration,
    },
    /// Hands up to `buffers` buffers of `poll_transmit` to the peer (when the
    /// pipe towards it is empty) and leaves the rest queued, like a driver whose
    /// socket is slow.
    WriteSome {
        side: Which,
        buffers: usize,
    },
    /// Cancels the call on which `side` last queued a message (in either role).
    CancelRecent {
        side: Which,
    },
    /// Consumes a message of the stream on which `side` last queued a message.
    ConsumeRecent {
        side: Which,
    },
    /// Both sides of a stream act at once: `side` queues a message of `size`
    /// and writes `buffers` buffers of its queue, then the peer ends the call
    /// (cancel as opener; finish, fail or cancel as responder, by `end`) and
    /// writes its frames first.
    Race {
        side: Which,
        pick: usize,
        size: usize,
        buffers: usize,
        end: u8,
    },
    /// An opener gives up on streams in the middle of messages and retries:
    /// `side` opens `streams` streams, which the peer accepts with a window of
    /// one, queues a message of `size` on each, writes `buffers` buffers,
    /// cancels the streams, opens `reopen` requests of `reopen_size` bytes and
    /// writes `more_buffers` buffers.
    Abandon {
        side: Which,
        streams: usize,
        size: usize,
        buffers: usize,
        reopen: usize,
        reopen_size: usize,
        more_buffers: usize,
    },
    /// The application of `side` opens a request of `size` bytes, the driver
    /// writes `buffers` buffers, and the application closes: a close in the
    /// middle of an upload.
    CloseMidWrite {
        side: Which,
        size: usize,
        buffers: usize,
    },
    Drain {
        side: Which,
        timeout: Duration,
    },
    Close {
        side: Which,
    },
}

#[derive(Clone, Debug)]
struct Step {
    op: Op,
    /// Drive the pipes after the operation. Without it commands pile up in the
    /// send queues, as they do between two writes of a real driver.
    drive: bool,
}

/// What a test run may do beyond the basic operations.
#[derive(Clone, Copy, Debug)]
struct Features {
    drain: bool,
    /// `WriteSome` and the operations that aim at messages cut by it.
    write_one: bool,
    /// `Race` (implies `write_one`).
    race: bool,
    /// `Abandon` (implies `write_one`).
    abandon: bool,
    /// Each side accepts only two incoming calls at a time.
    few_calls: bool,
    /// Small limits (buffered bytes, message size, calls, send buffer) and big
    /// messages.
    small_limits: bool,
}

const BASIC: Features = Features {
    drain: false,
    write_one: false,
    race: false,
    abandon: false,
    few_calls: false,
    small_limits: false,
};

fn which() -> impl Strategy<Value = Which> {
    prop_oneof![Just(Which::Client), Just(Which::Server)]
}

/// Payload sizes: mostly small, sometimes larger than the 16 KiB fragment.
fn size(min: usize, features: Features) -> BoxedStrategy<usize> {
    if features.small_limits {
        prop_oneof![
            4 => min..64usize,
            3 => 1_000..20_000usize,
            2 => 20_000..100_000usize,
        ]
        .boxed()
    } else if features.write_one {
        // Many multi-fragment messages, to be cut between fragments.
        prop_oneof![
            4 => min..64usize,
            2 => 64..4_096usize,
            4 => 16_000..40_000usize,
        ]
        .boxed()
    } else {
        prop_oneof![
            8 => min..64usize,
            3 => 64..4_096usize,
            1 => 16_000..40_000usize,
        ]
        .boxed()
    }
}

fn timeout() -> impl Strategy<Value = Option<Duration>> {
    prop_oneof![
        2 => Just(None),
        // Tiny, including under 1 ms (fails locally) and fractional milliseconds.
        1 => (0u64..2_500).prop_map(|us| Some(Duration::from_micros(us))),
        2 => (1u64..200).prop_map(|ms| Some(Duration::from_millis(ms))),
        3 => (200u64..10_000).prop_map(|ms| Some(Duration::from_millis(ms))),
        2 => (10u64..120).prop_map(|s| Some(Duration::from_secs(s))),
    ]
}

/// A stream window: mostly some credit, sometimes none.
fn window() -> impl Strategy<Value = u32> {
    prop_oneof![1 => Just(0u32), 5 => 1u32..8]
}

fn advance() -> impl Strategy<Value = Duration> {
    prop_oneof![
        5 => (0u64..2_000).prop_map(Duration::from_micros),
        3 => (2u64..100).prop_map(Duration::from_millis),
        2 => (100u64..3_000).prop_map(Duration::from_millis),
        1 => (10u64..70).prop_map(Duration::from_secs),
    ]
}

/// Chunking and latency. Without `latency_too` the latency stays zero, so the
/// pipes are empty after every drive and `WriteSome` can cut messages often.
fn network(latency_too: bool) -> impl Strategy<Value = Op> {
    let max_chunk = prop_oneof![
        3 => Just(usize::MAX),
        1 => 1..16usize,
        2 => 16..2_000usize,
        1 => 2_000..70_000usize,
    ];
    let latency = if latency_too {
        prop_oneof![
            2 => Just(Duration::ZERO),
            1 => Just(Duration::from_micros(100)),
            1 => Just(Duration::from_millis(1)),
            1 => Just(Duration::from_millis(5)),
        ]
        .boxed()
    } else {
        Just(Duration::ZERO).boxed()
    };
    (max_chunk, latency).prop_map(|(max_chunk, latency)| Op::Network { max_chunk, latency })
}

fn op(features: Features) -> impl Strategy<Value = Op> {
    let mut options: Vec<(u32, BoxedStrategy<Op>)> = vec![
        (
            80,
            (which(), size(0, features), timeout())
                .prop_map(|(side, size, timeout)| Op::OpenRequest {
                    side,
                    size,
                    timeout,
                })
                .boxed(),
        ),
        (
            60,
            (which(), 0usize..64, window(), timeout())
                .prop_map(|(side, size, window, timeout)| Op::OpenStream {
                    side,
                    size,
                    window,
                    timeout,
                })
                .boxed(),
        ),
        (
            80,
            (which(), any::<usize>(), window())
                .prop_map(|(side, pick, window)| Op::Accept { side, pick, window })
                .boxed(),
        ),
        (
            200,
            (which(), any::<usize>(), size(8, features))
                .prop_map(|(side, pick, size)| Op::Send { side, pick, size })
                .boxed(),
        ),
        (
            100,
            (which(), any::<usize>())
                .prop_map(|(side, pick)| Op::Consume { side, pick })
                .boxed(),
        ),
        (
            40,
            (which(), any::<usize>())
                .prop_map(|(side, pick)| Op::Finish { side, pick })
                .boxed(),
        ),
        (
            60,
            (which(), any::<usize>(), size(0, features))
                .prop_map(|(side, pick, size)| Op::Respond { side, pick, size })
                .boxed(),
        ),
        (
            20,
            (which(), any::<usize>(), any::<bool>())
                .prop_map(|(side, pick, remote)| Op::Fail { side, pick, remote })
                .boxed(),
        ),
        (
            30,
            (which(), any::<usize>())
                .prop_map(|(side, pick)| Op::Cancel { side, pick })
                .boxed(),
        ),
        (100, advance().prop_map(Op::Advance).boxed()),
        (20, network(!features.write_one).boxed()),
        (3, which().prop_map(|side| Op::Close { side }).boxed()),
    ];
    if features.race {
        options.push((
            60,
            (
                which(),
                any::<usize>(),
                16_000..40_000usize,
                1..4usize,
                0..3u8,
            )
                .prop_map(|(side, pick, size, buffers, end)| Op::Race {
                    side,
                    pick,
                    size,
                    buffers,
                    end,
                })
                .boxed(),
        ));
    }
    if features.abandon {
        options.push((
            60,
            (
                which(),
                1..4usize,
                16_000..40_000usize,
                1..8usize,
                1..4usize,
                16_000..40_000usize,
                1..8usize,
            )
                .prop_map(
                    |(side, streams, size, buffers, reopen, reopen_size, more_buffers)| {
                        Op::Abandon {
                            side,
                            streams,
                            size,
                            buffers,
                            reopen,
                            reopen_size,
                            more_buffers,
                        }
                    },
                )
                .boxed(),
        ));
    }
    if features.write_one {
        options.push((
            20,
            (which(), 16_000..64_000usize, 1..6usize)
                .prop_map(|(side, size, buffers)| Op::CloseMidWrite {
                    side,
                    size,
                    buffers,
                })
                .boxed(),
        ));
    }
    if features.write_one {
        options.push((
            150,
            (which(), 1..4usize)
                .prop_map(|(side, buffers)| Op::WriteSome { side, buffers })
                .boxed(),
        ));
        // Frames on a mux whose message may be cut between two fragments.
        options.push((
            60,
            which().prop_map(|side| Op::CancelRecent { side }).boxed(),
        ));
        options.push((
            60,
            which().prop_map(|side| Op::ConsumeRecent { side }).boxed(),
        ));
    }
    if features.drain {
        let timeouts = prop_oneof![
            (1u64..50).prop_map(Duration::from_millis),
            (1u64..20).prop_map(Duration::from_secs),
        ];
        options.push((
            20,
            (which(), timeouts)
                .prop_map(|(side, timeout)| Op::Drain { side, timeout })
                .boxed(),
        ));
    }
    Union::new_weighted(options)
}

fn steps(features: Features) -> impl Strategy<Value = Vec<Step>> {
    // Without a drive commands pile up in the send queues.
    let drive = if features.write_one {
        0.3
    } else if features.small_limits {
        0.6
    } else {
        0.85
    };
    prop::collection::vec(
        (op(features), prop::bool::weighted(drive)).prop_map(|(op, drive)| Step { op, drive }),
        1..120,
    )
}

/// The suite's fixed cases and seed; `GRID_PROPTEST_CASES` and
/// `GRID_PROPTEST_SEED` (added to each test's seed) override them for longer,
/// different runs by hand.
fn proptest_config(cases: u32, seed: u64) -> ProptestConfig {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let cases = env("GRID_PROPTEST_CASES").map_or(cases, |n| u32::try_from(n).unwrap_or(u32::MAX));
    let seed = seed.wrapping_add(env("GRID_PROPTEST_SEED").unwrap_or(0));
    ProptestConfig {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(seed),
        max_shrink_iters: 4096,
        ..ProptestConfig::default()
    }
}

// ----- payloads -----

/// `len` bytes starting with the little-endian `tag`, then a pseudo-random fill
/// derived from it, so that a misassembled or misdelivered payload shows.
fn pattern(tag: u64, len: usize) -> Bytes {
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&tag.to_le_bytes()[..len.min(8)]);
    let mut x = tag.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push((x >> 24) as u8);
    }
    Bytes::from(out)
}

/// A stream message: its first four bytes are the sequence number (bit 31 set
/// for the responder's direction), the next four the mux id.
fn stream_payload(mux: u32, from_opener: bool, seq: usize, len: usize) -> Bytes {
    let dir = if from_opener { 0 } else { 1 << 31 };
    let tag = (u64::from(mux) << 32) | dir | seq as u64;
    pattern(tag, len)
}

// ----- the model -----

fn idx(which: Which) -> usize {
    match which {
        Which::Client => 0,
        Which::Server => 1,
    }
}

fn other(which: Which) -> Which {
    match which {
        Which::Client => Which::Server,
        Which::Server => Which::Client,
    }
}

/// The side that allocated `mux`: bit 31 is the acceptor's namespace.
fn owner(mux: u32) -> Which {
    if mux & (1 << 31) == 0 {
        Which::Client
    } else {
        Which::Server
    }
}

fn side_ref(pair: &Pair, which: Which) -> &Side {
    match which {
        Which::Client => &pair.client,
        Which::Server => &pair.server,
    }
}

fn conn(pair: &mut Pair, which: Which) -> &mut Connection {
    &mut pair.side(which).conn
}

/// How the responder's application ended a call.
#[derive(Clone, Debug, PartialEq)]
enum Answer {
    Respond(Bytes),
    Fail(Error),
    Finish,
    Cancel,
}

/// One direction of a stream.
#[derive(Debug, Default)]
struct Dir {
    /// Window the receiver granted up front (0 until the responder accepts).
    window: u32,
    /// Lengths of the messages `send_message` accepted.
    sent: Vec<usize>,
    /// Messages sent when the sender ended its direction.
    fin_at: Option<usize>,
    delivered: usize,
    consumed: usize,
    /// Lengths of delivered messages not consumed yet, oldest first.
    unconsumed: VecDeque<usize>,
}

/// A call, as both applications see it.
#[derive(Debug)]
struct Call {
    opener: Which,
    stream: bool,
    request: Bytes,
    opened_at: Instant,
    /// Relative deadline as given to the opener (after defaulting and clamping).
    timeout: Duration,
    deadline: Instant,
    /// The opener has not seen its end and has not cancelled it.
    o_open: bool,
    o_cancelled: bool,
    o_finished: bool,
    /// The terminal result the opener saw (`Ok(None)` for a finished stream).
    o_result: Option<Result<Option<Bytes>, Error>>,
    r_seen: bool,
    /// The responder holds it: seen and not ended by its application or a close.
    r_held: bool,
    r_deadline: Option<Instant>,
    r_cancelled: Option<Error>,
    r_accepted: bool,
    r_input_finished: bool,
    /// How the responder's application ended it, and whether that was sent
    /// (it is not for a call cancelled before).
    r_answer: Option<(Answer, bool)>,
    o2r: Dir,
    r2o: Dir,
}

impl Call {
    fn live_at_responder(&self) -> bool {
        self.r_held && self.r_cancelled.is_none()
    }
}

#[derive(Debug, Default)]
struct SideModel {
    closed: Option<CloseReason>,
    drain_called: bool,
    drain_deadline: Option<Instant>,
    /// Closed by its drain before the drain deadline: every call had finished.
    drained_gracefully: bool,
    close_called: bool,
    peer_draining: bool,
    /// Calls that ended here with `Disconnected` (terminal event or `Cancelled`).
    disconnected: Vec<u32>,
    /// A command was refused with `SendBufferFull` since the last `Writable`.
    owed_writable: bool,
}

/// A whole test run: the pair, the model and the bookkeeping of the checks.
struct Harness {
    pair: Pair,
    calls: BTreeMap<u32, Call>,
    sides: [SideModel; 2],
    features: Features,
    /// Each side's limits and timeouts (client first).
    limits: [Limits; 2],
    timeouts: [Timeouts; 2],
    next_tag: u64,
    /// The call on which each side last queued a message.
    recent: [Option<u32>; 2],
    /// Index of the step being applied (the number of steps during the final
    /// wind-down), for messages.
    step: usize,
}

fn connect(client: Config, server: Config, seed: u64) -> Pair {
    let mut pair = Pair::with_configs(client, server, seed);
    pair.drive();
    pair.settle(Duration::from_secs(1));
    assert!(matches!(
        pair.client.events.pop_front(),
        Some(Event::Connected(_))
    ));
    assert!(matches!(
        pair.server.events.pop_front(),
        Some(Event::Connected(_))
    ));
    pair
}

impl Harness {
    fn new(seed: u64, features: Features) -> Harness {
        let mut client = sim_config(Role::Dialer, seed);
        let mut server = sim_config(Role::Acceptor, seed.wrapping_add(1));
        // The server accepts shorter deadlines than the client asks for: it clamps
        // them, and tells the client when a clamped deadline passes.
        server.timeouts.max_deadline = Duration::from_secs(5);
        if features.small_limits {
            for (config, calls, message) in [(&mut client, 6, 90_000), (&mut server, 4, 70_000)] {
                config.limits.max_buffered_bytes = 64 * 1024;
                config.limits.max_message_size = message;
                config.limits.max_incoming_calls = calls;
                config.limits.max_incoming_streams = calls / 2;
                config.limits.send_buffer_size = 48 * 1024;
            }
        }
        if features.few_calls {
            for config in [&mut client, &mut server] {
                config.limits.max_incoming_calls = 2;
                config.limits.max_incoming_streams = 2;
            }
        }
        Harness {
            limits: [client.limits.clone(), server.limits.clone()],
            timeouts: [client.timeouts.clone(), server.timeouts.clone()],
            pair: connect(client, server, seed),
            calls: BTreeMap::new(),
            sides: Default::default(),
            features,
            next_tag: 0,
            recent: [None; 2],
            step: 0,
        }
    }

    fn run(&mut self, steps: &[Step]) -> Result<(), TestCaseError> {
        for (n, step) in steps.iter().enumerate() {
            self.step = n;
            self.apply(&step.op)?;
            if step.drive {
                self.pair.drive();
            }
            self.pump()?;
            self.check()?;
        }
        self.step = steps.len();
        self.wind_down()
    }

    fn tag(&mut self) -> u64 {
        self.next_tag += 1;
        self.next_tag
    }

    fn calls_where(&self, keep: impl Fn(&Call) -> bool) -> Vec<u32> {
        self.calls
            .iter()
            .filter(|(_, call)| keep(call))
            .map(|(mux, _)| *mux)
            .collect()
    }

    // ----- operations -----

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match *op {
            Op::OpenRequest {
                side,
                size,
                timeout,
            } => self.open(side, None, size, timeout),
            Op::OpenStream {
                side,
                size,
                window,
                timeout,
            } => self.open(side, Some(window), size, timeout),
            Op::Accept { side, pick, window } => {
                // Streams not accepted yet; a second accept is tried at the end of
                // the case (`wind_down`).
                let held =
                    self.calls_where(|c| c.opener != side && c.r_held && c.stream && !c.r_accepted);
                match pick_one(&held, pick) {
                    Some(mux) => self.accept(side, mux, window),
                    None => Ok(()),
                }
            }
            Op::Send { side, pick, size } => {
                let streams = self.calls_where(|c| {
                    c.stream && if c.opener == side { c.o_open } else { c.r_held }
                });
                match pick_one(&streams, pick) {
                    Some(mux) => self.send(side, mux, size),
                    None => Ok(()),
                }
            }
            Op::Consume { side, pick } => {
                let streams = self.consumable(side);
                if let Some(mux) = pick_one(&streams, pick) {
                    self.consume(side, mux);
                }
                Ok(())
            }
            Op::Finish { side, pick } => {
                let calls = self.calls_where(|c| {
                    if c.opener == side {
                        c.o_open && c.stream
                    } else {
                        c.r_held
                    }
                });
                match pick_one(&calls, pick) {
                    Some(mux) => self.finish(side, mux),
                    None => Ok(()),
                }
            }
            Op::Respond { side, pick, size } => {
                let held = self.calls_where(|c| c.opener != side && c.r_held);
                match pick_one(&held, pick) {
                    Some(mux) => self.respond(side, mux, size),
                    None => Ok(()),
                }
            }
            Op::Fail { side, pick, remote } => {
                let held = self.calls_where(|c| c.opener != side && c.r_held);
                match pick_one(&held, pick) {
                    Some(mux) => self.fail(side, mux, remote),
                    None => Ok(()),
                }
            }
            Op::Cancel { side, pick } => {
                let calls =
                    self.calls_where(|c| if c.opener == side { c.o_open } else { c.r_held });
                match pick_one(&calls, pick) {
                    Some(mux) => self.cancel(side, mux),
                    None => Ok(()),
                }
            }
            Op::Advance(duration) => {
                self.pair.advance(duration);
                Ok(())
            }
            Op::Network { max_chunk, latency } => {
                self.pair.max_chunk = max_chunk;
                self.pair.latency = latency;
                Ok(())
            }
            Op::WriteSome { side, buffers } => self.write_some(side, buffers),
            Op::Race {
                side,
                pick,
                size,
                buffers,
                end,
            } => {
                let peer = other(side);
                let streams = self.calls_where(|c| {
                    c.stream
                        && c.o_open
                        && c.live_at_responder()
                        && !(c.opener == side && c.o_finished)
                });
                let Some(mux) = pick_one(&streams, pick) else {
                    return Ok(());
                };
                self.send(side, mux, size)?;
                self.write_some(side, buffers)?;
                let call = &self.calls[&mux];
                if call.opener == peer {
                    if call.o_open {
                        self.cancel(peer, mux)?;
                    }
                } else if call.r_held {
                    match end {
                        0 => self.finish(peer, mux)?,
                        1 => self.fail(peer, mux, true)?,
                        _ => self.cancel(peer, mux)?,
                    }
                }
                self.write_some(peer, 4)
            }
            Op::Abandon {
                side,
                streams,
                size,
                buffers,
                reopen,
                reopen_size,
                more_buffers,
            } => {
                let mut opened = Vec::new();
                for _ in 0..streams {
                    let before = self.recent[idx(side)];
                    self.open(side, Some(1), 0, None)?;
                    if self.recent[idx(side)] != before {
                        opened.extend(self.recent[idx(side)]);
                    }
                }
                self.pair.drive();
                self.pump()?;
                for &mux in &opened {
                    if self.calls[&mux].live_at_responder() && !self.calls[&mux].r_accepted {
                        self.accept(other(side), mux, 1)?;
                    }
                }
                self.pair.drive();
                self.pump()?;
                let streams = opened;
                for &mux in &streams {
                    if self.calls[&mux].o_open {
                        self.send(side, mux, size)?;
                    }
                }
                self.write_some(side, buffers)?;
                for mux in streams {
                    if self.calls[&mux].o_open {
                        self.cancel(side, mux)?;
                    }
                }
                for _ in 0..reopen {
                    self.open(side, None, reopen_size, None)?;
                }
                self.write_some(side, more_buffers)
            }
            Op::CancelRecent { side } => match self.recent[idx(side)] {
                Some(mux)
                    if self.calls.get(&mux).is_some_and(|c| {
                        if c.opener == side {
                            c.o_open
                        } else {
                            c.r_held
                        }
                    }) =>
                {
                    self.cancel(side, mux)
                }
                _ => Ok(()),
            },
            Op::ConsumeRecent { side } => {
                if let Some(mux) = self.recent[idx(side)] {
                    if self.consumable(side).contains(&mux) {
                        self.consume(side, mux);
                    }
                }
                Ok(())
            }
            Op::Drain { side, timeout } => {
                let now = self.pair.now;
                let model = &mut self.sides[idx(side)];
                if model.closed.is_none() && !model.drain_called {
                    model.drain_called = true;
                    model.drain_deadline = Some(now + timeout);
                }
                conn(&mut self.pair, side).begin_drain(now, timeout);
                Ok(())
            }
            Op::CloseMidWrite {
                side,
                size,
                buffers,
            } => {
                self.open(side, None, size, None)?;
                self.write_some(side, buffers)?;
                self.apply(&Op::Close { side })
            }
            Op::Close { side } => {
                let model = &mut self.sides[idx(side)];
                if model.closed.is_none() {
                    model.close_called = true;
                }
                conn(&mut self.pair, side).close(CLOSE_TEXT);
                Ok(())
            }
        }
    }

    /// Hands up to `buffers` transmit buffers of `side` straight to the peer,
    /// when nothing is on the pipe towards it (so the order of bytes holds).
    /// Takes the events they cause before any further command.
    fn write_some(&mut self, side: Which, buffers: usize) -> Result<(), TestCaseError> {
        let now = self.pair.now;
        if self.pair.in_flight_to(other(side)) != 0 {
            return Ok(());
        }
        for _ in 0..buffers {
            let Some(bytes) = conn(&mut self.pair, side).poll_transmit(now) else {
                break;
            };
            conn(&mut self.pair, other(side)).handle_input(now, &bytes);
        }
        self.pump()
    }

    fn open(
        &mut self,
        side: Which,
        window: Option<u32>,
        size: usize,
        timeout: Option<Duration>,
    ) -> Result<(), TestCaseError> {
        let now = self.pair.now;
        let tag = self.tag();
        let payload = pattern(tag, size);
        let target = CallTarget::with_subroute(HANDLER, SUBROUTE);
        // Every reason the open may be refused for, each with its condition.
        let model = &self.sides[idx(side)];
        let peer = &self.limits[idx(other(side))];
        let opened = self.calls_where(|c| c.opener == side && c.o_open);
        let opened_streams = opened.iter().filter(|m| self.calls[m].stream).count();
        let wire_size = 3 + SUBROUTE.len() + if window.is_some() { 4 } else { 0 } + size;
        let relative = timeout.unwrap_or(self.timeouts[idx(side)].default_deadline);
        let send_buffered = side_ref(&self.pair, side).conn.stats().send_buffered;
        let refusals = [
            (model.closed.is_some(), Error::Disconnected),
            (model.drain_called || model.peer_draining, Error::Draining),
            (
                wire_size > peer.max_message_size as usize,
                Error::TooLarge {
                    size: wire_size,
                    max: peer.max_message_size as usize,
                },
            ),
            (
                opened.len() >= peer.max_incoming_calls as usize
                    || (window.is_some() && opened_streams >= peer.max_incoming_streams as usize),
                Error::Overloaded,
            ),
            (
                send_buffered >= self.limits[idx(side)].send_buffer_size,
                Error::SendBufferFull,
            ),
            (relative < MIN_DEADLINE, Error::DeadlineExceeded),
        ];
        let connection = conn(&mut self.pair, side);
        let result = match window {
            None => connection.open_request(now, target, payload.clone(), timeout),
            Some(window) => connection.open_stream(now, target, payload.clone(), timeout, window),
        };
        match result {
            Ok(id) => {
                let applicable: Vec<&Error> = refusals
                    .iter()
                    .filter(|(applies, _)| *applies)
                    .map(|(_, error)| error)
                    .collect();
                prop_assert!(
                    applicable.is_empty(),
                    "step {}: {side:?} opened {id} although it should fail with {applicable:?}",
                    self.step
                );
                prop_assert_eq!(owner(id.raw()), side, "id {} in the wrong namespace", id);
                prop_assert!(
                    !self.calls.contains_key(&id.raw()),
                    "step {}: call id {id} reused",
                    self.step
                );
                let relative = relative.min(self.timeouts[idx(side)].max_deadline);
                self.recent[idx(side)] = Some(id.raw());
                self.calls.insert(
                    id.raw(),
                    Call {
                        opener: side,
                        stream: window.is_some(),
                        request: payload,
                        opened_at: now,
                        timeout: relative,
                        deadline: now + relative,
                        o_open: true,
                        o_cancelled: false,
                        o_finished: false,
                        o_result: None,
                        r_seen: false,
                        r_held: false,
                        r_deadline: None,
                        r_cancelled: None,
                        r_accepted: false,
                        r_input_finished: false,
                        r_answer: None,
                        o2r: Dir::default(),
                        r2o: Dir {
                            window: window.unwrap_or(0),
                            ..Dir::default()
                        },
                    },
                );
            }
            Err(error) => {
                prop_assert!(
                    refusals.contains(&(true, error.clone())),
                    "step {}: {side:?} open failed with {error:?}; refusals that apply: {:?}",
                    self.step,
                    refusals
                        .iter()
                        .filter(|(applies, _)| *applies)
                        .collect::<Vec<_>>()
                );
                if error == Error::SendBufferFull {
                    self.sides[idx(side)].owed_writable = true;
                }
            }
        }
        Ok(())
    }

    fn accept(&mut self, side: Which, mux: u32, window: u32) -> Result<(), TestCaseError> {
        let result = conn(&mut self.pair, side).accept_stream(CallId(mux), window);
        let step = self.step;
        let call = self.calls.get_mut(&mux).expect("picked from the model");
        let expected = if call.r_cancelled.is_some() {
            Err(Error::Cancelled)
        } else if call.r_accepted {
            Err(Error::UnknownCall)
        } else {
            Ok(())
        };
        prop_assert_eq!(
            &result,
            &expected,
            "step {}: accept_stream of {:#x}",
            step,
            mux
        );
        if result.is_ok() {
            call.r_accepted = true;
            call.o2r.window = window;
        }
        Ok(())
    }

    fn send(&mut self, side: Which, mux: u32, size: usize) -> Result<(), TestCaseError> {
        let step = self.step;
        let call = self.calls.get_mut(&mux).expect("picked from the model");
        let as_opener = call.opener == side;
        let dir = if as_opener {
            &mut call.o2r
        } else {
            &mut call.r2o
        };
        let seq = dir.sent.len();
        let payload = stream_payload(mux, as_opener, seq, size);
        let max = self.limits[idx(other(side))].max_message_size as usize;
        let too_large = size > max;
        let buffer_full = side_ref(&self.pair, side).conn.stats().send_buffered
            >= self.limits[idx(side)].send_buffer_size;
        let result = conn(&mut self.pair, side).send_message(CallId(mux), payload);
        let ended = if as_opener {
            call.o_finished
        } else {
            call.r_cancelled.is_some()
        };
        match result {
            Ok(()) => {
                prop_assert!(
                    !ended && !too_large && !buffer_full,
                    "step {step}: send_message on {mux:#x} succeeded (ended {ended}, \
                     too large {too_large}, send buffer full {buffer_full})"
                );
                prop_assert!(
                    seq < dir.window as usize + dir.consumed,
                    "step {step}: {side:?} sent message {seq} on {mux:#x} but the peer granted \
                     a window of {} and consumed {}",
                    dir.window,
                    dir.consumed
                );
                dir.sent.push(size);
                self.recent[idx(side)] = Some(mux);
            }
            Err(Error::NoCredit) => prop_assert!(!ended, "step {step}: NoCredit on ended stream"),
            Err(Error::UnknownCall) => prop_assert!(
                as_opener && call.o_finished,
                "step {step}: UnknownCall sending on {mux:#x}"
            ),
            Err(Error::Cancelled) => prop_assert!(
                !as_opener && call.r_cancelled.is_some(),
                "step {step}: Cancelled sending on {mux:#x}"
            ),
            Err(Error::TooLarge { size: s, max: m }) => prop_assert!(
                too_large && (s, m) == (size, max),
                "step {step}: TooLarge {{ {s}, {m} }} sending {size} bytes on {mux:#x}"
            ),
            Err(Error::SendBufferFull) => {
                prop_assert!(
                    buffer_full,
                    "step {step}: SendBufferFull sending on {mux:#x}"
                );
                self.sides[idx(side)].owed_writable = true;
            }
            Err(error) => prop_assert!(false, "step {step}: send_message failed with {error:?}"),
        }
        Ok(())
    }

    /// Streams with delivered, unconsumed messages whose call `side`'s
    /// application still works on.
    fn consumable(&self, side: Which) -> Vec<u32> {
        self.calls_where(|c| {
            if c.opener == side {
                c.o_open && !c.r2o.unconsumed.is_empty()
            } else {
                c.live_at_responder() && !c.o2r.unconsumed.is_empty()
            }
        })
    }

    fn consume(&mut self, side: Which, mux: u32) {
        let call = self.calls.get_mut(&mux).expect("picked from the model");
        let dir = if call.opener == side {
            &mut call.r2o
        } else {
            &mut call.o2r
        };
        let len = dir.unconsumed.pop_front().expect("picked as consumable");
        dir.consumed += 1;
        conn(&mut self.pair, side).consume(CallId(mux), len);
    }

    fn finish(&mut self, side: Which, mux: u32) -> Result<(), TestCaseError> {
        let result = conn(&mut self.pair, side).finish(CallId(mux));
        let step = self.step;
        let call = self.calls.get_mut(&mux).expect("picked from the model");
        if call.opener == side {
            let expected = if call.o_finished {
                Err(Error::UnknownCall)
            } else {
                Ok(())
            };
            prop_assert_eq!(
                &result,
                &expected,
                "step {}: opener finish of {:#x}",
                step,
                mux
            );
            if result.is_ok() {
                call.o_finished = true;
                call.o2r.fin_at = Some(call.o2r.sent.len());
            }
            return Ok(());
        }
        let expected = if call.stream || call.r_cancelled.is_some() {
            Ok(())
        } else {
            Err(Error::UnknownCall)
        };
        prop_assert_eq!(
            &result,
            &expected,
            "step {}: responder finish of {:#x}",
            step,
            mux
        );
        if result.is_ok() {
            self.end_held(mux, Answer::Finish);
        }
        Ok(())
    }

    fn respond(&mut self, side: Which, mux: u32, size: usize) -> Result<(), TestCaseError> {
        let tag = self.tag();
        let payload = pattern(tag, size);
        let result = conn(&mut self.pair, side).respond(CallId(mux), payload.clone());
        let call = &self.calls[&mux];
        let max = self.limits[idx(other(side))].max_message_size as usize;
        // A response too large for the peer leaves the call open.
        let expected = if call.stream && call.r_cancelled.is_none() {
            Err(Error::UnknownCall)
        } else if call.r_cancelled.is_none() && size > max {
            Err(Error::TooLarge { size, max })
        } else {
            Ok(())
        };
        prop_assert_eq!(
            &result,
            &expected,
            "step {}: respond to {:#x}",
            self.step,
            mux
        );
        if result.is_ok() {
            self.recent[idx(side)] = Some(mux);
            self.end_held(mux, Answer::Respond(payload));
        }
        Ok(())
    }

    fn fail(&mut self, side: Which, mux: u32, remote: bool) -> Result<(), TestCaseError> {
        let error = if remote {
            let tag = self.tag();
            Error::Remote(pattern(tag, (tag % 24) as usize))
        } else {
            Error::UnknownHandler
        };
        let result = conn(&mut self.pair, side).fail(CallId(mux), error.clone());
        prop_assert_eq!(result, Ok(()), "step {}: fail {:#x}", self.step, mux);
        self.end_held(mux, Answer::Fail(error));
        Ok(())
    }

    fn cancel(&mut self, side: Which, mux: u32) -> Result<(), TestCaseError> {
        let result = conn(&mut self.pair, side).cancel(CallId(mux));
        prop_assert_eq!(result, Ok(()), "step {}: cancel {:#x}", self.step, mux);
        let call = self.calls.get_mut(&mux).expect("picked from the model");
        if call.opener == side {
            call.o_open = false;
            call.o_cancelled = true;
        } else {
            self.end_held(mux, Answer::Cancel);
        }
        Ok(())
    }

    /// The responder's application ended a call it held.
    fn end_held(&mut self, mux: u32, answer: Answer) {
        let call = self.calls.get_mut(&mux).expect("held call");
        call.r_held = false;
        if matches!(answer, Answer::Finish | Answer::Fail(_)) {
            call.r2o.fin_at = Some(call.r2o.sent.len());
        }
        call.r_answer = Some((answer, call.r_cancelled.is_none()));
    }

    // ----- events -----

    /// Takes every event of both sides, oldest first, and checks it.
    fn pump(&mut self) -> Result<(), TestCaseError> {
        for side in BOTH {
            let mut events = self.pair.side(side).take_events();
            while let Some(event) = conn(&mut self.pair, side).poll_event() {
                events.push(event);
            }
            for event in events {
                self.on_event(side, event)?;
            }
        }
        self.check_graceful_drain()
    }

    /// A drain that completes before its deadline ends no call with
    /// `Disconnected`, on either side: calls in flight finish, calls racing the
    /// `GoAway` are refused with `Draining`, and the `Close` follows every answer.
    fn check_graceful_drain(&self) -> Result<(), TestCaseError> {
        for side in BOTH {
            let drained = &self.sides[idx(side)];
            if !drained.drained_gracefully {
                continue;
            }
            let peer = &self.sides[idx(other(side))];
            prop_assert!(
                drained.disconnected.is_empty(),
                "step {}: {side:?} drained gracefully but cut calls {:x?}",
                self.step,
                drained.disconnected
            );
            if matches!(&peer.closed, Some(CloseReason::Peer(text)) if text == "drained") {
                let cut = &peer.disconnected;
                prop_assert!(
                    cut.is_empty(),
                    "step {}: {side:?} drained gracefully but its peer saw calls {cut:x?} \
                     end with Disconnected",
                    self.step
                );
            }
        }
        Ok(())
    }

    fn on_event(&mut self, side: Which, event: Event) -> Result<(), TestCaseError> {
        let now = self.pair.now;
        let step = self.step;
        let is_closed = side_ref(&self.pair, side).conn.is_closed();
        let close_reason = side_ref(&self.pair, side).conn.close_reason().cloned();
        prop_assert!(
            self.sides[idx(side)].closed.is_none(),
            "step {step}: {side:?} emitted {} after its Closed event",
            brief(&event)
        );
        let id = match &event {
            Event::Request(call) | Event::StreamOpened(call) => Some(call.id),
            Event::Response { id, .. }
            | Event::Message { id, .. }
            | Event::InputFinished { id }
            | Event::StreamFinished { id, .. }
            | Event::Cancelled { id, .. }
            | Event::StreamWritable { id } => Some(*id),
            _ => None,
        };
        let Some(id) = id else {
            return self.on_connection_event(side, event);
        };
        let mux = id.raw();
        let draining_here = self.sides[idx(side)].drain_called;
        let draining_there = self.sides[idx(other(side))].drain_called;
        let end_context = EndContext {
            now,
            closed: is_closed,
            close_reason: close_reason.as_ref(),
            responder_draining: draining_there,
            responder_max_deadline: self.timeouts[idx(other(side))].max_deadline,
            responder_may_overload: self.features.small_limits || self.features.few_calls,
        };
        let Some(call) = self.calls.get_mut(&mux) else {
            return Err(TestCaseError::fail(format!(
                "step {step}: {side:?} event {} for an unknown call",
                brief(&event)
            )));
        };
        let as_opener = call.opener == side;
        let alive = if as_opener {
            call.o_open
        } else {
            call.r_held && call.r_cancelled.is_none()
        };
        match event {
            Event::Request(incoming) | Event::StreamOpened(incoming) => {
                prop_assert!(
                    !as_opener,
                    "step {step}: {side:?} got its own call {id} as incoming"
                );
                prop_assert!(!call.r_seen, "step {step}: {id} opened twice at {side:?}");
                prop_assert!(
                    !draining_here,
                    "step {step}: a draining {side:?} accepted {id}"
                );
                prop_assert_eq!(
                    &incoming.payload,
                    &call.request,
                    "request payload of {}",
                    id
                );
                prop_assert_eq!(incoming.handler, HANDLER);
                prop_assert_eq!(incoming.subroute.as_ref(), SUBROUTE);
                // The responder's deadline is the opener's relative deadline
                // rounded up to whole milliseconds, counted from the arrival.
                let millis =
                    u64::try_from(call.timeout.as_micros().div_ceil(1000)).unwrap_or(u64::MAX);
                let relative =
                    Duration::from_millis(millis.max(1)).min(self.timeouts[idx(side)].max_deadline);
                let arrival = incoming.deadline - relative;
                prop_assert!(
                    arrival >= call.opened_at && arrival <= now,
                    "step {step}: deadline of {id} implies an arrival outside [open, now]"
                );
                call.r_seen = true;
                call.r_held = true;
                call.r_deadline = Some(incoming.deadline);
            }
            Event::Message { payload, .. } => {
                prop_assert!(
                    call.stream && alive,
                    "step {step}: {side:?} message on {id} (alive={alive})"
                );
                let dir = if as_opener {
                    &mut call.r2o
                } else {
                    &mut call.o2r
                };
                let seq = dir.delivered;
                prop_assert!(
                    seq < dir.sent.len(),
                    "step {step}: {side:?} got message {seq} on {id}, only {} sent",
                    dir.sent.len()
                );
                let expected = stream_payload(mux, !as_opener, seq, dir.sent[seq]);
                if payload != expected {
                    let got_seq = payload
                        .get(..4)
                        .map(|b| u32::from_le_bytes(b.try_into().unwrap()));
                    prop_assert!(
                        false,
                        "step {step}: message {seq} on {id} arrived as {} bytes with sequence \
                         {got_seq:?}, sent as {} bytes",
                        payload.len(),
                        dir.sent[seq]
                    );
                }
                if let Some(fin_at) = dir.fin_at {
                    prop_assert!(
                        seq < fin_at,
                        "step {step}: message {seq} after fin at {fin_at}"
                    );
                }
                dir.delivered += 1;
                dir.unconsumed.push_back(payload.len());
                prop_assert!(
                    dir.unconsumed.len() <= dir.window as usize,
                    "step {step}: {side:?} holds {} unconsumed messages on {id}, window {}",
                    dir.unconsumed.len(),
                    dir.window
                );
                prop_assert!(dir.delivered <= dir.window as usize + dir.consumed);
            }
            Event::InputFinished { .. } => {
                prop_assert!(
                    !as_opener && call.stream && alive && !call.r_input_finished,
                    "step {step}: InputFinished on {id} (alive={alive})"
                );
                prop_assert_eq!(
                    Some(call.o2r.delivered),
                    call.o2r.fin_at,
                    "step {}: input of {} finished before every message arrived",
                    step,
                    id
                );
                call.r_input_finished = true;
            }
            Event::Cancelled { reason, .. } => {
                prop_assert!(
                    !as_opener && alive,
                    "step {step}: Cancelled({reason:?}) of {id} at {side:?} (alive={alive})"
                );
                let justified = match &reason {
                    // The opener cancelled it, or its deadline passed (it then tells
                    // the responder with a Cancel).
                    Error::Cancelled => call.o_cancelled || now >= call.deadline,
                    Error::DeadlineExceeded => call.r_deadline.is_some_and(|at| now >= at),
                    Error::Disconnected => is_closed,
                    _ => false,
                };
                prop_assert!(
                    justified,
                    "step {step}: unjustified Cancelled({reason:?}) of {id}"
                );
                if reason == Error::Disconnected {
                    self.sides[idx(side)].disconnected.push(mux);
                }
                call.r_cancelled = Some(reason);
            }
            Event::StreamWritable { .. } => {
                prop_assert!(
                    call.stream && alive,
                    "step {step}: StreamWritable on {id} (alive={alive})"
                );
            }
            Event::Response { result, .. } => {
                prop_assert!(
                    as_opener && !call.stream && alive,
                    "step {step}: Response of {id} (alive={alive})"
                );
                let result = result.map(Some);
                check_terminal(call, &result, &end_context).map_err(|e| fail_at(step, id, e))?;
                if result == Err(Error::Disconnected) {
                    self.sides[idx(side)].disconnected.push(mux);
                }
                call.o_open = false;
                call.o_result = Some(result);
            }
            Event::StreamFinished { result, .. } => {
                prop_assert!(
                    as_opener && call.stream && alive,
                    "step {step}: StreamFinished of {id} (alive={alive})"
                );
                let result = result.map(|()| None);
                check_terminal(call, &result, &end_context).map_err(|e| fail_at(step, id, e))?;
                if result == Err(Error::Disconnected) {
                    self.sides[idx(side)].disconnected.push(mux);
                }
                call.o_open = false;
                call.o_result = Some(result);
            }
            _ => unreachable!(),
        }
        Ok(())
    }

    fn on_connection_event(&mut self, side: Which, event: Event) -> Result<(), TestCaseError> {
        let step = self.step;
        match event {
            Event::Writable => {
                let model = &mut self.sides[idx(side)];
                prop_assert!(
                    model.owed_writable,
                    "step {step}: Writable at {side:?} without a SendBufferFull before"
                );
                model.owed_writable = false;
            }
            Event::PeerDraining => {
                let model = &self.sides[idx(side)];
                prop_assert!(
                    self.sides[idx(other(side))].drain_called && !model.peer_draining,
                    "step {step}: unexpected PeerDraining at {side:?}"
                );
                self.sides[idx(side)].peer_draining = true;
            }
            Event::Closed(reason) => {
                // Every call this side opened ended before.
                let open = self.calls_where(|c| c.opener == side && c.o_open);
                prop_assert!(
                    open.is_empty(),
                    "step {step}: {side:?} closed ({reason:?}) before calls {open:x?} ended"
                );
                // Every incoming call it held was cancelled before.
                for (mux, call) in &mut self.calls {
                    if call.opener != side && call.r_held {
                        prop_assert!(
                            call.r_cancelled.is_some(),
                            "step {step}: {side:?} closed without cancelling incoming {mux:#x}"
                        );
                        call.r_held = false;
                    }
                }
                let model = &self.sides[idx(side)];
                let peer = &self.sides[idx(other(side))];
                // Only unconsumed stream messages can exceed a limit: the peers are
                // honest, so every other limit (message size, partial messages,
                // control backlog, cheap frames) must hold.
                let buffered_limit = |text: &str| {
                    self.features.small_limits && text.contains("exceed max_buffered_bytes")
                };
                let justified = match &reason {
                    CloseReason::Local(text) => model.close_called && text == CLOSE_TEXT,
                    CloseReason::Drained => model.drain_called,
                    CloseReason::LimitExceeded(text) => {
                        LIMIT_CLOSES.fetch_add(1, Ordering::Relaxed);
                        buffered_limit(text)
                    }
                    CloseReason::Peer(text) => match text.strip_prefix("limit exceeded: ") {
                        Some(text) => buffered_limit(text),
                        None => {
                            // The peer's `close` reason, bare (or as the peer's
                            // own `Local` reason reads, in older versions).
                            (text == "drained" && peer.drain_called)
                                || ((text == CLOSE_TEXT
                                    || text == &format!("closed locally: {CLOSE_TEXT}"))
                                    && peer.close_called)
                        }
                    },
                    _ => false,
                };
                prop_assert!(justified, "step {step}: {side:?} closed: {reason:?}");
                let model = &mut self.sides[idx(side)];
                // Before the deadline the drain can only have completed.
                model.drained_gracefully = reason == CloseReason::Drained
                    && model
                        .drain_deadline
                        .is_some_and(|deadline| self.pair.now < deadline);
                model.closed = Some(reason);
            }
            other => prop_assert!(
                false,
                "step {step}: unexpected event {} at {side:?}",
                brief(&other)
            ),
        }
        Ok(())
    }

    // ----- checks after every step -----

    /// Nothing in flight: no byte on the pipes, nothing queued for sending.
    fn settled(&self) -> bool {
        BOTH.into_iter().all(|side| {
            self.pair.in_flight_to(side) == 0 && !side_ref(&self.pair, side).conn.wants_write()
        })
    }

    fn check(&mut self) -> Result<(), TestCaseError> {
        let step = self.step;
        let settled = self.settled();
        if settled {
            // A `Close` always arrives: the simulated transport never fails.
            let closed = BOTH.map(|side| self.sides[idx(side)].closed.is_some());
            prop_assert!(
                closed[0] == closed[1],
                "step {step}: only one side is closed after settling (client {}, server {}): \
             the Close did not arrive",
                closed[0],
                closed[1]
            );
        }
        for side in BOTH {
            let connection = &side_ref(&self.pair, side).conn;
            let stats = connection.stats();
            let outgoing = self.calls_where(|c| c.opener == side && c.o_open);
            let incoming = self.calls_where(|c| c.opener != side && c.r_held);
            let count_streams =
                |muxes: &[u32]| muxes.iter().filter(|m| self.calls[m].stream).count();
            // The limits on incoming calls hold, cancelled ones included.
            let limits = &self.limits[idx(side)];
            prop_assert!(
                incoming.len() <= limits.max_incoming_calls as usize
                    && count_streams(&incoming) <= limits.max_incoming_streams as usize,
                "step {step}: {side:?} holds {} incoming calls, {} of them streams",
                incoming.len(),
                count_streams(&incoming)
            );
            prop_assert_eq!(
                connection.in_flight(),
                (outgoing.len(), incoming.len()),
                "step {}: {:?} in_flight differs from the model (outgoing {:x?}, incoming {:x?})",
                step,
                side,
                outgoing,
                incoming
            );
            prop_assert_eq!(
                stats.outgoing_streams,
                count_streams(&outgoing),
                "step {}: {:?} outgoing streams",
                step,
                side
            );
            prop_assert_eq!(
                stats.incoming_streams,
                count_streams(&incoming),
                "step {}: {:?} incoming streams",
                step,
                side
            );
            prop_assert!(
                stats.buffered_bytes <= self.limits[idx(side)].max_buffered_bytes,
                "step {step}: {side:?} buffers {} bytes, over the limit {}",
                stats.buffered_bytes,
                self.limits[idx(side)].max_buffered_bytes
            );
            let model = &self.sides[idx(side)];
            let expected_state = if model.closed.is_some() {
                ConnectionState::Closed
            } else if model.drain_called {
                ConnectionState::Draining
            } else {
                ConnectionState::Established
            };
            prop_assert_eq!(
                connection.state(),
                expected_state,
                "step {}: {:?} state",
                step,
                side
            );
            if settled {
                let unconsumed: usize = outgoing
                    .iter()
                    .map(|m| self.calls[m].r2o.unconsumed.iter().sum::<usize>())
                    .chain(
                        incoming
                            .iter()
                            .map(|m| self.calls[m].o2r.unconsumed.iter().sum()),
                    )
                    .sum();
                // With nothing in flight no message is partly received, except
                // on a call cancelled here (by its opener or the deadline) in the
                // middle of a message: the partial message stays, like the call,
                // until the application ends the call.
                let cancelled = incoming
                    .iter()
                    .filter(|m| self.calls[m].r_cancelled.is_some())
                    .count();
                let partial = stats.buffered_bytes.checked_sub(unconsumed);
                prop_assert!(
                    partial.is_some_and(|partial| {
                        partial <= cancelled * self.limits[idx(side)].max_message_size as usize
                    }),
                    "step {step}: {side:?} buffers {} bytes, but holds {unconsumed} bytes of \
                     unconsumed messages and {cancelled} cancelled calls",
                    stats.buffered_bytes
                );
            }
        }
        if settled {
            self.check_agreement()?;
            self.check_credit_liveness()?;
        }
        Ok(())
    }

    /// Property 5, checked whenever nothing is in flight: no byte on the pipes
    /// and nothing queued for sending on either side.
    ///
    /// For each direction, let `open` be the calls the opener holds (opened, no
    /// terminal event, not cancelled by itself) and `live` the calls the
    /// responder holds (seen, not ended by its application) minus those it was
    /// told are cancelled (`Event::Cancelled`: a cancelled call stays held until
    /// the application ends it, but it is dead). Then
    ///
    /// * `live ⊆ open`: the responder never works on a call whose opener ended;
    /// * `open ⊆ live`: the opener never waits on a call the responder dropped.
    ///   The opener rounds its relative deadline up to whole milliseconds, so
    ///   the responder's deadline, counted from the arrival, never fires first;
    ///   a deadline the responder clamped is reported to the opener.
    ///
    /// A call refused by the responder, cancelled by either side, answered, or
    /// cut by a close is in neither set once the frames saying so have arrived.
    fn check_agreement(&self) -> Result<(), TestCaseError> {
        let now = self.pair.now;
        for (mux, call) in &self.calls {
            let live = call.live_at_responder();
            prop_assert!(
                !live || call.o_open,
                "step {}: {:?} still serves {mux:#x}, which its opener ended with {:?} \
                 (cancelled by opener: {})",
                self.step,
                other(call.opener),
                call.o_result,
                call.o_cancelled
            );
            prop_assert!(
                !call.o_open || live,
                "step {}: {:?} holds {mux:#x} open but the responder does not \
                 (seen {}, held {}, cancelled {:?}, answer {:?}, deadline in {:?})",
                self.step,
                call.opener,
                call.r_seen,
                call.r_held,
                call.r_cancelled,
                call.r_answer,
                call.deadline.saturating_duration_since(now)
            );
        }
        Ok(())
    }

    /// Property 2, liveness: with nothing in flight, a stream whose receiver
    /// consumed everything delivered and granted a window of at least one can
    /// carry another message.
    fn check_credit_liveness(&self) -> Result<(), TestCaseError> {
        for (mux, call) in &self.calls {
            if !(call.stream && call.o_open && call.live_at_responder()) {
                continue;
            }
            let id = CallId(*mux);
            let opener = &side_ref(&self.pair, call.opener).conn;
            let responder = &side_ref(&self.pair, other(call.opener)).conn;
            if call.r2o.window > 0 && call.r2o.unconsumed.is_empty() {
                prop_assert!(
                    responder.can_send(id),
                    "step {}: responder of {id} cannot send though the opener consumed all \
                     {} messages (window {})",
                    self.step,
                    call.r2o.delivered,
                    call.r2o.window
                );
            }
            if call.r_accepted
                && call.o2r.window > 0
                && call.o2r.unconsumed.is_empty()
                && !call.o_finished
            {
                prop_assert!(
                    opener.can_send(id),
                    "step {}: opener of {id} cannot send though the responder consumed all \
                     {} messages (window {})",
                    self.step,
                    call.o2r.delivered,
                    call.o2r.window
                );
            }
        }
        Ok(())
    }

    // ----- the end -----

    /// Both applications end everything they hold, consume everything
    /// delivered, the openers finish their streams; then property 3.
    fn wind_down(&mut self) -> Result<(), TestCaseError> {
        for round in 0..20 {
            // Let everything in flight land (and deadlines under 1 ms away fire).
            let latency = self.pair.latency;
            self.pair.advance(latency * 2 + Duration::from_millis(2));
            self.pump()?;
            self.check()?;
            if self.settled() && self.calls.values().all(|c| !c.o_open && !c.r_held) {
                break;
            }
            for side in BOTH {
                if round == 0 {
                    // Accepting twice, or a cancelled stream, fails.
                    for mux in self.calls_where(|c| c.opener != side && c.r_held && c.stream) {
                        self.accept(side, mux, 2)?;
                    }
                }
                while let Some(&mux) = self.consumable(side).first() {
                    self.consume(side, mux);
                }
                for mux in
                    self.calls_where(|c| c.opener == side && c.o_open && c.stream && !c.o_finished)
                {
                    self.finish(side, mux)?;
                }
                for mux in self.calls_where(|c| c.opener != side && c.r_held) {
                    let call = &self.calls[&mux];
                    if call.r_cancelled.is_some() {
                        self.fail(side, mux, true)?;
                    } else if call.stream {
                        self.finish(side, mux)?;
                    } else {
                        self.respond(side, mux, 16)?;
                    }
                }
            }
            self.pump()?;
            self.check()?;
        }
        let open = self.calls_where(|c| c.o_open || c.r_held);
        prop_assert!(
            open.is_empty(),
            "calls {open:x?} still open after the wind-down"
        );
        prop_assert!(self.settled(), "the pair does not settle");
        for (mux, call) in &self.calls {
            prop_assert!(
                call.o_cancelled != call.o_result.is_some(),
                "{mux:#x}: cancelled by its opener {}, result {:?}",
                call.o_cancelled,
                call.o_result
            );
        }
        for side in BOTH {
            let connection = &side_ref(&self.pair, side).conn;
            let stats = connection.stats();
            prop_assert_eq!(
                connection.in_flight(),
                (0, 0),
                "{:?} in flight at the end",
                side
            );
            prop_assert_eq!(
                (
                    stats.outgoing_calls,
                    stats.incoming_calls,
                    stats.outgoing_streams,
                    stats.incoming_streams
                ),
                (0, 0, 0, 0),
                "{:?} call gauges at the end",
                side
            );
            prop_assert_eq!(
                stats.buffered_bytes,
                0,
                "{:?} buffered bytes at the end",
                side
            );
            prop_assert_eq!(stats.send_buffered, 0, "{:?} send buffer at the end", side);
        }
        // A refused command is followed by `Writable` once the send buffer has
        // room (at the latest with the next keepalive ping that leaves).
        let keepalive = self.timeouts[0]
            .keepalive_interval
            .max(self.timeouts[1].keepalive_interval);
        self.pair.advance(keepalive + Duration::from_secs(1));
        self.pump()?;
        for side in BOTH {
            let model = &self.sides[idx(side)];
            prop_assert!(
                !model.owed_writable || model.closed.is_some(),
                "{side:?} refused a command with SendBufferFull and never said Writable"
            );
        }
        Ok(())
    }
}

/// An event for a message: its `Debug` form, cut short (payloads can be large).
fn brief(event: &Event) -> String {
    let text = format!("{event:?}");
    match text.char_indices().nth(160) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

/// The `pick`-th candidate, modulo their number (shrinks towards the first).
fn pick_one(muxes: &[u32], pick: usize) -> Option<u32> {
    (!muxes.is_empty()).then(|| muxes[pick % muxes.len()])
}

fn fail_at(step: usize, id: CallId, error: TestCaseError) -> TestCaseError {
    TestCaseError::fail(format!("step {step}: call {id}: {error}"))
}

/// What is known at the opener's side when one of its calls ends.
struct EndContext<'a> {
    now: Instant,
    closed: bool,
    close_reason: Option<&'a CloseReason>,
    responder_draining: bool,
    /// The responder's longest deadline: it clamps a longer one, and tells the
    /// opener when the clamped deadline passes.
    responder_max_deadline: Duration,
    /// The responder's call limits are small enough to be reached.
    responder_may_overload: bool,
}

/// Whether the terminal result an opener saw is justified by what happened.
fn check_terminal(
    call: &Call,
    result: &Result<Option<Bytes>, Error>,
    context: &EndContext<'_>,
) -> Result<(), TestCaseError> {
    let now = context.now;
    let answer = call
        .r_answer
        .as_ref()
        .filter(|(_, sent)| *sent)
        .map(|(a, _)| a);
    match (result, answer) {
        (Err(Error::DeadlineExceeded), _) => {
            let millis = u64::try_from(call.timeout.as_micros().div_ceil(1000)).unwrap_or(u64::MAX);
            let clamped = Duration::from_millis(millis.max(1)) > context.responder_max_deadline;
            prop_assert!(
                now >= call.deadline
                    || (clamped && now >= call.opened_at + context.responder_max_deadline),
                "DeadlineExceeded before the deadline"
            );
        }
        (Err(Error::Overloaded), _) => {
            prop_assert!(
                !call.r_seen && context.responder_may_overload,
                "Overloaded from a responder that cannot be"
            );
        }
        (Err(Error::Disconnected), answer) => {
            prop_assert!(context.closed, "Disconnected on an open connection");
            // The responder closed by a graceful drain: it sent every answer it
            // made before its Close.
            let drained_by_peer =
                matches!(context.close_reason, Some(CloseReason::Peer(text)) if text == "drained");
            prop_assert!(
                !(drained_by_peer && answer.is_some()),
                "the responder answered {answer:?}, then drained, but the opener saw Disconnected"
            );
        }
        (Err(Error::Draining), _) => {
            prop_assert!(
                !call.r_seen && context.responder_draining,
                "Draining from a responder that is not"
            );
        }
        (Err(Error::Cancelled), Some(Answer::Cancel)) => {}
        (result, Some(answer)) => {
            let expected = match answer {
                Answer::Respond(payload) => Ok(Some(payload.clone())),
                Answer::Fail(error) => Err(error.clone()),
                Answer::Finish => Ok(None),
                Answer::Cancel => Err(Error::Cancelled),
            };
            prop_assert_eq!(result, &expected, "terminal result differs from the answer");
            if call.stream {
                prop_assert_eq!(
                    call.r2o.delivered,
                    call.r2o.sent.len(),
                    "stream ended before every message arrived"
                );
            }
        }
        (result, None) => prop_assert!(false, "unjustified terminal result {result:?}"),
    }
    Ok(())
}

/// Connections closed for `LimitExceeded`, over all runs of the process.
static LIMIT_CLOSES: AtomicUsize = AtomicUsize::new(0);

fn run_case(seed: u64, features: Features, steps: &[Step]) -> Result<(), TestCaseError> {
    Harness::new(seed, features).run(steps)
}

// ----- the tests -----

const DRAINS: Features = Features {
    drain: true,
    ..BASIC
};

const INTERLEAVED: Features = Features {
    drain: true,
    write_one: true,
    race: true,
    ..BASIC
};

const FEW_CALLS: Features = Features {
    drain: true,
    write_one: true,
    abandon: true,
    few_calls: true,
    ..BASIC
};

const SMALL_LIMITS: Features = Features {
    small_limits: true,
    ..BASIC
};

proptest! {
    #![proptest_config(proptest_config(64, 0x6772_6964_0001))]

    /// Properties 1 to 6 over requests, streams, cancels, deadlines (clamped
    /// ones too), chunking, latency and rare closes.
    #[test]
    fn calls_end_once_credits_hold_and_sides_agree(seed in any::<u64>(), steps in steps(BASIC)) {
        run_case(seed, BASIC, &steps)?;
    }
}

proptest! {
    #![proptest_config(proptest_config(64, 0x6772_6964_0002))]

    /// The same properties with graceful drains in the mix, and: a drain that
    /// completes before its deadline cuts no call on either side, even when a
    /// cancel (or reset) of the last call completes it.
    #[test]
    fn properties_hold_through_drains(seed in any::<u64>(), steps in steps(DRAINS)) {
        run_case(seed, DRAINS, &steps)?;
    }
}

proptest! {
    #![proptest_config(proptest_config(64, 0x6772_6964_0003))]

    /// The same properties (drains included) when transmit buffers are written
    /// a few at a time with commands in between, as a driver with a slow socket
    /// does: control frames, ends of calls (`Race`) and closes (`CloseMidWrite`)
    /// meet messages cut between fragments; a close in the middle of a message
    /// still reaches the peer, and a message cut because its call ended leaves
    /// nothing behind.
    #[test]
    fn properties_hold_with_interleaved_writes(seed in any::<u64>(), steps in steps(INTERLEAVED)) {
        run_case(seed, INTERLEAVED, &steps)?;
    }
}

proptest! {
    #![proptest_config(proptest_config(64, 0x6772_6964_0006))]

    /// The interleaved-writes properties when each side accepts only two
    /// incoming calls, and openers abandon streams in the middle of messages and
    /// retry at once (`Abandon`): calls over the limit are refused with
    /// `Overloaded`, and the connection never closes for a limit.
    #[test]
    fn properties_hold_with_few_calls(seed in any::<u64>(), steps in steps(FEW_CALLS)) {
        run_case(seed, FEW_CALLS, &steps)?;
    }
}

/// Property 4 with `max_buffered_bytes` of 64 KiB and messages up to 100 KB
/// (and small message, call and send-buffer limits): buffered bytes never
/// exceed the limit; the receiver closes with `LimitExceeded` instead (and that
/// happens in some runs).
#[test]
fn buffered_bytes_stay_within_small_limits() {
    let before = LIMIT_CLOSES.load(Ordering::Relaxed);
    let mut runner = TestRunner::new(proptest_config(64, 0x6772_6964_0004));
    let result = runner.run(&(any::<u64>(), steps(SMALL_LIMITS)), |(seed, steps)| {
        run_case(seed, SMALL_LIMITS, &steps)
    });
    if let Err(error) = result {
        panic!("{error}");
    }
    assert!(
        LIMIT_CLOSES.load(Ordering::Relaxed) > before,
        "no run reached max_buffered_bytes"
    );
}
