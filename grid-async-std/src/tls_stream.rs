//! Mutual TLS on async-std (feature `tls`): grid's [`TlsConfig`] applied to
//! async-std sockets with futures-rustls. The certificate checks are grid's
//! ([`grid::tls`]); this file only runs the handshakes.

use std::io;
use std::net::SocketAddr;

use async_std::net::{TcpListener, TcpStream};
use futures_rustls::{TlsAcceptor, TlsConnector};
use grid::tls::{explained, handshake_error, verified_identity, TlsConfig};
use grid::{Accepted, BoxFuture, Connector, Dialed, Incoming, Listener};

use crate::AsyncStd;

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
    let tls = acceptor.accept(stream).await.map_err(handshake_error)?;
    let identity = verified_identity(tls.get_ref().1.peer_certificates())?;
    Ok(Accepted {
        io: Box::new(tls),
        addr,
        identity: Some(identity),
    })
}

impl AsyncStd {
    /// Wraps a bound async-std listener so that every connection runs
    /// mutual TLS with `config` first: the client's certificate must chain
    /// to the cluster CA, and grid refuses a peer whose claimed node name the
    /// certificate does not carry.
    ///
    /// ```
    /// use grid_async_std::tls::TlsConfig;
    /// use grid_async_std::{AsyncStd, Manager};
    ///
    /// async fn node(
    ///     name: &str,
    ///     peers: &[String],
    ///     tls: TlsConfig,
    /// ) -> Result<Manager, Box<dyn std::error::Error>> {
    ///     let listener = async_std::net::TcpListener::bind(name).await?;
    ///     let node = Manager::builder(name)
    ///         .peers(peers.iter().cloned())
    ///         .secret(b"a shared cluster secret")
    ///         .listener(AsyncStd::tls_listener(listener, &tls))
    ///         .connector(AsyncStd::tls_connector(&tls))
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
                let tls = connector
                    .connect(TlsConfig::server_name(), stream)
                    .await
                    .map_err(handshake_error)?;
                let identity = verified_identity(tls.get_ref().1.peer_certificates())?;
                Ok(Dialed {
                    io: explained(Box::new(tls)),
                    identity: Some(identity),
                })
            })
        })
    }
}
