//! The send half of a stream.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_sink::Sink;
use grid_proto::{CallId, CommandError, Error, STREAM_MESSAGE_OVERHEAD};

use super::{release_half, SendError};
use crate::shared::{Inner, Shared};

/// A sender that has queued this many bytes without waiting yields once, so
/// the connection's driver (often on the same thread) starts writing while the
/// sender still has credit, instead of after it ran out.
const SEND_YIELD_BYTES: usize = 1024 * 1024;

/// The same, counted in messages: a window of small messages is spent long
/// before a mebibyte, and a sender that spends it all before the driver
/// writes any leaves the peer idle, then idles itself waiting for credit.
const SEND_YIELD_MESSAGES: u32 = 1024;

/// Frame overhead counted per message towards `SEND_YIELD_BYTES`.
const MESSAGE_OVERHEAD: usize = 16;

/// Credit the `Sink` reserves at a time, and the bytes it gathers before
/// handing them to the connection: a batch of small messages shares frames
/// and a lock, and stays small next to the send buffer it may overshoot.
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
    /// This half finished its output: nothing more is sent through it.
    finished: bool,
    /// What was queued since the sender last waited or yielded.
    since_yield: YieldBudget,
    /// Messages the `Sink` accepted and has not handed over yet, each covered
    /// by credit the connection reserved for this half.
    gathered: Gathered,
    /// Bytes of credit the connection reserved for the `Sink` that its
    /// gathered messages have not spent: it accepts a message while this is
    /// above zero (as the protocol sends one while credit is), and the
    /// largest message the peer accepts, so that handing a batch over cannot
    /// fail for want of credit or on size.
    permits: i64,
    max_message: usize,
}

impl StreamSender {
    pub(super) fn new(shared: Arc<Shared>, id: CallId) -> StreamSender {
        StreamSender {
            shared,
            id,
            finished: false,
            since_yield: YieldBudget::default(),
            gathered: Gathered::default(),
            permits: 0,
            max_message: 0,
        }
    }

    /// Sends one message, waiting for credit from the peer.
    pub async fn send(&mut self, message: Bytes) -> Result<(), SendError> {
        let mut message = Some(message);
        std::future::poll_fn(|cx| self.poll_send(cx, &mut message)).await
    }

