//! The task that moves one connection's bytes: socket to protocol, protocol to
//! socket, and the protocol's timer.

use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use grid_proto::{CloseReason, PeerInfo};

use crate::runtime::Timer;
use crate::shared::{Dispatched, Shared};
use crate::transport::TransportFailed;

/// Size of the socket read buffer.
const READ_BUFFER: usize = 64 * 1024;

/// Size of a read that follows one into a large payload's own buffer.
const SHORT_READ: usize = 4096;

/// Longest wait for the final frames of a closed connection to be written.
const CLOSE_FLUSH: Duration = Duration::from_secs(1);

/// Rounds of read/dispatch/write in one poll before yielding to other tasks.
/// Few, so that a connection saturated by a bulk stream does not keep the
/// tasks of small calls on the same thread waiting (32 rounds of 64 KiB made
/// their latency five times worse). Not fewer: with 2, a small call's p99
/// under a bulk stream on one thread was 58 us instead of 40.
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
    timer: Box<dyn Timer>,
    read_buf: Box<[u8]>,
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
}

impl Driver {
    /// Drives the connection whose socket `shared` holds.
    pub(crate) fn new(shared: Arc<Shared>, timer: Box<dyn Timer>) -> Driver {
        Driver {
            shared,
            timer,
            read_buf: vec![0u8; READ_BUFFER].into_boxed_slice(),
            dispatched: Dispatched::default(),
            closed: None,
            close_deadline: None,
            read_in_place: false,
            read_in_place_last: false,
            timer_polled: None,
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
            // The socket holds the waker: no read is needed to register it.
            let mut read_waiting = false;
            let mut locked = None;
            let mut polled = None;
            if self.closed.is_none() && self.read_in_place {
                // A large payload is being received: read straight into its
                // buffer, which only the lock reaches. A non-blocking read is
                // a copy at memory speed, never a wait.
                let mut inner = self.shared.lock();
                if let Some(space) = inner.proto.input_space() {
                    polled = Some(self.shared.transport().poll_read(cx, space));
                    locked = Some(inner);
                }
            }
            if self.closed.is_none() && locked.is_none() {
                // Right after a large payload, the next is likely large too:
                // a short read takes its header and lets the rest of it go
                // straight into its own buffer instead of through this one.
                let read_limit = if self.read_in_place_last {
                    SHORT_READ
                } else {
                    READ_BUFFER
                };
                let buf = &mut self.read_buf[..read_limit];
                polled = Some(self.shared.transport().poll_read(cx, buf));
            }
            match polled {
                None => {}
                Some(Poll::Ready(Ok(0))) => {
                    read_error = Some("connection closed by peer".to_string())
                }
                Some(Poll::Ready(Ok(n))) if locked.is_some() => read_in_place = n,
                Some(Poll::Ready(Ok(n))) => read_bytes = n,
                Some(Poll::Ready(Err(error))) => read_error = Some(error.to_string()),
                // Anything new since then (a command, a timer) wakes this
                // task again: no need to look under the lock.
                Some(Poll::Pending) if settled => return Poll::Pending,
                Some(Poll::Pending) => read_waiting = true,
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
                for (id, result) in dispatched.answers.drain(..) {
                    inner.answer(id, result);
                }
            }
            let mut output_taken = false;
            let mut transport = self.shared.transport();
            while transport.has_room() {
                let Some(bytes) = inner
                    .proto
                    .wants_write()
                    .then(|| inner.proto.poll_transmit(now))
                    .flatten()
                else {
                    output_taken = true;
                    break;
                };
                transport.push(bytes);
            }
            // Taking output can free send-buffer room (`Writable`): those
            // waiting for it hear now, not a round later.
            inner.dispatch(dispatched);
            let next_timeout = inner.proto.poll_timeout();
            let others_in_flight = inner.proto.in_flight() != (0, 0);
            inner.set_driver_waker(cx.waker(), next_timeout);
            self.read_in_place = inner.proto.input_space().is_some();
            drop(inner);
            if let Some(reason) = dispatched.closed.take() {
                self.closed = Some(reason);
            }
            let connected = dispatched.connected.take();
            let written = transport.write(cx);
            let writes_done = transport.is_empty() || transport.has_failed();
            let close_deadline = self.closed.is_some().then(|| {
                *self
                    .close_deadline
                    .get_or_insert_with(|| Instant::now() + CLOSE_FLUSH)
            });
            if let (Some(reason), Some(deadline), None) = (&self.closed, close_deadline, &connected)
            {
                // The final frames (Close, Reject) go out before the socket
                // closes, unless the socket failed or the peer stopped reading
                // (then they wait at most `CLOSE_FLUSH`, never forever).
                if writes_done || Instant::now() >= deadline {
                    transport.close(cx);
                    return Poll::Ready(Exit::Closed(reason.clone()));
                }
            }
            drop(transport);
            match written {
                Ok(wrote) => progressed |= wrote,
                Err(TransportFailed(what)) => self.fail_transport(what),
            }
            // The protocol reports `Connected` once per connection.
            if let Some(peer) = connected {
                return Poll::Ready(Exit::Connected(peer));
            }
            if let Some(deadline) = close_deadline {
                progressed |= self.poll_timer(cx, deadline, now);
            }
            let expired = next_timeout.is_some_and(|at| self.poll_timer(cx, at, now));
            if std::mem::take(&mut self.dispatched.answered) && progressed && others_in_flight {
                // A caller's answer arrived while other calls (a bulk stream)
                // keep this driver busy: let the caller run now, not after the
                // driver has worked through more of their input. With nothing
                // else in flight there is nothing to get ahead of, and the
                // extra poll would only add to the call's latency.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            if !progressed && !expired {
                return Poll::Pending;
            }
            settled = output_taken
                && writes_done
                && !expired
                && self.dispatched.requests.is_empty()
                && self.dispatched.streams.is_empty();
            if settled && read_waiting {
                // Every source of work (socket, connection, timer) holds this
                // task's waker: another round would only find that out again.
                return Poll::Pending;
            }
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

    fn fail_transport(&mut self, what: &str) {
        let mut inner = self.shared.lock();
        inner.proto.handle_transport_closed(what);
        inner.wake_driver();
    }
}
