//! With the `metrics` feature: handles into the installed recorder, made
//! once per handler and kept, so a call costs two counter or histogram
//! updates and one clock read, not a registry lookup.
//!
//! Handles bind to the recorder installed when they are made: install it
//! before starting the node.

use std::sync::{Arc, OnceLock, RwLock};
use std::time::Instant;

use grid_proto::Error;
use metrics::{counter, gauge, histogram, Counter, Histogram, SharedString};
use rustc_hash::FxHashMap;

use super::{CallKind, Side};
use crate::failure::FailureKind;
use crate::handler::HandlerId;
use crate::peer_stats::{PeerState, PeerStats};
use crate::runtime::SharedClock;

/// How a call ended, as the `error` label says it; `abandoned` is a caller
/// that dropped its call's future before the answer.
const ERROR_KINDS: [&str; 16] = [
    "remote",
    "disconnected",
    "deadline_exceeded",
    "cancelled",
    "unknown_handler",
    "overloaded",
    "draining",
    "protocol",
    "too_large",
    "decode",
    "encode",
    "permission_denied",
    "internal",
    "unauthenticated",
    "other",
    "abandoned",
];
const ABANDONED: usize = 15;

fn error_kind(error: &Error) -> usize {
    match error {
        Error::Remote(_) => 0,
        Error::Disconnected => 1,
        Error::DeadlineExceeded => 2,
        Error::Cancelled => 3,
        Error::UnknownHandler => 4,
        Error::Overloaded => 5,
        Error::Draining => 6,
        Error::Protocol(_) => 7,
        Error::TooLarge { .. } => 8,
        Error::Decode(_) => 9,
        Error::Encode(_) => 10,
        Error::PermissionDenied(_) => 11,
        Error::Internal(_) => 12,
        Error::Unauthenticated(_) => 13,
        _ => 14,
    }
}

/// The handles of one (side, kind, handler).
struct CallHandles {
    labels: [(&'static str, SharedString); 3],
    duration: Histogram,
    /// Made on the first error of each kind: most never happen.
    errors: [OnceLock<Counter>; ERROR_KINDS.len()],
}

impl CallHandles {
    fn new(side: Side, kind: CallKind, handler: Option<HandlerId>) -> CallHandles {
        let side = match side {
            Side::Outgoing => "outgoing",
            Side::Incoming => "incoming",
        };
        let kind = match kind {
            CallKind::Request => "request",
            CallKind::Stream => "stream",
        };
        // A peer may name any of 65536 handlers; the ones this node does not
        // serve share one label, so a hostile peer cannot grow the registry.
        let handler = handler.map_or(SharedString::const_str("unknown"), |id| {
            SharedString::from(id.to_string())
        });
        let labels = [
            ("side", SharedString::const_str(side)),
            ("kind", SharedString::const_str(kind)),
            ("handler", handler),
        ];
        CallHandles {
            duration: histogram!("grid_call_duration_seconds", &labels),
            errors: Default::default(),
            labels,
        }
    }

    fn error(&self, index: usize) -> &Counter {
        self.errors[index].get_or_init(|| {
            let [side, kind, handler] = self.labels.clone();
            let error = ("error", SharedString::const_str(ERROR_KINDS[index]));
            counter!("grid_call_errors_total", &[side, kind, handler, error])
        })
    }
}

type Key = (Side, CallKind, Option<HandlerId>);

/// A node's call metric handles, made on first use.
#[derive(Default)]
pub(crate) struct Telemetry {
    calls: RwLock<FxHashMap<Key, Arc<(Counter, CallHandles)>>>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

impl Telemetry {
    pub(crate) fn new() -> Telemetry {
        Telemetry::default()
    }

    fn handles(&self, key: Key) -> Arc<(Counter, CallHandles)> {
        let known = self
            .calls
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned();
        known.unwrap_or_else(|| {
            let mut calls = self.calls.write().unwrap_or_else(|p| p.into_inner());
            calls
                .entry(key)
                .or_insert_with(|| {
                    let handles = CallHandles::new(key.0, key.1, key.2);
                    let started = counter!("grid_calls_total", &handles.labels);
                    Arc::new((started, handles))
                })
                .clone()
        })
    }

    /// Counts a call to `handler` (`None`: one this node does not serve)
    /// that starts now.
    pub(crate) fn start_now(
        &self,
        side: Side,
        kind: CallKind,
        handler: Option<HandlerId>,
        clock: &SharedClock,
    ) -> CallObserver {
        self.start(side, kind, handler, clock.now(), clock)
    }

    /// Counts a call to `handler` (`None`: one this node does not serve)
    /// that started at `started`; the observer records how it ends.
    pub(crate) fn start(
        &self,
        side: Side,
        kind: CallKind,
        handler: Option<HandlerId>,
        started: Instant,
        clock: &SharedClock,
    ) -> CallObserver {
        let handles = self.handles((side, kind, handler));
        handles.0.increment(1);
        CallObserver {
            open: Some(Open {
                handles,
                started,
                clock: clock.clone(),
            }),
        }
    }
}

struct Open {
    handles: Arc<(Counter, CallHandles)>,
    started: Instant,
    clock: SharedClock,
}

/// A call being observed. Dropped without [`finish`](Self::finish), the
/// call counts as abandoned.
#[derive(Default)]
pub(crate) struct CallObserver {
    open: Option<Open>,
}

impl std::fmt::Debug for CallObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallObserver")
            .field("open", &self.open.is_some())
            .finish()
    }
}

impl CallObserver {
    /// Records the call's duration, and its error if it failed.
    pub(crate) fn finish(&mut self, outcome: Result<(), &Error>) {
        self.record(outcome.map_err(error_kind));
    }

