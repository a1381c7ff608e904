//! Keepalive: pings on an interval, the round-trip time their pongs measure,
//! and dead-peer detection.

use std::time::{Duration, Instant};

use super::Connection;
use crate::frame::Op;

/// Keepalive bookkeeping; it runs while calls can flow.
#[derive(Debug)]
pub(super) struct Keepalive {
    pub(super) next_ping: Instant,
    next_id: u32,
    /// Id and send time of the latest ping, for RTT.
    latest: Option<(u32, Instant)>,
    /// When the oldest ping that no pong has answered was sent.
    unanswered_since: Option<Instant>,
    pub(super) last_received: Instant,
    pub(super) rtt: Option<Duration>,
}

impl Keepalive {
    pub(super) fn new(now: Instant) -> Keepalive {
        Keepalive {
            next_ping: now,
            next_id: 1,
            latest: None,
            unanswered_since: None,
            last_received: now,
            rtt: None,
        }
    }

    /// Starts the clocks afresh when the handshake completes: the time it took
    /// counts towards neither the first ping nor the idle timeout.
    pub(super) fn restart(&mut self, now: Instant, interval: Duration) {
        self.last_received = now;
        self.next_ping = now + interval;
    }

    /// When the peer counts as dead for sending nothing for `idle`.
    pub(super) fn silence_deadline(&self, idle: Duration) -> Option<Instant> {
        self.last_received.checked_add(idle)
    }

    /// When the peer counts as dead for leaving a ping unanswered for `idle`.
    pub(super) fn unanswered_deadline(&self, idle: Duration) -> Option<Instant> {
        self.unanswered_since?.checked_add(idle)
    }
}

impl Connection {
    /// Sends a ping and returns its id.
    pub(super) fn send_ping(&mut self, now: Instant) -> u32 {
        let keepalive = &mut self.keepalive;
        let id = keepalive.next_id;
        keepalive.next_id = id.wrapping_add(1);
        keepalive.latest = Some((id, now));
        keepalive.unanswered_since.get_or_insert(now);
        keepalive.next_ping = now + self.config.timeouts.keepalive_interval;
        self.send.control(Op::Ping, 0, id, &[]);
        id
    }

    /// The peer's ping. Pings cost the peer nothing, so they are budgeted.
    pub(super) fn on_ping(&mut self, now: Instant, id: u32) {
        if self.spend_cheap(now) {
            self.queue_pong(id);
        }
    }

    pub(super) fn on_pong(&mut self, now: Instant, id: u32) {
        self.drain_ping_answered(id);
        match self.keepalive.latest {
            Some((latest, sent)) if latest == id => {
                self.keepalive.rtt = Some(now.saturating_duration_since(sent));
                self.keepalive.unanswered_since = None;
            }
            // An older ping answered: the peer reads, but the newest ping is
            // still out. Rare for an honest peer, so it is charged.
            Some((latest, sent)) if latest.wrapping_sub(id) < u32::MAX / 2 => {
                if self.spend_cheap(now) {
                    self.keepalive.unanswered_since = Some(sent);
                }
            }
            _ => {
                self.spend_cheap(now);
            }
        }
    }
}
