//! The cluster demo, written once for every runtime: a 3-node mesh on
//! loopback, requests, a stream, a node dying and coming back, a drain, and a
//! report of every connection. The runtime crates' `cluster` examples run it.

use std::error::Error as StdError;
use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::{join_all, select, Either, FutureExt};

use crate::handler::{Ctx, HandlerError};
use crate::manager::{Manager, ManagerBuilder};
use crate::peer_stats::PeerStats;
use crate::router::Router;
use crate::runtime::{sleep_until, Listener, Runtime};
use crate::stream::{StreamReceiver, StreamSender};
use crate::Error;

pub use crate::demo_transport::{DemoBind, DemoConnector, DemoTransport};

const ECHO: u16 = 1;
const SQUARES: u16 = 2;
const SLOW: u16 = 3;
const WHO: u16 = 4;
const SECRET: &str = "demo cluster secret";

/// The demo's error type.
pub type DemoError = Box<dyn StdError + Send + Sync>;

fn spawn<R: Runtime, F>(runtime: &R, future: F) -> impl Future<Output = F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (task, handle) = future.remote_handle();
    runtime.spawn(task);
    handle
}

async fn sleep<R: Runtime>(runtime: &R, duration: Duration) {
    sleep_until(runtime, runtime.now() + duration).await;
}

/// A node: echo requests, a slow echo, and a stream that answers each number
/// with its square.
async fn start_node<R: Runtime>(
    runtime: &R,
    name: &str,
    names: &[String],
    listener: Option<Box<dyn Listener>>,
    transport: Option<&DemoTransport>,
) -> Result<Manager<R>, DemoError> {
    let sleeper = runtime.clone();
    let mut builder = ManagerBuilder::new(runtime.clone(), name)
        .peers(names.iter().cloned())
        .secret(SECRET)
        .router(
            Router::new()
                .single(ECHO, |_ctx: Ctx, request: Bytes| async move { Ok(request) })
                .single(WHO, |ctx: Ctx, _request: Bytes| async move {
                    Ok(Bytes::from(match ctx.peer_identity() {
                        Some(identity) => format!("certificate names {identity}"),
                        None => "no verified identity".to_string(),
                    }))
                })
                .single(SLOW, move |_ctx: Ctx, request: Bytes| {
                    let sleeper = sleeper.clone();
                    async move {
                        sleep(&sleeper, Duration::from_millis(100)).await;
                        Ok(request)
                    }
                })
                .stream(SQUARES, crate::DEFAULT_STREAM_WINDOW, squares),
        );
    if let Some(listener) = listener {
        builder = builder.listener(listener);
    }
    if let Some(transport) = transport {
        builder = builder.connector((transport.connector)(name));
    }
    Ok(builder.start().await?)
}

async fn squares(
    _ctx: Ctx,
    _init: Bytes,
    mut input: StreamReceiver,
    mut output: StreamSender,
) -> Result<(), HandlerError> {
    while let Some(message) = input.recv().await {
        let message = message.map_err(|e| HandlerError::from(e.to_string()))?;
        let n: u64 = std::str::from_utf8(&message)
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| HandlerError::from("not a number"))?;
        output
            .send(Bytes::from((n * n).to_string()))
            .await
            .map_err(|e| HandlerError::from(e.to_string()))?;
    }
    Ok(())
}

fn short(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

/// Every running node calls every other running node `count` times, 16 calls
/// in flight per pair, and prints throughput and latency.
async fn mesh_requests<R: Runtime>(
    runtime: &R,
    nodes: &[Option<Manager<R>>],
    names: &[String],
    count: usize,
) -> Result<(), DemoError> {
    let started = runtime.now();
    let mut pairs = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let Some(node) = node else { continue };
        for (j, peer) in names.iter().enumerate() {
            if i == j || nodes[j].is_none() {
                continue;
            }
            let conn = node.peer(peer)?;
            let clock = runtime.clone();
            pairs.push(spawn(runtime, async move {
                let mut latencies = Vec::with_capacity(count);
                for batch in 0..count / 16 {
                    let calls = (0..16).map(|k| {
                        let conn = conn.clone();
                        let clock = &clock;
                        async move {
                            let sent = clock.now();
                            let payload = Bytes::from(format!("call {}", batch * 16 + k));
                            let reply = conn.request(ECHO, payload.clone()).await?;
                            if reply != payload {
                                return Err(Error::Protocol("echo mismatch".into()));
                            }
                            Ok::<_, Error>(clock.now() - sent)
                        }
                    });
                    for latency in join_all(calls).await {
                        latencies.push(latency?);
                    }
                }
                Ok::<_, Error>(latencies)
            }));
        }
    }
    let connections = pairs.len();
    let mut latencies = Vec::new();
    for pair in join_all(pairs).await {
        latencies.extend(pair?);
    }
    latencies.sort();
    let elapsed = runtime.now() - started;
    println!(
        "  {} requests over {connections} connections in {:.0} ms ({:.0} req/s), p50 {:.0} us, p99 {:.0} us",
        latencies.len(),
        elapsed.as_secs_f64() * 1e3,
        latencies.len() as f64 / elapsed.as_secs_f64(),
        latencies[latencies.len() / 2].as_secs_f64() * 1e6,
        latencies[latencies.len() * 99 / 100].as_secs_f64() * 1e6,
    );
    Ok(())
}

