//! The lock server of one node: its grants, the handlers that serve them,
//! and the sweep that forgets expired ones.

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use grid::runtime::sleep_until;
use grid::{Ctx, Router, Runtime};

use crate::clock::SharedClock;
use crate::mode::Mode;
use crate::table::{Grant, HolderId, LockTable};
use crate::wire::{LockRequest, Refusal, UnlockRequest, LOCK, READ_LOCK, REFRESH, UNLOCK};

/// One node's lock server. Cheap to clone; clones share the grants.
///
/// Its grants live in memory only. A server that restarts has forgotten
/// them, so for the first `max_lease` after it starts it grants nothing (see
/// [`Refusal::Starting`]): by then every grant it made before the restart
/// would have expired anyway.
#[derive(Clone)]
pub struct LockServer {
    inner: Arc<ServerInner>,
}

struct ServerInner {
    node: String,
    clock: SharedClock,
    max_lease: Duration,
    grants_from: Instant,
    table: Mutex<LockTable>,
}

impl std::fmt::Debug for LockServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockServer")
            .field("node", &self.inner.node)
            .field("max_lease", &self.inner.max_lease)
            .field("names", &self.table().len())
            .finish()
    }
}

impl LockServer {
    /// The lock server of node `node`, accepting leases up to `max_lease`
    /// (use the cluster's [`LeaseTiming::lease`](crate::LeaseTiming::lease)).
    /// It grants nothing until `max_lease` has passed on `clock`.
    pub fn new(node: impl Into<String>, clock: SharedClock, max_lease: Duration) -> LockServer {
        let grants_from = clock.now() + max_lease;
        LockServer::with_start(node, clock, max_lease, grants_from)
    }

    /// A lock server that grants at once. Only for a server that has never
    /// granted before, such as in a cluster's first start: after a restart
    /// this would break the safety argument (see [`LockServer::new`]).
    pub fn fresh(node: impl Into<String>, clock: SharedClock, max_lease: Duration) -> LockServer {
        let grants_from = clock.now();
        LockServer::with_start(node, clock, max_lease, grants_from)
    }

    fn with_start(
        node: impl Into<String>,
        clock: SharedClock,
        max_lease: Duration,
        grants_from: Instant,
    ) -> LockServer {
        LockServer {
            inner: Arc::new(ServerInner {
                node: node.into(),
                clock,
                max_lease,
                grants_from,
                table: Mutex::new(LockTable::default()),
            }),
        }
    }

    /// The node this server runs on.
    pub fn node(&self) -> &str {
        &self.inner.node
    }

    /// The handlers of the lock service, to add to the node's router.
    ///
    /// Each answers without waiting, so grid runs it on the connection's own
    /// task: a lock call costs no task and no wake-up on the server.
    pub fn router(&self) -> Router {
        let (lock, read, refresh, unlock) =
            (self.clone(), self.clone(), self.clone(), self.clone());
        Router::new()
            .handle(&LOCK, move |ctx: Ctx, request: LockRequest| {
                std::future::ready(lock.lock(ctx.peer(), &request, Mode::Write))
            })
            .handle(&READ_LOCK, move |ctx: Ctx, request: LockRequest| {
                std::future::ready(read.lock(ctx.peer(), &request, Mode::Read))
            })
            .handle(&REFRESH, move |ctx: Ctx, request: LockRequest| {
                std::future::ready(refresh.refresh(ctx.peer(), &request))
            })
            .handle(&UNLOCK, move |ctx: Ctx, request: UnlockRequest| {
                std::future::ready(Ok::<_, Refusal>(unlock.unlock(ctx.peer(), &request)))
            })
    }

    /// Grants `request` to `node` in `mode`.
    pub fn lock(&self, node: &str, request: &LockRequest, mode: Mode) -> Result<(), Refusal> {
        let lease = self.lease(request)?;
        let now = self.inner.clock.now();
        if now < self.inner.grants_from {
            return Err(Refusal::Starting);
        }
        let holder = HolderId {
            node: node.to_string(),
            uid: request.uid,
        };
        match self.table().lock(now, &request.name, holder, mode, lease) {
            true => Ok(()),
            false => Err(Refusal::Held),
        }
    }

    /// Restarts the lease of `node`'s grant.
    pub fn refresh(&self, node: &str, request: &LockRequest) -> Result<(), Refusal> {
        let lease = self.lease(request)?;
        let now = self.inner.clock.now();
        let holder = HolderId {
            node: node.to_string(),
            uid: request.uid,
        };
        match self.table().refresh(now, &request.name, &holder, lease) {
            true => Ok(()),
            false => Err(Refusal::NotHeld),
        }
    }

