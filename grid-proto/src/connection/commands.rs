//! Application commands: open, answer, stream, cancel, drain, close.

use std::time::{Duration, Instant};

use bytes::Bytes;

use std::collections::VecDeque;

use super::{Connection, ConnectionState};
use crate::calls::{queue_grant, OutCall, StreamState};
use crate::error::{CommandError, Error};
use crate::event::{CallId, ReadOutcome, Reservation};
use crate::frame::Op;
use crate::handshake::MAX_NODE_NAME;
use crate::open_prefix;
use crate::send_queue::OutMessage;
use crate::window::ReceiveWindow;

/// Longest subroute, in bytes (its length travels in one byte).
pub const MAX_SUBROUTE: usize = 255;

/// Deadlines shorter than this fail locally: the call could not complete anyway.
const MIN_DEADLINE: Duration = Duration::from_millis(1);

/// What to call: the handler, its optional subroute, and the payload.
#[derive(Clone, Debug, Default)]
pub struct CallTarget<'a> {
    /// Handler id registered on the peer.
    pub handler: u16,
    /// Subroute (empty for none), at most [`MAX_SUBROUTE`] bytes.
    pub subroute: &'a [u8],
}

impl<'a> CallTarget<'a> {
    /// A handler without subroute.
    pub fn new(handler: u16) -> CallTarget<'a> {
        CallTarget {
            handler,
            subroute: &[],
        }
    }

    /// A handler with a subroute.
    pub fn with_subroute(handler: u16, subroute: &'a [u8]) -> CallTarget<'a> {
        CallTarget { handler, subroute }
    }
}

const _: () = assert!(MAX_SUBROUTE <= MAX_NODE_NAME);

impl Connection {
    /// Opens a single request. Its outcome arrives as [`crate::Event::RequestEnded`].
    ///
    /// `timeout` is the call's deadline relative to `now`: the configured
    /// default when `None`, clamped to the configured maximum, and a deadline
    /// under 1 ms is refused with `DeadlineExceeded`. Refusals are
    /// [`CommandError::Call`] (`Disconnected`, `Draining`, `Overloaded`,
    /// `TooLarge`, `DeadlineExceeded`) or [`CommandError::SendBufferFull`].
    pub fn open_request(
        &mut self,
        now: Instant,
        target: CallTarget<'_>,
        payload: Bytes,
        timeout: Option<Duration>,
    ) -> Result<CallId, CommandError> {
        self.open_call(now, target, payload, timeout, None)
    }

    /// Opens a stream with an initial payload. `recv_window` is how many
    /// bytes the responder may send before this side reads any (each message
    /// costing its length plus [`crate::STREAM_MESSAGE_OVERHEAD`]; see
    /// [`crate::DEFAULT_STREAM_WINDOW`]).
    /// Send messages once [`crate::Event::StreamWritable`] grants credit; the
    /// stream ends with [`crate::Event::StreamEnded`]. Refused like
    /// [`open_request`](Self::open_request).
    pub fn open_stream(
        &mut self,
        now: Instant,
        target: CallTarget<'_>,
        payload: Bytes,
        timeout: Option<Duration>,
        recv_window: u32,
    ) -> Result<CallId, CommandError> {
        self.open_call(now, target, payload, timeout, Some(recv_window))
    }

