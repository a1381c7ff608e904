//! The Manager: a node's view of the cluster. It listens, dials the peers it
//! should dial, accepts the others, reconnects forever, and runs handlers.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::{join_all, select, Either};
use grid_proto::{
    dials, Backoff, BackoffConfig, Config, Connection as Proto, Error, Limits, Role, Timeouts,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::Instrument;

use crate::driver::{Driver, Exit};
use crate::handler::{
    Ctx, DuplicateHandler, HandlerError, HandlerId, Registry, SingleFn, StreamEntry, StreamFn,
};
use crate::peer::{Connection, ConnectionStats, PeerSlot};
use crate::runtime::{sleep_until, BoxFuture, BoxIo, Listener, Runtime};
use crate::serve::Serve;
use crate::shared::Shared;
use crate::stream::{StreamReceiver, StreamSender};
use crate::typed::{self, Single, Streaming, TypedReceiver, TypedSender};

/// Opens a byte stream to a peer address; replaces plain TCP (e.g. for TLS).
pub type Connector = Arc<dyn Fn(&str) -> BoxFuture<'static, io::Result<BoxIo>> + Send + Sync>;

/// Why a Manager could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A handler id and subroute were registered twice.
    #[error(transparent)]
    DuplicateHandler(#[from] DuplicateHandler),
    /// No cluster secret was given.
    #[error("no cluster secret configured")]
    NoSecret,
    /// The node's own name is in its peer list.
    #[error("the peer list contains this node's own name {0:?}")]
    SelfInPeers(String),
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// The failure.
        source: io::Error,
    },
}

/// Why waiting for a connection ended without one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WaitError {
    /// The name is not a peer of this node.
    #[error(transparent)]
    UnknownPeer(#[from] UnknownPeer),
    /// The peer did not connect in time.
    #[error("{peer:?} did not connect within {waited:?}")]
    Timeout {
        /// The peer.
        peer: String,
        /// How long this side waited.
        waited: Duration,
    },
}

/// A name that is not in the peer list.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a peer of this node")]
pub struct UnknownPeer(pub String);

/// Builds a [`Manager`].
#[must_use = "a builder does nothing until started"]
pub struct ManagerBuilder<R: Runtime> {
    runtime: R,
    name: String,
    peers: Vec<String>,
    addresses: HashMap<String, String>,
    secret: Option<Arc<[u8]>>,
    listen: Listen,
    registry: Registry,
    duplicate: Option<DuplicateHandler>,
    limits: Limits,
    timeouts: Timeouts,
    backoff: BackoffConfig,
    connector: Option<Connector>,
}

enum Listen {
    OwnName,
    Address(String),
    Listener(Box<dyn Listener>),
    Nothing,
}

impl<R: Runtime> ManagerBuilder<R> {
    /// A node named `name` (by default also the address it listens on).
    pub fn new(runtime: R, name: impl Into<String>) -> ManagerBuilder<R> {
        ManagerBuilder {
            runtime,
            name: name.into(),
            peers: Vec::new(),
            addresses: HashMap::new(),
            secret: None,
            listen: Listen::OwnName,
            registry: Registry::default(),
            duplicate: None,
            limits: Limits::default(),
            timeouts: Timeouts::default(),
            backoff: BackoffConfig::default(),
            connector: None,
        }
    }

    /// The other nodes of the cluster, by name (by default their addresses).
    /// The node's own name may be included; it is skipped.
    pub fn peers<I, S>(mut self, peers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.peers.extend(peers.into_iter().map(Into::into));
        self
    }

    /// Dials `peer` at `addr` instead of at its name.
    pub fn peer_address(mut self, peer: impl Into<String>, addr: impl Into<String>) -> Self {
        self.addresses.insert(peer.into(), addr.into());
        self
    }

    /// The cluster secret every node must share.
    pub fn secret(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.secret = Some(secret.as_ref().into());
        self
    }

    /// Listens on `addr` instead of the node's name.
    pub fn listen(mut self, addr: impl Into<String>) -> Self {
        self.listen = Listen::Address(addr.into());
        self
    }

    /// Accepts connections from an already bound listener.
    pub fn listener(mut self, listener: Box<dyn Listener>) -> Self {
        self.listen = Listen::Listener(listener);
        self
    }

