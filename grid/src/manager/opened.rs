//! A transport connection on its way to grid's handshake: its bytes, the
//! identity its transport verified, when it was opened, and who waits for
//! its admission.

use std::time::{Duration, Instant};

use futures_channel::oneshot;
use grid_proto::{Refusal, Timeouts};

use super::handshakes::Pending;
use super::outcome::AcceptOutcome;
use crate::identity::PeerIdentity;
use crate::runtime::BoxIo;

/// A connection ready for grid's handshake.
pub(super) struct Opened {
    pub(super) io: BoxIo,
    /// What the transport verified about the peer, if anything.
    pub(super) identity: Option<PeerIdentity>,
    /// When the transport connection was made: one handshake timeout covers
    /// the transport's handshake (TLS) and grid's together.
    pub(super) started: Instant,
    /// Told whether the peer was admitted (for [`super::Manager::accept`]).
    pub(super) outcome: Reporter,
    /// The incoming connection's place among those in their handshake,
    /// given back once the handshake is over.
    pub(super) pending: Option<Pending>,
}

/// Whoever waits to learn whether a connection was admitted, if anyone.
#[derive(Default)]
pub(super) struct Reporter(Option<oneshot::Sender<AcceptOutcome>>);

impl Reporter {
    /// Reports to `sender`.
    pub(super) fn to(sender: oneshot::Sender<AcceptOutcome>) -> Reporter {
        Reporter(Some(sender))
    }

    /// Says what became of the connection; only the first report counts.
    pub(super) fn report(&mut self, outcome: AcceptOutcome) {
        if let Some(sender) = self.0.take() {
            let _ = sender.send(outcome);
        }
    }
}

/// `timeouts` with the handshake timeout shortened by the time since
/// `started` that the transport's handshake already took.
pub(super) fn remaining(timeouts: &Timeouts, started: Instant, now: Instant) -> Timeouts {
    let spent = now.saturating_duration_since(started);
    Timeouts {
        handshake: timeouts
            .handshake
            .saturating_sub(spent)
            .max(Duration::from_millis(1)),
        ..timeouts.clone()
    }
}

/// Why a peer whose transport verified `identity` may not use the name
/// `claimed`, if it may not.
pub(super) fn identity_refusal(
    identity: Option<&PeerIdentity>,
    claimed: &str,
) -> Option<(Refusal, String)> {
    let identity = identity?;
    if identity.names(claimed) {
        return None;
    }
    Some((
        Refusal::IdentityMismatch,
        format!("the peer claims to be {claimed:?} but its verified identity names {identity}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_verified_identity_naming_another_node_is_refused() {
        assert_eq!(identity_refusal(None, "10.0.0.1:7000"), None);
        let identity = PeerIdentity::new(["10.0.0.1:7000"]);
        assert_eq!(identity_refusal(Some(&identity), "10.0.0.1:7000"), None);
        let (refusal, reason) = identity_refusal(Some(&identity), "10.0.0.2:7000").unwrap();
        assert_eq!(refusal, Refusal::IdentityMismatch);
        assert!(reason.contains("10.0.0.2:7000") && reason.contains("10.0.0.1:7000"));
    }
}
