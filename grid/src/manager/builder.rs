//! Configuring and starting a node: [`ManagerBuilder`], and why starting can
//! fail.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use grid_proto::{dials, BackoffConfig, Limits, Timeouts, MIN_SECRET_LEN};

use super::accept::accept_loop;
use super::dial::{dial_loop, Connector};
use super::handshakes::{Handshakes, DEFAULT_MAX_PENDING_HANDSHAKES};
use super::node::{Manager, ManagerInner};
use super::signal::Signal;
use crate::peer::PeerSlot;
use crate::router::{DuplicateHandler, Router};
use crate::runtime::{clock, random_u64, Listener, Runtime};
use crate::telemetry::Telemetry;
use crate::transport::Dialed;

/// Why a Manager could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A handler id and subroute were registered twice.
    #[error(transparent)]
    DuplicateHandler(#[from] DuplicateHandler),
    /// No cluster secret was given.
    #[error("no cluster secret configured")]
    NoSecret,
    /// The cluster secret is shorter than [`MIN_SECRET_LEN`] bytes, short
    /// enough to be guessed offline from a recorded handshake.
    #[error(
        "the cluster secret is {len} bytes; it must be at least {MIN_SECRET_LEN} bytes, \
         best 32 random bytes (e.g. the output of `openssl rand -base64 32`)"
    )]
    WeakSecret {
        /// The length of the secret given, in bytes.
        len: usize,
    },
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

/// Builds a [`Manager`].
#[must_use = "a builder does nothing until started"]
pub struct ManagerBuilder<R: Runtime> {
    runtime: R,
    name: String,
    peers: Vec<String>,
    addresses: HashMap<String, String>,
    secret: Option<Arc<[u8]>>,
    listen: Listen,
    router: Router,
    limits: Limits,
    timeouts: Timeouts,
    backoff: BackoffConfig,
    replace_interval: Duration,
    max_pending_handshakes: usize,
    #[cfg(feature = "metrics")]
    metrics_interval: Duration,
    connector: Option<Connector>,
}

