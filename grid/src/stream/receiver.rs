//! The receive half of a stream.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream as FuturesStream;
use grid_proto::{CallId, Error};

use super::release_half;
use crate::shared::{Inner, Shared};

/// The receive half of a stream. Dropping it discards further messages (the
/// peer is not blocked by them).
#[derive(Debug)]
pub struct StreamReceiver {
    shared: Arc<Shared>,
    id: CallId,
    /// Messages moved out of the connection under one lock, handed out
    /// without it. At most the receive window: the peer cannot send more.
    taken: VecDeque<Bytes>,
    unreported: Unreported,
}

/// Messages handed out whose consumption the protocol has not been told of.
#[derive(Debug, Default)]
struct Unreported {
    messages: u32,
    bytes: usize,
    /// Consumption is reported at least this often (a quarter of the window),
    /// so the peer's credit comes back while a batch is still being read.
    every: u32,
    /// A report granted the peer credit: the next read yields once, so the
    /// connection's driver (often on the same thread) writes the grant now
    /// rather than after this consumer has read everything there is, which
    /// would leave the peer idle meanwhile.
    yield_next: bool,
}

impl Unreported {
    fn add(&mut self, message: &Bytes) {
        self.messages += 1;
        self.bytes += message.len();
    }

    /// Tells the protocol, which returns the credit when its batch is due.
    fn report(&mut self, id: CallId, inner: &mut Inner) {
        if self.messages == 0 {
            return;
        }
        self.yield_next |= inner.proto.consume_many(id, self.messages, self.bytes);
        self.messages = 0;
        self.bytes = 0;
        inner.wake_driver_if_output();
    }
}

impl StreamReceiver {
    pub(super) fn new(shared: Arc<Shared>, id: CallId, in_capacity: u32) -> StreamReceiver {
        StreamReceiver {
            shared,
            id,
            taken: VecDeque::new(),
            unreported: Unreported {
                every: (in_capacity / 4).max(1),
                ..Unreported::default()
            },
        }
    }

    /// The next message; `None` after a clean end, `Some(Err(..))` once if the
    /// stream failed.
    pub async fn recv(&mut self) -> Option<Result<Bytes, Error>> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        if std::mem::take(&mut self.unreported.yield_next) {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if let Some(message) = self.taken.pop_front() {
            self.unreported.add(&message);
            if self.unreported.messages >= self.unreported.every {
                self.unreported.report(self.id, &mut self.shared.lock());
            }
            return Poll::Ready(Some(Ok(message)));
        }
        let mut inner = self.shared.lock();
        self.unreported.report(self.id, &mut inner);
        let Some(slot) = inner.streams.get_mut(&self.id) else {
            return Poll::Ready(None);
        };
        if !slot.inbox.is_empty() {
            // One lock for every message waiting; the emptied buffer goes back
            // to the slot for the next ones.
            std::mem::swap(&mut slot.inbox, &mut self.taken);
            drop(inner);
            return self.poll_recv(cx);
        }
        match slot.input_end.take() {
            Some(Ok(())) => {
                slot.input_end = Some(Ok(()));
                Poll::Ready(None)
            }
            Some(Err(error)) => {
                // Reported once; afterwards the stream reads as ended.
                slot.input_end = Some(Ok(()));
                Poll::Ready(Some(Err(error)))
            }
            None => {
                slot.recv_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl FuturesStream for StreamReceiver {
    type Item = Result<Bytes, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_recv(cx)
    }
}

impl Drop for StreamReceiver {
    fn drop(&mut self) {
        // Messages taken but never read count as consumed, like those still
        // waiting in the slot.
        for message in self.taken.drain(..) {
            self.unreported.add(&message);
        }
        self.unreported.report(self.id, &mut self.shared.lock());
        release_half(&self.shared, self.id, true);
    }
}