    /// Listens nowhere: connections arrive through [`Manager::accept`] only
    /// (e.g. upgraded from the server's main HTTP port).
    pub fn no_listener(mut self) -> Self {
        self.listen = Listen::Nothing;
        self
    }

    /// Opens connections with `connector` instead of plain TCP.
    pub fn connector(mut self, connector: Connector) -> Self {
        self.connector = Some(connector);
        self
    }

    /// Protocol limits (see [`Limits`] for what each stops).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Protocol timeouts: handshake, keepalive, idle, default and maximum deadline.
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// The reconnect schedule.
    pub fn backoff(mut self, backoff: BackoffConfig) -> Self {
        self.backoff = backoff;
        self
    }

    /// Registers a single-request handler.
    ///
    /// The handler's future is first polled on the connection's own task, and
    /// becomes a task of its own only if it has to wait: a handler that
    /// answers at once costs no task and no wake-up. So work done before the
    /// first `.await` holds up the connection; move long computations to a
    /// blocking pool (e.g. `tokio::task::spawn_blocking`).
    pub fn single<F, Fut>(self, handler: HandlerId, function: F) -> Self
    where
        F: Fn(Ctx, Bytes) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Bytes, HandlerError>> + Send + 'static,
    {
        self.single_at(handler, Bytes::new(), function)
    }