fn print_stats<R: Runtime>(title: &str, nodes: &[Option<Manager<R>>]) {
    println!("\n{title}");
    println!(
        "  {:<6} {:<6} {:<13} {:>9} {:>9} {:>10} {:>10} {:>10}",
        "node", "peer", "state", "msgs out", "msgs in", "bytes out", "bytes in", "reconnects"
    );
    for node in nodes.iter().flatten() {
        for PeerStats {
            peer,
            state,
            protocol,
            reconnects,
            ..
        } in node.stats()
        {
            println!(
                "  {:<6} {:<6} {:<13} {:>9} {:>9} {:>10} {:>10} {:>10}",
                short(node.name()),
                short(&peer),
                format!("{state:?}"),
                protocol.messages_sent,
                protocol.messages_received,
                protocol.bytes_sent,
                protocol.bytes_received,
                reconnects,
            );
        }
    }
}

/// Runs the demo on `runtime`, giving up after a minute.
pub async fn run<R: Runtime>(runtime: R) -> Result<(), DemoError> {
    run_over(runtime, None).await
}

/// Runs the demo on `runtime` over `transport` (the runtime's TCP if
/// `None`), giving up after a minute.
pub async fn run_over<R: Runtime>(
    runtime: R,
    transport: Option<DemoTransport>,
) -> Result<(), DemoError> {
    let scenario = scenario(&runtime, transport.as_ref());
    let limit = sleep_until(&runtime, runtime.now() + Duration::from_secs(60));
    match select(pin!(scenario), pin!(limit)).await {
        Either::Left((outcome, _)) => outcome,
        Either::Right(_) => Err("demo timed out".into()),
    }
}

async fn bind<R: Runtime>(
    runtime: &R,
    transport: Option<&DemoTransport>,
    addr: &str,
) -> std::io::Result<Box<dyn Listener>> {
    match transport {
        Some(transport) => (transport.bind)(addr).await,
        None => runtime.bind(addr).await,
    }
}

