//! A cluster of grid nodes as turmoil hosts, driven step by step by a test:
//! start, run until a virtual time, cut and heal links, crash and restart.

use std::future::Future;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use grid::{BoxFuture, ManagerBuilder};
use tokio::sync::{mpsc, oneshot};

use crate::random::{derive, reset_default_seeds};
use crate::task::{Task, TaskError};
use crate::{Manager, Turmoil};

/// The port every simulated node listens on.
pub const PORT: u16 = 7000;

/// The cluster secret of simulated nodes.
const SECRET: &str = "grid-sim cluster secret, for simulations only";

/// Work handed to a node, run there as a task of its own.
type Job = Box<dyn FnOnce(Manager) -> BoxFuture<'static, ()> + Send>;

/// How each node's builder is finished: handlers, timeouts, limits.
type Configure = Rc<dyn Fn(usize, ManagerBuilder<Turmoil>) -> ManagerBuilder<Turmoil>>;

/// What the test knows of one node: whether it runs, and where its work goes.
#[derive(Default)]
struct NodeSlot {
    /// The running node's job queue; `None` while it is down or starting.
    jobs: Option<mpsc::UnboundedSender<Job>>,
    /// How many times the node's software has started.
    incarnations: u64,
}

type SharedSlot = Arc<Mutex<NodeSlot>>;

fn lock(slot: &SharedSlot) -> std::sync::MutexGuard<'_, NodeSlot> {
    slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Builds a [`Simulation`].
pub struct SimBuilder {
    seed: u64,
    nodes: usize,
    configure: Configure,
    network: turmoil::Builder,
}

impl SimBuilder {
    /// Sets up `nodes` hosts named `node-0` … and the node on each, named
    /// `node-<i>:7000`.
    pub fn nodes(mut self, nodes: usize) -> SimBuilder {
        self.nodes = nodes;
        self
    }

    /// Finishes each node's builder (its router, timeouts, limits); called
    /// with the node's index at every start, so a restarted node gets fresh
    /// handlers.
    pub fn configure<F>(mut self, configure: F) -> SimBuilder
    where
        F: Fn(usize, ManagerBuilder<Turmoil>) -> ManagerBuilder<Turmoil> + 'static,
    {
        self.configure = Rc::new(configure);
        self
    }

    /// Changes turmoil's network settings: message latency, TCP capacity,
    /// tick. The seed and the duration are set by grid-sim.
    pub fn network(mut self, change: impl FnOnce(&mut turmoil::Builder)) -> SimBuilder {
        change(&mut self.network);
        self
    }

    /// Builds the simulation and runs it until every node has started (not
    /// yet connected: see [`Simulation::run_until_connected`]).
    pub fn build(mut self) -> Simulation {
        reset_default_seeds(self.seed);
        // grid-sim bounds its runs itself, by the virtual times it is given.
        self.network
            .rng_seed(self.seed)
            .simulation_duration(Duration::from_secs(365 * 24 * 3600));
        let mut sim = self.network.build();
        let names: Vec<String> = (0..self.nodes).map(node_name).collect();
        let mut slots = Vec::new();
        for index in 0..self.nodes {
            let slot = SharedSlot::default();
            let software = node_software(
                self.seed,
                index,
                names.clone(),
                slot.clone(),
                self.configure.clone(),
            );
            sim.host(host_name(index), software);
            slots.push(slot);
        }
        let mut simulation = Simulation {
            sim,
            seed: self.seed,
            names,
            slots,
        };
        for index in 0..simulation.names.len() {
            simulation.wait_started(index);
        }
        simulation
    }
}

