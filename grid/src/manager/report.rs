//! Reporting a peer's failure: recorded in its slot (for stats, for
//! `wait_connected`'s error and for calls made meanwhile) and logged at WARN
//! at most once per interval per peer and kind.

use std::fmt::Display;

use grid_proto::Refusal;

use super::node::ManagerInner;
use crate::failure::FailureKind;
use crate::runtime::Runtime;
use crate::telemetry::count_failure;

/// The name failures of unknown parties are logged under.
const UNKNOWN_PEER: &str = "(not a peer)";

impl<R: Runtime> ManagerInner<R> {
    /// Records and logs a failure to connect to `peer`, or, if
    /// `established`, the end of its connection. `peer` is `None` when the
    /// other side never said who it is.
    pub(super) fn report_failure(
        &self,
        peer: Option<&str>,
        kind: FailureKind,
        established: bool,
        reason: &dyn Display,
    ) {
        let now = self.runtime.now();
        let slot = peer.and_then(|peer| self.peers.get(peer));
        if let Some(slot) = slot {
            slot.record_failure(kind, reason.to_string(), now);
        }
        let name = slot.map_or(UNKNOWN_PEER, |slot| &*slot.name);
        count_failure(name, kind);
        let what = kind.label();
        if established {
            // One line per disconnect is what an operator expects, and a
            // connection that was up cannot churn faster than its handshake.
            tracing::info!(node = %self.name, peer = %name, %reason, "disconnected");
            return;
        }
        // A peer on its way down says so to every dialer: routine, and its
        // disconnect was already logged at INFO.
        if kind == FailureKind::Refused(Refusal::ShuttingDown) {
            tracing::debug!(node = %self.name, peer = %name, %reason, "peer is shutting down");
            return;
        }
        // An unknown party is shown with the name it claimed, for the
        // operator to look up, but rate-limited as one.
        let shown = match (slot, peer) {
            (None, Some(claimed)) => format!("{UNKNOWN_PEER} claiming {claimed:?}"),
            _ => name.to_string(),
        };
        match self.log_limit.warn(name, what, now) {
            Some(suppressed) => tracing::warn!(
                node = %self.name,
                peer = %shown,
                failure = what,
                suppressed,
                %reason,
                "cannot connect to peer"
            ),
            None => tracing::debug!(
                node = %self.name,
                peer = %shown,
                failure = what,
                %reason,
                "cannot connect to peer"
            ),
        }
    }
}
