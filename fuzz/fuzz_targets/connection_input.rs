//! A hostile peer: arbitrary bytes into the server side of a `Pair`.
//!
//! The fuzzer plays the client. It sends structured frames (ops from the op
//! table, flags, mux, arg and payload, optionally fragmented) and raw garbage,
//! in arbitrary chunks, interleaved with time advances, with partial or full
//! draining of what the server writes, and with the server application
//! answering calls (respond, accept, read, finish, fail, cancel, send) and
//! opening calls of its own so that the answer paths run too.
//!
//! Checked, besides "never panics":
//! - no event follows `Closed`; once closed, `in_flight()` is `(0, 0)`,
//!   `poll_timeout()` is `None`, and further input is ignored (no event, no
//!   byte out, `bytes_received` unchanged);
//! - `stats().buffered_bytes` never exceeds `limits.max_buffered_bytes`;
//! - after `handle_timeout(now)`, `poll_timeout()` is later than `now` (a
//!   driver that sleeps until it would otherwise spin);
//! - what the server writes is a well-formed frame stream for its peer
//!   (PROTOCOL.md sections 3 and 4): every frame decodes within the peer's
//!   `max_frame_size` (1024 bytes until the handshake completes),
//!   connection-level frames are on mux 0 without flags, only fragmentable ops
//!   are fragmented, no message exceeds the peer's `max_message_size`, a
//!   message is finished before another starts on its mux (only an `Error`
//!   that ends the call may follow an abandoned one; `Credit`, `Fin` and
//!   `Cancel` may come between fragments), and nothing follows a `Close` or
//!   `Reject`.
#![no_main]

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use bytes::{Bytes, BytesMut};
use grid_proto::sim::frames::raw_frame;
use grid_proto::sim::{sim_config, Pair};
use grid_proto::{
    CallId, CallTarget, Config, Error, Event, FrameDecoder, Header, Op, ReadOutcome, Role,
    FLAG_MORE,
};
use libfuzzer_sys::fuzz_target;

const ACCEPTOR: u32 = 1 << 31;

/// The frame limit of a connection still handshaking (`MAX_HANDSHAKE_FRAME`).
const HANDSHAKE_MAX_FRAME: u32 = 1024;

/// The op table, call ops twice: ops that are fatal after the handshake
/// (`Hello`, `Auth`, `Reject`, `Close`) would otherwise end most runs early.
/// Unknown ops and flags come from [`Step::Raw`].
const OPS: [Op; 26] = [
    Op::Request,
    Op::StreamOpen,
    Op::Message,
    Op::Credit,
    Op::Fin,
    Op::Cancel,
    Op::Response,
    Op::Error,
    Op::Request,
    Op::StreamOpen,
    Op::Message,
    Op::Credit,
    Op::Fin,
    Op::Cancel,
    Op::Response,
    Op::Error,
    Op::Ping,
    Op::Pong,
    Op::GoAway,
    Op::Hello,
    Op::Auth,
    Op::Reject,
    Op::Close,
    Op::Message,
    Op::Messages,
    Op::Messages,
];

#[derive(Arbitrary, Debug)]
enum Setup {
    /// `Pair::connected`: default limits.
    Default { seed: u8 },
    /// Handshaken, with small server limits so that every limit can be hit.
    Small { seed: u8, limits: SmallLimits },
    /// Not handshaken: the fuzzer sends `Hello` and `Auth` itself (it can use
    /// the real client's, see [`Payload::Hello`] and [`Payload::Auth`]).
    Fresh { seed: u8 },
}

#[derive(Arbitrary, Debug)]
struct SmallLimits {
    /// The client's `max_frame_size` and `max_message_size`, which bound what
    /// the server may write.
    peer_max_frame: u8,
    peer_max_message: u16,
    max_frame: u8,
    max_message: u16,
    calls: u8,
    streams: u8,
    buffered: u16,
    send_buffer: u16,
    control_backlog: u16,
    burst: u8,
    rate: u8,
    fragment: u16,
}

