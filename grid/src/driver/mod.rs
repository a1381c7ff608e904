//! The task that moves one connection's bytes: socket to protocol, protocol to
//! socket, and the protocol's timer.
//!
//! Each poll of the driver runs rounds of the same steps: read the socket,
//! feed the protocol its input and the time, dispatch its events (starting
//! handlers for incoming calls), write its output, arm the timer for its next
//! deadline. After each round one pure decision ([`decide()`]) says what comes
//! next: another round, park until something wakes the driver, yield to other
//! tasks, or exit.
//!
//! # Locks, and who writes to the socket
//!
//! A connection has two locks: the connection's ([`Shared::lock`]: the
//! protocol and the call slots) and the [`Writer`]'s (the socket and its
//! write queue). When both are held, the connection's is taken first. Neither
//! is held across an await, and the socket is non-blocking, so whatever is
//! done under them is a copy, never a wait.
//!
//! The driver writes to the socket as a rule. A caller writes only its own
//! frame, and only when its request is the only call in flight and the
//! driver is parked with nothing queued: [`Writer`] holds that rule and why
//! bytes still leave in protocol order. The driver is the only reader.
//!
//! The other tasks of the connection see the driver through its
//! [`DriverLink`], under the connection's lock: running, or parked with the
//! waker that brings it back and the deadline its timer is armed for, or
//! woken by one of them and not yet run. A driver woken by a task lets the
//! other ready tasks run once before it writes, so that frames queued by
//! many tasks at once leave in one system call.
//!
//! # Closing
//!
//! Once the protocol has closed, the driver stops reading and writes the
//! final frames (`Close`, `Reject`) for at most [`CLOSE_FLUSH`]. If they left
//! and the peer may still be reading, it then shuts the write side and reads
//! and discards input until the peer closes its side, for a bounded time
//! ([`linger`]): dropping a socket with unread input would reset the
//! connection and could lose the `Close` before the peer reads it.

mod decide;
mod linger;
mod link;
mod read;
mod timer;
mod writer;

use std::sync::{Arc, MutexGuard};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use grid_proto::{CloseReason, PeerInfo};

pub(crate) use self::link::DriverLink;
pub(crate) use self::writer::Writer;

use self::decide::{decide, Next, Round};
use self::linger::{Linger, LingerEnd};
use self::read::{Read, Reader};
use self::timer::DriverTimer;
use self::writer::SocketFailed;
use crate::runtime::Timer;
use crate::shared::{Dispatched, Inner, Shared};

/// Longest wait for the final frames of a closed connection to be written.
const CLOSE_FLUSH: Duration = Duration::from_secs(1);

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

/// Where the connection is in its life, as its driver sees it.
enum Phase {
    /// Bytes move both ways.
    Open,
    /// The connection has closed: nothing more is read, and the final frames
    /// (Close, Reject) are written until they are out or `flush_deadline`.
    Closing {
        reason: CloseReason,
        flush_deadline: Instant,
    },
    /// The final frames are out: the write side is shut and input is
    /// discarded until the peer closes its side, within bounds.
    Lingering { reason: CloseReason, linger: Linger },
}

/// What a round leaves behind besides the values [`decide()`] looks at.
struct RoundDone {
    round: Round,
    /// The peer, if the handshake completed in this round.
    connected: Option<PeerInfo>,
    /// The socket failed while writing: the text says how.
    write_failed: Option<&'static str>,
}

/// Drives one connection.
pub(crate) struct Driver {
    shared: Arc<Shared>,
    reader: Reader,
    timer: DriverTimer,
    /// Reused between rounds so dispatching allocates nothing in steady state.
    dispatched: Dispatched,
    phase: Phase,
    /// The protocol's next deadline as the last round left it. A deadline
    /// set since then that is already due is found by that round's end
    /// instead: the timer armed for it has expired, which runs another round.
    next_timeout: Option<Instant>,
}

impl Driver {
    /// Drives the connection whose socket `shared` holds.
    pub(crate) fn new(shared: Arc<Shared>, timer: Box<dyn Timer>) -> Driver {
        Driver {
            shared,
            reader: Reader::new(),
            timer: DriverTimer::new(timer),
            dispatched: Dispatched::default(),
            phase: Phase::Open,
            next_timeout: None,
        }
    }

