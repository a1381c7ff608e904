//! Configuration of one connection: identity, secret, timeouts and limits.
//!
//! Every limit exists to stop a specific misbehaviour of a peer (or of a local
//! application); its doc comment says which, and what happens when it is hit.

use std::sync::Arc;
use std::time::Duration;

/// Which end of the TCP connection this side is. The dialer's mux ids have bit 31
/// clear, the acceptor's have it set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// This side opened the connection.
    Dialer,
    /// This side accepted the connection.
    Acceptor,
}

/// Limits on what a peer may make this side hold or do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame payload accepted, in bytes. Default 64 KiB.
    ///
    /// Checked on the header before the payload is buffered, so a peer cannot
    /// make the decoder reserve memory by announcing a huge frame. Larger
    /// messages travel as several fragments. Exceeding it closes the connection.
    pub max_frame_size: u32,
    /// Largest message (request, response or stream message) accepted after
    /// reassembly, in bytes. Default 16 MiB.
    ///
    /// Stops a peer from making this side assemble unbounded messages. Announced
    /// in the handshake, so a sender fails a too-large message locally with
    /// [`crate::Error::TooLarge`]; a peer that sends one anyway breaks the
    /// protocol and the connection is closed.
    pub max_message_size: u32,
    /// Most concurrent incoming calls (requests and streams). Default 4096.
    ///
    /// Stops a peer from starting unbounded work here. A call over the limit is
    /// answered at once with `Overloaded`, never queued. A call counts until the
    /// local application ends it, even if the peer cancelled it, so open-cancel
    /// floods cannot bypass the limit.
    pub max_incoming_calls: u32,
    /// Most concurrent incoming streams, within `max_incoming_calls`. Default 1024.
    ///
    /// Streams hold buffers for longer than requests do. Excess streams are
    /// answered at once with `Overloaded`.
    pub max_incoming_streams: u32,
    /// Most bytes of input received and not yet consumed: stream messages the
    /// application has not read, and partly reassembled messages of any call.
    /// Default 256 MiB.
    ///
    /// Stops a peer that sends faster than the application reads from growing
    /// this side's memory: credits bound messages per stream, this bounds
    /// their bytes over all streams, and it bounds half-received messages too.
    /// Exceeding it closes the connection with `LimitExceeded`. Payloads of
    /// incoming calls handed to the application are counted by
    /// `max_held_request_bytes` instead.
    pub max_buffered_bytes: usize,
    /// Most bytes of payloads of incoming calls (request bodies and stream-open
    /// payloads) delivered to the application whose call has not ended yet:
    /// its handler may still hold them. Default 256 MiB.
    ///
    /// Stops a peer from sending large requests to a handler that waits,
    /// which `max_incoming_calls` alone bounds only at calls times
    /// `max_message_size` (64 GiB by default). A call is admitted only if its
    /// payload keeps the total within this bound; otherwise it is refused at
    /// once with the retryable `Overloaded`, and the connection goes on. The
    /// bytes are released when the call ends (answered, failed, cancelled by
    /// the application, or the connection closed).
    pub max_held_request_bytes: usize,
    /// Most bytes queued for sending and not yet handed out by
    /// [`crate::Connection::poll_transmit`]: answers, protocol replies,
    /// control frames and stream data together. Default 64 MiB.
    ///
    /// Stops a peer that sends requests and never reads the answers from
    /// making this side queue every answer. While the backlog is over this
    /// bound, new incoming calls are refused at once with the retryable
    /// `Overloaded` (input is still read, so pings, credits, cancels and the
    /// answers to this side's own calls still flow), and this side's own
    /// calls and stream messages are refused with
    /// [`crate::CommandError::SendBufferFull`]. Answers of calls already
    /// admitted are still queued, since dropping them would lose data: the
    /// overshoot is bounded by the answers of the calls running at the time,
    /// and a backlog that stays over the bound for `Timeouts::write_stall`
    /// closes the connection with `PeerTooSlow`.
    pub max_outbound_backlog: usize,
    /// Most bytes this side queues for sending before commands that add data
    /// are refused with [`crate::CommandError::SendBufferFull`]. Default 32 MiB.
    ///
    /// Stops a fast local producer from growing memory without bound when the
    /// socket is slow; [`crate::Event::Writable`] says when to try again.
    pub send_buffer_size: usize,
    /// The receive window every stream starts with, in bytes. Default
    /// [`DEFAULT_STREAM_WINDOW_START`], 64 KiB.
    ///
    /// A stream's window (set when it is opened or accepted) is the most it
    /// grows to: it starts here and doubles while doubling raises the rate at
    /// which the application reads the stream (PROTOCOL.md §8.2). A stream
    /// between two tasks on one thread stays small, so a small call on the
    /// same connection does not wait behind a large window of stream data;
    /// one across threads or hosts grows until the window covers the round
    /// trip. At or above a stream's window, the window is fixed.
    pub stream_window_start: u32,
    /// Most bytes of frames that the peer's traffic makes this side queue (pongs,
    /// overload rejections, credit grants) while the driver is not writing.
    /// Default 4 MiB.
    ///
    /// Stops a peer that sends but never reads from growing this side's memory.
    /// Exceeding it closes the connection.
    pub max_control_backlog: usize,
    /// Burst of cheap frames accepted: pings, pongs that answer no recent
    /// ping, repeated goaways, zero credits, empty messages and empty
    /// fragments, and refused calls. Default 20 000.
    ///
    /// Such frames cost the sender nothing and this side work; a peer that sends
    /// them faster than `cheap_frames_per_second` beyond this burst is closed.
    pub cheap_frame_burst: u32,
    /// Sustained rate of cheap frames accepted, per second. Default 10 000.
    pub cheap_frames_per_second: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_size: 64 * 1024,
            max_message_size: 16 * 1024 * 1024,
            max_incoming_calls: 4096,
            max_incoming_streams: 1024,
            max_buffered_bytes: 256 * 1024 * 1024,
            max_held_request_bytes: 256 * 1024 * 1024,
            max_outbound_backlog: 64 * 1024 * 1024,
            send_buffer_size: 32 * 1024 * 1024,
            stream_window_start: DEFAULT_STREAM_WINDOW_START,
            max_control_backlog: 4 * 1024 * 1024,
            cheap_frame_burst: 20_000,
            cheap_frames_per_second: 10_000,
        }
    }
}

