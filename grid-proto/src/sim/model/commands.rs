//! Commands of either side's application, each checked against the model:
//! every refusal needs its condition, and a command with no applicable refusal
//! succeeds.

use std::time::Duration;

use crate::connection::CallTarget;
use crate::error::{CommandError, Error};
use crate::event::CallId;
use crate::sim::{Pair, Which};

use super::{
    pattern, stream_payload, Answer, Call, Dir, Model, Violation, CLOSE_TEXT, HANDLER,
    MIN_DEADLINE, SUBROUTE,
};

impl Model {
    /// Hands up to `buffers` transmit buffers of `side` straight to the peer,
    /// when nothing is on the pipe towards it (so the order of bytes holds),
    /// like a driver whose socket is slow; then takes the events they cause.
    pub fn write_some(
        &mut self,
        pair: &mut Pair,
        side: Which,
        buffers: usize,
    ) -> Result<(), Violation> {
        let now = pair.now;
        if pair.in_flight_to(side.other()) != 0 {
            return Ok(());
        }
        for _ in 0..buffers {
            let Some(bytes) = pair.side(side).conn.poll_transmit(now) else {
                break;
            };
            pair.side(side.other()).conn.handle_input(now, &bytes);
        }
        self.pump(pair)
    }

    /// `side` opens a request (`window` is `None`) or a stream with a payload
    /// of `size` bytes, on [`HANDLER`] and [`SUBROUTE`]; the open must fail
    /// exactly when a refusal applies, and with one that does.
    pub fn open(
        &mut self,
        pair: &mut Pair,
        side: Which,
        window: Option<u32>,
        size: usize,
        timeout: Option<Duration>,
    ) -> Result<(), Violation> {
        let now = pair.now;
        let tag = self.tag();
        let payload = pattern(tag, size);
        let target = CallTarget::with_subroute(HANDLER, SUBROUTE);
        // Every reason the open may be refused for, each with its condition.
        let model = &self.sides[side.index()];
        let peer = &self.limits[side.other().index()];
        let opened = self.calls_where(|c| c.opener == side && c.o_open);
        let opened_streams = opened.iter().filter(|m| self.calls[m].stream).count();
        let wire_size = 3 + SUBROUTE.len() + if window.is_some() { 4 } else { 0 } + size;
        let relative = timeout.unwrap_or(self.timeouts[side.index()].default_deadline);
        let send_buffered = pair.side_ref(side).conn.stats().send_buffered;
        let refusals = [
            (model.closed.is_some(), Error::Disconnected.into()),
            (
                model.drain_called || model.peer_draining,
                Error::Draining.into(),
            ),
            (
                wire_size > peer.max_message_size as usize,
                Error::TooLarge {
                    size: wire_size,
                    max: peer.max_message_size as usize,
                }
                .into(),
            ),
            (
                opened.len() >= peer.max_incoming_calls as usize
                    || (window.is_some() && opened_streams >= peer.max_incoming_streams as usize),
                Error::Overloaded.into(),
            ),
            (
                send_buffered >= self.limits[side.index()].send_buffer_size,
                CommandError::SendBufferFull,
            ),
            (relative < MIN_DEADLINE, Error::DeadlineExceeded.into()),
        ];
        let connection = &mut pair.side(side).conn;
        let result = match window {
            None => connection.open_request(now, target, payload.clone(), timeout),
            Some(window) => connection.open_stream(now, target, payload.clone(), timeout, window),
        };
        match result {
            Ok(id) => {
                let applicable: Vec<&CommandError> = refusals
                    .iter()
                    .filter(|(applies, _)| *applies)
                    .map(|(_, error)| error)
                    .collect();
                ensure!(
                    applicable.is_empty(),
                    "step {}: {side:?} opened {id} although it should fail with {applicable:?}",
                    self.step
                );
                ensure_eq!(
                    Which::owner_of(id.raw()),
                    side,
                    "id {} in the wrong namespace",
                    id
                );
                ensure!(
                    !self.calls.contains_key(&id.raw()),
                    "step {}: call id {id} reused",
                    self.step
                );
                let relative = relative.min(self.timeouts[side.index()].max_deadline);
                self.recent[side.index()] = Some(id.raw());
                self.calls.insert(
                    id.raw(),
                    Call {
                        opener: side,
                        stream: window.is_some(),
                        request: payload,
                        opened_at: now,
                        timeout: relative,
                        deadline: now + relative,
                        o_open: true,
                        o_cancelled: false,
                        o_finished: false,
                        o_result: None,
                        r_seen: false,
                        r_held: false,
                        r_deadline: None,
                        r_cancelled: None,
                        r_accepted: false,
                        r_input_finished: false,
                        r_answer: None,
                        o2r: Dir::default(),
                        r2o: Dir {
                            window: window.unwrap_or(0),
                            ..Dir::default()
                        },
                    },
                );
            }
            Err(error) => {
                ensure!(
                    refusals.contains(&(true, error.clone())),
                    "step {}: {side:?} open failed with {error:?}; refusals that apply: {:?}",
                    self.step,
                    refusals
                        .iter()
                        .filter(|(applies, _)| *applies)
                        .collect::<Vec<_>>()
                );
                if error == CommandError::SendBufferFull {
                    self.sides[side.index()].owed_writable = true;
                }
            }
        }
        Ok(())
    }