    /// Runs until the handshake completes or the connection has closed.
    pub(crate) fn poll_drive(&mut self, cx: &mut Context<'_>, host: &dyn Host) -> Poll<Exit> {
        if matches!(self.phase, Phase::Lingering { .. }) {
            return self.poll_linger(cx);
        }
        if matches!(self.phase, Phase::Open) && self.shared.lock().driver.take_woken() {
            // Woken by another task's work: the tasks woken with that one
            // (see `DriverLink::Woken`) queue theirs first. Runtimes run a
            // task that woke itself after the tasks already waiting.
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let mut rounds = 0;
        let mut park_if_socket_idle = false;
        loop {
            rounds += 1;
            let Some(done) = self.round(cx, host, rounds, park_if_socket_idle) else {
                return Poll::Pending;
            };
            let next = decide(&done.round);
            if let Some(what) = done.write_failed {
                // A connection being closed has nothing left to learn from
                // its socket's failure.
                if next != Next::Close {
                    self.fail_socket(what);
                }
            }
            match next {
                Next::Round {
                    park_if_socket_idle: settled,
                } => park_if_socket_idle = settled,
                Next::Park => return Poll::Pending,
                Next::Yield => {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                // `decide` says so only for a round that brought the peer.
                Next::Connected => {
                    return done
                        .connected
                        .map_or(Poll::Pending, |peer| Poll::Ready(Exit::Connected(peer)))
                }
                Next::Close => return self.close(cx),
            }
        }
    }

    /// Runs the steps of one round, the `rounds`th of this poll. `None` if
    /// the round stopped after the read: the socket had nothing and, as
    /// `park_if_socket_idle` says, anything new since the last round (a
    /// command, a timer) wakes the driver again, so there is no need to look
    /// under the lock.
    fn round(
        &mut self,
        cx: &mut Context<'_>,
        host: &dyn Host,
        rounds: usize,
        park_if_socket_idle: bool,
    ) -> Option<RoundDone> {
        let (read, locked) = match self.phase {
            Phase::Open => self.reader.read(&self.shared, cx),
            Phase::Closing { .. } | Phase::Lingering { .. } => (Read::Skipped, None),
        };
        let socket_waiting = matches!(read, Read::Waiting);
        if socket_waiting && park_if_socket_idle {
            return None;
        }
        let mut inner = locked.unwrap_or_else(|| self.shared.lock());
        let now = self.shared.now();

        let mut progressed = self.reader.feed(&mut inner.proto, read, now);
        // The deadline computed at the end of the last round, rather than
        // computed again: `handle_timeout` runs whatever is due by now.
        if self.next_timeout.is_some_and(|at| at <= now) {
            inner.proto.handle_timeout(now);
        }

        let inner = start_calls(&self.shared, inner, &mut self.dispatched, host);

        let written = write(&self.shared, inner, &mut self.dispatched, cx, now);
        self.next_timeout = written.next_timeout;
        self.reader.set_input_space(written.input_space);
        let write_failed = match written.result {
            Ok(wrote) => {
                progressed |= wrote;
                None
            }
            Err(SocketFailed(what)) => Some(what),
        };

        if let Some(reason) = self.dispatched.closed.take() {
            self.enter_closing(reason);
        }
        let flush_deadline = match &self.phase {
            Phase::Open | Phase::Lingering { .. } => None,
            Phase::Closing { flush_deadline, .. } => Some(*flush_deadline),
        };
        let flush_deadline_passed = flush_deadline.is_some_and(|at| self.shared.now() >= at);

        if let Some(at) = flush_deadline {
            progressed |= self.timer.arm(cx, at, now);
        }
        let timer_expired = written
            .next_timeout
            .is_some_and(|at| self.timer.arm(cx, at, now));

        let connected = self.dispatched.connected.take();
        Some(RoundDone {
            round: Round {
                rounds,
                progressed,
                socket_waiting,
                output_taken: written.output_taken,
                writes_done: written.writes_done,
                calls_left: !self.dispatched.requests.is_empty()
                    || !self.dispatched.streams.is_empty(),
                timer_expired,
                answered: std::mem::take(&mut self.dispatched.answered),
                others_in_flight: written.others_in_flight,
                connected: connected.is_some(),
                closing: flush_deadline.is_some(),
                flush_deadline_passed,
            },
            connected,
            write_failed,
        })
    }

    /// The protocol reported the connection closed: its final frames get
    /// `CLOSE_FLUSH` from now to leave.
    fn enter_closing(&mut self, reason: CloseReason) {
        match &mut self.phase {
            Phase::Closing { reason: known, .. } | Phase::Lingering { reason: known, .. } => {
                *known = reason
            }
            Phase::Open => {
                self.phase = Phase::Closing {
                    reason,
                    flush_deadline: self.shared.now() + CLOSE_FLUSH,
                }
            }
        }
    }

    /// Closes the socket of the closing connection, lingering first if that
    /// can help the peer read the final frames.
    fn close(&mut self, cx: &mut Context<'_>) -> Poll<Exit> {
        // `decide` says so only while closing.
        let Phase::Closing { reason, .. } = &self.phase else {
            return Poll::Pending;
        };
        let reason = reason.clone();
        let mut socket = self.shared.writer.lock();
        // Lingering is no use when the socket has ended or failed, when the
        // final frames never left (the peer stopped reading), or when the
        // peer was found unresponsive.
        let pointless = matches!(
            reason,
            CloseReason::Transport(_) | CloseReason::PeerTimeout(_)
        ) || socket.has_failed()
            || !socket.is_empty();
        if pointless {
            socket.close(cx);
            return Poll::Ready(Exit::Closed(reason));
        }
        drop(socket);
        self.phase = Phase::Lingering {
            reason,
            linger: Linger::new(self.shared.now()),
        };
        self.poll_linger(cx)
    }

    /// Moves the linger on; the connection's exit once the socket can go.
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<Exit> {
        let Phase::Lingering { reason, linger } = &mut self.phase else {
            return Poll::Pending;
        };
        let mut socket = self.shared.writer.lock();
        let end = ready!(linger.poll(
            &mut socket,
            self.reader.scratch(),
            &mut self.timer,
            self.shared.now(),
            cx,
        ));
        drop(socket);
        if end != LingerEnd::PeerClosed {
            tracing::debug!(?end, %reason, "dropping the socket before the peer closed its side");
        }
        Poll::Ready(Exit::Closed(reason.clone()))
    }

    /// The socket failed while the connection goes on: the protocol closes it,
    /// and the driver runs again to see that through.
    fn fail_socket(&self, what: &str) {
        let mut inner = self.shared.lock();
        inner.proto.handle_transport_closed(what);
        inner.wake_driver();
    }
}

/// Dispatches the protocol's events and starts handlers for incoming calls.
/// Handlers start outside the lock, and before output is taken: those that
/// answer at once are written in this round. Returns the lock, taken again.
fn start_calls<'s>(
    shared: &'s Arc<Shared>,
    mut inner: MutexGuard<'s, Inner>,
    dispatched: &mut Dispatched,
    host: &dyn Host,
) -> MutexGuard<'s, Inner> {
    inner.dispatch(dispatched);
    if dispatched.requests.is_empty() && dispatched.streams.is_empty() {
        return inner;
    }
    // The driver is running, so the handlers' answers need not wake it: it
    // takes output under the lock that parks it again.
    inner.driver.run();
    drop(inner);
    host.on_dispatched(shared, dispatched);
    let mut inner = shared.lock();
    // Sent under this one lock instead of one lock each.
    for (id, result) in dispatched.answers.drain(..) {
        inner.answer(id, result);
    }
    inner
}

