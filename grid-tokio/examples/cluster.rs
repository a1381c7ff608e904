//! A 3-node grid cluster on loopback: requests, a stream, a node dying and
//! coming back, a drain, and a report of every connection.
//!
//! Run it with `cargo run --release -p grid-tokio --example cluster`.

use std::error::Error as StdError;
use std::time::{Duration, Instant};

use grid_tokio::{
    Bytes, ConnectionStats, Ctx, Error, HandlerError, Manager, StreamReceiver, StreamSender, Tokio,
};

const ECHO: u16 = 1;
const SQUARES: u16 = 2;
const SLOW: u16 = 3;
const SECRET: &str = "demo cluster secret";

type Result<T> = std::result::Result<T, Box<dyn StdError>>;

/// A node: echo requests, and a stream that answers each number with its square.
async fn start_node(
    name: &str,
    names: &[String],
    listener: Option<tokio::net::TcpListener>,
) -> Result<Manager> {
    let mut builder = Manager::builder(name)
        .peers(names.iter().cloned())
        .secret(SECRET)
        .single(ECHO, |_ctx: Ctx, request: Bytes| async move { Ok(request) })
        .single(SLOW, |_ctx: Ctx, request: Bytes| async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(request)
        })
        .stream(SQUARES, 8, squares);
    if let Some(listener) = listener {
        builder = builder.listener(Tokio::listener(listener));
    }
    Ok(builder.start().await?)
}

async fn squares(
    _ctx: Ctx,
    _init: Bytes,
    mut input: StreamReceiver,
    mut output: StreamSender,
) -> std::result::Result<(), HandlerError> {
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

/// Every node calls every other node `count` times, 16 calls in flight per pair.
async fn mesh_requests(nodes: &[Option<Manager>], names: &[String], count: usize) -> Result<()> {
    let started = Instant::now();
    let mut pairs = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let Some(node) = node else { continue };
        for (j, peer) in names.iter().enumerate() {
            if i == j || nodes[j].is_none() {
                continue;
            }
            let conn = node.connection(peer)?;
            pairs.push(tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(count);
                for batch in 0..count / 16 {
                    let calls = (0..16).map(|k| {
                        let conn = conn.clone();
                        async move {
                            let sent = Instant::now();
                            let payload = Bytes::from(format!("call {}", batch * 16 + k));
                            let reply = conn.request(ECHO, payload.clone()).await?;
                            assert_eq!(reply, payload);
                            Ok::<_, Error>(sent.elapsed())
                        }
                    });
                    for latency in futures_join(calls).await {
                        latencies.push(latency?);
                    }
                }
                Ok::<_, Error>(latencies)
            }));
        }
    }
    let pairs_count = pairs.len();
    let mut latencies = Vec::new();
    for pair in pairs {
        latencies.extend(pair.await??);
    }
    latencies.sort();
    let elapsed = started.elapsed();
    println!(
        "  {} requests across {} connections in {:.0} ms ({:.0} req/s), p50 {:.0} us, p99 {:.0} us",
        latencies.len(),
        pairs_count,
        elapsed.as_secs_f64() * 1e3,
        latencies.len() as f64 / elapsed.as_secs_f64(),
        latencies[latencies.len() / 2].as_secs_f64() * 1e6,
        latencies[latencies.len() * 99 / 100].as_secs_f64() * 1e6,
    );
    Ok(())
}

/// Runs futures concurrently on the current task.
async fn futures_join<F: std::future::Future>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut pending: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (future, result) in pending.iter_mut().zip(results.iter_mut()) {
            if result.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *result = Some(value),
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    results.into_iter().flatten().collect()
}

fn print_stats(title: &str, nodes: &[Option<Manager>]) {
    println!("\n{title}");
    println!(
        "  {:<6} {:<6} {:<13} {:>9} {:>9} {:>10} {:>10} {:>8} {:>10}",
        "node",
        "peer",
        "state",
        "msgs out",
        "msgs in",
        "bytes out",
        "bytes in",
        "rtt us",
        "reconnects"
    );
    for node in nodes.iter().flatten() {
        for ConnectionStats {
            peer,
            state,
            protocol,
            reconnects,
            ..
        } in node.stats()
        {
            println!(
                "  {:<6} {:<6} {:<13} {:>9} {:>9} {:>10} {:>10} {:>8} {:>10}",
                short(node.name()),
                short(&peer),
                format!("{state:?}"),
                protocol.messages_sent,
                protocol.messages_received,
                protocol.bytes_sent,
                protocol.bytes_received,
                protocol
                    .rtt
                    .map_or("-".to_string(), |rtt| rtt.as_micros().to_string()),
                reconnects,
            );
        }
    }
}

