//! Every timer of a connection in one table: when each fires and what firing
//! does. [`Connection::poll_timeout`] and [`Connection::handle_timeout`] both
//! read it, so a timer cannot be armed without being run, or run without
//! being armed.

use std::time::Instant;

use super::phase::Phase;
use super::Connection;
use crate::error::CloseReason;

/// A connection-level timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timer {
    /// The handshake did not complete in time.
    Handshake,
    /// The oldest unanswered ping went unanswered for `idle`: the peer is dead.
    Unanswered,
    /// Nothing arrived for `idle`: the peer is dead.
    Silence,
    /// Queued output made no progress for `write_stall`: the peer is not reading.
    WriteStall,
    /// The outbound backlog stayed over its bound for `write_stall`: the peer
    /// reads too slowly.
    TooSlow,
    /// This side's drain deadline: calls still in flight are cut off.
    Drain,
    /// The next keepalive ping is due.
    Ping,
    /// The earliest call deadline (see [`crate::timers::Deadlines`]).
    Calls,
}

impl Timer {
    /// Every timer, in the order a timeout runs them: once one closes the
    /// connection the rest are moot, so a dead peer is reported as such
    /// rather than as the end of a drain.
    const ALL: [Timer; 8] = [
        Timer::Handshake,
        Timer::Unanswered,
        Timer::Silence,
        Timer::WriteStall,
        Timer::TooSlow,
        Timer::Drain,
        Timer::Ping,
        Timer::Calls,
    ];
}

/// The earlier of two optional instants; `None` only if both are.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

