//! A queue from a background task to the test that awaits its items, small
//! enough not to need a channel crate.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

struct State<T> {
    items: VecDeque<T>,
    waker: Option<Waker>,
    /// The sending side is gone: no item will follow the ones queued.
    closed: bool,
}

/// The receiving end.
pub(super) struct Mailbox<T> {
    state: Arc<Mutex<State<T>>>,
}

/// The sending end; dropping it closes the mailbox.
pub(super) struct Sender<T> {
    state: Arc<Mutex<State<T>>>,
}

/// A connected sender and mailbox.
pub(super) fn mailbox<T>() -> (Sender<T>, Mailbox<T>) {
    let state = Arc::new(Mutex::new(State {
        items: VecDeque::new(),
        waker: None,
        closed: false,
    }));
    (
        Sender {
            state: state.clone(),
        },
        Mailbox { state },
    )
}

impl<T> Sender<T> {
    /// Queues `item`; false if the mailbox was dropped.
    pub(super) fn send(&self, item: T) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.items.push_back(item);
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
        Arc::strong_count(&self.state) > 1
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.closed = true;
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
    }
}

impl<T> Mailbox<T> {
    /// The next item, or `None` once the sender is gone and all were taken.
    pub(super) async fn recv(&mut self) -> Option<T> {
        std::future::poll_fn(|cx| {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(item) = state.items.pop_front() {
                return Poll::Ready(Some(item));
            }
            if state.closed {
                return Poll::Ready(None);
            }
            state.waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}
