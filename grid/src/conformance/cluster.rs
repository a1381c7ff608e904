//! A cluster of nodes on loopback with the conformance suite's handlers.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use grid_proto::{dials, BackoffConfig, Timeouts};

use crate::conformance::probe::Probe;
use crate::conformance::proxy::FaultProxy;
use crate::conformance::sleep;
use crate::conformance::transport::{bind_node, connector_for};
use crate::handler::{Ctx, HandlerError};
use crate::manager::{Manager, ManagerBuilder};
use crate::peer::Peer;
use crate::router::Router;
use crate::runtime::Runtime;
use crate::stream::{StreamReceiver, StreamSender};

/// Handler ids the test nodes register.
pub mod handlers {
    /// Returns the request.
    pub const ECHO: u16 = 1;
    /// Fails with `"failed: <request>"`.
    pub const FAIL: u16 = 2;
    /// Records `hang:start`, waits to be cancelled, records `hang:end` when dropped.
    pub const HANG: u16 = 3;
    /// Records `deadline:<ms left>`, then hangs like [`HANG`].
    pub const DEADLINE: u16 = 4;
    /// Panics.
    pub const PANIC: u16 = 5;
    /// Registered under subroutes `disk-1` and `disk-2`; returns `<subroute>:<request>`.
    pub const DISK: u16 = 6;
    /// Stream (receive window of 160 bytes, four short messages): echoes every message, finishes when input ends.
    pub const STREAM_ECHO: u16 = 10;
    /// Stream with a receive window of 0: records `in0:start`, waits, `in0:end` on drop.
    pub const STREAM_IN0: u16 = 11;
    /// Stream with a receive window of 1 byte (one message) that never reads: `in1:start` / `in1:end`.
    pub const STREAM_IN1: u16 = 12;
    /// Stream: sends as many numbered messages as the initial payload says
    /// (decimal), then finishes.
    pub const STREAM_PRODUCE: u16 = 13;
    /// Stream: sends one message, then fails with `"stream failed"`.
    pub const STREAM_FAIL: u16 = 14;
    /// Stream with the default receive window: reads everything, then answers with
    /// the number of bytes it read.
    pub const STREAM_SINK: u16 = 15;
}

/// Timeouts short enough for tests: a dead peer is noticed in under a second.
pub fn test_timeouts() -> Timeouts {
    Timeouts {
        handshake: Duration::from_secs(2),
        keepalive_interval: Duration::from_millis(100),
        idle: Duration::from_millis(600),
        ..Timeouts::default()
    }
}

/// [`test_timeouts`] with the connection's own timers ten seconds away: in a
/// test that runs for well under that, a missed write or wake-up shows as a
/// stall instead of being covered up by a keepalive.
pub(crate) fn quiet_timeouts() -> Timeouts {
    Timeouts {
        keepalive_interval: Duration::from_secs(10),
        idle: Duration::from_secs(30),
        ..test_timeouts()
    }
}

/// Fast reconnects for tests.
pub fn test_backoff() -> BackoffConfig {
    BackoffConfig {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
        multiplier: 2,
    }
}

/// Records an event when dropped: tells a test the handler's future ended,
/// whether it returned or was dropped by a cancel.
struct EndGuard {
    probe: Arc<Probe>,
    event: String,
}

impl Drop for EndGuard {
    fn drop(&mut self) {
        self.probe.record(std::mem::take(&mut self.event));
    }
}

fn guard(probe: &Arc<Probe>, event: &str) -> EndGuard {
    EndGuard {
        probe: probe.clone(),
        event: event.to_string(),
    }
}

fn to_handler_error(error: impl std::fmt::Display) -> HandlerError {
    HandlerError::from(error.to_string())
}

