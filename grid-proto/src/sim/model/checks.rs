//! The checks after every step: the connections' gauges and states against the
//! model, and, with nothing in flight, agreement and credit liveness.

use crate::connection::ConnectionState;
use crate::event::CallId;
use crate::sim::{Pair, Which};

use super::{Model, Violation};

impl Model {
    /// Nothing in flight: no byte on the pipes, nothing queued for sending.
    pub fn settled(&self, pair: &Pair) -> bool {
        Which::BOTH
            .into_iter()
            .all(|side| pair.in_flight_to(side) == 0 && !pair.side_ref(side).conn.wants_write())
    }

    /// The checks after every step (events taken): gauges, limits and state
    /// against the model; a drain past its deadline has closed; with nothing
    /// in flight, buffered bytes are the unread messages (see
    /// [`Model::check_buffered`]), both sides agree on what is open and credit
    /// flows.
    pub fn check(&mut self, pair: &Pair) -> Result<(), Violation> {
        let step = self.step;
        let settled = self.settled(pair);
        if settled {
            // A `Close` always arrives: the simulated transport never fails.
            let closed = Which::BOTH.map(|side| self.sides[side.index()].closed.is_some());
            ensure!(
                closed[0] == closed[1],
                "step {step}: only one side is closed after settling (client {}, server {}): \
             the Close did not arrive",
                closed[0],
                closed[1]
            );
        }
        for side in Which::BOTH {
            let connection = &pair.side_ref(side).conn;
            let stats = connection.stats();
            let outgoing = self.calls_where(|c| c.opener == side && c.o_open);
            let incoming = self.calls_where(|c| c.opener != side && c.r_held);
            let count_streams =
                |muxes: &[u32]| muxes.iter().filter(|m| self.calls[m].stream).count();
            // The limits on incoming calls hold, cancelled ones included.
            let limits = &self.limits[side.index()];
            ensure!(
                incoming.len() <= limits.max_incoming_calls as usize
                    && count_streams(&incoming) <= limits.max_incoming_streams as usize,
                "step {step}: {side:?} holds {} incoming calls, {} of them streams",
                incoming.len(),
                count_streams(&incoming)
            );
            ensure_eq!(
                connection.in_flight(),
                (outgoing.len(), incoming.len()),
                "step {}: {:?} in_flight differs from the model (outgoing {:x?}, incoming {:x?})",
                step,
                side,
                outgoing,
                incoming
            );
            ensure_eq!(
                stats.outgoing_streams,
                count_streams(&outgoing),
                "step {}: {:?} outgoing streams",
                step,
                side
            );
            ensure_eq!(
                stats.incoming_streams,
                count_streams(&incoming),
                "step {}: {:?} incoming streams",
                step,
                side
            );
            ensure!(
                stats.buffered_bytes <= self.limits[side.index()].max_buffered_bytes,
                "step {step}: {side:?} buffers {} bytes, over the limit {}",
                stats.buffered_bytes,
                self.limits[side.index()].max_buffered_bytes
            );
            // Payloads of incoming calls are held only while their call is,
            // and within their bound.
            ensure!(
                stats.held_request_bytes <= limits.max_held_request_bytes
                    && (!incoming.is_empty() || stats.held_request_bytes == 0),
                "step {step}: {side:?} holds {} request bytes with {} incoming calls, limit {}",
                stats.held_request_bytes,
                incoming.len(),
                limits.max_held_request_bytes
            );
            let model = &self.sides[side.index()];
            let expected_state = if model.closed.is_some() {
                ConnectionState::Closed
            } else if model.drain_called {
                ConnectionState::Draining
            } else {
                ConnectionState::Established
            };
            ensure_eq!(
                connection.state(),
                expected_state,
                "step {}: {:?} state",
                step,
                side
            );
            if let Some(deadline) = model.drain_deadline {
                ensure!(
                    pair.now <= deadline || model.closed.is_some(),
                    "step {step}: {side:?} still open after its drain deadline"
                );
            }
            if settled {
                self.check_buffered(side, stats.buffered_bytes, &outgoing, &incoming)?;
            }
        }
        self.check_stream_windows(pair)?;
        if settled {
            self.check_agreement(pair)?;
            self.check_credit_liveness(pair)?;
        }
        Ok(())
    }

    /// Property 2, memory: whatever is in flight, a stream's receiver holds
    /// fewer unread bytes than the window it granted plus the largest message
    /// sent to it.
    pub fn check_stream_windows(&self, pair: &Pair) -> Result<(), Violation> {
        for (mux, call) in self.calls.iter().filter(|(_, call)| call.stream) {
            let id = CallId(*mux);
            for (receiver, dir) in [(call.opener, &call.r2o), (call.opener.other(), &call.o2r)] {
                let unread = pair.side_ref(receiver).conn.unread_bytes(id) as u64;
                ensure!(
                    unread == 0 || unread < dir.unread_bound(),
                    "step {}: {receiver:?} holds {unread} unread bytes on {id}, window {} \
                     and largest message sent {:?}",
                    self.step,
                    dir.window,
                    dir.sent.iter().max()
                );
            }
        }
        Ok(())
    }