    fn open_call(
        &mut self,
        now: Instant,
        target: CallTarget<'_>,
        payload: Bytes,
        timeout: Option<Duration>,
        window: Option<u32>,
    ) -> Result<CallId, CommandError> {
        match self.state() {
            ConnectionState::Established => {}
            ConnectionState::Draining => return Err(Error::Draining.into()),
            ConnectionState::Handshaking | ConnectionState::Closed => {
                return Err(Error::Disconnected.into())
            }
        }
        if self.is_peer_draining() {
            return Err(Error::Draining.into());
        }
        let Some(peer) = self.peer.as_ref().map(|peer| peer.limits) else {
            return Err(Error::Disconnected.into());
        };
        if target.subroute.len() > MAX_SUBROUTE {
            return Err(Error::TooLarge {
                size: target.subroute.len(),
                max: MAX_SUBROUTE,
            }
            .into());
        }
        let prefix_len = 3 + target.subroute.len() + if window.is_some() { 4 } else { 0 };
        let size = prefix_len + payload.len();
        if size > peer.max_message_size as usize {
            return Err(Error::TooLarge {
                size,
                max: peer.max_message_size as usize,
            }
            .into());
        }
        if self.outgoing.len() >= peer.max_incoming_calls as usize
            || (window.is_some() && self.outgoing_streams >= peer.max_incoming_streams as usize)
        {
            return Err(Error::Overloaded.into());
        }
        self.check_send_buffer()?;
        let relative = timeout.unwrap_or(self.config.timeouts.default_deadline);
        if relative < MIN_DEADLINE {
            return Err(Error::DeadlineExceeded.into());
        }
        let relative = relative.min(self.config.timeouts.max_deadline);
        // Rounded up, so the responder's deadline (counted from the arrival)
        // never passes before the opener's.
        let millis = u32::try_from(relative.as_micros().div_ceil(1000)).unwrap_or(u32::MAX);
        let deadline = now + relative;
        let mux = self.allocate_mux();
        // A stream's open announces the window it starts with.
        let (op, stream, window) = match window {
            Some(max) => {
                let mut stream = StreamState::default();
                let granted = stream.grant_window(self.receive_window(max));
                self.outgoing_streams += 1;
                (Op::StreamOpen, Some(Box::new(stream)), Some(granted))
            }
            None => (Op::Request, None, None),
        };
        self.outgoing.insert(
            mux,
            OutCall {
                deadline,
                opened: now,
                stream,
            },
        );
        self.deadlines.insert(deadline, mux);
        self.compact_deadlines();
        let mut message = OutMessage::new(op, mux, millis, payload);
        message.prefix = open_prefix::encode(&target, window);
        self.queue_message(message);
        self.observe_output(now);
        Ok(CallId(mux))
    }

    fn allocate_mux(&mut self) -> u32 {
        // Terminates: fewer calls are open or held than the 2^31 - 1 ids of
        // the namespace.
        loop {
            let low = self.next_mux;
            self.next_mux = if low >= 0x7fff_ffff { 1 } else { low + 1 };
            let mux = low | self.own_namespace();
            let ended = !self.ended_streams.is_empty() && self.ended_streams.contains_key(&mux);
            if !ended && !self.outgoing.contains_key(&mux) {
                return mux;
            }
        }
    }

    fn check_send_buffer(&mut self) -> Result<(), CommandError> {
        if self.send.buffered() >= self.send_limit() {
            self.send_blocked = true;
            return Err(CommandError::SendBufferFull);
        }
        Ok(())
    }

    fn peer_max_message(&self) -> usize {
        self.peer
            .as_ref()
            .map_or(0, |peer| peer.limits.max_message_size as usize)
    }

    fn check_message_size(&self, len: usize) -> Result<(), CommandError> {
        let max = self.peer_max_message();
        if len > max {
            return Err(Error::TooLarge { size: len, max }.into());
        }
        Ok(())
    }

    fn queue_message(&mut self, message: OutMessage) {
        // A `Fin` ends a direction; it carries no message of the application.
        self.stats.messages_sent += u64::from(message.op != Op::Fin);
        let fragment = self.fragment_size();
        self.send.push(message, fragment);
    }

    /// Grants the opener of an incoming stream `recv_window` bytes of input
    /// (each message costing its length plus
    /// [`crate::STREAM_MESSAGE_OVERHEAD`]).
    /// Call once, after [`crate::Event::IncomingStream`].
    pub fn accept_stream(&mut self, id: CallId, recv_window: u32) -> Result<(), CommandError> {
        let mux = id.0;
        let call = self
            .incoming
            .get_mut(&mux)
            .ok_or(CommandError::UnknownCall)?;
        if let Some(reason) = call.cancelled.as_deref() {
            return Err(reason.clone().into());
        }
        let (Some(stream), false) = (call.stream.as_deref_mut(), call.accepted) else {
            return Err(CommandError::UnknownCall);
        };
        call.accepted = true;
        let start = self.config.limits.stream_window_start;
        let granted = stream.grant_window(ReceiveWindow::new(recv_window, start));
        if granted > 0 {
            self.send.control(Op::Credit, mux, granted, &[]);
        }
        Ok(())
    }

    /// A receive window of at most `max` bytes, starting where the limits say.
    fn receive_window(&self, max: u32) -> ReceiveWindow {
        ReceiveWindow::new(max, self.config.limits.stream_window_start)
    }