#[derive(Arbitrary, Debug)]
enum Arg {
    /// The value a correct client would send: next sequence number for
    /// `Message`, message count for `Fin`, the latest ping id for `Pong`, ...
    Auto,
    Zero,
    Small(u8),
    Raw(u32),
}

#[derive(Arbitrary, Debug)]
enum Payload {
    /// A `Request`/`StreamOpen` prefix: handler, subroute, window (streams only), body.
    Open {
        handler: u8,
        subroute: Vec<u8>,
        window: u8,
        body: Vec<u8>,
    },
    Empty,
    Raw(Vec<u8>),
    Filled {
        len: u16,
        byte: u8,
    },
    /// The real client's `Hello` payload.
    Hello,
    /// The real client's `Auth` proof (valid only for a `Fresh` server).
    Auth,
}

#[derive(Arbitrary, Debug)]
struct FrameSpec {
    /// Index into [`OPS`].
    op: u8,
    /// `MORE` on every fragment, the last one included.
    more: bool,
    /// For a connection-level op: mux 0, except 255 gives mux 1. For a call op:
    /// 127 and 255 give the reserved muxes 0 and `1 << 31`; 0..=126 a mux of
    /// the client's namespace (calls the fuzzer opens), 128..=254 one of the
    /// server's (calls the server opened), four of each.
    mux: u8,
    arg: Arg,
    payload: Payload,
    /// Split into 1..=4 fragments, `MORE` on all but the last.
    fragments: u8,
}

#[derive(Arbitrary, Debug)]
enum Fail {
    Remote(u16),
    UnknownHandler,
    Overloaded,
    Draining,
    DeadlineExceeded,
    TooLarge,
    Protocol,
    Cancelled,
}

#[derive(Arbitrary, Debug)]
enum App {
    Respond {
        call: u8,
        len: u16,
    },
    Accept {
        call: u8,
        window: u8,
    },
    /// Reads a message of the stream that became readable longest ago.
    Read,
    /// Reads up to `max` messages of a call the harness picks.
    ReadMany {
        call: u8,
        max: u16,
    },
    /// Stops reading a call the harness picks.
    StopReading {
        call: u8,
    },
    Finish {
        call: u8,
    },
    Fail {
        call: u8,
        error: Fail,
    },
    Cancel {
        call: u8,
    },
    Send {
        call: u8,
        len: u16,
    },
    OpenRequest {
        len: u16,
        timeout_ms: u16,
    },
    OpenStream {
        len: u16,
        timeout_ms: u16,
        window: u8,
    },
    BeginDrain {
        ms: u16,
    },
    /// Closes with a reason of `2 * reason_len` bytes, up to 128 KiB: the
    /// `Close` or `Reject` must still fit the peer's frame limit (1024 bytes
    /// while it handshakes).
    Close {
        reason_len: u16,
    },
    TransportClosed,
}

#[derive(Arbitrary, Debug)]
enum Step {
    Frame(FrameSpec),
    Raw(Vec<u8>),
    /// Chunk size of later input: 0 for whole buffers.
    Chunk(u8),
    AdvanceMs(u16),
    AdvanceSecs(u8),
    App(App),
    /// While held, the server's output is only read by `Poll` steps (a slow socket).
    Hold(bool),
    Poll(u8),
    /// An extra `handle_timeout(now)`; documented as harmless.
    Timeout,
    /// The real client's `Hello` and `Auth` frames, so that a `Fresh` server
    /// often completes its handshake.
    Handshake,
}

#[derive(Arbitrary, Debug)]
struct Input {
    setup: Setup,
    steps: Vec<Step>,
}

/// A message the server has partly written on a mux.
struct Partial {
    op: Op,
    arg: u32,
    size: usize,
}

