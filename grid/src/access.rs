//! Who may call a handler: [`Access`], set per route with
//! [`Router::restrict`](crate::Router::restrict).

use std::collections::BTreeSet;

use crate::identity::PeerIdentity;

/// The callers a handler admits. A handler without one admits every
/// authenticated peer; with one, any other caller gets
/// [`Error::PermissionDenied`](crate::Error::PermissionDenied), which is not
/// retryable.
///
/// Built from the principals it admits: a peer's node name (as the cluster
/// secret authenticates it), or a node name the caller's certificate proves
/// (with a transport that verifies identities, such as TLS).
///
/// ```
/// use grid::Access;
/// let admins = Access::peers(["10.0.0.1:7000", "10.0.0.2:7000"]);
/// assert!(admins.admits_peer("10.0.0.1:7000"));
/// assert!(!admins.admits_peer("10.0.0.3:7000"));
///
/// // Only callers whose certificate names the node, whatever name they claim.
/// let certified = Access::certified(["10.0.0.1:7000"]);
/// let proven = grid::PeerIdentity::new(["10.0.0.1:7000"]);
/// assert!(certified.admits("10.0.0.1:7000", Some(&proven)));
/// assert!(!certified.admits("10.0.0.1:7000", None));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Access {
    admitted: BTreeSet<Principal>,
}

/// One caller a handler may admit.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Principal {
    /// A peer, by its node name (as authenticated by the cluster secret).
    Peer(String),
    /// A caller whose verified transport identity (its certificate) names
    /// this node; see [`PeerIdentity`](crate::PeerIdentity). Never admits a
    /// caller on a transport that verifies no identity.
    Certified(String),
}

impl Access {
    /// Admits nobody: the handler is registered but no peer may call it.
    pub fn nobody() -> Access {
        Access::default()
    }

    /// Admits the peers named.
    pub fn peers<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Access {
        Access::nobody().or_peers(names)
    }

    /// Also admits the peers named.
    pub fn or_peers<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Access {
        self.admitted
            .extend(names.into_iter().map(|name| Principal::Peer(name.into())));
        self
    }

    /// Whether a call from the peer named `peer` is admitted.
    pub fn admits_peer(&self, peer: &str) -> bool {
        self.admits(peer, None)
    }

    /// Admits only callers whose verified identity names one of `nodes`.
    pub fn certified<S: Into<String>>(nodes: impl IntoIterator<Item = S>) -> Access {
        Access::nobody().or_certified(nodes)
    }

    /// Also admits callers whose verified identity names one of `nodes`.
    pub fn or_certified<S: Into<String>>(mut self, nodes: impl IntoIterator<Item = S>) -> Access {
        self.admitted.extend(
            nodes
                .into_iter()
                .map(|name| Principal::Certified(name.into())),
        );
        self
    }

    /// Whether a call from `peer`, over a connection whose transport verified
    /// `identity` (if any), is admitted.
    pub fn admits(&self, peer: &str, identity: Option<&PeerIdentity>) -> bool {
        self.admitted.iter().any(|principal| match principal {
            Principal::Peer(name) => name == peer,
            Principal::Certified(name) => identity.is_some_and(|identity| identity.names(name)),
        })
    }

    /// The principals admitted.
    pub fn principals(&self) -> impl Iterator<Item = &Principal> {
        self.admitted.iter()
    }
}
