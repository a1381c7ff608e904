//! State of calls in flight and the per-stream credit accounting.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;

use crate::error::{CommandError, Error};
use crate::window::{ReceiveWindow, RequestLatency};

/// Credit a stream message costs beyond its payload, in bytes.
///
/// Each message holds the receiver to a queue entry and a buffer handle
/// besides its bytes; counting them keeps empty and tiny messages from being
/// free, so a window bounds what a stream makes its receiver hold however
/// small its messages are.
pub const STREAM_MESSAGE_OVERHEAD: u32 = 32;

/// Largest send credit a stream may be granted, in bytes: the most a `u32`
/// window can give. A grant beyond it is a per-call violation.
pub(crate) const MAX_STREAM_CREDIT: i64 = u32::MAX as i64;

/// Credit a message of `len` payload bytes costs.
pub(crate) fn message_cost(len: usize) -> u64 {
    len as u64 + u64::from(STREAM_MESSAGE_OVERHEAD)
}

/// Messages received on a stream that the application has not read yet.
/// Bounded by the receive window: the peer cannot send more than it was
/// granted, plus the one message that took its credit below zero.
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

    /// Moves messages into `out`, at least one if there is any, then more
    /// while fewer than `max` were moved and their cost stays under
    /// `max_cost`; returns how many and their payload bytes.
    pub(crate) fn take_into(
        &mut self,
        out: &mut VecDeque<Bytes>,
        max: usize,
        max_cost: u64,
    ) -> (u32, usize) {
        let mut count = 0;
        let mut bytes = 0;
        let mut cost = 0;
        while let Some(message) = self.messages.front() {
            let next = message_cost(message.len());
            if count > 0 && (count >= max || cost + next > max_cost) {
                break;
            }
            cost += next;
            bytes += message.len();
            count += 1;
            out.extend(self.messages.pop_front());
        }
        self.bytes -= bytes;
        // Lossless: an inbox holds at most a `u32` window of messages, each
        // costing at least `STREAM_MESSAGE_OVERHEAD`.
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

/// Flow control of one stream, both directions, counted in bytes (each
/// message costs its length plus [`STREAM_MESSAGE_OVERHEAD`]), and the
/// messages received and not yet read.
///
/// A side may send a message while its credit is above zero, whatever the
/// message's size: credit may end below zero by less than one message, so a
/// message up to `max_message_size` always makes progress and the receiver
/// holds less than its window plus one message. Send credit only ever comes
/// from the peer (its open or its `Credit` frames); receive credit is what
/// this side granted and not yet seen used.
#[derive(Debug, Default)]
pub(crate) struct StreamState {
    /// Bytes this side may still send, `reserved` included; below zero after
    /// a message larger than what was left.
    pub(crate) send_credit: i64,
    /// Part of `send_credit` set aside by [`crate::Connection::reserve`] for
    /// a batch the application is gathering.
    pub(crate) reserved: u64,
    /// Sequence number of the next message this side sends.
    pub(crate) send_seq: u32,
    /// This side sent its `Fin`.
    pub(crate) sent_fin: bool,
    /// The peer's send credit as this side counts it.
    pub(crate) recv_allowed: i64,
    /// Sequence number expected on the next message received.
    pub(crate) recv_seq: u32,
    /// The peer sent its `Fin`.
    pub(crate) recv_fin: bool,
    /// Received and not yet read.
    pub(crate) inbox: Inbox,
    /// The application stopped reading: messages are dropped on arrival and
    /// their credit returned.
    pub(crate) discard_input: bool,
    /// Cost of read messages whose credit has not been returned yet, plus
    /// what a larger window owes the peer, less what a smaller one withholds
    /// (so below zero for a while after the window shrinks). The credit the
    /// peer holds, what it sent that is unread and this always add up to
    /// the window.
    pub(crate) pending_grant: i64,
    /// The receive window: its size now, the basis of grant batching.
    pub(crate) window: ReceiveWindow,
}

impl StreamState {
    /// Accounts for a message of `len` bytes from the peer.
    pub(crate) fn on_message(&mut self, seq: u32, len: usize) -> Result<(), Error> {
        if self.recv_fin {
            return Err(Error::Protocol("message after fin".into()));
        }
        if self.recv_allowed <= 0 {
            return Err(Error::Protocol("message beyond granted credit".into()));
        }
        if seq != self.recv_seq {
            return Err(Error::Protocol(format!(
                "message sequence {seq}, expected {}",
                self.recv_seq
            )));
        }
        // Cannot underflow: at most one message (under 2^32 + 32 bytes) is
        // taken from a positive credit.
        self.recv_allowed -= message_cost(len) as i64;
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

    /// Adds credit granted by the peer; returns whether sending was blocked on
    /// credit and no longer is.
    pub(crate) fn on_credit(&mut self, credit: u32) -> Result<bool, Error> {
        let was_blocked = self.send_credit <= 0;
        let credit_now = self.send_credit + i64::from(credit);
        if credit_now > MAX_STREAM_CREDIT {
            return Err(Error::Protocol(format!(
                "credit of {credit_now} bytes, over 2^32 - 1"
            )));
        }
        self.send_credit = credit_now;
        Ok(was_blocked && credit_now > 0)
    }

    /// Whether this side's output is over, and how: `Finished` after its own
    /// `Fin`.
    pub(crate) fn check_output(&self) -> Result<(), CommandError> {
        if self.sent_fin {
            return Err(CommandError::Finished);
        }
        Ok(())
    }

    /// Spends credit for messages of the given lengths, sent in that order,
    /// all or none: each needs credit above zero before it. Reserved credit
    /// is spent first. Returns the first one's sequence number.
    pub(crate) fn take_sends(
        &mut self,
        lengths: impl IntoIterator<Item = usize>,
    ) -> Result<u32, CommandError> {
        self.check_output()?;
        let mut credit = self.send_credit;
        let mut count = 0u32;
        let mut spent = 0u64;
        for len in lengths {
            if credit <= 0 {
                return Err(CommandError::NoCredit);
            }
            let cost = message_cost(len);
            credit -= cost as i64;
            spent += cost;
            count = count.wrapping_add(1);
        }
        if count == 0 && credit <= 0 {
            return Err(CommandError::NoCredit);
        }
        self.send_credit = credit;
        self.reserved = self.reserved.saturating_sub(spent).min(self.sendable());
        let seq = self.send_seq;
        self.send_seq = self.send_seq.wrapping_add(count);
        Ok(seq)
    }

    /// Sets aside up to `max` bytes of credit (at least one), replacing what
    /// an earlier reservation left; returns how many are reserved now.
    pub(crate) fn reserve(&mut self, max: u64) -> Result<u64, CommandError> {
        self.check_output()?;
        let reserved = self.sendable().min(max.max(1));
        if reserved == 0 {
            return Err(CommandError::NoCredit);
        }
        self.reserved = reserved;
        Ok(reserved)
    }

    /// Returns reserved credit to the common pool.
    pub(crate) fn unreserve(&mut self) {
        self.reserved = 0;
    }

    /// Bytes of credit left, reserved or not; a message of any size may be
    /// sent while this is above zero.
    pub(crate) fn sendable(&self) -> u64 {
        if self.sent_fin {
            return 0;
        }
        u64::try_from(self.send_credit).unwrap_or(0)
    }

    /// Most cost one read takes: a quarter of the window, so that the peer's
    /// credit (returned at half the window) goes back while the application
    /// still works through what it read.
    pub(crate) fn read_budget(&self) -> u64 {
        (u64::from(self.window.current()) / 4).max(1)
    }

    /// The application read `messages` messages of `bytes` payload bytes
    /// at `now`, when this side's requests on the connection stood at
    /// `requests`. Returns the credit to grant now, if the batch is due.
    pub(crate) fn on_read(
        &mut self,
        messages: u32,
        bytes: usize,
        now: Instant,
        requests: RequestLatency,
    ) -> Option<u64> {
        if messages == 0 || self.recv_fin {
            return None;
        }
        let cost = bytes as u64 + u64::from(messages) * u64::from(STREAM_MESSAGE_OVERHEAD);
        self.pending_grant += cost as i64;
        let before = self.window.current();
        self.window.on_consumed(cost, now, requests);
        self.pending_grant += i64::from(self.window.current()) - i64::from(before);
        // Granting in batches of half the window keeps frames few while never
        // leaving the peer without credit when everything has been read:
        // then what the peer holds and this add up to the whole window.
        let batch = i64::from(self.window.current().div_ceil(2)).max(1);
        if self.pending_grant >= batch {
            let grant = std::mem::take(&mut self.pending_grant);
            self.recv_allowed += grant;
            Some(grant as u64)
        } else {
            None
        }
    }

    /// Grants the initial receive window; returns its size.
    pub(crate) fn grant_window(&mut self, window: ReceiveWindow) -> u32 {
        let granted = window.current();
        self.window = window;
        self.recv_allowed += i64::from(granted);
        granted
    }
}

/// Queues `Credit` frames returning `grant` bytes, split where one frame's
/// `u32` cannot carry it all.
pub(crate) fn queue_grant(send: &mut crate::send_queue::SendQueue, mux: u32, mut grant: u64) {
    while grant > 0 {
        let part = u32::try_from(grant).unwrap_or(u32::MAX);
        send.control(crate::frame::Op::Credit, mux, part, &[]);
        grant -= u64::from(part);
    }
}

/// A call this side opened.
#[derive(Debug)]
pub(crate) struct OutCall {
    pub(crate) deadline: Instant,
    /// When it was opened: a request's latency, for stream windows' tuning.
    pub(crate) opened: Instant,
    /// `None` for a single request. Boxed, so that the table of calls moves
    /// small entries for the many single requests.
    pub(crate) stream: Option<Box<StreamState>>,
}

/// A call the peer opened.
#[derive(Debug)]
pub(crate) struct InCall {
    pub(crate) deadline: Instant,
    /// `None` for a single request; boxed, as in [`OutCall`].
    pub(crate) stream: Option<Box<StreamState>>,
    /// The stream's input window was granted.
    pub(crate) accepted: bool,
    /// Why the call was cancelled (by the peer, the deadline or a protocol
    /// error): nothing more is sent for it, and it stays only until the
    /// application ends it. Boxed: it is rare, and the call table moves
    /// every entry's room for it.
    pub(crate) cancelled: Option<Box<Error>>,
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

    /// Cost of a message of `len` bytes, as a window size.
    fn cost(len: usize) -> u32 {
        message_cost(len) as u32
    }

    /// The application reads `messages` of `bytes` now, with no requests
    /// on the connection.
    fn read(stream: &mut StreamState, messages: u32, bytes: usize) -> Option<u64> {
        stream.on_read(messages, bytes, Instant::now(), RequestLatency::default())
    }

    /// A window of `size` bytes that is not tuned.
    fn fixed(size: u32) -> ReceiveWindow {
        ReceiveWindow::new(size, size)
    }

    #[test]
    fn credit_is_enforced_in_bytes_and_returned_in_batches() {
        let mut stream = StreamState::default();
        stream.grant_window(fixed(4 * cost(8)));
        for seq in 0..4 {
            stream.on_message(seq, 8).unwrap();
        }
        assert!(stream.on_message(4, 0).is_err());
        assert_eq!(read(&mut stream, 1, 8), None);
        assert_eq!(read(&mut stream, 1, 8), Some(u64::from(2 * cost(8))));
        assert_eq!(stream.recv_allowed, i64::from(2 * cost(8)));
        stream.on_message(4, 8).unwrap();
        assert!(stream.on_message(9, 8).is_err());
    }

    #[test]
    fn a_message_larger_than_the_window_passes_alone() {
        let mut stream = StreamState::default();
        stream.grant_window(fixed(100));
        // Credit above zero admits a message of any size...
        stream.on_message(0, 1_000_000).unwrap();
        // ...and nothing more until it is read and returned.
        assert!(stream.on_message(1, 0).is_err());
        assert_eq!(
            read(&mut stream, 1, 1_000_000),
            Some(message_cost(1_000_000))
        );
        assert_eq!(stream.recv_allowed, 100);
        stream.on_message(1, 0).unwrap();
    }

    #[test]
    fn reading_in_bulk_grants_like_one_at_a_time() {
        let mut stream = StreamState::default();
        stream.grant_window(fixed(8 * cost(0)));
        for seq in 0..8 {
            stream.on_message(seq, 0).unwrap();
        }
        assert_eq!(read(&mut stream, 3, 0), None);
        assert_eq!(read(&mut stream, 2, 0), Some(u64::from(5 * cost(0))));
        assert_eq!(read(&mut stream, 0, 0), None);
    }

    #[test]
    fn sending_needs_credit_above_zero_and_stops_after_fin() {
        let mut stream = StreamState::default();
        assert_eq!(stream.take_sends([1]), Err(CommandError::NoCredit));
        assert_eq!(stream.on_credit(cost(1)), Ok(true));
        assert_eq!(stream.on_credit(1), Ok(false));
        assert_eq!(stream.take_sends([1]), Ok(0));
        // One byte left: enough for a message of any size, all or none in a batch.
        assert_eq!(stream.sendable(), 1);
        assert_eq!(stream.take_sends([5, 5]), Err(CommandError::NoCredit));
        assert_eq!(stream.take_sends([5000]), Ok(1));
        assert_eq!(stream.send_credit, 1 - i64::from(cost(5000)));
        assert_eq!(stream.on_credit(cost(5000)), Ok(true));
        assert_eq!(stream.take_sends([2, 2]), Err(CommandError::NoCredit));
        assert_eq!(stream.take_sends([2]), Ok(2));
        assert_eq!(stream.send_seq, 3);
        stream.sent_fin = true;
        assert_eq!(stream.take_sends([1]), Err(CommandError::Finished));
    }

    #[test]
    fn credit_over_the_largest_window_is_refused() {
        let mut stream = StreamState::default();
        stream.on_credit(u32::MAX).unwrap();
        assert!(stream.on_credit(1).is_err());
        let mut stream = StreamState::default();
        stream.on_credit(0x8000_0000).unwrap();
        assert!(stream.on_credit(0x8000_0000).is_err());
        // Credit below zero leaves room for a grant that brings it back.
        let mut stream = StreamState::default();
        stream.on_credit(1).unwrap();
        stream.take_sends([1000]).unwrap();
        assert_eq!(stream.on_credit(u32::MAX), Ok(true));
    }

    #[test]
    fn reserved_credit_is_spent_first_and_a_new_reservation_replaces_the_old() {
        let mut stream = StreamState::default();
        stream.on_credit(1000).unwrap();
        assert_eq!(stream.reserve(400), Ok(400));
        assert_eq!(stream.take_sends([100, 100]), Ok(0));
        assert_eq!(stream.reserved, 400 - 2 * message_cost(100));
        assert_eq!(stream.reserve(64_000), Ok(1000 - 2 * message_cost(100)));
        assert_eq!(stream.sendable(), 1000 - 2 * message_cost(100));
        // The last message of a reservation may take credit below zero.
        assert_eq!(stream.take_sends([800]), Ok(2));
        assert_eq!(stream.reserved, 0);
        assert_eq!(stream.reserve(1), Err(CommandError::NoCredit));
    }

    #[test]
    fn fin_must_count_every_message() {
        let mut stream = StreamState::default();
        stream.grant_window(fixed(2 * cost(0)));
        stream.on_message(0, 0).unwrap();
        assert!(stream.on_fin(2).is_err());
        stream.on_fin(1).unwrap();
        assert!(stream.on_message(1, 0).is_err());
        // Reading after the peer finished returns no credit.
        assert_eq!(read(&mut stream, 1, 0), None);
    }

    #[test]
    fn an_inbox_hands_out_at_most_what_is_asked() {
        let mut inbox = Inbox::default();
        assert!(inbox.push(Bytes::from_static(b"ab")));
        assert!(!inbox.push(Bytes::from_static(b"cde")));
        assert!(!inbox.push(Bytes::from_static(b"f")));
        let mut out = VecDeque::new();
        assert_eq!(inbox.take_into(&mut out, 1, u64::MAX), (1, 2));
        assert_eq!(inbox.bytes(), 4);
        // A budget under one message still hands out one.
        assert_eq!(inbox.take_into(&mut out, 10, 1), (1, 3));
        assert_eq!(inbox.clear(), (1, 1));
        assert!(inbox.is_empty());
        assert_eq!(out, [Bytes::from_static(b"ab"), Bytes::from_static(b"cde")]);
    }

    #[derive(Clone, Debug)]
    enum Step {
        /// The peer sends a message of this many bytes, if it has credit.
        Send(usize),
        /// The application reads up to this many messages.
        Read(usize),
        /// Time passes, in microseconds.
        Wait(u64),
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            (0usize..70_000).prop_map(Step::Send),
            (1usize..8).prop_map(Step::Read),
            (1u64..3_000).prop_map(Step::Wait),
        ]
    }

    proptest::proptest! {
        /// However the window is tuned: what the receiver holds unread stays
        /// under the largest window plus one message, a receiver that has
        /// read everything has left the peer credit, and the peer's credit,
        /// the unread messages and the credit not yet returned add up to the
        /// window now.
        #[test]
        fn tuned_windows_stay_bounded_and_never_starve_the_sender(
            max_kib in 1u32..2048,
            start_kib in 1u32..256,
            steps in proptest::collection::vec(step(), 1..400),
        ) {
            let (max, start) = (max_kib * 1024, start_kib * 1024);
            let mut stream = StreamState::default();
            stream.grant_window(ReceiveWindow::new(max, start));
            let mut now = Instant::now();
            let mut unread: VecDeque<usize> = VecDeque::new();
            let mut largest = 0u64;
            for step in steps {
                match step {
                    Step::Send(len) => {
                        // The sender's view of its credit is the receiver's:
                        // grants arrive at once here.
                        if stream.recv_allowed > 0 {
                            stream.on_message(stream.recv_seq, len).unwrap();
                            unread.push_back(len);
                            largest = largest.max(message_cost(len));
                        }
                    }
                    Step::Read(count) => {
                        let taken: Vec<usize> =
                            (0..count).map_while(|_| unread.pop_front()).collect();
                        let bytes = taken.iter().sum();
                        stream.on_read(taken.len() as u32, bytes, now, RequestLatency::default());
                    }
                    Step::Wait(micros) => now += std::time::Duration::from_micros(micros),
                }
                let unread_cost: u64 = unread.iter().map(|&len| message_cost(len)).sum();
                proptest::prop_assert!(unread_cost <= u64::from(max) + largest);
                proptest::prop_assert!(stream.window.current() <= max);
                proptest::prop_assert_eq!(
                    stream.recv_allowed + unread_cost as i64 + stream.pending_grant,
                    i64::from(stream.window.current())
                );
                if unread.is_empty() {
                    proptest::prop_assert!(stream.recv_allowed > 0);
                }
            }
        }
    }
}
