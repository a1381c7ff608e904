//! What [`Peer::stats`](crate::Peer::stats) reports: the current
//! connection's counters (the protocol's), the peer's history across
//! connections (the peer slot's), and their serialized form for export.

use std::time::Instant;

use grid_proto::Stats;
use serde::ser::{SerializeStruct, Serializer};
use serde::Serialize;

use crate::failure::PeerFailure;

/// State of a peer's connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PeerState {
    /// Calls flow.
    Connected,
    /// The peer is draining: new calls fail with
    /// [`Error::Draining`](crate::Error::Draining).
    PeerDraining,
    /// No connection: calls fail with
    /// [`Error::Disconnected`](crate::Error::Disconnected).
    Disconnected,
}

/// Counters summed over every connection to a peer that has ended, and the
/// current one: they only grow while the node runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PeerTotals {
    /// Bytes written to the peer.
    pub bytes_sent: u64,
    /// Bytes read from the peer.
    pub bytes_received: u64,
    /// Messages (requests, answers, stream messages) queued for the peer.
    pub messages_sent: u64,
    /// Messages received from the peer.
    pub messages_received: u64,
    /// The peer's calls refused with `Overloaded`.
    pub refused_overloaded: u64,
    /// Writes to the peer's sockets (system calls, for TCP).
    pub socket_writes: u64,
}

impl PeerTotals {
    /// Adds a connection's counters.
    pub(crate) fn add(&mut self, stats: &Stats, socket_writes: u64) {
        self.bytes_sent += stats.bytes_sent;
        self.bytes_received += stats.bytes_received;
        self.messages_sent += stats.messages_sent;
        self.messages_received += stats.messages_received;
        self.refused_overloaded += stats.refused_overloaded;
        self.socket_writes += socket_writes;
    }
}

/// Statistics of one peer.
///
/// It serializes (with serde, e.g. to JSON for an admin endpoint) with each
/// [`Instant`] given as its age in seconds when the snapshot was taken:
/// `connected_for_secs`, and `since_secs` inside `last_failure`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerStats {
    /// The peer's node name.
    pub peer: String,
    /// State now.
    pub state: PeerState,
    /// Counters of the current connection (zero when disconnected): bytes and
    /// messages each way, calls and streams in flight, last RTT.
    pub protocol: Stats,
    /// Writes to the current connection's socket (zero when disconnected):
    /// system calls, for TCP. Against `protocol.messages_sent`, how many
    /// frames share one.
    pub socket_writes: u64,
    /// The counters of every connection to the peer so far, this one included.
    pub totals: PeerTotals,
    /// Connections established in total.
    pub connects: u64,
    /// Connections established after the first.
    pub reconnects: u64,
    /// Times this node dialed the peer (zero for the peers that dial this
    /// node: of two nodes, only one dials).
    pub dial_attempts: u64,
    /// When the current connection was established, on the runtime's clock.
    pub connected_since: Option<Instant>,
    /// The last failure to connect, or the last disconnect, and since when
    /// (kept after a reconnect, as the reason of the last disconnect).
    pub last_failure: Option<PeerFailure>,
    /// When this snapshot was taken, on the runtime's clock.
    pub taken_at: Instant,
}

impl PeerStats {
    fn age(&self, at: Instant) -> f64 {
        self.taken_at.saturating_duration_since(at).as_secs_f64()
    }
}

impl Serialize for PeerStats {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("PeerStats", 10)?;
        out.serialize_field("peer", &self.peer)?;
        out.serialize_field("state", &self.state)?;
        out.serialize_field("protocol", &self.protocol)?;
        out.serialize_field("socket_writes", &self.socket_writes)?;
        out.serialize_field("totals", &self.totals)?;
        out.serialize_field("connects", &self.connects)?;
        out.serialize_field("reconnects", &self.reconnects)?;
        out.serialize_field("dial_attempts", &self.dial_attempts)?;
        let connected_for = self.connected_since.map(|since| self.age(since));
        out.serialize_field("connected_for_secs", &connected_for)?;
        let failure = self.last_failure.as_ref().map(|failure| FailureSnapshot {
            kind: failure.kind.code(),
            refusal: failure.kind.refusal_code(),
            reason: &failure.reason,
            since_secs: self.age(failure.since),
            count: failure.count,
        });
        out.serialize_field("last_failure", &failure)?;
        out.end()
    }
}

/// The serialized form of a [`PeerFailure`], its instant made an age.
#[derive(Serialize)]
struct FailureSnapshot<'a> {
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<&'static str>,
    reason: &'a str,
    since_secs: f64,
    count: u64,
}