async fn scenario<R: Runtime>(
    runtime: &R,
    transport: Option<&DemoTransport>,
) -> Result<(), DemoError> {
    let started = runtime.now();
    // Bind first so the node names (their addresses) are known to everyone.
    let mut listeners = Vec::new();
    for _ in 0..3 {
        listeners.push(bind(runtime, transport, "127.0.0.1:0").await?);
    }
    let names: Vec<String> = listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.to_string()))
        .collect::<std::io::Result<_>>()?;
    println!("grid demo: 3 nodes on loopback: {}", names.join(", "));
    if let Some(transport) = transport {
        println!("  over {}", transport.description);
    }
    let mut nodes = Vec::new();
    for (name, listener) in names.iter().zip(listeners) {
        nodes.push(Some(
            start_node(runtime, name, &names, Some(listener), transport).await?,
        ));
    }
    for node in nodes.iter().flatten() {
        node.wait_all_connected(Duration::from_secs(5)).await?;
    }
    println!(
        "mesh connected in {:.0} ms",
        (runtime.now() - started).as_secs_f64() * 1e3
    );
    if let Some(node) = &nodes[1] {
        let seen = node.peer(&names[0])?.request(WHO, "").await?;
        println!(
            "  node {} as node {} sees it: {}",
            short(&names[1]),
            short(&names[0]),
            String::from_utf8_lossy(&seen)
        );
    }

    println!("\n1. single requests, every node to every other");
    mesh_requests(runtime, &nodes, &names, 2000).await?;

    println!(
        "\n2. a two-way stream: node {} sends 1..=100, node {} answers squares",
        short(&names[0]),
        short(&names[1])
    );
    let first = nodes[0].as_ref().ok_or("node 0 down")?;
    let stream = first.peer(&names[1])?.stream(SQUARES, "").open().await?;
    let (mut tx, mut rx) = stream.split();
    let sender = spawn(runtime, async move {
        for n in 1..=100u64 {
            tx.send(Bytes::from(n.to_string())).await?;
        }
        tx.finish()
    });
    let (mut sum, mut received) = (0u64, 0);
    while let Some(message) = rx.recv().await {
        sum += std::str::from_utf8(&message?)?.parse::<u64>()?;
        received += 1;
    }
    sender.await?;
    let expected: u64 = (1..=100u64).map(|n| n * n).sum();
    println!("  {received} squares received, sum {sum} (expected {expected})");
    if sum != expected {
        return Err("wrong sum of squares".into());
    }

    println!("\n3. node {} dies", short(&names[2]));
    if let Some(node) = nodes[2].take() {
        node.shutdown(Duration::ZERO).await;
    }
    let conn = nodes[0].as_ref().ok_or("node 0 down")?.peer(&names[2])?;
    let deadline = runtime.now() + Duration::from_secs(5);
    while conn.is_connected() && runtime.now() < deadline {
        sleep(runtime, Duration::from_millis(1)).await;
    }
    let attempt = runtime.now();
    match conn.request(ECHO, "anyone there?").await {
        Err(error) => println!(
            "  call from {} to {} failed in {} us: {error} (retryable: {})",
            short(&names[0]),
            short(&names[2]),
            (runtime.now() - attempt).as_micros(),
            error.is_retryable()
        ),
        Ok(_) => return Err("a call to a dead node succeeded".into()),
    }
    println!("  the rest of the mesh still works:");
    mesh_requests(runtime, &nodes, &names, 320).await?;

    println!("\n4. node {} comes back", short(&names[2]));
    let restarted = runtime.now();
    let listener = bind(runtime, transport, &names[2]).await?;
    nodes[2] = Some(start_node(runtime, &names[2], &names, Some(listener), transport).await?);
    for node in nodes.iter().flatten() {
        node.wait_all_connected(Duration::from_secs(10)).await?;
    }
    println!(
        "  mesh healed in {:.0} ms",
        (runtime.now() - restarted).as_secs_f64() * 1e3
    );
    mesh_requests(runtime, &nodes, &names, 320).await?;

    print_stats("connections before the drain:", &nodes);

    println!("\n5. node {} drains", short(&names[1]));
    let draining = nodes[1].take().ok_or("node 1 down")?;
    let conn = nodes[0].as_ref().ok_or("node 0 down")?.peer(&names[1])?;
    let in_flight = spawn(runtime, {
        let conn = conn.clone();
        async move {
            conn.request(SLOW, "slow call in flight during the drain")
                .await
        }
    });
    // Let the slow call reach its handler before the drain starts.
    sleep(runtime, Duration::from_millis(20)).await;
    let drain = spawn(runtime, async move {
        draining.shutdown(Duration::from_secs(2)).await
    });
    let deadline = runtime.now() + Duration::from_secs(5);
    let refused = loop {
        match conn.request(ECHO, "new call").await {
            Err(error) => break error,
            Ok(_) if runtime.now() < deadline => sleep(runtime, Duration::from_millis(1)).await,
            Ok(_) => return Err("the drain never refused a call".into()),
        }
    };
    println!(
        "  new call refused: {refused} (retryable: {})",
        refused.is_retryable()
    );
    match in_flight.await {
        Ok(reply) => println!(
            "  call in flight completed: {:?}",
            String::from_utf8_lossy(&reply)
        ),
        Err(error) => return Err(format!("the call in flight failed: {error}").into()),
    }
    drain.await;
    println!("  drained and stopped");

    print_stats("connections at the end:", &nodes);
    for node in nodes.into_iter().flatten() {
        node.shutdown(Duration::from_millis(200)).await;
    }
    println!("\ndone in {:.2} s", (runtime.now() - started).as_secs_f64());
    Ok(())
}
