//! Where a connection is in its lifecycle. Each phase carries only the data
//! that exists while it lasts, so a combination such as a drain deadline on a
//! connection still handshaking cannot be written down.

use super::close::Closed;
use super::drain::Drain;
use super::handshaking::Handshake;

/// Lifecycle of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// Exchanging `Hello` and `Auth`; no call can be opened or received.
    Handshaking,
    /// Calls flow both ways.
    Established,
    /// This side is draining: new calls are refused both ways while calls in
    /// flight finish, then the connection closes.
    Draining,
    /// Closed; only the final frames remain to be written.
    Closed,
}

/// The lifecycle the connection runs: a [`ConnectionState`] with its data.
#[derive(Debug)]
pub(super) enum Phase {
    Handshaking(Handshake),
    Established,
    Draining(Drain),
    Closed(Closed),
}

impl Phase {
    /// The public projection, without the data.
    pub(super) fn state(&self) -> ConnectionState {
        match self {
            Phase::Handshaking(_) => ConnectionState::Handshaking,
            Phase::Established => ConnectionState::Established,
            Phase::Draining(_) => ConnectionState::Draining,
            Phase::Closed(_) => ConnectionState::Closed,
        }
    }

    /// Whether calls can be in flight, and so keepalive and call deadlines run.
    pub(super) fn is_open(&self) -> bool {
        matches!(self, Phase::Established | Phase::Draining(_))
    }
}
