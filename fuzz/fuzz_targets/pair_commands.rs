//! Arbitrary application commands on both sides of a `Pair`, against a model.
//!
//! Each command (open, accept, send, consume, finish, respond, fail, cancel,
//! drain, close, time, chunking, latency, stalls) is applied to one side, the
//! pair is driven, and every event is checked against a small model of the
//! calls each side has open. Violations panic, so the fuzzer reports them:
//!
//! - a call this side opened gets exactly one terminal event (`Response` for a
//!   request, `StreamFinished` for a stream), unless the application cancelled
//!   it, and no event at all after that; by the end (time advanced past every
//!   deadline) every call has ended;
//! - events about calls the peer opened come only while the call is open, in a
//!   sane order (`Message` and `InputFinished` only on streams and not after
//!   `InputFinished` or `Cancelled`, one `Cancelled` at most);
//! - a command's `Ok` agrees with the model (e.g. `fail` succeeds exactly for
//!   calls the peer opened and the application has not ended);
//! - `conn.in_flight()` equals the model's open calls, both directions;
//! - `stats().buffered_bytes` never exceeds `limits.max_buffered_bytes`, is at
//!   least the bytes of delivered, unconsumed messages, and equals them when no
//!   byte is on its way (no partial message is left behind);
//! - `Closed` comes last, after every call ended, and `is_closed()` agrees;
//! - a side that began draining is closed once its drain timeout has passed;
//! - two honest sides never accuse each other of a protocol violation: no
//!   `Protocol` close reason or call error, no rejected handshake.
#![no_main]

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use arbitrary::Arbitrary;
use bytes::Bytes;
use grid_proto::sim::{sim_config, Pair, Which};
use grid_proto::{CallId, CallTarget, CloseReason, Config, ConnectionState, Error, Event, Role};
use libfuzzer_sys::fuzz_target;

const ACCEPTOR: u32 = 1 << 31;
/// Longest deadline either side accepts; the final advance goes past it.
const MAX_DEADLINE: Duration = Duration::from_secs(120);
/// Largest payload a command sends.
const MAX_PAYLOAD: usize = 20_000;

#[derive(Arbitrary, Debug, Clone, Copy)]
enum S {
    Client,
    Server,
}

impl S {
    fn which(self) -> Which {
        match self {
            S::Client => Which::Client,
            S::Server => Which::Server,
        }
    }
    fn index(self) -> usize {
        match self {
            S::Client => 0,
            S::Server => 1,
        }
    }
}

#[derive(Arbitrary, Debug)]
struct SmallLimits {
    fragment: u8,
    max_frame: u8,
    max_message: u16,
    calls: u8,
    streams: u8,
    buffered: u16,
    send_buffer: u16,
}

#[derive(Arbitrary, Debug)]
enum Setup {
    Default,
    /// The same small limits on both sides.
    Small(SmallLimits),
}

#[derive(Arbitrary, Debug)]
enum Command {
    OpenRequest {
        side: S,
        len: u16,
        timeout_ms: Option<u16>,
    },
    /// A `window` of 255 stands for `u32::MAX`.
    OpenStream {
        side: S,
        len: u16,
        timeout_ms: Option<u16>,
        window: u8,
    },
    AcceptStream {
        side: S,
        call: u8,
        window: u8,
    },
    SendMessage {
        side: S,
        call: u8,
        len: u16,
    },
    /// Consumes the oldest unconsumed message of the call, with its length.
    Consume {
        side: S,
        call: u8,
    },
    Finish {
        side: S,
        call: u8,
    },
    Respond {
        side: S,
        call: u8,
        len: u16,
    },
    Fail {
        side: S,
        call: u8,
        len: u8,
    },
    Cancel {
        side: S,
        call: u8,
    },
    BeginDrain {
        side: S,
        ms: u16,
    },
    Close {
        side: S,
    },
    AdvanceMs(u16),
    AdvanceSecs(u8),
    /// 0: whole buffers.
    SetChunk(u8),
    SetLatencyMs(u8),
    Stall(S),
    Unstall(S),
}

#[derive(Arbitrary, Debug)]
struct Input {
    seed: u8,
    setup: Setup,
    commands: Vec<Command>,
}

/// A call this side opened, not yet ended.
#[derive(Debug)]
struct Out {
    stream: bool,
    fin_sent: bool,
    unconsumed: VecDeque<usize>,
}

