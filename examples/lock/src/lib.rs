//! A quorum lock service on grid, in the design of MinIO's dsync: named
//! write locks and shared read locks, each granted by a quorum of lock
//! servers and held as a lease that the holder refreshes.
//!
//! - Every node that serves locks runs a [`LockServer`] and adds its
//!   [`router`](LockServer::router) to the node's handlers.
//! - A [`LockClient`] asks every lock server at once. A write lock needs
//!   `n/2 + 1` grants, a read lock `n - n/2` (see [`Mode::quorum`]); an
//!   attempt short of that releases what it got and retries after a jittered
//!   backoff.
//! - A granted lock is a [`LockGuard`]. A background task refreshes it every
//!   [`LeaseTiming::refresh_interval`]; servers expire a grant not refreshed
//!   for [`LeaseTiming::lease`]. A refresh round that misses a quorum loses
//!   the lock, reported by [`LockGuard::lost`] and [`LockGuard::check`].
//!
//! The safety rule: the holder relies on its lock only for
//! [`LeaseTiming::validity`] after sending the last round that a quorum
//! confirmed, which ends before any server of that quorum can expire the
//! grant even with clocks drifting by [`LeaseTiming::max_drift`]. The README
//! gives the argument in full.
//!
//! The service reads time only through a [`Clock`] and runs on any
//! [`grid::Runtime`], so a simulated runtime can drive it.
//!
//! ```no_run
//! use std::time::Duration;
//! use grid::{Manager, Runtime};
//! use grid_lock::{system_clock, ClientConfig, LockClient, LockServer, Locker};
//!
//! async fn node<R: Runtime + Default>(name: &str, nodes: &[String]) -> Result<(), Box<dyn std::error::Error>> {
//!     let config = ClientConfig::default();
//!     let server = LockServer::new(name, system_clock(), config.timing.lease);
//!     let node = Manager::<R>::builder(name)
//!         .peers(nodes.iter().cloned())
//!         .secret(b"cluster secret")
//!         .router(server.router())
//!         .start()
//!         .await?;
//!     server.spawn_sweeper(&R::default());
//!     let lockers = Locker::for_node(&node, nodes, Some(&server))?;
//!     let client = LockClient::new(R::default(), system_clock(), lockers, config)?;
//!
//!     let guard = client.write("bucket/object").await?;
//!     guard.check()?;                 // before each action the lock guards
//!     // ... the guarded work, each step within `margin` of a check ...
//!     guard.unlock().await;
//!     Ok(())
//! }
//! ```

mod backoff;
mod client;
mod clock;
mod error;
mod guard;
mod lease;
mod locker;
mod mode;
mod round;
mod server;
mod table;
mod tally;
mod timing;
pub mod wire;

pub use backoff::RetryBackoff;
pub use client::{ClientConfig, LockClient};
pub use clock::{runtime_clock, system_clock, Clock, RuntimeClock, SharedClock, SystemClock};
pub use error::{AcquireError, ClientError, Lost};
pub use guard::LockGuard;
pub use locker::Locker;
pub use mode::Mode;
pub use server::LockServer;
pub use table::{Grant, HolderId};
pub use tally::Tally;
pub use timing::{LeaseTiming, TimingError};
