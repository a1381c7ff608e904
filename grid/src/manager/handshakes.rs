//! The bound on incoming connections still in their handshake. Each holds a
//! socket, a task and (with TLS) the TLS state until it authenticates or its
//! handshake timeout passes; without a bound, a flood of clients that
//! connect and say nothing would hold as many as the process has file
//! descriptors.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Default of [`ManagerBuilder::max_pending_handshakes`](crate::ManagerBuilder::max_pending_handshakes).
pub const DEFAULT_MAX_PENDING_HANDSHAKES: usize = 512;

/// Why an incoming connection was closed at once.
pub(super) const TOO_MANY_HANDSHAKES: &str =
    "too many incoming connections in their handshake (see ManagerBuilder::max_pending_handshakes)";

/// Incoming connections in their handshake, and how many may be.
#[derive(Debug)]
pub(super) struct Handshakes {
    pending: Arc<AtomicUsize>,
    max: usize,
}

impl Handshakes {
    pub(super) fn new(max: usize) -> Handshakes {
        Handshakes {
            pending: Arc::new(AtomicUsize::new(0)),
            max,
        }
    }

    /// A place for one more handshake, if there is room.
    pub(super) fn begin(&self) -> Option<Pending> {
        self.pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Pending(self.pending.clone()))
    }
}

/// One handshake's place; given back when dropped.
#[derive(Debug)]
pub(super) struct Pending(Arc<AtomicUsize>);

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_bounded_and_given_back() {
        let handshakes = Handshakes::new(2);
        let first = handshakes.begin().expect("room");
        let second = handshakes.begin().expect("room");
        assert!(handshakes.begin().is_none());
        drop(first);
        let third = handshakes.begin().expect("room again");
        assert!(handshakes.begin().is_none());
        drop((second, third));
        assert!(handshakes.begin().is_some());
    }
}