/// The software of node `index`: starts the node, then runs the work the
/// test hands it, until the host crashes.
fn node_software(
    seed: u64,
    index: usize,
    names: Vec<String>,
    slot: SharedSlot,
    configure: Configure,
) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = turmoil::Result>>> {
    move || {
        let (names, slot, configure) = (names.clone(), slot.clone(), configure.clone());
        Box::pin(async move {
            let incarnation = {
                let mut slot = lock(&slot);
                slot.incarnations += 1;
                slot.incarnations
            };
            // Each start draws fresh numbers (a new instance id), the same
            // ones in every run of this seed.
            let runtime = Turmoil::seeded(derive(seed, &[index as u64, incarnation]));
            let builder = ManagerBuilder::new(runtime, names[index].clone())
                .peers(names.clone())
                .secret(SECRET);
            let node = configure(index, builder).start().await?;
            let (jobs, mut queue) = mpsc::unbounded_channel::<Job>();
            lock(&slot).jobs = Some(jobs);
            while let Some(job) = queue.recv().await {
                // Local, like every task of the node: see `Turmoil::spawn`.
                tokio::task::spawn_local(job(node.clone()));
            }
            Ok(())
        })
    }
}

/// The host name of node `index`.
pub fn host_name(index: usize) -> String {
    format!("node-{index}")
}

/// The grid name (and address) of node `index`.
pub fn node_name(index: usize) -> String {
    format!("{}:{PORT}", host_name(index))
}

/// A simulated cluster of grid nodes, one per turmoil host, run by the test
/// in steps of virtual time.
///
/// Nothing runs between the test's calls: [`Simulation::run_until`] and the
/// methods that wait run the simulation, and everything else changes it
/// between steps. The same seed and the same calls give the same run.
pub struct Simulation {
    sim: turmoil::Sim<'static>,
    seed: u64,
    names: Vec<String>,
    slots: Vec<SharedSlot>,
}

impl Simulation {
    /// A simulation with the given seed: one node unless
    /// [`SimBuilder::nodes`] says otherwise, no handlers unless
    /// [`SimBuilder::configure`] adds some.
    pub fn builder(seed: u64) -> SimBuilder {
        SimBuilder {
            seed,
            nodes: 1,
            configure: Rc::new(|_, builder| builder),
            network: turmoil::Builder::new(),
        }
    }

    /// The seed of this simulation.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The nodes' grid names, by index.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Virtual time since the simulation started.
    pub fn elapsed(&self) -> Duration {
        self.sim.elapsed()
    }

