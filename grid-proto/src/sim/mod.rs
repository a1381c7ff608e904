//! A deterministic simulator of two connections wired by in-memory pipes, and
//! everything the crate's tests, the fuzz targets and the benchmarks share to
//! drive it.
//!
//! Virtual clock, seeded RNG, random chunking and a fixed one-way latency
//! ([`Pair`]); helpers that set up a connected pair or an accepted stream
//! ([`streams`]), forge frames for hostile-input tests ([`frames`]) and pick
//! events apart ([`events`]); and the property [`model`] of what each side's
//! application should see. Enabled by the `sim` feature outside tests.

pub mod events;
pub mod frames;
pub mod model;
mod pair;
pub mod streams;

pub use pair::{Pair, Side, Which};

use crate::config::{Config, Role};
use crate::rng::Rng;

/// Secret shared by the two sides of a default pair.
pub const SIM_SECRET: &[u8] = b"simulated cluster secret";

/// A default configuration for one side of a simulated pair.
pub fn sim_config(role: Role, seed: u64) -> Config {
    let name = match role {
        Role::Dialer => "client",
        Role::Acceptor => "server",
    };
    let mut rng = Rng::new(seed ^ 0x5eed);
    let mut nonce_seed = [0u8; 32];
    rng.fill_bytes(&mut nonce_seed);
    Config::new(name, seed, SIM_SECRET.to_vec(), role, nonce_seed)
}
