//! Errors of calls and commands, their wire codes, and why a connection closed.

use bytes::Bytes;

/// Why a call failed: what ends a call.
///
/// One enum for every outcome other than success that a caller or a handler
/// can see: a handler's own error is [`Error::Remote`]; everything else is a
/// condition of the library, local or reported by the peer. What a command
/// refuses without ending a call is a [`CommandError`]; what ends the whole
/// connection is a [`CloseReason`].
///
/// Each message says what to do where there is something to do, and names
/// the peer and handler where the error carries them (the variants with
/// text). [`Error::is_retryable`] tells a retry loop whether to go on. New
/// variants may be added: match with a wildcard arm.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The remote handler returned an error; its bytes are passed through untouched.
    #[error("remote handler error: {}", String::from_utf8_lossy(.0))]
    Remote(Bytes),
    /// The connection is not established or was lost while the call was in flight.
    #[error(
        "disconnected: no connection to the peer; retry once it reconnects, or on another node"
    )]
    Disconnected,
    /// The deadline passed before the call completed (or was under 1 ms to begin with).
    #[error("deadline exceeded: the call did not complete in time")]
    DeadlineExceeded,
    /// The other side of the call cancelled or reset it.
    #[error("cancelled by the other side of the call")]
    Cancelled,
    /// No handler is registered under the requested id and subroute.
    #[error("unknown handler: the peer has no handler for this id and subroute (check that both nodes register it)")]
    UnknownHandler,
    /// The peer is at its limit of concurrent calls or streams; retry later.
    #[error("overloaded: the peer is at its limit of concurrent calls; retry later")]
    Overloaded,
    /// The peer, or this side, is draining before shutdown; retry on another node
    /// or after it comes back.
    #[error("draining: the node is shutting down; retry on another node or after it restarts")]
    Draining,
    /// The peer broke the protocol on this call.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A message is larger than the receiving side accepts.
    #[error("message of {size} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// Size of the message.
        size: usize,
        /// The limit it exceeds.
        max: usize,
    },
    /// A payload could not be decoded as the type the handler or caller
    /// expects; the text names the handler and the type.
    #[error("decode error: {0}")]
    Decode(String),
    /// A value could not be encoded for sending (by this side, or by the
    /// remote handler for its answer); the text names the handler and the type.
    #[error("encode error: {0}")]
    Encode(String),
    /// The handler is limited to certain callers and this node is not one of
    /// them. The text, written by the responder, names the handler and the
    /// caller. Not retryable: only a change of the responder's
    /// configuration admits the call.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The responder failed without a handler error, e.g. its handler
    /// panicked. The text is the responder's and never the panic's own
    /// message: the details are in the responder's log.
    #[error("remote internal error: {0}")]
    Internal(String),
    /// The peer cannot be reached because authentication fails: it refused
    /// this node's proof of the cluster secret. Produced by grid's peer
    /// handle while no connection is up for that reason; the text names the
    /// peer and what to check. Not retryable until the secrets agree.
    #[error("not authenticated: {0}")]
    Unauthenticated(String),
}

/// Why a command was refused. A refused command changed nothing, except as
/// each variant says.
///
/// The first two are back-pressure: wait for the event named and issue the
/// command again. The others are final for the command on that call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The send buffer is full: wait for [`crate::Event::Writable`] and try again.
    #[error("send buffer full")]
    SendBufferFull,
    /// The stream has no send credit left: wait for
    /// [`crate::Event::StreamWritable`] and try again.
    #[error("no stream credit")]
    NoCredit,
    /// The id names no call this side holds in that role: it never existed, or
    /// it was answered, cancelled or released.
    #[error("no such call")]
    UnknownCall,
    /// This side already finished its output on the stream.
    #[error("this side already finished sending")]
    Finished,
    /// The stream ended normally: the peer takes no more messages.
    #[error("the stream has ended")]
    Ended,
    /// The call cannot go on, or cannot be opened, for this reason: its
    /// outcome (e.g. [`Error::Cancelled`], [`Error::Disconnected`]) or a
    /// refusal of this one command (e.g. [`Error::TooLarge`] for a payload).
    #[error(transparent)]
    Call(#[from] Error),
}

