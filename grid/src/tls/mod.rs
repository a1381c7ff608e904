//! Mutual TLS between nodes, each certificate naming its node (feature
//! `tls`): the rustls configuration and the certificate checks, written once;
//! the runtime crates wrap their sockets in TLS streams with it
//! (`grid_tokio::Tokio::tls_listener`, `grid_async_std::AsyncStd::tls_listener`).
//!
//! One cluster CA issues every node's certificate. A certificate names the
//! node it is for with a URI subject alternative name `grid://<node name>`
//! ([`node_uri`]), e.g. `grid://10.0.0.1:7000`: node names are usually
//! `host:port`, which is not a DNS name. The dialer accepts a server
//! certificate that chains to the CA and grid then checks that it names the
//! node dialed; the acceptor requires a client certificate that chains to the
//! CA, and grid refuses a peer whose handshake claims a name the certificate
//! does not carry (`Refusal::IdentityMismatch`). No DNS or IP name is
//! checked. The cluster secret's handshake still runs inside TLS: a stolen
//! node key alone does not admit anyone.

mod config;
#[cfg(feature = "demo-ca")]
mod demo_ca;
mod errors;
mod explained;
mod identity;
mod verifier;

pub use config::{TlsConfig, TlsConfigError};
#[cfg(feature = "demo-ca")]
pub use demo_ca::{DemoCa, NodeCredentials};
pub use errors::handshake_error;
pub use explained::explained;
pub use identity::{identity_of, node_uri, verified_identity, NODE_URI_SCHEME};
pub use rustls;
