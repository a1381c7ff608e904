//! Every event either side emits, checked against the model as it is taken.

use std::time::Duration;

use std::collections::VecDeque;

use crate::error::{CloseReason, Error};
use crate::event::{CallId, Event, ReadOutcome};
use crate::sim::{Pair, Which};

use super::reading::take_message;
use super::{
    check_terminal, EndContext, LimitCloses, Model, Violation, CLOSE_TEXT, HANDLER, SUBROUTE,
};

impl Model {
    // ----- events -----

    /// Takes every event of both sides, oldest first, and checks it.
    pub fn pump(&mut self, pair: &mut Pair) -> Result<(), Violation> {
        for side in Which::BOTH {
            let mut events = pair.side(side).take_events();
            while let Some(event) = pair.side(side).conn.poll_event() {
                events.push(event);
            }
            for event in events {
                self.on_event(pair, side, event)?;
            }
        }
        self.check_graceful_drain()
    }

    /// A drain that completes before its deadline ends no call with
    /// `Disconnected`, on either side: calls in flight finish, calls racing the
    /// `GoAway` are refused with `Draining`, and the `Close` follows every answer.
    fn check_graceful_drain(&self) -> Result<(), Violation> {
        for side in Which::BOTH {
            let drained = &self.sides[side.index()];
            if !drained.drained_gracefully {
                continue;
            }
            let peer = &self.sides[side.other().index()];
            ensure!(
                drained.disconnected.is_empty(),
                "step {}: {side:?} drained gracefully but cut calls {:x?}",
                self.step,
                drained.disconnected
            );
            if matches!(&peer.closed, Some(CloseReason::Peer(text)) if text == "drained") {
                let cut = &peer.disconnected;
                ensure!(
                    cut.is_empty(),
                    "step {}: {side:?} drained gracefully but its peer saw calls {cut:x?} \
                     end with Disconnected",
                    self.step
                );
            }
        }
        Ok(())
    }

