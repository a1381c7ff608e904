//! The connection state machine: one per transport connection, driven by its
//! owner through inputs, commands and polls.

mod close;
mod commands;
pub use commands::{CallTarget, MAX_SUBROUTE};
mod control;
mod drain;
mod frames;
mod handshaking;
mod keepalive;
mod phase;
pub use phase::ConnectionState;
mod timer_table;
mod write_stall;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rustc_hash::FxHashMap;

use crate::assembly::Assembler;
use crate::budget::CheapFrameBudget;
use crate::call_table::CallTable;
use crate::calls::{EndedStream, InCall, OutCall};
use crate::config::{Config, Role};
use crate::decoder::FrameDecoder;
use crate::error::{CloseReason, Error};
use crate::event::{CallId, Event};
use crate::frame::{Op, ACCEPTOR_NAMESPACE};
use crate::handshake::{self, PeerInfo, MAX_HANDSHAKE_FRAME};
use crate::recycle::BufferPool;
use crate::send_queue::SendQueue;
use crate::stats::Stats;
use crate::timers::Deadlines;
use crate::window::RequestLatency;
use drain::PeerDrain;
use handshaking::Handshake;
use keepalive::{first_ping_id, Keepalive};
use phase::Phase;
use write_stall::OutputProgress;

/// A grid connection as a sans-IO state machine.
///
/// See the [crate documentation](crate) for the run loop that drives it.
#[derive(Debug)]
pub struct Connection {
    config: Config,
    phase: Phase,
    /// Known from the peer's `Hello` on, and kept once closed.
    peer: Option<PeerInfo>,
    peer_drain: PeerDrain,
    decoder: FrameDecoder,
    assembler: Assembler,
    send: SendQueue,
    events: VecDeque<Event>,
    outgoing: CallTable<OutCall>,
    incoming: CallTable<InCall>,
    /// Streams this side opened that ended on the wire and that the
    /// application has not released yet.
    ended_streams: FxHashMap<u32, EndedStream>,
    outgoing_streams: usize,
    incoming_streams: usize,
    /// Low 31 bits of the next mux id this side allocates.
    next_mux: u32,
    deadlines: Deadlines,
    keepalive: Keepalive,
    cheap_frames: CheapFrameBudget,
    /// Bytes of received stream messages not yet read, in every stream held.
    stream_buffered: usize,
    /// A command was refused for a full send buffer; `Writable` is owed.
    send_blocked: bool,
    /// Payload bytes of incoming calls the application holds.
    held_request_bytes: usize,
    /// Progress of queued output, for the write-stall rules.
    output: OutputProgress,
    stats: Stats,
    /// The latest time the driver gave: what commands that carry no time
    /// (reading a stream) go by.
    latest: Instant,
    /// This side's single requests that the peer answered, and how long
    /// they took: what tuning a stream's window must not slow down.
    request_latency: RequestLatency,
}

impl Connection {
    /// A new connection whose transport just connected at `now`. Its `Hello`
    /// is queued at once: call [`Connection::poll_transmit`].
    pub fn new(config: Config, now: Instant) -> Connection {
        let own_hello = handshake::encode_hello(&config);
        let mut send = SendQueue::new();
        let pool = BufferPool::new();
        send.control(Op::Hello, 0, 0, &own_hello);
        let cheap_frames = CheapFrameBudget::new(
            config.limits.cheap_frame_burst,
            config.limits.cheap_frames_per_second,
        );
        Connection {
            phase: Phase::Handshaking(Handshake::new(own_hello, now + config.timeouts.handshake)),
            keepalive: Keepalive::new(now, first_ping_id(&config.seed)),
            config,
            peer: None,
            peer_drain: PeerDrain::default(),
            decoder: FrameDecoder::with_pool(MAX_HANDSHAKE_FRAME, pool.clone()),
            assembler: Assembler::new(pool),
            send,
            events: VecDeque::new(),
            outgoing: CallTable::default(),
            incoming: CallTable::default(),
            ended_streams: FxHashMap::default(),
            outgoing_streams: 0,
            incoming_streams: 0,
            next_mux: 1,
            deadlines: Deadlines::default(),
            cheap_frames,
            stream_buffered: 0,
            send_blocked: false,
            held_request_bytes: 0,
            output: OutputProgress::default(),
            stats: Stats::default(),
            latest: now,
            request_latency: RequestLatency::default(),
        }
    }

