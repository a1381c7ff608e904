//! Keepalive: pings on an interval, the round-trip time their pongs measure,
//! and dead-peer detection.

use std::time::{Duration, Instant};

use super::Connection;
use crate::frame::Op;

/// The first ping id of a connection with `seed`. The handshake sends only a
/// hash of the seed, so the peer learns nothing of it.
pub(super) fn first_ping_id(seed: &[u8; 32]) -> u32 {
    u32::from_le_bytes([seed[28], seed[29], seed[30], seed[31]])
}

/// Keepalive bookkeeping; it runs while calls can flow.
#[derive(Debug)]
pub(super) struct Keepalive {
    pub(super) next_ping: Instant,
    next_id: u32,
    /// Id and send time of the latest ping, for RTT.
    latest: Option<(u32, Instant)>,
    /// When the oldest ping that no pong has answered was sent.
    unanswered_since: Option<Instant>,
    /// Id of the oldest ping no pong has answered: only pongs from it to the
    /// latest answer anything.
    first_unanswered: Option<u32>,
    pub(super) last_received: Instant,
    pub(super) rtt: Option<Duration>,
}

impl Keepalive {
    /// Pings are numbered from `first_id`, which the peer cannot predict: a
    /// peer that never reads cannot answer pings it never saw to pass for
    /// alive.
    pub(super) fn new(now: Instant, first_id: u32) -> Keepalive {
        Keepalive {
            next_ping: now,
            next_id: first_id,
            latest: None,
            unanswered_since: None,
            first_unanswered: None,
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

    /// When the oldest ping that no pong has answered was sent.
    pub(super) fn unanswered_since(&self) -> Option<Instant> {
        self.unanswered_since
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
        keepalive.first_unanswered.get_or_insert(id);
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
                self.keepalive.first_unanswered = None;
            }
            // An older ping still unanswered is answered now: the peer reads,
            // but the newest ping is still out. Rare for an honest peer, so
            // it is charged. Ids outside that range answer nothing: a peer
            // that never read a ping cannot name one.
            Some((latest, sent))
                if self
                    .keepalive
                    .first_unanswered
                    .is_some_and(|first| id.wrapping_sub(first) < latest.wrapping_sub(first)) =>
            {
                if self.spend_cheap(now) {
                    self.keepalive.unanswered_since = Some(sent);
                    // Pings after it are still out; their pongs, in order,
                    // keep counting.
                    self.keepalive.first_unanswered = Some(id.wrapping_add(1));
                }
            }
            _ => {
                self.spend_cheap(now);
            }
        }
    }
}