    /// Sends one stream message, in either role. Refused with `NoCredit` when
    /// the peer has not granted room for it. Any credit set aside by
    /// [`reserve`](Self::reserve) goes back to the common pool first.
    pub fn send_message(&mut self, id: CallId, payload: Bytes) -> Result<(), CommandError> {
        self.check_message_size(payload.len())?;
        let full = self.send.buffered() >= self.config.limits.send_buffer_size;
        let stream = self.sending_stream(id)?;
        stream.check_output()?;
        if full {
            self.send_blocked = true;
            return Err(CommandError::SendBufferFull);
        }
        stream.unreserve();
        let seq = stream.take_sends([payload.len()])?;
        self.queue_message(OutMessage::new(Op::Message, id.0, seq, payload));
        Ok(())
    }

    /// Sets aside up to `max` bytes of send credit of stream `id`, for an
    /// application that gathers a batch before handing it over with
    /// [`send_messages`](Self::send_messages), which spends reserved credit
    /// first. The batch may take messages while the reserved bytes it has
    /// not spent are above zero, each costing its length plus
    /// [`crate::STREAM_MESSAGE_OVERHEAD`]; the last may overshoot, as any
    /// message sent with credit left may. A new reservation replaces what an
    /// earlier one left. Refused like
    /// [`poll_send_ready`](Self::poll_send_ready).
    pub fn reserve(&mut self, id: CallId, max: u64) -> Result<Reservation, CommandError> {
        self.poll_send_ready(id)?;
        let max_message_size = self.peer_max_message();
        let bytes = self.sending_stream(id)?.reserve(max)?;
        Ok(Reservation {
            bytes,
            max_message_size,
        })
    }

    /// Sends the stream messages of `batch` in order, emptying it: one command
    /// for many small messages. Reserved credit is spent first, then the
    /// rest; each message needs credit above zero before it, as with
    /// [`send_message`](Self::send_message). On a refusal nothing is sent and
    /// `batch` is left as it was.
    ///
    /// The send buffer is not checked, so that a batch gathered after
    /// [`reserve`](Self::reserve) or [`poll_send_ready`](Self::poll_send_ready)
    /// said there was room is never refused half-way: keep batches small, as
    /// they may overshoot `send_buffer_size` by their own size.
    pub fn send_messages(
        &mut self,
        id: CallId,
        batch: &mut Vec<Bytes>,
    ) -> Result<(), CommandError> {
        if batch.is_empty() {
            return Ok(());
        }
        for payload in batch.iter() {
            self.check_message_size(payload.len())?;
        }
        let lengths = batch.iter().map(Bytes::len);
        let first = self.sending_stream(id)?.take_sends(lengths)?;
        let sequence = std::iter::successors(Some(first), |seq| Some(seq.wrapping_add(1)));
        for (seq, payload) in sequence.zip(batch.drain(..)) {
            self.queue_message(OutMessage::new(Op::Message, id.0, seq, payload));
        }
        Ok(())
    }

    /// Stream `id` for sending, in either role, or why it cannot send: the
    /// outcome of a stream that has ended (`Ended` when it ended normally),
    /// the reason an incoming call was cancelled, `UnknownCall` for no stream.
    fn sending_stream(&mut self, id: CallId) -> Result<&mut StreamState, CommandError> {
        let mux = id.0;
        if self.owns(mux) {
            if let Some(call) = self.outgoing.get_mut(&mux) {
                return call.stream.as_deref_mut().ok_or(CommandError::UnknownCall);
            }
            return match self.ended_streams.get(&mux) {
                Some(ended) => Err(match &ended.result {
                    Ok(()) => CommandError::Ended,
                    Err(error) => error.clone().into(),
                }),
                None => Err(CommandError::UnknownCall),
            };
        }
        match self.incoming.get_mut(&mux) {
            Some(call) => match call.cancelled.as_deref() {
                Some(reason) => Err(reason.clone().into()),
                None => call.stream.as_deref_mut().ok_or(CommandError::UnknownCall),
            },
            None => Err(CommandError::UnknownCall),
        }
    }

    /// Bytes of credit stream `id` has left from the peer, reserved or not
    /// (0 for a call that is not a stream this side can send on). A message
    /// of any size may be sent while it is above zero.
    pub fn send_credit(&self, id: CallId) -> u64 {
        let stream = if self.owns(id.0) {
            self.outgoing
                .get(&id.0)
                .and_then(|call| call.stream.as_deref())
        } else {
            self.incoming
                .get(&id.0)
                .filter(|call| !call.is_cancelled())
                .and_then(|call| call.stream.as_deref())
        };
        stream.map_or(0, StreamState::sendable)
    }

    /// Whether a stream message can be sent now (credit and buffer room).
    pub fn can_send(&self, id: CallId) -> bool {
        self.send_credit(id) > 0 && self.send.buffered() < self.config.limits.send_buffer_size
    }