/// What the write step did and saw.
struct Written {
    /// All the protocol's output was taken.
    output_taken: bool,
    /// Whether anything was written, or how the socket failed.
    result: Result<bool, SocketFailed>,
    /// Nothing waits to be written, here or in the protocol (or nothing can
    /// be).
    writes_done: bool,
    /// The protocol's next deadline, which the driver's link now names.
    next_timeout: Option<Instant>,
    /// Calls are still in flight.
    others_in_flight: bool,
    /// The protocol offers the rest of a large payload to read into.
    input_space: bool,
}

/// Takes the protocol's output and parks the driver's link under the lock,
/// then writes the output outside it.
fn write<'s>(
    shared: &'s Shared,
    mut inner: MutexGuard<'s, Inner>,
    dispatched: &mut Dispatched,
    cx: &mut Context<'_>,
    now: Instant,
) -> Written {
    // The writer's lock is kept from taking output until it is written: a
    // caller that comes in between leaves the writing to this driver.
    let mut socket = shared.writer.lock();
    // A handshake that completed this round is reported to the owner before
    // anything more leaves: an acceptor's proof then goes out only once the
    // node admitted the peer, so a refused dialer never counts itself
    // connected.
    let output_taken = dispatched.connected.is_none() && socket.take_output(&mut inner.proto, now);
    // Taking output can free send-buffer room (`Writable`): those waiting for
    // it hear now, not a round later.
    inner.dispatch(dispatched);
    let next_timeout = inner.proto.poll_timeout();
    let others_in_flight = inner.proto.in_flight() != (0, 0);
    inner.driver.park(cx.waker(), next_timeout);
    let input_space = inner.proto.input_space().is_some();
    drop(inner);
    let result = socket.write(cx);
    Written {
        output_taken,
        result,
        // Output the queue had no room for is still the protocol's: a close
        // must not take an empty queue for final frames that left.
        writes_done: (output_taken && socket.is_empty()) || socket.has_failed(),
        next_timeout,
        others_in_flight,
        input_space,
    }
}
