//! The simulation API: a seed replays a run, partitions and crashes do what
//! a user's test relies on.

use std::time::Duration;

use grid_sim::{Bytes, Ctx, Error, Router, Simulation, Timeouts};

const ECHO: u16 = 1;

/// A dead peer is noticed within a second of virtual time.
fn quick_timeouts() -> Timeouts {
    Timeouts {
        keepalive_interval: Duration::from_millis(200),
        idle: Duration::from_millis(800),
        ..Timeouts::default()
    }
}

fn cluster(seed: u64, nodes: usize) -> Simulation {
    let mut sim = Simulation::builder(seed)
        .nodes(nodes)
        .configure(|_, node| {
            node.timeouts(quick_timeouts()).router(Router::new().single(
                ECHO,
                |ctx: Ctx, request: Bytes| async move {
                    let mut reply = ctx.peer().as_bytes().to_vec();
                    reply.extend_from_slice(&request);
                    Ok(Bytes::from(reply))
                },
            ))
        })
        .build();
    sim.run_until_connected(Duration::from_secs(10));
    sim
}

/// Node `from` calls node `to` and gives the result with the virtual time
/// it arrived at, in microseconds.
fn call(sim: &mut Simulation, from: usize, to: usize) -> (Result<Bytes, Error>, u128) {
    let peer = sim.names()[to].clone();
    let mut task = sim.spawn(from, move |node| async move {
        let result = node
            .peer(&peer)
            .unwrap()
            .request(ECHO, "x")
            .timeout(Duration::from_secs(2))
            .await;
        (result, turmoil::sim_elapsed().unwrap().as_micros())
    });
    let limit = sim.elapsed() + Duration::from_secs(10);
    sim.run_task(&mut task, limit).expect("call finished")
}

/// Calls, a partition, a crash and a restart, with turmoil's random message
/// latency: what each call returned and when, in virtual time.
fn scenario(seed: u64) -> Vec<String> {
    let mut sim = cluster(seed, 3);
    let mut log = Vec::new();
    let mut record = |sim: &mut Simulation, from, to| {
        let (result, at) = call(sim, from, to);
        log.push(format!("{from}->{to} at {at}us: {result:?}"));
    };
    for (from, to) in [(0, 1), (1, 2), (2, 0)] {
        record(&mut sim, from, to);
    }
    sim.partition(&[0], &[1]);
    record(&mut sim, 0, 1);
    sim.crash(2);
    sim.run_for(Duration::from_millis(500));
    sim.restart(2);
    sim.repair(&[0], &[1]);
    sim.run_until_connected(Duration::from_secs(10));
    for (from, to) in [(0, 1), (0, 2), (2, 1)] {
        record(&mut sim, from, to);
    }
    log
}

#[test]
fn the_same_seed_replays_the_same_run() {
    let first = scenario(11);
    assert_eq!(first, scenario(11));
    // Latencies are drawn from the seed, so another seed runs differently.
    assert_ne!(first, scenario(12));
}

#[test]
fn a_partition_fails_calls_across_it_and_heals() {
    let mut sim = cluster(3, 3);
    sim.partition(&[0], &[1, 2]);
    let started = sim.elapsed();
    let (result, _) = call(&mut sim, 0, 1);
    assert!(
        matches!(result, Err(Error::Disconnected | Error::DeadlineExceeded)),
        "{result:?}"
    );
    // Within the idle bound the connection is declared dead: calls fail fast.
    sim.run_until(started + Duration::from_secs(2));
    let (result, _) = call(&mut sim, 0, 2);
    assert_eq!(result, Err(Error::Disconnected));
    // The other side of the partition is untouched.
    let (result, _) = call(&mut sim, 1, 2);
    assert_eq!(result.unwrap(), format!("{}x", sim.names()[1]));
    sim.repair(&[0], &[1, 2]);
    sim.run_until_connected(Duration::from_secs(5));
    let (result, _) = call(&mut sim, 0, 1);
    assert_eq!(result.unwrap(), format!("{}x", sim.names()[0]));
}

#[test]
fn held_messages_arrive_when_released() {
    let mut sim = cluster(5, 2);
    sim.hold(&[0], &[1]);
    let peer = sim.names()[1].clone();
    let mut task = sim.spawn(0, move |node| async move {
        node.peer(&peer)
            .unwrap()
            .request(ECHO, "held")
            .timeout(Duration::from_secs(5))
            .await
    });
    // Held for less than the idle bound: nothing arrives, nothing breaks.
    sim.run_for(Duration::from_millis(500));
    assert_eq!(task.try_result(), Ok(None));
    sim.release(&[0], &[1]);
    let limit = sim.elapsed() + Duration::from_secs(2);
    let reply = sim.run_task(&mut task, limit).unwrap().unwrap();
    assert_eq!(reply, format!("{}held", sim.names()[0]));
}

#[test]
fn a_crashed_node_loses_its_tasks_and_comes_back_as_a_new_instance() {
    let mut sim = cluster(9, 2);
    let mut hang = sim.spawn(1, |_node| std::future::pending::<()>());
    sim.crash(1);
    assert!(!sim.is_running(1));
    assert_eq!(hang.try_result(), Err(grid_sim::TaskError::Lost));
    let mut never = sim.spawn(1, |_node| async {});
    assert_eq!(never.try_result(), Err(grid_sim::TaskError::Lost));
    let (result, _) = call(&mut sim, 0, 1);
    assert!(result.is_err(), "{result:?}");
    sim.restart(1);
    sim.run_until_connected(Duration::from_secs(5));
    let (result, _) = call(&mut sim, 0, 1);
    assert_eq!(result.unwrap(), format!("{}x", sim.names()[0]));
}
