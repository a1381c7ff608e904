//! The send half of a stream.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_sink::Sink;
use grid_proto::{CallId, Error};

use super::release_half;
use crate::shared::{Inner, Shared};

/// A sender that has queued this many bytes without waiting yields once, so
/// the connection's driver (often on the same thread) starts writing while the
/// sender still has credit, instead of after it ran out.
const SEND_YIELD_BYTES: usize = 1024 * 1024;

/// The same, counted in messages: a window of small messages is spent long
/// before a mebibyte, and a sender that spends it all before the driver
/// writes any leaves the peer idle, then idles itself waiting for credit.
/// (Yielding every 1024 messages of 32 bytes took a stream over two threads
/// from 16 to 25 million messages a second.)
const SEND_YIELD_MESSAGES: u32 = 1024;

/// Frame overhead counted per message towards `SEND_YIELD_BYTES`.
const MESSAGE_OVERHEAD: usize = 16;

/// Most messages the `Sink` gathers before handing them to the connection.
const BATCH_MESSAGES: u32 = 64;

/// The `Sink` hands its gathered messages over once they reach this many bytes.
const BATCH_BYTES: usize = 16 * 1024;

/// The send half of a stream. Dropping it finishes this side's output.
///
/// As a [`Sink`], it gathers small messages between `poll_flush` calls and
/// hands them to the connection together (`send_all` and `SinkExt::send`
/// flush for you; after `feed`, call `flush`). [`send`](Self::send) hands over
/// each message at once.
#[derive(Debug)]
pub struct StreamSender {
    shared: Arc<Shared>,
    id: CallId,
    finished: bool,
    /// What was queued since the sender last waited or yielded.
    since_yield: YieldBudget,
    /// Messages the `Sink` accepted and has not handed over yet. Each holds
    /// credit taken from `reserved`, so handing them over cannot fail for
    /// want of credit.
    batch: Vec<Bytes>,
    batch_bytes: usize,
    /// Messages the `Sink` may still accept without asking the connection:
    /// part of the peer's credit, which only this half spends.
    reserved: u32,
    /// Largest message the peer accepts, checked as the `Sink` accepts one so
    /// that handing a batch over cannot fail on it.
    max_message: usize,
}

impl StreamSender {
    pub(super) fn new(shared: Arc<Shared>, id: CallId) -> StreamSender {
        StreamSender {
            shared,
            id,
            finished: false,
            since_yield: YieldBudget::default(),
            batch: Vec::new(),
            batch_bytes: 0,
            reserved: 0,
            max_message: 0,
        }
    }

    /// Sends one message, waiting for credit from the peer.
    pub async fn send(&mut self, message: Bytes) -> Result<(), Error> {
        let mut message = Some(message);
        std::future::poll_fn(|cx| self.poll_send(cx, &mut message)).await
    }

