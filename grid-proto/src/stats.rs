//! Counters and gauges of one connection.

use std::time::Duration;

/// A snapshot of a connection's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Stats {
    /// Bytes handed to the driver for writing.
    pub bytes_sent: u64,
    /// Bytes received from the driver.
    pub bytes_received: u64,
    /// Requests, responses, errors and stream messages queued for the peer.
    pub messages_sent: u64,
    /// Requests, responses, errors and stream messages received from the peer.
    pub messages_received: u64,
    /// Calls this side opened that have not ended.
    pub outgoing_calls: usize,
    /// Of those, streams.
    pub outgoing_streams: usize,
    /// Calls the peer opened that the application has not ended.
    pub incoming_calls: usize,
    /// Of those, streams.
    pub incoming_streams: usize,
    /// Received bytes not yet read by the application (stream messages and
    /// partly reassembled messages).
    pub buffered_bytes: usize,
    /// Bytes queued for sending.
    pub send_buffered: usize,
    /// Bytes queued for sending and not yet handed out by `poll_transmit`,
    /// answers and control frames included: what
    /// [`crate::Limits::max_outbound_backlog`] bounds.
    pub outbound_backlog: usize,
    /// Of the outbound backlog, bytes of control frames (pongs, credits,
    /// refusals) not yet handed out: what
    /// [`crate::Limits::max_control_backlog`] bounds.
    pub control_backlog: usize,
    /// Payload bytes of incoming calls the application holds: what
    /// [`crate::Limits::max_held_request_bytes`] bounds.
    pub held_request_bytes: usize,
    /// Incoming calls refused with `Overloaded`: over `max_incoming_calls`,
    /// `max_incoming_streams`, `max_held_request_bytes` or
    /// `max_outbound_backlog`.
    pub refused_overloaded: u64,
    /// Latest keepalive round-trip time (serialized as `rtt_secs`, a
    /// number of seconds).
    #[cfg_attr(
        feature = "serde",
        serde(rename = "rtt_secs", serialize_with = "serialize_secs")
    )]
    pub rtt: Option<Duration>,
}

#[cfg(feature = "serde")]
fn serialize_secs<S: serde::Serializer>(
    duration: &Option<Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match duration {
        Some(duration) => serializer.serialize_some(&duration.as_secs_f64()),
        None => serializer.serialize_none(),
    }
}
