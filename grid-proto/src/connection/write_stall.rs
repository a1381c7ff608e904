//! Stuck and too-slow readers: queued output that makes no progress, or a
//! backlog that stays over its bound, closes the connection.
//!
//! Progress is output handed out by [`Connection::poll_transmit`]: the driver
//! takes output only once its transport accepted earlier output, so a peer
//! that stops reading stops the hand-outs. Nothing the peer sends counts,
//! pings and pongs included: a peer that answers keepalives but never reads
//! is exactly the case these rules exist for.

use std::time::Instant;

use super::Connection;
use crate::error::CloseReason;

/// When output started waiting, and when the backlog went over its bound.
#[derive(Debug, Default)]
pub(super) struct OutputProgress {
    /// Since when queued output has waited with nothing handed out.
    waiting_since: Option<Instant>,
    /// Since when the backlog has been over `max_outbound_backlog`, and how
    /// many bytes had been handed out by then (to report the rate).
    over_bound_since: Option<(Instant, u64)>,
}

impl Connection {
    /// Starts the clocks for output queued since the last look, and stops
    /// the backlog clock once the backlog is back within its bound. Commands
    /// without a `now` queue output too; their output's clock starts at the
    /// next input, timeout or hand-out, at most a keepalive interval later.
    pub(super) fn observe_output(&mut self, now: Instant) {
        if self.wants_write() {
            self.output.waiting_since.get_or_insert(now);
        } else {
            self.output.waiting_since = None;
        }
        self.observe_backlog(now);
    }

    /// `poll_transmit` handed out output (`progress`) or found none to hand out.
    pub(super) fn output_handed_out(&mut self, now: Instant, progress: bool) {
        self.output.waiting_since = (progress && self.wants_write()).then_some(now);
        self.observe_backlog(now);
    }

    fn observe_backlog(&mut self, now: Instant) {
        if self.send.buffered() > self.config.limits.max_outbound_backlog {
            let sent = self.stats.bytes_sent;
            self.output.over_bound_since.get_or_insert((now, sent));
        } else {
            self.output.over_bound_since = None;
        }
    }

    /// Since when queued output has waited with nothing handed out.
    pub(super) fn output_waiting_since(&self) -> Option<Instant> {
        self.output.waiting_since
    }

    /// Since when the backlog has been over its bound.
    pub(super) fn output_over_bound_since(&self) -> Option<Instant> {
        self.output.over_bound_since.map(|(since, _)| since)
    }

    /// When queued output has made no progress for `write_stall`.
    pub(super) fn write_stall_deadline(&self) -> Option<Instant> {
        self.output
            .waiting_since?
            .checked_add(self.config.timeouts.write_stall)
    }

    /// When the backlog has been over its bound for `write_stall`.
    pub(super) fn too_slow_deadline(&self) -> Option<Instant> {
        let (since, _) = self.output.over_bound_since?;
        since.checked_add(self.config.timeouts.write_stall)
    }

    /// Closes a connection whose queued output made no progress.
    pub(super) fn close_not_reading(&mut self) {
        self.close_with(CloseReason::PeerNotReading(
            self.config.timeouts.write_stall,
        ));
    }

    /// Closes a connection whose backlog stayed over its bound, saying how
    /// fast the peer read and how fast it had to.
    pub(super) fn close_too_slow(&mut self, now: Instant) {
        let Some((since, sent_then)) = self.output.over_bound_since else {
            return;
        };
        let elapsed = now.saturating_duration_since(since).as_secs_f64().max(1e-3);
        let read = self.stats.bytes_sent.saturating_sub(sent_then);
        let limits = &self.config.limits;
        let needed = limits.max_outbound_backlog as f64
            / self.config.timeouts.write_stall.as_secs_f64().max(1e-3);
        let text = format!(
            "the peer read {read} bytes in {elapsed:.1} s ({:.0} B/s) while over {} bytes stayed queued; \
             draining needs at least {needed:.0} B/s",
            read as f64 / elapsed,
            limits.max_outbound_backlog,
        );
        self.close_with(CloseReason::PeerTooSlow(text));
    }
}
