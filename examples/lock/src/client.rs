//! The client: acquires locks from a quorum of lock servers, retrying with
//! backoff while they are held, and hands out guards that refresh them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_channel::oneshot;
use grid::runtime::sleep_until;
use grid::Runtime;

use crate::backoff::{os_seed, RetryBackoff, SplitMix64};
use crate::clock::SharedClock;
use crate::error::{AcquireError, ClientError};
use crate::guard::LockGuard;
use crate::lease::{LeaseState, Refresher};
use crate::locker::Locker;
use crate::mode::Mode;
use crate::round;
use crate::timing::LeaseTiming;
use crate::wire::{LockRequest, UnlockRequest};

/// How a [`LockClient`] acquires and holds locks.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientConfig {
    /// The lease timing; its `lease` must not exceed the servers'.
    pub timing: LeaseTiming,
    /// How long [`LockClient::write`] and [`LockClient::read`] keep trying.
    /// Default 30 s.
    pub acquire_timeout: Duration,
    /// The wait between attempts.
    pub backoff: RetryBackoff,
    /// Seed of the lock ids and the jitter. Default: from the operating
    /// system. Give one to replay a run in a simulator; clients of one node
    /// must not share a seed, or their lock ids collide.
    pub seed: Option<u64>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            timing: LeaseTiming::default(),
            acquire_timeout: Duration::from_secs(30),
            backoff: RetryBackoff::default(),
            seed: None,
        }
    }
}

/// Acquires locks from a quorum of lock servers. Cheap to clone.
pub struct LockClient<R: Runtime> {
    inner: Arc<ClientInner<R>>,
}

impl<R: Runtime> Clone for LockClient<R> {
    fn clone(&self) -> Self {
        LockClient {
            inner: self.inner.clone(),
        }
    }
}

impl<R: Runtime> std::fmt::Debug for LockClient<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockClient")
            .field("lockers", &self.inner.lockers)
            .field("config", &self.inner.config)
            .finish()
    }
}

struct ClientInner<R> {
    runtime: R,
    clock: SharedClock,
    lockers: Arc<[Locker]>,
    config: ClientConfig,
    random: Mutex<SplitMix64>,
}

impl<R: Runtime> LockClient<R> {
    /// A client of the lock servers `lockers` (every lock server of the
    /// cluster: see [`Locker::for_node`]), spawning its refresh tasks on
    /// `runtime` and reading the time from `clock`.
    pub fn new(
        runtime: R,
        clock: SharedClock,
        lockers: Vec<Locker>,
        config: ClientConfig,
    ) -> Result<LockClient<R>, ClientError> {
        config.timing.check()?;
        if lockers.is_empty() {
            return Err(ClientError::NoLockers);
        }
        let seed = config.seed.unwrap_or_else(os_seed);
        Ok(LockClient {
            inner: Arc::new(ClientInner {
                runtime,
                clock,
                lockers: lockers.into(),
                config,
                random: Mutex::new(SplitMix64::new(seed)),
            }),
        })
    }

    /// The lock servers this client asks.
    pub fn lockers(&self) -> &[Locker] {
        &self.inner.lockers
    }

    /// Acquires write lock `name`, trying for the configured
    /// `acquire_timeout`.
    pub async fn write(&self, name: &str) -> Result<LockGuard, AcquireError> {
        let timeout = self.inner.config.acquire_timeout;
        self.acquire(name, Mode::Write, timeout).await
    }

    /// Acquires read lock `name`, trying for the configured
    /// `acquire_timeout`.
    pub async fn read(&self, name: &str) -> Result<LockGuard, AcquireError> {
        let timeout = self.inner.config.acquire_timeout;
        self.acquire(name, Mode::Read, timeout).await
    }

    /// Acquires lock `name` in `mode`, retrying with backoff for up to
    /// `timeout` (zero: a single attempt). Each failed attempt releases
    /// whatever grants it got before the next.
    pub async fn acquire(
        &self,
        name: &str,
        mode: Mode,
        timeout: Duration,
    ) -> Result<LockGuard, AcquireError> {
        let inner = &self.inner;
        let timing = inner.config.timing;
        let started = inner.clock.now();
        let deadline = started + timeout;
        let request = LockRequest {
            name: name.to_string(),
            uid: self.random(),
            lease_ms: timing.lease.as_millis().min(u64::MAX as u128) as u64,
        };
        let mut attempt = 0u32;
        loop {
            let sent = inner.clock.now();
            let tally = round::lock(&inner.lockers, mode, &request, timing.call_deadline).await;
            let now = inner.clock.now();
            // A round outlasting the validity (impossible while the call
            // deadline is under it) would hand out a lock already expired.
            if tally.succeeded() && now < sent + timing.validity() {
                return Ok(self.hold(mode, request, sent));
            }
            if tally.done > 0 || tally.unreachable > 0 {
                let unlock = UnlockRequest {
                    name: request.name.clone(),
                    uid: request.uid,
                };
                round::unlock(&inner.lockers, mode, &unlock, timing.call_deadline).await;
            }
            let name = request.name.clone();
            if tally.bad_lease > 0 {
                let lease = timing.lease;
                return Err(AcquireError::LeaseRefused {
                    name,
                    mode,
                    lease,
                    last: tally,
                });
            }
            let now = inner.clock.now();
            let wait = inner.config.backoff.wait(attempt, self.random());
            if now + wait >= deadline {
                let waited = now.saturating_duration_since(started);
                return Err(match tally.quorum_reachable() {
                    true => AcquireError::Contended {
                        name,
                        mode,
                        waited,
                        last: tally,
                    },
                    false => AcquireError::Unavailable {
                        name,
                        mode,
                        waited,
                        last: tally,
                    },
                });
            }
            sleep_until(&inner.runtime, now + wait).await;
            attempt = attempt.saturating_add(1);
        }
    }

    /// Starts the refresh task of a lock granted by the round sent at `sent`.
    fn hold(&self, mode: Mode, request: LockRequest, sent: std::time::Instant) -> LockGuard {
        let inner = &self.inner;
        let timing = inner.config.timing;
        let state = LeaseState::new(sent + timing.validity());
        let (stop, stopped) = oneshot::channel();
        let guard = LockGuard {
            name: request.name.clone(),
            mode,
            uid: request.uid,
            state: state.clone(),
            clock: inner.clock.clone(),
            lockers: inner.lockers.clone(),
            timing,
            stop: Some(stop),
        };
        let refresher = Refresher {
            runtime: inner.runtime.clone(),
            clock: inner.clock.clone(),
            lockers: inner.lockers.clone(),
            timing,
            mode,
            request,
            state,
            confirmed: sent,
        };
        inner.runtime.spawn(refresher.run(stopped));
        guard
    }

    fn random(&self) -> u64 {
        let mut random = self.inner.random.lock().unwrap_or_else(|p| p.into_inner());
        random.next_u64()
    }
}
