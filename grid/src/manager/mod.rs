//! The Manager: a node's view of the cluster. It listens, dials the peers it
//! should dial, accepts the others, reconnects forever, and runs handlers.
//!
//! Split by concern: [`builder`] configures and starts a node, [`node`] is the
//! running node and what the application asks of it, [`dial`] and [`accept`]
//! bring connections in, [`connection`] runs one connection from handshake to
//! close (admission, install, replace, uninstall), [`signal`] is the one-shot
//! flag that stops the loops, and [`random`] is where the node's randomness
//! comes from.

mod accept;
mod builder;
mod connection;
mod dial;
mod handshakes;
mod log_limit;
#[cfg(feature = "metrics")]
mod metrics_loop;
mod node;
mod opened;
mod outcome;
mod report;
mod signal;

pub use builder::{ManagerBuilder, StartError, DEFAULT_REPLACE_INTERVAL};
pub use dial::Connector;
pub use handshakes::DEFAULT_MAX_PENDING_HANDSHAKES;
#[cfg(feature = "metrics")]
pub use metrics_loop::DEFAULT_METRICS_INTERVAL;
pub use node::{Manager, UnknownPeer, WaitError};
pub use outcome::AcceptOutcome;
