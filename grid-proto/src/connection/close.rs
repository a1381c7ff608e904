//! Closing: telling the peer why, ending every call, and the closed phase.

use super::drain::CloseAfterFlush;
use super::phase::Phase;
use super::Connection;
use crate::error::{CloseReason, Refusal};
use crate::event::Event;
use crate::frame::Op;
use crate::handshake;

/// Longest reason text sent in `Close` and `Reject` frames, in bytes.
const MAX_REASON: usize = 240;

/// What only a closed connection needs.
#[derive(Debug)]
pub(super) struct Closed {
    pub(super) reason: CloseReason,
    /// After a drain, the `Close` waits for the answers of the last calls.
    pub(super) close_after_flush: Option<CloseAfterFlush>,
}

impl Connection {
    /// Closes at once: every call ends with `Disconnected` and the peer is told
    /// `reason`. Write out what [`Connection::poll_transmit`] still returns.
    pub fn close(&mut self, reason: impl Into<String>) {
        self.close_with(CloseReason::Local(reason.into()));
    }

    /// Refuses an authenticated connection: closes at once like
    /// [`close`](Self::close), with the refusal's own `Close` code, so the
    /// peer reports [`CloseReason::Refused`] with `text`. Before the handshake
    /// completes, the peer gets a `Reject` with `text` instead.
    pub fn refuse(&mut self, refusal: Refusal, text: impl Into<String>) {
        self.close_with(CloseReason::Refused(refusal, text.into()));
    }

    /// Closes after a peer's misbehaviour or a local decision, telling the peer why.
    pub(super) fn close_with(&mut self, reason: CloseReason) {
        if self.is_closed() {
            return;
        }
        let text = match &reason {
            // The peer wraps the text as its own `Rejected` or `Peer` reason.
            CloseReason::Rejected(text) | CloseReason::Local(text) => text.clone(),
            // The code says which refusal; the text is the refuser's own.
            CloseReason::Refused(_, text) => text.clone(),
            // The receiver recognises a failed proof by this text's prefix.
            CloseReason::PeerUnauthenticated => crate::error::AUTH_FAILED_PEER.to_string(),
            other => other.to_string(),
        };
        // Fits the smallest frame limit a peer may announce, even mid-handshake.
        let text = handshake::truncate_utf8(&text, MAX_REASON).to_string();
        let frame = if matches!(self.phase, Phase::Handshaking(_)) {
            (Op::Reject, 0)
        } else {
            (Op::Close, reason.wire_code())
        };
        if reason == CloseReason::Drained {
            // Answers of the last calls are still queued: the `Close` follows them.
            self.enter_closed(reason, Some((frame.1, text)));
            return;
        }
        self.send.abandon();
        self.send.control(frame.0, 0, frame.1, text.as_bytes());
        self.shut(reason);
    }

    /// The peer closed (or rejected) the connection: nothing queued matters
    /// to it any more.
    pub(super) fn peer_closed(&mut self, reason: CloseReason) {
        self.send.abandon();
        self.shut(reason);
    }

    /// Ends every call and emits `Closed`. Queued frames are left as they are.
    pub(super) fn shut(&mut self, reason: CloseReason) {
        self.enter_closed(reason, None);
    }

    /// [`shut`](Self::shut), with a `Close` still to send once the queue has
    /// flushed when `close_after_flush` is set.
    fn enter_closed(&mut self, reason: CloseReason, close_after_flush: Option<(u32, String)>) {
        if self.is_closed() {
            return;
        }
        let close_after_flush = self.final_frames(close_after_flush);
        self.phase = Phase::Closed(Closed {
            reason: reason.clone(),
            close_after_flush,
        });
        self.end_all_calls();
        self.events.push_back(Event::Closed(reason));
    }
}
