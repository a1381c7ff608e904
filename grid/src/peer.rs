//! A peer as the application sees it: a cheap handle that calls through
//! whichever connection to that peer is current, and fails fast without one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::time::{Duration, Instant};

use bytes::Bytes;
use grid_proto::{Error, Stats};

use crate::peer_stats::{PeerState, PeerStats, PeerTotals};

use crate::call::Request;
use crate::deadline::CallDeadline;
use crate::failure::{FailureKind, PeerFailure};
use crate::handler::HandlerId;
use crate::runtime::SharedClock;
use crate::shared::Shared;
use crate::stream::{StreamRequest, DEFAULT_STREAM_WINDOW};
use crate::telemetry::{CallKind, CallObserver, Side, Telemetry};
use crate::typed::{Single, Streaming, TypedRequest, TypedStreamRequest};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The manager's record of one peer.
pub(crate) struct PeerSlot {
    pub(crate) name: Arc<str>,
    current: Mutex<Current>,
    /// Connections established to this peer after the first.
    pub(crate) reconnects: AtomicU64,
    /// Connections established in total.
    pub(crate) connects: AtomicU64,
    /// Times this node dialed the peer.
    pub(crate) dial_attempts: AtomicU64,
    /// The node's runtime clock: a call's deadline counts from its creation.
    clock: SharedClock,
    /// The node's metric handles.
    telemetry: Arc<Telemetry>,
}

#[derive(Default)]
struct Current {
    shared: Option<Arc<Shared>>,
    waiters: Vec<Waker>,
    /// When a newcomer last replaced a live connection.
    last_replaced: Option<Instant>,
    /// The instance whose live connection that newcomer replaced: if it comes
    /// back within the interval, it takes the name back at once.
    displaced: Option<u64>,
    /// When a displaced instance last took its name back.
    last_restored: Option<Instant>,
    /// A newcomer was turned away since the last replacement and said so at
    /// WARN; later ones in the same interval are logged at DEBUG.
    refusal_logged: bool,
    /// The last failure to connect, or the last disconnect.
    failure: Option<PeerFailure>,
    /// A connection was installed since `failure`: the next failure starts
    /// a new streak.
    connected_since_failure: bool,
    /// When the current connection was installed.
    connected_since: Option<Instant>,
    /// The counters of the connections that have ended. Read together with
    /// the current connection's, under this lock, so that a connection
    /// ending between the two reads is never counted twice.
    retired: PeerTotals,
}

/// What [`PeerSlot::install`] did with a new connection.
pub(crate) enum Install {
    /// Installed where no live connection was.
    Fresh,
    /// Installed in place of a live connection, returned to be closed.
    Replaced(Arc<Shared>),
    /// Not installed: a live connection was replaced too recently, and the
    /// current one stays. `first` if this is the first newcomer turned away
    /// since that replacement.
    TooSoon {
        /// The first newcomer turned away since the last replacement.
        first: bool,
    },
}

fn within(at: Option<Instant>, now: Instant, interval: Duration) -> bool {
    at.is_some_and(|at| now.saturating_duration_since(at) < interval)
}

