#![forbid(unsafe_code)]
//! grid-proto: the sans-IO protocol core of grid.
//!
//! grid is internode RPC: the servers of one distributed system call each other
//! over one long-lived, multiplexed, two-way connection per pair, with single
//! requests, credit-backpressured streams, deadlines, cancellation, keepalive,
//! graceful drain, mutual authentication and limits. This crate is the whole
//! protocol and nothing else: no sockets, no threads, no async, no clock reads.
//! A [`Connection`] is a `&mut self` state machine; the caller supplies bytes and
//! time, and takes bytes, events and a wake-up time back. The async runtimes of
//! grid drive it over sockets; anyone with another event loop can drive it too.
//! The wire format is specified in `PROTOCOL.md`.
//!
//! # The run loop
//!
//! A driver does the same three things forever, like any sans-IO state machine:
//!
//! 1. **Mutate**: feed what happened — bytes read ([`Connection::handle_input`];
//!    or, to save a copy of a large payload, read straight into
//!    [`Connection::input_space`] and call [`Connection::handle_input_in_place`]),
//!    the timer firing ([`Connection::handle_timeout`]), the transport failing
//!    ([`Connection::handle_transport_closed`]), or an application command
//!    ([`Connection::open_request`], [`Connection::respond`], …).
//! 2. **Drain**: write out every buffer [`Connection::poll_transmit`] returns, in
//!    order, and handle every [`Event`] [`Connection::poll_event`] returns.
//!    Take a buffer only once the transport has accepted the earlier ones (or
//!    keep a small bounded queue of your own): handing output out is how the
//!    connection sees that its peer reads (`Timeouts::write_stall`).
//! 3. **Sleep** until the next input or [`Connection::poll_timeout`], whichever
//!    comes first.
//!
//! Reading must never wait for writing: a driver keeps feeding input (and so
//! keepalive and credit frames keep flowing) even while its application is slow
//! to consume stream messages — the credits bound what can pile up.
//!
//! # Example
//!
//! Two connections wired in memory: a handshake, then one request.
//!
//! ```
//! use std::time::Instant;
//! use bytes::Bytes;
//! use grid_proto::{CallTarget, Config, Connection, Event, Role};
//!
//! let now = Instant::now();
//! let secret: &[u8] = b"cluster secret";
//! // The seed must be fresh randomness in real use: the handshake nonce derives from it.
//! let mut a = Connection::new(Config::new("node-a", 1, secret, Role::Dialer, [1; 32]), now);
//! let mut b = Connection::new(Config::new("node-b", 2, secret, Role::Acceptor, [2; 32]), now);
//!
//! // Moves bytes both ways until both sides are quiet; returns the events.
//! fn pump(a: &mut Connection, b: &mut Connection, now: Instant) -> (Vec<Event>, Vec<Event>) {
//!     let (mut ea, mut eb) = (Vec::new(), Vec::new());
//!     loop {
//!         let mut moved = false;
//!         while let Some(bytes) = a.poll_transmit(now) { b.handle_input(now, &bytes); moved = true; }
//!         while let Some(bytes) = b.poll_transmit(now) { a.handle_input(now, &bytes); moved = true; }
//!         ea.extend(std::iter::from_fn(|| a.poll_event()));
//!         eb.extend(std::iter::from_fn(|| b.poll_event()));
//!         if !moved { return (ea, eb); }
//!     }
//! }
//!
//! let (ea, eb) = pump(&mut a, &mut b, now);
//! assert!(matches!(&ea[..], [Event::Connected(peer)] if peer.node_name == "node-b"));
//! assert!(matches!(&eb[..], [Event::Connected(peer)] if peer.node_name == "node-a"));
//!
//! const ECHO: u16 = 1;
//! let call = a.open_request(now, CallTarget::new(ECHO), Bytes::from_static(b"hello"), None)?;
//! let (_, eb) = pump(&mut a, &mut b, now);
//! for event in eb {
//!     if let Event::IncomingRequest(incoming) = event {
//!         assert_eq!(incoming.handler, ECHO);
//!         b.respond(incoming.id, incoming.payload)?;
//!     }
//! }
//! let (ea, _) = pump(&mut a, &mut b, now);
//! assert_eq!(ea, vec![Event::RequestEnded { id: call, result: Ok(Bytes::from_static(b"hello")) }]);
//! # Ok::<(), grid_proto::CommandError>(())
//! ```
//!
//! # What else is here
//!
//! - [`dials`]: which node of a pair opens the connection.
//! - [`Backoff`]: the jittered reconnect schedule, from a seed.
//! - [`FrameDecoder`] and [`Header`]: the frame layer on its own.
mod assembly;
pub mod backoff;
mod budget;
mod call_table;
mod calls;
mod config;
mod connection;
mod decoder;
pub mod dial;
mod error;
mod event;
mod frame;
mod handshake;
mod open_prefix;
mod recycle;
mod rng;
mod send_queue;
mod stats;
mod timers;
mod window;

#[cfg(any(test, feature = "sim"))]
pub mod sim;
#[cfg(test)]
mod tests;

pub use backoff::{delay_for_attempt, Backoff, BackoffConfig};
pub use calls::STREAM_MESSAGE_OVERHEAD;
pub use config::{
    Config, Limits, Role, Timeouts, DEFAULT_FRAGMENT_SIZE, DEFAULT_STREAM_WINDOW,
    DEFAULT_STREAM_WINDOW_START, MIN_SECRET_LEN,
};
pub use connection::{CallTarget, Connection, ConnectionState, MAX_SUBROUTE};
pub use decoder::FrameDecoder;
pub use dial::dials;
pub use error::{CloseReason, CommandError, Error, ErrorCode, Refusal};
pub use event::{CallId, Event, IncomingCall, ReadOutcome, Reservation};
pub use frame::{FrameError, Header, Op, FLAG_MORE, HEADER_LEN};
pub use handshake::{PeerInfo, PeerLimits, MAX_NODE_NAME, PROTOCOL_VERSION};
pub use rng::Rng;
pub use stats::Stats;
