//! Frames about the connection itself, once the handshake is over.

use std::time::Instant;

use bytes::Bytes;

use super::Connection;
use crate::error::{CloseReason, Refusal};
use crate::frame::{Header, Op};

impl Connection {
    /// A connection-level frame received after the handshake.
    pub(super) fn connection_frame(&mut self, now: Instant, header: Header, payload: Bytes) {
        if header.mux != 0 || header.flags != 0 {
            self.close_with(CloseReason::Protocol(format!(
                "{:?} frame on mux {:#x} with flags {:#x}",
                header.op, header.mux, header.flags
            )));
            return;
        }
        match header.op {
            Op::Ping => self.on_ping(now, header.arg),
            Op::Pong => self.on_pong(now, header.arg),
            Op::GoAway => self.on_go_away(now),
            Op::Close => {
                let text = String::from_utf8_lossy(&payload).into_owned();
                self.peer_closed(match Refusal::from_wire_code(header.arg) {
                    Some(refusal) => CloseReason::Refused(refusal, text),
                    None => CloseReason::Peer(text),
                });
            }
            // The peer gave up on the handshake (e.g. its timeout fired) after
            // this side had completed it: keep its reason.
            Op::Reject => self.peer_closed(CloseReason::Rejected(
                String::from_utf8_lossy(&payload).into_owned(),
            )),
            // `Hello` or `Auth`.
            op => self.close_with(CloseReason::Protocol(format!(
                "{op:?} frame after the handshake"
            ))),
        }
    }
}
