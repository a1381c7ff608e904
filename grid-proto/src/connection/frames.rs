//! What the connection does with each frame it receives.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Connection, ConnectionState};
use crate::assembly::{Assembled, AssemblyError};
use crate::calls::{queue_grant, InCall, StreamState};
use crate::error::{CloseReason, Error};
use crate::event::{CallId, Event, IncomingCall};
use crate::frame::{Header, Op, ACCEPTOR_NAMESPACE};
use crate::open_prefix;
use crate::send_queue::SendQueue;
use crate::stats::Stats;
use crate::window::RequestLatency;

/// Where a stream frame's effects go, borrowed from the connection next to the
/// call it belongs to.
struct Delivery<'a> {
    events: &'a mut VecDeque<Event>,
    send: &'a mut SendQueue,
    stats: &'a mut Stats,
    stream_buffered: &'a mut usize,
    now: Instant,
    requests: RequestLatency,
}

impl Delivery<'_> {
    /// A stream's `Message`, `Messages` or `Credit`, the same whichever side
    /// opened it.
    #[inline(always)]
    fn flow(
        mut self,
        stream: &mut StreamState,
        id: CallId,
        op: Op,
        arg: u32,
        payload: Bytes,
    ) -> Result<(), Error> {
        match op {
            Op::Credit => {
                if stream.on_credit(arg)? {
                    self.events.push_back(Event::StreamWritable { id });
                }
                Ok(())
            }
            Op::Messages => self.batch(stream, id, arg, payload),
            _ => self.message(stream, id, arg, payload),
        }
    }

    #[inline(always)]
    fn message(
        &mut self,
        stream: &mut StreamState,
        id: CallId,
        seq: u32,
        payload: Bytes,
    ) -> Result<(), Error> {
        stream.on_message(seq, payload.len())?;
        self.stats.messages_received += 1;
        if stream.discard_input {
            // Nobody will read it: the peer gets the credit back at once.
            if let Some(grant) = stream.on_read(1, payload.len(), self.now, self.requests) {
                queue_grant(self.send, id.0, grant);
            }
            return Ok(());
        }
        *self.stream_buffered += payload.len();
        if stream.inbox.push(payload) {
            self.events.push_back(Event::StreamReadable { id });
        }
        Ok(())
    }

    /// A `Messages` frame: each entry is a message of its own, as if it had
    /// come in a frame of its own; the ones before a bad entry are delivered.
    fn batch(
        mut self,
        stream: &mut StreamState,
        id: CallId,
        first: u32,
        payload: Bytes,
    ) -> Result<(), Error> {
        if payload.is_empty() {
            return Err(Error::Protocol("empty message batch".into()));
        }
        let mut at = 0;
        let mut seq = first;
        while at < payload.len() {
            let Some(prefix) = payload.get(at..at + 4) else {
                return Err(Error::Protocol("message batch cut inside a length".into()));
            };
            let len = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
            at += 4;
            if payload.len() - at < len {
                return Err(Error::Protocol(format!(
                    "message of {len} bytes overruns its batch"
                )));
            }
            self.message(stream, id, seq, payload.slice(at..at + len))?;
            seq = seq.wrapping_add(1);
            at += len;
        }
        Ok(())
    }
}

impl Connection {
    pub(super) fn handle_frame(&mut self, now: Instant, header: Header, payload: Bytes) {
        if self.state() == ConnectionState::Handshaking {
            self.handshake_frame(now, header, payload);
            return;
        }
        match header.op {
            Op::Hello | Op::Auth | Op::Reject | Op::Ping | Op::Pong | Op::GoAway | Op::Close => {
                self.connection_frame(now, header, payload);
            }
            _ => self.call_frame(now, header, payload),
        }
    }

    /// Charges one cheap frame; closes the connection and returns `false` when
    /// the peer has exhausted its budget.
    pub(super) fn spend_cheap(&mut self, now: Instant) -> bool {
        if self.cheap_frames.spend(now) {
            return true;
        }
        let limits = &self.config.limits;
        let text = format!(
            "more than {} cheap frames (pings, empty messages, zero credits, refused calls) at over {}/s",
            limits.cheap_frame_burst, limits.cheap_frames_per_second
        );
        self.close_with(CloseReason::LimitExceeded(text));
        false
    }

