//! The property model: what each side's application believes about every call,
//! and the checks that hold the two connections of a [`Pair`](super::Pair) to it.
//!
//! A driver (the property tests, a fuzz target) applies commands through the
//! model ([`Model::open`], [`Model::send`], [`Model::cancel`], ...), which
//! checks each command's result; takes events through it ([`Model::pump`]),
//! which checks each event as it is taken; and calls [`Model::check`] after
//! every step. A broken property is a [`Violation`].
//!
//! Properties (numbers as in the test plan):
//!
//! 1. *Every call ends exactly once.* A call a side opened gets exactly one
//!    terminal event (`RequestEnded`, or `StreamEnded` after which the model
//!    reads the stream to its outcome and releases it) unless that side
//!    cancelled it itself (then none); no event names a call after its
//!    terminal event (or, for an incoming call, after the application ended it
//!    or after its `IncomingCancelled`); `Closed` comes after the terminal event
//!    of every call of the side, after the `IncomingCancelled` of every
//!    incoming call, and is the side's last event. Results must be justified
//!    (the terminal checks): an answer is exactly what the responder's
//!    application answered, `Cancelled` only after the responder reset the call,
//!    `DeadlineExceeded` only once the deadline (or the responder's clamped
//!    deadline) passed, `Disconnected` only on a closed connection, `Draining`
//!    and `Overloaded` only from a responder that is so, never a protocol error;
//!    likewise for `IncomingCancelled` events and for every command's result
//!    (each refusal needs its condition, and a command with no applicable
//!    refusal succeeds). A connection closes only because the test closed or
//!    drained it, or (small limits) for unread input over `max_buffered_bytes`,
//!    and its `Close` always reaches the peer.
//! 2. *Credits, in bytes.* `send_message` succeeds only while the credit
//!    the messages sent and not yet read cost (each its length plus
//!    `STREAM_MESSAGE_OVERHEAD`) is under the window the receiver granted
//!    (reading is consuming): the sender never has more than the window
//!    outstanding but for one message. After every step, whatever is in
//!    flight, each stream's receiver holds fewer unread bytes than its window
//!    plus the largest message sent on it. Liveness (no deadlock): once the
//!    pair has settled, a sender whose peer read everything sent, or stopped
//!    reading, (and granted a window ≥ 1) can send.
//! 3. *No mux outlives its call.* `in_flight()` and the stream gauges of
//!    `stats()` always equal the model's counts, within the incoming-call limits;
//!    after the final wind-down they are all zero, as are `buffered_bytes` and
//!    `send_buffered`, and a `SendBufferFull` refusal has been followed by
//!    `Writable`.
//! 4. *Buffered bytes stay within limits.* After every step
//!    `stats().buffered_bytes <= max_buffered_bytes`; when settled it is the bytes
//!    sent and not read on the streams both applications work on, plus at most
//!    those of streams ended on one side and a partial message per call
//!    cancelled here. With small limits and big messages the receiver closes
//!    with `CloseReason::LimitExceeded` instead of exceeding the limit. The
//!    payloads of incoming calls stay within `max_held_request_bytes`, and none
//!    are counted once no incoming call is held.
//! 5. *Both sides agree on what is open* (see [`Model::check_agreement`]).
//! 6. *Stream messages are read complete and in order*; each payload carries
//!    its sequence number and is compared byte for byte; the end of a direction
//!    (read as `Finished`, or as the stream's outcome after `StreamEnded`) comes
//!    only after every message sent before it was read, and a reader that
//!    stopped reading is handed no message again.
//!
//! And for drains: a drain that completes before its deadline ends no call with
//! `Disconnected` on either side, and every answer made before it is delivered.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::config::{Config, Limits, Timeouts};

use super::Which;

/// Fails the check with a formatted [`Violation`] unless the condition holds.
macro_rules! ensure {
    ($condition:expr $(,)?) => {
        if !$condition {
            return Err($crate::sim::model::Violation::new(concat!(
                "assertion failed: ",
                stringify!($condition)
            )));
        }
    };
    ($condition:expr, $($message:tt)+) => {
        if !$condition {
            return Err($crate::sim::model::Violation::new(format!($($message)+)));
        }
    };
}

