//! The hostile peer: a raw socket that completes a real handshake with its
//! own encoding and proofs, then sends whatever a test tells it to and reads
//! as fast, as slowly or as little as the attack needs.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::{select, Either};
use futures_util::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use futures_util::lock::Mutex;

use super::handshake::{proof, Hello, ACCEPTOR, DIALER};
use super::mailbox::{mailbox, Mailbox, Sender};
use super::wire::{encode_all, op, Decoder, Frame};
use crate::runtime::{sleep_until, BoxIo, Runtime};

/// How a connection ended, as the peer saw it on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The victim sent `Close` with this code and reason.
    Closed {
        /// The `Close` code (PROTOCOL.md §12.2, [`super::close_code`]).
        code: u32,
        /// The readable reason.
        reason: String,
    },
    /// The victim sent `Reject` with this reason.
    Rejected(String),
    /// The transport ended without a `Close` or `Reject`.
    Eof,
    /// Reading failed, or the victim sent bytes that are no frames.
    Failed(String),
    /// Nothing ended it within the time the test allowed.
    StillOpen,
}

/// What the reader saw, in order.
#[derive(Debug)]
enum Seen {
    Frame(Frame),
    Ended(Ending),
}

/// Runs `future`, giving up after `timeout`.
pub(super) async fn within<R: Runtime, T>(
    rt: &R,
    timeout: Duration,
    future: impl std::future::Future<Output = T>,
) -> Option<T> {
    let expiry = sleep_until(rt, Instant::now() + timeout);
    match futures_util::future::select(std::pin::pin!(future), std::pin::pin!(expiry)).await {
        futures_util::future::Either::Left((value, _)) => Some(value),
        futures_util::future::Either::Right(_) => None,
    }
}

/// The read side before a reader task owns it.
struct Unread {
    half: ReadHalf<BoxIo>,
    decoder: Decoder,
}

impl Unread {
    /// The next frame, reading as much as it takes.
    async fn frame(&mut self) -> Result<Frame, Ending> {
        let mut chunk = [0u8; 4096];
        loop {
            match self.decoder.next() {
                Ok(Some(frame)) => return Ok(frame),
                Ok(None) => {}
                Err(malformed) => return Err(Ending::Failed(malformed.0)),
            }
            match self.half.read(&mut chunk).await {
                Ok(0) => return Err(Ending::Eof),
                Ok(n) => self.decoder.push(&chunk[..n]),
                Err(error) => return Err(Ending::Failed(error.to_string())),
            }
        }
    }
}

/// A raw, established connection to the victim.
pub struct RawPeer<R: Runtime> {
    rt: R,
    writer: Arc<Mutex<WriteHalf<BoxIo>>>,
    unread: Option<Unread>,
    inbox: Option<Mailbox<Seen>>,
    /// Bytes per second the reader takes from the socket; 0 for no limit.
    pace: Arc<AtomicU64>,
    /// Dropped with the peer: the reader task then lets go of the socket, so
    /// a peer the test is done with does not stay alive answering pings.
    _hang_up: Sender<()>,
    hung_up: Option<Mailbox<()>>,
}

impl<R: Runtime> RawPeer<R> {
    /// Dials `addr` as node `name` and completes the handshake with `secret`;
    /// if the victim ends it first, how it did.
    pub async fn connect(
        rt: &R,
        addr: &str,
        name: &str,
        secret: &[u8],
        seed: u64,
    ) -> Result<RawPeer<R>, Ending> {
        let failed = |error: io::Error| Ending::Failed(error.to_string());
        let io = rt.connect(addr).await.map_err(failed)?;
        let (hang_up, hung_up) = mailbox();
        let (half, mut write) = io.split();
        let mut unread = Unread {
            half,
            decoder: Decoder::new(),
        };
        let own = Hello::dialer(name, seed).encode();
        write
            .write_all(&Frame::new(op::HELLO, 0, 0, own.clone()).encode())
            .await
            .map_err(failed)?;
        let victim_hello = match unread.frame().await? {
            frame if frame.op == op::HELLO => frame.payload,
            frame => return Err(handshake_ending(&frame)),
        };
        Hello::decode(&victim_hello).map_err(Ending::Failed)?;
        let auth = proof(secret, DIALER, &own, &victim_hello);
        write
            .write_all(&Frame::new(op::AUTH, 0, 0, auth.to_vec()).encode())
            .await
            .map_err(failed)?;
        match unread.frame().await? {
            frame if frame.op == op::AUTH => {
                if frame.payload != proof(secret, ACCEPTOR, &victim_hello, &own) {
                    return Err(Ending::Failed("the victim's proof does not verify".into()));
                }
            }
            frame => return Err(handshake_ending(&frame)),
        }
        // Own limit: the largest frame announced in our Hello.
        unread
            .decoder
            .set_limit(Hello::dialer(name, seed).max_frame_size);
        Ok(RawPeer {
            rt: rt.clone(),
            writer: Arc::new(Mutex::new(write)),
            unread: Some(unread),
            inbox: None,
            pace: Arc::new(AtomicU64::new(0)),
            _hang_up: hang_up,
            hung_up: Some(hung_up),
        })
    }

    /// Writes `frames` in one go.
    pub async fn send(&self, frames: &[Frame]) -> io::Result<()> {
        self.send_bytes(&encode_all(frames)).await
    }

    /// Writes raw bytes.
    pub(super) async fn send_bytes(&self, bytes: &[u8]) -> io::Result<()> {
        let mut writer = self.writer.lock().await;
        writer.write_all(bytes).await?;
        writer.flush().await
    }