/// Registers the suite's handlers on `builder`, recording into `probe`.
pub fn register<R: Runtime>(builder: ManagerBuilder<R>, probe: &Arc<Probe>) -> ManagerBuilder<R> {
    use handlers::*;
    let (p1, p2, p3, p4, p5) = (
        probe.clone(),
        probe.clone(),
        probe.clone(),
        probe.clone(),
        probe.clone(),
    );
    // The handler's deadline is on the node's runtime clock.
    let clock = builder.runtime().clone();
    let router = Router::new()
        .single(ECHO, |_ctx: Ctx, request: Bytes| async move { Ok(request) })
        .single(FAIL, |_ctx: Ctx, request: Bytes| async move {
            Err(HandlerError::from(format!(
                "failed: {}",
                String::from_utf8_lossy(&request)
            )))
        })
        .single(HANG, move |ctx: Ctx, _request: Bytes| {
            let probe = p1.clone();
            async move {
                probe.record(format!("hang:start:{}", ctx.peer()));
                let _end = guard(&probe, "hang:end");
                let reason = ctx.cancelled().await;
                probe.record(format!("hang:cancelled:{reason}"));
                Ok(Bytes::new())
            }
        })
        .single(DEADLINE, move |ctx: Ctx, _request: Bytes| {
            let probe = p2.clone();
            let now = clock.now();
            async move {
                let left = ctx.deadline().saturating_duration_since(now);
                probe.record(format!("deadline:{}", left.as_millis()));
                let _end = guard(&probe, "deadline:end");
                let reason = ctx.cancelled().await;
                probe.record(format!("deadline:cancelled:{reason}"));
                Ok(Bytes::new())
            }
        })
        .single(PANIC, |_ctx: Ctx, _request: Bytes| async move {
            if true {
                panic!("handler blew up");
            }
            Ok(Bytes::new())
        })
        .single((DISK, "disk-1"), |ctx: Ctx, request: Bytes| async move {
            Ok(subroute_reply(&ctx, &request))
        })
        .single((DISK, "disk-2"), |ctx: Ctx, request: Bytes| async move {
            Ok(subroute_reply(&ctx, &request))
        })
        .stream(
            STREAM_ECHO,
            160,
            |_ctx, _init: Bytes, mut rx: StreamReceiver, mut tx: StreamSender| async move {
                while let Some(message) = rx.recv().await {
                    let message = message.map_err(to_handler_error)?;
                    tx.send(message).await.map_err(to_handler_error)?;
                }
                Ok(())
            },
        )
        .stream(
            STREAM_IN0,
            0,
            move |ctx: Ctx, _init: Bytes, _rx: StreamReceiver, _tx: StreamSender| {
                let probe = p3.clone();
                async move {
                    probe.record("in0:start");
                    let _end = guard(&probe, "in0:end");
                    ctx.cancelled().await;
                    Ok(())
                }
            },
        )
        .stream(
            STREAM_IN1,
            1,
            move |ctx: Ctx, _init: Bytes, _rx: StreamReceiver, _tx: StreamSender| {
                let probe = p4.clone();
                async move {
                    probe.record("in1:start");
                    let _end = guard(&probe, "in1:end");
                    ctx.cancelled().await;
                    Ok(())
                }
            },
        )
        .stream(
            STREAM_PRODUCE,
            160,
            move |_ctx: Ctx, init: Bytes, _rx: StreamReceiver, mut tx: StreamSender| {
                let probe = p5.clone();
                async move {
                    let count: u32 = String::from_utf8_lossy(&init).parse().unwrap_or(0);
                    let _end = guard(&probe, "produce:end");
                    for i in 0..count {
                        tx.send(Bytes::from(i.to_string()))
                            .await
                            .map_err(to_handler_error)?;
                    }
                    Ok(())
                }
            },
        )
        .stream(
            STREAM_FAIL,
            160,
            |_ctx: Ctx, _init: Bytes, _rx: StreamReceiver, mut tx: StreamSender| async move {
                tx.send(Bytes::from_static(b"before"))
                    .await
                    .map_err(to_handler_error)?;
                Err(HandlerError::from("stream failed"))
            },
        )
        .stream(
            STREAM_SINK,
            crate::DEFAULT_STREAM_WINDOW,
            |_ctx: Ctx, _init: Bytes, mut rx: StreamReceiver, mut tx: StreamSender| async move {
                let mut total = 0usize;
                while let Some(message) = rx.recv().await {
                    total += message.map_err(to_handler_error)?.len();
                }
                tx.send(Bytes::from(total.to_string()))
                    .await
                    .map_err(to_handler_error)
            },
        );
    crate::conformance::typed_suite::register(builder.router(router), probe)
}

fn subroute_reply(ctx: &Ctx, request: &[u8]) -> Bytes {
    let mut reply = ctx.subroute().to_vec();
    reply.push(b':');
    reply.extend_from_slice(request);
    Bytes::from(reply)
}

/// How to build a test cluster.
#[derive(Clone, Debug, Default)]
pub struct ClusterOptions {
    /// Put a [`FaultProxy`] on the connection between node 0 and node 1.
    pub proxy_between_0_and_1: bool,
    /// Limits of every node, instead of the defaults.
    pub limits: Option<grid_proto::Limits>,
    /// Timeouts of every node, instead of [`test_timeouts`].
    pub timeouts: Option<Timeouts>,
}

/// `n` loopback addresses free a moment ago, for nodes a test starts itself
/// (each node's name is its address).
pub fn free_loopback_addresses(n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
            let addr = socket.local_addr().expect("bound address");
            addr.to_string()
        })
        .collect()
}

/// A cluster of nodes on loopback. Node names are their `127.0.0.1:port`
/// addresses.
pub struct Cluster<R: Runtime> {
    runtime: R,
    /// Node names, by index.
    pub names: Vec<String>,
    nodes: Vec<Option<Manager<R>>>,
    /// What the nodes' handlers did.
    pub probe: Arc<Probe>,
    /// The proxy between node 0 and node 1, if requested.
    pub proxy: Option<FaultProxy>,
    options: ClusterOptions,
}

