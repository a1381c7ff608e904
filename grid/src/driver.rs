//! The task that moves one connection's bytes: socket to protocol, protocol to
//! socket, and the protocol's timer.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use futures_io::{AsyncRead, AsyncWrite};
use grid_proto::{CloseReason, PeerInfo};

use crate::runtime::{BoxIo, Timer};
use crate::shared::{Dispatched, Shared};

/// Size of the socket read buffer.
const READ_BUFFER: usize = 64 * 1024;

/// Size of a read that follows one into a large payload's own buffer.
const SHORT_READ: usize = 4096;

/// The driver stops taking buffers from the protocol while this many bytes wait
/// for the socket, so the protocol's own send-buffer limit applies.
const WRITE_QUEUE_LIMIT: usize = 256 * 1024;

/// Longest wait for the final frames of a closed connection to be written.
const CLOSE_FLUSH: Duration = Duration::from_secs(1);

/// Buffers written in one vectored write.
const MAX_IOVECS: usize = 64;

/// Rounds of read/dispatch/write in one poll before yielding to other tasks.
/// Few, so that a connection saturated by a bulk stream does not keep the
/// tasks of small calls on the same thread waiting (32 rounds of 64 KiB made
/// their latency five times worse).
const ROUNDS_PER_POLL: usize = 4;

/// Why [`Driver::poll_drive`] returned.
#[derive(Debug)]
pub(crate) enum Exit {
    /// The handshake completed.
    Connected(PeerInfo),
    /// The connection closed and its last bytes were written (or could not be).
    Closed(CloseReason),
}

/// Work the driver found for its owner: incoming calls to start.
pub(crate) trait Host: Send + Sync {
    /// Starts handlers for incoming calls.
    /// Takes the calls out of `dispatched`, leaving its buffers for reuse.
    fn on_dispatched(&self, shared: &Arc<Shared>, dispatched: &mut Dispatched);
}

/// Drives one connection.
pub(crate) struct Driver {
    shared: Arc<Shared>,
    io: BoxIo,
    timer: Box<dyn Timer>,
    read_buf: Box<[u8]>,
    writes: VecDeque<Bytes>,
    queued: usize,
    /// Reused between rounds so dispatching allocates nothing in steady state.
    dispatched: Dispatched,
    closed: Option<CloseReason>,
    /// Once closed, how long the final frames may take to leave.
    close_deadline: Option<Instant>,
    /// The protocol offers the rest of a large payload to read into.
    read_in_place: bool,
    /// The last read went into a payload's own buffer.
    read_in_place_last: bool,
    /// The deadline the timer was last polled for, and the waker it holds:
    /// polling it again for the same deadline and task would only re-register
    /// the waker, which costs a timer-wheel update per round.
    timer_polled: Option<(Instant, Waker)>,
    io_closed: bool,
}

impl Driver {
    pub(crate) fn new(shared: Arc<Shared>, io: BoxIo, timer: Box<dyn Timer>) -> Driver {
        Driver {
            shared,
            io,
            timer,
            read_buf: vec![0u8; READ_BUFFER].into_boxed_slice(),
            writes: VecDeque::new(),
            queued: 0,
            dispatched: Dispatched::default(),
            closed: None,
            close_deadline: None,
            read_in_place: false,
            read_in_place_last: false,
            timer_polled: None,
            io_closed: false,
        }
    }

