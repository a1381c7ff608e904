//! Arbitrary application commands on both sides of a `Pair`, against the
//! shared property model (`grid_proto::sim::model`).
//!
//! Each command (open, accept, send, read, stop reading, finish, respond, fail, cancel,
//! drain, close, time, chunking, latency, stalls) is applied to one side
//! through the model, the pair is driven, every event is checked against the
//! model as it is taken and the model's checks run after every command.
//! Violations panic, so the fuzzer reports them. Among what the model checks:
//!
//! - a call a side opened gets exactly one terminal event (`RequestEnded` for
//!   a request, `StreamEnded` for a stream, after which its messages and
//!   outcome are read), unless the application cancelled it, and no event at
//!   all after that; its result is justified;
//! - events about calls the peer opened come only while the call is open, in a
//!   sane order (`StreamReadable` only on streams, one `IncomingCancelled` at
//!   most); what is read is the payloads sent, in order and within the credit
//!   granted, and the end of input comes after the last of them;
//! - a command succeeds exactly when the model says it may, and a command on a
//!   call it does not apply to (ended, the wrong role or kind) fails;
//! - `conn.in_flight()` and the stream gauges equal the model's open calls;
//! - `stats().buffered_bytes` never exceeds `limits.max_buffered_bytes`, and
//!   when no byte is on its way it is the bytes of the messages not yet read
//!   (and partial messages of cancelled calls);
//! - `Closed` comes last, after every call ended, for a justified reason, and
//!   `state()` agrees;
//! - a side that began draining is closed once its drain timeout has passed;
//! - two honest sides never accuse each other of a protocol violation.
//!
//! And, here: by the end (time advanced past every deadline) every call has
//! ended.
#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use grid_proto::sim::model::{Allowances, LimitCloses, Model, Violation};
use grid_proto::sim::{sim_config, Pair, Which};
use grid_proto::{Config, Role};
use libfuzzer_sys::fuzz_target;

