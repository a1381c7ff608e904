//! grid-lock on simulated nodes: a lock server on every node, contending
//! clients, and the observer that checks them.

pub(crate) mod observer;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use grid_lock::{
    runtime_clock, ClientConfig, LeaseTiming, LockClient, LockServer, Locker, Mode, RetryBackoff,
};
use grid_sim::{node_name, BackoffConfig, SimRandom, Simulation, Task, Timeouts, Turmoil};

use observer::{now, Observer};

/// A 600 ms lease refreshed every 100 ms: expiry happens many times a run.
pub(crate) fn timing() -> LeaseTiming {
    LeaseTiming {
        lease: Duration::from_millis(600),
        refresh_interval: Duration::from_millis(100),
        call_deadline: Duration::from_millis(150),
        max_drift: 0.01,
        margin: Duration::from_millis(50),
    }
}

/// Every node's lock server, as of its latest start.
pub(crate) type Servers = Arc<Mutex<Vec<Option<LockServer>>>>;

/// `nodes` nodes, each with a lock server: `fresh` at its first start, and
/// waiting out a lease after a restart, as a real deployment must.
pub(crate) fn start(seed: u64, nodes: usize, servers: &Servers) -> Simulation {
    *servers.lock().unwrap() = vec![None; nodes];
    let starts: Rc<Vec<Cell<u32>>> = Rc::new((0..nodes).map(|_| Cell::new(0)).collect());
    let registry = servers.clone();
    let mut sim = Simulation::builder(seed)
        .nodes(nodes)
        .configure(move |index, builder| {
            let runtime = builder.runtime().clone();
            let clock = runtime_clock(&runtime);
            let lease = timing().lease;
            let first = starts[index].replace(starts[index].get() + 1) == 0;
            let server = if first {
                LockServer::fresh(node_name(index), clock, lease)
            } else {
                LockServer::new(node_name(index), clock, lease)
            };
            server.spawn_sweeper(&runtime);
            registry.lock().unwrap()[index] = Some(server.clone());
            builder
                .timeouts(Timeouts {
                    keepalive_interval: Duration::from_millis(100),
                    idle: Duration::from_millis(400),
                    ..Timeouts::default()
                })
                .backoff(BackoffConfig {
                    initial: Duration::from_millis(20),
                    max: Duration::from_millis(200),
                    multiplier: 2,
                })
                .router(server.router())
        })
        .network(|network| {
            network
                .min_message_latency(Duration::from_millis(1))
                .max_message_latency(Duration::from_millis(20));
        })
        .build();
    sim.run_until_connected(Duration::from_secs(5));
    sim
}

/// What one contending client does.
pub(crate) struct ClientPlan {
    /// Its name in the observer's records.
    pub(crate) client: String,
    /// The node it runs on.
    pub(crate) node: usize,
    /// Seed of its lock ids, its jitter and its choices.
    pub(crate) seed: u64,
    /// The lock names it contends for.
    pub(crate) names: Vec<String>,
}

/// Starts a client that takes locks in turn until `stop` is raised: mostly
/// writes, some reads, each held for a few steps of at most 20 ms (well
/// within the 50 ms margin), checking the lease before each step.
pub(crate) fn spawn_client(
    sim: &mut Simulation,
    servers: &Servers,
    observer: &Observer,
    plan: ClientPlan,
    stop: Arc<AtomicBool>,
) -> Task<Result<usize, String>> {
    let server = servers.lock().unwrap()[plan.node].clone();
    let names = sim.names().to_vec();
    let observer = observer.clone();
    sim.spawn(plan.node, move |node| async move {
        let server = server.ok_or("no lock server")?;
        let lockers = Locker::for_node(&node, &names, Some(&server)).map_err(|e| e.to_string())?;
        let runtime = Turmoil::seeded(plan.seed);
        let config = ClientConfig {
            timing: timing(),
            acquire_timeout: Duration::from_secs(1),
            backoff: RetryBackoff {
                initial: Duration::from_millis(2),
                max: Duration::from_millis(40),
            },
            seed: Some(plan.seed),
        };
        let client = LockClient::new(runtime.clone(), runtime_clock(&runtime), lockers, config)
            .map_err(|e| e.to_string())?;
        let mut random = SimRandom::new(plan.seed);
        let mut holds = 0;
        while !stop.load(Ordering::SeqCst) {
            let name = &plan.names[random.below(plan.names.len() as u64) as usize];
            let mode = if random.below(4) == 0 {
                Mode::Read
            } else {
                Mode::Write
            };
            let wait = Duration::from_millis(100 + random.below(400));
            let Ok(guard) = client.acquire(name, mode, wait).await else {
                continue;
            };
            if guard.check().is_ok() {
                let hold = observer.enter(&plan.client, plan.node, name, mode);
                holds += 1;
                for _ in 0..1 + random.below(6) {
                    tokio::time::sleep(Duration::from_millis(1 + random.below(20))).await;
                    if guard.check().is_err() {
                        break;
                    }
                }
                observer.exit(hold);
            }
            guard.unlock().await;
        }
        Ok(holds)
    })
}

/// Starts a client that waits for a write lock on `name` for up to `bound`;
/// the virtual time it got it at, or why it did not.
pub(crate) fn spawn_waiter(
    sim: &mut Simulation,
    servers: &Servers,
    node: usize,
    seed: u64,
    name: &str,
    bound: Duration,
) -> Task<Result<Duration, String>> {
    let server = servers.lock().unwrap()[node].clone();
    let names = sim.names().to_vec();
    let name = name.to_string();
    sim.spawn(node, move |manager| async move {
        let server = server.ok_or("no lock server")?;
        let lockers =
            Locker::for_node(&manager, &names, Some(&server)).map_err(|e| e.to_string())?;
        let runtime = Turmoil::seeded(seed);
        let config = ClientConfig {
            timing: timing(),
            seed: Some(seed),
            ..ClientConfig::default()
        };
        let client = LockClient::new(runtime.clone(), runtime_clock(&runtime), lockers, config)
            .map_err(|e| e.to_string())?;
        let guard = client
            .acquire(&name, Mode::Write, bound)
            .await
            .map_err(|e| e.to_string())?;
        let at = now();
        guard.unlock().await;
        Ok(at)
    })
}
