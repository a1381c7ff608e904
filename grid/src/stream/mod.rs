//! Streams: a send half (`futures::Sink`) and a receive half
//! (`futures::Stream`), backpressured by the protocol's message credits.

mod receiver;
mod sender;

use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use grid_proto::{CallId, CallTarget, Error};

pub use self::receiver::StreamReceiver;
pub use self::sender::StreamSender;
use crate::handler::HandlerId;
use crate::shared::{Shared, StreamSlot};

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
        Ok(Stream::new(shared, id, self.in_capacity))
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
    /// Halves of stream `id`, whose receive window is `in_capacity` messages.
    pub(crate) fn new(shared: Arc<Shared>, id: CallId, in_capacity: u32) -> Stream {
        Stream {
            sender: StreamSender::new(shared.clone(), id),
            receiver: StreamReceiver::new(shared, id, in_capacity),
        }
    }

    /// Separates the halves.
    pub fn split(self) -> (StreamSender, StreamReceiver) {
        (self.sender, self.receiver)
    }
}

/// Accounts for a dropped half. The opener's stream is cancelled when both
/// halves are gone before it ended.
pub(crate) fn release_half(shared: &Shared, id: CallId, receiver: bool) {
    shared.command(|inner, _| {
        let Some(slot) = inner.streams.get_mut(&id) else {
            return;
        };
        slot.halves = slot.halves.saturating_sub(1);
        if receiver {
            slot.receiver_gone = true;
            let messages = slot.inbox.len() as u32;
            let bytes = slot.inbox.drain(..).map(|m| m.len()).sum();
            inner.proto.consume_many(id, messages, bytes);
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
