//! A one-shot broadcast flag: raised once, seen by every loop and waiter of
//! the node (shutdown, the listener having closed).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::task::{Poll, Waker};

/// A one-shot broadcast flag with wakers.
#[derive(Default)]
pub(super) struct Signal {
    set: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
}

impl Signal {
    pub(super) fn is_set(&self) -> bool {
        self.set.load(Ordering::Acquire)
    }

    pub(super) fn raise(&self) {
        self.set.store(true, Ordering::Release);
        let wakers = std::mem::take(&mut *self.wakers.lock().unwrap_or_else(|p| p.into_inner()));
        for waker in wakers {
            waker.wake();
        }
    }

    pub(super) async fn wait(&self) {
        std::future::poll_fn(|cx| {
            if self.is_set() {
                return Poll::Ready(());
            }
            let mut wakers = self.wakers.lock().unwrap_or_else(|p| p.into_inner());
            // Checked again under the lock: a raise between the first check
            // and the push would otherwise leave this waker never woken.
            if self.is_set() {
                return Poll::Ready(());
            }
            wakers.push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}
