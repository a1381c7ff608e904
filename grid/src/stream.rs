//! Streams: a send half (`futures::Sink`) and a receive half
//! (`futures::Stream`), backpressured by the protocol's message credits.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream as FuturesStream;
use futures_sink::Sink;
use grid_proto::{CallId, CallTarget, Error};

use crate::handler::HandlerId;
use crate::shared::{Inner, Shared, StreamSlot};

/// Default receive window: messages the peer may send before this side consumes.
pub const DEFAULT_STREAM_CAPACITY: u32 = 16;

/// A stream being built: set subroute, timeout and capacity, then `open` it.
#[must_use = "a stream does nothing until opened"]
#[derive(Debug)]
pub struct StreamRequest {
    pub(crate) shared: Result<Arc<Shared>, Error>,
    pub(crate) handler: HandlerId,
    pub(crate) subroute: Bytes,
    pub(crate) payload: Bytes,
    pub(crate) timeout: Option<Duration>,
    pub(crate) in_capacity: u32,
}

impl StreamRequest {
    /// Addresses a subroute of the handler.
    pub fn subroute(mut self, subroute: impl Into<Bytes>) -> StreamRequest {
        self.subroute = subroute.into();
        self
    }

    /// Deadline of the whole stream, relative to its opening (default one minute).
    pub fn timeout(mut self, timeout: Duration) -> StreamRequest {
        self.timeout = Some(timeout);
        self
    }

    /// How many messages the handler may send ahead of this side consuming them
    /// (default [`DEFAULT_STREAM_CAPACITY`]).
    pub fn in_capacity(mut self, capacity: u32) -> StreamRequest {
        self.in_capacity = capacity;
        self
    }

    /// Opens the stream. Returns at once, without a round trip: a refusal by the
    /// peer arrives as the stream's end.
    pub async fn open(self) -> Result<Stream, Error> {
        let shared = self.shared?;
        let id = std::future::poll_fn(|cx| {
            shared.command(|inner, now| {
                let target = CallTarget::with_subroute(self.handler, &self.subroute);
                match inner.proto.open_stream(
                    now,
                    target,
                    self.payload.clone(),
                    self.timeout,
                    self.in_capacity,
                ) {
                    Ok(id) => {
                        inner.streams.insert(
                            id,
                            StreamSlot {
                                halves: 2,
                                opener: true,
                                ..StreamSlot::default()
                            },
                        );
                        Poll::Ready(Ok(id))
                    }
                    Err(Error::SendBufferFull) => {
                        inner.wait_writable(cx.waker());
                        Poll::Pending
                    }
                    Err(error) => Poll::Ready(Err(error)),
                }
            })
        })
        .await?;
        Ok(Stream::new(shared, id))
    }
}

/// Both halves of a stream. Split it to send and receive from different tasks.
#[derive(Debug)]
pub struct Stream {
    /// The send half.
    pub sender: StreamSender,
    /// The receive half.
    pub receiver: StreamReceiver,
}

impl Stream {
    pub(crate) fn new(shared: Arc<Shared>, id: CallId) -> Stream {
        Stream {
            sender: StreamSender {
                shared: shared.clone(),
                id,
                finished: false,
            },
            receiver: StreamReceiver { shared, id },
        }
    }

    /// Separates the halves.
    pub fn split(self) -> (StreamSender, StreamReceiver) {
        (self.sender, self.receiver)
    }
}

/// The send half of a stream. Dropping it finishes this side's output.
#[derive(Debug)]
pub struct StreamSender {
    shared: Arc<Shared>,
    id: CallId,
    finished: bool,
}

impl StreamSender {
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
        let mut inner = self.shared.lock();
        let ready = self.poll_ready_locked(cx, &mut inner);
        if !matches!(ready, Poll::Ready(Ok(()))) {
            return ready;
        }
        let Some(message) = message.take() else {
            return Poll::Ready(Ok(()));
        };
        let result = inner.proto.send_message(self.id, message);
        if inner.proto.wants_write() {
            inner.wake_driver();
        }
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
        let id = self.id;
        self.shared.command(|inner, _| {
            let opener = inner.streams.get(&id).is_some_and(|slot| slot.opener);
            if opener
                && inner
                    .streams
                    .get(&id)
                    .is_some_and(|slot| slot.output_end.is_none())
            {
                inner.proto.finish(id)
            } else {
                Ok(())
            }
        })
    }

    fn poll_ready_inner(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut inner = self.shared.lock();
        self.poll_ready_locked(cx, &mut inner)
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

    fn start_send_inner(&mut self, message: Bytes) -> Result<(), Error> {
        let id = self.id;
        self.shared
            .command(|inner, _| inner.proto.send_message(id, message))
    }
}

impl Sink<Bytes> for StreamSender {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_ready_inner(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Bytes) -> Result<(), Error> {
        self.get_mut().start_send_inner(item)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        // Messages are with the connection as soon as they are accepted.
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(self.get_mut().finish())
    }
}

impl Drop for StreamSender {
    fn drop(&mut self) {
        let _ = self.finish();
        release_half(&self.shared, self.id, false);
    }
}

/// The receive half of a stream. Dropping it discards further messages (the
/// peer is not blocked by them).
#[derive(Debug)]
pub struct StreamReceiver {
    shared: Arc<Shared>,
    id: CallId,
}

impl StreamReceiver {
    /// The next message; `None` after a clean end, `Some(Err(..))` once if the
    /// stream failed.
    pub async fn recv(&mut self) -> Option<Result<Bytes, Error>> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        let mut inner = self.shared.lock();
        let Some(slot) = inner.streams.get_mut(&self.id) else {
            return Poll::Ready(None);
        };
        if let Some(message) = slot.inbox.pop_front() {
            let len = message.len();
            inner.proto.consume(self.id, len);
            if inner.proto.wants_write() {
                inner.wake_driver();
            }
            return Poll::Ready(Some(Ok(message)));
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
        release_half(&self.shared, self.id, true);
    }
}

/// Accounts for a dropped half. The opener's stream is cancelled when both
/// halves are gone before it ended.
fn release_half(shared: &Shared, id: CallId, receiver: bool) {
    shared.command(|inner, _| {
        let Some(slot) = inner.streams.get_mut(&id) else {
            return;
        };
        slot.halves = slot.halves.saturating_sub(1);
        if receiver {
            slot.receiver_gone = true;
            let drained: Vec<usize> = slot.inbox.drain(..).map(|m| m.len()).collect();
            for len in drained {
                inner.proto.consume(id, len);
            }
        }
        let Some(slot) = inner.streams.get(&id) else {
            return;
        };
        if slot.halves == 0 {
            if slot.opener && slot.output_end.is_none() {
                let _ = inner.proto.cancel(id);
            }
            if slot.opener || slot.output_end.is_some() {
                inner.streams.remove(&id);
            }
        }
    });
}