/// Checks the server's output as its peer's decoder and assembler see it
/// (PROTOCOL.md sections 3 and 4).
struct Wire {
    decoder: FrameDecoder,
    /// The peer's `max_frame_size`, in force once the server's `Auth` is read
    /// (until then the peer accepts handshake-sized frames only).
    peer_max_frame: u32,
    peer_max_message: usize,
    partial: HashMap<u32, Partial>,
    closed: bool,
    latest_ping: u32,
}

impl Wire {
    fn new(handshaking: bool, peer_max_frame: u32, peer_max_message: u32) -> Wire {
        Wire {
            decoder: FrameDecoder::new(if handshaking {
                HANDSHAKE_MAX_FRAME
            } else {
                peer_max_frame
            }),
            peer_max_frame,
            peer_max_message: peer_max_message as usize,
            partial: HashMap::new(),
            closed: false,
            latest_ping: 0,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        self.decoder.push(bytes);
        loop {
            let (header, payload) = match self.decoder.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return,
                Err(error) => panic!("server wrote a frame its peer cannot decode: {error}"),
            };
            self.frame(header, payload.len());
        }
    }

    fn frame(&mut self, header: Header, len: usize) {
        assert!(
            !self.closed,
            "server wrote {header:?} after its Close or Reject"
        );
        let mux = header.mux;
        match header.op {
            Op::Hello | Op::Auth | Op::Reject | Op::Ping | Op::Pong | Op::GoAway | Op::Close => {
                assert!(mux == 0 && header.flags == 0, "server wrote {header:?}");
                match header.op {
                    Op::Close | Op::Reject => self.closed = true,
                    Op::Ping => self.latest_ping = header.arg,
                    Op::Auth => self.decoder.set_max_frame(self.peer_max_frame),
                    _ => {}
                }
                return;
            }
            _ => {}
        }
        assert_ne!(
            mux & !ACCEPTOR,
            0,
            "server wrote {header:?} on a reserved mux"
        );
        let fragmentable = matches!(
            header.op,
            Op::Request | Op::Response | Op::Error | Op::StreamOpen | Op::Message
        );
        if !fragmentable {
            // `Credit`, `Fin` and `Cancel` may come between fragments.
            assert!(!header.more(), "server fragmented {header:?}");
            if header.op == Op::Cancel {
                // The call is over on both sides: a partial message is moot.
                self.partial.remove(&mux);
            }
            return;
        }
        // Section 4 rule 3: a message is finished before another starts on its
        // mux, unless the call ended at the sender, which then abandons it and
        // may tell the peer with an `Error`.
        let continued = match self.partial.remove(&mux) {
            Some(p) if p.op == header.op && p.arg == header.arg => p.size,
            Some(p) => {
                assert!(
                    header.op == Op::Error,
                    "server started {header:?} on mux {mux:#x} inside its unfinished {:?} \
                     (arg {}): the peer drops the first message",
                    p.op,
                    p.arg
                );
                0
            }
            None => 0,
        };
        let size = continued + len;
        assert!(
            size <= self.peer_max_message,
            "server wrote a {:?} of at least {size} bytes, over the peer's max_message_size {}",
            header.op,
            self.peer_max_message
        );
        if header.more() {
            self.partial.insert(
                mux,
                Partial {
                    op: header.op,
                    arg: header.arg,
                    size,
                },
            );
        }
    }
}

struct Harness {
    pair: Pair,
    wire: Wire,
    max_buffered: usize,
    hello: Bytes,
    auth: Bytes,
    chunk: usize,
    hold: bool,
    closed: bool,
    /// Every call id seen, for the application's commands to pick from.
    calls: Vec<CallId>,
    /// Streams that said they have something to read, oldest first.
    readable: Vec<CallId>,
    /// Messages the fuzzer sent per mux, for `Arg::Auto`.
    sent: HashMap<u32, u32>,
}