impl Connection {
    /// When [`Connection::handle_timeout`] should next be called; `None` once closed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let soonest = self.soonest();
        debug_assert_eq!(
            soonest,
            Timer::ALL
                .into_iter()
                .filter_map(|timer| self.deadline(timer))
                .min(),
            "the soonest deadline differs from the table's"
        );
        soonest
    }

    /// The earliest of the table's deadlines, as [`Connection::deadline`]
    /// gives them, without walking the table: a driver asks several times
    /// per turn. Timers counted over the same duration share its addition:
    /// the earlier start, plus the duration, is the earlier deadline (and
    /// if that addition overflows, so does the other).
    fn soonest(&self) -> Option<Instant> {
        let drain = match &self.phase {
            Phase::Handshaking(handshake) => return Some(handshake.deadline),
            Phase::Closed(_) => return None,
            Phase::Established => None,
            Phase::Draining(drain) => Some(drain.deadline),
        };
        let timeouts = &self.config.timeouts;
        // The next ping is always armed while calls can flow.
        let mut soonest = self.keepalive.next_ping;
        let mut consider = |at: Option<Instant>| {
            if let Some(at) = at {
                soonest = soonest.min(at);
            }
        };
        // Unanswered ping and silence, both counted over `idle`.
        let received = self.keepalive.last_received;
        let since = self
            .keepalive
            .unanswered_since()
            .map_or(received, |unanswered| unanswered.min(received));
        consider(since.checked_add(timeouts.idle));
        // Stuck and too slow a reader, both counted over `write_stall`.
        if let Some(since) = earliest(self.output_waiting_since(), self.output_over_bound_since()) {
            consider(since.checked_add(timeouts.write_stall));
        }
        consider(drain);
        consider(self.deadlines.next());
        Some(soonest)
    }

    /// Runs timers due at `now`: handshake timeout, keepalive, dead-peer
    /// and stuck-reader detection, call deadlines, drain deadline. Extra
    /// calls are harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.latest = self.latest.max(now);
        // Output queued by commands that carry no time starts waiting now.
        self.observe_output(now);
        for timer in Timer::ALL {
            if self.is_closed() {
                return;
            }
            if self.is_due(timer, now) {
                self.fire(timer, now);
            }
        }
        self.observe_output(now);
    }

    /// When `timer` fires; `None` while the phase does not arm it.
    fn deadline(&self, timer: Timer) -> Option<Instant> {
        let idle = self.config.timeouts.idle;
        match (timer, &self.phase) {
            (Timer::Handshake, Phase::Handshaking(handshake)) => Some(handshake.deadline),
            (Timer::Drain, Phase::Draining(drain)) => Some(drain.deadline),
            (Timer::Unanswered, phase) if phase.is_open() => {
                self.keepalive.unanswered_deadline(idle)
            }
            (Timer::Silence, phase) if phase.is_open() => self.keepalive.silence_deadline(idle),
            (Timer::WriteStall, phase) if phase.is_open() => self.write_stall_deadline(),
            (Timer::TooSlow, phase) if phase.is_open() => self.too_slow_deadline(),
            (Timer::Ping, phase) if phase.is_open() => Some(self.keepalive.next_ping),
            (Timer::Calls, phase) if phase.is_open() => self.deadlines.next(),
            _ => None,
        }
    }

    fn is_due(&self, timer: Timer, now: Instant) -> bool {
        match timer {
            // The heap pops only the calls that are due, and consulting it
            // also sheds entries of calls that ended meanwhile.
            Timer::Calls => self.deadline(timer).is_some(),
            _ => self.deadline(timer).is_some_and(|at| now >= at),
        }
    }

    fn fire(&mut self, timer: Timer, now: Instant) {
        match timer {
            Timer::Handshake => self.close_with(CloseReason::HandshakeTimeout),
            Timer::Unanswered | Timer::Silence => {
                self.close_with(CloseReason::PeerTimeout(self.config.timeouts.idle));
            }
            Timer::WriteStall => self.close_not_reading(),
            Timer::TooSlow => self.close_too_slow(now),
            Timer::Drain => self.close_with(CloseReason::Drained),
            Timer::Ping => {
                // Once per interval, an idle connection gives its buffers
                // back to the system: the transmit buffer if nothing waits to
                // be sent, the receive buffers no payload needed since the
                // last ping and the input buffer's spare room, and the call
                // tables if no call is in flight.
                self.send.release_if_idle();
                self.outgoing.release_if_empty();
                self.incoming.release_if_empty();
                self.decoder.release_idle_buffers();
                self.send_ping(now);
            }
            Timer::Calls => self.expire_calls(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use bytes::Bytes;

    use crate::sim::{sim_config, Pair};
    use crate::{CallTarget, CloseReason, Connection, ConnectionState, Error, Event, Role};

    /// Runs `conn`'s timers with its peer silent until it closes, checking
    /// that every wake-up it asks for is consumed by the timeout it runs.
    fn run_alone(conn: &mut Connection) -> Vec<(Instant, Event)> {
        let mut events = Vec::new();
        while let Some(at) = conn.poll_timeout() {
            conn.handle_timeout(at);
            assert!(
                conn.is_closed() || conn.poll_timeout() > Some(at),
                "a timer due at {at:?} is still armed after running"
            );
            while conn.poll_transmit(at).is_some() {}
            events.extend(std::iter::from_fn(|| conn.poll_event()).map(|event| (at, event)));
        }
        events
    }

    #[test]
    fn only_the_handshake_timer_runs_while_handshaking() {
        let now = Instant::now();
        let mut conn = Connection::new(sim_config(Role::Dialer, 1), now);
        let deadline = now + conn.config().timeouts.handshake;
        assert_eq!(conn.poll_timeout(), Some(deadline));
        conn.handle_timeout(deadline - Duration::from_millis(1));
        assert_eq!(conn.state(), ConnectionState::Handshaking);
        conn.handle_timeout(deadline);
        assert_eq!(conn.close_reason(), Some(&CloseReason::HandshakeTimeout));
        assert_eq!(conn.poll_timeout(), None);
    }

    #[test]
    fn a_silent_peer_times_out_after_calls_expire_and_pings_go_unanswered() {
        let mut pair = Pair::connected(7);
        let start = pair.now;
        let conn = &mut pair.client.conn;
        let idle = conn.config().timeouts.idle;
        let call = conn
            .open_request(start, CallTarget::new(1), Bytes::new(), Some(idle / 4))
            .unwrap();
        conn.begin_drain(start, idle * 10);
        let events = run_alone(conn);
        assert_eq!(
            events.first(),
            Some(&(
                start + idle / 4,
                Event::RequestEnded {
                    id: call,
                    result: Err(Error::DeadlineExceeded)
                }
            ))
        );
        assert!(matches!(
            events.last(),
            Some((at, Event::Closed(CloseReason::PeerTimeout(timeout))))
                if *timeout == idle && *at <= start + idle
        ));
    }

    #[test]
    fn the_drain_deadline_cuts_off_calls_and_the_close_still_goes_out() {
        let mut pair = Pair::connected(8);
        let start = pair.now;
        let conn = &mut pair.client.conn;
        let idle = conn.config().timeouts.idle;
        let call = conn
            .open_request(start, CallTarget::new(1), Bytes::new(), Some(idle))
            .unwrap();
        conn.begin_drain(start, idle / 4);
        let events = run_alone(conn);
        assert_eq!(
            events,
            vec![
                (
                    start + idle / 4,
                    Event::RequestEnded {
                        id: call,
                        result: Err(Error::Disconnected)
                    }
                ),
                (start + idle / 4, Event::Closed(CloseReason::Drained)),
            ]
        );
        assert!(!conn.wants_write());
    }
}
