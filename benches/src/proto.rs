//! Workloads for the micro-benchmark of the sans-IO core, `grid-proto`.
//!
//! Two [`Connection`]s are wired in memory by the smallest possible driver:
//! every buffer one side returns from `poll_transmit` is fed at once, whole, to
//! the other side's `handle_input`, and events are answered as they are polled.
//! No simulated network, no random chunking, no event queue of its own, so the
//! time measured is the protocol core's plus that of the payload copies it does.
//!
//! Time is virtual: the clock advances by [`VIRTUAL_TIME_PER_CALL`] for every
//! completed request/response cycle or stream message, and each side's timers
//! run whenever [`Connection::poll_timeout`] says they are due, as a real driver
//! would do. Keepalive pings (every 5 s of virtual time) therefore flow, and
//! whatever periodic work the connection does in `handle_timeout` is included,
//! amortised, in the measurements.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use grid_proto::sim::sim_config;
use grid_proto::{CallId, CallTarget, Connection, ConnectionState, Event, ReadOutcome, Role};

/// Virtual time that passes per completed cycle or message: 1 µs, i.e. the
/// clock runs as if one connection carried a million calls per second.
pub const VIRTUAL_TIME_PER_CALL: Duration = Duration::from_micros(1);

/// Handler id the workloads call.
pub const HANDLER: u16 = 1;

/// A payload of `len` bytes whose clones cost nothing: a static buffer (leaked
/// once per call of this function), so cloning and dropping it neither
/// allocates nor touches a reference count. The workloads thereby measure the
/// protocol core alone, not the application's payload management.
///
/// A payload shared by reference count instead (a `Bytes` made from a `Vec`)
/// adds two atomic read-modify-writes per clone-send-drop, which can be a large
/// part of a small call's cost.
pub fn payload(len: usize) -> Bytes {
    let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
    Bytes::from_static(Vec::leak(data))
}

/// Feeds everything `from` has to send to `to`. Returns whether anything moved.
#[inline]
pub fn pump(from: &mut Connection, to: &mut Connection, now: Instant) -> bool {
    let mut moved = false;
    while let Some(bytes) = from.poll_transmit(now) {
        to.handle_input(now, &bytes);
        moved = true;
    }
    moved
}

/// A dialer (`client`) and an acceptor (`server`) wired in memory, handshaken.
#[derive(Debug)]
pub struct Wired {
    /// The dialing side; it opens the calls.
    pub client: Connection,
    /// The accepting side; it answers them.
    pub server: Connection,
    /// The virtual clock.
    pub now: Instant,
}

impl Wired {
    /// Two connections with the simulator's default configurations, after the
    /// handshake, with their `Connected` events taken.
    pub fn connected() -> Wired {
        let now = Instant::now();
        let mut wired = Wired {
            client: Connection::new(sim_config(Role::Dialer, 1), now),
            server: Connection::new(sim_config(Role::Acceptor, 2), now),
            now,
        };
        while wired.pump_both() {}
        for side in [&mut wired.client, &mut wired.server] {
            assert_eq!(side.state(), ConnectionState::Established);
            assert!(matches!(side.poll_event(), Some(Event::Connected(_))));
            assert!(side.poll_event().is_none());
        }
        wired
    }

    /// Pumps both directions once. Returns whether anything moved.
    pub fn pump_both(&mut self) -> bool {
        let a = pump(&mut self.client, &mut self.server, self.now);
        let b = pump(&mut self.server, &mut self.client, self.now);
        a | b
    }

    /// Advances the virtual clock for `calls` completed calls and runs the
    /// timers that are due, as a driver does after each batch of work.
    #[inline]
    pub fn tick(&mut self, calls: u64) {
        let calls = u32::try_from(calls).unwrap_or(u32::MAX);
        self.advance(VIRTUAL_TIME_PER_CALL * calls);
    }

    /// Advances the virtual clock by `by` and runs the timers that are due.
    #[inline]
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        let now = self.now;
        for side in [&mut self.client, &mut self.server] {
            if side.poll_timeout().is_some_and(|at| at <= now) {
                side.handle_timeout(now);
            }
        }
    }
}

/// Request/response cycles: the client opens `in_flight` requests, they are
/// delivered, the server answers every one, the answers are delivered.
#[derive(Debug)]
pub struct RequestWorkload {
    wired: Wired,
    request: Bytes,
    response: Bytes,
    in_flight: usize,
}

