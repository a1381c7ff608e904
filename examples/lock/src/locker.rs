//! One lock server as a client sees it: the server of its own node, called
//! directly, or another node's, called over grid.

use std::fmt;
use std::time::Duration;

use grid::typed::TypedError;
use grid::{Manager, Peer, Runtime, UnknownPeer};

use crate::mode::Mode;
use crate::server::LockServer;
use crate::wire::{LockRequest, Refusal, UnlockRequest, LOCK, READ_LOCK, REFRESH, UNLOCK};

/// A lock server the client asks for grants.
#[derive(Clone)]
pub enum Locker {
    /// The server on the client's own node: no call over the network.
    Local(LockServer),
    /// Another node's server.
    Remote(Peer),
}

impl fmt::Debug for Locker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Locker::Local(server) => write!(f, "Local({})", server.node()),
            Locker::Remote(peer) => write!(f, "Remote({})", peer.peer()),
        }
    }
}

/// What one server answered, or why it did not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Answer<T> {
    /// The server did as asked.
    Done(T),
    /// The server refused.
    Refused(Refusal),
    /// No answer: the server is unreachable, too slow, or failed.
    Unreachable(grid::Error),
}

impl<T> Answer<T> {
    fn from_call(result: Result<T, TypedError<Refusal>>) -> Answer<T> {
        match result {
            Ok(value) => Answer::Done(value),
            Err(TypedError::Remote(refusal)) => Answer::Refused(refusal),
            Err(TypedError::Grid(error)) => Answer::Unreachable(error),
        }
    }

    fn from_local(result: Result<T, Refusal>) -> Answer<T> {
        match result {
            Ok(value) => Answer::Done(value),
            Err(refusal) => Answer::Refused(refusal),
        }
    }
}

impl Locker {
    /// The lockers of a cluster whose lock servers run on the nodes named
    /// `servers`, as seen from `node`: `local` for `node` itself if it is one
    /// of them (pass its [`LockServer`]), a [`Peer`] for each other.
    pub fn for_node<R: Runtime, S: AsRef<str>>(
        node: &Manager<R>,
        servers: impl IntoIterator<Item = S>,
        local: Option<&LockServer>,
    ) -> Result<Vec<Locker>, UnknownPeer> {
        servers
            .into_iter()
            .map(|name| match local {
                Some(server) if name.as_ref() == node.name() => Ok(Locker::Local(server.clone())),
                _ => node.peer(name.as_ref()).map(Locker::Remote),
            })
            .collect()
    }

    /// The node this locker's server runs on.
    pub fn node(&self) -> &str {
        match self {
            Locker::Local(server) => server.node(),
            Locker::Remote(peer) => peer.peer(),
        }
    }

    pub(crate) async fn lock(
        &self,
        mode: Mode,
        request: &LockRequest,
        deadline: Duration,
    ) -> Answer<()> {
        match self {
            Locker::Local(server) => Answer::from_local(server.lock(server.node(), request, mode)),
            Locker::Remote(peer) => {
                let def = match mode {
                    Mode::Write => &LOCK,
                    Mode::Read => &READ_LOCK,
                };
                Answer::from_call(peer.call(def, request).timeout(deadline).await)
            }
        }
    }

    pub(crate) async fn refresh(&self, request: &LockRequest, deadline: Duration) -> Answer<()> {
        match self {
            Locker::Local(server) => Answer::from_local(server.refresh(server.node(), request)),
            Locker::Remote(peer) => {
                Answer::from_call(peer.call(&REFRESH, request).timeout(deadline).await)
            }
        }
    }

    pub(crate) async fn unlock(&self, request: &UnlockRequest, deadline: Duration) -> Answer<bool> {
        match self {
            Locker::Local(server) => Answer::Done(server.unlock(server.node(), request)),
            Locker::Remote(peer) => {
                Answer::from_call(peer.call(&UNLOCK, request).timeout(deadline).await)
            }
        }
    }
}
