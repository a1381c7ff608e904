//! A tokio node and an async-std node in one process form a mesh: single
//! requests and streams both ways, once with each node as the dialer.
//!
//! The tokio node lives on a tokio runtime with one worker thread of its own;
//! the async-std node, and the test itself, run on async-std. Calls made by
//! the tokio node are awaited in tokio tasks, calls made by the async-std node
//! on async-std, so every call crosses from one runtime's driver and handler
//! tasks to the other's wakers. Every wait is bounded by [`LIMIT`].

use std::future::Future;
use std::time::Duration;

use grid_async_std::{
    AsyncStd, Bytes, Ctx, Error, HandlerError, Peer, Router, StreamReceiver, StreamSender,
};
use grid_proto::dials;
use grid_tokio::Tokio;
use tokio::runtime::Handle;

const ECHO: u16 = 1;
const STREAM_ECHO: u16 = 2;
const SECRET: &[u8] = b"mixed runtime secret";
/// Bound of every wait in this test.
const LIMIT: Duration = Duration::from_secs(10);
/// Receive window of every stream, both ways, in bytes: four of these
/// messages (each counts its length plus 32 bytes).
const WINDOW: u32 = 4 * 48;
/// Messages per stream: several windows, so both sides wait for credit.
const MESSAGES: usize = 20;
const TOKIO_NAME: &str = "tokio-node";

/// Awaits `work` on the current (async-std) task, failing the test after `LIMIT`.
async fn within<T>(what: &str, work: impl Future<Output = T>) -> T {
    match async_std::future::timeout(LIMIT, work).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: timed out after {LIMIT:?}"),
    }
}

/// Runs `work` as a task of the tokio runtime; awaits its outcome on async-std.
async fn on_tokio<T, F>(tokio: &Handle, what: &str, work: F) -> T
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    // The timeout is made inside the task: tokio timers need the tokio context.
    let task = tokio.spawn(async move { tokio::time::timeout(LIMIT, work).await });
    match within(what, task).await {
        Ok(Ok(value)) => value,
        Ok(Err(_)) => panic!("{what}: timed out after {LIMIT:?} on tokio"),
        Err(error) => panic!("{what}: the tokio task failed: {error}"),
    }
}

/// What an echo handler answers: the request, who answers, and to whom.
fn echo_reply(runtime: &str, ctx: &Ctx, request: &[u8]) -> Bytes {
    let request = String::from_utf8_lossy(request);
    Bytes::from(format!("{runtime} echoes {request} to {}", ctx.peer()))
}

/// The tokio node's echo; it checks that it runs as a tokio task.
async fn tokio_echo(ctx: Ctx, request: Bytes) -> Result<Bytes, HandlerError> {
    if Handle::try_current().is_err() {
        return Err("the tokio node's handler runs outside tokio".into());
    }
    Ok(echo_reply("tokio", &ctx, &request))
}

/// The async-std node's echo; it checks that it runs as an async-std task.
async fn async_std_echo(ctx: Ctx, request: Bytes) -> Result<Bytes, HandlerError> {
    if async_std::task::try_current().is_none() || Handle::try_current().is_ok() {
        return Err("the async-std node's handler runs outside async-std".into());
    }
    Ok(echo_reply("async-std", &ctx, &request))
}

/// Both nodes' stream handler: echoes every message until the input ends.
async fn echo_stream(
    _ctx: Ctx,
    _init: Bytes,
    mut input: StreamReceiver,
    mut output: StreamSender,
) -> Result<(), HandlerError> {
    while let Some(message) = input.recv().await {
        let message = message.map_err(|e| HandlerError::from(e.to_string()))?;
        let sent = output.send(message).await;
        sent.map_err(|e| HandlerError::from(e.to_string()))?;
    }
    Ok(())
}

/// Opens a stream to the peer's stream echo, sends `MESSAGES` messages while
/// reading the echoes, and checks that every one came back, in order.
async fn stream_roundtrip(conn: Peer, from: &'static str) {
    let open = conn.stream(STREAM_ECHO, from).window(WINDOW);
    let stream = open.timeout(LIMIT).open().await;
    let (mut tx, mut rx) = stream.expect("the stream opens").split();
    let sent: Vec<Bytes> = (0..MESSAGES)
        .map(|i| Bytes::from(format!("{from} #{i}")))
        .collect();
    let outgoing = sent.clone();
    let sending = async move {
        for message in outgoing {
            tx.send(message).await?;
        }
        tx.finish()
    };
    let receiving = async move {
        let mut received = Vec::new();
        while let Some(message) = rx.recv().await {
            received.push(message?);
        }
        Ok::<_, Error>(received)
    };
    // `tokio::join!` only polls both futures in turn: it needs no tokio
    // runtime, so the async-std side uses it too.
    let (sending, received) = tokio::join!(sending, receiving);
    sending.unwrap_or_else(|error| panic!("{from}: sending failed: {error}"));
    let received = received.unwrap_or_else(|error| panic!("{from}: receiving failed: {error}"));
    assert_eq!(
        received, sent,
        "{from}: the echoes differ from what was sent"
    );
}

/// One tokio node and one async-std node, connected.
struct Mesh {
    tokio: Handle,
    tokio_node: grid_tokio::Manager,
    std_node: grid_async_std::Manager,
    std_name: String,
}