impl CommandError {
    /// Whether the command may succeed later without anything else changing:
    /// the refusal is back-pressure.
    pub fn is_backpressure(&self) -> bool {
        matches!(self, CommandError::SendBufferFull | CommandError::NoCredit)
    }
}

impl Error {
    /// Whether retrying the same call later, or on another node, may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Disconnected | Error::Overloaded | Error::Draining
        )
    }

    /// The wire code and message of an error carried by an `Error` frame.
    pub(crate) fn to_wire(&self) -> (ErrorCode, Bytes) {
        match self {
            Error::Remote(message) => (ErrorCode::Handler, message.clone()),
            Error::UnknownHandler => (ErrorCode::UnknownHandler, Bytes::new()),
            Error::Overloaded => (ErrorCode::Overloaded, Bytes::new()),
            Error::Draining => (ErrorCode::Draining, Bytes::new()),
            Error::DeadlineExceeded => (ErrorCode::DeadlineExceeded, Bytes::new()),
            Error::TooLarge { size, max } => {
                let mut sizes = Vec::with_capacity(16);
                sizes.extend_from_slice(&(*size as u64).to_le_bytes());
                sizes.extend_from_slice(&(*max as u64).to_le_bytes());
                (ErrorCode::TooLarge, Bytes::from(sizes))
            }
            Error::Protocol(reason) => (ErrorCode::Protocol, Bytes::from(reason.clone())),
            Error::Decode(reason) => (ErrorCode::Decode, Bytes::from(reason.clone())),
            Error::Encode(reason) => (ErrorCode::Encode, Bytes::from(reason.clone())),
            Error::PermissionDenied(reason) => {
                (ErrorCode::PermissionDenied, Bytes::from(reason.clone()))
            }
            Error::Internal(reason) => (ErrorCode::Internal, Bytes::from(reason.clone())),
            // Never produced by a responder; should an application fail a
            // call with one, the opener gets a readable internal error.
            Error::Cancelled | Error::Disconnected | Error::Unauthenticated(_) => {
                (ErrorCode::Internal, Bytes::from(self.to_string()))
            }
        }
    }

    /// The error a caller sees for an `Error` frame with this code and payload.
    pub(crate) fn from_wire(code: u32, message: Bytes) -> Error {
        match ErrorCode::from_u32(code) {
            Some(ErrorCode::Handler) => Error::Remote(message),
            Some(ErrorCode::UnknownHandler) => Error::UnknownHandler,
            Some(ErrorCode::Overloaded) => Error::Overloaded,
            Some(ErrorCode::Draining) => Error::Draining,
            Some(ErrorCode::DeadlineExceeded) => Error::DeadlineExceeded,
            Some(ErrorCode::TooLarge) => {
                let word = |at: usize| {
                    message
                        .get(at..at + 8)
                        .and_then(|raw| <[u8; 8]>::try_from(raw).ok())
                        .map_or(0, |raw| {
                            usize::try_from(u64::from_le_bytes(raw)).unwrap_or(usize::MAX)
                        })
                };
                Error::TooLarge {
                    size: word(0),
                    max: word(8),
                }
            }
            Some(ErrorCode::Protocol) => {
                Error::Protocol(String::from_utf8_lossy(&message).into_owned())
            }
            Some(ErrorCode::Decode) => {
                Error::Decode(String::from_utf8_lossy(&message).into_owned())
            }
            Some(ErrorCode::Encode) => {
                Error::Encode(String::from_utf8_lossy(&message).into_owned())
            }
            Some(ErrorCode::PermissionDenied) => {
                Error::PermissionDenied(String::from_utf8_lossy(&message).into_owned())
            }
            Some(ErrorCode::Internal) => {
                Error::Internal(String::from_utf8_lossy(&message).into_owned())
            }
            None => Error::Remote(message),
        }
    }
}

