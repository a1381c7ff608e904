//! What can go wrong: a lock not acquired, a lease lost, a client built
//! with unusable settings.

use std::time::Duration;

use crate::mode::Mode;
use crate::tally::Tally;
use crate::timing::TimingError;

/// Why a lock was not acquired. Every grant made along the way has been
/// released.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AcquireError {
    /// Fewer than a quorum of lock servers answered on the last attempt:
    /// the service is unavailable from here.
    #[error("{mode} lock {name:?} not acquired within {waited:?}: a quorum of lock servers is unreachable ({last})")]
    Unavailable {
        /// The lock.
        name: String,
        /// Its mode.
        mode: Mode,
        /// How long the client tried.
        waited: Duration,
        /// The answers of the last attempt.
        last: Tally,
    },
    /// Enough servers answered, but not enough granted: another holder has
    /// the lock (or servers are still starting).
    #[error("{mode} lock {name:?} not acquired within {waited:?}: held elsewhere ({last})")]
    Contended {
        /// The lock.
        name: String,
        /// Its mode.
        mode: Mode,
        /// How long the client tried.
        waited: Duration,
        /// The answers of the last attempt.
        last: Tally,
    },
    /// Servers refused the lease as longer than they allow: the client's
    /// [`LeaseTiming::lease`](crate::LeaseTiming::lease) does not match the
    /// cluster's. Retrying cannot help.
    #[error("{mode} lock {name:?}: lock servers refuse a lease of {lease:?} ({last})")]
    LeaseRefused {
        /// The lock.
        name: String,
        /// Its mode.
        mode: Mode,
        /// The lease asked for.
        lease: Duration,
        /// The answers.
        last: Tally,
    },
}

/// Why a holder lost its lock. From the moment it is reported the holder
/// must not rely on the lock; another client may get it once the servers
/// expire the grant.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Lost {
    /// A refresh round did not reach a quorum: the servers may expire the
    /// grant before the holder could refresh again.
    #[error("lock lost: refresh failed ({0})")]
    RefreshFailed(Tally),
    /// The validity of the last confirmed refresh ran out before the next
    /// refresh round was confirmed.
    #[error("lock lost: lease validity ran out without a confirmed refresh")]
    Expired,
}

/// Why a [`LockClient`](crate::LockClient) cannot be built.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ClientError {
    /// The lease timing is unsafe or unusable.
    #[error(transparent)]
    Timing(#[from] TimingError),
    /// No lock server was given.
    #[error("no lock servers given")]
    NoLockers,
}