/// A call the peer opened that the application has not ended.
#[derive(Debug)]
struct In {
    stream: bool,
    accepted: bool,
    cancelled: bool,
    input_finished: bool,
    unconsumed: VecDeque<usize>,
}

#[derive(Debug, Default)]
struct Model {
    name: &'static str,
    namespace: u32,
    out: BTreeMap<CallId, Out>,
    inc: BTreeMap<CallId, In>,
    closed: bool,
    /// When this side's drain must have closed it.
    drain_deadline: Option<std::time::Instant>,
    /// Every call id seen on this side, for commands to pick from (ended ones too).
    known: Vec<CallId>,
}

fn protocol_free(error: &Error, what: &str) {
    assert!(
        !matches!(error, Error::Protocol(_)),
        "{what}: a protocol error between two honest sides: {error:?}"
    );
}

impl Model {
    fn owns(&self, id: CallId) -> bool {
        id.raw() & ACCEPTOR == self.namespace
    }

    /// A call for a command: `index` below 128 picks among the open calls,
    /// from 128 among every call seen lately, ended ones included.
    fn pick(&self, index: u8) -> Option<CallId> {
        let open: Vec<CallId> = self.out.keys().chain(self.inc.keys()).copied().collect();
        let pool = if index < 128 && !open.is_empty() {
            &open
        } else {
            &self.known
        };
        (!pool.is_empty()).then(|| pool[usize::from(index) % pool.len()])
    }

    fn remember(&mut self, id: CallId) {
        self.known.push(id);
        if self.known.len() > 64 {
            self.known.remove(0);
        }
    }

    /// Bytes of delivered, unconsumed stream messages of open calls.
    fn unconsumed_bytes(&self) -> usize {
        let out = self.out.values().flat_map(|c| c.unconsumed.iter());
        let inc = self.inc.values().flat_map(|c| c.unconsumed.iter());
        out.chain(inc).sum()
    }

    fn event(&mut self, event: Event) {
        let name = self.name;
        assert!(!self.closed, "{name}: {event:?} after Closed");
        let opens_stream = matches!(event, Event::StreamOpened(_));
        match event {
            Event::Connected(_) => panic!("{name}: a second Connected"),
            Event::Request(call) | Event::StreamOpened(call) => {
                let stream = opens_stream;
                let id = call.id;
                assert!(
                    !self.owns(id),
                    "{name}: peer call {id} in this side's namespace"
                );
                assert!(
                    !self.inc.contains_key(&id),
                    "{name}: call {id} opened twice"
                );
                self.remember(id);
                self.inc.insert(
                    id,
                    In {
                        stream,
                        accepted: false,
                        cancelled: false,
                        input_finished: false,
                        unconsumed: VecDeque::new(),
                    },
                );
            }
            Event::Response { id, result } => {
                let call = self.out.remove(&id);
                assert!(
                    matches!(call, Some(Out { stream: false, .. })),
                    "{name}: Response for {id}, which is {call:?}"
                );
                if let Err(error) = &result {
                    protocol_free(error, name);
                }
            }
            Event::StreamFinished { id, result } => {
                let call = self.out.remove(&id);
                assert!(
                    matches!(call, Some(Out { stream: true, .. })),
                    "{name}: StreamFinished for {id}, which is {call:?}"
                );
                if let Err(error) = &result {
                    protocol_free(error, name);
                }
            }
            Event::Message { id, payload } => {
                if self.owns(id) {
                    let call = self.out.get_mut(&id);
                    let Some(call @ Out { stream: true, .. }) = call else {
                        panic!("{name}: Message for {id}, which is {call:?}");
                    };
                    call.unconsumed.push_back(payload.len());
                } else {
                    let call = self.inc.get_mut(&id);
                    let Some(
                        call @ In {
                            stream: true,
                            cancelled: false,
                            input_finished: false,
                            ..
                        },
                    ) = call
                    else {
                        panic!("{name}: Message for {id}, which is {call:?}");
                    };
                    call.unconsumed.push_back(payload.len());
                }
            }
            Event::InputFinished { id } => {
                let call = self.inc.get_mut(&id);
                let Some(
                    call @ In {
                        stream: true,
                        cancelled: false,
                        input_finished: false,
                        ..
                    },
                ) = call
                else {
                    panic!("{name}: InputFinished for {id}, which is {call:?}");
                };
                call.input_finished = true;
            }
            Event::Cancelled { id, reason } => {
                protocol_free(&reason, name);
                let call = self.inc.get_mut(&id);
                let Some(
                    call @ In {
                        cancelled: false, ..
                    },
                ) = call
                else {
                    panic!("{name}: Cancelled for {id}, which is {call:?}");
                };
                call.cancelled = true;
            }
            Event::StreamWritable { id } => {
                let ok = if self.owns(id) {
                    matches!(self.out.get(&id), Some(Out { stream: true, .. }))
                } else {
                    matches!(
                        self.inc.get(&id),
                        Some(In {
                            stream: true,
                            cancelled: false,
                            ..
                        })
                    )
                };
                assert!(
                    ok,
                    "{name}: StreamWritable for {id}, which is not an open stream"
                );
            }
            Event::Writable | Event::PeerDraining => {}
            Event::Closed(reason) => {
                assert!(
                    !matches!(reason, CloseReason::Protocol(_) | CloseReason::Rejected(_)),
                    "{name}: closed between two honest sides with {reason:?}"
                );
                assert!(
                    self.out.is_empty(),
                    "{name}: Closed before {:?} ended",
                    self.out
                );
                let live: Vec<_> = self.inc.iter().filter(|(_, c)| !c.cancelled).collect();
                assert!(
                    live.is_empty(),
                    "{name}: Closed before {live:?} were cancelled"
                );
                self.inc.clear();
                self.closed = true;
            }
        }
    }
}

