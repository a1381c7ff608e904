//! State of calls in flight and the per-stream credit accounting.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;

use crate::error::{CommandError, Error};

/// Messages received on a stream that the application has not read yet.
/// Bounded by the receive window: the peer cannot send more than it was granted.
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    messages: VecDeque<Bytes>,
    bytes: usize,
}

impl Inbox {
    /// Adds a message; returns whether the inbox was empty before.
    pub(crate) fn push(&mut self, message: Bytes) -> bool {
        let was_empty = self.messages.is_empty();
        self.bytes += message.len();
        self.messages.push_back(message);
        was_empty
    }

    /// Moves up to `max` messages into `out`; returns how many and their bytes.
    pub(crate) fn take_into(&mut self, out: &mut VecDeque<Bytes>, max: usize) -> (u32, usize) {
        let count = self.messages.len().min(max.max(1));
        let mut bytes = 0;
        for message in self.messages.drain(..count) {
            bytes += message.len();
            out.push_back(message);
        }
        self.bytes -= bytes;
        // Lossless: an inbox holds at most a `u32` window of messages.
        (count as u32, bytes)
    }

    /// Drops every message; returns how many and their bytes.
    pub(crate) fn clear(&mut self) -> (u32, usize) {
        let count = self.messages.len() as u32;
        self.messages.clear();
        (count, std::mem::take(&mut self.bytes))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

/// Flow control of one stream, both directions, counted in messages, and the
/// messages received and not yet read.
///
/// Send credit only ever comes from the peer (its open or its `Credit`
/// frames); receive credit is what this side granted and not yet seen used.
#[derive(Debug, Default)]
pub(crate) struct StreamState {
    /// Messages this side may still send, apart from `reserved`.
    pub(crate) send_credit: u32,
    /// Credit set aside by [`crate::Connection::reserve`] for a batch the
    /// application is gathering.
    pub(crate) reserved: u32,
    /// Sequence number of the next message this side sends.
    pub(crate) send_seq: u32,
    /// This side sent its `Fin`.
    pub(crate) sent_fin: bool,
    /// Messages the peer may still send.
    pub(crate) recv_allowed: u32,
    /// Sequence number expected on the next message received.
    pub(crate) recv_seq: u32,
    /// The peer sent its `Fin`.
    pub(crate) recv_fin: bool,
    /// Received and not yet read.
    pub(crate) inbox: Inbox,
    /// The application stopped reading: messages are dropped on arrival and
    /// their credit returned.
    pub(crate) discard_input: bool,
    /// Read messages whose credit has not been returned yet.
    pub(crate) pending_grant: u32,
    /// Receive capacity granted in total, the basis of grant batching.
    pub(crate) window: u32,
}

impl StreamState {
    /// Accounts for a message from the peer.
    pub(crate) fn on_message(&mut self, seq: u32) -> Result<(), Error> {
        if self.recv_fin {
            return Err(Error::Protocol("message after fin".into()));
        }
        if self.recv_allowed == 0 {
            return Err(Error::Protocol("message beyond granted credit".into()));
        }
        if seq != self.recv_seq {
            return Err(Error::Protocol(format!(
                "message sequence {seq}, expected {}",
                self.recv_seq
            )));
        }
        self.recv_allowed -= 1;
        self.recv_seq = self.recv_seq.wrapping_add(1);
        Ok(())
    }

    /// Accounts for a `Fin` from the peer that says it sent `count` messages.
    pub(crate) fn on_fin(&mut self, count: u32) -> Result<(), Error> {
        if self.recv_fin {
            return Err(Error::Protocol("second fin".into()));
        }
        if count != self.recv_seq {
            return Err(Error::Protocol(format!(
                "fin after {count} messages, received {}",
                self.recv_seq
            )));
        }
        self.recv_fin = true;
        Ok(())
    }

    /// Adds credit granted by the peer; returns whether sending was blocked on credit.
    pub(crate) fn on_credit(&mut self, credit: u32) -> Result<bool, Error> {
        let was_blocked = self.send_credit == 0 && self.reserved == 0;
        self.send_credit = self
            .send_credit
            .checked_add(credit)
            .ok_or_else(|| Error::Protocol("credit overflow".into()))?;
        Ok(was_blocked && credit > 0)
    }

    /// Whether this side's output is over, and how: `Finished` after its own
    /// `Fin`.
    pub(crate) fn check_output(&self) -> Result<(), CommandError> {
        if self.sent_fin {
            return Err(CommandError::Finished);
        }
        Ok(())
    }

    /// Takes `count` messages of send credit, reserved credit first, all or
    /// none; returns the first one's sequence number.
    pub(crate) fn take_sends(&mut self, count: u32) -> Result<u32, CommandError> {
        self.check_output()?;
        let available = self.reserved.saturating_add(self.send_credit);
        if available < count.max(1) {
            return Err(CommandError::NoCredit);
        }
        let from_reserved = count.min(self.reserved);
        self.reserved -= from_reserved;
        self.send_credit -= count - from_reserved;
        let seq = self.send_seq;
        self.send_seq = self.send_seq.wrapping_add(count);
        Ok(seq)
    }

    /// Sets aside up to `max` messages of credit, first returning what an
    /// earlier reservation left; returns how many are reserved now.
    pub(crate) fn reserve(&mut self, max: u32) -> Result<u32, CommandError> {
        self.check_output()?;
        self.unreserve();
        let reserved = self.send_credit.min(max);
        if reserved == 0 {
            return Err(CommandError::NoCredit);
        }
        self.send_credit -= reserved;
        self.reserved = reserved;
        Ok(reserved)
    }

    /// Returns reserved credit to the common pool.
    pub(crate) fn unreserve(&mut self) {
        self.send_credit = self.send_credit.saturating_add(self.reserved);
        self.reserved = 0;
    }

    /// Messages that may be sent now, reserved or not.
    pub(crate) fn sendable(&self) -> u32 {
        if self.sent_fin {
            return 0;
        }
        self.send_credit.saturating_add(self.reserved)
    }

    /// The application read `messages` messages. Returns the credit to grant
    /// now, if the batch is due.
    pub(crate) fn on_read(&mut self, messages: u32) -> Option<u32> {
        if messages == 0 || self.recv_fin {
            return None;
        }
        self.pending_grant += messages;
        // Granting in batches of half the window keeps frames few while never
        // leaving the peer without credit when everything has been read.
        let batch = self.window.div_ceil(2).max(1);
        if self.pending_grant >= batch {
            let grant = std::mem::take(&mut self.pending_grant);
            self.recv_allowed = self.recv_allowed.saturating_add(grant);
            Some(grant)
        } else {
            None
        }
    }

    /// Grants the initial receive window.
    pub(crate) fn grant_window(&mut self, window: u32) {
        self.window = window;
        self.recv_allowed = self.recv_allowed.saturating_add(window);
    }
}

/// A call this side opened.
#[derive(Debug)]
pub(crate) struct OutCall {
    pub(crate) deadline: Instant,
    /// `None` for a single request.
    pub(crate) stream: Option<StreamState>,
}

/// A call the peer opened.
#[derive(Debug)]
pub(crate) struct InCall {
    pub(crate) deadline: Instant,
    /// `None` for a single request.
    pub(crate) stream: Option<StreamState>,
    /// The stream's input window was granted.
    pub(crate) accepted: bool,
    /// Why the call was cancelled (by the peer, the deadline or a protocol
    /// error): nothing more is sent for it, and it stays only until the
    /// application ends it.
    pub(crate) cancelled: Option<Error>,
    /// The deadline was shortened to the local maximum: when it passes, the
    /// opener is told, since its own deadline is later.
    pub(crate) clamped: bool,
    /// Bytes of the payload handed to the application with the call, counted
    /// against `max_held_request_bytes` until the call ends.
    pub(crate) held: usize,
}

impl InCall {
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.is_some()
    }
}

/// A stream this side opened whose call has ended on the wire, kept until the
/// application releases it, so that the messages received before the end are
/// still read and the end is reported after them.
#[derive(Debug)]
pub(crate) struct EndedStream {
    pub(crate) inbox: Inbox,
    /// `Ok` when the handler finished normally.
    pub(crate) result: Result<(), Error>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credit_is_enforced_and_returned_in_batches() {
        let mut stream = StreamState::default();
        stream.grant_window(4);
        for seq in 0..4 {
            stream.on_message(seq).unwrap();
        }
        assert!(stream.on_message(4).is_err());
        assert_eq!(stream.on_read(1), None);
        assert_eq!(stream.on_read(1), Some(2));
        assert_eq!(stream.recv_allowed, 2);
        stream.on_message(4).unwrap();
        assert!(stream.on_message(9).is_err());
    }

