//! Why a peer is not connected: the last failure a node saw for a peer, kept
//! in its peer slot for [`PeerStats`](crate::PeerStats), for
//! [`WaitError`](crate::WaitError) and for the error of calls made while
//! it lasts.

use std::fmt;
use std::time::Instant;

use grid_proto::{CloseReason, Refusal};

/// What kind of failure a peer's last one was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// The peer refused this node's proof of the cluster secret: calls fail
    /// with [`Error::Unauthenticated`](crate::Error::Unauthenticated) until a
    /// connection succeeds.
    SecretRefused,
    /// The peer's proof of the cluster secret did not verify here. Calls
    /// still fail with the retryable `Disconnected`: anyone who can reach
    /// this node can claim a peer's name without the secret.
    PeerUnauthenticated,
    /// An authenticated connection was refused (not a peer, wrong side,
    /// shutting down, replaced too often), by this node or by the peer.
    Refused(Refusal),
    /// The transport could not be opened (connect error or timeout).
    Dial,
    /// The handshake failed otherwise (timeout, version, malformed frames).
    Handshake,
    /// An established connection closed.
    Disconnected,
}

impl FailureKind {
    /// The kind of a connection's close reason; `established` says whether
    /// the handshake had completed.
    pub(crate) fn of(reason: &CloseReason, established: bool) -> FailureKind {
        match reason {
            CloseReason::SecretRefused(_) => FailureKind::SecretRefused,
            CloseReason::PeerUnauthenticated => FailureKind::PeerUnauthenticated,
            CloseReason::Refused(refusal, _) => FailureKind::Refused(*refusal),
            _ if established => FailureKind::Disconnected,
            _ => FailureKind::Handshake,
        }
    }

    /// A snake_case name, for metric labels and serialized stats.
    pub(crate) fn code(self) -> &'static str {
        match self {
            FailureKind::SecretRefused => "secret_refused",
            FailureKind::PeerUnauthenticated => "peer_unauthenticated",
            FailureKind::Refused(_) => "refused",
            FailureKind::Dial => "dial",
            FailureKind::Handshake => "handshake",
            FailureKind::Disconnected => "disconnected",
        }
    }

    /// The refusal's snake_case name, for a refusal.
    pub(crate) fn refusal_code(self) -> Option<&'static str> {
        let FailureKind::Refused(refusal) = self else {
            return None;
        };
        Some(match refusal {
            Refusal::NotAPeer => "not_a_peer",
            Refusal::WrongSide => "wrong_side",
            Refusal::ShuttingDown => "shutting_down",
            Refusal::Replaced => "replaced",
            Refusal::ReplacingTooOften => "replacing_too_often",
            Refusal::IdentityMismatch => "identity_mismatch",
            _ => "other",
        })
    }

    /// A short name for logs and rate limiting.
    pub(crate) fn label(self) -> &'static str {
        match self {
            FailureKind::SecretRefused => "secret refused",
            FailureKind::PeerUnauthenticated => "peer unauthenticated",
            FailureKind::Refused(_) => "refused",
            FailureKind::Dial => "dial failed",
            FailureKind::Handshake => "handshake failed",
            FailureKind::Disconnected => "disconnected",
        }
    }
}

/// The last failure seen for a peer, and since when failures of that kind
/// have been happening without a connection in between.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerFailure {
    /// What kind of failure.
    pub kind: FailureKind,
    /// The reason, as the operator reads it (the most recent one).
    pub reason: String,
    /// The first failure of this kind since the last connection, on the
    /// runtime's clock.
    pub since: Instant,
    /// Failures of this kind in a row since then.
    pub count: u64,
}

impl fmt::Display for PeerFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.reason)?;
        if self.count > 1 {
            write!(f, " ({} times in a row)", self.count)?;
        }
        Ok(())
    }
}