    /// Shuts the write side and stops reading: the victim reads an end of
    /// stream, as from a peer that went away.
    pub async fn hang_up(self) {
        let mut writer = self.writer.lock().await;
        let _ = writer.close().await;
    }

    /// Starts reading in the background: every `Ping` is answered at once
    /// (the peer looks alive), the rest is kept for [`Self::next`].
    pub fn start_reading(&mut self) {
        let (Some(unread), Some(hung_up)) = (self.unread.take(), self.hung_up.take()) else {
            return;
        };
        let (sender, receiver) = mailbox();
        self.inbox = Some(receiver);
        self.rt.spawn(read_loop(
            self.rt.clone(),
            unread,
            self.writer.clone(),
            self.pace.clone(),
            sender,
            hung_up,
        ));
    }

    /// Limits reading to `bytes_per_second` (0: as fast as the socket gives).
    pub fn set_pace(&self, bytes_per_second: u64) {
        self.pace.store(bytes_per_second, Ordering::SeqCst);
    }

    /// The next frame other than a `Ping`, or how the connection ended;
    /// `None` if nothing came within `timeout`. Starts reading if needed.
    pub async fn next(&mut self, timeout: Duration) -> Option<Result<Frame, Ending>> {
        self.start_reading();
        let inbox = self.inbox.as_mut()?;
        match within(&self.rt, timeout, inbox.recv()).await? {
            Some(Seen::Frame(frame)) => Some(Ok(frame)),
            Some(Seen::Ended(ending)) => Some(Err(ending)),
            None => Some(Err(Ending::Eof)),
        }
    }

    /// Reads and discards frames until the connection ends, at most
    /// `timeout`; the frames seen on the way are returned with the ending.
    pub async fn ending(&mut self, timeout: Duration) -> (Ending, Vec<Frame>) {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                None => return (Ending::StillOpen, seen),
                Some(Ok(frame)) => seen.push(frame),
                Some(Err(ending)) => return (ending, seen),
            }
        }
    }

    /// Sends a `Ping` and waits for its `Pong`: proof that the victim still
    /// serves this connection. Other frames met on the way are returned.
    pub async fn ping(&mut self, id: u32, timeout: Duration) -> Result<Vec<Frame>, Ending> {
        self.send(&[Frame::new(op::PING, 0, id, Vec::new())])
            .await
            .map_err(|error| Ending::Failed(error.to_string()))?;
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                None => return Err(Ending::StillOpen),
                Some(Ok(frame)) if frame.op == op::PONG && frame.arg == id => return Ok(seen),
                Some(Ok(frame)) => seen.push(frame),
                Some(Err(ending)) => return Err(ending),
            }
        }
    }
}

/// How a frame other than the expected one ends the handshake.
fn handshake_ending(frame: &Frame) -> Ending {
    match frame.op {
        op::REJECT => Ending::Rejected(frame.text()),
        op::CLOSE => Ending::Closed {
            code: frame.arg,
            reason: frame.text(),
        },
        other => Ending::Failed(format!("unexpected op {other:#04x} in the handshake")),
    }
}

/// The reader task: reads at the current pace, answers pings, forwards the
/// rest, and reports how the connection ended.
async fn read_loop<R: Runtime>(
    rt: R,
    mut unread: Unread,
    writer: Arc<Mutex<WriteHalf<BoxIo>>>,
    pace: Arc<AtomicU64>,
    inbox: Sender<Seen>,
    mut hung_up: Mailbox<()>,
) {
    // A paced reader takes a tenth of its per-second budget every 100 ms, so
    // the victim sees a steady trickle rather than bursts.
    const TICK: Duration = Duration::from_millis(100);
    let mut chunk = vec![0u8; 64 * 1024];
    let ending = 'read: loop {
        loop {
            match unread.decoder.next() {
                Ok(Some(frame)) if frame.op == op::PING => {
                    let pong = Frame::new(op::PONG, 0, frame.arg, Vec::new()).encode();
                    let mut writer = writer.lock().await;
                    // A failed write shows up as the read side ending.
                    let _ = writer.write_all(&pong).await;
                }
                Ok(Some(frame)) => {
                    let ending = match frame.op {
                        op::CLOSE => Some(Ending::Closed {
                            code: frame.arg,
                            reason: frame.text(),
                        }),
                        op::REJECT => Some(Ending::Rejected(frame.text())),
                        _ => None,
                    };
                    if let Some(ending) = ending {
                        break 'read ending;
                    }
                    if !inbox.send(Seen::Frame(frame)) {
                        return;
                    }
                }
                Ok(None) => break,
                Err(malformed) => break 'read Ending::Failed(malformed.0),
            }
        }
        let rate = pace.load(Ordering::SeqCst);
        let limit = if rate == 0 {
            chunk.len()
        } else {
            usize::try_from(rate / 10)
                .unwrap_or(usize::MAX)
                .clamp(1, chunk.len())
        };
        let read = unread.half.read(&mut chunk[..limit]);
        let read = match select(std::pin::pin!(read), std::pin::pin!(hung_up.recv())).await {
            Either::Left((read, _)) => read,
            // The peer was dropped: nobody reads what follows.
            Either::Right(_) => return,
        };
        match read {
            Ok(0) => break Ending::Eof,
            Ok(n) => unread.decoder.push(&chunk[..n]),
            Err(error) => break Ending::Failed(error.to_string()),
        }
        if rate != 0 {
            sleep_until(&rt, Instant::now() + TICK).await;
        }
    };
    inbox.send(Seen::Ended(ending));
}
