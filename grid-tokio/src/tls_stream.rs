//! Mutual TLS on tokio (feature `tls`): grid's [`TlsConfig`] applied to tokio
//! sockets with tokio-rustls. The certificate checks are grid's
//! ([`grid::tls`]); this file only runs the handshakes.

use std::io;
use std::net::SocketAddr;

use grid::tls::{explained, handshake_error, verified_identity, TlsConfig};
use grid::{Accepted, BoxFuture, Connector, Dialed, Incoming, Listener, PeerIdentity};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::Tokio;

struct TlsListener {
    listener: TcpListener,
    acceptor: TlsAcceptor,
}

impl Listener for TlsListener {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<Incoming>> {
        Box::pin(async move {
            let (stream, addr) = self.listener.accept().await?;
            stream.set_nodelay(true)?;
            let acceptor = self.acceptor.clone();
            // The TLS handshake runs on the connection's own task (see
            // `Incoming`), never in the accept loop.
            Ok(Incoming::handshake(
                addr,
                Box::pin(accept(acceptor, stream, addr)),
            ))
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

async fn accept(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    addr: SocketAddr,
) -> io::Result<Accepted> {
    let (tls, identity) = server_handshake(&acceptor, stream).await?;
    Ok(Accepted {
        io: Tokio::compat(tls),
        addr,
        identity: Some(identity),
    })
}

impl Tokio {
    /// Wraps a bound tokio listener so that every connection runs mutual
    /// TLS with `config` first: the client's certificate must chain to the
    /// cluster CA, and grid refuses a peer whose claimed node name the
    /// certificate does not carry.
    ///
    /// ```
    /// use grid_tokio::tls::TlsConfig;
    /// use grid_tokio::{Manager, Tokio};
    ///
    /// async fn node(
    ///     name: &str,
    ///     peers: &[String],
    ///     tls: TlsConfig,
    /// ) -> Result<Manager, Box<dyn std::error::Error>> {
    ///     let listener = tokio::net::TcpListener::bind(name).await?;
    ///     let node = Manager::builder(name)
    ///         .peers(peers.iter().cloned())
    ///         .secret(b"a shared cluster secret")
    ///         .listener(Tokio::tls_listener(listener, &tls))
    ///         .connector(Tokio::tls_connector(&tls))
    ///         .start()
    ///         .await?;
    ///     Ok(node)
    /// }
    /// ```
    pub fn tls_listener(listener: TcpListener, config: &TlsConfig) -> Box<dyn Listener> {
        Box::new(TlsListener {
            listener,
            acceptor: TlsAcceptor::from(config.server_config()),
        })
    }

    /// A connector that dials over mutual TLS with `config`: the node's
    /// certificate must chain to the cluster CA, and grid checks that it
    /// names the peer dialed before its own handshake.
    pub fn tls_connector(config: &TlsConfig) -> Connector {
        let connector = TlsConnector::from(config.client_config());
        std::sync::Arc::new(move |addr: &str| {
            let connector = connector.clone();
            let addr = addr.to_string();
            Box::pin(async move {
                let stream = TcpStream::connect(addr).await?;
                stream.set_nodelay(true)?;
                Tokio::tls_dial(&connector, stream).await
            })
        })
    }

    /// Runs the server side of mutual TLS over an accepted stream, for a
    /// connection handed to [`grid::Manager::accept`] (e.g. from a server of
    /// your own): the stream, and the identity to pass along.
    pub async fn tls_accept(
        stream: TcpStream,
        addr: SocketAddr,
        config: &TlsConfig,
    ) -> io::Result<Accepted> {
        accept(TlsAcceptor::from(config.server_config()), stream, addr).await
    }

    async fn tls_dial(connector: &TlsConnector, stream: TcpStream) -> io::Result<Dialed> {
        let (tls, identity) = client_handshake(connector, stream).await?;
        Ok(Dialed {
            io: explained(Tokio::compat(tls)),
            identity: Some(identity),
        })
    }
}

/// The server side of mutual TLS over `stream`, and the identity the
/// client's certificate proves: the one handshake every tokio listener and
/// the HTTP mount run.
pub(crate) async fn server_handshake(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
) -> io::Result<(tokio_rustls::server::TlsStream<TcpStream>, PeerIdentity)> {
    let tls = acceptor.accept(stream).await.map_err(handshake_error)?;
    let identity = verified_identity(tls.get_ref().1.peer_certificates())?;
    Ok((tls, identity))
}

/// The client side of mutual TLS over `stream`, and the identity the
/// server's certificate proves: the one handshake every tokio connector and
/// the HTTP mount's dialer run.
pub(crate) async fn client_handshake(
    connector: &TlsConnector,
    stream: TcpStream,
) -> io::Result<(tokio_rustls::client::TlsStream<TcpStream>, PeerIdentity)> {
    let tls = connector
        .connect(TlsConfig::server_name(), stream)
        .await
        .map_err(handshake_error)?;
    let identity = verified_identity(tls.get_ref().1.peer_certificates())?;
    Ok((tls, identity))
}
