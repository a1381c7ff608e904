//! Mounting grid on an HTTP server's port (feature `http`): a request with
//! `Upgrade: grid` becomes a grid connection, every other request goes to
//! the server's own service. With hyper 1.x, HTTP/1.1.
//!
//! The server side: [`serve_connection`] (or, over TLS, `serve_tls_connection`)
//! runs one accepted connection, or, inside a hyper service of your own,
//! [`is_grid_upgrade`] and [`accept_upgrade`]. The dialer side: a
//! [`connector`] (or `tls_connector`) that sends the upgrade request, for
//! [`grid::ManagerBuilder::connector`].
//!
//! ```no_run
//! use std::convert::Infallible;
//! use grid_tokio::{http, Bytes, Manager};
//!
//! # async fn serve(node: Manager) -> std::io::Result<()> {
//! // The node listens nowhere itself (`ManagerBuilder::no_listener`): its
//! // connections arrive on the HTTP port.
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:9000").await?;
//! loop {
//!     let (stream, remote) = listener.accept().await?;
//!     let node = node.clone();
//!     tokio::spawn(http::serve_connection(node, stream, remote, |_request| async {
//!         Ok::<_, Infallible>(hyper::Response::new(String::from("hello")))
//!     }));
//! }
//! # }
//! ```

use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use grid::{BoxIo, Connector, Dialed, PeerIdentity};
use hyper::body::{Body, Incoming};
use hyper::header::{HeaderValue, CONNECTION, HOST, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::{Manager, Tokio};

/// The protocol token of the upgrade: `Upgrade: grid`.
pub const UPGRADE_TOKEN: &str = "grid";

/// Whether `request` asks to become a grid connection (`Connection:
/// upgrade` and `Upgrade: grid`).
pub fn is_grid_upgrade<B>(request: &Request<B>) -> bool {
    let has_token = |name, token: &str| {
        request.headers().get_all(name).iter().any(|value| {
            value.to_str().is_ok_and(|value| {
                value
                    .split(',')
                    .any(|item| item.trim().eq_ignore_ascii_case(token))
            })
        })
    };
    has_token(CONNECTION, "upgrade") && has_token(UPGRADE, UPGRADE_TOKEN)
}

/// Answers a grid upgrade request: the `101 Switching Protocols` response
/// to send, after which the connection is handed to
/// [`Manager::accept`](grid::Manager::accept) with `remote` and
/// `identity` (what the server's TLS verified, if it did). A request that
/// is not a grid upgrade gets `400 Bad Request`.
///
/// The hyper connection must be served `with_upgrades()`.
pub fn accept_upgrade<B, R>(
    node: &Manager,
    request: Request<B>,
    remote: SocketAddr,
    identity: Option<PeerIdentity>,
) -> Response<R>
where
    B: Send + 'static,
    R: Default,
{
    let mut response = Response::new(R::default());
    if !is_grid_upgrade(&request) {
        *response.status_mut() = StatusCode::BAD_REQUEST;
        return response;
    }
    let node = node.clone();
    tokio::spawn(async move {
        // Fails only if the client went away before the switch: nothing to do.
        if let Ok(upgraded) = hyper::upgrade::on(request).await {
            let io = Tokio::compat(TokioIo::new(upgraded));
            // The node logs admissions and refusals itself.
            let _outcome = node.accept(io, remote, identity).await;
        }
    });
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(UPGRADE, HeaderValue::from_static(UPGRADE_TOKEN));
    response
}

/// The error type of a hyper service.
type BoxError = Box<dyn StdError + Send + Sync>;

/// The server's service failed; hyper closes the connection.
#[derive(Debug)]
struct ServiceError(String);

impl std::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for ServiceError {}

type ServiceFuture<B> = Pin<Box<dyn Future<Output = Result<Response<B>, ServiceError>> + Send>>;

/// Serves one accepted HTTP/1.1 connection: grid upgrades become
/// connections of `node`, every other request goes to `service`.
pub async fn serve_connection<S, F, B, E>(
    node: Manager,
    stream: TcpStream,
    remote: SocketAddr,
    service: S,
) -> io::Result<()>
where
    S: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Result<Response<B>, E>> + Send + 'static,
    B: Body + Default + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    E: Into<BoxError>,
{
    let _ = stream.set_nodelay(true);
    serve(node, stream, remote, None, service).await
}

async fn serve<T, S, F, B, E>(
    node: Manager,
    io: T,
    remote: SocketAddr,
    identity: Option<PeerIdentity>,
    service: S,
) -> io::Result<()>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    S: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Result<Response<B>, E>> + Send + 'static,
    B: Body + Default + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    E: Into<BoxError>,
{
    let service = Arc::new(service);
    let route = hyper::service::service_fn(move |request: Request<Incoming>| -> ServiceFuture<B> {
        if is_grid_upgrade(&request) {
            let response = accept_upgrade(&node, request, remote, identity.clone());
            Box::pin(std::future::ready(Ok(response)))
        } else {
            let answer = service(request);
            Box::pin(async move {
                answer
                    .await
                    .map_err(|error| ServiceError(error.into().to_string()))
            })
        }
    });
    hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), route)
        .with_upgrades()
        .await
        .map_err(io::Error::other)
}

