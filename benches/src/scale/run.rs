//! One mesh size, run in this process: the mesh forms, idles and is
//! measured, makes its all-to-all round and shuts down; then as many nodes
//! without peers are started and measured, for what the nodes cost alone.

use std::hint::black_box;
use std::time::{Duration, Instant};

use futures::future::join_all;
use grid::Manager;
use grid_tokio::Tokio;
use tokio::runtime::Runtime;

use super::procfs::{open_fds, resident_bytes};
use super::round::{all_to_all, Round};
use super::row::Row;
use crate::compare::grid_rt::{bind_nodes, start_node};
use crate::counting_alloc::{self, CountingGuard};

/// Worker threads of the runtime every node shares (the machine's cores).
pub const WORKER_THREADS: usize = 2;

/// How long shutting down the runtime may take once every node shut down.
const RUNTIME_SHUTDOWN: Duration = Duration::from_secs(5);

/// How long a mesh of `nodes` nodes may take to connect: 30 s, plus 10 ms
/// per connection.
pub fn connect_timeout(nodes: usize) -> Duration {
    let pairs = (nodes * nodes.saturating_sub(1) / 2) as u64;
    Duration::from_secs(30) + Duration::from_millis(10 * pairs)
}

/// Whether the counting allocator is this binary's global allocator.
pub fn allocations_counted() -> bool {
    let (_, counts) = counting_alloc::measure(|| black_box(Box::new(black_box(1u64))));
    counts.allocs > 0
}

fn runtime() -> Result<Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot build a tokio runtime: {e}"))
}

/// Runs a mesh of `nodes` nodes, idle for `settle` once connected before
/// its memory is read (and again after a first round of calls), and returns
/// what it measured.
pub fn run(nodes: usize, settle: Duration) -> Result<Row, String> {
    let counted = allocations_counted();
    let fds_start = open_fds()? as u64;
    let runtime = runtime()?;
    let (listeners, names) = bind_nodes(nodes)?;
    let fds_before = open_fds()? as u64;
    let rss_before = resident_bytes()?;
    let mut row = runtime.block_on(async move {
        let counting = CountingGuard::start();
        let started = Instant::now();
        let mut managers = Vec::with_capacity(nodes);
        for (name, listener) in names.iter().zip(listeners) {
            managers.push(start_node::<Tokio>(name, &names, listener).await?);
        }
        let timeout = connect_timeout(nodes);
        let waits = join_all(managers.iter().map(|m| m.wait_all_connected(timeout))).await;
        if let Some(Err(error)) = waits.into_iter().find(Result::is_err) {
            return Err(format!(
                "the mesh of {nodes} nodes did not connect: {error}"
            ));
        }
        let connect = started.elapsed();
        eprintln!("  {nodes} nodes connected in {:.1} ms", ms(connect));
        let measured = idle_and_rounds(&managers, settle, counting).await;
        let shutdown_started = Instant::now();
        join_all(managers.iter().map(|m| m.shutdown(Duration::ZERO))).await;
        let shutdown = shutdown_started.elapsed();
        let idle = measured?;
        eprintln!(
            "  all-to-all round: {} calls in {:.1} ms; shut down in {:.1} ms",
            idle.round.calls,
            ms(idle.round.elapsed),
            ms(shutdown)
        );
        Ok(Row {
            nodes,
            connections: idle.connections,
            connect,
            reconnects: idle.reconnects,
            fds_start,
            fds_before,
            fds_idle: idle.fds,
            fds_after: 0,
            rss_before,
            rss_idle: idle.rss,
            live_mesh: counted.then_some(idle.live),
            live_used: counted.then_some(idle.live_used),
            live_lone: None,
            round_calls: idle.round.calls,
            first_round: idle.first_round.elapsed,
            round: idle.round.elapsed,
            shutdown,
        })
    })?;
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
    row.fds_after = open_fds()? as u64;
    if counted {
        row.live_lone = Some(lone_nodes(nodes, settle)?);
    }
    Ok(row)
}

/// What a connected mesh measured while idle, and its rounds.
struct Idle {
    /// Net heap growth since counting started, once idle.
    live: i64,
    /// The same once idle again after the first round.
    live_used: i64,
    fds: u64,
    rss: u64,
    connections: u64,
    reconnects: u64,
    /// The first round, made with allocation counting on.
    first_round: Round,
    /// The timed round, with counting off.
    round: Round,
}

/// Lets the connected mesh idle for `settle` and reads its memory and
/// descriptors; makes a first round and, idle for `settle` again, reads the
/// heap once more; then, counting off, makes the timed round. `counting`
/// has been on since before the first node started: what connections
/// allocate while carrying the first round and keep once idle must be
/// counted, so counting cannot pause in between.
async fn idle_and_rounds(
    managers: &[Manager<Tokio>],
    settle: Duration,
    counting: CountingGuard,
) -> Result<Idle, String> {
    tokio::time::sleep(settle).await;
    let live = counting.counts().live_bytes;
    let fds = open_fds()? as u64;
    let rss = resident_bytes()?;
    let (connections, reconnects) = connection_counts(managers);
    let first_round = all_to_all(managers).await?;
    tokio::time::sleep(settle).await;
    let live_used = counting.counts().live_bytes;
    drop(counting);
    let round = all_to_all(managers).await?;
    Ok(Idle {
        live,
        live_used,
        fds,
        rss,
        connections,
        reconnects,
        first_round,
        round,
    })
}

/// Connections up (connected peer slots of every node, halved) and
/// reconnections so far, summed over every node.
fn connection_counts(managers: &[Manager<Tokio>]) -> (u64, u64) {
    let mut ends = 0;
    let mut reconnects = 0;
    for manager in managers {
        for stats in manager.stats() {
            ends += u64::from(stats.state == grid::PeerState::Connected);
            reconnects += stats.reconnects;
        }
    }
    (ends / 2, reconnects)
}

/// Net heap bytes `nodes` nodes with no peers hold once started and idle
/// for `settle`, on a runtime of their own.
fn lone_nodes(nodes: usize, settle: Duration) -> Result<i64, String> {
    let runtime = runtime()?;
    let (listeners, names) = bind_nodes(nodes)?;
    let live = runtime.block_on(async move {
        let counting = CountingGuard::start();
        let mut managers = Vec::with_capacity(nodes);
        for (name, listener) in names.iter().zip(listeners) {
            // A node whose peer list holds only its own name has no peers.
            let alone = std::slice::from_ref(name);
            managers.push(start_node::<Tokio>(name, alone, listener).await?);
        }
        tokio::time::sleep(settle).await;
        let live = counting.counts().live_bytes;
        drop(counting);
        join_all(managers.iter().map(|m| m.shutdown(Duration::ZERO))).await;
        Ok::<_, String>(live)
    })?;
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
    Ok(live)
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn larger_meshes_may_take_longer_to_connect() {
        assert!(connect_timeout(128) > connect_timeout(8));
    }
}