    #[test]
    fn reading_in_bulk_grants_like_one_at_a_time() {
        let mut stream = StreamState::default();
        stream.grant_window(8);
        for seq in 0..8 {
            stream.on_message(seq).unwrap();
        }
        assert_eq!(stream.on_read(3), None);
        assert_eq!(stream.on_read(2), Some(5));
        assert_eq!(stream.on_read(0), None);
    }

    #[test]
    fn sending_needs_credit_and_stops_after_fin() {
        let mut stream = StreamState::default();
        assert_eq!(stream.take_sends(1), Err(CommandError::NoCredit));
        assert_eq!(stream.on_credit(2), Ok(true));
        assert_eq!(stream.on_credit(1), Ok(false));
        assert_eq!(stream.take_sends(1), Ok(0));
        assert_eq!(stream.take_sends(1), Ok(1));
        assert_eq!(stream.take_sends(2), Err(CommandError::NoCredit));
        assert_eq!(stream.on_credit(2), Ok(false));
        assert_eq!(stream.take_sends(2), Ok(2));
        assert_eq!(stream.send_seq, 4);
        stream.sent_fin = true;
        assert_eq!(stream.take_sends(1), Err(CommandError::Finished));
        assert!(stream.on_credit(u32::MAX).is_err());
    }

    #[test]
    fn reserved_credit_is_spent_first_and_a_new_reservation_replaces_the_old() {
        let mut stream = StreamState::default();
        stream.on_credit(10).unwrap();
        assert_eq!(stream.reserve(4), Ok(4));
        assert_eq!((stream.send_credit, stream.reserved), (6, 4));
        assert_eq!(stream.take_sends(3), Ok(0));
        assert_eq!((stream.send_credit, stream.reserved), (6, 1));
        // The one left over goes back before the next reservation is taken.
        assert_eq!(stream.reserve(64), Ok(7));
        assert_eq!((stream.send_credit, stream.reserved), (0, 7));
        assert_eq!(stream.sendable(), 7);
        // Credit arriving while a reservation is held does not signal a block ending.
        assert_eq!(stream.on_credit(1), Ok(false));
        assert_eq!(stream.take_sends(8), Ok(3));
        assert_eq!(stream.reserve(1), Err(CommandError::NoCredit));
    }

    #[test]
    fn fin_must_count_every_message() {
        let mut stream = StreamState::default();
        stream.grant_window(2);
        stream.on_message(0).unwrap();
        assert!(stream.on_fin(2).is_err());
        stream.on_fin(1).unwrap();
        assert!(stream.on_message(1).is_err());
        // Reading after the peer finished returns no credit.
        assert_eq!(stream.on_read(1), None);
    }

    #[test]
    fn an_inbox_hands_out_at_most_what_is_asked() {
        let mut inbox = Inbox::default();
        assert!(inbox.push(Bytes::from_static(b"ab")));
        assert!(!inbox.push(Bytes::from_static(b"cde")));
        let mut out = VecDeque::new();
        assert_eq!(inbox.take_into(&mut out, 1), (1, 2));
        assert_eq!(inbox.bytes(), 3);
        assert_eq!(inbox.clear(), (1, 3));
        assert!(inbox.is_empty());
        assert_eq!(out, [Bytes::from_static(b"ab")]);
    }
}
