//! grid, written once over its runtime: grid-tokio and grid-async-std.
//!
//! Two grid nodes on loopback, each a [`grid::Manager`] with its own
//! listener; the "client" node calls the "server" node over the one
//! connection between them (which of the two dials is grid's decision).
//! Handlers: an echo single request, and a bulk stream whose handler sends
//! copies of one message (size given by the initial payload) until the
//! caller goes away.

use std::io;
use std::net::TcpListener;
use std::time::Duration;

use bytes::Bytes;
use futures::channel::oneshot;
use futures::{SinkExt, StreamExt};
use grid::{
    Ctx, HandlerError, Manager, Router, StreamReceiver, StreamSender, DEFAULT_STREAM_WINDOW,
};

use super::measure::{closed_loop, Callers, Load, Meter, Session, Tally, Window};
use super::topology::{async_std_pair, tokio_pair, Stop, Topology};

/// Handler id of the echo single request.
pub const ECHO: u16 = 1;
/// Handler id of the bulk stream (handler to caller).
pub const BULK: u16 = 2;
const SECRET: &[u8] = b"grid-benches compare";
/// How long nodes may take to connect.
const CONNECT_WAIT: Duration = Duration::from_secs(10);

/// A runtime grid runs on here, with what the benchmark needs beyond
/// [`grid::Runtime`]: adopting a bound listener, and running two sides in a
/// topology.
pub trait GridRuntime: grid::Runtime + Default {
    /// Name in the report.
    const NAME: &'static str;

    /// Wraps a bound, non-blocking std listener (called on the runtime).
    fn listener(listener: TcpListener) -> io::Result<Box<dyn grid::Listener>>;

    /// Runs a server side and a client side in `topology` (see
    /// [`super::topology`]).
    fn pair<S, SF, C, CF, T>(topology: Topology, server: S, client: C) -> Result<T, String>
    where
        S: FnOnce(Stop) -> SF + Send + 'static,
        SF: std::future::Future<Output = ()> + Send + 'static,
        C: FnOnce() -> CF + Send + 'static,
        CF: std::future::Future<Output = Result<T, String>> + Send + 'static,
        T: Send + 'static;
}

impl GridRuntime for grid_tokio::Tokio {
    const NAME: &'static str = "grid-tokio";

    fn listener(listener: TcpListener) -> io::Result<Box<dyn grid::Listener>> {
        Ok(grid_tokio::Tokio::listener(
            tokio::net::TcpListener::from_std(listener)?,
        ))
    }

    fn pair<S, SF, C, CF, T>(topology: Topology, server: S, client: C) -> Result<T, String>
    where
        S: FnOnce(Stop) -> SF + Send + 'static,
        SF: std::future::Future<Output = ()> + Send + 'static,
        C: FnOnce() -> CF + Send + 'static,
        CF: std::future::Future<Output = Result<T, String>> + Send + 'static,
        T: Send + 'static,
    {
        tokio_pair(topology, server, client)
    }
}

impl GridRuntime for grid_async_std::AsyncStd {
    const NAME: &'static str = "grid-async-std";

    fn listener(listener: TcpListener) -> io::Result<Box<dyn grid::Listener>> {
        Ok(grid_async_std::AsyncStd::listener(
            async_std::net::TcpListener::from(listener),
        ))
    }

    fn pair<S, SF, C, CF, T>(topology: Topology, server: S, client: C) -> Result<T, String>
    where
        S: FnOnce(Stop) -> SF + Send + 'static,
        SF: std::future::Future<Output = ()> + Send + 'static,
        C: FnOnce() -> CF + Send + 'static,
        CF: std::future::Future<Output = Result<T, String>> + Send + 'static,
        T: Send + 'static,
    {
        async_std_pair(topology, server, client)
    }
}

/// The receive window, in bytes, the caller grants the bulk stream in the
/// hand-set window rows: 256 KiB for large messages, which keeps what queues
/// ahead of a small call on the same connection short, and 4 MiB for small
/// ones, for their rate. `--stream-window` overrides it. Headline rows keep
/// grid's default (1 MiB).
pub fn bulk_capacity(size: usize) -> u32 {
    if size >= 16 * 1024 {
        256 * 1024
    } else {
        4 * 1024 * 1024
    }
}

/// The receive window, in bytes, the caller grants the bulk stream in the
/// hand-set row of the head-of-line test: one 64 KiB message. A small answer
/// then waits behind at most one bulk message in the socket, whose copy on
/// the same core is what delays it; the bulk rate is what it costs.
pub const LATENCY_WINDOW: u32 = 64 * 1024;