    /// `side` accepts the incoming stream `mux` with a window of `window`.
    pub fn accept(
        &mut self,
        pair: &mut Pair,
        side: Which,
        mux: u32,
        window: u32,
    ) -> Result<(), Violation> {
        let result = pair.side(side).conn.accept_stream(CallId(mux), window);
        let step = self.step;
        let Some(call) = self
            .calls
            .get_mut(&mux)
            .filter(|c| c.opener != side && c.r_held && c.stream)
        else {
            return self.off_target("accept_stream", mux, result.is_ok());
        };
        let expected = if let Some(reason) = &call.r_cancelled {
            Err(CommandError::Call(reason.clone()))
        } else if call.r_accepted {
            Err(CommandError::UnknownCall)
        } else {
            Ok(())
        };
        ensure_eq!(
            &result,
            &expected,
            "step {}: accept_stream of {:#x}",
            step,
            mux
        );
        if result.is_ok() {
            call.r_accepted = true;
            call.o2r.window = window;
        }
        Ok(())
    }

    /// `side` queues a message of `size` bytes on the stream `mux`, in
    /// either role; it must respect the credit the receiver granted.
    pub fn send(
        &mut self,
        pair: &mut Pair,
        side: Which,
        mux: u32,
        size: usize,
    ) -> Result<(), Violation> {
        let step = self.step;
        let target = |c: &&mut Call| c.stream && if c.opener == side { c.o_open } else { c.r_held };
        let Some(call) = self.calls.get_mut(&mux).filter(target) else {
            let payload = pattern(self.tag(), size);
            let result = pair.side(side).conn.send_message(CallId(mux), payload);
            return self.off_target("send_message", mux, result.is_ok());
        };
        let as_opener = call.opener == side;
        let dir = if as_opener {
            &mut call.o2r
        } else {
            &mut call.r2o
        };
        let seq = dir.sent.len();
        let outstanding = dir.outstanding();
        let payload = stream_payload(mux, as_opener, seq, size);
        let max = self.limits[side.other().index()].max_message_size as usize;
        let too_large = size > max;
        let buffer_full = pair.side_ref(side).conn.stats().send_buffered
            >= self.limits[side.index()].send_buffer_size;
        let result = pair.side(side).conn.send_message(CallId(mux), payload);
        let ended = if as_opener {
            call.o_finished
        } else {
            call.r_cancelled.is_some()
        };
        match result {
            Ok(()) => {
                ensure!(
                    !ended && !too_large && !buffer_full,
                    "step {step}: send_message on {mux:#x} succeeded (ended {ended}, \
                     too large {too_large}, send buffer full {buffer_full})"
                );
                // A receiver that stopped reading consumes on arrival, which
                // this side cannot observe.
                // Sent only while credit was above zero: the sender never
                // has more than the window outstanding, but for the one
                // message that took it below zero.
                ensure!(
                    dir.stopped || outstanding < u64::from(dir.window),
                    "step {step}: {side:?} sent message {seq} on {mux:#x} with {outstanding} \
                     bytes outstanding, but the peer granted a window of {} and read {} messages",
                    dir.window,
                    dir.read
                );
                dir.sent.push(size);
                self.recent[side.index()] = Some(mux);
            }
            Err(CommandError::NoCredit) => ensure!(!ended, "step {step}: NoCredit on ended stream"),
            Err(CommandError::Finished) => ensure!(
                as_opener && call.o_finished,
                "step {step}: Finished sending on {mux:#x}"
            ),
            Err(CommandError::Call(Error::TooLarge { size: s, max: m })) => ensure!(
                too_large && (s, m) == (size, max),
                "step {step}: TooLarge {{ {s}, {m} }} sending {size} bytes on {mux:#x}"
            ),
            Err(CommandError::Call(reason)) => ensure!(
                !as_opener && call.r_cancelled.as_ref() == Some(&reason),
                "step {step}: {reason:?} sending on {mux:#x}"
            ),
            Err(CommandError::SendBufferFull) => {
                ensure!(
                    buffer_full,
                    "step {step}: SendBufferFull sending on {mux:#x}"
                );
                self.sides[side.index()].owed_writable = true;
            }
            Err(error) => ensure!(false, "step {step}: send_message failed with {error:?}"),
        }
        Ok(())
    }