fn config(role: Role, seed: u64, setup: &Setup) -> Config {
    let mut config = sim_config(role, seed);
    config.timeouts.max_deadline = MAX_DEADLINE;
    if let Setup::Small(l) = setup {
        config.fragment_size = 16 + u32::from(l.fragment) * 8;
        let limits = &mut config.limits;
        limits.max_frame_size = 256 + u32::from(l.max_frame) * 64;
        limits.max_message_size = 64 + u32::from(l.max_message);
        limits.max_incoming_calls = 1 + u32::from(l.calls % 8);
        limits.max_incoming_streams = u32::from(l.streams % 5);
        limits.max_buffered_bytes = 256 + usize::from(l.buffered) * 4;
        limits.send_buffer_size = 256 + usize::from(l.send_buffer) * 4;
    }
    config
}

struct Harness {
    pair: Pair,
    models: [Model; 2],
}

fn payload(len: u16, byte: u8) -> Bytes {
    Bytes::from(vec![byte; usize::from(len) % (MAX_PAYLOAD + 1)])
}

fn timeout(ms: Option<u16>) -> Option<Duration> {
    ms.map(|ms| Duration::from_millis(u64::from(ms)))
}

impl Harness {
    fn new(seed: u64, setup: &Setup) -> Harness {
        let client = config(Role::Dialer, seed, setup);
        let server = config(Role::Acceptor, seed.wrapping_add(1), setup);
        let mut pair = Pair::with_configs(client, server, seed);
        pair.drive();
        pair.settle(Duration::from_secs(1));
        for which in [Which::Client, Which::Server] {
            let events = pair.side(which).take_events();
            assert!(
                matches!(&events[..], [Event::Connected(_)]),
                "handshake: {events:?}"
            );
        }
        Harness {
            pair,
            models: [
                Model {
                    name: "client",
                    namespace: 0,
                    ..Model::default()
                },
                Model {
                    name: "server",
                    namespace: ACCEPTOR,
                    ..Model::default()
                },
            ],
        }
    }

    fn check(&mut self) {
        let quiet = [Which::Client, Which::Server].into_iter().all(|which| {
            self.pair.in_flight_to(which) == 0 && !self.pair.side(which).conn.wants_write()
        });
        let now = self.pair.now;
        for s in [S::Client, S::Server] {
            let events = self.pair.side(s.which()).take_events();
            let model = &mut self.models[s.index()];
            for event in events {
                model.event(event);
            }
            let conn = &self.pair.side(s.which()).conn;
            let model = &self.models[s.index()];
            let name = model.name;
            assert_eq!(
                conn.in_flight(),
                (model.out.len(), model.inc.len()),
                "{name}: in_flight disagrees with the model {model:?}"
            );
            assert_eq!(
                conn.is_closed(),
                model.closed,
                "{name}: is_closed without Closed"
            );
            if let Some(deadline) = model.drain_deadline {
                assert!(
                    now <= deadline || model.closed,
                    "{name}: still open after its drain deadline"
                );
            }
            let buffered = conn.stats().buffered_bytes;
            let max = conn.config().limits.max_buffered_bytes;
            assert!(
                buffered <= max,
                "{name}: {buffered} bytes buffered, over {max}"
            );
            // Buffered bytes are unconsumed messages plus partly received ones,
            // and when nothing is on the way nothing can be partly received.
            let unconsumed = model.unconsumed_bytes();
            assert!(
                buffered >= unconsumed,
                "{name}: {buffered} bytes buffered, but {unconsumed} delivered and unconsumed"
            );
            if quiet {
                assert_eq!(
                    buffered, unconsumed,
                    "{name}: with nothing in flight, buffered bytes are not just the unconsumed messages"
                );
            }
        }
    }

