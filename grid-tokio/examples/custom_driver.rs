//! Embedding grid in your own event loop: one grid-tokio node, and a second
//! node driven by hand with `grid-proto` over a blocking `std::net::TcpStream`,
//! using threads and std channels only.
//!
//! Run: `cargo run -p grid-tokio --example custom_driver`
//!
//! `grid_proto::Connection` is sans-IO: it never reads a clock or a socket. Its
//! driver repeats three steps, and [`Driver::run_until`] is exactly them:
//!
//! 1. **mutate**: feed it what happened (bytes read, the transport ending, the
//!    timer firing) or a command (open a call, send, read, finish);
//! 2. **drain**: write out every `poll_transmit` buffer, in order, and handle
//!    every `poll_event`; handling an event may issue commands, so repeat;
//! 3. **sleep** until the next input or `poll_timeout`, whichever comes first.
//!
//! std cannot wait on a socket and a timer at once, so a reader thread turns
//! the socket into channel messages and the driver sleeps in `recv_timeout`.
//! That also keeps reading independent of writing, as grid requires.

use std::collections::VecDeque;
use std::hash::{BuildHasher, RandomState};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::ExitCode;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use grid_proto::{
    dials, CallId, CallTarget, CloseReason, CommandError, Config, Connection, Error, Event,
    ReadOutcome, Role,
};
/// Receive window of the example's stream, both ways: two of its messages
/// ("message N", each counting its length plus the per-message overhead).
const WINDOW: u32 = 2 * (9 + grid_proto::STREAM_MESSAGE_OVERHEAD);

use grid_tokio::{Bytes, Ctx, HandlerError, Manager, Router, StreamReceiver, StreamSender, Tokio};

const ECHO: u16 = 1;
const STREAM_ECHO: u16 = 2;
const SECRET: &[u8] = b"custom driver secret";
/// Every step of the demo must complete within this.
const STEP: Duration = Duration::from_secs(5);

type Res<T> = Result<T, String>;

fn err(error: impl std::fmt::Display) -> String {
    error.to_string()
}

/// The grid-tokio node, on a tokio runtime of its own: echo and stream echo.
/// It serves until `stop` fires, then shuts down.
fn tokio_node(listener: std::net::TcpListener, peer: String, stop: Receiver<()>) -> Res<()> {
    let name = listener.local_addr().map_err(err)?.to_string();
    let runtime = tokio::runtime::Runtime::new().map_err(err)?;
    let node = runtime.block_on(async {
        listener.set_nonblocking(true).map_err(err)?;
        let listener = tokio::net::TcpListener::from_std(listener).map_err(err)?;
        Manager::builder(name)
            .peers([peer]) // only listed peers may connect
            .secret(SECRET)
            .listener(Tokio::listener(listener))
            .router(
                Router::new()
                    .single(ECHO, |_ctx: Ctx, request: Bytes| async move { Ok(request) })
                    .stream(STREAM_ECHO, WINDOW, echo_stream),
            )
            .start()
            .await
            .map_err(err)
    })?;
    // The runtime's worker threads serve the node while this thread waits.
    let _ = stop.recv_timeout(Duration::from_secs(30));
    runtime.block_on(node.shutdown(Duration::from_secs(1)));
    Ok(())
}

/// Echoes every message; returning at the end of input finishes the stream.
async fn echo_stream(
    _: Ctx,
    _: Bytes,
    mut input: StreamReceiver,
    mut output: StreamSender,
) -> Result<(), HandlerError> {
    while let Some(message) = input.recv().await {
        output.send(message.map_err(err)?).await.map_err(err)?;
    }
    Ok(())
}

/// One connection: the state machine, the socket it writes to, and the channel
/// the reader thread fills with bytes (`Ok`) or why the transport ended (`Err`).
/// Only this thread touches the `Connection`.
struct Driver {
    conn: Connection,
    sock: TcpStream,
    input: Receiver<Res<Vec<u8>>>,
    /// Stream messages received: the "application" takes each one at once.
    received: Vec<Bytes>,
}