impl RequestWorkload {
    /// A handshaken pair exchanging requests and responses of `payload_len`
    /// bytes, `in_flight` at a time.
    pub fn new(payload_len: usize, in_flight: usize) -> RequestWorkload {
        assert!(in_flight > 0);
        RequestWorkload {
            wired: Wired::connected(),
            request: payload(payload_len),
            response: payload(payload_len),
            in_flight,
        }
    }

    /// Request/response cycles per round.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Payload bytes a cycle moves: the request's and the response's.
    pub fn bytes_per_cycle(&self) -> u64 {
        (self.request.len() + self.response.len()) as u64
    }

    /// The wired connections.
    pub fn wired(&self) -> &Wired {
        &self.wired
    }

    /// The wired connections, to change the clock or inspect them.
    pub fn wired_mut(&mut self) -> &mut Wired {
        &mut self.wired
    }

    /// Runs `rounds` rounds of [`RequestWorkload::in_flight`] cycles each.
    /// Panics on any unexpected event or error.
    pub fn run(&mut self, rounds: u64) {
        for _ in 0..rounds {
            self.round();
        }
    }

    #[inline]
    fn round(&mut self) {
        let Wired {
            client,
            server,
            now,
        } = &mut self.wired;
        let now = *now;
        for _ in 0..self.in_flight {
            if let Err(error) =
                client.open_request(now, CallTarget::new(HANDLER), self.request.clone(), None)
            {
                panic!("open_request failed: {error}");
            }
        }
        pump(client, server, now);
        let mut answered = 0;
        while let Some(event) = server.poll_event() {
            match event {
                Event::IncomingRequest(call) => {
                    debug_assert_eq!(call.payload.len(), self.request.len());
                    if let Err(error) = server.respond(call.id, self.response.clone()) {
                        panic!("respond failed: {error}");
                    }
                    answered += 1;
                }
                other => panic!("unexpected server event {other:?}"),
            }
        }
        pump(server, client, now);
        let mut completed = 0;
        while let Some(event) = client.poll_event() {
            match event {
                Event::RequestEnded {
                    result: Ok(payload),
                    ..
                } => {
                    debug_assert_eq!(payload.len(), self.response.len());
                    completed += 1;
                }
                other => panic!("unexpected client event {other:?}"),
            }
        }
        assert!(
            answered == self.in_flight && completed == self.in_flight,
            "{answered} requests answered and {completed} completed of {}",
            self.in_flight
        );
        self.wired.tick(completed as u64);
    }
}

/// One-way stream messages: the client opened a stream, the server granted
/// it a window of a given number of messages (in bytes, what they cost); the client sends whenever it has credit, the server
/// reads every message it gets, which sends the credit back.
#[derive(Debug)]
pub struct StreamWorkload {
    wired: Wired,
    client_id: CallId,
    message: Bytes,
    window: u32,
    /// The server's read buffer, reused between rounds.
    read: VecDeque<Bytes>,
}

impl StreamWorkload {
    /// A handshaken pair with one open stream of messages of `payload_len`
    /// bytes from client to server, with a receive window of `window` messages.
    pub fn new(payload_len: usize, window: u32) -> StreamWorkload {
        let mut wired = Wired::connected();
        let now = wired.now;
        // The longest deadline accepted (1 h), so that virtual time never expires the stream.
        let client_id = wired
            .client
            .open_stream(
                now,
                CallTarget::new(HANDLER),
                Bytes::new(),
                Some(Duration::from_secs(3600)),
                0,
            )
            .expect("open_stream");
        pump(&mut wired.client, &mut wired.server, now);
        let Some(Event::IncomingStream(call)) = wired.server.poll_event() else {
            panic!("the server did not see the stream open");
        };
        let cost = payload_len as u64 + u64::from(grid_proto::STREAM_MESSAGE_OVERHEAD);
        let window_bytes = u32::try_from(u64::from(window) * cost).unwrap_or(u32::MAX);
        wired
            .server
            .accept_stream(call.id, window_bytes)
            .expect("accept_stream");
        pump(&mut wired.server, &mut wired.client, now);
        assert!(matches!(
            wired.client.poll_event(),
            Some(Event::StreamWritable { id }) if id == client_id
        ));
        assert!(wired.client.can_send(client_id));
        StreamWorkload {
            wired,
            client_id,
            message: payload(payload_len),
            window,
            read: VecDeque::new(),
        }
    }

