//! A held lock as its holder sees it.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use futures_channel::oneshot;

use crate::clock::SharedClock;
use crate::error::Lost;
use crate::lease::{LeaseState, Stop};
use crate::locker::Locker;
use crate::mode::Mode;
use crate::round;
use crate::tally::Tally;
use crate::timing::LeaseTiming;
use crate::wire::UnlockRequest;

/// A lock held by this client, kept alive by a background refresh.
///
/// Rely on the lock only while [`is_held`](Self::is_held) (or
/// [`check`](Self::check)) says so, checked before each action it guards,
/// and finish that action within [`LeaseTiming::margin`]. Once it says no,
/// another client may get the lock soon.
///
/// Dropping the guard releases the lock in the background;
/// [`unlock`](Self::unlock) releases it and waits for the servers.
#[must_use = "dropping the guard releases the lock"]
pub struct LockGuard {
    pub(crate) name: String,
    pub(crate) mode: Mode,
    pub(crate) uid: u64,
    pub(crate) state: Arc<LeaseState>,
    pub(crate) clock: SharedClock,
    pub(crate) lockers: Arc<[Locker]>,
    pub(crate) timing: LeaseTiming,
    pub(crate) stop: Option<oneshot::Sender<Stop>>,
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("name", &self.name)
            .field("mode", &self.mode)
            .field("uid", &self.uid)
            .field("held", &self.is_held())
            .finish()
    }
}

impl LockGuard {
    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The id this acquisition holds the lock under at the servers.
    pub fn uid(&self) -> u64 {
        self.uid
    }

    /// Whether the holder may rely on the lock now.
    pub fn is_held(&self) -> bool {
        self.check().is_ok()
    }

    /// `Ok` with the instant until which the holder may rely on the lock,
    /// or why it may not. Read from the clock each time, so it turns false
    /// on time even if the refresh task is slow to run.
    pub fn check(&self) -> Result<Instant, Lost> {
        self.state.check(self.clock.now())
    }

    /// Resolves once the lock is lost: a refresh round failed to reach a
    /// quorum, or its validity ran out first. Select on it next to the work
    /// the lock guards, to stop that work promptly. Never resolves after
    /// [`unlock`](Self::unlock).
    pub fn lost(&self) -> impl Future<Output = Lost> + Send + 'static {
        self.state.lost()
    }

    /// Releases the lock at every server and waits for their answers (each
    /// bounded by the call deadline). The tally's `done` counts the servers
    /// that still had the grant.
    pub async fn unlock(mut self) -> Tally {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(Stop::Quietly);
        }
        let request = UnlockRequest {
            name: self.name.clone(),
            uid: self.uid,
        };
        round::unlock(
            &self.lockers,
            self.mode,
            &request,
            self.timing.call_deadline,
        )
        .await
    }
}
