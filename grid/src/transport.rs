//! What a transport hands grid besides the bytes: the remote address, and the
//! peer's identity when the transport verified one (a TLS client or server
//! certificate). grid compares that identity with the node name the peer
//! claims in its handshake.

use std::io;
use std::net::SocketAddr;

use crate::identity::PeerIdentity;
use crate::runtime::{BoxFuture, BoxIo};

/// A connection a [`Listener`](crate::Listener) accepted, after its
/// transport's own handshake (if any).
pub struct Accepted {
    /// The byte stream grid's protocol runs over.
    pub io: BoxIo,
    /// The remote address.
    pub addr: SocketAddr,
    /// The identity the transport verified, if it verifies one.
    pub identity: Option<PeerIdentity>,
}

impl Accepted {
    /// A connection whose transport verifies no identity (plain TCP).
    pub fn plain(io: BoxIo, addr: SocketAddr) -> Accepted {
        Accepted {
            io,
            addr,
            identity: None,
        }
    }
}

impl std::fmt::Debug for Accepted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accepted")
            .field("addr", &self.addr)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// A connection a [`Listener`](crate::Listener) took from the socket, whose
/// transport handshake has not run yet.
///
/// The listener returns it at once; grid finishes the handshake on the
/// connection's own task, under the handshake timeout, so that a client that
/// connects and then stalls (or a slow TLS handshake) delays no other
/// connection.
pub struct Incoming {
    addr: SocketAddr,
    handshake: BoxFuture<'static, io::Result<Accepted>>,
}

impl Incoming {
    /// A connection with nothing left to do before grid's handshake.
    pub fn ready(accepted: Accepted) -> Incoming {
        let addr = accepted.addr;
        Incoming {
            addr,
            handshake: Box::pin(std::future::ready(Ok(accepted))),
        }
    }

    /// A connection from `addr` whose transport handshake is `handshake`.
    pub fn handshake(
        addr: SocketAddr,
        handshake: BoxFuture<'static, io::Result<Accepted>>,
    ) -> Incoming {
        Incoming { addr, handshake }
    }

    /// The remote address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Runs the transport handshake.
    pub async fn finish(self) -> io::Result<Accepted> {
        self.handshake.await
    }
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// A connection a [`Connector`](crate::Connector) opened to a peer.
pub struct Dialed {
    /// The byte stream grid's protocol runs over.
    pub io: BoxIo,
    /// The identity of the node at the other end, as the transport verified
    /// it; grid refuses to run its handshake if it does not name the peer it
    /// dialed.
    pub identity: Option<PeerIdentity>,
}

impl Dialed {
    /// A connection whose transport verifies no identity (plain TCP).
    pub fn plain(io: BoxIo) -> Dialed {
        Dialed { io, identity: None }
    }
}

impl From<BoxIo> for Dialed {
    fn from(io: BoxIo) -> Dialed {
        Dialed::plain(io)
    }
}

impl std::fmt::Debug for Dialed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dialed")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}
