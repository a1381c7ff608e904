//! Application commands: open, answer, stream, cancel, drain, close.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Connection, ConnectionState};
use crate::calls::{OutCall, StreamState};
use crate::error::Error;
use crate::event::CallId;
use crate::frame::Op;
use crate::handshake::MAX_NODE_NAME;
use crate::send_queue::OutMessage;

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
    /// Opens a single request. Its outcome arrives as [`crate::Event::Response`].
    ///
    /// `timeout` is the call's deadline relative to `now`: the configured
    /// default when `None`, clamped to the configured maximum, and a deadline
    /// under 1 ms fails at once with `DeadlineExceeded`.
    pub fn open_request(
        &mut self,
        now: Instant,
        target: CallTarget<'_>,
        payload: Bytes,
        timeout: Option<Duration>,
    ) -> Result<CallId, Error> {
        self.open_call(now, target, payload, timeout, None)
    }

    /// Opens a stream with an initial payload. `recv_window` is how many
    /// messages the responder may send before this side consumes any.
    /// Send messages once [`crate::Event::StreamWritable`] grants credit; the
    /// stream ends with [`crate::Event::StreamFinished`].
    pub fn open_stream(
        &mut self,
        now: Instant,
        target: CallTarget<'_>,
        payload: Bytes,
        timeout: Option<Duration>,
        recv_window: u32,
    ) -> Result<CallId, Error> {
        self.open_call(now, target, payload, timeout, Some(recv_window))
    }

    fn open_call(
        &mut self,
        now: Instant,
        target: CallTarget<'_>,
        payload: Bytes,
        timeout: Option<Duration>,
        window: Option<u32>,
    ) -> Result<CallId, Error> {
        match self.state() {
            ConnectionState::Established => {}
            ConnectionState::Draining => return Err(Error::Draining),
            ConnectionState::Handshaking | ConnectionState::Closed => {
                return Err(Error::Disconnected)
            }
        }
        if self.is_peer_draining() {
            return Err(Error::Draining);
        }
        let Some(peer) = self.peer.as_ref().map(|peer| peer.limits) else {
            return Err(Error::Disconnected);
        };
        if target.subroute.len() > MAX_SUBROUTE {
            return Err(Error::TooLarge {
                size: target.subroute.len(),
                max: MAX_SUBROUTE,
            });
        }
        let prefix_len = 3 + target.subroute.len() + if window.is_some() { 4 } else { 0 };
        let size = prefix_len + payload.len();
        if size > peer.max_message_size as usize {
            return Err(Error::TooLarge {
                size,
                max: peer.max_message_size as usize,
            });
        }
        if self.outgoing.len() >= peer.max_incoming_calls as usize
            || (window.is_some() && self.outgoing_streams >= peer.max_incoming_streams as usize)
        {
            return Err(Error::Overloaded);
        }
        self.check_send_buffer()?;
        let relative = timeout.unwrap_or(self.config.timeouts.default_deadline);
        if relative < MIN_DEADLINE {
            return Err(Error::DeadlineExceeded);
        }
        let relative = relative.min(self.config.timeouts.max_deadline);
        // Rounded up, so the responder's deadline (counted from the arrival)
        // never passes before the opener's.
        let millis = u32::try_from(relative.as_micros().div_ceil(1000)).unwrap_or(u32::MAX);
        let deadline = now + relative;
        let mux = self.allocate_mux();
        let (op, stream) = match window {
            Some(window) => {
                let mut stream = StreamState::default();
                stream.grant_window(window);
                self.outgoing_streams += 1;
                (Op::StreamOpen, Some(stream))
            }
            None => (Op::Request, None),
        };
        self.outgoing.insert(mux, OutCall { deadline, stream });
        self.deadlines.insert(deadline, mux);
        self.compact_deadlines();
        let mut message = OutMessage::new(op, mux, millis, payload);
        message
            .prefix
            .extend_from_slice(&target.handler.to_le_bytes());
        // Lossless: checked against MAX_SUBROUTE (255) above.
        message.prefix.push(target.subroute.len() as u8);
        message.prefix.extend_from_slice(target.subroute);
        if let Some(window) = window {
            message.prefix.extend_from_slice(&window.to_le_bytes());
        }
        self.queue_message(message);
        Ok(CallId(mux))
    }

    fn allocate_mux(&mut self) -> u32 {
        // Terminates: fewer calls are open than the 2^31 - 1 ids of the namespace.
        loop {
            let low = self.next_mux;
            self.next_mux = if low >= 0x7fff_ffff { 1 } else { low + 1 };
            let mux = low | self.own_namespace();
            if !self.outgoing.contains_key(&mux) {
                return mux;
            }
        }
    }

    fn check_send_buffer(&mut self) -> Result<(), Error> {
        if self.send.buffered() >= self.config.limits.send_buffer_size {
            self.send_blocked = true;
            return Err(Error::SendBufferFull);
        }
        Ok(())
    }

    fn check_message_size(&self, len: usize) -> Result<(), Error> {
        let max = self
            .peer
            .as_ref()
            .map_or(0, |peer| peer.limits.max_message_size as usize);
        if len > max {
            return Err(Error::TooLarge { size: len, max });
        }
        Ok(())
    }

    fn queue_message(&mut self, message: OutMessage) {
        // A `Fin` ends a direction; it carries no message of the application.
        self.stats.messages_sent += u64::from(message.op != Op::Fin);
        let fragment = self.fragment_size();
        self.send.push(message, fragment);
    }

    /// Grants the opener of an incoming stream `recv_window` messages of input.
    /// Call once, after [`crate::Event::StreamOpened`].
    pub fn accept_stream(&mut self, id: CallId, recv_window: u32) -> Result<(), Error> {
        let mux = id.0;
        let call = self.incoming.get_mut(&mux).ok_or(Error::UnknownCall)?;
        if call.cancelled {
            return Err(Error::Cancelled);
        }
        let (Some(stream), false) = (call.stream.as_mut(), call.accepted) else {
            return Err(Error::UnknownCall);
        };
        call.accepted = true;
        stream.grant_window(recv_window);
        if recv_window > 0 {
            self.send.control(Op::Credit, mux, recv_window, &[]);
        }
        Ok(())
    }

    /// Sends one stream message, in either role. Fails with `NoCredit` when the
    /// peer has not granted room for it.
    pub fn send_message(&mut self, id: CallId, payload: Bytes) -> Result<(), Error> {
        self.check_message_size(payload.len())?;
        let seq = self.take_send_credit(id, 1, true)?;
        self.queue_message(OutMessage::new(Op::Message, id.0, seq, payload));
        Ok(())
    }

    /// Sends the stream messages of `batch` in order, emptying it: one command
    /// for many small messages. There must be credit for all of them; on an
    /// error nothing is sent and `batch` is left as it was.
    ///
    /// The send buffer is not checked, so that a batch gathered after
    /// [`poll_send_ready`](Self::poll_send_ready) said there was room is never
    /// refused half-way: keep batches small, as they may overshoot
    /// `send_buffer_size` by their own size.
    pub fn send_messages(&mut self, id: CallId, batch: &mut Vec<Bytes>) -> Result<(), Error> {
        if batch.is_empty() {
            return Ok(());
        }
        for payload in batch.iter() {
            self.check_message_size(payload.len())?;
        }
        let count = u32::try_from(batch.len()).map_err(|_| Error::NoCredit)?;
        let first = self.take_send_credit(id, count, false)?;
        let sequence = std::iter::successors(Some(first), |seq| Some(seq.wrapping_add(1)));
        for (seq, payload) in sequence.zip(batch.drain(..)) {
            self.queue_message(OutMessage::new(Op::Message, id.0, seq, payload));
        }
        Ok(())
    }

    /// Takes `count` messages of send credit of stream `id`, if the send
    /// buffer has room or `check_buffer` is false; returns the first message's
    /// sequence number.
    fn take_send_credit(
        &mut self,
        id: CallId,
        count: u32,
        check_buffer: bool,
    ) -> Result<u32, Error> {
        let full = check_buffer && self.send.buffered() >= self.config.limits.send_buffer_size;
        let taken = match self.stream_mut(id)? {
            _ if full => Err(Error::SendBufferFull),
            stream => stream.take_sends(count),
        };
        self.send_blocked |= full;
        taken
    }

    /// Stream `id`, in either role: `Cancelled` for a call the peer opened that
    /// has been cancelled, `UnknownCall` for no stream.
    fn stream_ref(&self, id: CallId) -> Result<&StreamState, Error> {
        let stream = if self.owns(id.0) {
            self.outgoing
                .get(&id.0)
                .and_then(|call| call.stream.as_ref())
        } else {
            match self.incoming.get(&id.0) {
                Some(call) if call.cancelled => return Err(Error::Cancelled),
                Some(call) => call.stream.as_ref(),
                None => None,
            }
        };
        stream.ok_or(Error::UnknownCall)
    }

    /// [`stream_ref`](Self::stream_ref), to change.
    fn stream_mut(&mut self, id: CallId) -> Result<&mut StreamState, Error> {
        let stream = if self.owns(id.0) {
            self.outgoing
                .get_mut(&id.0)
                .and_then(|call| call.stream.as_mut())
        } else {
            match self.incoming.get_mut(&id.0) {
                Some(call) if call.cancelled => return Err(Error::Cancelled),
                Some(call) => call.stream.as_mut(),
                None => None,
            }
        };
        stream.ok_or(Error::UnknownCall)
    }

    /// Messages stream `id` may send now by the peer's credit (0 for a call
    /// that is not a stream this side can send on).
    pub fn send_credit(&self, id: CallId) -> u32 {
        self.stream_ref(id)
            .ok()
            .filter(|stream| !stream.sent_fin)
            .map_or(0, |stream| stream.send_credit)
    }

    /// Whether a stream message can be sent now (credit and buffer room).
    pub fn can_send(&self, id: CallId) -> bool {
        self.send_credit(id) > 0 && self.send.buffered() < self.config.limits.send_buffer_size
    }

    /// Whether a stream message can be sent now, and if not, what to wait for:
    /// `NoCredit` ([`crate::Event::StreamWritable`] follows when the peer grants
    /// more) or `SendBufferFull` ([`crate::Event::Writable`] follows when the
    /// buffer drains). Any other error is final for the stream.
    pub fn poll_send_ready(&mut self, id: CallId) -> Result<(), Error> {
        let stream = self.stream_ref(id)?;
        if stream.sent_fin {
            return Err(Error::UnknownCall);
        }
        if stream.send_credit == 0 {
            return Err(Error::NoCredit);
        }
        self.check_send_buffer()
    }

    /// The application took a received stream message of `len` bytes; the peer
    /// gets its credit back. Harmless for a call that has ended.
    pub fn consume(&mut self, id: CallId, len: usize) {
        let _ = self.consume_many(id, 1, len);
    }

    /// The application took `messages` received stream messages of `len` bytes
    /// in all: [`consume`](Self::consume) for a batch. Returns whether the peer
    /// is granted credit now, i.e. a `Credit` frame waits to be written: a
    /// consumer that keeps reading should let the driver send it first, or the
    /// peer idles until the consumer runs dry.
    pub fn consume_many(&mut self, id: CallId, messages: u32, len: usize) -> bool {
        let Ok(stream) = self.stream_mut(id) else {
            return false;
        };
        let (grant, released) = stream.on_consume(messages, len);
        self.stream_buffered -= released;
        if let Some(grant) = grant {
            self.send.control(Op::Credit, id.0, grant, &[]);
        }
        grant.is_some()
    }

    /// Ends this side's direction of a stream after every message queued
    /// before it. For the opener: no more input. For the responder: the call
    /// completed successfully, which ends it.
    pub fn finish(&mut self, id: CallId) -> Result<(), Error> {
        let mux = id.0;
        if self.owns(mux) {
            let stream = self
                .outgoing
                .get_mut(&mux)
                .and_then(|call| call.stream.as_mut())
                .filter(|stream| !stream.sent_fin)
                .ok_or(Error::UnknownCall)?;
            stream.sent_fin = true;
            let count = stream.send_seq;
            self.queue_message(OutMessage::new(Op::Fin, mux, count, Bytes::new()));
            return Ok(());
        }
        let count = match self.incoming.get(&mux) {
            Some(call) => match &call.stream {
                Some(stream) => stream.send_seq,
                None if call.cancelled => 0,
                None => return Err(Error::UnknownCall),
            },
            None => return Err(Error::UnknownCall),
        };
        self.end_incoming(mux, OutMessage::new(Op::Fin, mux, count, Bytes::new()));
        Ok(())
    }

    /// Answers an incoming single request.
    ///
    /// A response larger than the peer accepts fails with `TooLarge` and leaves
    /// the call open, so it can still be answered with [`Connection::fail`].
    /// Answering a call that was cancelled sends nothing and frees it.
    pub fn respond(&mut self, id: CallId, payload: Bytes) -> Result<(), Error> {
        let mux = id.0;
        let call = self.incoming.get(&mux).ok_or(Error::UnknownCall)?;
        if call.stream.is_some() && !call.cancelled {
            return Err(Error::UnknownCall);
        }
        if !call.cancelled {
            self.check_message_size(payload.len())?;
        }
        self.end_incoming(mux, OutMessage::new(Op::Response, mux, 0, payload));
        Ok(())
    }

    /// Ends an incoming request or stream with an error, after every stream
    /// message queued before it.
    pub fn fail(&mut self, id: CallId, error: Error) -> Result<(), Error> {
        let mux = id.0;
        if !self.incoming.contains_key(&mux) {
            return Err(Error::UnknownCall);
        }
        let (code, mut message) = error.to_wire();
        let max = self
            .peer
            .as_ref()
            .map_or(0, |peer| peer.limits.max_message_size as usize);
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
        // Queued before the call is removed: removing the last call of a drain
        // closes the connection, and this answer must precede the `Close`.
        if !call.cancelled && !self.is_closed() {
            self.queue_message(last);
        }
        self.remove_incoming(mux);
    }

    /// Cancels a call this side opened (no further event comes for it), or
    /// resets a call the peer opened. Queued data of the call is dropped.
    pub fn cancel(&mut self, id: CallId) -> Result<(), Error> {
        let mux = id.0;
        let notify = if self.owns(mux) {
            self.outgoing.contains_key(&mux)
        } else {
            !self.incoming.get(&mux).ok_or(Error::UnknownCall)?.cancelled
        };
        if self.owns(mux) && !notify {
            return Err(Error::UnknownCall);
        }
        self.send.remove_mux(mux);
        if notify {
            // Queued before the call is removed: removing the last call of a
            // drain closes the connection, and the `Cancel` must precede the `Close`.
            self.send.control(Op::Cancel, mux, 0, &[]);
        }
        if self.owns(mux) {
            self.remove_outgoing(mux);
        } else {
            self.remove_incoming(mux);
        }
        Ok(())
    }
}