/// Timing of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Time allowed for the handshake. Default 10 s. Stops a peer (or a port
    /// scanner) from holding a half-open connection.
    pub handshake: Duration,
    /// Interval between keepalive pings. Default 5 s. Also measures RTT.
    pub keepalive_interval: Duration,
    /// The connection closes when nothing has been received, or a ping has gone
    /// unanswered, for this long. Default 20 s. A dead peer is therefore
    /// detected within `idle + keepalive_interval`, calls or no calls.
    pub idle: Duration,
    /// Deadline of a call whose caller gives none. Default 60 s.
    pub default_deadline: Duration,
    /// Longest deadline accepted, for outgoing and incoming calls. Default 1 h.
    /// Stops a peer from holding a call slot here forever.
    pub max_deadline: Duration,
    /// How long queued output may go without progress. Default 30 s.
    ///
    /// Stops a stuck reader (a peer that answers pings, or keeps sending, but
    /// never reads) from holding this side's queued output: when output is
    /// queued and [`crate::Connection::poll_transmit`] has handed out nothing
    /// for this long, the connection closes with
    /// [`crate::CloseReason::PeerNotReading`]. It also bounds a too-slow
    /// reader: when the outbound backlog stays above
    /// `Limits::max_outbound_backlog` for this long (the peer reads, but
    /// slower than `max_outbound_backlog / write_stall`), the connection
    /// closes with [`crate::CloseReason::PeerTooSlow`]. Received pings and
    /// pongs do not reset either clock. The driver must take output only when
    /// its transport accepted earlier output, so that handing out means
    /// progress.
    pub write_stall: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            handshake: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(5),
            idle: Duration::from_secs(20),
            default_deadline: Duration::from_secs(60),
            max_deadline: Duration::from_secs(3600),
            write_stall: Duration::from_secs(30),
        }
    }
}

