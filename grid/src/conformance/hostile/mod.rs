//! The hostile-peer suite: a raw-socket peer written from PROTOCOL.md alone
//! (its own framing and handshake proofs, nothing from grid-proto's
//! `Connection`), and tests in which it completes a real handshake as a known
//! peer and then attacks a real node over loopback.
//!
//! Each test checks three things a node's operator relies on: the bytes the
//! victim accounts to the attacker stay under the configured bound, a
//! legitimate node's calls keep succeeding during the attack, and the
//! attacker's connection ends with the right reason (read from the `Close`
//! frame the victim sends), or stays up when the attack is harmless.

mod arena;
mod attacks;
mod bounds;
mod churn;
mod handshake;
mod mailbox;
mod observe;
mod peer;
mod scanner;
mod wire;

// What a measurement outside the test suite needs to attack a node the same
// way (the `memory_under_attack` example): the raw peer, its frames, and the
// victim's handlers and secret.
pub use arena::{handlers, victim_router, SECRET};
pub use handshake::dialing_name;
pub use peer::{Ending, RawPeer};
pub use wire::{close_code, error_code, op, request_payload, Frame};

pub use attacks::{
    credit_overflow_fails_only_its_call, empty_fragment_flood_is_closed,
    partial_messages_on_many_muxes_are_bounded, ping_flood_is_closed,
    rapid_open_cancel_leaves_nothing_behind,
};
pub use bounds::{
    held_requests_are_bounded, never_reading_peer_is_closed_as_not_reading,
    slow_reader_is_closed_as_too_slow,
};
pub use churn::replacement_churn_is_rate_limited;
pub use scanner::{
    scanner_without_the_secret_gets_no_proof, silent_scanner_is_dropped_at_the_handshake_timeout,
};