/// Longest deadline either side accepts; the final advance goes past it.
const MAX_DEADLINE: Duration = Duration::from_secs(120);
/// Largest payload a command sends.
const MAX_PAYLOAD: usize = 20_000;
/// How many of the latest calls a side knows a command may pick from.
const KNOWN: usize = 64;

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
    /// `window` as [`window`] reads it: 64 bytes a step, 255 for `u32::MAX`.
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
    /// Reads up to `max` messages of the call.
    Read {
        side: S,
        call: u8,
        max: u8,
    },
    /// Stops reading the call.
    StopReading {
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
    /// An even `len` fails with a remote error, an odd one with
    /// `UnknownHandler`.
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

fn size(len: u16) -> usize {
    usize::from(len) % (MAX_PAYLOAD + 1)
}

fn timeout(ms: Option<u16>) -> Option<Duration> {
    ms.map(|ms| Duration::from_millis(u64::from(ms)))
}

/// A window in bytes: 255 stands for `u32::MAX`, others for that many times
/// 64 bytes (each step about one small message; 0 is no credit at all).
fn window(window: u8) -> u32 {
    if window == u8::MAX {
        u32::MAX
    } else {
        u32::from(window) * 64
    }
}

struct Harness {
    pair: Pair,
    model: Model,
}

impl Harness {
    fn new(seed: u64, setup: &Setup) -> Harness {
        let client = config(Role::Dialer, seed, setup);
        let server = config(Role::Acceptor, seed.wrapping_add(1), setup);
        let small = matches!(setup, Setup::Small(_));
        let allow = Allowances {
            overload: small,
            // Arbitrary limits may be reached in any way; the model still
            // refuses protocol errors between the two honest sides.
            limit_closes: LimitCloses::Any,
            peer_timeouts: true,
        };
        Harness {
            model: Model::new(&client, &server, allow),
            pair: Pair::connected_with(client, server, seed),
        }
    }

    /// A call for a command: `index` below 128 picks among the calls `side`
    /// has open, from 128 among the latest it knows, ended ones included.
    fn pick(&self, side: Which, index: u8) -> Option<u32> {
        let mut open = self.model.outgoing(side);
        open.extend(self.model.incoming(side));
        let pool = if index < 128 && !open.is_empty() {
            open
        } else {
            let known = self.model.calls_where(|c| c.opener == side || c.r_seen);
            let latest = known.len().saturating_sub(KNOWN);
            known[latest..].to_vec()
        };
        (!pool.is_empty()).then(|| pool[usize::from(index) % pool.len()])
    }

    fn command(&mut self, command: &Command) -> Result<(), Violation> {
        let (pair, model) = (&mut self.pair, &mut self.model);
        match *command {
            Command::OpenRequest {
                side,
                len,
                timeout_ms,
            } => model.open(pair, side.which(), None, size(len), timeout(timeout_ms))?,
            Command::OpenStream {
                side,
                len,
                timeout_ms,
                window: w,
            } => model.open(
                pair,
                side.which(),
                Some(window(w)),
                size(len),
                timeout(timeout_ms),
            )?,
            Command::AcceptStream {
                side,
                call,
                window: w,
            } => {
                if let Some(mux) = self.pick(side.which(), call) {
                    self.model
                        .accept(&mut self.pair, side.which(), mux, window(w))?;
                }
            }
            Command::SendMessage { side, call, len } => {
                if let Some(mux) = self.pick(side.which(), call) {
                    self.model
                        .send(&mut self.pair, side.which(), mux, size(len))?;
                }
            }
            Command::Read { side, call, max } => {
                if let Some(mux) = self.pick(side.which(), call) {
                    let max = usize::from(max).max(1);
                    self.model.read(&mut self.pair, side.which(), mux, max)?;
                }
            }
            Command::StopReading { side, call } => {
                if let Some(mux) = self.pick(side.which(), call) {
                    self.model.stop_reading(&mut self.pair, side.which(), mux)?;
                }
            }
            Command::Finish { side, call } => {
                if let Some(mux) = self.pick(side.which(), call) {
                    self.model.finish(&mut self.pair, side.which(), mux)?;
                }
            }
            Command::Respond { side, call, len } => {
                if let Some(mux) = self.pick(side.which(), call) {
                    self.model
                        .respond(&mut self.pair, side.which(), mux, size(len))?;
                }
            }
            Command::Fail { side, call, len } => {
                if let Some(mux) = self.pick(side.which(), call) {
                    self.model
                        .fail(&mut self.pair, side.which(), mux, len % 2 == 0)?;
                }
            }
            Command::Cancel { side, call } => {
                if let Some(mux) = self.pick(side.which(), call) {
                    self.model.cancel(&mut self.pair, side.which(), mux)?;
                }
            }
            Command::BeginDrain { side, ms } => {
                model.drain(pair, side.which(), Duration::from_millis(u64::from(ms)));
            }
            Command::Close { side } => model.close(pair, side.which()),
            Command::AdvanceMs(ms) => pair.advance(Duration::from_millis(u64::from(ms))),
            Command::AdvanceSecs(s) => pair.advance(Duration::from_secs(u64::from(s))),
            Command::SetChunk(n) => {
                pair.max_chunk = if n == 0 { usize::MAX } else { usize::from(n) };
            }
            Command::SetLatencyMs(ms) => pair.latency = Duration::from_millis(u64::from(ms)),
            Command::Stall(side) => pair.side(side.which()).stalled = true,
            Command::Unstall(side) => pair.side(side.which()).stalled = false,
        }
        Ok(())
    }

    /// Drives the pair, takes and checks every event, then runs the checks.
    fn settle(&mut self) -> Result<(), Violation> {
        self.pair.drive();
        self.model.pump(&mut self.pair)?;
        self.model.check(&self.pair)
    }

    fn run(&mut self, commands: &[Command]) -> Result<(), Violation> {
        for (step, command) in commands.iter().take(256).enumerate() {
            self.model.step = step;
            self.command(command)?;
            self.settle()?;
        }
        // Past every deadline, every call either side opened has ended.
        self.pair.client.stalled = false;
        self.pair.server.stalled = false;
        self.pair.advance(MAX_DEADLINE + Duration::from_secs(10));
        self.settle()?;
        for side in Which::BOTH {
            let open = self.model.outgoing(side);
            if !open.is_empty() {
                return Err(Violation::new(format!(
                    "{side:?}: calls never ended: {open:x?}"
                )));
            }
        }
        Ok(())
    }
}

fuzz_target!(|input: Input| {
    let mut harness = Harness::new(u64::from(input.seed), &input.setup);
    if let Err(violation) = harness.run(&input.commands) {
        panic!("{violation}");
    }
});