    /// The receive window, in messages.
    pub fn window(&self) -> u32 {
        self.window
    }

    /// Payload bytes per message.
    pub fn bytes_per_message(&self) -> u64 {
        self.message.len() as u64
    }

    /// The wired connections.
    pub fn wired(&self) -> &Wired {
        &self.wired
    }

    /// Sends `messages` messages and has them all read by the server.
    /// Panics on any unexpected event or error.
    pub fn run(&mut self, messages: u64) {
        let mut sent = 0;
        while sent < messages {
            let Wired {
                client,
                server,
                now,
            } = &mut self.wired;
            let now = *now;
            let mut batch = 0;
            while sent < messages && client.can_send(self.client_id) {
                if let Err(error) = client.send_message(self.client_id, self.message.clone()) {
                    panic!("send_message failed: {error}");
                }
                sent += 1;
                batch += 1;
            }
            assert!(batch > 0, "the client has no credit");
            pump(client, server, now);
            let mut received = 0;
            while let Some(event) = server.poll_event() {
                match event {
                    Event::StreamReadable { id } => loop {
                        match server.read(id, &mut self.read, usize::MAX) {
                            Ok(ReadOutcome::Messages { count, .. }) => received += count as u64,
                            Ok(ReadOutcome::Empty) => break,
                            other => panic!("unexpected read {other:?}"),
                        }
                        debug_assert!(self.read.iter().all(|m| m.len() == self.message.len()));
                        self.read.clear();
                    },
                    other => panic!("unexpected server event {other:?}"),
                }
            }
            assert_eq!(received, batch, "messages lost");
            pump(server, client, now);
            while let Some(event) = client.poll_event() {
                match event {
                    Event::StreamWritable { id } if id == self.client_id => {}
                    other => panic!("unexpected client event {other:?}"),
                }
            }
            self.wired.tick(batch);
        }
    }
}

/// The shape of a workload: which calls, how large, how many at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// [`RequestWorkload`]: request/response cycles.
    Request {
        /// Payload bytes of each request and each response.
        len: usize,
        /// Calls per round.
        in_flight: usize,
    },
    /// [`StreamWorkload`]: one-way stream messages.
    Stream {
        /// Payload bytes of each message.
        len: usize,
        /// Receive window, in messages.
        window: u32,
    },
}

fn size_name(len: usize) -> String {
    if len >= 1024 && len % 1024 == 0 {
        format!("{}KiB", len / 1024)
    } else {
        format!("{len}B")
    }
}

fn parse_size(text: &str) -> Option<usize> {
    if let Some(kib) = text.strip_suffix("KiB") {
        kib.parse::<usize>().ok()?.checked_mul(1024)
    } else {
        text.strip_suffix('B')?.parse().ok()
    }
}

impl Shape {
    /// `request` or `stream`.
    pub fn kind(self) -> &'static str {
        match self {
            Shape::Request { .. } => "request",
            Shape::Stream { .. } => "stream",
        }
    }

    /// The rest of the name: `32B/x64` (payload, calls in flight) or
    /// `64KiB/w64` (payload, window).
    pub fn variant(self) -> String {
        match self {
            Shape::Request { len, in_flight } => format!("{}/x{in_flight}", size_name(len)),
            Shape::Stream { len, window } => format!("{}/w{window}", size_name(len)),
        }
    }

    /// The full name, `kind/variant`, as the benchmarks are named.
    pub fn name(self) -> String {
        format!("{}/{}", self.kind(), self.variant())
    }

    /// Parses a name made by [`Shape::name`].
    pub fn parse(name: &str) -> Option<Shape> {
        let mut parts = name.split('/');
        let (kind, size, depth) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let len = parse_size(size)?;
        match kind {
            "request" => Some(Shape::Request {
                len,
                in_flight: depth.strip_prefix('x')?.parse().ok().filter(|&n| n > 0)?,
            }),
            "stream" => Some(Shape::Stream {
                len,
                window: depth.strip_prefix('w')?.parse().ok().filter(|&n| n > 0)?,
            }),
            _ => None,
        }
    }

    /// Payload bytes of each request, response or message.
    pub fn payload_len(self) -> usize {
        match self {
            Shape::Request { len, .. } | Shape::Stream { len, .. } => len,
        }
    }

    /// Unit of work: `cycle` or `message`.
    pub fn unit(self) -> &'static str {
        match self {
            Shape::Request { .. } => "cycle",
            Shape::Stream { .. } => "message",
        }
    }

    /// Cycles or messages per round: one round of `in_flight` cycles, or one
    /// window's worth of messages. A round is the benchmarks' iteration, so
    /// that what an iteration does never depends on how many are run.
    pub fn calls_per_round(self) -> u64 {
        match self {
            Shape::Request { in_flight, .. } => in_flight as u64,
            Shape::Stream { window, .. } => u64::from(window),
        }
    }

    /// Payload bytes per cycle (request plus response) or per message.
    pub fn bytes_per_call(self) -> u64 {
        match self {
            Shape::Request { len, .. } => 2 * len as u64,
            Shape::Stream { len, .. } => len as u64,
        }
    }

    /// A new, handshaken workload of this shape (not warmed up).
    pub fn build(self) -> Workload {
        match self {
            Shape::Request { len, in_flight } => {
                Workload::Request(RequestWorkload::new(len, in_flight))
            }
            Shape::Stream { len, window } => Workload::Stream(StreamWorkload::new(len, window)),
        }
    }
}