/// Largest frame payload this side sends, in bytes. Default 64 KiB, the
/// default `max_frame_size`.
///
/// Smaller fragments let small calls overtake bulk transfers sooner; larger
/// ones let a message up to the fragment size travel whole and be handed to
/// the receiver without reassembly (a copy per byte). A 64 KiB fragment
/// occupies a loopback link for about 10 us and a 10 Gbit/s link for about
/// 50 us, which bounds how long one bulk mux delays a small call.
pub const DEFAULT_FRAGMENT_SIZE: u32 = 64 * 1024;

/// Receive window a stream grants when its application sets none, in bytes:
/// 1 MiB.
///
/// A stream carries at most about one window per round trip, and its
/// receiver holds at most one window plus one message of it. On loopback a
/// round trip of a loaded connection is around 100 us, so 1 MiB allows about
/// 10 GB/s, above what TCP over loopback carries, while 32-byte messages (64
/// bytes of credit each) fill it with 16 384 messages. A link with a larger
/// bandwidth-delay product (10 Gbit/s over 1 ms is 1.25 MB) wants a larger
/// window. Many streams that are not read are bounded together by
/// `Limits::max_buffered_bytes`.
pub const DEFAULT_STREAM_WINDOW: u32 = 1024 * 1024;

/// Default of [`Limits::stream_window_start`]: where a stream's receive window
/// starts before it is tuned. One 64 KiB message, or 1024 of 32 B.
pub const DEFAULT_STREAM_WINDOW_START: u32 = 64 * 1024;

/// Shortest cluster secret a node accepts, in bytes.
///
/// The handshake proofs are HMACs over transcripts that an eavesdropper (or a
/// peer that completes the handshake) sees, so a short secret can be guessed
/// offline. 16 bytes of randomness put that out of reach; 32 random bytes are
/// better. grid-proto itself does not refuse a shorter secret (tests and test
/// vectors use short ones); a node checks this when it starts.
pub const MIN_SECRET_LEN: usize = 16;

/// Everything a connection needs to know before its first byte.
#[derive(Clone, Debug)]
pub struct Config {
    /// This node's name, as the peer knows it (e.g. `"node-a:7000"`).
    pub node_name: String,
    /// Identifies this run of the node: a restarted node has a new one, so peers
    /// can tell a restart from a reconnect.
    pub instance_id: u64,
    /// The cluster secret both sides must know.
    pub secret: Arc<[u8]>,
    /// Which end of the connection this side is.
    pub role: Role,
    /// When set, the handshake is rejected unless the peer names itself so.
    /// A dialer sets it to the node it meant to reach.
    pub expected_peer: Option<String>,
    /// Fresh randomness for this connection (the handshake nonce derives from
    /// it). The driver must supply unpredictable bytes: a repeated seed lets a
    /// recorded handshake be replayed.
    pub seed: [u8; 32],
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Limits.
    pub limits: Limits,
    /// Largest fragment this side sends (further bounded by the peer's
    /// `max_frame_size`). Default [`DEFAULT_FRAGMENT_SIZE`].
    pub fragment_size: u32,
}

impl Config {
    /// A configuration with default timeouts and limits.
    pub fn new(
        node_name: impl Into<String>,
        instance_id: u64,
        secret: impl Into<Arc<[u8]>>,
        role: Role,
        seed: [u8; 32],
    ) -> Config {
        Config {
            node_name: node_name.into(),
            instance_id,
            secret: secret.into(),
            role,
            expected_peer: None,
            seed,
            timeouts: Timeouts::default(),
            limits: Limits::default(),
            fragment_size: DEFAULT_FRAGMENT_SIZE,
        }
    }
}