fn small_config(seed: u64, l: &SmallLimits) -> Config {
    let mut config = sim_config(Role::Acceptor, seed);
    let limits = &mut config.limits;
    limits.max_frame_size = 256 + u32::from(l.max_frame) * 16;
    limits.max_message_size = u32::from(l.max_message);
    limits.max_incoming_calls = u32::from(l.calls % 9);
    limits.max_incoming_streams = u32::from(l.streams % 5);
    limits.max_buffered_bytes = usize::from(l.buffered);
    limits.send_buffer_size = usize::from(l.send_buffer);
    // Below one handshake frame (an `Auth` is 46 bytes) every handshake fails.
    limits.max_control_backlog = 64 + usize::from(l.control_backlog);
    limits.cheap_frame_burst = 8 + u32::from(l.burst);
    limits.cheap_frames_per_second = u32::from(l.rate);
    config.fragment_size = u32::from(l.fragment);
    config
}

/// The real client's `Hello` payload and, given the server's `Hello`, its `Auth` proof.
fn client_handshake(pair: &mut Pair) -> (Bytes, Bytes) {
    fn frames(bytes: Vec<Bytes>) -> Vec<(Header, Bytes)> {
        let mut decoder = FrameDecoder::new(1 << 20);
        for b in bytes {
            decoder.push(&b);
        }
        std::iter::from_fn(|| decoder.next_frame().expect("valid handshake")).collect()
    }
    let now = pair.now;
    let client_out: Vec<Bytes> =
        std::iter::from_fn(|| pair.client.conn.poll_transmit(now)).collect();
    let server_out: Vec<Bytes> =
        std::iter::from_fn(|| pair.server.conn.poll_transmit(now)).collect();
    for bytes in &server_out {
        pair.client.conn.handle_input(now, bytes);
    }
    let auth: Vec<Bytes> = std::iter::from_fn(|| pair.client.conn.poll_transmit(now)).collect();
    let hello = frames(client_out).remove(0).1;
    let auth = frames(auth)
        .into_iter()
        .find(|(h, _)| h.op == Op::Auth)
        .map(|(_, p)| p)
        .unwrap_or_default();
    (hello, auth)
}

impl Harness {
    fn new(setup: &Setup) -> Harness {
        let (mut pair, fresh) = match setup {
            Setup::Default { seed } => (Pair::connected(u64::from(*seed)), false),
            Setup::Fresh { seed } => (Pair::new(u64::from(*seed)), true),
            Setup::Small { seed, limits } => {
                let seed = u64::from(*seed);
                let mut client = sim_config(Role::Dialer, seed);
                client.limits.max_frame_size = 256 + u32::from(limits.peer_max_frame) * 16;
                client.limits.max_message_size = 64 + u32::from(limits.peer_max_message);
                let server = small_config(seed + 1, limits);
                (Pair::connected_with(client, server, seed), false)
            }
        };
        let (hello, auth) = if fresh {
            client_handshake(&mut pair)
        } else {
            // Any Hello will do to exercise "Hello after the handshake".
            (Bytes::from_static(b"GRID"), Bytes::new())
        };
        let peer_max_frame = pair.client.conn.config().limits.max_frame_size;
        let peer_max_message = pair.client.conn.config().limits.max_message_size;
        let max_buffered = pair.server.conn.config().limits.max_buffered_bytes;
        let mut harness = Harness {
            pair,
            wire: Wire::new(fresh, peer_max_frame, peer_max_message),
            max_buffered,
            hello,
            auth,
            chunk: 0,
            hold: false,
            closed: false,
            calls: Vec::new(),
            readable: Vec::new(),
            sent: HashMap::new(),
        };
        if !fresh {
            // The handshake frames went to the client already; the wire checker
            // starts at the first byte after them.
            assert!(harness
                .pair
                .server
                .conn
                .poll_transmit(harness.pair.now)
                .is_none());
        }
        harness.settle();
        harness
    }

    fn now(&self) -> Instant {
        self.pair.now
    }

