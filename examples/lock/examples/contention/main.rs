//! Contention benchmark of the lock service over real sockets: grid-tokio
//! nodes on loopback, each running a lock server, and clients spread over
//! them taking write locks on a few names as fast as they can.
//!
//! `cargo run --release -p grid-lock --example contention [seconds per run]`
//!
//! For 4 and 16 nodes it prints locks acquired per second (acquire then
//! unlock, nothing held in between) and the median and p99 acquire latency.

mod cluster;
mod latency;

use std::time::{Duration, Instant};

use grid_lock::{ClientConfig, Mode};

use cluster::Cluster;
use latency::Latencies;

/// One row of the table.
struct Run {
    nodes: usize,
    clients: usize,
    names: usize,
}

const RUNS: [Run; 6] = [
    Run {
        nodes: 4,
        clients: 1,
        names: 1,
    },
    Run {
        nodes: 4,
        clients: 8,
        names: 4,
    },
    Run {
        nodes: 4,
        clients: 16,
        names: 2,
    },
    Run {
        nodes: 16,
        clients: 1,
        names: 1,
    },
    Run {
        nodes: 16,
        clients: 8,
        names: 4,
    },
    Run {
        nodes: 16,
        clients: 16,
        names: 2,
    },
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: u64 = match std::env::args().nth(1) {
        Some(arg) => arg
            .parse()
            .map_err(|_| format!("not a number of seconds: {arg}"))?,
        None => 3,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        println!(
            "{:>5} {:>7} {:>5} {:>10} {:>9} {:>9} {:>7}",
            "nodes", "clients", "names", "locks/s", "p50 ms", "p99 ms", "failed"
        );
        for run in &RUNS {
            row(run, Duration::from_secs(seconds)).await?;
        }
        Ok(())
    })
}

async fn row(run: &Run, length: Duration) -> Result<(), Box<dyn std::error::Error>> {
    let cluster = Cluster::start(run.nodes, &ClientConfig::default()).await?;
    let mut tasks = Vec::new();
    let start = Instant::now();
    let end = start + length;
    for index in 0..run.clients {
        let config = ClientConfig {
            seed: Some(index as u64 + 1),
            ..ClientConfig::default()
        };
        let client = cluster.client(index, config)?;
        let names = run.names;
        tasks.push(tokio::spawn(async move {
            let mut latencies = Latencies::default();
            let mut failed = 0usize;
            let mut turn = index;
            while Instant::now() < end {
                let name = format!("object-{}", turn % names);
                turn += 1;
                let asked = Instant::now();
                match client
                    .acquire(&name, Mode::Write, Duration::from_secs(10))
                    .await
                {
                    Ok(guard) => {
                        latencies.record(asked.elapsed());
                        guard.unlock().await;
                    }
                    Err(_) => failed += 1,
                }
            }
            (latencies, failed)
        }));
    }
    let mut latencies = Latencies::default();
    let mut failed = 0;
    for task in tasks {
        let (mine, my_failed) = task.await?;
        latencies.extend(mine);
        failed += my_failed;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{:>5} {:>7} {:>5} {:>10.0} {:>9.3} {:>9.3} {:>7}",
        run.nodes,
        run.clients,
        run.names,
        latencies.len() as f64 / elapsed,
        ms(latencies.quantile(0.5)),
        ms(latencies.quantile(0.99)),
        failed
    );
    cluster.shutdown().await;
    Ok(())
}