    /// Checks one event of `side` about a call against the model, and
    /// records it; connection events go to [`Model::on_connection_event`].
    pub fn on_event(
        &mut self,
        pair: &mut Pair,
        side: Which,
        event: Event,
    ) -> Result<(), Violation> {
        let now = pair.now;
        let step = self.step;
        let is_closed = pair.side_ref(side).conn.is_closed();
        let close_reason = pair.side_ref(side).conn.close_reason().cloned();
        ensure!(
            self.sides[side.index()].closed.is_none(),
            "step {step}: {side:?} emitted {} after its Closed event",
            brief(&event)
        );
        let id = match &event {
            Event::IncomingRequest(call) | Event::IncomingStream(call) => Some(call.id),
            Event::RequestEnded { id, .. }
            | Event::StreamReadable { id }
            | Event::StreamEnded { id }
            | Event::IncomingCancelled { id, .. }
            | Event::StreamWritable { id } => Some(*id),
            _ => None,
        };
        let Some(id) = id else {
            return self.on_connection_event(pair, side, event);
        };
        let mux = id.raw();
        let draining_here = self.sides[side.index()].drain_called;
        let draining_there = self.sides[side.other().index()].drain_called;
        let end_context = EndContext {
            now,
            closed: is_closed,
            close_reason: close_reason.as_ref(),
            responder_draining: draining_there,
            responder_max_deadline: self.timeouts[side.other().index()].max_deadline,
            responder_may_overload: self.allow.overload,
        };
        let Some(call) = self.calls.get_mut(&mux) else {
            return Err(Violation::new(format!(
                "step {step}: {side:?} event {} for an unknown call",
                brief(&event)
            )));
        };
        let as_opener = call.opener == side;
        let alive = if as_opener {
            call.o_open
        } else {
            call.r_held && call.r_cancelled.is_none()
        };
        match event {
            Event::IncomingRequest(incoming) | Event::IncomingStream(incoming) => {
                ensure!(
                    !as_opener,
                    "step {step}: {side:?} got its own call {id} as incoming"
                );
                ensure!(!call.r_seen, "step {step}: {id} opened twice at {side:?}");
                ensure!(
                    !draining_here,
                    "step {step}: a draining {side:?} accepted {id}"
                );
                ensure_eq!(
                    &incoming.payload,
                    &call.request,
                    "request payload of {}",
                    id
                );
                ensure_eq!(incoming.handler, HANDLER);
                ensure_eq!(incoming.subroute.as_ref(), SUBROUTE);
                // The responder's deadline is the opener's relative deadline
                // rounded up to whole milliseconds, counted from the arrival.
                let millis =
                    u64::try_from(call.timeout.as_micros().div_ceil(1000)).unwrap_or(u64::MAX);
                let relative = Duration::from_millis(millis.max(1))
                    .min(self.timeouts[side.index()].max_deadline);
                let arrival = incoming.deadline - relative;
                ensure!(
                    arrival >= call.opened_at && arrival <= now,
                    "step {step}: deadline of {id} implies an arrival outside [open, now]"
                );
                call.r_seen = true;
                call.r_held = true;
                call.r_deadline = Some(incoming.deadline);
            }
            Event::StreamReadable { .. } => {
                ensure!(
                    call.stream && alive,
                    "step {step}: StreamReadable on {id} at {side:?} (alive={alive})"
                );
                if !as_opener {
                    ensure!(
                        !call.r_input_finished,
                        "step {step}: StreamReadable on {id} after its input was read to the end"
                    );
                }
            }
            Event::IncomingCancelled { reason, .. } => {
                ensure!(
                    !as_opener && alive,
                    "step {step}: Cancelled({reason:?}) of {id} at {side:?} (alive={alive})"
                );
                let justified = match &reason {
                    // The opener cancelled it, or its deadline passed (it then tells
                    // the responder with a Cancel).
                    Error::Cancelled => call.o_cancelled || now >= call.deadline,
                    Error::DeadlineExceeded => call.r_deadline.is_some_and(|at| now >= at),
                    Error::Disconnected => is_closed,
                    _ => false,
                };
                ensure!(
                    justified,
                    "step {step}: unjustified Cancelled({reason:?}) of {id}"
                );
                if reason == Error::Disconnected {
                    self.sides[side.index()].disconnected.push(mux);
                }
                call.r_cancelled = Some(reason);
            }
            Event::StreamWritable { .. } => {
                ensure!(
                    call.stream && alive,
                    "step {step}: StreamWritable on {id} (alive={alive})"
                );
            }
            Event::RequestEnded { result, .. } => {
                ensure!(
                    as_opener && !call.stream && alive,
                    "step {step}: Response of {id} (alive={alive})"
                );
                let result = result.map(Some);
                check_terminal(call, &result, &end_context).map_err(|e| fail_at(step, id, e))?;
                if result == Err(Error::Disconnected) {
                    self.sides[side.index()].disconnected.push(mux);
                }
                call.o_open = false;
                call.o_result = Some(result);
            }
            Event::StreamEnded { .. } => {
                ensure!(
                    as_opener && call.stream && alive,
                    "step {step}: StreamEnded of {id} (alive={alive})"
                );
                // The application reads what is left, then the outcome, and
                // releases the stream.
                let mut read = VecDeque::new();
                let outcome = loop {
                    let result = pair.side(side).conn.read(id, &mut read, usize::MAX);
                    match result {
                        Ok(ReadOutcome::Messages { .. }) => {
                            for payload in read.drain(..) {
                                take_message(call, mux, true, payload)
                                    .map_err(|e| fail_at(step, id, Violation::new(e)))?;
                            }
                        }
                        Ok(ReadOutcome::Finished) => break Ok(None),
                        Ok(ReadOutcome::Failed(error)) => break Err(error),
                        other => ensure!(
                            false,
                            "step {step}: {id} ended, but reading it gives {other:?}"
                        ),
                    }
                };
                ensure_eq!(
                    pair.side(side).conn.cancel(id),
                    Ok(()),
                    "step {}: releasing the ended stream {}",
                    step,
                    id
                );
                check_terminal(call, &outcome, &end_context).map_err(|e| fail_at(step, id, e))?;
                if outcome == Err(Error::Disconnected) {
                    self.sides[side.index()].disconnected.push(mux);
                }
                call.o_open = false;
                call.o_result = Some(outcome);
            }
            _ => unreachable!(),
        }
        Ok(())
    }