async fn run() -> Result<()> {
    let started = Instant::now();
    // Bind first so the node names (their addresses) are known to everyone.
    let mut listeners = Vec::new();
    for _ in 0..3 {
        listeners.push(tokio::net::TcpListener::bind("127.0.0.1:0").await?);
    }
    let names: Vec<String> = listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.to_string()))
        .collect::<std::io::Result<_>>()?;
    println!("grid demo: 3 nodes on loopback: {}", names.join(", "));
    let mut nodes = Vec::new();
    for (name, listener) in names.iter().zip(listeners) {
        nodes.push(Some(start_node(name, &names, Some(listener)).await?));
    }
    for node in nodes.iter().flatten() {
        node.wait_all_connected(Duration::from_secs(5)).await?;
    }
    println!(
        "mesh connected in {:.0} ms",
        started.elapsed().as_secs_f64() * 1e3
    );

    println!("\n1. single requests, every node to every other");
    mesh_requests(&nodes, &names, 2000).await?;

    println!(
        "\n2. a two-way stream: node {} sends 1..=100, node {} answers squares",
        short(&names[0]),
        short(&names[1])
    );
    let stream = nodes[0]
        .as_ref()
        .ok_or("node 0 down")?
        .connection(&names[1])?
        .stream(SQUARES, "")
        .open()
        .await?;
    let (mut tx, mut rx) = stream.split();
    let sender = tokio::spawn(async move {
        for n in 1..=100u64 {
            tx.send(Bytes::from(n.to_string())).await?;
        }
        tx.finish()
    });
    let mut sum = 0u64;
    let mut received = 0;
    while let Some(message) = rx.recv().await {
        sum += std::str::from_utf8(&message?)?.parse::<u64>()?;
        received += 1;
    }
    sender.await??;
    println!(
        "  {received} squares received, sum {sum} (expected {})",
        (1..=100u64).map(|n| n * n).sum::<u64>()
    );

    println!("\n3. node {} dies", short(&names[2]));
    if let Some(node) = nodes[2].take() {
        node.shutdown(Duration::ZERO).await;
    }
    let conn = nodes[0]
        .as_ref()
        .ok_or("node 0 down")?
        .connection(&names[2])?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while conn.is_connected() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let attempt = Instant::now();
    match conn.request(ECHO, "anyone there?").await {
        Err(error) => println!(
            "  call from {} to {} failed in {} us: {error} (retryable: {})",
            short(&names[0]),
            short(&names[2]),
            attempt.elapsed().as_micros(),
            error.is_retryable()
        ),
        Ok(_) => return Err("a call to a dead node succeeded".into()),
    }
    println!("  the rest of the mesh still works:");
    mesh_requests(&nodes, &names, 320).await?;

    println!("\n4. node {} comes back", short(&names[2]));
    let restarted = Instant::now();
    nodes[2] = Some(start_node(&names[2], &names, None).await?);
    for node in nodes.iter().flatten() {
        node.wait_all_connected(Duration::from_secs(10)).await?;
    }
    println!(
        "  mesh healed in {:.0} ms",
        restarted.elapsed().as_secs_f64() * 1e3
    );
    mesh_requests(&nodes, &names, 320).await?;

    print_stats("connections before the drain:", &nodes);

    println!("\n5. node {} drains", short(&names[1]));
    let draining = nodes[1].take().ok_or("node 1 down")?;
    let conn = nodes[0]
        .as_ref()
        .ok_or("node 0 down")?
        .connection(&names[1])?;
    let in_flight = tokio::spawn({
        let conn = conn.clone();
        async move {
            conn.request(SLOW, "slow call in flight during the drain")
                .await
        }
    });
    // Let the slow call reach its handler before the drain starts.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let drain = tokio::spawn(async move { draining.shutdown(Duration::from_secs(2)).await });
    let deadline = Instant::now() + Duration::from_secs(5);
    let refused = loop {
        match conn.request(ECHO, "new call").await {
            Err(error) => break error,
            Ok(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(1)).await
            }
            Ok(_) => return Err("the drain never refused a call".into()),
        }
    };
    println!(
        "  new call refused: {refused} (retryable: {})",
        refused.is_retryable()
    );
    match in_flight.await? {
        Ok(reply) => println!(
            "  call in flight completed: {:?}",
            String::from_utf8_lossy(&reply)
        ),
        Err(error) => println!("  call in flight ended with: {error}"),
    }
    drain.await?;
    println!("  drained and stopped");

    print_stats("connections at the end:", &nodes);
    for node in nodes.into_iter().flatten() {
        node.shutdown(Duration::from_millis(200)).await;
    }
    println!("\ndone in {:.2} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn main() {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start tokio: {error}");
            std::process::exit(1);
        }
    };
    let outcome = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), run())
            .await
            .unwrap_or_else(|_| Err("demo timed out".into()))
    });
    if let Err(error) = outcome {
        eprintln!("demo failed: {error}");
        std::process::exit(1);
    }
}