/// A connector that reaches each peer through its HTTP server: it sends
/// `GET <path>` with `Upgrade: grid` and runs grid over the upgraded
/// connection.
pub fn connector(path: impl Into<String>) -> Connector {
    let path: Arc<str> = path.into().into();
    Arc::new(move |addr: &str| {
        let addr = addr.to_string();
        let path = path.clone();
        Box::pin(async move {
            let stream = TcpStream::connect(&addr).await?;
            stream.set_nodelay(true)?;
            Ok(Dialed::plain(request_upgrade(stream, &addr, &path).await?))
        })
    })
}

/// Sends the upgrade request over `io` and returns the upgraded connection.
async fn request_upgrade<T>(io: T, host: &str, path: &str) -> io::Result<BoxIo>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(io::Error::other)?;
    tokio::spawn(async move {
        // Ends with the connection; its errors reach the request below.
        let _ = connection.with_upgrades().await;
    });
    let request = Request::builder()
        .method("GET")
        .uri(path)
        .header(HOST, host)
        .header(CONNECTION, "upgrade")
        .header(UPGRADE, UPGRADE_TOKEN)
        .body(String::new())
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(io::Error::other)?;
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Err(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            format!(
                "{host} answered the grid upgrade of {path} with {} (is grid mounted there?)",
                response.status()
            ),
        ));
    }
    let upgraded = hyper::upgrade::on(response)
        .await
        .map_err(io::Error::other)?;
    Ok(Tokio::compat(TokioIo::new(upgraded)))
}

#[cfg(feature = "tls")]
mod tls {
    use super::*;
    use crate::tls_stream::{client_handshake, server_handshake};
    use grid::tls::{explained, TlsConfig};
    use tokio_rustls::{TlsAcceptor, TlsConnector};

    /// [`serve_connection`] over mutual TLS with `config`: the client's
    /// certificate must chain to the cluster CA, and the identity it proves
    /// goes with every grid upgrade on the connection.
    pub async fn serve_tls_connection<S, F, B, E>(
        node: Manager,
        stream: TcpStream,
        remote: SocketAddr,
        config: &TlsConfig,
        service: S,
    ) -> io::Result<()>
    where
        S: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
        F: Future<Output = Result<Response<B>, E>> + Send + 'static,
        B: Body + Default + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
        E: Into<BoxError>,
    {
        let _ = stream.set_nodelay(true);
        let acceptor = TlsAcceptor::from(config.server_config());
        let (tls, identity) = server_handshake(&acceptor, stream).await?;
        serve(node, tls, remote, Some(identity), service).await
    }

    /// [`connector`] over mutual TLS with `config`: grid checks that the
    /// server's certificate names the peer dialed.
    pub fn tls_connector(path: impl Into<String>, config: &TlsConfig) -> Connector {
        let path: Arc<str> = path.into().into();
        let connector = TlsConnector::from(config.client_config());
        Arc::new(move |addr: &str| {
            let addr = addr.to_string();
            let path = path.clone();
            let connector = connector.clone();
            Box::pin(async move {
                let stream = TcpStream::connect(&addr).await?;
                stream.set_nodelay(true)?;
                let (tls, identity) = client_handshake(&connector, stream).await?;
                let io = request_upgrade(tls, &addr, &path).await?;
                Ok(Dialed {
                    io: explained(io),
                    identity: Some(identity),
                })
            })
        })
    }
}

#[cfg(feature = "tls")]
pub use tls::{serve_tls_connection, tls_connector};
