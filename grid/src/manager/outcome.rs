//! What became of a connection handed to [`Manager::accept`](super::Manager::accept).

use grid_proto::{CloseReason, Refusal};

/// Whether a connection handed to [`Manager::accept`](super::Manager::accept)
/// was admitted.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AcceptOutcome {
    /// The peer authenticated and was admitted; the connection now serves
    /// calls until it closes.
    Admitted {
        /// The peer's node name.
        peer: String,
    },
    /// The peer authenticated but was refused (and told why).
    Refused {
        /// The node name the peer claimed.
        peer: String,
        /// Why it was refused.
        refusal: Refusal,
        /// The reason sent to the peer.
        reason: String,
    },
    /// The connection ended before its handshake completed (wrong secret,
    /// timeout, transport failure).
    Failed(CloseReason),
}

impl AcceptOutcome {
    /// Whether the connection was admitted.
    pub fn is_admitted(&self) -> bool {
        matches!(self, AcceptOutcome::Admitted { .. })
    }
}
