//! State of calls in flight and the per-stream credit accounting.

use std::time::Instant;

use crate::error::Error;

/// Flow control of one stream, both directions, counted in messages.
///
/// Send credit only ever comes from the peer (its open or its `Credit`
/// frames); receive credit is what this side granted and not yet seen used.
#[derive(Debug, Default)]
pub(crate) struct StreamState {
    /// Messages this side may still send.
    pub(crate) send_credit: u32,
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
    /// Messages delivered but not yet consumed by the application.
    pub(crate) unconsumed: u32,
    /// Their bytes.
    pub(crate) unconsumed_bytes: usize,
    /// Consumed messages whose credit has not been returned yet.
    pub(crate) pending_grant: u32,
    /// Receive capacity granted in total, the basis of grant batching.
    pub(crate) window: u32,
}

impl StreamState {
    /// Accounts for a message from the peer.
    pub(crate) fn on_message(&mut self, seq: u32, len: usize) -> Result<(), Error> {
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
        self.unconsumed += 1;
        self.unconsumed_bytes += len;
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
        let was_blocked = self.send_credit == 0;
        self.send_credit = self
            .send_credit
            .checked_add(credit)
            .ok_or_else(|| Error::Protocol("credit overflow".into()))?;
        Ok(was_blocked && credit > 0)
    }

    /// Takes `count` messages of send credit, all or none; returns the first
    /// one's sequence number.
    pub(crate) fn take_sends(&mut self, count: u32) -> Result<u32, Error> {
        if self.sent_fin {
            return Err(Error::UnknownCall);
        }
        if self.send_credit < count.max(1) {
            return Err(Error::NoCredit);
        }
        self.send_credit -= count;
        let seq = self.send_seq;
        self.send_seq = self.send_seq.wrapping_add(count);
        Ok(seq)
    }

    /// The application consumed `messages` messages of `len` bytes in all.
    /// Returns the credit to grant now, if the batch is due, and the bytes
    /// released.
    pub(crate) fn on_consume(&mut self, messages: u32, len: usize) -> (Option<u32>, usize) {
        let messages = messages.min(self.unconsumed);
        if messages == 0 {
            return (None, 0);
        }
        self.unconsumed -= messages;
        let released = len.min(self.unconsumed_bytes);
        self.unconsumed_bytes -= released;
        if self.recv_fin {
            return (None, released);
        }
        self.pending_grant += messages;
        // Granting in batches of half the window keeps frames few while never
        // leaving the peer without credit when everything has been consumed.
        let batch = self.window.div_ceil(2).max(1);
        if self.pending_grant >= batch {
            let grant = std::mem::take(&mut self.pending_grant);
            self.recv_allowed = self.recv_allowed.saturating_add(grant);
            (Some(grant), released)
        } else {
            (None, released)
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
    /// Cancelled by the peer, the deadline or a protocol error: nothing more is
    /// sent for it, and it stays only until the application ends it.
    pub(crate) cancelled: bool,
    /// The deadline was shortened to the local maximum: when it passes, the
    /// opener is told, since its own deadline is later.
    pub(crate) clamped: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credit_is_enforced_and_returned_in_batches() {
        let mut stream = StreamState::default();
        stream.grant_window(4);
        for seq in 0..4 {
            stream.on_message(seq, 10).unwrap();
        }
        assert!(stream.on_message(4, 10).is_err());
        assert_eq!(stream.on_consume(1, 10), (None, 10));
        assert_eq!(stream.on_consume(1, 10), (Some(2), 10));
        assert_eq!(stream.recv_allowed, 2);
        stream.on_message(4, 1).unwrap();
        assert!(stream.on_message(9, 1).is_err());
    }

    #[test]
    fn consuming_in_bulk_grants_like_one_at_a_time() {
        let mut stream = StreamState::default();
        stream.grant_window(8);
        for seq in 0..8 {
            stream.on_message(seq, 10).unwrap();
        }
        assert_eq!(stream.on_consume(3, 30), (None, 30));
        assert_eq!(stream.on_consume(2, 20), (Some(5), 20));
        // More than was delivered counts only what was delivered.
        assert_eq!(stream.on_consume(9, 90), (None, 30));
        assert_eq!(stream.unconsumed, 0);
        assert_eq!(stream.on_consume(1, 10), (None, 0));
    }

    #[test]
    fn sending_needs_credit_and_stops_after_fin() {
        let mut stream = StreamState::default();
        assert_eq!(stream.take_sends(1), Err(Error::NoCredit));
        assert_eq!(stream.on_credit(2), Ok(true));
        assert_eq!(stream.on_credit(1), Ok(false));
        assert_eq!(stream.take_sends(1), Ok(0));
        assert_eq!(stream.take_sends(1), Ok(1));
        assert_eq!(stream.take_sends(2), Err(Error::NoCredit));
        assert_eq!(stream.on_credit(2), Ok(false));
        assert_eq!(stream.take_sends(2), Ok(2));
        assert_eq!(stream.send_seq, 4);
        stream.sent_fin = true;
        assert_eq!(stream.take_sends(1), Err(Error::UnknownCall));
        assert!(stream.on_credit(u32::MAX).is_err());
    }

    #[test]
    fn fin_must_count_every_message() {
        let mut stream = StreamState::default();
        stream.grant_window(2);
        stream.on_message(0, 1).unwrap();
        assert!(stream.on_fin(2).is_err());
        stream.on_fin(1).unwrap();
        assert!(stream.on_message(1, 1).is_err());
        // Consumption after the peer finished returns no credit.
        assert_eq!(stream.on_consume(1, 1), (None, 1));
    }
}