    fn poll_transmit(&mut self, max: usize) {
        let now = self.now();
        for _ in 0..max {
            let Some(bytes) = self.pair.server.conn.poll_transmit(now) else {
                break;
            };
            assert!(!bytes.is_empty(), "poll_transmit returned an empty buffer");
            self.wire.push(&bytes);
        }
    }

    /// Drains events (and output unless held) and checks the invariants.
    fn settle(&mut self) {
        if !self.hold {
            self.poll_transmit(usize::MAX);
        }
        while let Some(event) = self.pair.server.conn.poll_event() {
            assert!(!self.closed, "event {event:?} after Closed");
            match &event {
                Event::IncomingRequest(call) | Event::IncomingStream(call) => {
                    self.calls.push(call.id)
                }
                Event::StreamReadable { id } => self.readable.push(*id),
                // The application reads what is left and releases the stream.
                Event::StreamEnded { id } => {
                    let conn = &mut self.pair.server.conn;
                    let mut read = VecDeque::new();
                    loop {
                        match conn.read(*id, &mut read, usize::MAX) {
                            Ok(ReadOutcome::Messages { .. }) => read.clear(),
                            Ok(ReadOutcome::Finished | ReadOutcome::Failed(_)) => break,
                            other => panic!("an ended stream reads as {other:?}"),
                        }
                    }
                    assert_eq!(conn.cancel(*id), Ok(()), "releasing an ended stream");
                }
                Event::Closed(_) => self.closed = true,
                _ => {}
            }
        }
        let conn = &self.pair.server.conn;
        let buffered = conn.stats().buffered_bytes;
        assert!(
            buffered <= self.max_buffered,
            "{buffered} bytes buffered, over max_buffered_bytes {}",
            self.max_buffered
        );
        if conn.is_closed() {
            assert_eq!(conn.in_flight(), (0, 0), "calls in flight after close");
            assert_eq!(conn.poll_timeout(), None, "a timer after close");
            assert_eq!(buffered, 0, "bytes buffered after close");
        }
        if self.calls.len() > 256 {
            self.calls.drain(..128);
        }
        if self.readable.len() > 256 {
            self.readable.drain(..128);
        }
    }

    fn input(&mut self, bytes: &[u8]) {
        let now = self.now();
        let ignored = self.closed;
        if ignored {
            // Everything the server had to say is said; prove the rest is ignored.
            self.poll_transmit(usize::MAX);
        }
        let before = self.pair.server.conn.stats().bytes_received;
        // At most 64 pieces per input, so that one-byte chunks of a large
        // frame do not cost thousands of settles.
        let chunk = if self.chunk == 0 {
            bytes.len().max(1)
        } else {
            self.chunk.max(bytes.len().div_ceil(64))
        };
        for piece in bytes.chunks(chunk) {
            self.pair.server.conn.handle_input(now, piece);
            if ignored {
                let conn = &mut self.pair.server.conn;
                assert_eq!(conn.poll_event(), None, "event from input after close");
                assert_eq!(
                    conn.poll_transmit(now),
                    None,
                    "output from input after close"
                );
                assert_eq!(
                    conn.stats().bytes_received,
                    before,
                    "input counted after close"
                );
            }
            self.settle();
        }
    }

