//! What a node reports through the `metrics` facade when the `metrics`
//! feature is on (the names are listed in the README), and the same calls as
//! nothing at all when it is off, so the call sites need no `cfg`.
//!
//! Calls are observed where they start and end; a peer's connection counters
//! are not counted twice but sampled from [`crate::PeerStats`], whose owners
//! (the protocol for the current connection, the peer slot for the ended
//! ones) already keep them.

#[cfg(feature = "metrics")]
mod enabled;
#[cfg(feature = "metrics")]
pub(crate) use enabled::{count_failure, publish_peers, CallObserver, Telemetry};

#[cfg(not(feature = "metrics"))]
mod disabled;
#[cfg(not(feature = "metrics"))]
pub(crate) use disabled::{count_failure, CallObserver, Telemetry};

/// Which end of a call a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Side {
    /// This node made the call.
    Outgoing,
    /// A peer made the call and a handler here serves it.
    Incoming,
}

/// A single request or a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum CallKind {
    Request,
    Stream,
}
