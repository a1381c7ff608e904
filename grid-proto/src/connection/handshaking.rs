//! The handshake phase: `Hello` both ways, then the dialer's `Auth`, then,
//! once the acceptor has verified it, the acceptor's `Auth`: each side proves
//! it knows the cluster secret, and the acceptor proves nothing to a peer
//! that has not.

use std::time::Instant;

use bytes::Bytes;

use super::phase::Phase;
use super::Connection;
use crate::config::Role;
use crate::error::{CloseReason, Refusal, AUTH_FAILED_PREFIX};
use crate::event::Event;
use crate::frame::{Header, Op};
use crate::handshake::{self, PROOF_LEN};

/// What only the handshake needs.
#[derive(Debug)]
pub(super) struct Handshake {
    /// This side's `Hello`, which both proofs cover.
    pub(super) own_hello: Bytes,
    /// The peer's `Hello` once it arrived; the peer's `Auth` may only follow it.
    pub(super) peer_hello: Option<Bytes>,
    /// The handshake must complete by then.
    pub(super) deadline: Instant,
}

impl Handshake {
    pub(super) fn new(own_hello: Bytes, deadline: Instant) -> Handshake {
        Handshake {
            own_hello,
            peer_hello: None,
            deadline,
        }
    }
}

impl Connection {
    /// A frame received while handshaking.
    pub(super) fn handshake_frame(&mut self, now: Instant, header: Header, payload: Bytes) {
        if header.mux != 0 || header.flags != 0 {
            self.close_with(CloseReason::Protocol(format!(
                "{:?} frame on mux {:#x} with flags {:#x} during the handshake",
                header.op, header.mux, header.flags
            )));
            return;
        }
        let Phase::Handshaking(handshake) = &mut self.phase else {
            return;
        };
        match header.op {
            Op::Hello if handshake.peer_hello.is_none() => {
                match handshake::decode_hello(&payload, &self.config) {
                    Ok(info) => {
                        // The dialer proves first. The acceptor proves only
                        // once the dialer's proof checked out, so a peer
                        // without the secret never gets a proof to guess
                        // the secret against.
                        if self.config.role == Role::Dialer {
                            let proof =
                                handshake::proof(&self.config, &handshake.own_hello, &payload);
                            self.send.control(Op::Auth, 0, 0, &proof);
                        }
                        self.peer = Some(info);
                        handshake.peer_hello = Some(payload);
                    }
                    Err(reason) => self.close_with(CloseReason::Rejected(reason)),
                }
            }
            Op::Auth if handshake.peer_hello.is_some() => {
                let peer_hello = handshake.peer_hello.as_deref().unwrap_or_default();
                let verified = payload.len() == PROOF_LEN
                    && handshake::verify(&self.config, &payload, &handshake.own_hello, peer_hello);
                if verified {
                    if self.config.role == Role::Acceptor {
                        let proof =
                            handshake::proof(&self.config, &handshake.own_hello, peer_hello);
                        self.send.control(Op::Auth, 0, 0, &proof);
                    }
                    self.established(now);
                } else {
                    self.close_with(CloseReason::PeerUnauthenticated);
                }
            }
            Op::Reject => {
                let text = String::from_utf8_lossy(&payload).into_owned();
                // A failed proof is the one rejection the operator must act
                // on at this node: it gets its own reason.
                self.peer_closed(if text.starts_with(AUTH_FAILED_PREFIX) {
                    CloseReason::SecretRefused(text)
                } else {
                    CloseReason::Rejected(text)
                });
            }
            // An acceptor that verified this side and then refused it may
            // close before its own proof leaves: the refusal is still news.
            Op::Close => {
                let text = String::from_utf8_lossy(&payload).into_owned();
                self.peer_closed(match Refusal::from_wire_code(header.arg) {
                    Some(refusal) => CloseReason::Refused(refusal, text),
                    None => CloseReason::Peer(text),
                });
            }
            op => self.close_with(CloseReason::Protocol(format!(
                "unexpected {op:?} frame during the handshake"
            ))),
        }
    }

    fn established(&mut self, now: Instant) {
        self.phase = Phase::Established;
        self.decoder
            .set_max_frame(self.config.limits.max_frame_size);
        self.keepalive
            .restart(now, self.config.timeouts.keepalive_interval);
        if let Some(peer) = &self.peer {
            self.events.push_back(Event::Connected(peer.clone()));
        }
    }
}
