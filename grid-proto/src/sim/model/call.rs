//! A call as both applications see it, and a side as a whole.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::error::{CloseReason, Error};
use crate::STREAM_MESSAGE_OVERHEAD;

/// Credit a message of `len` bytes costs.
pub fn message_cost(len: usize) -> u64 {
    len as u64 + u64::from(STREAM_MESSAGE_OVERHEAD)
}
use crate::sim::Which;

/// How the responder's application ended a call.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// `respond` with this payload.
    Respond(Bytes),
    /// `fail` with this error.
    Fail(Error),
    /// `finish` (a stream, or a call cancelled before).
    Finish,
    /// `cancel`.
    Cancel,
}

/// One direction of a stream.
#[derive(Debug, Default)]
pub struct Dir {
    /// Window the receiver granted up front, in bytes (0 until the responder
    /// accepts).
    pub window: u32,
    /// Lengths of the messages `send_message` accepted.
    pub sent: Vec<usize>,
    /// Messages sent when the sender ended its direction.
    pub fin_at: Option<usize>,
    /// Messages the receiver's application read, in order. Reading is
    /// consuming: it returns the sender its credit.
    pub read: usize,
    /// The receiver's application stopped reading: what arrives is dropped
    /// and its credit returned at once.
    pub stopped: bool,
}

impl Dir {
    /// Bytes of the messages sent and not yet read: all of them wait at the
    /// receiver once nothing is in flight, unless the call ended on one side
    /// (then some may have been dropped).
    pub fn unread_bytes(&self) -> usize {
        if self.stopped {
            return 0;
        }
        self.sent
            .get(self.read..)
            .map_or(0, |rest| rest.iter().sum())
    }

    /// Credit the messages sent and not yet read cost: what the sender has
    /// outstanding at least (credit for read messages may not be back yet).
    pub fn outstanding(&self) -> u64 {
        let cost = |lens: &[usize]| lens.iter().map(|&len| message_cost(len)).sum::<u64>();
        cost(&self.sent) - cost(self.sent.get(..self.read).unwrap_or(&self.sent))
    }

    /// Most payload bytes the receiver may hold unread: under its window
    /// plus the largest message sent, since a message is sent only while
    /// credit is above zero.
    pub fn unread_bound(&self) -> u64 {
        let largest = self.sent.iter().map(|&len| message_cost(len)).max();
        largest.map_or(0, |cost| u64::from(self.window) + cost)
    }

    /// The receiver consumed everything sent: it read it all, or stopped
    /// reading (and so consumes on arrival).
    pub fn all_consumed(&self) -> bool {
        self.stopped || self.read == self.sent.len()
    }
}

/// A call, as both applications see it: fields starting with `o_` are the
/// opener's view, `r_` the responder's.
#[derive(Debug)]
pub struct Call {
    /// The side that opened it.
    pub opener: Which,
    /// A stream, not a request.
    pub stream: bool,
    /// The payload it was opened with.
    pub request: Bytes,
    /// When it was opened.
    pub opened_at: Instant,
    /// Relative deadline as given to the opener (after defaulting and clamping).
    pub timeout: Duration,
    /// The opener's deadline.
    pub deadline: Instant,
    /// The opener has not seen its end and has not cancelled it.
    pub o_open: bool,
    /// The opener's application cancelled it.
    pub o_cancelled: bool,
    /// The opener finished its direction of the stream.
    pub o_finished: bool,
    /// The terminal result the opener saw (`Ok(None)` for a finished stream).
    pub o_result: Option<Result<Option<Bytes>, Error>>,
    /// The responder was told of it.
    pub r_seen: bool,
    /// The responder holds it: seen and not ended by its application or a close.
    pub r_held: bool,
    /// The deadline the responder was given.
    pub r_deadline: Option<Instant>,
    /// The reason of the responder's `Cancelled` event, once it came.
    pub r_cancelled: Option<Error>,
    /// The responder accepted the stream.
    pub r_accepted: bool,
    /// The responder read the end of the opener's direction.
    pub r_input_finished: bool,
    /// How the responder's application ended it, and whether that was sent
    /// (it is not for a call cancelled before).
    pub r_answer: Option<(Answer, bool)>,
    /// Messages from the opener to the responder.
    pub o2r: Dir,
    /// Messages from the responder to the opener.
    pub r2o: Dir,
}

impl Call {
    /// The responder holds it and was not told it is cancelled.
    pub fn live_at_responder(&self) -> bool {
        self.r_held && self.r_cancelled.is_none()
    }

    /// Both applications still work on it: everything either sent reaches
    /// the other once nothing is in flight.
    pub fn live_at_both(&self) -> bool {
        self.o_open && !self.o_cancelled && self.live_at_responder()
    }
}

/// What one side did to its connection as a whole, and saw of it.
#[derive(Debug, Default)]
pub struct SideModel {
    /// The reason of its `Closed` event, once it came.
    pub closed: Option<CloseReason>,
    /// Its application began a drain while it was open.
    pub drain_called: bool,
    /// When that drain must have closed it.
    pub drain_deadline: Option<Instant>,
    /// Closed by its drain before the drain deadline: every call had finished.
    pub drained_gracefully: bool,
    /// Its application closed it while it was open.
    pub close_called: bool,
    /// It saw `PeerDraining`.
    pub peer_draining: bool,
    /// Calls that ended here with `Disconnected` (terminal event or `Cancelled`).
    pub disconnected: Vec<u32>,
    /// A command was refused with `SendBufferFull` since the last `Writable`.
    pub owed_writable: bool,
}