    /// Waits for room and sends under one lock, the common case of a stream
    /// that has credit costing a single acquisition.
    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        message: &mut Option<Bytes>,
    ) -> Poll<Result<(), SendError>> {
        if self.since_yield.yield_due(cx) {
            return Poll::Pending;
        }
        let mut inner = self.shared.lock();
        // Whatever the `Sink` gathered goes first, in order; sending one
        // message returns what is left of the reservation.
        self.gathered.hand_over(self.id, &mut inner)?;
        self.permits = 0;
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
        Poll::Ready(result.map_err(SendError::from_refusal))
    }

    /// Ends this side's output after every message sent before. For the
    /// opener, the handler sees the end of its input; for a handler, prefer
    /// returning from the handler, which does this. Finishing a stream that
    /// has already ended is not an error.
    pub fn finish(&mut self) -> Result<(), SendError> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        self.permits = 0;
        let mut inner = self.shared.lock();
        let handed = self.gathered.hand_over(self.id, &mut inner);
        let finished = if inner.proto.is_outgoing(self.id) {
            match inner.proto.finish(self.id) {
                Ok(()) | Err(CommandError::Ended | CommandError::Call(_)) => Ok(()),
                Err(refused) => Err(SendError::from_refusal(refused)),
            }
        } else {
            Ok(())
        };
        inner.wake_driver_if_output();
        handed.and(finished)
    }

    fn poll_ready_sink(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), SendError>> {
        if self.permits > 0 && self.gathered.bytes < BATCH_BYTES {
            return Poll::Ready(Ok(()));
        }
        let mut inner = self.shared.lock();
        if let Err(error) = self.gathered.hand_over(self.id, &mut inner) {
            // The stream is over: nothing more is accepted without asking.
            self.permits = 0;
            return Poll::Ready(Err(error));
        }
        if self.since_yield.yield_due(cx) {
            return Poll::Pending;
        }
        if self.finished {
            return Poll::Ready(Err(SendError::Finished));
        }
        match inner.proto.reserve(self.id, BATCH_BYTES as u64) {
            Ok(reservation) => {
                self.permits = i64::try_from(reservation.bytes).unwrap_or(i64::MAX);
                self.max_message = reservation.max_message_size;
                Poll::Ready(Ok(()))
            }
            Err(refused) => {
                let waiting = self.wait_for_room(cx, &mut inner, refused);
                if waiting.is_pending() {
                    self.since_yield = YieldBudget::default();
                }
                waiting
            }
        }
    }

    fn poll_ready_locked(
        &self,
        cx: &mut Context<'_>,
        inner: &mut Inner,
    ) -> Poll<Result<(), SendError>> {
        if self.finished {
            return Poll::Ready(Err(SendError::Finished));
        }
        match inner.proto.poll_send_ready(self.id) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(refused) => self.wait_for_room(cx, inner, refused),
        }
    }

    /// Registers for what a back-pressure refusal waits on; any other refusal
    /// is final.
    fn wait_for_room(
        &self,
        cx: &mut Context<'_>,
        inner: &mut Inner,
        refused: CommandError,
    ) -> Poll<Result<(), SendError>> {
        match refused {
            CommandError::NoCredit => {
                if let Some(slot) = inner.streams.get_mut(&self.id) {
                    slot.send_waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
            CommandError::SendBufferFull => {
                inner.wait_writable(cx.waker());
                Poll::Pending
            }
            refused => Poll::Ready(Err(SendError::from_refusal(refused))),
        }
    }

    fn start_send_sink(&mut self, message: Bytes) -> Result<(), SendError> {
        self.since_yield.add(&message);
        if self.permits <= 0 {
            // `start_send` without a successful `poll_ready`: nothing was
            // reserved, so the connection decides at once.
            if self.finished {
                return Err(SendError::Finished);
            }
            let mut inner = self.shared.lock();
            self.gathered.hand_over(self.id, &mut inner)?;
            let result = inner.proto.send_message(self.id, message);
            inner.wake_driver_if_output();
            return result.map_err(SendError::from_refusal);
        }
        if message.len() > self.max_message {
            return Err(SendError::Failed(Error::TooLarge {
                size: message.len(),
                max: self.max_message,
            }));
        }
        self.permits -= (message.len() + STREAM_MESSAGE_OVERHEAD as usize) as i64;
        self.gathered.bytes += message.len();
        self.gathered.messages.push(message);
        Ok(())
    }

    fn poll_flush_sink(&mut self) -> Poll<Result<(), SendError>> {
        if self.gathered.messages.is_empty() {
            return Poll::Ready(Ok(()));
        }
        let mut inner = self.shared.lock();
        let handed = self.gathered.hand_over(self.id, &mut inner);
        if handed.is_err() {
            self.permits = 0;
        }
        Poll::Ready(handed)
    }
}

/// Messages the `Sink` accepted and has not handed over yet.
#[derive(Debug, Default)]
struct Gathered {
    messages: Vec<Bytes>,
    bytes: usize,
}

impl Gathered {
    /// Gives the gathered messages to the connection, which spends the credit
    /// it reserved for them.
    fn hand_over(&mut self, id: CallId, inner: &mut Inner) -> Result<(), SendError> {
        if self.messages.is_empty() {
            return Ok(());
        }
        self.bytes = 0;
        let result = inner.proto.send_messages(id, &mut self.messages);
        // On a refusal the stream is over: what it gathered can never be sent.
        self.messages.clear();
        inner.wake_driver_if_output();
        result.map_err(SendError::from_refusal)
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
    type Error = SendError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SendError>> {
        self.get_mut().poll_ready_sink(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Bytes) -> Result<(), SendError> {
        self.get_mut().start_send_sink(item)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), SendError>> {
        // Handed over, the messages are with the connection: nothing to wait for.
        self.get_mut().poll_flush_sink()
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), SendError>> {
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