    /// Waits for room and sends under one lock, the common case of a stream
    /// that has credit costing a single acquisition.
    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        message: &mut Option<Bytes>,
    ) -> Poll<Result<(), Error>> {
        if self.since_yield.yield_due(cx) {
            return Poll::Pending;
        }
        let mut inner = self.shared.lock();
        // Whatever the `Sink` gathered goes first, in order.
        Self::hand_over(self.id, &mut self.batch, &mut self.batch_bytes, &mut inner)?;
        self.reserved = 0;
        let ready = self.poll_ready_locked(cx, &mut inner);
        if !matches!(ready, Poll::Ready(Ok(()))) {
            if ready.is_pending() {
                self.since_yield = YieldBudget::default();
            }
            return ready;
        }
        let Some(message) = message.take() else {
            return Poll::Ready(Ok(()));
        };
        self.since_yield.add(&message);
        let result = inner.proto.send_message(self.id, message);
        inner.wake_driver_if_output();
        Poll::Ready(result)
    }

    /// Ends this side's output after every message sent before. For the
    /// opener, the handler sees the end of its input; for a handler, prefer
    /// returning from the handler, which does this.
    pub fn finish(&mut self) -> Result<(), Error> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        self.reserved = 0;
        let id = self.id;
        let mut inner = self.shared.lock();
        let handed = Self::hand_over(id, &mut self.batch, &mut self.batch_bytes, &mut inner);
        let opener = inner.streams.get(&id).is_some_and(|slot| slot.opener);
        let result = if opener
            && inner
                .streams
                .get(&id)
                .is_some_and(|slot| slot.output_end.is_none())
        {
            inner.proto.finish(id)
        } else {
            Ok(())
        };
        inner.wake_driver_if_output();
        handed.and(result)
    }

    /// Gives the gathered messages to the connection.
    fn hand_over(
        id: CallId,
        batch: &mut Vec<Bytes>,
        batch_bytes: &mut usize,
        inner: &mut Inner,
    ) -> Result<(), Error> {
        if batch.is_empty() {
            return Ok(());
        }
        *batch_bytes = 0;
        let result = inner.proto.send_messages(id, batch);
        // On an error the stream is over: what it gathered can never be sent.
        batch.clear();
        inner.wake_driver_if_output();
        result
    }

    fn poll_ready_sink(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.reserved > 0 && self.batch_bytes < BATCH_BYTES {
            return Poll::Ready(Ok(()));
        }
        let mut inner = self.shared.lock();
        if let Err(error) =
            Self::hand_over(self.id, &mut self.batch, &mut self.batch_bytes, &mut inner)
        {
            // The stream is over: nothing more is accepted without asking.
            self.reserved = 0;
            return Poll::Ready(Err(error));
        }
        if self.since_yield.yield_due(cx) {
            return Poll::Pending;
        }
        let ready = self.poll_ready_locked(cx, &mut inner);
        match ready {
            Poll::Ready(Ok(())) => {
                self.reserved = inner.proto.send_credit(self.id).min(BATCH_MESSAGES);
                self.max_message = inner
                    .peer
                    .as_ref()
                    .map_or(0, |peer| peer.limits.max_message_size as usize);
            }
            Poll::Pending => self.since_yield = YieldBudget::default(),
            Poll::Ready(Err(_)) => {}
        }
        ready
    }

    fn poll_ready_locked(
        &self,
        cx: &mut Context<'_>,
        inner: &mut Inner,
    ) -> Poll<Result<(), Error>> {
        let Some(slot) = inner.streams.get(&self.id) else {
            return Poll::Ready(Err(Error::UnknownCall));
        };
        if let Some(end) = &slot.output_end {
            return Poll::Ready(Err(end.clone()));
        }
        if self.finished {
            return Poll::Ready(Err(Error::UnknownCall));
        }
        match inner.proto.poll_send_ready(self.id) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(Error::NoCredit) => {
                if let Some(slot) = inner.streams.get_mut(&self.id) {
                    slot.send_waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
            Err(Error::SendBufferFull) => {
                inner.wait_writable(cx.waker());
                Poll::Pending
            }
            Err(error) => Poll::Ready(Err(error)),
        }
    }

    fn start_send_sink(&mut self, message: Bytes) -> Result<(), Error> {
        self.since_yield.add(&message);
        if self.reserved == 0 {
            // `start_send` without a successful `poll_ready`: no credit was
            // set aside, so the connection decides at once.
            let id = self.id;
            let mut inner = self.shared.lock();
            Self::hand_over(id, &mut self.batch, &mut self.batch_bytes, &mut inner)?;
            let result = inner.proto.send_message(id, message);
            inner.wake_driver_if_output();
            return result;
        }
        if message.len() > self.max_message {
            return Err(Error::TooLarge {
                size: message.len(),
                max: self.max_message,
            });
        }
        self.reserved -= 1;
        self.batch_bytes += message.len();
        self.batch.push(message);
        Ok(())
    }

    fn poll_flush_sink(&mut self) -> Poll<Result<(), Error>> {
        if self.batch.is_empty() {
            return Poll::Ready(Ok(()));
        }
        let id = self.id;
        let mut inner = self.shared.lock();
        let handed = Self::hand_over(id, &mut self.batch, &mut self.batch_bytes, &mut inner);
        if handed.is_err() {
            self.reserved = 0;
        }
        Poll::Ready(handed)
    }
}

/// What a sender queued since it last waited or yielded.
#[derive(Debug, Default)]
struct YieldBudget {
    bytes: usize,
    messages: u32,
}

impl YieldBudget {
    fn add(&mut self, message: &Bytes) {
        self.bytes += message.len() + MESSAGE_OVERHEAD;
        self.messages += 1;
    }

    /// Yields (waking the task) once `SEND_YIELD_BYTES` or
    /// `SEND_YIELD_MESSAGES` were queued without a wait.
    fn yield_due(&mut self, cx: &mut Context<'_>) -> bool {
        if self.bytes < SEND_YIELD_BYTES && self.messages < SEND_YIELD_MESSAGES {
            return false;
        }
        *self = YieldBudget::default();
        cx.waker().wake_by_ref();
        true
    }
}

impl Sink<Bytes> for StreamSender {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_ready_sink(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Bytes) -> Result<(), Error> {
        self.get_mut().start_send_sink(item)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        // Handed over, the messages are with the connection: nothing to wait for.
        self.get_mut().poll_flush_sink()
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(self.get_mut().finish())
    }
}

impl Drop for StreamSender {
    fn drop(&mut self) {
        // Finishing hands over what the `Sink` gathered: a message it accepted
        // is sent unless the stream is already over.
        let _ = self.finish();
        release_half(&self.shared, self.id, false);
    }
}