/// Binds `count` loopback listeners; the nodes' names are their addresses.
pub fn bind_nodes(count: usize) -> Result<(Vec<TcpListener>, Vec<String>), String> {
    let mut listeners = Vec::new();
    let mut names = Vec::new();
    for _ in 0..count {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        names.push(
            listener
                .local_addr()
                .map_err(|e| e.to_string())?
                .to_string(),
        );
        listeners.push(listener);
    }
    Ok((listeners, names))
}

/// Starts a node named `name` of the cluster `names`, with the echo and bulk
/// handlers.
pub async fn start_node<R: GridRuntime>(
    name: &str,
    names: &[String],
    listener: TcpListener,
) -> Result<Manager<R>, String> {
    let listener = R::listener(listener).map_err(|e| format!("listener: {e}"))?;
    Manager::<R>::builder(name)
        .peers(names.iter().cloned())
        .secret(SECRET)
        .listener(listener)
        .router(
            Router::new()
                .single(ECHO, |_ctx: Ctx, request: Bytes| async move { Ok(request) })
                // The caller sends nothing on the bulk stream: the default.
                .stream(BULK, DEFAULT_STREAM_WINDOW, bulk_handler),
        )
        .start()
        .await
        .map_err(|e| format!("node {name}: {e}"))
}

async fn bulk_handler(
    _ctx: Ctx,
    init: Bytes,
    _input: StreamReceiver,
    mut output: StreamSender,
) -> Result<(), HandlerError> {
    let size = <[u8; 4]>::try_from(&init[..])
        .map(u32::from_le_bytes)
        .map_err(|_| HandlerError::from("the initial payload is the message size"))?;
    let message = Bytes::from(vec![0x5a; size as usize]);
    // Send until the caller goes away (the send fails, or the handler is
    // dropped). A stream of copies handed to the sink, as tonic is handed one.
    let _ = output
        .send_all(&mut futures::stream::repeat(message).map(Ok))
        .await;
    Ok(())
}

/// One echo call; gives the peer handle back for the next.
pub async fn echo_call(conn: grid::Peer, payload: Bytes) -> Result<grid::Peer, String> {
    let reply = conn
        .request(ECHO, payload.clone())
        .await
        .map_err(|e| format!("request: {e}"))?;
    if reply.len() != payload.len() {
        return Err(format!(
            "echo of {} bytes came back with {}",
            payload.len(),
            reply.len()
        ));
    }
    Ok(conn)
}

/// Runs the server node until `stop`, then shuts it down. Once the client
/// opens its window, counts the server's socket writes to the client in it.
async fn server_node<R: GridRuntime>(
    names: Vec<String>,
    listener: TcpListener,
    window: oneshot::Receiver<Window>,
    writes: oneshot::Sender<u64>,
    stop: Stop,
) {
    match start_node::<R>(&names[1], &names, listener).await {
        Ok(node) => {
            if let Ok(client) = node.peer(&names[0]) {
                R::default().spawn(async move {
                    if let Ok(window) = window.await {
                        let _ = writes.send(writes_in::<R>(&client, window).await);
                    }
                });
            }
            let _ = stop.await;
            node.shutdown(Duration::ZERO).await;
        }
        Err(error) => eprintln!("  server node failed to start: {error}"),
    }
}

/// Waits until `deadline` on `R`'s timer.
async fn sleep_until<R: GridRuntime>(deadline: std::time::Instant) {
    let mut timer = R::default().timer(deadline);
    std::future::poll_fn(|cx| timer.poll_expired(cx)).await
}

/// Socket writes this node makes to `peer` over `window` (waits for its end).
async fn writes_in<R: GridRuntime>(peer: &grid::Peer, window: Window) -> u64 {
    sleep_until::<R>(window.start).await;
    let start = peer.stats().socket_writes;
    sleep_until::<R>(window.end).await;
    peer.stats().socket_writes.saturating_sub(start)
}

/// Starts the client node and waits until it is connected to the server node.
async fn client_node<R: GridRuntime>(
    names: &[String],
    listener: TcpListener,
) -> Result<(Manager<R>, grid::Peer), String> {
    let node = start_node::<R>(&names[0], names, listener).await?;
    node.wait_all_connected(CONNECT_WAIT)
        .await
        .map_err(|e| format!("nodes did not connect: {e}"))?;
    let conn = node.peer(&names[1]).map_err(|e| e.to_string())?;
    Ok((node, conn))
}