    /// `side` finishes `mux`: its direction of a stream it opened, or, as the
    /// responder, the whole call (a stream, or any call cancelled before).
    pub fn finish(&mut self, pair: &mut Pair, side: Which, mux: u32) -> Result<(), Violation> {
        let result = pair.side(side).conn.finish(CallId(mux));
        let step = self.step;
        let target = |c: &&mut Call| {
            if c.opener == side {
                c.o_open && c.stream
            } else {
                c.r_held
            }
        };
        let Some(call) = self.calls.get_mut(&mux).filter(target) else {
            return self.off_target("finish", mux, result.is_ok());
        };
        if call.opener == side {
            let expected = if call.o_finished {
                Err(CommandError::Finished)
            } else {
                Ok(())
            };
            ensure_eq!(
                &result,
                &expected,
                "step {}: opener finish of {:#x}",
                step,
                mux
            );
            if result.is_ok() {
                call.o_finished = true;
                call.o2r.fin_at = Some(call.o2r.sent.len());
            }
            return Ok(());
        }
        let expected = if call.stream || call.r_cancelled.is_some() {
            Ok(())
        } else {
            Err(CommandError::UnknownCall)
        };
        ensure_eq!(
            &result,
            &expected,
            "step {}: responder finish of {:#x}",
            step,
            mux
        );
        if result.is_ok() {
            self.end_held(mux, Answer::Finish);
        }
        Ok(())
    }

    /// `side`'s application answers the incoming call `mux` with `size` bytes.
    pub fn respond(
        &mut self,
        pair: &mut Pair,
        side: Which,
        mux: u32,
        size: usize,
    ) -> Result<(), Violation> {
        let tag = self.tag();
        let payload = pattern(tag, size);
        let result = pair.side(side).conn.respond(CallId(mux), payload.clone());
        let Some(call) = self
            .calls
            .get(&mux)
            .filter(|c| c.opener != side && c.r_held)
        else {
            return self.off_target("respond", mux, result.is_ok());
        };
        let max = self.limits[side.other().index()].max_message_size as usize;
        // A response too large for the peer leaves the call open.
        let expected = if call.stream && call.r_cancelled.is_none() {
            Err(CommandError::UnknownCall)
        } else if call.r_cancelled.is_none() && size > max {
            Err(CommandError::Call(Error::TooLarge { size, max }))
        } else {
            Ok(())
        };
        ensure_eq!(
            &result,
            &expected,
            "step {}: respond to {:#x}",
            self.step,
            mux
        );
        if result.is_ok() {
            self.recent[side.index()] = Some(mux);
            self.end_held(mux, Answer::Respond(payload));
        }
        Ok(())
    }

