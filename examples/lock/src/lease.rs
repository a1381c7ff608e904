//! A held lock's lease: until when the holder may rely on it, whether it was
//! lost, and the task that keeps it alive by refreshing it.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::Instant;

use futures_channel::oneshot;
use futures_util::future::{select, Either};
use grid::runtime::sleep_until;
use grid::Runtime;

use crate::clock::SharedClock;
use crate::error::Lost;
use crate::locker::Locker;
use crate::mode::Mode;
use crate::round;
use crate::timing::LeaseTiming;
use crate::wire::{LockRequest, UnlockRequest};

/// What the holder and its refresh task share.
pub(crate) struct LeaseState {
    status: Mutex<Status>,
}

struct Status {
    /// The holder relies on the lock only before this instant.
    valid_until: Instant,
    lost: Option<Lost>,
    waiters: Vec<Waker>,
}

impl LeaseState {
    pub(crate) fn new(valid_until: Instant) -> Arc<LeaseState> {
        Arc::new(LeaseState {
            status: Mutex::new(Status {
                valid_until,
                lost: None,
                waiters: Vec::new(),
            }),
        })
    }

    fn status(&self) -> MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the holder may rely on the lock at `now`: not lost, and
    /// within the validity of the last confirmed round.
    pub(crate) fn check(&self, now: Instant) -> Result<Instant, Lost> {
        let status = self.status();
        match &status.lost {
            Some(lost) => Err(lost.clone()),
            None if now >= status.valid_until => Err(Lost::Expired),
            None => Ok(status.valid_until),
        }
    }

    fn extend(&self, valid_until: Instant) {
        let mut status = self.status();
        if status.lost.is_none() {
            status.valid_until = status.valid_until.max(valid_until);
        }
    }

    fn lose(&self, reason: Lost) {
        let waiters = {
            let mut status = self.status();
            if status.lost.is_some() {
                return;
            }
            status.lost = Some(reason);
            std::mem::take(&mut status.waiters)
        };
        waiters.into_iter().for_each(Waker::wake);
    }

    /// Resolves once the lock is lost.
    pub(crate) fn lost(self: &Arc<Self>) -> impl Future<Output = Lost> + Send + 'static {
        let state = self.clone();
        std::future::poll_fn(move |cx| {
            let mut status = state.status();
            if let Some(lost) = &status.lost {
                return Poll::Ready(lost.clone());
            }
            if !status.waiters.iter().any(|w| w.will_wake(cx.waker())) {
                status.waiters.push(cx.waker().clone());
            }
            Poll::Pending
        })
    }
}

/// What the holder tells its refresh task when it lets go.
pub(crate) enum Stop {
    /// The holder releases the lock itself; just stop.
    Quietly,
}

/// Everything the refresh task needs.
pub(crate) struct Refresher<R: Runtime> {
    pub(crate) runtime: R,
    pub(crate) clock: SharedClock,
    pub(crate) lockers: Arc<[Locker]>,
    pub(crate) timing: LeaseTiming,
    pub(crate) mode: Mode,
    pub(crate) request: LockRequest,
    pub(crate) state: Arc<LeaseState>,
    /// When the last round that a quorum confirmed was sent.
    pub(crate) confirmed: Instant,
}

impl<R: Runtime> Refresher<R> {
    /// Refreshes every `refresh_interval` until the holder lets go or the
    /// lock is lost. A guard dropped without unlocking closes `stop`, and
    /// the task then releases the lock at every server; so does a loss, in
    /// case some servers still have the grant.
    pub(crate) async fn run(mut self, mut stop: oneshot::Receiver<Stop>) {
        let validity = self.timing.validity();
        loop {
            let next = self.confirmed + self.timing.refresh_interval;
            let wait = pin!(sleep_until(&self.runtime, next));
            match select(&mut stop, wait).await {
                Either::Left((Ok(Stop::Quietly), _)) => return,
                Either::Left((Err(_dropped), _)) => return self.release().await,
                Either::Right(_) => {}
            }

            let sent = self.clock.now();
            let deadline = self.timing.call_deadline;
            let refresh = pin!(round::refresh(
                &self.lockers,
                self.mode,
                &self.request,
                deadline
            ));
            let valid_until = self.state.check(sent).unwrap_or(sent);
            let expiry = pin!(sleep_until(&self.runtime, valid_until));
            let outcome = select(refresh, select(&mut stop, expiry)).await;
            match outcome {
                Either::Left((tally, _)) if tally.succeeded() => {
                    self.state.extend(sent + validity);
                    self.confirmed = sent;
                }
                Either::Left((tally, _)) => {
                    self.state.lose(Lost::RefreshFailed(tally));
                    return self.release().await;
                }
                Either::Right((Either::Left((Ok(Stop::Quietly), _)), _)) => return,
                Either::Right((Either::Left((Err(_dropped), _)), _)) => {
                    return self.release().await
                }
                Either::Right((Either::Right(_), _)) => {
                    self.state.lose(Lost::Expired);
                    return self.release().await;
                }
            }
        }
    }

    async fn release(&self) {
        let request = UnlockRequest {
            name: self.request.name.clone(),
            uid: self.request.uid,
        };
        round::unlock(
            &self.lockers,
            self.mode,
            &request,
            self.timing.call_deadline,
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::FutureExt;

    use super::*;
    use crate::tally::Tally;

    #[test]
    fn validity_runs_out_on_the_clock_without_the_refresh_task() {
        let t0 = Instant::now();
        let state = LeaseState::new(t0 + Duration::from_secs(1));
        assert_eq!(state.check(t0), Ok(t0 + Duration::from_secs(1)));
        assert_eq!(state.check(t0 + Duration::from_secs(1)), Err(Lost::Expired));
        state.extend(t0 + Duration::from_secs(2));
        assert!(state.check(t0 + Duration::from_secs(1)).is_ok());
        // An older round confirmed late never shortens the validity.
        state.extend(t0 + Duration::from_millis(1500));
        assert_eq!(state.check(t0), Ok(t0 + Duration::from_secs(2)));
    }

    #[test]
    fn a_loss_is_final_and_wakes_the_waiters() {
        let t0 = Instant::now();
        let state = LeaseState::new(t0 + Duration::from_secs(1));
        let mut lost = Box::pin(state.lost());
        assert!(lost.as_mut().now_or_never().is_none());
        let reason = Lost::RefreshFailed(Tally::new(3, 2));
        state.lose(reason.clone());
        state.lose(Lost::Expired);
        assert_eq!(lost.now_or_never(), Some(reason.clone()));
        state.extend(t0 + Duration::from_secs(5));
        assert_eq!(state.check(t0), Err(reason));
    }
}