    /// The underlying turmoil simulation, for what grid-sim does not wrap.
    pub fn turmoil(&mut self) -> &mut turmoil::Sim<'static> {
        &mut self.sim
    }

    /// Runs one step (turmoil's tick, 1 ms of virtual time by default).
    pub fn step(&mut self) {
        if let Err(error) = self.sim.step() {
            panic!("simulation with seed {} failed: {error}", self.seed);
        }
    }

    /// Runs until the virtual time `at` (since the start).
    pub fn run_until(&mut self, at: Duration) {
        while self.sim.elapsed() < at {
            self.step();
        }
    }

    /// Runs for `duration` of virtual time.
    pub fn run_for(&mut self, duration: Duration) {
        let at = self.sim.elapsed() + duration;
        self.run_until(at);
    }

    /// Runs `work` on node `index` as a task of its own. The task is lost if
    /// the node is down or crashes before it finishes.
    pub fn spawn<F, Fut, T>(&mut self, index: usize, work: F) -> Task<T>
    where
        F: FnOnce(Manager) -> Fut + Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move |node| {
            Box::pin(async move {
                let _ = done.send(work(node).await);
            })
        });
        if let Some(jobs) = &lock(&self.slots[index]).jobs {
            // A send to a crashed node drops the job, and so its result.
            let _ = jobs.send(job);
        }
        Task::new(result)
    }

    /// Runs until `task` finishes, at most until the virtual time `limit`.
    pub fn run_task<T>(&mut self, task: &mut Task<T>, limit: Duration) -> Result<T, TaskError> {
        loop {
            if let Some(value) = task.try_result()? {
                return Ok(value);
            }
            if self.sim.elapsed() >= limit {
                return Err(TaskError::TimedOut);
            }
            self.step();
        }
    }

    /// Runs until every running node is connected to every other running
    /// node, at most for `within` of virtual time; panics if they are not.
    ///
    /// Connected as each node sees it: a connection to a peer that crashed
    /// unseen (behind a partition) counts until keepalives find it dead.
    pub fn run_until_connected(&mut self, within: Duration) {
        let limit = self.sim.elapsed() + within;
        let running: Vec<usize> = (0..self.names.len())
            .filter(|&index| self.is_running(index))
            .collect();
        let mut tasks = Vec::new();
        for &index in &running {
            let others: Vec<String> = running
                .iter()
                .filter(|&&other| other != index)
                .map(|&other| self.names[other].clone())
                .collect();
            tasks.push(self.spawn(index, move |node| async move {
                for other in &others {
                    // Bounded by the simulation's limit below.
                    while node
                        .wait_connected(other, Duration::from_secs(3600))
                        .await
                        .is_err()
                    {}
                }
            }));
        }
        for (task, index) in tasks.iter_mut().zip(&running) {
            if let Err(error) = self.run_task(task, limit) {
                panic!(
                    "seed {}: node {index} not connected to every running node within {within:?}: {error}",
                    self.seed
                );
            }
        }
    }

    /// Whether node `index` is up (started and not crashed).
    pub fn is_running(&self, index: usize) -> bool {
        lock(&self.slots[index]).jobs.is_some()
    }

    /// Cuts both directions between the nodes of `a` and those of `b`:
    /// messages on those links are dropped, as in a partitioned network, so
    /// connections across stall until grid's keepalive declares them dead.
    pub fn partition(&mut self, a: &[usize], b: &[usize]) {
        self.each_link(a, b, |sim, x, y| sim.partition(x, y));
    }

    /// Heals the links between the nodes of `a` and those of `b`; messages
    /// held on them stay held (see [`Simulation::release`]).
    pub fn repair(&mut self, a: &[usize], b: &[usize]) {
        self.each_link(a, b, |sim, x, y| sim.repair(x, y));
    }

    /// Heals every link: lifts partitions and delivers held messages.
    pub fn heal_all(&mut self) {
        let all: Vec<usize> = (0..self.names.len()).collect();
        self.release(&all, &all);
    }

    /// Holds messages between the nodes of `a` and those of `b` (delayed,
    /// not lost) until [`Simulation::release`].
    pub fn hold(&mut self, a: &[usize], b: &[usize]) {
        self.each_link(a, b, |sim, x, y| sim.hold(x, y));
    }

    /// Delivers the messages held between the nodes of `a` and those of `b`
    /// and lets new ones through; this also lifts a partition between them.
    pub fn release(&mut self, a: &[usize], b: &[usize]) {
        self.each_link(a, b, |sim, x, y| sim.release(x, y));
    }

    fn each_link(
        &mut self,
        a: &[usize],
        b: &[usize],
        mut change: impl FnMut(&turmoil::Sim<'static>, String, String),
    ) {
        for &x in a {
            for &y in b {
                if x != y {
                    change(&self.sim, host_name(x), host_name(y));
                }
            }
        }
    }

    /// Crashes node `index`: its host's tasks and sockets are dropped at
    /// once, and its tasks are lost.
    pub fn crash(&mut self, index: usize) {
        lock(&self.slots[index]).jobs = None;
        self.sim.crash(host_name(index));
    }

    /// Starts node `index` again (crashed or not) with a fresh instance, and
    /// runs until it has started.
    pub fn restart(&mut self, index: usize) {
        lock(&self.slots[index]).jobs = None;
        self.sim.bounce(host_name(index));
        self.wait_started(index);
    }

    /// Runs until node `index` has started; a node that cannot start (a bad
    /// configuration) fails the simulation.
    fn wait_started(&mut self, index: usize) {
        let limit = self.sim.elapsed() + Duration::from_secs(60);
        while !self.is_running(index) {
            assert!(
                self.sim.elapsed() < limit,
                "seed {}: node {index} did not start",
                self.seed
            );
            self.step();
        }
    }
}

/// Runs `test` as the one client of a fresh simulation seeded with `seed`,
/// for at most `limit` of virtual time; panics, naming the seed, if it fails.
/// Runtimes made inside with [`Turmoil::default`] are seeded from `seed`.
pub fn run_client<F>(seed: u64, limit: Duration, test: F)
where
    F: Future<Output = ()> + 'static,
{
    reset_default_seeds(seed);
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .simulation_duration(limit)
        .build();
    sim.client("test", async move {
        test.await;
        Ok(())
    });
    if let Err(error) = sim.run() {
        panic!("simulation with seed {seed} failed: {error}");
    }
}
