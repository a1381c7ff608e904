//! What a connection tells its driver.

use std::fmt;
use std::time::Instant;

use bytes::Bytes;

use crate::error::{CloseReason, Error};
use crate::handshake::PeerInfo;

/// Identifies a call on one connection, in either direction.
///
/// It is the call's mux id on the wire: bit 31 says which side opened the call,
/// so ids of calls this side opened never collide with ids the peer opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub(crate) u32);

impl CallId {
    /// The mux id as sent on the wire.
    pub fn raw(self) -> u32 {
        self.0
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#010x}", self.0)
    }
}

/// A call the peer opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncomingCall {
    /// The call's id, used to answer it.
    pub id: CallId,
    /// Handler id the peer asked for.
    pub handler: u16,
    /// Subroute the peer asked for (empty when none).
    pub subroute: Bytes,
    /// The request, or the stream's initial payload.
    pub payload: Bytes,
    /// When the call expires here: the peer's relative deadline, clamped to the
    /// local maximum, counted from when the call arrived.
    pub deadline: Instant,
}

/// Something that happened on the connection. Drain them with
/// [`crate::Connection::poll_event`] after every input, timeout and command.
///
/// Events name their role: `Incoming*` events are about calls the peer
/// opened, `Request*` and `Stream*` events about calls this side opened (and
/// `StreamReadable`/`StreamWritable` about streams in either role).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The handshake succeeded: calls may be opened and will be received.
    Connected(PeerInfo),
    /// The peer opened a single request. Answer with `respond` or `fail`.
    IncomingRequest(IncomingCall),
    /// The peer opened a stream. Grant input with `accept_stream`, then end it
    /// with `finish`, `fail` or `cancel`.
    IncomingStream(IncomingCall),
    /// A call the peer opened was cancelled by the peer, passed its deadline,
    /// broke the protocol, or lost its connection. Stop its work, then end it
    /// (any of `respond`, `fail`, `finish`, `cancel`), which sends nothing
    /// more but frees its slot. Messages it received before remain readable.
    IncomingCancelled {
        /// The call.
        id: CallId,
        /// [`Error::Cancelled`], [`Error::DeadlineExceeded`],
        /// [`Error::Protocol`] or [`Error::Disconnected`].
        reason: Error,
    },
    /// A single request this side opened ended. Its last event.
    RequestEnded {
        /// The call.
        id: CallId,
        /// The response, or why there is none.
        result: Result<Bytes, Error>,
    },
    /// A stream, in either role, has something to read where it had nothing:
    /// messages, or the end of its input. Call `read` until it reports
    /// nothing more; reading returns the peer its credit.
    StreamReadable {
        /// The stream.
        id: CallId,
    },
    /// A stream, in either role, that had no send credit has some again.
    StreamWritable {
        /// The stream.
        id: CallId,
    },
    /// A stream this side opened ended: nothing more can be sent, and `read`
    /// reports its outcome after the messages still unread. Its last event;
    /// `release` it once done with it.
    StreamEnded {
        /// The stream.
        id: CallId,
    },
    /// The send buffer, after refusing a command with `SendBufferFull`, has room again.
    Writable,
    /// The peer is draining: new calls to it fail with `Draining` from now on.
    PeerDraining,
    /// The connection closed. The last event; every call ended before it.
    Closed(CloseReason),
}

/// What [`crate::Connection::read`] found on a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// This many messages (at least one) were moved into the buffer.
    Messages {
        /// How many.
        count: usize,
        /// Reading them returned the peer credit: a `Credit` frame waits to be
        /// written. A reader that keeps reading should let the driver send it
        /// first, or the peer idles until the reader runs dry.
        credit_granted: bool,
    },
    /// Nothing to read yet: wait for [`Event::StreamReadable`].
    Empty,
    /// Every message was read and the input ended normally.
    Finished,
    /// Every message was read and the stream ended with this error.
    Failed(Error),
}

/// Room set aside on a stream by [`crate::Connection::reserve`]: credit that
/// [`crate::Connection::send_messages`] spends first.
///
/// A batch may take messages while the reserved bytes it has not spent are
/// above zero, each costing its length plus
/// [`crate::STREAM_MESSAGE_OVERHEAD`]; `send_messages` then accepts it whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// Bytes of credit reserved (at least one).
    pub bytes: u64,
    /// Largest message the peer accepts, in bytes.
    pub max_message_size: usize,
}