/// Fails the check with a formatted [`Violation`] unless the two sides are equal.
macro_rules! ensure_eq {
    ($left:expr, $right:expr $(,)?) => {
        ensure_eq!($left, $right, "values differ")
    };
    ($left:expr, $right:expr, $($message:tt)+) => {
        match (&$left, &$right) {
            (left, right) => {
                if left != right {
                    return Err($crate::sim::model::Violation::new(format!(
                        "{}: left {:?}, right {:?}",
                        format!($($message)+),
                        left,
                        right
                    )));
                }
            }
        }
    };
}

mod call;
mod checks;
mod commands;
mod events;
mod payload;
mod reading;
mod terminal;
mod wind_down;

pub use call::{message_cost, Answer, Call, Dir, SideModel};
pub use payload::{pattern, stream_payload};
use terminal::{check_terminal, EndContext};

/// The handler every call of the model is opened on.
pub const HANDLER: u16 = 7;
/// The subroute every call of the model is opened on.
pub const SUBROUTE: &[u8] = b"props";
/// Deadlines under this fail locally (`connection/commands.rs` `MIN_DEADLINE`).
pub const MIN_DEADLINE: Duration = Duration::from_millis(1);
/// The reason the model's [`Model::close`] gives.
pub const CLOSE_TEXT: &str = "props test closes";

/// A property that does not hold, with what was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation(pub String);

impl Violation {
    /// A violation described by `message`.
    pub fn new(message: impl Into<String>) -> Violation {
        Violation(message.into())
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Violation {}

/// Which connection closes for a limit the model accepts as justified: two
/// honest sides exceed only what a test provokes on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitCloses {
    /// None: every limit holds between honest sides.
    Never,
    /// Only for unread input over `max_buffered_bytes` (small limits, big
    /// messages, applications that read late).
    BufferedBytes,
    /// Any `LimitExceeded` (arbitrary limits, as a fuzzer picks them).
    Any,
}

/// What the configurations of a run make possible, beyond what two honest
/// sides with default limits do.
#[derive(Clone, Copy, Debug)]
pub struct Allowances {
    /// The responders' call limits are small enough to be reached, so a call
    /// may end with `Overloaded`.
    pub overload: bool,
    /// Which closes for a limit are justified.
    pub limit_closes: LimitCloses,
    /// A side may stop reading (see [`Side::stalled`](super::Side::stalled)),
    /// so its peer, or itself, may close for an unresponsive peer.
    pub peer_timeouts: bool,
}

/// The model of one run: every call either side opened, as both applications
/// see it, and what each side did to its connection.
#[derive(Debug)]
pub struct Model {
    /// Every call opened in the run, ended ones included, by mux id.
    pub calls: BTreeMap<u32, Call>,
    /// What each side did and saw as a whole (client first).
    pub sides: [SideModel; 2],
    /// What the configurations make possible.
    pub allow: Allowances,
    /// Each side's limits (client first).
    pub limits: [Limits; 2],
    /// Each side's timeouts (client first).
    pub timeouts: [Timeouts; 2],
    /// The call on which each side last queued a message (or answered).
    pub recent: [Option<u32>; 2],
    /// Index of the step being applied, for messages; the driver sets it.
    pub step: usize,
    /// Connections closed for `LimitExceeded` so far.
    pub limit_closes: usize,
    next_tag: u64,
}

impl Model {
    /// The model of a fresh, connected pair with these configurations.
    pub fn new(client: &Config, server: &Config, allow: Allowances) -> Model {
        Model {
            calls: BTreeMap::new(),
            sides: Default::default(),
            allow,
            limits: [client.limits.clone(), server.limits.clone()],
            timeouts: [client.timeouts.clone(), server.timeouts.clone()],
            recent: [None; 2],
            step: 0,
            limit_closes: 0,
            next_tag: 0,
        }
    }

    /// A fresh tag for a payload pattern.
    fn tag(&mut self) -> u64 {
        self.next_tag += 1;
        self.next_tag
    }

    /// The mux ids of the calls `keep` selects, in order.
    pub fn calls_where(&self, keep: impl Fn(&Call) -> bool) -> Vec<u32> {
        self.calls
            .iter()
            .filter(|(_, call)| keep(call))
            .map(|(mux, _)| *mux)
            .collect()
    }

    /// Calls `side` opened and still waits on.
    pub fn outgoing(&self, side: Which) -> Vec<u32> {
        self.calls_where(|c| c.opener == side && c.o_open)
    }

    /// Calls the peer opened that `side`'s application still holds.
    pub fn incoming(&self, side: Which) -> Vec<u32> {
        self.calls_where(|c| c.opener != side && c.r_held)
    }
}