/// A workload of either kind.
#[derive(Debug)]
pub enum Workload {
    /// Request/response cycles.
    Request(RequestWorkload),
    /// One-way stream messages.
    Stream(StreamWorkload),
}

impl Workload {
    /// Runs `rounds` rounds (see [`Shape::calls_per_round`]).
    pub fn run_rounds(&mut self, rounds: u64) {
        match self {
            Workload::Request(w) => w.run(rounds),
            Workload::Stream(w) => w.run(rounds * u64::from(w.window())),
        }
    }

    /// Runs whole rounds of at least `calls` cycles or messages in all;
    /// returns how many ran.
    pub fn run_calls(&mut self, calls: u64) -> u64 {
        let per = match self {
            Workload::Request(w) => w.in_flight() as u64,
            Workload::Stream(w) => u64::from(w.window()),
        };
        let rounds = calls.div_ceil(per);
        self.run_rounds(rounds);
        rounds * per
    }

    /// The wired connections.
    pub fn wired(&self) -> &Wired {
        match self {
            Workload::Request(w) => w.wired(),
            Workload::Stream(w) => w.wired(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_complete_in_every_shape() {
        for (len, in_flight) in [(32, 1), (32, 64), (64 * 1024, 1), (64 * 1024, 8)] {
            let mut workload = RequestWorkload::new(len, in_flight);
            workload.run(20);
            let stats = workload.wired().client.stats();
            assert_eq!(stats.outgoing_calls, 0);
            assert_eq!(stats.messages_received, 20 * in_flight as u64);
            assert_eq!(workload.wired().server.stats().incoming_calls, 0);
        }
    }

    #[test]
    fn stream_messages_flow_with_credit() {
        for len in [32, 64 * 1024] {
            let mut workload = StreamWorkload::new(len, 64);
            workload.run(1000);
            workload.run(7);
            let server = workload.wired().server.stats();
            assert_eq!(server.messages_received, 1 + 1007);
            assert_eq!(server.buffered_bytes, 0);
        }
    }

    #[test]
    fn shapes_round_trip_through_their_names() {
        for name in [
            "request/32B/x1",
            "request/64KiB/x64",
            "stream/32B/w64",
            "stream/100B/w3",
        ] {
            let shape = Shape::parse(name).unwrap();
            assert_eq!(shape.name(), name);
        }
        for bad in [
            "request/32/x1",
            "request/32B/w1",
            "stream/1KiB/w0",
            "request/32B",
            "x/1B/x1",
        ] {
            assert_eq!(Shape::parse(bad), None, "{bad}");
        }
        let mut workload = Shape::parse("stream/32B/w8").unwrap().build();
        assert_eq!(workload.run_calls(20), 24);
        assert_eq!(workload.wired().server.stats().messages_received, 1 + 24);
    }

    #[test]
    fn timers_run_as_virtual_time_passes() {
        let mut workload = RequestWorkload::new(32, 64);
        workload.run(10);
        assert!(workload.wired().client.rtt().is_none());
        // Past the 5 s keepalive interval: both sides ping, the next rounds carry the pongs.
        workload.wired_mut().advance(Duration::from_secs(6));
        workload.run(2);
        assert!(
            workload.wired().client.rtt().is_some(),
            "no client keepalive round trip"
        );
        assert!(
            workload.wired().server.rtt().is_some(),
            "no server keepalive round trip"
        );
        workload.run(10);
    }
}