    /// Property 4 with nothing in flight: `side` buffers exactly the unread
    /// messages of the streams both applications still work on (everything
    /// sent on them has arrived), plus at most the unread messages of streams
    /// it holds that ended on one side (some may have been dropped) and a
    /// partial message per call cancelled here in the middle of a message
    /// (it stays, like the call, until the application ends the call).
    pub fn check_buffered(
        &self,
        side: Which,
        buffered: usize,
        outgoing: &[u32],
        incoming: &[u32],
    ) -> Result<(), Violation> {
        let unread = |mux: &u32| {
            let call = &self.calls[mux];
            let dir = if call.opener == side {
                &call.r2o
            } else {
                &call.o2r
            };
            (call.live_at_both(), dir.unread_bytes())
        };
        let held = outgoing
            .iter()
            .chain(incoming)
            .filter(|m| self.calls[m].stream);
        let (mut exact, mut at_most) = (0, 0);
        for (live, bytes) in held.map(unread) {
            if live {
                exact += bytes;
            } else {
                at_most += bytes;
            }
        }
        let cancelled = incoming
            .iter()
            .filter(|m| self.calls[m].r_cancelled.is_some())
            .count();
        let partials = cancelled * self.limits[side.index()].max_message_size as usize;
        ensure!(
            buffered >= exact && buffered <= exact + at_most + partials,
            "step {}: {side:?} buffers {buffered} bytes; it holds {exact} unread bytes of live \
             streams, up to {at_most} of ended ones, and {cancelled} cancelled calls",
            self.step
        );
        Ok(())
    }

    /// Property 5, checked whenever nothing is in flight: no byte on the pipes
    /// and nothing queued for sending on either side.
    ///
    /// For each direction, let `open` be the calls the opener holds (opened, no
    /// terminal event, not cancelled by itself) and `live` the calls the
    /// responder holds (seen, not ended by its application) minus those it was
    /// told are cancelled (`Event::Cancelled`: a cancelled call stays held until
    /// the application ends it, but it is dead). Then
    ///
    /// * `live ⊆ open`: the responder never works on a call whose opener ended;
    /// * `open ⊆ live`: the opener never waits on a call the responder dropped.
    ///   The opener rounds its relative deadline up to whole milliseconds, so
    ///   the responder's deadline, counted from the arrival, never fires first;
    ///   a deadline the responder clamped is reported to the opener.
    ///
    /// A call refused by the responder, cancelled by either side, answered, or
    /// cut by a close is in neither set once the frames saying so have arrived.
    pub fn check_agreement(&self, pair: &Pair) -> Result<(), Violation> {
        let now = pair.now;
        for (mux, call) in &self.calls {
            let live = call.live_at_responder();
            ensure!(
                !live || call.o_open,
                "step {}: {:?} still serves {mux:#x}, which its opener ended with {:?} \
                 (cancelled by opener: {})",
                self.step,
                call.opener.other(),
                call.o_result,
                call.o_cancelled
            );
            ensure!(
                !call.o_open || live,
                "step {}: {:?} holds {mux:#x} open but the responder does not \
                 (seen {}, held {}, cancelled {:?}, answer {:?}, deadline in {:?})",
                self.step,
                call.opener,
                call.r_seen,
                call.r_held,
                call.r_cancelled,
                call.r_answer,
                call.deadline.saturating_duration_since(now)
            );
        }
        Ok(())
    }

    /// Property 2, liveness: with nothing in flight, a stream whose receiver
    /// read everything sent (or stopped reading) and granted a window of at
    /// least one can carry another message.
    pub fn check_credit_liveness(&self, pair: &Pair) -> Result<(), Violation> {
        for (mux, call) in &self.calls {
            if !(call.stream && call.o_open && call.live_at_responder()) {
                continue;
            }
            let id = CallId(*mux);
            let opener = &pair.side_ref(call.opener).conn;
            let responder = &pair.side_ref(call.opener.other()).conn;
            if call.r2o.window > 0 && call.r2o.all_consumed() {
                ensure!(
                    responder.can_send(id),
                    "step {}: responder of {id} cannot send though the opener read all \
                     {} messages (window {})",
                    self.step,
                    call.r2o.read,
                    call.r2o.window
                );
            }
            if call.r_accepted && call.o2r.window > 0 && call.o2r.all_consumed() && !call.o_finished
            {
                ensure!(
                    opener.can_send(id),
                    "step {}: opener of {id} cannot send though the responder read all \
                     {} messages (window {})",
                    self.step,
                    call.o2r.read,
                    call.o2r.window
                );
            }
        }
        Ok(())
    }
}