impl Driver {
    fn connect(addr: &str, config: Config) -> Res<Driver> {
        let sock = TcpStream::connect_timeout(&addr.parse().map_err(err)?, STEP).map_err(err)?;
        let _ = sock.set_nodelay(true); // grid coalesces frames itself
        let _ = sock.set_write_timeout(Some(STEP)); // a peer that never reads cannot block us
        let (mut reader, mut buf) = (sock.try_clone().map_err(err)?, vec![0; 64 * 1024]);
        let (tx, input) = channel();
        thread::spawn(move || loop {
            let read = match reader.read(&mut buf) {
                Ok(0) => Err("end of file".to_string()),
                Ok(n) => Ok(buf[..n].to_vec()),
                Err(error) => Err(error.to_string()),
            };
            let end = read.is_err();
            if tx.send(read).is_err() || end {
                return;
            }
        });
        // The connection queues its `Hello` at once: the first drain sends it.
        let (conn, received) = (Connection::new(config, Instant::now()), Vec::new());
        Ok(Driver {
            conn,
            sock,
            input,
            received,
        })
    }

    /// Writes every transmit buffer, in order. A failed write is the transport
    /// ending: the connection then ends every call and emits `Closed`.
    fn flush(&mut self) {
        while let Some(bytes) = self.conn.poll_transmit(Instant::now()) {
            if let Err(error) = self.sock.write_all(&bytes) {
                self.conn.handle_transport_closed(format!("write: {error}"));
            }
        }
    }

    /// Reads every message waiting on stream `id` into `received`; once the
    /// stream has ended, its outcome.
    fn read_stream(&mut self, id: CallId) -> Res<Option<Result<(), Error>>> {
        let mut messages = VecDeque::new();
        loop {
            match self.conn.read(id, &mut messages, usize::MAX).map_err(err)? {
                ReadOutcome::Messages { .. } => self.received.extend(messages.drain(..)),
                ReadOutcome::Empty => return Ok(None),
                ReadOutcome::Finished => return Ok(Some(Ok(()))),
                ReadOutcome::Failed(error) => return Ok(Some(Err(error))),
            }
        }
    }

    /// Runs the loop until `pick` returns `Some` for an event, at most `STEP`.
    /// Commands given before the call are mutations too: the first drain sends them.
    fn run_until<T>(&mut self, what: &str, mut pick: impl FnMut(&Event) -> Option<T>) -> Res<T> {
        let give_up = Instant::now() + STEP;
        loop {
            // 2. Drain: bytes first (calls, pongs, credit: whatever was queued),
            // then events, sending at once what handling each one queued.
            self.flush();
            while let Some(event) = self.conn.poll_event() {
                if let Some(done) = pick(&event) {
                    return Ok(done); // later events stay queued for the next step
                }
                match event {
                    // Reading returns the messages' credit: the peer may send more.
                    Event::StreamReadable { id } => {
                        self.read_stream(id)?;
                    }
                    // We serve nothing: answer at once, so nobody waits for a deadline.
                    Event::IncomingRequest(call) | Event::IncomingStream(call) => {
                        let _ = self.conn.fail(call.id, Error::UnknownHandler);
                    }
                    Event::StreamEnded { id } => {
                        return Err(format!("stream ended: {:?}", self.read_stream(id)))
                    }
                    Event::Closed(reason) => return Err(format!("closed: {reason}")),
                    _ => {} // PeerDraining, Writable, …: nothing to do here
                }
                self.flush();
            }
            // 3. Sleep until input or the connection's timer, bounded by our deadline.
            let now = Instant::now();
            if now >= give_up {
                return Err(format!("timed out waiting for {what}"));
            }
            let wake = self.conn.poll_timeout().unwrap_or(give_up).min(give_up);
            // 1. Mutate with whatever woke us.
            match self.input.recv_timeout(wake.saturating_duration_since(now)) {
                Ok(Ok(bytes)) => self.conn.handle_input(Instant::now(), &bytes),
                Ok(Err(why)) => self.conn.handle_transport_closed(why),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => self.conn.handle_transport_closed("reader"),
            }
            // Also after input: steady input never lets `recv_timeout` time out,
            // and keepalive and deadlines must still run.
            let now = Instant::now();
            if self.conn.poll_timeout().is_some_and(|at| at <= now) {
                self.conn.handle_timeout(now);
            }
        }
    }
}