impl PeerSlot {
    pub(crate) fn new(name: &str, clock: SharedClock, telemetry: Arc<Telemetry>) -> Arc<PeerSlot> {
        Arc::new(PeerSlot {
            name: name.into(),
            clock,
            telemetry,
            current: Mutex::new(Current::default()),
            reconnects: AtomicU64::new(0),
            connects: AtomicU64::new(0),
            dial_attempts: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The connection calls go through, if one is established.
    pub(crate) fn current(&self) -> Option<Arc<Shared>> {
        self.lock().shared.clone()
    }

    /// Makes `shared`, a connection to instance `instance` of the peer, the
    /// current connection; returns the one it replaces.
    ///
    /// A live connection is replaced at most once per `min_interval`: any
    /// node with the cluster secret can claim any name, and each replacement
    /// fails the calls in flight on the connection it replaces, so a newcomer
    /// inside the interval is turned away instead. The instance a replacement
    /// displaced may take its name back once within that interval: without
    /// that, a stream of impostors that each hang up soon after would keep the
    /// real node out, taking the slot whenever it is empty and then holding it
    /// as the most recent replacement.
    pub(crate) fn install(
        &self,
        shared: Arc<Shared>,
        instance: u64,
        now: Instant,
        min_interval: Duration,
    ) -> Install {
        let mut current = self.lock();
        let holder = current.shared.as_ref().and_then(|existing| {
            let existing = existing.lock();
            let live = !existing.proto.is_closed();
            live.then(|| existing.proto.peer().map(|peer| peer.instance_id))
        });
        if let Some(holder) = holder {
            if within(current.last_replaced, now, min_interval) {
                let restores = current.displaced == Some(instance)
                    && holder != Some(instance)
                    && !within(current.last_restored, now, min_interval);
                if !restores {
                    let first = !std::mem::replace(&mut current.refusal_logged, true);
                    return Install::TooSoon { first };
                }
                current.displaced = None;
                current.last_restored = Some(now);
            } else {
                current.displaced = holder;
                current.last_replaced = Some(now);
                current.refusal_logged = false;
            }
        }
        if self.connects.fetch_add(1, Ordering::Relaxed) > 0 {
            self.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        current.connected_since_failure = true;
        current.connected_since = Some(now);
        let old = current.shared.replace(shared);
        for waker in current.waiters.drain(..) {
            waker.wake();
        }
        match old {
            Some(old) if holder.is_some() => Install::Replaced(old),
            _ => Install::Fresh,
        }
    }

    /// Adds the counters of `shared`, an installed connection whose driver
    /// has ended, to the peer's totals, and forgets it if it is still the
    /// current connection.
    pub(crate) fn retire(&self, shared: &Arc<Shared>) {
        let mut current = self.lock();
        let (stats, socket_writes) = connection_counters(shared);
        current.retired.add(&stats, socket_writes);
        if current
            .shared
            .as_ref()
            .is_some_and(|existing| Arc::ptr_eq(existing, shared))
        {
            current.shared = None;
            current.connected_since = None;
        }
    }

    /// The peer's statistics now.
    pub(crate) fn stats(&self) -> PeerStats {
        let current = self.lock();
        let (state, protocol, socket_writes) = match &current.shared {
            Some(shared) => {
                // One lock for the state and the counters, so they agree.
                let (state, stats) = {
                    let inner = shared.lock();
                    let state = if inner.proto.is_closed() {
                        PeerState::Disconnected
                    } else if inner.proto.is_peer_draining() {
                        PeerState::PeerDraining
                    } else {
                        PeerState::Connected
                    };
                    (state, inner.proto.stats())
                };
                (state, stats, shared.writer.lock().write_calls())
            }
            None => (PeerState::Disconnected, Stats::default(), 0),
        };
        let mut totals = current.retired;
        totals.add(&protocol, socket_writes);
        PeerStats {
            peer: self.name.to_string(),
            state,
            protocol,
            socket_writes,
            totals,
            connects: self.connects.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            dial_attempts: self.dial_attempts.load(Ordering::Relaxed),
            connected_since: current.connected_since,
            last_failure: current.failure.clone(),
            taken_at: self.clock.now(),
        }
    }

    /// Records a failure to connect, or a disconnect, at `now`.
    pub(crate) fn record_failure(&self, kind: FailureKind, reason: String, now: Instant) {
        let mut current = self.lock();
        let streak = !std::mem::replace(&mut current.connected_since_failure, false);
        match &mut current.failure {
            Some(last) if streak && last.kind == kind => {
                last.reason = reason;
                last.count += 1;
            }
            failure => {
                *failure = Some(PeerFailure {
                    kind,
                    reason,
                    since: now,
                    count: 1,
                })
            }
        }
    }

    /// The last failure recorded.
    pub(crate) fn last_failure(&self) -> Option<PeerFailure> {
        self.lock().failure.clone()
    }

    /// The error of a call made while no connection is up: the peer's refusal
    /// of this node's secret while that is why, else `Disconnected`.
    fn unconnected_error(&self) -> Error {
        let current = self.lock();
        match &current.failure {
            Some(failure)
                if failure.kind == FailureKind::SecretRefused
                    && !current.connected_since_failure =>
            {
                Error::Unauthenticated(format!(
                    "{:?} refused this node's cluster secret (in {} attempts in a row); check that every node has the same secret",
                    self.name, failure.count
                ))
            }
            _ => Error::Disconnected,
        }
    }

    /// Registers `waker` to be woken at the next install; `true` if connected now.
    pub(crate) fn poll_connected(&self, waker: &Waker) -> bool {
        let mut current = self.lock();
        // A connection that closed but whose driver has not uninstalled it yet
        // does not count.
        if current
            .shared
            .as_ref()
            .is_some_and(|shared| !shared.lock().proto.is_closed())
        {
            return true;
        }
        if !current.waiters.iter().any(|w| w.will_wake(waker)) {
            current.waiters.push(waker.clone());
        }
        false
    }
}

/// A handle to one peer. Cheap to clone; calls go through the peer's current
/// connection and fail at once with [`Error::Disconnected`] while there is none.
#[derive(Clone)]
pub struct Peer {
    pub(crate) slot: Arc<PeerSlot>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("peer", &self.slot.name)
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl Peer {
    /// The peer's node name.
    pub fn peer(&self) -> &str {
        &self.slot.name
    }

    /// Whether a connection to the peer is established now.
    pub fn is_connected(&self) -> bool {
        self.slot.current().is_some_and(|shared| {
            let inner = shared.lock();
            !inner.proto.is_closed()
        })
    }

    fn shared(&self) -> Result<Arc<Shared>, Error> {
        self.slot
            .current()
            .ok_or_else(|| self.slot.unconnected_error())
    }

    /// A single request to `handler`; `.await` it. Add `.subroute(..)` or
    /// `.timeout(..)` first if needed.
    pub fn request(&self, handler: HandlerId, payload: impl Into<Bytes>) -> Request {
        let now = self.slot.clock.now();
        Request {
            shared: self.shared(),
            handler,
            subroute: Bytes::new(),
            payload: payload.into(),
            deadline: CallDeadline::starting_at(now),
            observer: self.observe(CallKind::Request, handler, now),
        }
    }

    fn observe(&self, kind: CallKind, handler: HandlerId, now: Instant) -> CallObserver {
        let slot = &self.slot;
        slot.telemetry
            .start(Side::Outgoing, kind, Some(handler), now, &slot.clock)
    }

    /// A stream to `handler` with an initial payload; `.open().await` it.
    pub fn stream(&self, handler: HandlerId, payload: impl Into<Bytes>) -> StreamRequest {
        let now = self.slot.clock.now();
        StreamRequest {
            shared: self.shared(),
            handler,
            subroute: Bytes::new(),
            payload: payload.into(),
            deadline: CallDeadline::starting_at(now),
            window: DEFAULT_STREAM_WINDOW,
            observer: self.observe(CallKind::Stream, handler, now),
        }
    }

    /// A typed single request (see [`crate::typed`]); `.await` it.
    pub fn call<Req: Serialize, Resp, E>(
        &self,
        def: &Single<Req, Resp, E>,
        request: &Req,
    ) -> TypedRequest<Resp, E> {
        TypedRequest::new(self.request(def.id(), Bytes::new()), def, request)
    }

    /// A typed stream (see [`crate::typed`]); `.open().await` it.
    pub fn typed_stream<
        Init: Serialize,
        In: Serialize,
        Out: DeserializeOwned,
        E: DeserializeOwned,
    >(
        &self,
        def: &Streaming<Init, In, Out, E>,
        init: &Init,
    ) -> TypedStreamRequest<In, Out, E> {
        TypedStreamRequest::new(self.stream(def.id(), Bytes::new()), def, init)
    }

    /// Counters of the current connection and of the peer's history.
    pub fn stats(&self) -> PeerStats {
        self.slot.stats()
    }
}

/// A connection's protocol counters and socket writes.
fn connection_counters(shared: &Shared) -> (Stats, u64) {
    let stats = shared.lock().proto.stats();
    let socket_writes = shared.writer.lock().write_calls();
    (stats, socket_writes)
}

/// The old name of [`Peer`]: it is a handle to a peer, not a connection.
#[deprecated(note = "renamed to `Peer`")]
pub type Connection = Peer;

/// The old name of [`PeerState`].
#[deprecated(note = "renamed to `PeerState`")]
pub type ConnectionState = PeerState;

/// The old name of [`PeerStats`].
#[deprecated(note = "renamed to `PeerStats`")]
pub type ConnectionStats = PeerStats;

/// How long [`crate::Manager::wait_connected`] waits by default.
pub const DEFAULT_CONNECT_WAIT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{Clock, Timer};

    /// A clock for a slot whose calls are never made: the tests pass the
    /// time to the slot themselves.
    struct Unused;

    impl Clock for Unused {
        fn now(&self) -> Instant {
            Instant::now()
        }
        fn timer(&self, _deadline: Instant) -> Box<dyn Timer> {
            unreachable!("no call waits in these tests")
        }
    }

    fn slot() -> Arc<PeerSlot> {
        PeerSlot::new("b", Arc::new(Unused), Default::default())
    }

    #[test]
    fn failures_of_one_kind_in_a_row_keep_their_start_and_count() {
        let slot = slot();
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(5);
        slot.record_failure(FailureKind::Dial, "refused".into(), t0);
        slot.record_failure(FailureKind::Dial, "reset".into(), later);
        let failure = slot.last_failure().unwrap();
        assert_eq!((failure.since, failure.count), (t0, 2));
        assert_eq!(failure.reason, "reset");
        // Another kind starts a new streak.
        slot.record_failure(FailureKind::Handshake, "timed out".into(), later);
        let failure = slot.last_failure().unwrap();
        assert_eq!(
            (failure.kind, failure.since, failure.count),
            (FailureKind::Handshake, later, 1)
        );
    }

    #[test]
    fn only_a_refused_secret_makes_calls_fail_without_retry() {
        let slot = slot();
        assert_eq!(slot.unconnected_error(), Error::Disconnected);
        let now = Instant::now();
        slot.record_failure(FailureKind::PeerUnauthenticated, "bad proof".into(), now);
        assert_eq!(slot.unconnected_error(), Error::Disconnected);
        slot.record_failure(FailureKind::SecretRefused, "refused".into(), now);
        let error = slot.unconnected_error();
        assert!(
            matches!(&error, Error::Unauthenticated(text) if text.contains("\"b\"")),
            "{error:?}"
        );
        assert!(!error.is_retryable());
        slot.record_failure(FailureKind::Dial, "unreachable".into(), now);
        assert_eq!(slot.unconnected_error(), Error::Disconnected);
    }
}