/// The code in the `arg` field of an `Error` frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ErrorCode {
    /// The handler returned an error; the payload is its bytes.
    Handler = 0,
    /// No handler for the requested id and subroute.
    UnknownHandler = 1,
    /// Too many concurrent calls or streams.
    Overloaded = 2,
    /// The responder is draining.
    Draining = 3,
    /// The deadline passed at the responder.
    DeadlineExceeded = 4,
    /// The request exceeded the responder's message limit.
    TooLarge = 5,
    /// The initiator broke the protocol on this call.
    Protocol = 6,
    /// The responder failed in a way that has no better code (e.g. a handler panic).
    Internal = 7,
    /// The responder could not decode the request as its handler's type.
    Decode = 8,
    /// The responder could not encode its handler's answer.
    Encode = 9,
    /// The handler does not admit this caller. Peers older than this code
    /// see it as an unknown code, i.e. a handler error carrying the text.
    PermissionDenied = 10,
}

impl ErrorCode {
    fn from_u32(code: u32) -> Option<ErrorCode> {
        Some(match code {
            0 => ErrorCode::Handler,
            1 => ErrorCode::UnknownHandler,
            2 => ErrorCode::Overloaded,
            3 => ErrorCode::Draining,
            4 => ErrorCode::DeadlineExceeded,
            5 => ErrorCode::TooLarge,
            6 => ErrorCode::Protocol,
            7 => ErrorCode::Internal,
            8 => ErrorCode::Decode,
            9 => ErrorCode::Encode,
            10 => ErrorCode::PermissionDenied,
            _ => return None,
        })
    }
}

/// The reason a `Reject` gives when the peer's proof does not verify; a
/// `Reject` whose reason starts with [`AUTH_FAILED_PREFIX`] is reported as
/// [`CloseReason::SecretRefused`] by its receiver (PROTOCOL.md §5.4).
pub(crate) const AUTH_FAILED_PEER: &str =
    "authentication failed: the peer does not know the cluster secret";

/// How every `Reject` for a failed proof begins.
pub(crate) const AUTH_FAILED_PREFIX: &str = "authentication failed";

/// Why a connection closed. Carried in `Close` and `Reject` frames as a code and
/// a readable reason, so the operator on either side can see what happened.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CloseReason {
    /// This side asked to close.
    #[error("closed locally: {0}")]
    Local(String),
    /// The peer closed the connection and said why.
    #[error("closed by peer: {0}")]
    Peer(String),
    /// The peer refused the handshake, or this side refused the peer's, for
    /// a reason other than authentication (version, names, limits, a frame
    /// out of place).
    #[error("handshake rejected: {0}")]
    Rejected(String),
    /// This side could not verify the peer's proof: the peer does not know
    /// the cluster secret, or this node's secret differs from the cluster's.
    #[error("authentication failed: the peer does not know the cluster secret; check that every node has the same secret")]
    PeerUnauthenticated,
    /// The peer refused this side's proof (its `Reject` began with
    /// `authentication failed`): this node's secret was refused. The text is
    /// the peer's.
    #[error("this node's secret was refused by the peer ({0}); check that every node has the same secret")]
    SecretRefused(String),
    /// The handshake did not complete within the configured time.
    #[error("handshake timed out")]
    HandshakeTimeout,
    /// Nothing was heard from the peer, or a ping went unanswered, for longer
    /// than the idle timeout.
    #[error("peer unresponsive for {0:?}")]
    PeerTimeout(std::time::Duration),
    /// The peer sent something the protocol forbids.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The peer exceeded a connection-level limit.
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    /// A graceful drain completed (or hit its deadline) and the connection closed.
    #[error("drained")]
    Drained,
    /// The transport (socket) failed or reached end of file; reported by the driver.
    #[error("transport closed: {0}")]
    Transport(String),
    /// Output was queued and none of it could be handed to the transport for
    /// this long (`Timeouts::write_stall`): the peer stopped reading.
    #[error("peer not reading: queued output made no progress for {0:?}")]
    PeerNotReading(std::time::Duration),
    /// The outbound backlog stayed over `Limits::max_outbound_backlog` for
    /// `Timeouts::write_stall`: the peer reads, but too slowly. The text gives
    /// the rate.
    #[error("peer too slow: {0}")]
    PeerTooSlow(String),
    /// An authenticated connection was refused after the handshake, by this
    /// side or by the peer (decoded from the `Close` code).
    #[error("refused ({0}): {1}")]
    Refused(Refusal, String),
}

