//! Scale: a mesh of nodes connects, serves an all-to-all round of calls,
//! survives a partition that splits it in two, and heals, within a stated
//! virtual time.
//!
//! Both sizes run by default; the 64-node mesh takes about 21 s of real time
//! in a debug build on two cores (2,016 connections, 4,032 calls a round),
//! the 16-node one about a second. `--nocapture` prints each run's times:
//! `cargo test -p grid-sim --test mesh -- --nocapture`.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use grid_sim::{seed_from_env, Bytes, Ctx, Error, Router, Simulation, Timeouts};

const ECHO: u16 = 1;

/// The whole scenario must fit in this much virtual time.
const VIRTUAL_BOUND: Duration = Duration::from_secs(10);

fn start(nodes: usize, seed: u64) -> Simulation {
    Simulation::builder(seed)
        .nodes(nodes)
        .configure(|_, node| {
            let timeouts = Timeouts {
                keepalive_interval: Duration::from_millis(250),
                idle: Duration::from_secs(1),
                ..Timeouts::default()
            };
            node.timeouts(timeouts).router(
                Router::new().single(ECHO, |_ctx: Ctx, request: Bytes| async move { Ok(request) }),
            )
        })
        // Every node accepts from up to all the others at once.
        .network(|network| {
            network.tcp_capacity(256);
        })
        .build()
}

/// Every node calls every other node at once; the results by caller, then
/// callee.
fn all_to_all(sim: &mut Simulation) -> Vec<Vec<Result<Bytes, Error>>> {
    let names = sim.names().to_vec();
    let mut tasks = Vec::new();
    for from in 0..names.len() {
        let names = names.clone();
        tasks.push(sim.spawn(from, move |node| async move {
            let calls = names.iter().enumerate().map(|(to, name)| {
                let node = node.clone();
                let name = name.clone();
                async move {
                    if to == from {
                        return Ok(Bytes::new());
                    }
                    node.peer(&name)
                        .expect("a peer")
                        .request(ECHO, format!("{from}->{to}"))
                        .timeout(Duration::from_secs(1))
                        .await
                }
            });
            join_all(calls).await
        }));
    }
    let limit = sim.elapsed() + Duration::from_secs(5);
    tasks
        .iter_mut()
        .map(|task| sim.run_task(task, limit).expect("a round of calls ends"))
        .collect()
}

fn mesh(nodes: usize) {
    let seed = seed_from_env(64);
    let real = Instant::now();
    let mut sim = start(nodes, seed);
    sim.run_until_connected(Duration::from_secs(10));
    let connected = sim.elapsed();

    for (from, results) in all_to_all(&mut sim).into_iter().enumerate() {
        for (to, result) in results.into_iter().enumerate() {
            if from != to {
                assert_eq!(result.unwrap(), format!("{from}->{to}"), "seed {seed}");
            }
        }
    }

    // Split in two halves: calls within a half go on, calls across fail
    // once keepalives have declared those connections dead.
    let (a, b): (Vec<usize>, Vec<usize>) = (0..nodes).partition(|&i| i < nodes / 2);
    sim.partition(&a, &b);
    sim.run_for(Duration::from_millis(1500));
    for (from, results) in all_to_all(&mut sim).into_iter().enumerate() {
        for (to, result) in results.into_iter().enumerate() {
            let same_half = (from < nodes / 2) == (to < nodes / 2);
            match (same_half, result) {
                (true, result) => assert!(result.is_ok(), "seed {seed}: {from}->{to}: {result:?}"),
                (false, result) => assert_eq!(
                    result,
                    Err(Error::Disconnected),
                    "seed {seed}: {from}->{to} across the partition"
                ),
            }
        }
    }

    sim.repair(&a, &b);
    let repaired = sim.elapsed();
    sim.run_until_connected(Duration::from_secs(10));
    let healed = sim.elapsed();
    for (from, results) in all_to_all(&mut sim).into_iter().enumerate() {
        for (to, result) in results.into_iter().enumerate() {
            if from != to {
                assert!(
                    result.is_ok(),
                    "seed {seed}: after healing {from}->{to}: {result:?}"
                );
            }
        }
    }
    let total = sim.elapsed();
    println!(
        "{nodes} nodes, seed {seed}: connected at {connected:?}, repaired at {repaired:?}, \
         reconnected at {healed:?}, done at {total:?} of virtual time, in {:?} of real time",
        real.elapsed()
    );
    assert!(
        total <= VIRTUAL_BOUND,
        "seed {seed}: took {total:?} of virtual time"
    );
}

#[test]
fn sixteen_node_mesh_splits_and_heals() {
    mesh(16);
}

#[test]
fn sixty_four_node_mesh_splits_and_heals() {
    mesh(64);
}
