//! Who may call a handler: [`Access`], set per route with
//! [`Router::restrict`](crate::Router::restrict).

use std::collections::BTreeSet;

/// The callers a handler admits. A handler without one admits every
/// authenticated peer; with one, any other caller gets
/// [`Error::PermissionDenied`](crate::Error::PermissionDenied), which is not
/// retryable.
///
/// Built from the principals it admits; today a principal is a peer's node
/// name, and [`Principal`] is where certificate identities will be added.
///
/// ```
/// use grid::Access;
/// let admins = Access::peers(["10.0.0.1:7000", "10.0.0.2:7000"]);
/// assert!(admins.admits_peer("10.0.0.1:7000"));
/// assert!(!admins.admits_peer("10.0.0.3:7000"));
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
        self.admitted
            .iter()
            .any(|principal| matches!(principal, Principal::Peer(name) if name == peer))
    }

    /// The principals admitted.
    pub fn principals(&self) -> impl Iterator<Item = &Principal> {
        self.admitted.iter()
    }
}