    // ----- getters -----

    /// Where the connection is in its lifecycle.
    pub fn state(&self) -> ConnectionState {
        self.phase.state()
    }

    /// Whether the connection has closed (final frames may still be waiting).
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed(_))
    }

    /// Why the connection closed, once it has.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        match &self.phase {
            Phase::Closed(closed) => Some(&closed.reason),
            _ => None,
        }
    }

    /// The authenticated peer, once the handshake succeeded.
    pub fn peer(&self) -> Option<&PeerInfo> {
        self.peer.as_ref()
    }

    /// Whether the peer announced that it is draining.
    pub fn is_peer_draining(&self) -> bool {
        matches!(self.peer_drain, PeerDrain::Draining { .. })
    }

    /// This side's role.
    pub fn role(&self) -> Role {
        self.config.role
    }

    /// The configuration this connection runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Latest keepalive round-trip time.
    pub fn rtt(&self) -> Option<Duration> {
        self.keepalive.rtt
    }

    /// Calls in flight: opened by this side, and opened by the peer.
    pub fn in_flight(&self) -> (usize, usize) {
        (self.outgoing.len(), self.incoming.len())
    }

    /// Payload bytes received on stream `id` that the application has not
    /// read yet (0 for no stream). Less than the receive window this side
    /// granted plus one message.
    pub fn unread_bytes(&self, id: CallId) -> usize {
        let mux = id.0;
        let stream = if self.owns(mux) {
            match self.outgoing.get(&mux) {
                Some(call) => call.stream.as_deref(),
                None => {
                    return self
                        .ended_streams
                        .get(&mux)
                        .map_or(0, |ended| ended.inbox.bytes())
                }
            }
        } else {
            self.incoming
                .get(&mux)
                .and_then(|call| call.stream.as_deref())
        };
        stream.map_or(0, |stream| stream.inbox.bytes())
    }

    /// Whether call `id` was opened by this side (rather than by the peer).
    pub fn is_outgoing(&self, id: CallId) -> bool {
        self.owns(id.0)
    }

    /// Why the peer's call `id` can no longer be answered: the reason it was
    /// cancelled, or `None` while it is going on. A call this side does not
    /// hold reports [`Error::Disconnected`] once the connection has closed,
    /// and [`Error::Cancelled`] before (it was ended, or never opened).
    pub fn incoming_cancelled(&self, id: CallId) -> Option<Error> {
        match self.incoming.get(&id.0) {
            Some(call) => call.cancelled.as_deref().cloned(),
            None if self.is_closed() => Some(Error::Disconnected),
            None => Some(Error::Cancelled),
        }
    }

    /// Whether frames are waiting for [`Connection::poll_transmit`].
    pub fn wants_write(&self) -> bool {
        !self.send.is_empty() || self.owes_held_frames()
    }

    /// Whether [`Connection::poll_event`] has an event to return.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// Counters and gauges.
    pub fn stats(&self) -> Stats {
        Stats {
            outgoing_calls: self.outgoing.len(),
            outgoing_streams: self.outgoing_streams,
            incoming_calls: self.incoming.len(),
            incoming_streams: self.incoming_streams,
            buffered_bytes: self.buffered_bytes(),
            send_buffered: self.send.buffered(),
            outbound_backlog: self.send.buffered(),
            control_backlog: self.send.control_backlog(),
            held_request_bytes: self.held_request_bytes,
            rtt: self.keepalive.rtt,
            ..self.stats.clone()
        }
    }

    /// Entries in the table of call deadlines, live or stale.
    #[cfg(test)]
    pub(crate) fn pending_deadlines(&self) -> usize {
        self.deadlines.len()
    }

    fn buffered_bytes(&self) -> usize {
        self.stream_buffered + self.assembler.bytes()
    }

    // ----- inputs -----

    /// Feeds bytes read from the transport, in any chunking.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        if self.is_closed() || data.is_empty() {
            return;
        }
        self.decoder.push(data);
        self.input_arrived(now, data.len());
    }

    /// Room to read input into directly when a large payload is being
    /// received: its own buffer, which saves copying it out of a read buffer.
    /// Read into a prefix of it and report how much with
    /// [`handle_input_in_place`](Self::handle_input_in_place); otherwise use
    /// [`handle_input`](Self::handle_input).
    pub fn input_space(&mut self) -> Option<&mut [u8]> {
        if self.is_closed() {
            return None;
        }
        self.decoder.input_space()
    }

    /// Like [`handle_input`](Self::handle_input), for `len` bytes read into
    /// [`input_space`](Self::input_space).
    pub fn handle_input_in_place(&mut self, now: Instant, len: usize) {
        if self.is_closed() || len == 0 {
            return;
        }
        self.decoder.push_in_place(len);
        self.input_arrived(now, len);
    }

    /// Decodes and handles the frames that `len` new bytes completed.
    fn input_arrived(&mut self, now: Instant, len: usize) {
        self.latest = self.latest.max(now);
        self.stats.bytes_received += len as u64;
        self.keepalive.last_received = now;
        while !self.is_closed() {
            match self.decoder.next_frame() {
                Ok(Some((header, payload))) => self.handle_frame(now, header, payload),
                Ok(None) => break,
                Err(error) => {
                    self.close_with(CloseReason::Protocol(error.to_string()));
                    break;
                }
            }
        }
        self.check_backlogs();
        self.after_call_removed();
        self.observe_output(now);
    }

    /// Tells the connection that the transport reached end of file or failed.
    /// Every call ends with `Disconnected`.
    pub fn handle_transport_closed(&mut self, reason: impl Into<String>) {
        // Nothing can be written any more, not even a pending `Close`.
        self.send = SendQueue::new();
        self.drop_held_frames();
        if !self.is_closed() {
            self.shut(CloseReason::Transport(reason.into()));
        }
    }

    fn expire_calls(&mut self, now: Instant) {
        while let Some((deadline, mux)) = self.deadlines.pop_due(now) {
            if self.owns(mux) {
                if self
                    .outgoing
                    .get(&mux)
                    .is_some_and(|c| c.deadline == deadline)
                {
                    self.end_outgoing(mux, Err(Error::DeadlineExceeded), true);
                }
            } else if let Some(call) = self.incoming.get_mut(&mux) {
                if call.deadline == deadline && !call.is_cancelled() {
                    call.cancelled = Some(Box::new(Error::DeadlineExceeded));
                    self.send.remove_mux(mux);
                    self.assembler.discard(mux);
                    if call.clamped {
                        let (code, message) = Error::DeadlineExceeded.to_wire();
                        self.send.control(Op::Error, mux, code as u32, &message);
                    }
                    self.events.push_back(Event::IncomingCancelled {
                        id: CallId(mux),
                        reason: Error::DeadlineExceeded,
                    });
                }
            }
        }
        self.compact_deadlines();
    }

    /// Drops deadlines of ended calls once they outnumber the live ones. Called
    /// on every insertion, so memory stays proportional to calls in flight even
    /// when no timer fires for a long time.
    #[inline]
    pub(super) fn compact_deadlines(&mut self) {
        let live = self.outgoing.len() + self.incoming.len();
        if !self.deadlines.needs_compaction(live) {
            return;
        }
        let (outgoing, incoming) = (&self.outgoing, &self.incoming);
        let own = self.own_namespace();
        // A mux's namespace says which table may hold its call.
        self.deadlines.compact(|&(at, mux)| {
            if mux & ACCEPTOR_NAMESPACE == own {
                outgoing.get(&mux).is_some_and(|c| c.deadline == at)
            } else {
                incoming.get(&mux).is_some_and(|c| c.deadline == at)
            }
        });
    }

    // ----- outputs -----

    /// The next bytes to write to the transport, `None` when there are none.
    ///
    /// Many small frames come coalesced in one buffer; a large payload may come
    /// as a separate buffer sliced from the application's own bytes. Write the
    /// buffers in the order they are returned.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        self.latest = self.latest.max(now);
        let fragment = self.fragment_size();
        self.release_held_pong();
        let out = match self.send.poll(fragment) {
            Some(out) => out,
            None => {
                let close = if self.queue_close_after_flush() {
                    self.send.poll(fragment)
                } else {
                    None
                };
                let Some(close) = close else {
                    self.output_handed_out(now, false);
                    return None;
                };
                close
            }
        };
        self.stats.bytes_sent += out.len() as u64;
        self.output_handed_out(now, true);
        if self.send_blocked && self.send.buffered() <= self.send_limit() / 2 {
            self.send_blocked = false;
            if !self.is_closed() {
                self.events.push_back(Event::Writable);
            }
        }
        Some(out)
    }

    /// The next event, `None` when there are none.
    ///
    /// Stream messages are not events: they wait in their stream until
    /// [`Connection::read`] takes them, and [`Event::StreamReadable`] says
    /// when a stream has some where it had none.
    #[inline]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Queued bytes at which this side's own calls and stream messages are
    /// refused: the send buffer, within the bound on the whole backlog.
    fn send_limit(&self) -> usize {
        let limits = &self.config.limits;
        limits.send_buffer_size.min(limits.max_outbound_backlog)
    }

    fn fragment_size(&self) -> usize {
        let peer_max = self
            .peer
            .as_ref()
            .map_or(MAX_HANDSHAKE_FRAME, |peer| peer.limits.max_frame_size);
        self.config.fragment_size.min(peer_max).max(1) as usize
    }

    // ----- shared internals -----

    /// The namespace bit of mux ids this side allocates.
    fn own_namespace(&self) -> u32 {
        match self.config.role {
            Role::Dialer => 0,
            Role::Acceptor => ACCEPTOR_NAMESPACE,
        }
    }

    /// Whether `mux` was allocated by this side.
    fn owns(&self, mux: u32) -> bool {
        mux & ACCEPTOR_NAMESPACE == self.own_namespace()
    }

    /// Ends every call for a connection that closed: calls this side opened
    /// end with `Disconnected` (streams stay readable until released), calls
    /// the peer opened are cancelled and forgotten: nothing can be sent for
    /// them any more.
    fn end_all_calls(&mut self) {
        let mut outgoing: Vec<(u32, OutCall)> = self.outgoing.drain().collect();
        outgoing.sort_unstable_by_key(|(mux, _)| *mux);
        for (mux, call) in outgoing {
            let id = CallId(mux);
            match call.stream {
                None => self.events.push_back(Event::RequestEnded {
                    id,
                    result: Err(Error::Disconnected),
                }),
                Some(stream) => {
                    self.events.push_back(Event::StreamEnded { id });
                    self.ended_streams.insert(
                        mux,
                        EndedStream {
                            inbox: stream.inbox,
                            result: Err(Error::Disconnected),
                        },
                    );
                }
            }
        }
        let mut incoming: Vec<u32> = self
            .incoming
            .iter()
            .filter(|(_, call)| !call.is_cancelled())
            .map(|(mux, _)| *mux)
            .collect();
        incoming.sort_unstable();
        for mux in incoming {
            self.events.push_back(Event::IncomingCancelled {
                id: CallId(mux),
                reason: Error::Disconnected,
            });
        }
        for (_, call) in self.incoming.drain() {
            self.held_request_bytes -= call.held;
            if let Some(stream) = call.stream {
                self.stream_buffered -= stream.inbox.bytes();
            }
        }
        self.incoming_streams = 0;
        self.outgoing_streams = 0;
        self.assembler.clear();
        self.deadlines.clear();
    }

    /// Closes the connection when a backlog the peer can grow exceeds its limit.
    fn check_backlogs(&mut self) {
        if self.is_closed() {
            return;
        }
        let limits = &self.config.limits;
        if self.buffered_bytes() > limits.max_buffered_bytes {
            let text = format!(
                "{} bytes of unconsumed input exceed max_buffered_bytes {}",
                self.buffered_bytes(),
                limits.max_buffered_bytes
            );
            self.close_with(CloseReason::LimitExceeded(text));
        } else if self.send.control_backlog() > limits.max_control_backlog {
            let text = format!(
                "{} bytes of unsent control frames exceed max_control_backlog {}: the peer is not reading",
                self.send.control_backlog(),
                limits.max_control_backlog
            );
            self.close_with(CloseReason::LimitExceeded(text));
        }
    }

    /// Ends a call this side opened: removes it, stops sending its data, tells
    /// the peer to stop when `notify_peer`, and emits its final event. A
    /// stream's unread messages stay readable, followed by `result`.
    fn end_outgoing(&mut self, mux: u32, result: Result<Bytes, Error>, notify_peer: bool) {
        // One lookup takes the call out; what removing it means for the
        // connection (a drain's end) follows the event, below.
        let Some(call) = self.outgoing.remove(&mux) else {
            return;
        };
        self.send.remove_mux(mux);
        if notify_peer {
            self.send.control(Op::Cancel, mux, 0, &[]);
        }
        let id = CallId(mux);
        // The event goes first: removing the last call of a drain closes the
        // connection, and `Closed` must be the last event.
        let is_stream = match call.stream {
            None => {
                if !notify_peer {
                    // The peer answered (or cancelled): a round trip's latency.
                    let latency = self.latest.saturating_duration_since(call.opened);
                    self.request_latency.record(latency);
                }
                self.events.push_back(Event::RequestEnded { id, result });
                false
            }
            Some(stream) => {
                self.events.push_back(Event::StreamEnded { id });
                let ended = EndedStream {
                    inbox: stream.inbox,
                    result: result.map(|_| ()),
                };
                self.ended_streams.insert(mux, ended);
                true
            }
        };
        self.outgoing_removed(mux, call.deadline, is_stream);
    }

    /// Removes a call this side opened. Its stream's unread messages go with
    /// the returned call: the caller keeps them or forgets their bytes.
    fn remove_outgoing(&mut self, mux: u32) -> Option<OutCall> {
        let call = self.outgoing.remove(&mux)?;
        self.outgoing_removed(mux, call.deadline, call.stream.is_some());
        Some(call)
    }

    /// What follows taking call `mux`, due at `deadline`, out of `outgoing`.
    fn outgoing_removed(&mut self, mux: u32, deadline: Instant, is_stream: bool) {
        self.deadlines.ended(deadline, mux);
        if is_stream {
            self.outgoing_streams -= 1;
        }
        self.assembler.discard(mux);
        self.after_call_removed();
    }

    fn remove_incoming(&mut self, mux: u32) -> Option<InCall> {
        let call = self.incoming.remove(&mux)?;
        self.deadlines.ended(call.deadline, mux);
        self.held_request_bytes -= call.held;
        if let Some(stream) = &call.stream {
            self.incoming_streams -= 1;
            self.stream_buffered -= stream.inbox.bytes();
        }
        self.assembler.discard(mux);
        self.after_call_removed();
        Some(call)
    }
}