    fn frame(&mut self, spec: &FrameSpec) {
        let op = OPS[usize::from(spec.op) % OPS.len()];
        let connection_level = matches!(
            op,
            Op::Hello | Op::Auth | Op::Reject | Op::Ping | Op::Pong | Op::GoAway | Op::Close
        );
        let flags = if spec.more { FLAG_MORE } else { 0 };
        let mux = match spec.mux {
            255 if connection_level => 1,
            _ if connection_level => 0,
            127 => 0,
            255 => ACCEPTOR,
            n @ 0..=126 => u32::from(n % 4) + 1,
            n => ACCEPTOR | (u32::from(n % 4) + 1),
        };
        let arg = match spec.arg {
            Arg::Zero => 0,
            Arg::Small(n) => u32::from(n),
            Arg::Raw(raw) => raw,
            Arg::Auto => match op {
                Op::Message => {
                    let seq = self.sent.entry(mux).or_default();
                    let arg = *seq;
                    *seq = seq.wrapping_add(1);
                    arg
                }
                Op::Fin => self.sent.get(&mux).copied().unwrap_or(0),
                Op::Pong => self.wire.latest_ping,
                Op::Credit => 2,
                Op::Request | Op::StreamOpen => {
                    self.sent.remove(&mux);
                    1000
                }
                _ => 0,
            },
        };
        let payload: Bytes = match &spec.payload {
            Payload::Empty => Bytes::new(),
            Payload::Raw(raw) => Bytes::copy_from_slice(raw),
            Payload::Filled { len, byte } => Bytes::from(vec![*byte; usize::from(*len)]),
            Payload::Open {
                handler,
                subroute,
                window,
                body,
            } => {
                let mut out = Vec::with_capacity(8 + subroute.len() + body.len());
                out.extend_from_slice(&u16::from(*handler).to_le_bytes());
                let subroute = &subroute[..subroute.len().min(255)];
                out.push(subroute.len() as u8);
                out.extend_from_slice(subroute);
                if op == Op::StreamOpen {
                    out.extend_from_slice(&u32::from(*window).to_le_bytes());
                }
                out.extend_from_slice(body);
                Bytes::from(out)
            }
            Payload::Hello => self.hello.clone(),
            Payload::Auth => self.auth.clone(),
        };
        let fragments = usize::from(spec.fragments % 4) + 1;
        let size = payload.len().div_ceil(fragments).max(1);
        let mut wire = Vec::new();
        let pieces: Vec<&[u8]> = if payload.is_empty() {
            vec![&[]]
        } else {
            payload.chunks(size).collect()
        };
        let last = pieces.len() - 1;
        for (i, piece) in pieces.into_iter().enumerate() {
            let flags = if i < last { flags | FLAG_MORE } else { flags };
            wire.extend(raw_frame(op, flags, mux, arg, piece));
        }
        self.input(&wire);
    }

    fn advance(&mut self, by: Duration) {
        let end = self.now() + by;
        for _ in 0..100_000 {
            match self.pair.server.conn.poll_timeout() {
                Some(at) if at <= end => {
                    self.pair.now = self.now().max(at);
                    self.timeout();
                }
                _ => break,
            }
        }
        self.pair.now = end;
    }

    fn timeout(&mut self) {
        let now = self.now();
        self.pair.server.conn.handle_timeout(now);
        if let Some(next) = self.pair.server.conn.poll_timeout() {
            assert!(
                next > now,
                "poll_timeout {next:?} is not after now {now:?} right after handle_timeout"
            );
        }
        self.settle();
    }

