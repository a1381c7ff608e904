//! The lock service's calls as they travel between nodes: their handler ids
//! and message types.
//!
//! Every call names the lock and the holder's lock id; the holder's node is
//! the authenticated caller ([`grid::Ctx::peer`]), so one node can never
//! refresh or release another node's grant.

use grid::typed::Single;
use serde::{Deserialize, Serialize};

/// The first handler id the lock service registers; it uses the four ids
/// from here. An application that registers its own handlers on the same
/// node keeps clear of them.
pub const HANDLER_BASE: u16 = 0x4c00;

/// Grants a write lock.
pub const LOCK: Single<LockRequest, (), Refusal> = Single::new(HANDLER_BASE);
/// Grants a read lock.
pub const READ_LOCK: Single<LockRequest, (), Refusal> = Single::new(HANDLER_BASE + 1);
/// Restarts a grant's lease.
pub const REFRESH: Single<LockRequest, (), Refusal> = Single::new(HANDLER_BASE + 2);
/// Releases a grant; answers whether there was one.
pub const UNLOCK: Single<UnlockRequest, bool, Refusal> = Single::new(HANDLER_BASE + 3);

/// A lock or refresh call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRequest {
    /// The lock's name.
    pub name: String,
    /// The holder's id for this acquisition, unique per holder node.
    pub uid: u64,
    /// How long the server keeps the grant without a refresh, in
    /// milliseconds: the holder's [`LeaseTiming::lease`](crate::LeaseTiming::lease).
    /// Carried in the call so that the server expires the grant no sooner
    /// than the holder's safety argument assumes, whatever its own settings.
    pub lease_ms: u64,
}

/// An unlock call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnlockRequest {
    /// The lock's name.
    pub name: String,
    /// The holder's id for the acquisition.
    pub uid: u64,
}

/// Why a server did not grant or refresh.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    /// Another holder has the lock in a conflicting mode.
    #[error("held by another holder")]
    Held,
    /// The server started less than a lease ago: it may have forgotten
    /// grants it made before a restart, so it grants nothing yet.
    #[error("server started less than a lease ago")]
    Starting,
    /// A refresh for a grant the server does not have (never granted,
    /// expired, or released).
    #[error("no such grant")]
    NotHeld,
    /// The requested lease is zero or longer than the server allows.
    #[error("lease of {requested_ms} ms outside what the server allows (1 to {max_ms} ms)")]
    BadLease {
        /// The lease asked for.
        requested_ms: u64,
        /// The server's longest lease.
        max_ms: u64,
    },
}