/// Why an authenticated connection is refused after its handshake. Each has
/// its own `Close` code, so the refused side can tell them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The peer's name is not among this node's peers. Code 9.
    #[error("not a peer")]
    NotAPeer,
    /// The peer dialed, but the dial rule says this node dials it. Code 10.
    #[error("wrong side")]
    WrongSide,
    /// This node is shutting down. Code 11.
    #[error("shutting down")]
    ShuttingDown,
    /// A newer connection from the same peer replaced this one. Code 12.
    #[error("replaced")]
    Replaced,
    /// A connection from this peer replaced another too recently: this one is
    /// refused and the current one stays. Retry later. Code 13.
    #[error("replacing too often")]
    ReplacingTooOften,
    /// The transport verified the peer's identity (a TLS certificate), and
    /// it does not name the node the peer claims to be. Code 14.
    #[error("identity mismatch")]
    IdentityMismatch,
}

impl Refusal {
    /// The `Close` code that carries this refusal.
    pub fn wire_code(self) -> u32 {
        match self {
            Refusal::NotAPeer => 9,
            Refusal::WrongSide => 10,
            Refusal::ShuttingDown => 11,
            Refusal::Replaced => 12,
            Refusal::ReplacingTooOften => 13,
            Refusal::IdentityMismatch => 14,
        }
    }

    /// The refusal a `Close` code carries, if it carries one.
    pub fn from_wire_code(code: u32) -> Option<Refusal> {
        Some(match code {
            9 => Refusal::NotAPeer,
            10 => Refusal::WrongSide,
            11 => Refusal::ShuttingDown,
            12 => Refusal::Replaced,
            13 => Refusal::ReplacingTooOften,
            14 => Refusal::IdentityMismatch,
            _ => return None,
        })
    }
}

impl CloseReason {
    pub(crate) fn wire_code(&self) -> u32 {
        match self {
            CloseReason::Local(_) => 0,
            CloseReason::Peer(_) => 0,
            CloseReason::Rejected(_)
            | CloseReason::PeerUnauthenticated
            | CloseReason::SecretRefused(_) => 1,
            CloseReason::HandshakeTimeout => 2,
            CloseReason::PeerTimeout(_) => 3,
            CloseReason::Protocol(_) => 4,
            CloseReason::LimitExceeded(_) => 5,
            CloseReason::Drained => 6,
            CloseReason::Transport(_) => 0,
            CloseReason::PeerNotReading(_) => 7,
            CloseReason::PeerTooSlow(_) => 8,
            CloseReason::Refused(refusal, _) => refusal.wire_code(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_errors_round_trip_to_the_same_variant() {
        let errors = [
            Error::Remote(Bytes::from_static(b"disk full")),
            Error::UnknownHandler,
            Error::Overloaded,
            Error::Draining,
            Error::DeadlineExceeded,
            Error::Protocol("bad seq".into()),
            Error::TooLarge {
                size: 70_000,
                max: 65_536,
            },
            Error::Decode("handler 3 expected u32".into()),
            Error::Encode("handler 3 cannot encode a map with non-string keys".into()),
            Error::PermissionDenied("handler 7 on b does not admit a".into()),
            Error::Internal("handler 7 on b panicked".into()),
        ];
        for error in errors {
            let (code, message) = error.to_wire();
            assert_eq!(Error::from_wire(code as u32, message), error);
        }
    }

    #[test]
    fn only_transient_conditions_are_retryable() {
        assert!(Error::Disconnected.is_retryable());
        assert!(!Error::PermissionDenied("x".into()).is_retryable());
        assert!(!Error::Unauthenticated("x".into()).is_retryable());
        assert!(!Error::Internal("x".into()).is_retryable());
    }

    #[test]
    fn unknown_codes_surface_as_remote_errors() {
        let error = Error::from_wire(999, Bytes::from_static(b"new"));
        assert_eq!(error, Error::Remote(Bytes::from_static(b"new")));
    }
}