    fn app(&mut self, app: &App) {
        let now = self.now();
        let calls = &self.calls;
        let pick = |index: u8| -> Option<CallId> {
            (!calls.is_empty()).then(|| calls[usize::from(index) % calls.len()])
        };
        let mut opened = None;
        let conn = &mut self.pair.server.conn;
        match *app {
            App::Respond { call, len } => {
                if let Some(id) = pick(call) {
                    let _ = conn.respond(id, Bytes::from(vec![0x52; usize::from(len)]));
                }
            }
            App::Accept { call, window } => {
                if let Some(id) = pick(call) {
                    let _ = conn.accept_stream(id, u32::from(window));
                }
            }
            App::Read => {
                if let Some(&id) = self.readable.first() {
                    let mut read = VecDeque::new();
                    if !matches!(
                        conn.read(id, &mut read, 1),
                        Ok(ReadOutcome::Messages { .. })
                    ) {
                        self.readable.remove(0);
                    }
                }
            }
            App::ReadMany { call, max } => {
                if let Some(id) = pick(call) {
                    let mut read = VecDeque::new();
                    let _ = conn.read(id, &mut read, usize::from(max));
                }
            }
            App::StopReading { call } => {
                if let Some(id) = pick(call) {
                    let _ = conn.stop_reading(id);
                }
            }
            App::Finish { call } => {
                if let Some(id) = pick(call) {
                    let _ = conn.finish(id);
                }
            }
            App::Fail { call, ref error } => {
                if let Some(id) = pick(call) {
                    let error = match *error {
                        Fail::Remote(len) => {
                            Error::Remote(Bytes::from(vec![0x45; usize::from(len)]))
                        }
                        Fail::UnknownHandler => Error::UnknownHandler,
                        Fail::Overloaded => Error::Overloaded,
                        Fail::Draining => Error::Draining,
                        Fail::DeadlineExceeded => Error::DeadlineExceeded,
                        Fail::TooLarge => Error::TooLarge { size: 10, max: 1 },
                        Fail::Protocol => Error::Protocol("bad".into()),
                        Fail::Cancelled => Error::Cancelled,
                    };
                    let _ = conn.fail(id, error);
                }
            }
            App::Cancel { call } => {
                if let Some(id) = pick(call) {
                    let _ = conn.cancel(id);
                }
            }
            App::Send { call, len } => {
                if let Some(id) = pick(call) {
                    let _ = conn.send_message(id, Bytes::from(vec![0x4d; usize::from(len)]));
                }
            }
            App::OpenRequest { len, timeout_ms } => {
                let payload = Bytes::from(vec![0x51; usize::from(len)]);
                let timeout = Some(Duration::from_millis(u64::from(timeout_ms)));
                opened = conn
                    .open_request(now, CallTarget::new(1), payload, timeout)
                    .ok();
            }
            App::OpenStream {
                len,
                timeout_ms,
                window,
            } => {
                let payload = Bytes::from(vec![0x53; usize::from(len)]);
                let timeout = Some(Duration::from_millis(u64::from(timeout_ms)));
                let target = CallTarget::with_subroute(2, b"sub");
                opened = conn
                    .open_stream(now, target, payload, timeout, u32::from(window))
                    .ok();
            }
            App::BeginDrain { ms } => conn.begin_drain(now, Duration::from_millis(u64::from(ms))),
            App::Close { reason_len } => conn.close("c".repeat(2 * usize::from(reason_len))),
            App::TransportClosed => conn.handle_transport_closed("eof"),
        }
        self.calls.extend(opened);
        self.settle();
    }

    fn step(&mut self, step: &Step) {
        match step {
            Step::Frame(spec) => self.frame(spec),
            Step::Raw(bytes) => self.input(bytes),
            Step::Chunk(n) => self.chunk = usize::from(*n),
            Step::AdvanceMs(ms) => self.advance(Duration::from_millis(u64::from(*ms))),
            Step::AdvanceSecs(s) => self.advance(Duration::from_secs(u64::from(*s))),
            Step::App(app) => self.app(app),
            Step::Hold(hold) => {
                self.hold = *hold;
                self.settle();
            }
            Step::Poll(n) => {
                self.poll_transmit(usize::from(*n));
                self.settle();
            }
            Step::Timeout => self.timeout(),
            Step::Handshake => {
                let mut wire = BytesMut::new();
                for (op, payload) in [
                    (Op::Hello, self.hello.clone()),
                    (Op::Auth, self.auth.clone()),
                ] {
                    Header {
                        len: payload.len() as u32,
                        op,
                        flags: 0,
                        mux: 0,
                        arg: 0,
                    }
                    .encode(&mut wire);
                    wire.extend_from_slice(&payload);
                }
                self.input(&wire);
            }
        }
    }
}

fuzz_target!(|input: Input| {
    let mut harness = Harness::new(&input.setup);
    for step in input.steps.iter().take(512) {
        harness.step(step);
    }
    harness.hold = false;
    harness.settle();
});