    /// Runs until the handshake completes or the connection has closed.
    pub(crate) fn poll_drive(&mut self, cx: &mut Context<'_>, host: &dyn Host) -> Poll<Exit> {
        // The previous round left nothing to do but wait: all output taken and
        // written, the waker with the connection and the timer.
        let mut settled = false;
        for _ in 0..ROUNDS_PER_POLL {
            let mut progressed = false;
            let dispatched = &mut self.dispatched;
            let mut read_error = None;
            let mut read_bytes = 0;
            let mut read_in_place = 0;
            let mut locked = None;
            if self.closed.is_none() && self.read_in_place {
                // A large payload is being received: read straight into its
                // buffer, which only the lock reaches. A non-blocking read is
                // a copy at memory speed, never a wait.
                let mut inner = self.shared.lock();
                if let Some(space) = inner.proto.input_space() {
                    match Pin::new(&mut self.io).poll_read(cx, space) {
                        Poll::Ready(Ok(0)) => {
                            read_error = Some("connection closed by peer".to_string())
                        }
                        Poll::Ready(Ok(n)) => read_in_place = n,
                        Poll::Ready(Err(error)) => read_error = Some(error.to_string()),
                        Poll::Pending if settled => return Poll::Pending,
                        Poll::Pending => {}
                    }
                    locked = Some(inner);
                }
            }
            if self.closed.is_none() && locked.is_none() {
                // Right after a large payload, the next is likely large too:
                // a short read takes its header and lets the rest of it go
                // straight into its own buffer instead of through this one.
                let limit = if self.read_in_place_last {
                    SHORT_READ
                } else {
                    READ_BUFFER
                };
                match Pin::new(&mut self.io).poll_read(cx, &mut self.read_buf[..limit]) {
                    Poll::Ready(Ok(0)) => {
                        read_error = Some("connection closed by peer".to_string())
                    }
                    Poll::Ready(Ok(n)) => read_bytes = n,
                    Poll::Ready(Err(error)) => read_error = Some(error.to_string()),
                    // Anything new since then (a command, a timer) wakes this
                    // task again: no need to look under the lock.
                    Poll::Pending if settled => return Poll::Pending,
                    Poll::Pending => {}
                }
            }
            if read_in_place > 0 || read_bytes > 0 {
                self.read_in_place_last = read_in_place > 0;
            }
            let mut inner = locked.unwrap_or_else(|| self.shared.lock());
            let now = Instant::now();
            if read_in_place > 0 {
                inner.proto.handle_input_in_place(now, read_in_place);
                progressed = true;
            }
            if read_bytes > 0 {
                inner.proto.handle_input(now, &self.read_buf[..read_bytes]);
                progressed = true;
            }
            if let Some(reason) = read_error.take() {
                inner.proto.handle_transport_closed(reason);
                progressed = true;
            }
            if inner.proto.poll_timeout().is_some_and(|at| at <= now) {
                inner.proto.handle_timeout(now);
            }
            inner.dispatch(dispatched);
            if !dispatched.requests.is_empty() || !dispatched.streams.is_empty() {
                // Handlers start outside the lock, and before output is taken:
                // those that answer at once are written in this round. The
                // driver is running, so their answers need not wake it; it
                // takes output under the lock that sets its waker again.
                inner.clear_driver_waker();
                drop(inner);
                host.on_dispatched(&self.shared, dispatched);
                inner = self.shared.lock();
            }
            let mut output_taken = false;
            while self.queued < WRITE_QUEUE_LIMIT {
                let Some(bytes) = inner.proto.poll_transmit(now) else {
                    output_taken = true;
                    break;
                };
                self.queued += bytes.len();
                self.writes.push_back(bytes);
            }
            // Taking output can free send-buffer room (`Writable`): those
            // waiting for it hear now, not a round later.
            inner.dispatch(dispatched);
            let next_timeout = inner.proto.poll_timeout();
            inner.set_driver_waker(cx.waker());
            self.read_in_place = inner.proto.input_space().is_some();
            drop(inner);
            if let Some(reason) = dispatched.closed.take() {
                self.closed = Some(reason);
            }
            let connected = dispatched.connected.take();
            progressed |= self.write(cx);
            // The protocol reports `Connected` once per connection.
            if let Some(peer) = connected {
                return Poll::Ready(Exit::Connected(peer));
            }
            if let Some(reason) = &self.closed {
                // The final frames (Close, Reject) go out before the socket
                // closes, unless the socket failed or the peer stopped reading
                // (then they wait at most `CLOSE_FLUSH`, never forever).
                let deadline = *self
                    .close_deadline
                    .get_or_insert_with(|| Instant::now() + CLOSE_FLUSH);
                if self.writes.is_empty() || self.io_closed || Instant::now() >= deadline {
                    let _ = Pin::new(&mut self.io).poll_close(cx);
                    return Poll::Ready(Exit::Closed(reason.clone()));
                }
                progressed |= self.poll_timer(cx, deadline, now);
            }
            let expired = next_timeout.is_some_and(|at| self.poll_timer(cx, at, now));
            if std::mem::take(&mut self.dispatched.answered) && progressed {
                // A caller's answer arrived: let it run now, not after this
                // driver has worked through more input (a bulk stream's).
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            if !progressed && !expired {
                return Poll::Pending;
            }
            settled = output_taken
                && self.writes.is_empty()
                && !expired
                && self.dispatched.requests.is_empty()
                && self.dispatched.streams.is_empty();
        }
        // Plenty of work left: let other tasks run, then continue.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Arms the timer for `at`; whether it has expired.
    fn poll_timer(&mut self, cx: &mut Context<'_>, at: Instant, now: Instant) -> bool {
        if let Some((armed, waker)) = &self.timer_polled {
            if *armed == at && at > now && waker.will_wake(cx.waker()) {
                return false;
            }
        }
        self.timer.reset(at);
        let expired = self.timer.poll_expired(cx).is_ready();
        self.timer_polled = (!expired).then(|| (at, cx.waker().clone()));
        expired
    }

    /// Writes queued buffers until the socket would block; whether anything
    /// was written.
    fn write(&mut self, cx: &mut Context<'_>) -> bool {
        let mut wrote = false;
        while !self.writes.is_empty() && !self.io_closed {
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let mut count = 0;
            for (slot, bytes) in slices.iter_mut().zip(&self.writes) {
                *slot = IoSlice::new(bytes);
                count += 1;
            }
            match Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..count]) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                    self.fail_transport("write failed");
                    return wrote;
                }
                Poll::Ready(Ok(mut written)) => {
                    wrote = true;
                    self.queued -= written;
                    while written > 0 {
                        let Some(front) = self.writes.front_mut() else {
                            break;
                        };
                        if written >= front.len() {
                            written -= front.len();
                            self.writes.pop_front();
                        } else {
                            front.advance(written);
                            written = 0;
                        }
                    }
                }
                Poll::Pending => break,
            }
        }
        // Flushed even when the socket stopped taking bytes: a buffering
        // stream (TLS) must not sit on what it already accepted.
        if wrote && !self.io_closed {
            if let Poll::Ready(Err(_)) = Pin::new(&mut self.io).poll_flush(cx) {
                self.fail_transport("flush failed");
            }
        }
        wrote
    }

    fn fail_transport(&mut self, what: &str) {
        self.io_closed = true;
        self.writes.clear();
        self.queued = 0;
        let mut inner = self.shared.lock();
        inner.proto.handle_transport_closed(what);
        inner.wake_driver();
    }
}
