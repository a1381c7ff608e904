//! The state one connection shares between its driver task and the tasks that
//! call through it or handle its incoming calls.
//!
//! One mutex guards the protocol state machine and the per-call slots. Nobody
//! holds it across an await or a socket operation that can wait: callers lock,
//! issue a command, record their waker and unlock; the driver locks to feed
//! input and dispatch events. The socket and its write queue have a lock of
//! their own (see [`crate::driver::Writer`]), taken after this one when both
//! are held. The socket is non-blocking, so a read into a large payload's buffer
//! or a lone call's write made under this lock is a copy, never a wait: a slow
//! consumer or a full socket never blocks anyone else on the lock, and the
//! reader never waits on the writer.

use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::Instant;

use bytes::Bytes;
use grid_proto::{
    CallId, CloseReason, CommandError, Connection as Proto, Error, Event, IncomingCall, PeerInfo,
};
use rustc_hash::FxHashMap;

use crate::driver::{DriverLink, Writer};
use crate::identity::PeerIdentity;
use crate::runtime::{BoxIo, SharedClock, Timer};

/// A single request's caller: its waker while it waits, then the outcome the
/// protocol handed over with [`Event::RequestEnded`].
#[derive(Debug)]
pub(crate) enum RequestSlot {
    Waiting(Option<Waker>),
    Done(Result<Bytes, Error>),
}

/// The wakers of a stream's two halves, in either role. Everything else about
/// the stream (its messages, credit and end) is the protocol's.
#[derive(Debug, Default)]
pub(crate) struct StreamSlot {
    pub(crate) recv_waker: Option<Waker>,
    pub(crate) send_waker: Option<Waker>,
    /// Halves still alive (send and receive).
    pub(crate) halves: u8,
}

impl StreamSlot {
    fn wake_all(&mut self) {
        if let Some(waker) = self.recv_waker.take() {
            waker.wake();
        }
        if let Some(waker) = self.send_waker.take() {
            waker.wake();
        }
    }
}

/// Tasks waiting for a call the peer opened to be cancelled (see
/// [`crate::Ctx::cancelled`]); whether and why it was is the protocol's. A
/// single request gets one only when a task first waits, so the many
/// handlers that never ask cost no table entry.
#[derive(Debug, Default)]
pub(crate) struct IncomingSlot {
    pub(crate) wakers: Vec<Waker>,
}

/// Everything behind the connection's lock.
pub(crate) struct Inner {
    pub(crate) proto: Proto,
    pub(crate) requests: FxHashMap<CallId, RequestSlot>,
    pub(crate) streams: FxHashMap<CallId, StreamSlot>,
    pub(crate) incoming: FxHashMap<CallId, IncomingSlot>,
    /// The driver: running, or parked and how to wake it.
    pub(crate) driver: DriverLink,
    /// Tasks waiting for room in the send buffer.
    pub(crate) writable_waiters: Vec<Waker>,
    /// Tasks waiting for the connection to close.
    closed_waiters: Vec<Waker>,
}

/// What the driver must do after dispatching events, outside the lock.
#[derive(Debug, Default)]
pub(crate) struct Dispatched {
    pub(crate) connected: Option<PeerInfo>,
    /// The peer's name, shared by the contexts of its calls: set once the
    /// handshake completes, and kept across rounds.
    pub(crate) peer_name: Arc<str>,
    /// Single requests to start.
    pub(crate) requests: Vec<IncomingCall>,
    /// Streams to start.
    pub(crate) streams: Vec<IncomingCall>,
    pub(crate) closed: Option<CloseReason>,
    /// A waiting caller was handed its answer.
    pub(crate) answered: bool,
    /// Answers of handlers that finished while being started, to be sent
    /// under the driver's next lock instead of one lock each.
    pub(crate) answers: Vec<(CallId, Result<Bytes, Error>)>,
}

impl Inner {
    /// Registers `waker` for when the send buffer has room again.
    pub(crate) fn wait_writable(&mut self, waker: &Waker) {
        if !self.writable_waiters.iter().any(|w| w.will_wake(waker)) {
            self.writable_waiters.push(waker.clone());
        }
    }