/// Default of [`ManagerBuilder::replace_interval`].
pub const DEFAULT_REPLACE_INTERVAL: Duration = Duration::from_secs(1);

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
            router: Router::new(),
            limits: Limits::default(),
            timeouts: Timeouts::default(),
            backoff: BackoffConfig::default(),
            replace_interval: DEFAULT_REPLACE_INTERVAL,
            max_pending_handshakes: DEFAULT_MAX_PENDING_HANDSHAKES,
            #[cfg(feature = "metrics")]
            metrics_interval: super::metrics_loop::DEFAULT_METRICS_INTERVAL,
            connector: None,
        }
    }

    /// The runtime the node will run on: for handlers that read its clock.
    pub fn runtime(&self) -> &R {
        &self.runtime
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

    /// The cluster secret every node must share: at least
    /// [`MIN_SECRET_LEN`] bytes, best 32 random bytes (e.g. from
    /// `openssl rand -base64 32`); [`start`](Self::start) refuses a shorter one.
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

    /// Shortest time between two replacements of a peer's live connection.
    /// Default [`DEFAULT_REPLACE_INTERVAL`] (1 s).
    ///
    /// An authenticated connection that claims the name of a connected peer
    /// replaces that peer's connection, failing its calls in flight with
    /// `Disconnected`; a node that churns such connections (anyone with the
    /// cluster secret can claim any name) could fail a legitimate peer's
    /// calls continuously. A newcomer within this interval of the last
    /// replacement is refused with `Refusal::ReplacingTooOften` and the
    /// current connection stays; an honest dialer retries after its backoff.
    /// A peer that restarted replaces its stale connection at once unless
    /// it was replaced less than this long ago.
    pub fn replace_interval(mut self, interval: Duration) -> Self {
        self.replace_interval = interval;
        self
    }

    /// How many incoming connections may be in their handshake at once
    /// (default [`DEFAULT_MAX_PENDING_HANDSHAKES`], 512): TLS and grid's
    /// handshake, until the peer is admitted or refused or the handshake
    /// timeout passes. Connections over the limit are closed at once (and
    /// logged at WARN, rate-limited); honest dialers retry after their
    /// backoff. It bounds what clients that connect and say nothing can
    /// hold; set it above the number of peers that dial this node.
    pub fn max_pending_handshakes(mut self, max: usize) -> Self {
        self.max_pending_handshakes = max.max(1);
        self
    }

    /// How often each peer's connection metrics (`grid_peer_*`) are
    /// published (default [`DEFAULT_METRICS_INTERVAL`](crate::DEFAULT_METRICS_INTERVAL), one second).
    #[cfg(feature = "metrics")]
    pub fn metrics_interval(mut self, interval: Duration) -> Self {
        self.metrics_interval = interval;
        self
    }

    /// The handlers the node serves. Called more than once, the routers are
    /// merged (see [`Router::merge`]), so each subsystem can bring its own; a
    /// route registered twice fails [`start`](Self::start).
    ///
    /// ```no_run
    /// use grid::{Bytes, Ctx, Manager, Router, Runtime};
    ///
    /// const ECHO: u16 = 1;
    /// const DISK: u16 = 2;
    ///
    /// async fn node<R: Runtime + Default>() -> Result<Manager<R>, grid::StartError> {
    ///     let router = Router::new()
    ///         .single(ECHO, |_ctx: Ctx, request: Bytes| async move { Ok(request) })
    ///         .single((DISK, "disk-1"), |_ctx: Ctx, _request: Bytes| async move { Ok(Bytes::new()) });
    ///     Manager::<R>::builder("10.0.0.1:7000")
    ///         .peers(["10.0.0.2:7000"])
    ///         .secret(b"a shared cluster secret")
    ///         .router(router)
    ///         .start()
    ///         .await
    /// }
    /// ```
    pub fn router(mut self, router: Router) -> Self {
        self.router = std::mem::take(&mut self.router).merge(router);
        self
    }

    /// Starts listening, dialing and serving.
    pub async fn start(self) -> Result<Manager<R>, StartError> {
        if let Some(duplicate) = self.router.duplicate() {
            return Err(duplicate.clone().into());
        }
        let secret = self.secret.ok_or(StartError::NoSecret)?;
        if secret.len() < MIN_SECRET_LEN {
            return Err(StartError::WeakSecret { len: secret.len() });
        }
        let telemetry = Arc::new(Telemetry::new());
        let mut peers = BTreeMap::new();
        for peer in &self.peers {
            if *peer != self.name {
                let slot = PeerSlot::new(peer, clock(&self.runtime), telemetry.clone());
                peers.insert(peer.clone(), slot);
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
            Arc::new(move |addr: &str| {
                let connect = runtime.connect(addr);
                Box::pin(async move { connect.await.map(Dialed::plain) })
            })
        });
        let inner = Arc::new(ManagerInner {
            runtime: self.runtime,
            name: self.name.as_str().into(),
            instance_id: random_u64(&runtime),
            secret,
            limits: self.limits,
            timeouts: self.timeouts,
            backoff: self.backoff,
            replace_interval: self.replace_interval,
            router: Arc::new(self.router),
            addresses: self.addresses,
            peers,
            local_addr,
            connector,
            shutdown: Signal::default(),
            listener_closed: Signal::default(),
            connections: Mutex::new(Vec::new()),
            log_limit: Default::default(),
            telemetry,
            handshakes: Handshakes::new(self.max_pending_handshakes),
        });
        match listener {
            Some(listener) => inner.runtime.spawn(accept_loop(inner.clone(), listener)),
            None => inner.listener_closed.raise(),
        }
        #[cfg(feature = "metrics")]
        inner.runtime.spawn(super::metrics_loop::metrics_loop(
            inner.clone(),
            self.metrics_interval,
        ));
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