    fn command(&mut self, command: &Command) {
        let now = self.pair.now;
        match *command {
            Command::OpenRequest {
                side,
                len,
                timeout_ms,
            } => {
                let result = self.pair.side(side.which()).conn.open_request(
                    now,
                    CallTarget::new(1),
                    payload(len, 0x51),
                    timeout(timeout_ms),
                );
                self.opened(side, result, false);
            }
            Command::OpenStream {
                side,
                len,
                timeout_ms,
                window,
            } => {
                let window = if window == u8::MAX {
                    u32::MAX
                } else {
                    u32::from(window)
                };
                let result = self.pair.side(side.which()).conn.open_stream(
                    now,
                    CallTarget::with_subroute(2, b"sub"),
                    payload(len, 0x53),
                    timeout(timeout_ms),
                    window,
                );
                self.opened(side, result, true);
            }
            Command::AcceptStream { side, call, window } => {
                let Some(id) = self.models[side.index()].pick(call) else {
                    return;
                };
                let window = if window == u8::MAX {
                    u32::MAX
                } else {
                    u32::from(window)
                };
                let ok = self
                    .pair
                    .side(side.which())
                    .conn
                    .accept_stream(id, window)
                    .is_ok();
                let model = &mut self.models[side.index()];
                if ok {
                    let call = model.inc.get_mut(&id);
                    let Some(
                        call @ In {
                            stream: true,
                            accepted: false,
                            cancelled: false,
                            ..
                        },
                    ) = call
                    else {
                        panic!("{}: accept_stream({id}) succeeded on {call:?}", model.name);
                    };
                    call.accepted = true;
                }
            }
            Command::SendMessage { side, call, len } => {
                let Some(id) = self.models[side.index()].pick(call) else {
                    return;
                };
                let result = self
                    .pair
                    .side(side.which())
                    .conn
                    .send_message(id, payload(len, 0x4d));
                let model = &self.models[side.index()];
                if result.is_ok() {
                    let ok = matches!(
                        model.out.get(&id),
                        Some(Out {
                            stream: true,
                            fin_sent: false,
                            ..
                        })
                    ) || matches!(
                        model.inc.get(&id),
                        Some(In {
                            stream: true,
                            cancelled: false,
                            ..
                        })
                    );
                    assert!(ok, "{}: send_message({id}) succeeded", model.name);
                }
            }
            Command::Consume { side, call } => {
                let model = &mut self.models[side.index()];
                let Some(id) = model.pick(call) else {
                    return;
                };
                let queue = match (model.out.get_mut(&id), model.inc.get_mut(&id)) {
                    (Some(out), _) => &mut out.unconsumed,
                    // `consume` is a no-op on a cancelled call: its bytes stay
                    // counted until the application ends it.
                    (None, Some(inc)) if !inc.cancelled => &mut inc.unconsumed,
                    _ => return,
                };
                if let Some(len) = queue.pop_front() {
                    self.pair.side(side.which()).conn.consume(id, len);
                }
            }
            Command::Finish { side, call } => {
                let Some(id) = self.models[side.index()].pick(call) else {
                    return;
                };
                let ok = self.pair.side(side.which()).conn.finish(id).is_ok();
                let model = &mut self.models[side.index()];
                let name = model.name;
                if model.owns(id) {
                    let call = model.out.get_mut(&id);
                    match call {
                        Some(
                            call @ Out {
                                stream: true,
                                fin_sent: false,
                                ..
                            },
                        ) => {
                            assert!(ok, "{name}: finish({id}) failed on an open stream");
                            call.fin_sent = true;
                        }
                        other => assert!(!ok, "{name}: finish({id}) succeeded on {other:?}"),
                    }
                } else {
                    let expected = matches!(
                        model.inc.get(&id),
                        Some(
                            In { stream: true, .. }
                                | In {
                                    cancelled: true,
                                    ..
                                }
                        )
                    );
                    assert_eq!(
                        ok,
                        expected,
                        "{name}: finish({id}) on {:?}",
                        model.inc.get(&id)
                    );
                    if ok {
                        model.inc.remove(&id);
                    }
                }
            }
            Command::Respond { side, call, len } => {
                let Some(id) = self.models[side.index()].pick(call) else {
                    return;
                };
                let ok = self
                    .pair
                    .side(side.which())
                    .conn
                    .respond(id, payload(len, 0x52))
                    .is_ok();
                let model = &mut self.models[side.index()];
                if ok {
                    let call = model.inc.remove(&id);
                    assert!(
                        matches!(
                            call,
                            Some(
                                In { stream: false, .. }
                                    | In {
                                        cancelled: true,
                                        ..
                                    }
                            )
                        ),
                        "{}: respond({id}) succeeded on {call:?}",
                        model.name
                    );
                }
            }
            Command::Fail { side, call, len } => {
                let Some(id) = self.models[side.index()].pick(call) else {
                    return;
                };
                let error = Error::Remote(Bytes::from(vec![0x45; usize::from(len)]));
                let ok = self.pair.side(side.which()).conn.fail(id, error).is_ok();
                let model = &mut self.models[side.index()];
                let call = model.inc.remove(&id);
                assert_eq!(ok, call.is_some(), "{}: fail({id}) on {call:?}", model.name);
            }
            Command::Cancel { side, call } => {
                let Some(id) = self.models[side.index()].pick(call) else {
                    return;
                };
                let ok = self.pair.side(side.which()).conn.cancel(id).is_ok();
                let model = &mut self.models[side.index()];
                let existed = model.out.remove(&id).is_some() || model.inc.remove(&id).is_some();
                assert_eq!(ok, existed, "{}: cancel({id})", model.name);
            }
            Command::BeginDrain { side, ms } => {
                let timeout = Duration::from_millis(u64::from(ms));
                let conn = &mut self.pair.side(side.which()).conn;
                if conn.state() == ConnectionState::Established {
                    self.models[side.index()].drain_deadline = Some(now + timeout);
                }
                conn.begin_drain(now, timeout);
            }
            Command::Close { side } => self.pair.side(side.which()).conn.close("fuzz"),
            Command::AdvanceMs(ms) => self.pair.advance(Duration::from_millis(u64::from(ms))),
            Command::AdvanceSecs(s) => self.pair.advance(Duration::from_secs(u64::from(s))),
            Command::SetChunk(n) => {
                self.pair.max_chunk = if n == 0 { usize::MAX } else { usize::from(n) };
            }
            Command::SetLatencyMs(ms) => self.pair.latency = Duration::from_millis(u64::from(ms)),
            Command::Stall(side) => self.pair.side(side.which()).stalled = true,
            Command::Unstall(side) => self.pair.side(side.which()).stalled = false,
        }
    }

