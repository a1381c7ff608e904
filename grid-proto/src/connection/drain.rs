//! Graceful drain, both ways. This side's: its `GoAway`, the ping that follows
//! it, completion once no call can remain, and the `Close` that waits for the
//! last answers. The peer's: its `GoAway`, and the pong held back for it.

use std::time::{Duration, Instant};

use super::phase::Phase;
use super::Connection;
use crate::error::CloseReason;
use crate::event::Event;
use crate::frame::Op;

/// What only this side's drain needs.
#[derive(Debug)]
pub(super) struct Drain {
    /// Calls still in flight then are cut off.
    pub(super) deadline: Instant,
    /// Id of the ping sent right after this side's `GoAway`, until its pong arrives.
    ping: Option<u32>,
}

/// The peer's drain, as far as its frames have told.
#[derive(Debug, Default)]
pub(super) enum PeerDrain {
    #[default]
    NotDraining,
    Draining {
        /// A pong held back until every call this side queued before the
        /// peer's `GoAway` has started to leave.
        held_pong: Option<u32>,
    },
}

/// The frames a connection closed by a completed drain still owes the peer.
#[derive(Debug)]
pub(super) struct CloseAfterFlush {
    code: u32,
    text: String,
    /// A pong held back for the peer's drain; it goes before the `Close`, as
    /// nothing may follow a `Close`.
    held_pong: Option<u32>,
}

impl Connection {
    /// Starts a graceful drain: the peer is told to open no new calls, new
    /// calls are refused both ways with `Draining`, calls in flight may finish
    /// until `timeout`, then the connection closes.
    pub fn begin_drain(&mut self, now: Instant, timeout: Duration) {
        if !matches!(self.phase, Phase::Established) {
            return;
        }
        let deadline = now + timeout;
        let millis = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        self.send.control(Op::GoAway, 0, millis, b"draining");
        // The pong to this ping comes after every call the peer opened before it
        // saw the `GoAway`: only then can no call be racing towards this side.
        let ping = self.send_ping(now);
        self.phase = Phase::Draining(Drain {
            deadline,
            ping: Some(ping),
        });
    }

    /// Notes a pong; this one or a later one answers the drain ping, as ids are
    /// sequential.
    pub(super) fn drain_ping_answered(&mut self, id: u32) {
        if let Phase::Draining(drain) = &mut self.phase {
            if drain
                .ping
                .is_some_and(|ping| id.wrapping_sub(ping) < u32::MAX / 2)
            {
                drain.ping = None;
            }
        }
    }

    /// Completes a drain once no call is in flight and none can still arrive:
    /// the peer has answered the ping sent after the `GoAway` (so every call it
    /// opened before seeing it has arrived) and no message is partly received.
    pub(super) fn after_call_removed(&mut self) {
        if matches!(self.phase, Phase::Draining(Drain { ping: None, .. }))
            && self.outgoing.is_empty()
            && self.incoming.is_empty()
            && self.assembler.is_empty()
        {
            self.close_with(CloseReason::Drained);
        }
    }

    /// The peer's `GoAway`. Repeats carry nothing new, so they are budgeted.
    pub(super) fn on_go_away(&mut self, now: Instant) {
        match self.peer_drain {
            PeerDrain::NotDraining => {
                self.peer_drain = PeerDrain::Draining { held_pong: None };
                self.events.push_back(Event::PeerDraining);
            }
            PeerDrain::Draining { .. } => {
                self.spend_cheap(now);
            }
        }
    }

    /// Answers the peer's ping `id`. While the peer drains, the pong tells it
    /// that no call from this side can still arrive, so it must follow every
    /// call this side opened before: it is held back until they have started
    /// to leave (see [`release_held_pong`](Self::release_held_pong)).
    pub(super) fn queue_pong(&mut self, id: u32) {
        match &mut self.peer_drain {
            PeerDrain::Draining { held_pong } if self.send.pending_opens() > 0 => {
                *held_pong = Some(id);
            }
            _ => self.send.control(Op::Pong, 0, id, &[]),
        }
    }

    /// Queues the held-back pong once no call opened before it waits.
    pub(super) fn release_held_pong(&mut self) {
        if self.send.pending_opens() > 0 {
            return;
        }
        let held = match &mut self.phase {
            Phase::Closed(closed) => closed
                .close_after_flush
                .as_mut()
                .and_then(|flush| flush.held_pong.take()),
            _ => match &mut self.peer_drain {
                PeerDrain::Draining { held_pong } => held_pong.take(),
                PeerDrain::NotDraining => None,
            },
        };
        if let Some(id) = held {
            self.send.control(Op::Pong, 0, id, &[]);
        }
    }

    /// Queues the `Close` owed after a drain, once everything before it has
    /// been sent. Returns whether it did.
    pub(super) fn queue_close_after_flush(&mut self) -> bool {
        let Phase::Closed(closed) = &mut self.phase else {
            return false;
        };
        // A pong still held now would follow the `Close`: it is dropped.
        let Some(flush) = closed.close_after_flush.take() else {
            return false;
        };
        self.send
            .control(Op::Close, 0, flush.code, flush.text.as_bytes());
        true
    }

    /// Whether a held-back pong or `Close` waits to be written.
    pub(super) fn owes_held_frames(&self) -> bool {
        match &self.phase {
            Phase::Closed(closed) => closed.close_after_flush.is_some(),
            _ => matches!(self.peer_drain, PeerDrain::Draining { held_pong: Some(_) }),
        }
    }

    /// Forgets the held-back frames: nothing can be written any more.
    pub(super) fn drop_held_frames(&mut self) {
        if let PeerDrain::Draining { held_pong } = &mut self.peer_drain {
            *held_pong = None;
        }
        if let Phase::Closed(closed) = &mut self.phase {
            closed.close_after_flush = None;
        }
    }

    /// What the connection still owes the peer as it closes. A `Close` queued
    /// already (or the peer's, received) ends it: a pong held back for the
    /// peer's drain would follow it, and the drain ends with the connection
    /// anyway. A `Close` that waits for the queue to flush goes after the
    /// pong, which may still go.
    pub(super) fn final_frames(&mut self, close: Option<(u32, String)>) -> Option<CloseAfterFlush> {
        let held_pong = match &mut self.peer_drain {
            PeerDrain::Draining { held_pong } => held_pong.take(),
            PeerDrain::NotDraining => None,
        };
        close.map(|(code, text)| CloseAfterFlush {
            code,
            text,
            held_pong,
        })
    }
}
