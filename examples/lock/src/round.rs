//! A round: one call to every lock server at once, waiting for every answer
//! (each bounded by the call deadline) and counting them.

use std::time::Duration;

use futures_util::future::join_all;

use crate::locker::Locker;
use crate::mode::Mode;
use crate::tally::Tally;
use crate::wire::{LockRequest, UnlockRequest};

/// Asks every server for a grant. Waits for every answer so that the
/// client knows exactly who granted; an early return would leave grants it
/// neither refreshes nor releases.
pub(crate) async fn lock(
    lockers: &[Locker],
    mode: Mode,
    request: &LockRequest,
    deadline: Duration,
) -> Tally {
    let answers = join_all(lockers.iter().map(|l| l.lock(mode, request, deadline))).await;
    let mut tally = Tally::new(lockers.len(), mode.quorum(lockers.len()));
    for answer in answers {
        tally.count(answer);
    }
    tally
}

/// Restarts the lease at every server.
pub(crate) async fn refresh(
    lockers: &[Locker],
    mode: Mode,
    request: &LockRequest,
    deadline: Duration,
) -> Tally {
    let answers = join_all(lockers.iter().map(|l| l.refresh(request, deadline))).await;
    let mut tally = Tally::new(lockers.len(), mode.quorum(lockers.len()));
    for answer in answers {
        tally.count(answer);
    }
    tally
}

/// Releases the grant at every server, including those that did not grant:
/// a grant may have been made after its call's deadline passed here.
/// `done` counts the servers that had a live grant.
pub(crate) async fn unlock(
    lockers: &[Locker],
    mode: Mode,
    request: &UnlockRequest,
    deadline: Duration,
) -> Tally {
    let answers = join_all(lockers.iter().map(|l| l.unlock(request, deadline))).await;
    let mut tally = Tally::new(lockers.len(), mode.quorum(lockers.len()));
    for answer in answers {
        if tally.count(answer) == Some(false) {
            tally.done -= 1;
            tally.not_held += 1;
        }
    }
    tally
}
