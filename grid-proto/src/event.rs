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
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The handshake succeeded: calls may be opened and will be received.
    Connected(PeerInfo),
    /// The peer opened a single request. Answer with `respond` or `fail`.
    Request(IncomingCall),
    /// The peer opened a stream. Grant input with `accept_stream`, then end it
    /// with `finish`, `fail` or `cancel`.
    StreamOpened(IncomingCall),
    /// A single request this side opened ended. Its last event.
    Response {
        /// The call.
        id: CallId,
        /// The response, or why there is none.
        result: Result<Bytes, Error>,
    },
    /// A stream message arrived. Call `consume` when the application has taken
    /// it, so the peer gets the credit back.
    Message {
        /// The stream.
        id: CallId,
        /// The message.
        payload: Bytes,
    },
    /// The opener of an incoming stream has finished sending; every message it
    /// sent has been delivered before this.
    InputFinished {
        /// The stream.
        id: CallId,
    },
    /// A stream this side opened ended; every message was delivered before
    /// this. Its last event.
    StreamFinished {
        /// The stream.
        id: CallId,
        /// `Ok` when the handler finished normally.
        result: Result<(), Error>,
    },
    /// An incoming call was cancelled by the peer, passed its deadline, or
    /// broke the protocol. Stop its work, then end it (any of `respond`, `fail`,
    /// `finish`, `cancel`), which sends nothing more but frees its slot.
    Cancelled {
        /// The call.
        id: CallId,
        /// [`Error::Cancelled`], [`Error::DeadlineExceeded`] or [`Error::Protocol`].
        reason: Error,
    },
    /// A stream that had no send credit has some again.
    StreamWritable {
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