/// Runs a server node and a client node connected to it in `topology`, opens
/// the session's window, then runs `client` on the client's connection to
/// the server; the client node shuts down once `client` is done. The tally
/// `client` returns gets the socket writes of both nodes in the window.
fn node_pair<R, F, Fut>(session: Session, topology: Topology, client: F) -> Result<Tally, String>
where
    R: GridRuntime,
    F: FnOnce(grid::Peer, Window) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<Tally, String>> + Send + 'static,
{
    let (mut listeners, names) = bind_nodes(2)?;
    let server_listener = listeners.pop().ok_or("no listener")?;
    let client_listener = listeners.pop().ok_or("no listener")?;
    let server_names = names.clone();
    let (window_tx, window_rx) = oneshot::channel();
    let (server_writes_tx, server_writes) = oneshot::channel();
    R::pair(
        topology,
        move |stop| {
            server_node::<R>(
                server_names,
                server_listener,
                window_rx,
                server_writes_tx,
                stop,
            )
        },
        move || async move {
            let (node, conn) = client_node::<R>(&names, client_listener).await?;
            let window = session.begin();
            let _ = window_tx.send(window);
            let (client_writes_tx, client_writes) = oneshot::channel();
            R::default().spawn({
                let conn = conn.clone();
                async move {
                    let _ = client_writes_tx.send(writes_in::<R>(&conn, window).await);
                }
            });
            let outcome = client(conn, window).await;
            // Both counts are in by the window's end, which the loop passed.
            let writes = match (client_writes.await, server_writes.await) {
                (Ok(client), Ok(server)) => Some(client + server),
                _ => None,
            };
            node.shutdown(Duration::ZERO).await;
            outcome.map(|tally| Tally {
                socket_writes: writes,
                ..tally
            })
        },
    )
}

/// Echo: `load.in_flight` requests of `load.size` bytes outstanding on one
/// connection.
pub fn echo<R: GridRuntime>(
    session: Session,
    topology: Topology,
    load: Load,
) -> Result<Tally, String> {
    node_pair::<R, _, _>(session, topology, move |conn, window| async move {
        let payload = Bytes::from(vec![0xa5; load.size]);
        closed_loop(
            load.callers,
            |task| R::default().spawn(task),
            load.in_flight,
            window,
            conn,
            move |conn| echo_call(conn, payload.clone()),
        )
        .await
    })
}

/// Opens the bulk stream of `size`-byte messages and consumes it, counting
/// messages on `meter`, until the meter stops. `capacity` sets the receive
/// window by hand; `None` keeps grid's default.
async fn consume_bulk(
    conn: &grid::Peer,
    size: usize,
    capacity: Option<u32>,
    meter: &Meter,
) -> Result<(), String> {
    let mut request = conn.stream(BULK, Bytes::copy_from_slice(&(size as u32).to_le_bytes()));
    if let Some(capacity) = capacity {
        request = request.window(capacity);
    }
    let mut stream = request.open().await.map_err(|e| format!("open: {e}"))?;
    let mut received = 0u64;
    while !meter.stopped() {
        match stream.receiver.recv().await {
            Some(Ok(message)) if message.len() == size => {
                received += 1;
                meter.set(received);
            }
            Some(Ok(message)) => {
                return Err(format!(
                    "a bulk message of {} bytes, not {size}",
                    message.len()
                ))
            }
            Some(Err(error)) => return Err(format!("bulk stream: {error}")),
            None => return Err("the bulk stream ended early".into()),
        }
    }
    Ok(())
}

/// One-way stream of `size`-byte messages, handler to caller, counted by the
/// session's meter.
pub fn stream<R: GridRuntime>(
    session: Session,
    topology: Topology,
    size: usize,
    capacity: Option<u32>,
) -> Result<(), String> {
    let meter = session.meter();
    node_pair::<R, _, _>(session, topology, move |conn, _window| async move {
        consume_bulk(&conn, size, capacity, &meter).await?;
        Ok(Tally::default())
    })
    .map(drop)
}

/// Size of the bulk messages that load the connection in the head-of-line test.
pub const HOL_BULK_SIZE: usize = 64 * 1024;

/// Head-of-line: one 32 B echo call at a time (latency measured) while a bulk
/// stream of 64 KiB messages (consumed by a task of its own, counted by the
/// meter, receive window `capacity` or grid's default) saturates the same
/// connection in the response direction. The bulk stream gets going during
/// the warm-up.
pub fn echo_under_bulk<R: GridRuntime>(
    session: Session,
    topology: Topology,
    capacity: Option<u32>,
) -> Result<Tally, String> {
    let meter = session.meter();
    node_pair::<R, _, _>(session, topology, move |conn, window| async move {
        let (bulk_done, bulk_outcome) = oneshot::channel();
        R::default().spawn({
            let conn = conn.clone();
            let meter = meter.clone();
            async move {
                let outcome = consume_bulk(&conn, HOL_BULK_SIZE, capacity, &meter).await;
                let _ = bulk_done.send(outcome);
            }
        });
        let payload = Bytes::from(vec![0xa5; 32]);
        let tally = closed_loop(
            Callers::Tasks,
            |task| R::default().spawn(task),
            1,
            window,
            conn,
            move |conn| echo_call(conn, payload.clone()),
        )
        .await;
        bulk_outcome
            .await
            .unwrap_or_else(|_| Err("the bulk task vanished".into()))?;
        tally
    })
}