    /// Releases `node`'s grant; whether there was a live one.
    pub fn unlock(&self, node: &str, request: &UnlockRequest) -> bool {
        let now = self.inner.clock.now();
        let holder = HolderId {
            node: node.to_string(),
            uid: request.uid,
        };
        self.table().unlock(now, &request.name, &holder)
    }

    /// The live grants of lock `name`, for operators and tests.
    pub fn holders(&self, name: &str) -> Vec<Grant> {
        self.table().grants(self.inner.clock.now(), name)
    }

    /// Drops every expired grant; how many. Expired grants already count as
    /// gone; this only frees their memory.
    pub fn sweep(&self) -> usize {
        self.table().sweep(self.inner.clock.now())
    }

    /// Runs [`sweep`](Self::sweep) every `max_lease` on `runtime` until the
    /// last clone of this server is dropped.
    pub fn spawn_sweeper<R: Runtime>(&self, runtime: &R) {
        let weak: Weak<ServerInner> = Arc::downgrade(&self.inner);
        let period = self.inner.max_lease;
        let clock = self.inner.clock.clone();
        let timers = runtime.clone();
        runtime.spawn(async move {
            loop {
                sleep_until(&timers, clock.now() + period).await;
                match weak.upgrade() {
                    Some(inner) => LockServer { inner }.sweep(),
                    None => return,
                };
            }
        });
    }

    fn lease(&self, request: &LockRequest) -> Result<Duration, Refusal> {
        let max_ms = self.inner.max_lease.as_millis().min(u64::MAX as u128) as u64;
        if request.lease_ms == 0 || request.lease_ms > max_ms {
            return Err(Refusal::BadLease {
                requested_ms: request.lease_ms,
                max_ms,
            });
        }
        Ok(Duration::from_millis(request.lease_ms))
    }

    fn table(&self) -> MutexGuard<'_, LockTable> {
        // The table's methods leave it consistent at every return, so a
        // panic elsewhere while it was locked does not corrupt it.
        self.inner.table.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;

    /// A clock the test moves by hand.
    struct ManualClock {
        start: Instant,
        offset: Mutex<Duration>,
    }

    impl Clock for ManualClock {
        fn now(&self) -> Instant {
            self.start + *self.offset.lock().unwrap()
        }
    }

    fn request(uid: u64, lease_ms: u64) -> LockRequest {
        LockRequest {
            name: "a".to_string(),
            uid,
            lease_ms,
        }
    }

    #[test]
    fn a_restarted_server_grants_nothing_for_a_lease() {
        let clock = Arc::new(ManualClock {
            start: Instant::now(),
            offset: Mutex::new(Duration::ZERO),
        });
        let server = LockServer::new("n1", clock.clone(), Duration::from_secs(10));
        let lock = server.lock("n2", &request(1, 10_000), Mode::Write);
        assert_eq!(lock, Err(Refusal::Starting));
        *clock.offset.lock().unwrap() = Duration::from_secs(10);
        assert_eq!(server.lock("n2", &request(1, 10_000), Mode::Write), Ok(()));
    }

    #[test]
    fn leases_outside_the_servers_bounds_are_refused() {
        let server = LockServer::fresh("n1", crate::clock::system_clock(), Duration::from_secs(10));
        let too_long = server.lock("n2", &request(1, 10_001), Mode::Write);
        let expected = Refusal::BadLease {
            requested_ms: 10_001,
            max_ms: 10_000,
        };
        assert_eq!(too_long, Err(expected));
        let zero = server.refresh("n2", &request(1, 0));
        assert!(matches!(zero, Err(Refusal::BadLease { .. })));
        assert!(server.holders("a").is_empty());
    }

    #[test]
    fn only_the_granting_node_refreshes_or_releases() {
        let server = LockServer::fresh("n1", crate::clock::system_clock(), Duration::from_secs(10));
        server.lock("n2", &request(5, 1_000), Mode::Write).unwrap();
        assert_eq!(
            server.refresh("n3", &request(5, 1_000)),
            Err(Refusal::NotHeld)
        );
        let unlock = UnlockRequest {
            name: "a".to_string(),
            uid: 5,
        };
        assert!(!server.unlock("n3", &unlock));
        assert_eq!(server.refresh("n2", &request(5, 1_000)), Ok(()));
        assert!(server.unlock("n2", &unlock));
        assert!(server.holders("a").is_empty());
    }
}