    fn call_frame(&mut self, now: Instant, header: Header, payload: Bytes) {
        let mux = header.mux;
        if mux & !ACCEPTOR_NAMESPACE == 0 {
            self.close_with(CloseReason::Protocol(format!(
                "{:?} frame on reserved mux {mux:#x}",
                header.op
            )));
            return;
        }
        // A rule of the frame itself, checked before the drop rules: it holds
        // whether or not the call is still known here.
        if header.more() && !header.op.may_fragment() {
            self.close_with(CloseReason::Protocol(format!(
                "fragmented {:?} frame (MORE set) on mux {mux:#x}",
                header.op
            )));
            return;
        }
        // Empty frames cost the sender nothing but a header; ones that carry
        // no information (zero credit, empty fragments) are budgeted.
        let cheap = (header.len == 0 && (header.more() || header.op == Op::Message))
            || (header.op == Op::Credit && header.arg == 0);
        if cheap && !self.spend_cheap(now) {
            return;
        }
        let opens = matches!(header.op, Op::Request | Op::StreamOpen);
        let answers = matches!(header.op, Op::Response | Op::Error);
        if (opens || answers) && self.owns(mux) == opens {
            let whose = if opens { "this side's" } else { "its own" };
            self.close_with(CloseReason::Protocol(format!(
                "peer sent {:?} on mux {mux:#x}, in {whose} namespace",
                header.op
            )));
            return;
        }
        // Frames of calls that ended here (cancelled, expired, answered) may
        // still be in flight. They are dropped before reassembly: the sender
        // may cut such a message short, and its fragments would otherwise wait
        // for an end that never comes.
        let live = if self.owns(mux) {
            self.outgoing.contains_key(&mux)
        } else {
            opens
                || self
                    .incoming
                    .get(&mux)
                    .is_some_and(|call| !call.is_cancelled())
        };
        if !live {
            self.assembler.discard(mux);
            return;
        }
        let max_message = self.config.limits.max_message_size as usize;
        // One partial message per call at most, on either side's calls.
        let max_partials = self.config.limits.max_incoming_calls as usize + self.outgoing.len() + 1;
        let assembled = self
            .assembler
            .push(&header, payload, max_message, max_partials);
        let (op, arg, payload) = match assembled {
            Ok(Assembled::Complete(op, arg, payload)) => (op, arg, payload),
            Ok(Assembled::Pending) => return,
            Err(AssemblyError::TooLarge { size, max }) => {
                self.close_with(CloseReason::LimitExceeded(format!(
                    "message on mux {mux:#x} of at least {size} bytes exceeds max_message_size {max}"
                )));
                return;
            }
            Err(AssemblyError::NotFragmentable(op)) => {
                self.close_with(CloseReason::Protocol(format!("fragmented {op:?} frame")));
                return;
            }
            Err(AssemblyError::TooManyPartials(count)) => {
                self.close_with(CloseReason::LimitExceeded(format!(
                    "{count} messages partly received at once, more than calls can exist"
                )));
                return;
            }
        };
        if self.owns(mux) {
            self.answer_frame(op, mux, arg, payload);
        } else {
            self.opener_frame(now, op, mux, arg, payload);
        }
    }

    /// A frame about a call this side opened, sent by the peer as responder.
    fn answer_frame(&mut self, op: Op, mux: u32, arg: u32, payload: Bytes) {
        let Some(call) = self.outgoing.get_mut(&mux) else {
            // The call ended here first (cancel, deadline); its answers may still be
            // in flight. Empty ones were charged above; others cost their sender.
            return;
        };
        let outcome: Result<(), Error> = match (op, &mut call.stream) {
            (Op::Response, None) => {
                self.stats.messages_received += 1;
                self.end_outgoing(mux, Ok(payload), false);
                return;
            }
            (Op::Error, _) => {
                self.stats.messages_received += 1;
                self.end_outgoing(mux, Err(Error::from_wire(arg, payload)), false);
                return;
            }
            (Op::Cancel, _) => {
                self.end_outgoing(mux, Err(Error::Cancelled), false);
                return;
            }
            (Op::Fin, Some(stream)) => match stream.on_fin(arg) {
                Ok(()) => {
                    self.end_outgoing(mux, Ok(Bytes::new()), false);
                    return;
                }
                Err(error) => Err(error),
            },
            (Op::Message | Op::Messages | Op::Credit, Some(stream)) => {
                let delivery = Delivery {
                    events: &mut self.events,
                    send: &mut self.send,
                    stats: &mut self.stats,
                    stream_buffered: &mut self.stream_buffered,
                    now: self.latest,
                    requests: self.request_latency,
                };
                delivery.flow(stream, CallId(mux), op, arg, payload)
            }
            (op, stream) => Err(Error::Protocol(format!(
                "unexpected {op:?} on a {}",
                if stream.is_some() {
                    "stream"
                } else {
                    "request"
                }
            ))),
        };
        if let Err(error) = outcome {
            self.end_outgoing(mux, Err(error), true);
        }
    }