    fn opened(&mut self, side: S, result: Result<CallId, Error>, stream: bool) {
        let model = &mut self.models[side.index()];
        match result {
            Ok(id) => {
                assert!(
                    model.owns(id),
                    "{}: opened {id} outside its namespace",
                    model.name
                );
                assert!(
                    !model.out.contains_key(&id),
                    "{}: reused open id {id}",
                    model.name
                );
                model.remember(id);
                model.out.insert(
                    id,
                    Out {
                        stream,
                        fin_sent: false,
                        unconsumed: VecDeque::new(),
                    },
                );
            }
            Err(error) => protocol_free(&error, model.name),
        }
    }
}

fuzz_target!(|input: Input| {
    let mut harness = Harness::new(u64::from(input.seed), &input.setup);
    for command in input.commands.iter().take(256) {
        harness.command(command);
        harness.pair.drive();
        harness.check();
    }
    // Past every deadline, every call this side opened has ended.
    harness.pair.client.stalled = false;
    harness.pair.server.stalled = false;
    harness.pair.advance(MAX_DEADLINE + Duration::from_secs(10));
    harness.check();
    for model in &harness.models {
        assert!(
            model.out.is_empty(),
            "{}: calls never ended: {:?}",
            model.name,
            model.out
        );
    }
});
