//! The receive half of a stream.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream as FuturesStream;
use grid_proto::{CallId, Error, ReadOutcome};

use super::release_half;
use crate::shared::Shared;

/// Most messages read under one lock: enough that small messages cost a
/// lock per thousand, few enough that a batch is handed out quickly.
const READ_BATCH: usize = 1024;

/// The receive half of a stream. Dropping it discards further messages (the
/// peer is not blocked by them).
#[derive(Debug)]
pub struct StreamReceiver {
    shared: Arc<Shared>,
    id: CallId,
    /// Messages read from the connection under one lock, handed out without
    /// it. Reading them returned their credit, so this holds at most
    /// `READ_BATCH` messages and about a quarter of the window (the
    /// protocol's bound on one read, so that the peer's credit comes back
    /// while a batch is still being handed out).
    taken: VecDeque<Bytes>,
    /// The last read granted the peer credit: the next poll yields once, so
    /// the connection's driver (often on the same thread) writes the grant
    /// now rather than after this reader has read everything there is, which
    /// would leave the peer idle meanwhile.
    yield_next: bool,
    /// The end was handed out: the stream reads as ended from now on.
    ended: bool,
}

impl StreamReceiver {
    pub(super) fn new(shared: Arc<Shared>, id: CallId) -> StreamReceiver {
        StreamReceiver {
            shared,
            id,
            taken: VecDeque::new(),
            yield_next: false,
            ended: false,
        }
    }

    /// The next message; `None` after a clean end, `Some(Err(..))` once if the
    /// stream failed.
    pub async fn recv(&mut self) -> Option<Result<Bytes, Error>> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        if std::mem::take(&mut self.yield_next) {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if let Some(message) = self.taken.pop_front() {
            return Poll::Ready(Some(Ok(message)));
        }
        if self.ended {
            return Poll::Ready(None);
        }
        let mut inner = self.shared.lock();
        let outcome = inner.proto.read(self.id, &mut self.taken, READ_BATCH);
        match outcome {
            Ok(ReadOutcome::Messages { credit_granted, .. }) => {
                if credit_granted {
                    inner.wake_driver_if_output();
                }
                drop(inner);
                self.yield_next = credit_granted;
                Poll::Ready(self.taken.pop_front().map(Ok))
            }
            Ok(ReadOutcome::Empty) => {
                if let Some(slot) = inner.streams.get_mut(&self.id) {
                    slot.recv_waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
            Ok(ReadOutcome::Finished) => {
                self.ended = true;
                Poll::Ready(None)
            }
            Ok(ReadOutcome::Failed(error)) => {
                self.ended = true;
                Poll::Ready(Some(Err(error)))
            }
            // The protocol no longer holds the stream: a handler's stream
            // whose connection closed, or whose handler has returned.
            Err(_) => {
                self.ended = true;
                let closed = inner.proto.is_closed();
                Poll::Ready(closed.then_some(Err(Error::Disconnected)))
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
        release_half(&self.shared, self.id, true);
    }
}
