//! A log of what test handlers did, which tests wait on without sleeping.

use std::sync::Mutex;
use std::task::{Poll, Waker};
use std::time::Duration;

use crate::runtime::{sleep_until, Runtime};

/// Records handler events as strings and wakes tests waiting for one.
#[derive(Debug, Default)]
pub struct Probe {
    state: Mutex<ProbeState>,
}

#[derive(Debug, Default)]
struct ProbeState {
    events: Vec<String>,
    wakers: Vec<Waker>,
}

impl Probe {
    /// Records an event.
    pub fn record(&self, event: impl Into<String>) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.events.push(event.into());
        for waker in state.wakers.drain(..) {
            waker.wake();
        }
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .events
            .clone()
    }

    /// How many events start with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.events()
            .iter()
            .filter(|e| e.starts_with(prefix))
            .count()
    }

    /// Waits until an event starting with `prefix` has been recorded; panics
    /// with the log after `timeout`.
    pub async fn wait_for<R: Runtime>(
        &self,
        runtime: &R,
        prefix: &str,
        timeout: Duration,
    ) -> String {
        let deadline = runtime.now() + timeout;
        let found = std::future::poll_fn(|cx| {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(event) = state.events.iter().find(|e| e.starts_with(prefix)) {
                return Poll::Ready(event.clone());
            }
            state.wakers.push(cx.waker().clone());
            Poll::Pending
        });
        let expiry = sleep_until(runtime, deadline);
        match futures_util::future::select(std::pin::pin!(found), std::pin::pin!(expiry)).await {
            futures_util::future::Either::Left((event, _)) => event,
            futures_util::future::Either::Right(_) => {
                panic!(
                    "no event {prefix:?} within {timeout:?}; log: {:?}",
                    self.events()
                )
            }
        }
    }
}
