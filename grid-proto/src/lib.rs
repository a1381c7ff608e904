#![forbid(unsafe_code)]
//! grid-proto: the sans-IO core of grid.
mod assembly;
mod backoff;
mod budget;
mod calls;
mod config;
mod connection;
mod decoder;
mod dial;
mod error;
mod event;
mod frame;
mod handshake;
mod rng;
mod send_queue;
mod stats;
mod timers;

#[cfg(any(test, feature = "sim"))]
pub mod sim;
#[cfg(test)]
mod tests;

pub use backoff::{delay_for_attempt, Backoff, BackoffConfig};
pub use config::{Config, Limits, Role, Timeouts, DEFAULT_FRAGMENT_SIZE};
pub use connection::{CallTarget, Connection, ConnectionState, MAX_SUBROUTE};
pub use decoder::FrameDecoder;
pub use dial::dials;
pub use error::{CloseReason, Error, ErrorCode};
pub use event::{CallId, Event, IncomingCall};
pub use frame::{FrameError, Header, Op, FLAG_MORE, HEADER_LEN};
pub use handshake::{PeerInfo, PeerLimits, MAX_NODE_NAME, PROTOCOL_VERSION};
pub use rng::Rng;
pub use stats::Stats;