    /// Checks one event of `side` about the connection as a whole
    /// (`Writable`, `PeerDraining`, `Closed`), and records it.
    pub fn on_connection_event(
        &mut self,
        pair: &Pair,
        side: Which,
        event: Event,
    ) -> Result<(), Violation> {
        let step = self.step;
        match event {
            Event::Writable => {
                let model = &mut self.sides[side.index()];
                ensure!(
                    model.owed_writable,
                    "step {step}: Writable at {side:?} without a SendBufferFull before"
                );
                model.owed_writable = false;
            }
            Event::PeerDraining => {
                let model = &self.sides[side.index()];
                ensure!(
                    self.sides[side.other().index()].drain_called && !model.peer_draining,
                    "step {step}: unexpected PeerDraining at {side:?}"
                );
                self.sides[side.index()].peer_draining = true;
            }
            Event::Closed(reason) => {
                // Every call this side opened ended before.
                let open = self.calls_where(|c| c.opener == side && c.o_open);
                ensure!(
                    open.is_empty(),
                    "step {step}: {side:?} closed ({reason:?}) before calls {open:x?} ended"
                );
                // Every incoming call it held was cancelled before.
                for (mux, call) in &mut self.calls {
                    if call.opener != side && call.r_held {
                        ensure!(
                            call.r_cancelled.is_some(),
                            "step {step}: {side:?} closed without cancelling incoming {mux:#x}"
                        );
                        call.r_held = false;
                    }
                }
                let model = &self.sides[side.index()];
                let peer = &self.sides[side.other().index()];
                // Only unread stream messages can exceed a limit: the peers are
                // honest, so every other limit (message size, partial messages,
                // control backlog, cheap frames) must hold.
                let buffered_limit = |text: &str| match self.allow.limit_closes {
                    LimitCloses::Never => false,
                    LimitCloses::BufferedBytes => text.contains("exceed max_buffered_bytes"),
                    LimitCloses::Any => true,
                };
                let justified = match &reason {
                    CloseReason::Local(text) => model.close_called && text == CLOSE_TEXT,
                    CloseReason::Drained => model.drain_called,
                    CloseReason::LimitExceeded(text) => buffered_limit(text),
                    CloseReason::PeerTimeout(_) => self.allow.peer_timeouts,
                    CloseReason::Peer(text) => match text.strip_prefix("limit exceeded: ") {
                        Some(text) => buffered_limit(text),
                        None if text.starts_with("peer unresponsive") => self.allow.peer_timeouts,
                        None => {
                            // The peer's `close` reason, bare (or as the peer's
                            // own `Local` reason reads, in older versions).
                            (text == "drained" && peer.drain_called)
                                || ((text == CLOSE_TEXT
                                    || text == &format!("closed locally: {CLOSE_TEXT}"))
                                    && peer.close_called)
                        }
                    },
                    _ => false,
                };
                ensure!(justified, "step {step}: {side:?} closed: {reason:?}");
                if matches!(reason, CloseReason::LimitExceeded(_)) {
                    self.limit_closes += 1;
                }
                let model = &mut self.sides[side.index()];
                // Before the deadline the drain can only have completed.
                model.drained_gracefully = reason == CloseReason::Drained
                    && model
                        .drain_deadline
                        .is_some_and(|deadline| pair.now < deadline);
                model.closed = Some(reason);
            }
            other => ensure!(
                false,
                "step {step}: unexpected event {} at {side:?}",
                brief(&other)
            ),
        }
        Ok(())
    }
}

/// An event for a message: its `Debug` form, cut short (payloads can be large).
fn brief(event: &Event) -> String {
    let text = format!("{event:?}");
    match text.char_indices().nth(160) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

fn fail_at(step: usize, id: CallId, error: Violation) -> Violation {
    Violation::new(format!("step {step}: call {id}: {error}"))
}