impl<R: Runtime> Cluster<R> {
    /// Starts `size` nodes and waits until every node is connected to every other.
    pub async fn start(runtime: &R, size: usize) -> Cluster<R> {
        Self::start_with(runtime, size, ClusterOptions::default()).await
    }

    /// Starts `size` nodes with options.
    pub async fn start_with(runtime: &R, size: usize, options: ClusterOptions) -> Cluster<R> {
        let mut listeners = Vec::new();
        for _ in 0..size {
            let listener = bind_node(runtime, "127.0.0.1:0")
                .await
                .expect("bind loopback");
            listeners.push(listener);
        }
        let names: Vec<String> = listeners
            .iter()
            .map(|l| l.local_addr().expect("local address").to_string())
            .collect();
        let proxy = if options.proxy_between_0_and_1 {
            let dialed = if dials(&names[0], &names[1]) { 1 } else { 0 };
            Some(
                FaultProxy::start(runtime, &names[dialed])
                    .await
                    .expect("start proxy"),
            )
        } else {
            None
        };
        let mut cluster = Cluster {
            runtime: runtime.clone(),
            names,
            nodes: Vec::new(),
            probe: Arc::new(Probe::default()),
            proxy,
            options,
        };
        for (index, listener) in listeners.into_iter().enumerate() {
            let node = cluster
                .builder(index)
                .listener(listener)
                .start()
                .await
                .expect("start node");
            cluster.nodes.push(Some(node));
        }
        cluster.wait_connected().await;
        cluster
    }

    fn builder(&self, index: usize) -> ManagerBuilder<R> {
        let mut builder = ManagerBuilder::new(self.runtime.clone(), self.names[index].clone())
            .peers(self.names.clone())
            .secret("conformance secret")
            .timeouts(self.options.timeouts.clone().unwrap_or_else(test_timeouts))
            .backoff(test_backoff());
        if let Some(connector) = connector_for(&self.names[index]) {
            builder = builder.connector(connector);
        }
        if let Some(limits) = &self.options.limits {
            builder = builder.limits(limits.clone());
        }
        if let Some(proxy) = &self.proxy {
            let dialer = if dials(&self.names[0], &self.names[1]) {
                0
            } else {
                1
            };
            if index == dialer {
                builder =
                    builder.peer_address(self.names[1 - dialer].clone(), proxy.addr().to_string());
            }
        }
        register(builder, &self.probe)
    }

    /// Node `index`; panics if it is stopped.
    pub fn node(&self, index: usize) -> &Manager<R> {
        self.nodes[index].as_ref().expect("node is running")
    }

    /// The handle node `from` uses to call node `to`.
    pub fn conn(&self, from: usize, to: usize) -> Peer {
        self.node(from).peer(&self.names[to]).expect("peer")
    }

    /// Waits until every running node is connected to every other running node.
    pub async fn wait_connected(&self) {
        for (i, node) in self.nodes.iter().enumerate() {
            let Some(node) = node else { continue };
            for (j, other) in self.nodes.iter().enumerate() {
                if i == j || other.is_none() {
                    continue;
                }
                node.wait_connected(&self.names[j], Duration::from_secs(10))
                    .await
                    .unwrap_or_else(|_| panic!("node {i} did not connect to node {j}"));
            }
        }
    }

    /// Stops node `index` at once (a crash, as its peers see it).
    pub async fn stop(&mut self, index: usize) {
        if let Some(node) = self.nodes[index].take() {
            node.shutdown(Duration::ZERO).await;
        }
    }

    /// Starts node `index` again on the same address.
    pub async fn restart(&mut self, index: usize) {
        let listener = bind_node(&self.runtime, &self.names[index])
            .await
            .expect("listen again");
        let node = self
            .builder(index)
            .listener(listener)
            .start()
            .await
            .expect("restart node");
        self.nodes[index] = Some(node);
    }

    /// Waits until no call is in flight on any connection of any running node,
    /// at most `timeout`; panics with the stats otherwise.
    pub async fn assert_no_calls_left(&self, timeout: Duration) {
        let deadline = self.runtime.now() + timeout;
        loop {
            let busy: Vec<_> = self
                .nodes
                .iter()
                .flatten()
                .flat_map(|node| node.stats())
                .filter(|stats| {
                    stats.protocol.outgoing_calls > 0
                        || stats.protocol.incoming_calls > 0
                        || stats.protocol.buffered_bytes > 0
                })
                .collect();
            if busy.is_empty() {
                return;
            }
            if self.runtime.now() >= deadline {
                panic!("calls left open: {busy:#?}");
            }
            // Polling: ends of calls are not events a test can await.
            sleep(&self.runtime, Duration::from_millis(10)).await;
        }
    }

    /// Shuts every node down.
    pub async fn shutdown(mut self) {
        for index in 0..self.nodes.len() {
            self.stop(index).await;
        }
    }
}