    fn record(&mut self, outcome: Result<(), usize>) {
        let Some(open) = self.open.take() else {
            return;
        };
        let handles = &open.handles.1;
        let elapsed = open.clock.now().saturating_duration_since(open.started);
        handles.duration.record(elapsed.as_secs_f64());
        if let Err(index) = outcome {
            handles.error(index).increment(1);
        }
    }
}

impl Drop for CallObserver {
    fn drop(&mut self) {
        self.record(Err(ABANDONED));
    }
}

/// Publishes each peer's connection gauges and counters from a snapshot of
/// its stats.
pub(crate) fn publish_peers(peers: &[PeerStats]) {
    for stats in peers {
        let peer = [("peer", SharedString::from(stats.peer.clone()))];
        let connected = matches!(stats.state, PeerState::Connected | PeerState::PeerDraining);
        gauge!("grid_peer_connected", &peer).set(f64::from(u8::from(connected)));
        let rtt = stats.protocol.rtt.map_or(0.0, |rtt| rtt.as_secs_f64());
        gauge!("grid_peer_rtt_seconds", &peer).set(rtt);
        for (direction, calls) in [
            ("outgoing", stats.protocol.outgoing_calls),
            ("incoming", stats.protocol.incoming_calls),
        ] {
            let labels = [peer[0].clone(), ("direction", direction.into())];
            gauge!("grid_peer_calls_in_flight", &labels).set(calls as f64);
        }
        gauge!("grid_peer_outbound_backlog_bytes", &peer)
            .set(stats.protocol.outbound_backlog as f64);
        gauge!("grid_peer_buffered_bytes", &peer).set(stats.protocol.buffered_bytes as f64);
        let totals = &stats.totals;
        for (name, value) in [
            ("grid_peer_bytes_sent_total", totals.bytes_sent),
            ("grid_peer_bytes_received_total", totals.bytes_received),
            ("grid_peer_messages_sent_total", totals.messages_sent),
            (
                "grid_peer_messages_received_total",
                totals.messages_received,
            ),
            (
                "grid_peer_refused_overloaded_total",
                totals.refused_overloaded,
            ),
            ("grid_peer_socket_writes_total", totals.socket_writes),
            ("grid_peer_connects_total", stats.connects),
            ("grid_peer_reconnects_total", stats.reconnects),
            ("grid_peer_dial_attempts_total", stats.dial_attempts),
        ] {
            counter!(name, &peer).absolute(value);
        }
    }
}

/// Counts a failure to connect to `peer`, or the end of its connection.
pub(crate) fn count_failure(peer: &str, kind: FailureKind) {
    let labels = [
        ("peer", SharedString::from(peer.to_string())),
        ("kind", SharedString::const_str(kind.code())),
    ];
    counter!("grid_peer_failures_total", &labels).increment(1);
}
