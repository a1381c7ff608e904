//! grid in a deterministic network simulator: nodes as
//! [turmoil](https://docs.rs/turmoil) hosts on a simulated network and a
//! virtual clock, so that tests of code built on grid can partition, delay
//! and hold links and crash and restart nodes, and a failing run replays
//! from its seed.
//!
//! - [`Turmoil`] is the grid [`Runtime`] inside a simulation: turmoil's TCP,
//!   tokio's (virtual) timers, randomness from a seed.
//! - [`Simulation`] starts N nodes as hosts `node-0` … and lets a test run it
//!   until a virtual time, run work on a node ([`Simulation::spawn`]), cut,
//!   hold and heal links, and crash and restart nodes.
//! - [`run_client`] runs one future in a fresh simulation: how grid's
//!   conformance suite runs here.
//!
//! A partition and a crash, replayable with `GRID_SIM_SEED`:
//!
//! ```
//! use std::time::Duration;
//! use grid_sim::{seed_from_env, Bytes, Ctx, Router, Simulation, Timeouts};
//!
//! const ECHO: u16 = 1;
//!
//! let mut sim = Simulation::builder(seed_from_env(1))
//!     .nodes(3)
//!     .configure(|_index, node| {
//!         // A dead peer is noticed within a second instead of grid's 25 s.
//!         let timeouts = Timeouts {
//!             keepalive_interval: Duration::from_millis(200),
//!             idle: Duration::from_millis(800),
//!             ..Timeouts::default()
//!         };
//!         node.timeouts(timeouts)
//!             .router(Router::new().single(ECHO, |_ctx: Ctx, request: Bytes| async move {
//!                 Ok(request)
//!             }))
//!     })
//!     .build();
//! sim.run_until_connected(Duration::from_secs(10));
//!
//! // Node 0 is cut off from node 2: its calls there fail, others go on.
//! sim.partition(&[0], &[2]);
//! let to = sim.names()[2].clone();
//! let mut call = sim.spawn(0, move |node| async move {
//!     node.peer(&to).unwrap().request(ECHO, "hi").timeout(Duration::from_secs(1)).await
//! });
//! let limit = sim.elapsed() + Duration::from_secs(5);
//! assert!(sim.run_task(&mut call, limit).unwrap().is_err());
//!
//! // Node 2 crashes and comes back; once the link heals, calls get through.
//! sim.crash(2);
//! sim.run_for(Duration::from_secs(1));
//! sim.restart(2);
//! sim.repair(&[0], &[2]);
//! // Node 0 never heard of the crash (the partition ate it): its keepalive
//! // finds the old connection dead before it connects to the new instance.
//! sim.run_for(Duration::from_secs(2));
//! sim.run_until_connected(Duration::from_secs(10));
//! let to = sim.names()[2].clone();
//! let mut call = sim.spawn(0, move |node| async move {
//!     node.peer(&to).unwrap().request(ECHO, "back").await
//! });
//! let limit = sim.elapsed() + Duration::from_secs(5);
//! assert_eq!(sim.run_task(&mut call, limit).unwrap().unwrap(), "back");
//! ```

mod random;
mod seed;
mod simulation;
mod task;
mod turmoil_runtime;

pub use grid::*;
pub use turmoil;

pub use crate::random::SimRandom;
pub use crate::seed::{seed_from_env, SEED_VAR};
pub use crate::simulation::{host_name, node_name, run_client, SimBuilder, Simulation, PORT};
pub use crate::task::{Task, TaskError};
pub use crate::turmoil_runtime::Turmoil;

/// A grid node in a simulation.
pub type Manager = grid::Manager<Turmoil>;