impl Mesh {
    /// Starts both nodes and waits until each has installed the connection.
    /// The dial rule depends on the two names only: the async-std node's name
    /// is chosen so that the tokio node dials exactly when `tokio_dials`.
    async fn start(tokio: Handle, tokio_dials: bool) -> Mesh {
        let mut candidates = (0..64).map(|i| format!("async-std-node-{i}"));
        let std_name = candidates
            .find(|name| dials(TOKIO_NAME, name) == tokio_dials)
            .expect("some candidate name gives the wanted dial direction");
        let names = [TOKIO_NAME.to_string(), std_name.clone()];
        let bind = || std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let (tokio_listener, std_listener) = (bind(), bind());
        let address = |listener: &std::net::TcpListener| {
            listener.local_addr().expect("local address").to_string()
        };
        let (tokio_addr, std_addr) = (address(&tokio_listener), address(&std_listener));

        let start = {
            let names = names.clone();
            async move {
                tokio_listener.set_nonblocking(true)?;
                let listener = tokio::net::TcpListener::from_std(tokio_listener)?;
                grid_tokio::Manager::builder(TOKIO_NAME)
                    .peers(names.clone())
                    .peer_address(&names[1], std_addr)
                    .secret(SECRET)
                    .listener(Tokio::listener(listener))
                    .router(Router::new().single(ECHO, tokio_echo).stream(
                        STREAM_ECHO,
                        WINDOW,
                        echo_stream,
                    ))
                    .start()
                    .await
                    .map_err(std::io::Error::other)
            }
        };
        let tokio_node = on_tokio(&tokio, "starting the tokio node", start).await;
        let tokio_node = tokio_node.expect("the tokio node starts");

        let std_node = grid_async_std::Manager::builder(&std_name)
            .peers(names.clone())
            .peer_address(TOKIO_NAME, tokio_addr)
            .secret(SECRET)
            .listener(AsyncStd::listener(std_listener.into()))
            .router(Router::new().single(ECHO, async_std_echo).stream(
                STREAM_ECHO,
                WINDOW,
                echo_stream,
            ))
            .start();
        let std_node = within("starting the async-std node", std_node).await;
        let std_node = std_node.expect("the async-std node starts");

        // Each side installs the connection when its own side of the handshake
        // completes: wait for both, on each node's own runtime.
        let connected = within(
            "async-std node connected",
            std_node.wait_all_connected(LIMIT),
        );
        connected.await.expect("the async-std node connects");
        let node = tokio_node.clone();
        let connected = async move { node.wait_all_connected(LIMIT).await };
        let connected = on_tokio(&tokio, "tokio node connected", connected).await;
        connected.expect("the tokio node connects");
        Mesh {
            tokio,
            tokio_node,
            std_node,
            std_name,
        }
    }

    async fn requests_both_ways(&self) {
        let std_name = self.std_name.clone();
        for i in 0..10 {
            // async-std → tokio, awaited on async-std.
            let to_tokio = self.std_node.peer(TOKIO_NAME).expect("a peer");
            let request = to_tokio.request(ECHO, format!("ping {i}")).timeout(LIMIT);
            let reply = within("request to the tokio node", async { request.await }).await;
            let expected = format!("tokio echoes ping {i} to {std_name}");
            assert_eq!(reply.expect("the tokio node answers"), expected);

            // tokio → async-std, awaited in a tokio task.
            let to_std = self.tokio_node.peer(&std_name).expect("a peer");
            let request = to_std.request(ECHO, format!("pong {i}")).timeout(LIMIT);
            let reply = on_tokio(&self.tokio, "request to the async-std node", async {
                request.await
            });
            let expected = format!("async-std echoes pong {i} to {TOKIO_NAME}");
            assert_eq!(reply.await.expect("the async-std node answers"), expected);
        }
    }

    async fn streams_both_ways(&self) {
        let to_tokio = self.std_node.peer(TOKIO_NAME).expect("a peer");
        within(
            "stream to the tokio node",
            stream_roundtrip(to_tokio, "async-std"),
        )
        .await;
        let to_std = self.tokio_node.peer(&self.std_name).expect("a peer");
        let roundtrip = stream_roundtrip(to_std, "tokio");
        on_tokio(&self.tokio, "stream to the async-std node", roundtrip).await;
    }

    /// Checks that the pair kept its one connection, then shuts both nodes down.
    async fn stop(self) {
        for stats in self.tokio_node.stats().iter().chain(&self.std_node.stats()) {
            assert_eq!((stats.connects, stats.reconnects), (1, 0), "{stats:?}");
        }
        let node = self.tokio_node.clone();
        let shutdown = async move { node.shutdown(Duration::from_secs(1)).await };
        on_tokio(&self.tokio, "tokio node shutdown", shutdown).await;
        let shutdown = self.std_node.shutdown(Duration::from_secs(1));
        within("async-std node shutdown", shutdown).await;
    }
}

/// Builds the tokio runtime (one worker thread, its own), runs the whole
/// scenario on async-std, then stops tokio.
fn scenario(tokio_dials: bool) {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("tokio-node")
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let handle = tokio.handle().clone();
    async_std::task::block_on(async move {
        let mesh = Mesh::start(handle, tokio_dials).await;
        mesh.requests_both_ways().await;
        mesh.streams_both_ways().await;
        mesh.stop().await;
    });
    tokio.shutdown_timeout(Duration::from_secs(1));
}

#[test]
fn tokio_dials_async_std() {
    scenario(true);
}

#[test]
fn async_std_dials_tokio() {
    scenario(false);
}