    /// Whether a stream message can be sent now, and if not, what to wait for:
    /// `NoCredit` ([`crate::Event::StreamWritable`] follows when the peer grants
    /// more) or `SendBufferFull` ([`crate::Event::Writable`] follows when the
    /// buffer drains). Any other refusal is final for the stream's output.
    pub fn poll_send_ready(&mut self, id: CallId) -> Result<(), CommandError> {
        let stream = self.sending_stream(id)?;
        stream.check_output()?;
        if stream.sendable() == 0 {
            return Err(CommandError::NoCredit);
        }
        self.check_send_buffer()
    }

    /// Reads up to `max` (at least one) received messages of stream `id`, in
    /// either role, into `out`, and at most about a quarter of the receive
    /// window of bytes (but always one message), so that the credit returned
    /// at half the window leaves while the application works through what it
    /// read. Reading is consuming: the peer gets its credit back, in batches
    /// of half the receive window. After the last
    /// message, reports how the input ended; a stream this side opened stays
    /// readable after [`crate::Event::StreamEnded`] until it is released with
    /// [`cancel`](Self::cancel).
    pub fn read(
        &mut self,
        id: CallId,
        out: &mut VecDeque<Bytes>,
        max: usize,
    ) -> Result<ReadOutcome, CommandError> {
        let mux = id.0;
        if self.owns(mux) && !self.outgoing.contains_key(&mux) {
            let ended = self
                .ended_streams
                .get_mut(&mux)
                .ok_or(CommandError::UnknownCall)?;
            if ended.inbox.is_empty() {
                return Ok(match &ended.result {
                    Ok(()) => ReadOutcome::Finished,
                    Err(error) => ReadOutcome::Failed(error.clone()),
                });
            }
            let (count, bytes) = ended.inbox.take_into(out, max, u64::MAX);
            self.stream_buffered -= bytes;
            return Ok(ReadOutcome::Messages {
                count: count as usize,
                credit_granted: false,
            });
        }
        let (stream, cancelled) = if self.owns(mux) {
            let call = self.outgoing.get_mut(&mux);
            (call.and_then(|call| call.stream.as_deref_mut()), None)
        } else {
            match self.incoming.get_mut(&mux) {
                Some(call) => (
                    call.stream.as_deref_mut(),
                    call.cancelled.as_deref().cloned(),
                ),
                None => (None, None),
            }
        };
        let stream = stream.ok_or(CommandError::UnknownCall)?;
        if stream.inbox.is_empty() {
            return Ok(match cancelled {
                Some(reason) => ReadOutcome::Failed(reason),
                None if stream.recv_fin => ReadOutcome::Finished,
                None => ReadOutcome::Empty,
            });
        }
        let budget = stream.read_budget();
        let (count, bytes) = stream.inbox.take_into(out, max, budget);
        self.stream_buffered -= bytes;
        let grant = if cancelled.is_none() {
            stream.on_read(count, bytes, self.latest, self.request_latency)
        } else {
            None
        };
        if let Some(grant) = grant {
            queue_grant(&mut self.send, mux, grant);
        }
        Ok(ReadOutcome::Messages {
            count: count as usize,
            credit_granted: grant.is_some(),
        })
    }

    /// The application will read no more of stream `id`: what waits unread is
    /// dropped, and messages arriving later are dropped on arrival, their
    /// credit going straight back to the peer so that it is never blocked.
    pub fn stop_reading(&mut self, id: CallId) -> Result<(), CommandError> {
        let mux = id.0;
        if let Some(ended) = self.ended_streams.get_mut(&mux) {
            self.stream_buffered -= ended.inbox.clear().1;
            return Ok(());
        }
        let (stream, live) = if self.owns(mux) {
            let call = self.outgoing.get_mut(&mux);
            (call.and_then(|call| call.stream.as_deref_mut()), true)
        } else {
            match self.incoming.get_mut(&mux) {
                Some(call) => {
                    let live = !call.is_cancelled();
                    (call.stream.as_deref_mut(), live)
                }
                None => (None, false),
            }
        };
        let stream = stream.ok_or(CommandError::UnknownCall)?;
        stream.discard_input = true;
        let (count, bytes) = stream.inbox.clear();
        self.stream_buffered -= bytes;
        if let Some(grant) = stream
            .on_read(count, bytes, self.latest, self.request_latency)
            .filter(|_| live)
        {
            queue_grant(&mut self.send, mux, grant);
        }
        Ok(())
    }