    /// A frame about a call the peer opened.
    fn opener_frame(&mut self, now: Instant, op: Op, mux: u32, arg: u32, payload: Bytes) {
        if matches!(op, Op::Request | Op::StreamOpen) {
            return self.open_incoming(now, op, mux, arg, payload);
        }
        // `call_frame` let through only frames of live calls.
        let Some(call) = self
            .incoming
            .get_mut(&mux)
            .filter(|call| !call.is_cancelled())
        else {
            return;
        };
        let outcome: Result<(), Error> = match (op, &mut call.stream) {
            (Op::Cancel, _) => {
                call.cancelled = Some(Box::new(Error::Cancelled));
                self.send.remove_mux(mux);
                self.assembler.discard(mux);
                self.events.push_back(Event::IncomingCancelled {
                    id: CallId(mux),
                    reason: Error::Cancelled,
                });
                Ok(())
            }
            (Op::Message | Op::Messages | Op::Credit, Some(stream)) => {
                let delivery = Delivery {
                    events: &mut self.events,
                    send: &mut self.send,
                    stats: &mut self.stats,
                    stream_buffered: &mut self.stream_buffered,
                    now,
                    requests: self.request_latency,
                };
                delivery.flow(stream, CallId(mux), op, arg, payload)
            }
            (Op::Fin, Some(stream)) => stream.on_fin(arg).map(|()| {
                if stream.inbox.is_empty() {
                    self.events
                        .push_back(Event::StreamReadable { id: CallId(mux) });
                }
            }),
            (op, stream) => Err(Error::Protocol(format!(
                "unexpected {op:?} on a {}",
                if stream.is_some() {
                    "stream"
                } else {
                    "request"
                }
            ))),
        };
        if let Err(reason) = outcome {
            call.cancelled = Some(Box::new(reason.clone()));
            self.send.remove_mux(mux);
            self.assembler.discard(mux);
            let (code, message) = reason.to_wire();
            self.send.control(Op::Error, mux, code as u32, &message);
            self.events.push_back(Event::IncomingCancelled {
                id: CallId(mux),
                reason,
            });
        }
    }

    /// Why a new incoming call must be refused, if it must: this side is
    /// draining, or admitting it would break a bound on the calls or bytes
    /// the peer makes this side hold. Only admission stops; input is still
    /// read, so two nodes that call each other hard never wait on each other.
    fn admission(&self, is_stream: bool, payload: usize) -> Option<Error> {
        let limits = &self.config.limits;
        if self.state() == ConnectionState::Draining {
            return Some(Error::Draining);
        }
        let over_calls = self.incoming.len() >= limits.max_incoming_calls as usize
            || (is_stream && self.incoming_streams >= limits.max_incoming_streams as usize);
        let over_held =
            self.held_request_bytes.saturating_add(payload) > limits.max_held_request_bytes;
        let over_backlog = self.send.buffered() > limits.max_outbound_backlog;
        (over_calls || over_held || over_backlog).then_some(Error::Overloaded)
    }

    fn open_incoming(&mut self, now: Instant, op: Op, mux: u32, arg: u32, payload: Bytes) {
        match self.incoming.get(&mux) {
            // After 2^31 calls the peer's ids wrap; one it cancelled may still be
            // held here until its handler ends. The new call is refused, retryably.
            Some(call) if call.is_cancelled() => {
                self.stats.refused_overloaded += 1;
                if self.spend_cheap(now) {
                    let (code, message) = Error::Overloaded.to_wire();
                    self.send.control(Op::Error, mux, code as u32, &message);
                }
                return;
            }
            Some(_) => {
                self.close_with(CloseReason::Protocol(format!(
                    "peer reopened mux {mux:#x} while it is open"
                )));
                return;
            }
            None => {}
        }
        let Some(open) = open_prefix::parse(op, payload) else {
            self.close_with(CloseReason::Protocol(format!(
                "malformed {op:?} on mux {mux:#x}"
            )));
            return;
        };
        let is_stream = op == Op::StreamOpen;
        let refusal = self.admission(is_stream, open.body.len());
        if let Some(refusal) = refusal {
            if refusal == Error::Overloaded {
                self.stats.refused_overloaded += 1;
            }
            // Refusals cost the peer nothing, so they are budgeted like other cheap frames.
            if self.spend_cheap(now) {
                let (code, message) = refusal.to_wire();
                self.send.control(Op::Error, mux, code as u32, &message);
            }
            return;
        }
        let requested = Duration::from_millis(u64::from(arg.max(1)));
        let relative = requested.min(self.config.timeouts.max_deadline);
        let deadline = now + relative;
        let stream = is_stream.then(|| {
            Box::new(StreamState {
                send_credit: i64::from(open.window),
                ..StreamState::default()
            })
        });
        if is_stream {
            self.incoming_streams += 1;
        }
        self.incoming.insert(
            mux,
            InCall {
                deadline,
                stream,
                accepted: false,
                cancelled: None,
                clamped: relative < requested,
                held: open.body.len(),
            },
        );
        self.held_request_bytes += open.body.len();
        self.deadlines.insert(deadline, mux);
        self.compact_deadlines();
        self.stats.messages_received += 1;
        let call = IncomingCall {
            id: CallId(mux),
            handler: open.handler,
            subroute: open.subroute,
            payload: open.body,
            deadline,
        };
        self.events.push_back(if is_stream {
            Event::IncomingStream(call)
        } else {
            Event::IncomingRequest(call)
        });
    }
}
