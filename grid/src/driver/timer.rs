//! The driver's timer, armed for the protocol's next deadline.

use std::task::{Context, Waker};
use std::time::Instant;

use crate::runtime::Timer;

/// A runtime timer that remembers what it was last armed for.
pub(super) struct DriverTimer {
    timer: Box<dyn Timer>,
    /// The deadline the timer was last polled for, and the waker it holds:
    /// polling it again for the same deadline and task would only re-register
    /// the waker, which costs a timer-wheel update per round.
    polled: Option<(Instant, Waker)>,
}

impl DriverTimer {
    pub(super) fn new(timer: Box<dyn Timer>) -> DriverTimer {
        DriverTimer {
            timer,
            polled: None,
        }
    }

    /// Arms the timer for `at`; whether it has expired.
    pub(super) fn arm(&mut self, cx: &mut Context<'_>, at: Instant, now: Instant) -> bool {
        if let Some((armed, waker)) = &self.polled {
            if *armed == at && at > now && waker.will_wake(cx.waker()) {
                return false;
            }
        }
        self.timer.reset(at);
        let expired = self.timer.poll_expired(cx).is_ready();
        self.polled = (!expired).then(|| (at, cx.waker().clone()));
        expired
    }
}