    /// Hands protocol events to whoever waits for them; returns what needs
    /// the driver's attention.
    pub(crate) fn dispatch(&mut self, out: &mut Dispatched) {
        while let Some(event) = self.proto.poll_event() {
            match event {
                Event::Connected(peer) => {
                    out.peer_name = peer.node_name.as_str().into();
                    out.connected = Some(peer);
                }
                Event::IncomingRequest(call) => out.requests.push(call),
                Event::IncomingStream(call) => out.streams.push(call),
                Event::RequestEnded { id, result } => {
                    if let Some(slot) = self.requests.get_mut(&id) {
                        if let RequestSlot::Waiting(Some(waker)) =
                            std::mem::replace(slot, RequestSlot::Done(result))
                        {
                            waker.wake();
                            out.answered = true;
                        }
                    }
                }
                Event::StreamReadable { id } => {
                    if let Some(waker) = self.streams.get_mut(&id).and_then(|s| s.recv_waker.take())
                    {
                        waker.wake();
                    }
                }
                Event::StreamWritable { id } => {
                    if let Some(waker) = self.streams.get_mut(&id).and_then(|s| s.send_waker.take())
                    {
                        waker.wake();
                    }
                }
                Event::StreamEnded { id } => {
                    if let Some(slot) = self.streams.get_mut(&id) {
                        slot.wake_all();
                    }
                }
                Event::IncomingCancelled { id, .. } => {
                    if let Some(slot) = self.incoming.get_mut(&id) {
                        for waker in slot.wakers.drain(..) {
                            waker.wake();
                        }
                    }
                    if let Some(slot) = self.streams.get_mut(&id) {
                        slot.wake_all();
                    }
                }
                Event::Writable => {
                    for waker in self.writable_waiters.drain(..) {
                        waker.wake();
                    }
                }
                // Visible in the stats; new calls fail with `Draining` in the
                // protocol. The operator sees a peer's drain start here and
                // its end as the disconnect.
                Event::PeerDraining => {
                    tracing::info!(peer = %out.peer_name, "peer is draining: new calls to it fail with Draining");
                }
                Event::Closed(reason) => {
                    out.closed = Some(reason);
                    for waker in self
                        .writable_waiters
                        .drain(..)
                        .chain(self.closed_waiters.drain(..))
                    {
                        waker.wake();
                    }
                }
            }
        }
    }

    /// Sends a single-request handler's answer and forgets the call. A call
    /// cancelled in the meantime sends nothing: answering only frees its slot.
    pub(crate) fn answer(&mut self, id: CallId, result: Result<Bytes, Error>) {
        if !self.incoming.is_empty() {
            self.incoming.remove(&id);
        }
        let sent = match result {
            Ok(response) => match self.proto.respond(id, response) {
                Err(CommandError::Call(error @ Error::TooLarge { .. })) => {
                    self.proto.fail(id, error)
                }
                other => other,
            },
            Err(error) => self.proto.fail(id, error),
        };
        if let Err(error) = sent {
            tracing::debug!(%error, "answer not sent");
        }
    }

    /// Ends a stream handler's call with its outcome and forgets the call.
    pub(crate) fn end_stream(&mut self, id: CallId, outcome: Result<(), Error>) {
        self.incoming.remove(&id);
        self.streams.remove(&id);
        let sent = match outcome {
            Ok(()) => self.proto.finish(id),
            Err(error) => self.proto.fail(id, error),
        };
        if let Err(error) = sent {
            tracing::debug!(%error, "stream end not sent");
        }
    }
}

/// One connection's shared state.
pub(crate) struct Shared {
    inner: Mutex<Inner>,
    /// The socket's write side; locked after `inner` when both are held,
    /// never before.
    pub(crate) writer: Writer,
    /// The runtime's clock and timers: the time the protocol is told, and
    /// timers for callers whose wait a deadline bounds.
    clock: SharedClock,
    /// What the transport verified about the peer; fixed for the
    /// connection's life, so read without the lock.
    pub(crate) identity: Option<PeerIdentity>,
}

impl Shared {
    /// A connection over `io`, whose transport verified the peer's
    /// `identity` if it verifies one.
    pub(crate) fn new(
        proto: Proto,
        io: BoxIo,
        clock: SharedClock,
        identity: Option<PeerIdentity>,
    ) -> Arc<Shared> {
        Arc::new(Shared {
            identity,
            writer: Writer::new(io),
            clock,
            inner: Mutex::new(Inner {
                proto,
                requests: FxHashMap::default(),
                streams: FxHashMap::default(),
                incoming: FxHashMap::default(),
                driver: DriverLink::default(),
                writable_waiters: Vec::new(),
                closed_waiters: Vec::new(),
            }),
        })
    }

    /// Locks the state. A panic while it was held (a bug in grid, since no user
    /// code runs under it) does not poison it for everyone else.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The connection's runtime clock.
    pub(crate) fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The time now, on the connection's runtime.
    pub(crate) fn now(&self) -> Instant {
        self.clock.now()
    }

    /// A timer on the connection's runtime that first expires at `deadline`.
    pub(crate) fn timer(&self, deadline: Instant) -> Box<dyn Timer> {
        self.clock.timer(deadline)
    }

    /// Resolves once the connection has closed.
    pub(crate) async fn closed(&self) {
        std::future::poll_fn(|cx| {
            let mut inner = self.lock();
            if inner.proto.is_closed() {
                return std::task::Poll::Ready(());
            }
            if !inner.closed_waiters.iter().any(|w| w.will_wake(cx.waker())) {
                inner.closed_waiters.push(cx.waker().clone());
            }
            std::task::Poll::Pending
        })
        .await
    }

    /// Runs `command` on the protocol and wakes the driver if it produced output.
    pub(crate) fn command<T>(&self, command: impl FnOnce(&mut Inner, Instant) -> T) -> T {
        let mut inner = self.lock();
        let result = command(&mut inner, self.now());
        inner.wake_driver_if_output();
        result
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // try_lock: formatting must never deadlock against a holder of the lock.
        let mut debug = f.debug_struct("Shared");
        if let Ok(inner) = self.inner.try_lock() {
            debug
                .field(
                    "peer",
                    &inner.proto.peer().map(|peer| peer.node_name.clone()),
                )
                .field("state", &inner.proto.state());
        }
        debug.finish_non_exhaustive()
    }
}
