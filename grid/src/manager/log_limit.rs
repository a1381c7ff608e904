//! Rate-limited WARNs about failing peers: a peer that keeps failing the same
//! way (wrong secret, refused, unreachable) is reported at WARN once per
//! interval, with how many were let pass at DEBUG since.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often one peer's failures of one kind are reported at WARN.
pub(super) const WARN_INTERVAL: Duration = Duration::from_secs(30);

/// A peer's name and the kind of failure.
type Key = (String, &'static str);

/// Per (peer, kind): when the last WARN was, and how many were suppressed since.
#[derive(Default)]
pub(super) struct LogLimit {
    entries: Mutex<HashMap<Key, (Instant, u64)>>,
}

impl LogLimit {
    /// `Some(suppressed)` if this failure is to be logged at WARN, with the
    /// number logged at DEBUG since the last WARN; `None` for DEBUG.
    ///
    /// `peer` must come from a bounded set (configured peers, or one
    /// placeholder for anyone else): names an unauthenticated party claims
    /// would otherwise grow the map without bound.
    pub(super) fn warn(&self, peer: &str, kind: &'static str, now: Instant) -> Option<u64> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get_mut(&(peer.to_string(), kind)) {
            Some((last, suppressed)) => {
                if now.saturating_duration_since(*last) >= WARN_INTERVAL {
                    *last = now;
                    Some(std::mem::take(suppressed))
                } else {
                    *suppressed += 1;
                    None
                }
            }
            None => {
                entries.insert((peer.to_string(), kind), (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_warn_per_interval_per_peer_and_kind_with_the_count_suppressed() {
        let limit = LogLimit::default();
        let t0 = Instant::now();
        assert_eq!(limit.warn("a", "dial failed", t0), Some(0));
        assert_eq!(
            limit.warn("a", "dial failed", t0 + Duration::from_secs(1)),
            None
        );
        assert_eq!(
            limit.warn("a", "dial failed", t0 + Duration::from_secs(2)),
            None
        );
        assert_eq!(limit.warn("b", "dial failed", t0), Some(0));
        assert_eq!(limit.warn("a", "refused", t0), Some(0));
        assert_eq!(limit.warn("a", "dial failed", t0 + WARN_INTERVAL), Some(2));
        assert_eq!(limit.warn("a", "dial failed", t0 + WARN_INTERVAL), None);
    }
}
