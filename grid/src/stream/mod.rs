//! Streams: a send half (`futures::Sink`) and a receive half
//! (`futures::Stream`), backpressured by the protocol's credits, counted in
//! bytes.
//!
//! The protocol owns everything about a stream: its received messages, its
//! credit and how it ended. The halves keep only their wakers (in
//! [`StreamSlot`]) and what a handle needs between two locks: the receiver's
//! last batch of messages, the sender's gathered batch and the credit the
//! protocol reserved for it.

mod receiver;
mod send_error;
mod sender;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
pub use grid_proto::DEFAULT_STREAM_WINDOW;
use grid_proto::{CallId, CallTarget, Error};

pub use self::receiver::StreamReceiver;
pub use self::send_error::SendError;
pub use self::sender::StreamSender;
use crate::deadline::{poll_open, CallDeadline, OpenLock, RoomWait};
use crate::handler::HandlerId;
use crate::shared::{Shared, StreamSlot};
use crate::telemetry::CallObserver;

/// A stream being built: set subroute, timeout and window, then `open` it.
#[must_use = "a stream does nothing until opened"]
#[derive(Debug)]
pub struct StreamRequest {
    pub(crate) shared: Result<Arc<Shared>, Error>,
    pub(crate) handler: HandlerId,
    pub(crate) subroute: Bytes,
    pub(crate) payload: Bytes,
    pub(crate) deadline: CallDeadline,
    pub(crate) window: u32,
    pub(crate) observer: CallObserver,
}

impl StreamRequest {
    /// Addresses a subroute of the handler.
    pub fn subroute(mut self, subroute: impl Into<Bytes>) -> StreamRequest {
        self.subroute = subroute.into();
        self
    }

    /// Deadline of the whole stream, relative to when the request was created
    /// with [`Peer::stream`](crate::Peer::stream) (default one minute). It
    /// also bounds [`open`](Self::open)'s wait for room in a full send
    /// buffer: when it passes first, opening fails with
    /// [`Error::DeadlineExceeded`] and nothing is sent.
    pub fn timeout(mut self, timeout: Duration) -> StreamRequest {
        self.deadline.set_timeout(timeout);
        self
    }

    /// Largest receive window, in bytes: how much the handler may send ahead
    /// of this side reading it, each message counting its length plus
    /// [`grid_proto::STREAM_MESSAGE_OVERHEAD`] (default
    /// [`DEFAULT_STREAM_WINDOW`], 1 MiB). This side holds at most the window
    /// plus one message of unread input; a message larger than the window
    /// still passes, alone. The window starts at
    /// [`Limits::stream_window_start`](grid_proto::Limits::stream_window_start)
    /// (64 KiB) and doubles, up to this, while doubling raises the rate at
    /// which this side reads the stream without slowing its own requests on
    /// the connection (PROTOCOL.md §8.2); set it at or below the start for a
    /// fixed window. A smaller maximum bounds memory tighter.
    pub fn window(mut self, bytes: u32) -> StreamRequest {
        self.window = bytes;
        self
    }

    /// Opens the stream. Returns at once, without a round trip: a refusal by the
    /// peer arrives as the stream's end.
    pub async fn open(mut self) -> Result<Stream, Error> {
        let opened = self.open_stream().await;
        self.observer.finish(opened.as_ref().map(|_| ()));
        opened
    }

    async fn open_stream(&self) -> Result<Stream, Error> {
        let shared = self.shared.clone()?;
        let mut room = RoomWait::default();
        let id = std::future::poll_fn(|cx| {
            poll_open(
                &shared,
                OpenLock::Command,
                &self.deadline,
                &mut room,
                cx,
                |inner, now, left, _| {
                    let target = CallTarget::with_subroute(self.handler, &self.subroute);
                    let id = inner.proto.open_stream(
                        now,
                        target,
                        self.payload.clone(),
                        Some(left),
                        self.window,
                    )?;
                    inner.streams.insert(
                        id,
                        StreamSlot {
                            halves: 2,
                            ..StreamSlot::default()
                        },
                    );
                    Ok(id)
                },
            )
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
    /// Halves of stream `id`.
    pub(crate) fn new(shared: Arc<Shared>, id: CallId) -> Stream {
        Stream {
            sender: StreamSender::new(shared.clone(), id),
            receiver: StreamReceiver::new(shared, id),
        }
    }

    /// Separates the halves.
    pub fn split(self) -> (StreamSender, StreamReceiver) {
        (self.sender, self.receiver)
    }
}

/// Accounts for a dropped half. A dropped receive half stops reading, so the
/// peer is never blocked by messages nobody reads; once both halves of a
/// stream this side opened are gone, the protocol releases it (cancelling it
/// if it has not ended).
pub(crate) fn release_half(shared: &Shared, id: CallId, receiver: bool) {
    shared.command(|inner, _| {
        if receiver {
            let _ = inner.proto.stop_reading(id);
        }
        let Some(slot) = inner.streams.get_mut(&id) else {
            return;
        };
        slot.halves = slot.halves.saturating_sub(1);
        if slot.halves == 0 {
            inner.streams.remove(&id);
            if inner.proto.is_outgoing(id) {
                let _ = inner.proto.cancel(id);
            }
        }
    });
}