    /// Registers a single-request handler under a subroute.
    pub fn single_at<F, Fut>(
        mut self,
        handler: HandlerId,
        subroute: impl Into<Bytes>,
        function: F,
    ) -> Self
    where
        F: Fn(Ctx, Bytes) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Bytes, HandlerError>> + Send + 'static,
    {
        let boxed: SingleFn = Arc::new(move |ctx, payload| -> BoxFuture<'static, _> {
            let work = function(ctx, payload);
            Box::pin(async move {
                work.await
                    .map_err(|HandlerError(message)| Error::Remote(message))
            })
        });
        if let Err(duplicate) = self.registry.add_single(handler, subroute.into(), boxed) {
            self.duplicate.get_or_insert(duplicate);
        }
        self
    }

    /// Registers a stream handler. `in_capacity` is how many messages the
    /// caller may send ahead of the handler reading them.
    pub fn stream<F, Fut>(self, handler: HandlerId, in_capacity: u32, function: F) -> Self
    where
        F: Fn(Ctx, Bytes, StreamReceiver, StreamSender) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        self.stream_at(handler, Bytes::new(), in_capacity, function)
    }

    /// Registers a stream handler under a subroute.
    pub fn stream_at<F, Fut>(
        mut self,
        handler: HandlerId,
        subroute: impl Into<Bytes>,
        in_capacity: u32,
        function: F,
    ) -> Self
    where
        F: Fn(Ctx, Bytes, StreamReceiver, StreamSender) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        let boxed: StreamFn = Arc::new(move |ctx, payload, rx, tx| -> BoxFuture<'static, _> {
            let work = function(ctx, payload, rx, tx);
            Box::pin(async move {
                work.await
                    .map_err(|HandlerError(message)| Error::Remote(message))
            })
        });
        let entry = StreamEntry {
            handler: boxed,
            in_capacity,
        };
        if let Err(duplicate) = self.registry.add_stream(handler, subroute.into(), entry) {
            self.duplicate.get_or_insert(duplicate);
        }
        self
    }

    /// Registers a typed single-request handler (see [`crate::typed`]).
    pub fn handle<Req, Resp, E, F, Fut>(self, def: &Single<Req, Resp, E>, function: F) -> Self
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        E: Serialize + Send + 'static,
        F: Fn(Ctx, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, E>> + Send + 'static,
    {
        self.handle_at(def, Bytes::new(), function)
    }

    /// Registers a typed single-request handler under a subroute.
    pub fn handle_at<Req, Resp, E, F, Fut>(
        mut self,
        def: &Single<Req, Resp, E>,
        subroute: impl Into<Bytes>,
        function: F,
    ) -> Self
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        E: Serialize + Send + 'static,
        F: Fn(Ctx, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, E>> + Send + 'static,
    {
        let id = def.id();
        let boxed: SingleFn = Arc::new(move |ctx, payload: Bytes| -> BoxFuture<'static, _> {
            let request = typed::decode_request::<Req>(&payload, "request", id);
            let work = request.map(|request| function(ctx, request));
            Box::pin(async move {
                match work?.await {
                    Ok(response) => typed::encode_response(&response, id),
                    Err(error) => Err(Error::Remote(typed::handler_error(&error).0)),
                }
            })
        });
        if let Err(duplicate) = self.registry.add_single(id, subroute.into(), boxed) {
            self.duplicate.get_or_insert(duplicate);
        }
        self
    }

    /// Registers a typed stream handler (see [`crate::typed`]).
    pub fn handle_stream<Init, In, Out, E, F, Fut>(
        self,
        def: &Streaming<Init, In, Out, E>,
        in_capacity: u32,
        function: F,
    ) -> Self
    where
        Init: DeserializeOwned + Send + 'static,
        In: DeserializeOwned + Send + 'static,
        Out: Serialize + Send + 'static,
        E: Serialize + Send + 'static,
        F: Fn(Ctx, Init, TypedReceiver<In>, TypedSender<Out>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
    {
        self.handle_stream_at(def, Bytes::new(), in_capacity, function)
    }

    /// Registers a typed stream handler under a subroute.
    pub fn handle_stream_at<Init, In, Out, E, F, Fut>(
        mut self,
        def: &Streaming<Init, In, Out, E>,
        subroute: impl Into<Bytes>,
        in_capacity: u32,
        function: F,
    ) -> Self
    where
        Init: DeserializeOwned + Send + 'static,
        In: DeserializeOwned + Send + 'static,
        Out: Serialize + Send + 'static,
        E: Serialize + Send + 'static,
        F: Fn(Ctx, Init, TypedReceiver<In>, TypedSender<Out>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
    {
        let id = def.id();
        let boxed: StreamFn = Arc::new(
            move |ctx, payload: Bytes, rx, tx| -> BoxFuture<'static, _> {
                let init = typed::decode_request::<Init>(&payload, "initial payload", id);
                let work = init.map(|init| {
                    function(
                        ctx,
                        init,
                        TypedReceiver::new(rx, id),
                        TypedSender::new(tx, id),
                    )
                });
                Box::pin(async move {
                    work?
                        .await
                        .map_err(|error| Error::Remote(typed::handler_error(&error).0))
                })
            },
        );
        let entry = StreamEntry {
            handler: boxed,
            in_capacity,
        };
        if let Err(duplicate) = self.registry.add_stream(id, subroute.into(), entry) {
            self.duplicate.get_or_insert(duplicate);
        }
        self
    }

    /// Starts listening, dialing and serving.
    pub async fn start(self) -> Result<Manager<R>, StartError> {
        if let Some(duplicate) = self.duplicate {
            return Err(duplicate.into());
        }
        let secret = self.secret.ok_or(StartError::NoSecret)?;
        let mut peers = HashMap::new();
        for peer in &self.peers {
            if *peer != self.name {
                peers.insert(peer.clone(), PeerSlot::new(peer));
            }
        }
        let listener = match self.listen {
            Listen::OwnName => Some(bind(&self.runtime, &self.name).await?),
            Listen::Address(addr) => Some(bind(&self.runtime, &addr).await?),
            Listen::Listener(listener) => Some(listener),
            Listen::Nothing => None,
        };
        let local_addr = listener.as_ref().and_then(|l| l.local_addr().ok());
        let runtime = self.runtime.clone();
        let connector = self.connector.unwrap_or_else(|| {
            let runtime = runtime.clone();
            Arc::new(move |addr: &str| runtime.connect(addr))
        });
        let inner = Arc::new(ManagerInner {
            runtime: self.runtime,
            name: self.name.as_str().into(),
            instance_id: random_u64(),
            secret,
            limits: self.limits,
            timeouts: self.timeouts,
            backoff: self.backoff,
            registry: Arc::new(self.registry),
            addresses: self.addresses,
            peers,
            local_addr,
            connector,
            shutdown: Signal::default(),
            listener_closed: Signal::default(),
            connections: Mutex::new(Vec::new()),
        });
        match listener {
            Some(listener) => inner.runtime.spawn(accept_loop(inner.clone(), listener)),
            None => inner.listener_closed.raise(),
        }
        for name in inner.peers.keys() {
            if dials(&inner.name, name) {
                inner.runtime.spawn(dial_loop(inner.clone(), name.clone()));
            }
        }
        Ok(Manager { inner })
    }
}

async fn bind<R: Runtime>(runtime: &R, addr: &str) -> Result<Box<dyn Listener>, StartError> {
    runtime
        .bind(addr)
        .await
        .map_err(|source| StartError::Listen {
            addr: addr.to_string(),
            source,
        })
}

fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    fill_random(&mut bytes);
    u64::from_le_bytes(bytes)
}