fn run(tokio_node: &str, me: &str) -> Res<()> {
    // Bits from std alone, fine for a demo. A real driver MUST fill the seed
    // from an OS CSPRNG (e.g. `getrandom`): the handshake nonce derives from it.
    let random = || RandomState::new().hash_one(Instant::now());
    let seed = std::array::from_fn(|_| random() as u8);
    let mut config = Config::new(me, random(), SECRET, Role::Dialer, seed);
    config.expected_peer = Some(tokio_node.into()); // a dialer names whom it meant to reach
    let mut driver = Driver::connect(tokio_node, config)?;

    // Handshake: `Hello` and `Auth` both ways, then `Connected`.
    let peer = driver.run_until("the handshake", |event| match event {
        Event::Connected(peer) => Some(peer.node_name.clone()),
        _ => None,
    })?;
    println!("handshake: {me} -> {peer}");

    // A request: a command (mutate), then the loop runs until its `Response`.
    let hello = Bytes::from_static(b"hello from a hand-written event loop");
    let (echo, now) = (CallTarget::new(ECHO), Instant::now());
    let call = driver.conn.open_request(now, echo, hello.clone(), None);
    let call = call.map_err(err)?;
    let reply = driver.run_until("the echo", |event| match event {
        Event::RequestEnded { id, result } if *id == call => Some(result.clone()),
        _ => None,
    })?;
    match reply {
        Ok(reply) if reply == hello => println!("request: echo answered {reply:?}"),
        // `Disconnected` if the tokio node refused us right after the handshake.
        other => return Err(format!("echo: {other:?}; {:?}", driver.conn.close_reason())),
    }

    // A stream with a receive window of two messages' worth of bytes: the
    // handler may send 2 messages ahead of our `read`. Our send credit starts
    // at 0; it comes with `StreamWritable` once the handler accepts (its
    // window is the same).
    let sent: Vec<Bytes> = (1..=6).map(|i| format!("message {i}").into()).collect();
    let (target, now) = (CallTarget::new(STREAM_ECHO), Instant::now());
    let stream = driver
        .conn
        .open_stream(now, target, Bytes::new(), None, WINDOW);
    let stream = stream.map_err(err)?;
    let mut credit_waits = 0;
    for message in &sent {
        while let Err(error) = driver.conn.send_message(stream, message.clone()) {
            if error != CommandError::NoCredit {
                return Err(format!("send_message: {error}"));
            }
            // Out of credit: run the loop (consuming echoes) until the peer grants more.
            credit_waits += 1;
            driver.run_until("stream credit", |event| {
                matches!(event, Event::StreamWritable { id } if *id == stream).then_some(())
            })?;
        }
    }
    // Ends our input after every message queued before it; the handler then returns.
    driver.conn.finish(stream).map_err(err)?;
    driver.run_until("the stream's end", |event| {
        matches!(event, Event::StreamEnded { id } if *id == stream).then_some(())
    })?;
    // The stream stays readable after its end: the last echoes, then the outcome.
    let end = driver.read_stream(stream)?;
    let end = end.ok_or("a stream that ended has an outcome")?;
    driver.conn.cancel(stream).map_err(err)?; // releases it
    if end.is_err() || driver.received != sent {
        return Err(format!("stream: {end:?} after {:?}", driver.received));
    }
    let n = sent.len();
    println!("stream: {n} messages echoed in order, {credit_waits} waits for credit, Ok end");

    // Close cleanly: the drain tells the peer to open nothing new and pings;
    // once the pong is back no call can still be on its way, so the connection
    // closes with `Drained`. The `Close` frame leaves in the last flush.
    driver.conn.begin_drain(Instant::now(), STEP);
    let reason = driver.run_until("the drain", |event| match event {
        Event::Closed(reason) => Some(reason.clone()),
        _ => None,
    })?;
    driver.flush();
    if reason != CloseReason::Drained {
        return Err(format!("closed with {reason}"));
    }
    let _ = driver.sock.shutdown(Shutdown::Write);
    // The peer hangs up after our `Close`: the reader thread reports the end.
    while driver.input.recv_timeout(STEP).map_err(err)?.is_ok() {}
    println!("closed: {reason}; then the tokio node hung up");
    Ok(())
}

fn main() -> ExitCode {
    match run_both() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("FAILED: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run_both() -> Res<()> {
    // Bound first, so that the tokio node's name (its address) is known up front.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(err)?;
    let name = listener.local_addr().map_err(err)?.to_string();
    // Exactly one node of a pair dials, by a rule on the two names; the tokio
    // node refuses a peer that should have waited for its dial. About half of
    // all names dial it: take the first.
    let mut candidates = (0..64).map(|i| format!("custom-{i}"));
    let me = candidates.find(|me| dials(me, &name));
    let me = me.ok_or("no candidate name dials the tokio node")?;
    let (stop, stopped) = channel();
    let peer = me.clone();
    let node = thread::spawn(move || tokio_node(listener, peer, stopped));
    println!("tokio node {name} started; the hand-driven node {me:?} dials it");
    let outcome = run(&name, &me);
    let _ = stop.send(());
    // A node that failed to start explains a handshake timeout: its error first.
    node.join().map_err(|_| "the tokio node panicked")??;
    outcome.map(|()| println!("done"))
}