    /// `side`'s application fails the incoming call `mux`, with a remote
    /// error or `UnknownHandler`.
    pub fn fail(
        &mut self,
        pair: &mut Pair,
        side: Which,
        mux: u32,
        remote: bool,
    ) -> Result<(), Violation> {
        let error = if remote {
            let tag = self.tag();
            Error::Remote(pattern(tag, (tag % 24) as usize))
        } else {
            Error::UnknownHandler
        };
        let result = pair.side(side).conn.fail(CallId(mux), error.clone());
        if !self
            .calls
            .get(&mux)
            .is_some_and(|c| c.opener != side && c.r_held)
        {
            return self.off_target("fail", mux, result.is_ok());
        }
        ensure_eq!(result, Ok(()), "step {}: fail {:#x}", self.step, mux);
        self.end_held(mux, Answer::Fail(error));
        Ok(())
    }

    /// `side` cancels `mux`, in either role.
    pub fn cancel(&mut self, pair: &mut Pair, side: Which, mux: u32) -> Result<(), Violation> {
        let result = pair.side(side).conn.cancel(CallId(mux));
        let target = |c: &&mut Call| if c.opener == side { c.o_open } else { c.r_held };
        let Some(call) = self.calls.get_mut(&mux).filter(target) else {
            return self.off_target("cancel", mux, result.is_ok());
        };
        ensure_eq!(result, Ok(()), "step {}: cancel {:#x}", self.step, mux);
        if call.opener == side {
            call.o_open = false;
            call.o_cancelled = true;
        } else {
            self.end_held(mux, Answer::Cancel);
        }
        Ok(())
    }

    /// A command on a call it does not apply to (ended, unknown, the wrong
    /// role or kind) must fail, and changes nothing.
    pub(super) fn off_target(
        &self,
        command: &str,
        mux: u32,
        succeeded: bool,
    ) -> Result<(), Violation> {
        ensure!(
            !succeeded,
            "step {}: {command} of {mux:#x} succeeded on {:?}",
            self.step,
            self.calls.get(&mux)
        );
        Ok(())
    }

    /// The responder's application ended a call it held.
    fn end_held(&mut self, mux: u32, answer: Answer) {
        let Some(call) = self.calls.get_mut(&mux) else {
            return;
        };
        call.r_held = false;
        if matches!(answer, Answer::Finish | Answer::Fail(_)) {
            call.r2o.fin_at = Some(call.r2o.sent.len());
        }
        call.r_answer = Some((answer, call.r_cancelled.is_none()));
    }
}

impl Model {
    /// `side`'s application begins a drain that must end within `timeout`.
    pub fn drain(&mut self, pair: &mut Pair, side: Which, timeout: Duration) {
        let now = pair.now;
        let model = &mut self.sides[side.index()];
        if model.closed.is_none() && !model.drain_called {
            model.drain_called = true;
            model.drain_deadline = Some(now + timeout);
        }
        pair.side(side).conn.begin_drain(now, timeout);
    }

    /// `side`'s application closes its connection, with [`CLOSE_TEXT`].
    pub fn close(&mut self, pair: &mut Pair, side: Which) {
        let model = &mut self.sides[side.index()];
        if model.closed.is_none() {
            model.close_called = true;
        }
        pair.side(side).conn.close(CLOSE_TEXT);
    }
}