fn fill_random(buf: &mut [u8]) {
    if getrandom::fill(buf).is_err() {
        // No OS randomness is a broken platform; fall back to hashing time and
        // address so the node still starts, with weaker nonces.
        use std::hash::{BuildHasher, RandomState};
        for (i, chunk) in buf.chunks_mut(8).enumerate() {
            let value = RandomState::new().hash_one((Instant::now(), i, chunk.as_ptr() as usize));
            let bytes = value.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// A one-shot broadcast flag with wakers.
#[derive(Default)]
struct Signal {
    set: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
}

impl Signal {
    fn is_set(&self) -> bool {
        self.set.load(Ordering::Acquire)
    }

    fn raise(&self) {
        self.set.store(true, Ordering::Release);
        let wakers = std::mem::take(&mut *self.wakers.lock().unwrap_or_else(|p| p.into_inner()));
        for waker in wakers {
            waker.wake();
        }
    }

    async fn wait(&self) {
        std::future::poll_fn(|cx| {
            if self.is_set() {
                return Poll::Ready(());
            }
            let mut wakers = self.wakers.lock().unwrap_or_else(|p| p.into_inner());
            if self.is_set() {
                return Poll::Ready(());
            }
            wakers.push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

struct ManagerInner<R: Runtime> {
    runtime: R,
    name: Arc<str>,
    instance_id: u64,
    secret: Arc<[u8]>,
    limits: Limits,
    timeouts: Timeouts,
    backoff: BackoffConfig,
    registry: Arc<Registry>,
    addresses: HashMap<String, String>,
    peers: HashMap<String, Arc<PeerSlot>>,
    local_addr: Option<SocketAddr>,
    connector: Connector,
    shutdown: Signal,
    /// Raised once the accept loop has dropped the listener (at once when the
    /// node does not listen).
    listener_closed: Signal,
    /// Every connection alive, for shutdown.
    connections: Mutex<Vec<Weak<Shared>>>,
}

/// A node of the cluster: its handlers, and a connection to every peer.
///
/// Cheap to clone. See the crate documentation for an example.
pub struct Manager<R: Runtime> {
    inner: Arc<ManagerInner<R>>,
}

impl<R: Runtime> Clone for Manager<R> {
    fn clone(&self) -> Self {
        Manager {
            inner: self.inner.clone(),
        }
    }
}

impl<R: Runtime> std::fmt::Debug for Manager<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("name", &self.inner.name)
            .field("peers", &self.inner.peers.len())
            .finish()
    }
}

impl<R: Runtime + Default> Manager<R> {
    /// Starts building a node named `name` (by default also the address it
    /// listens on and the name its peers know it by).
    pub fn builder(name: impl Into<String>) -> ManagerBuilder<R> {
        ManagerBuilder::new(R::default(), name)
    }
}

impl<R: Runtime> Manager<R> {
    /// Starts building a node named `name` on `runtime`.
    pub fn builder_on(runtime: R, name: impl Into<String>) -> ManagerBuilder<R> {
        ManagerBuilder::new(runtime, name)
    }

    /// This node's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The address the node listens on, if it listens.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.inner.local_addr
    }

    /// The handle for calls to `peer`.
    pub fn connection(&self, peer: &str) -> Result<Connection, UnknownPeer> {
        self.inner
            .peers
            .get(peer)
            .map(|slot| Connection { slot: slot.clone() })
            .ok_or_else(|| UnknownPeer(peer.to_string()))
    }

    /// Names of all peers.
    pub fn peers(&self) -> Vec<String> {
        let mut names: Vec<String> = self.inner.peers.keys().cloned().collect();
        names.sort();
        names
    }

    /// Waits until `peer` is connected, at most `timeout`.
    pub async fn wait_connected(&self, peer: &str, timeout: Duration) -> Result<(), WaitError> {
        let slot = self
            .inner
            .peers
            .get(peer)
            .ok_or_else(|| WaitError::UnknownPeer(UnknownPeer(peer.to_string())))?
            .clone();
        let connected = std::future::poll_fn(|cx| {
            if slot.poll_connected(cx.waker()) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        });
        let deadline = sleep_until(&self.inner.runtime, Instant::now() + timeout);
        match select(pin!(connected), pin!(deadline)).await {
            Either::Left(_) => Ok(()),
            Either::Right(_) => Err(WaitError::Timeout {
                peer: peer.to_string(),
                waited: timeout,
            }),
        }
    }

    /// Waits until every peer is connected, at most `timeout` in total.
    pub async fn wait_all_connected(&self, timeout: Duration) -> Result<(), WaitError> {
        let deadline = Instant::now() + timeout;
        for peer in self.peers() {
            let left = deadline.saturating_duration_since(Instant::now());
            self.wait_connected(&peer, left).await?;
        }
        Ok(())
    }

    /// Statistics of every peer, sorted by name.
    pub fn stats(&self) -> Vec<ConnectionStats> {
        let mut stats: Vec<ConnectionStats> = self
            .inner
            .peers
            .values()
            .map(|slot| Connection { slot: slot.clone() }.stats())
            .collect();
        stats.sort_by(|a, b| a.peer.cmp(&b.peer));
        stats
    }

    /// Runs a connection over a byte stream accepted elsewhere (e.g. an HTTP
    /// upgrade on the server's main port). The peer authenticates as usual.
    pub fn accept(&self, io: BoxIo) {
        let inner = self.inner.clone();
        self.inner.runtime.spawn(async move {
            run_connection(&inner, io, Role::Acceptor, None).await;
        });
    }

    /// Stops the node gracefully: stops accepting and dialing, tells every
    /// peer it is draining (their new calls to it fail with the retryable
    /// [`Error::Draining`]), lets calls in flight finish for up to
    /// `drain_timeout`, then closes every connection.
    pub async fn shutdown(&self, drain_timeout: Duration) {
        self.inner.shutdown.raise();
        let live = self.live_connections();
        let now = Instant::now();
        for shared in &live {
            shared.command(|inner, now| inner.proto.begin_drain(now, drain_timeout));
        }
        // Each connection closes by itself once its calls are done (or its
        // drain deadline passes); a little grace covers the final round trip.
        let all_closed = join_all(live.iter().map(|shared| shared.closed()));
        let limit = sleep_until(
            &self.inner.runtime,
            now + drain_timeout + Duration::from_millis(100),
        );
        let _ = select(pin!(all_closed), pin!(limit)).await;
        for shared in &live {
            shared.command(|inner, _| inner.proto.close("node shut down"));
        }
        self.inner.listener_closed.wait().await;
    }

    fn live_connections(&self) -> Vec<Arc<Shared>> {
        let connections = self
            .inner
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        connections.iter().filter_map(Weak::upgrade).collect()
    }
}

async fn accept_loop<R: Runtime>(inner: Arc<ManagerInner<R>>, listener: Box<dyn Listener>) {
    accept_until_shutdown(&inner, listener).await;
    // The listener is closed now: a node restarted on the same address can bind.
    inner.listener_closed.raise();
}

async fn accept_until_shutdown<R: Runtime>(
    inner: &Arc<ManagerInner<R>>,
    mut listener: Box<dyn Listener>,
) {
    loop {
        let accepted = {
            let accept = listener.accept();
            let stop = inner.shutdown.wait();
            match select(accept, pin!(stop)).await {
                Either::Left((accepted, _)) => accepted,
                Either::Right(_) => return,
            }
        };
        match accepted {
            Ok((io, addr)) => {
                let inner = inner.clone();
                let span = tracing::debug_span!("grid.accept", node = %inner.name, %addr);
                inner.runtime.clone().spawn(
                    async move {
                        run_connection(&inner, io, Role::Acceptor, None).await;
                    }
                    .instrument(span),
                );
            }
            Err(error) => {
                tracing::warn!(node = %inner.name, %error, "accept failed");
                // Accept errors (e.g. out of file descriptors) persist for a while.
                sleep_until(&inner.runtime, Instant::now() + Duration::from_millis(50)).await;
            }
        }
    }
}

async fn dial_loop<R: Runtime>(inner: Arc<ManagerInner<R>>, peer: String) {
    let mut backoff = Backoff::new(inner.backoff, random_u64());
    let addr = inner
        .addresses
        .get(&peer)
        .cloned()
        .unwrap_or_else(|| peer.clone());
    while !inner.shutdown.is_set() {
        let connect = (inner.connector)(&addr);
        let timeout = sleep_until(&inner.runtime, Instant::now() + inner.timeouts.handshake);
        let stop = inner.shutdown.wait();
        let outcome = match select(select(connect, pin!(timeout)), pin!(stop)).await {
            Either::Left((Either::Left((result, _)), _)) => result,
            Either::Left((Either::Right(_), _)) => {
                Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))
            }
            Either::Right(_) => return,
        };
        match outcome {
            Ok(io) => {
                let span = tracing::debug_span!("grid.dial", node = %inner.name, %peer);
                let established = run_connection(&inner, io, Role::Dialer, Some(peer.clone()))
                    .instrument(span)
                    .await;
                if established {
                    backoff.reset();
                }
            }
            Err(error) => {
                tracing::debug!(node = %inner.name, %peer, %error, "dial failed");
            }
        }
        let delay = backoff.next_delay();
        let sleep = sleep_until(&inner.runtime, Instant::now() + delay);
        let stop = inner.shutdown.wait();
        if let Either::Right(_) = select(pin!(sleep), pin!(stop)).await {
            return;
        }
    }
}

/// Runs one connection to its end. Returns whether it was established.
async fn run_connection<R: Runtime>(
    inner: &Arc<ManagerInner<R>>,
    io: BoxIo,
    role: Role,
    expected_peer: Option<String>,
) -> bool {
    let now = Instant::now();
    let mut seed = [0u8; 32];
    fill_random(&mut seed);
    let mut config = Config::new(
        &*inner.name,
        inner.instance_id,
        inner.secret.clone(),
        role,
        seed,
    );
    config.expected_peer = expected_peer;
    config.limits = inner.limits.clone();
    config.timeouts = inner.timeouts.clone();
    let shared = Shared::new(Proto::new(config, now), io);
    {
        let mut connections = inner.connections.lock().unwrap_or_else(|p| p.into_inner());
        connections.retain(|weak| weak.strong_count() > 0);
        connections.push(Arc::downgrade(&shared));
    }
    let mut driver = Driver::new(shared.clone(), inner.runtime.timer(now));
    let host = Serve {
        runtime: inner.runtime.clone(),
        registry: inner.registry.clone(),
    };
    let peer = match std::future::poll_fn(|cx| driver.poll_drive(cx, &host)).await {
        Exit::Closed(reason) => {
            tracing::debug!(node = %inner.name, %reason, "connection closed during handshake");
            return false;
        }
        Exit::Connected(peer) => peer,
    };
    let slot = inner.peers.get(&peer.node_name).cloned();
    let refusal = match &slot {
        None => Some(format!("{:?} is not a peer of {:?}", peer.node_name, inner.name)),
        Some(_) if role == Role::Acceptor && !dials(&peer.node_name, &inner.name) => Some(format!(
            "wrong side: {:?} dials {:?}, not the other way round (are the peer lists the same on both nodes?)",
            inner.name, peer.node_name
        )),
        Some(_) if inner.shutdown.is_set() => Some("node is shutting down".to_string()),
        Some(_) => None,
    };
    let installed = match (refusal, slot) {
        (None, Some(slot)) => {
            if let Some(old) = slot.install(shared.clone()) {
                old.command(|inner, _| inner.proto.close("replaced by a new connection"));
            }
            tracing::info!(node = %inner.name, peer = %peer.node_name, "connected");
            Some(slot)
        }
        (refusal, _) => {
            let reason = refusal.unwrap_or_else(|| "refused".to_string());
            tracing::warn!(node = %inner.name, peer = %peer.node_name, %reason, "refusing connection");
            shared.command(|inner, _| inner.proto.close(reason));
            None
        }
    };
    let exit = std::future::poll_fn(|cx| driver.poll_drive(cx, &host)).await;
    if let Some(slot) = &installed {
        slot.uninstall(&shared);
        if let Exit::Closed(reason) = exit {
            tracing::info!(node = %inner.name, peer = %peer.node_name, %reason, "disconnected");
        }
    }
    installed.is_some()
}