    /// Ends this side's direction of a stream after every message queued
    /// before it. For the opener: no more input. For the responder: the call
    /// completed successfully, which ends it.
    pub fn finish(&mut self, id: CallId) -> Result<(), CommandError> {
        let mux = id.0;
        if self.owns(mux) {
            let stream = self.sending_stream(id)?;
            stream.check_output()?;
            stream.sent_fin = true;
            stream.unreserve();
            let count = stream.send_seq;
            self.queue_message(OutMessage::new(Op::Fin, mux, count, Bytes::new()));
            return Ok(());
        }
        let count = match self.incoming.get(&mux) {
            Some(call) => match &call.stream {
                Some(stream) => stream.send_seq,
                None if call.is_cancelled() => 0,
                None => return Err(CommandError::UnknownCall),
            },
            None => return Err(CommandError::UnknownCall),
        };
        self.end_incoming(mux, OutMessage::new(Op::Fin, mux, count, Bytes::new()));
        Ok(())
    }

    /// Answers an incoming single request.
    ///
    /// A response larger than the peer accepts is refused with `TooLarge` and
    /// leaves the call open, so it can still be answered with
    /// [`Connection::fail`]. Answering a call that was cancelled sends nothing
    /// and frees it.
    pub fn respond(&mut self, id: CallId, payload: Bytes) -> Result<(), CommandError> {
        let mux = id.0;
        let call = self.incoming.get(&mux).ok_or(CommandError::UnknownCall)?;
        let cancelled = call.is_cancelled();
        if call.stream.is_some() && !cancelled {
            return Err(CommandError::UnknownCall);
        }
        if !cancelled {
            self.check_message_size(payload.len())?;
        }
        let last = OutMessage::new(Op::Response, mux, 0, payload);
        self.end_held_incoming(mux, cancelled, last);
        Ok(())
    }

    /// Ends an incoming request or stream with an error, after every stream
    /// message queued before it.
    pub fn fail(&mut self, id: CallId, error: Error) -> Result<(), CommandError> {
        let mux = id.0;
        if !self.incoming.contains_key(&mux) {
            return Err(CommandError::UnknownCall);
        }
        let (code, mut message) = error.to_wire();
        let max = self.peer_max_message();
        if message.len() > max {
            message.truncate(max);
        }
        self.end_incoming(mux, OutMessage::new(Op::Error, mux, code as u32, message));
        Ok(())
    }

    fn end_incoming(&mut self, mux: u32, last: OutMessage) {
        let Some(call) = self.incoming.get(&mux) else {
            return;
        };
        let cancelled = call.is_cancelled();
        self.end_held_incoming(mux, cancelled, last);
    }

    /// Ends incoming call `mux`, which is held and `cancelled` or not, with
    /// `last` unless it was cancelled.
    fn end_held_incoming(&mut self, mux: u32, cancelled: bool, last: OutMessage) {
        // Queued before the call is removed: removing the last call of a drain
        // closes the connection, and this answer must precede the `Close`.
        if !cancelled && !self.is_closed() {
            self.queue_message(last);
        }
        self.remove_incoming(mux);
    }

    /// Cancels a call this side opened (no further event comes for it), or
    /// resets a call the peer opened; queued data of the call is dropped. For
    /// a stream this side opened that has already ended, forgets it and its
    /// unread messages: this is how the application releases it.
    pub fn cancel(&mut self, id: CallId) -> Result<(), CommandError> {
        let mux = id.0;
        if self.owns(mux) && !self.outgoing.contains_key(&mux) {
            let ended = self
                .ended_streams
                .remove(&mux)
                .ok_or(CommandError::UnknownCall)?;
            self.stream_buffered -= ended.inbox.bytes();
            return Ok(());
        }
        let notify = self.owns(mux)
            || !self
                .incoming
                .get(&mux)
                .ok_or(CommandError::UnknownCall)?
                .is_cancelled();
        self.send.remove_mux(mux);
        if notify {
            // Queued before the call is removed: removing the last call of a
            // drain closes the connection, and the `Cancel` must precede the `Close`.
            self.send.control(Op::Cancel, mux, 0, &[]);
        }
        if self.owns(mux) {
            if let Some(stream) = self.remove_outgoing(mux).and_then(|call| call.stream) {
                self.stream_buffered -= stream.inbox.bytes();
            }
        } else {
            self.remove_incoming(mux);
        }
        Ok(())
    }
}
