//! The fixed frame header and the operation codes of the wire format.
//!
//! Every frame is a 14-byte header followed by `len` payload bytes. The layout
//! is normative and described in `PROTOCOL.md`; this module is its code.

use bytes::BufMut;

/// Size in bytes of the fixed frame header.
pub const HEADER_LEN: usize = 14;

/// Frame flag: more fragments of the same message follow on this mux.
pub const FLAG_MORE: u8 = 0x01;

/// Every flag bit this version understands; any other bit set is a protocol error,
/// so that a future flag can never be silently misread as "no flag".
pub(crate) const KNOWN_FLAGS: u8 = FLAG_MORE;

/// Bit 31 of a mux id: set when the id was allocated by the accepting side of the
/// connection, clear when allocated by the dialing side. The two sides therefore
/// can never allocate the same id, and a frame tells by itself whose call it is about.
pub(crate) const ACCEPTOR_NAMESPACE: u32 = 1 << 31;

/// Operation code of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Op {
    /// Handshake: version, identity, nonce and limits.
    Hello = 0x01,
    /// Handshake: proof of knowledge of the cluster secret.
    Auth = 0x02,
    /// Handshake refused, with a readable reason.
    Reject = 0x03,
    /// Opens a single request.
    Request = 0x10,
    /// Successful answer to a single request.
    Response = 0x11,
    /// Ends a call with an error (code in `arg`).
    Error = 0x12,
    /// Opens a stream.
    StreamOpen = 0x13,
    /// One stream message (sequence number in `arg`).
    Message = 0x14,
    /// Grants the peer more stream messages (count in `arg`).
    Credit = 0x15,
    /// Ends the sender's direction of a stream (messages sent in `arg`).
    Fin = 0x16,
    /// Cancels (sent by the initiator) or resets (sent by the responder) a call.
    Cancel = 0x17,
    /// Several stream messages in one frame, each a `u32` little-endian length
    /// and its bytes (sequence number of the first in `arg`).
    Messages = 0x18,
    /// Keepalive probe (id in `arg`).
    Ping = 0x20,
    /// Keepalive answer echoing the probe's id.
    Pong = 0x21,
    /// The sender is draining: send it no new calls.
    GoAway = 0x22,
    /// The sender is closing the connection (code in `arg`, reason in payload).
    Close = 0x23,
}

impl Op {
    /// Decodes an op byte; `None` for an unknown op.
    pub fn from_u8(byte: u8) -> Option<Op> {
        Some(match byte {
            0x01 => Op::Hello,
            0x02 => Op::Auth,
            0x03 => Op::Reject,
            0x10 => Op::Request,
            0x11 => Op::Response,
            0x12 => Op::Error,
            0x13 => Op::StreamOpen,
            0x14 => Op::Message,
            0x15 => Op::Credit,
            0x16 => Op::Fin,
            0x17 => Op::Cancel,
            0x18 => Op::Messages,
            0x20 => Op::Ping,
            0x21 => Op::Pong,
            0x22 => Op::GoAway,
            0x23 => Op::Close,
            _ => return None,
        })
    }

    /// Whether a frame with this op may be split into several fragments.
    pub(crate) fn may_fragment(self) -> bool {
        matches!(
            self,
            Op::Request | Op::Response | Op::Error | Op::StreamOpen | Op::Message
        )
    }
}

/// A decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Payload length in bytes.
    pub len: u32,
    /// Operation.
    pub op: Op,
    /// Flag bits (`FLAG_MORE`).
    pub flags: u8,
    /// Mux id; 0 for connection-level frames.
    pub mux: u32,
    /// Op-specific argument: deadline, sequence number, credit, code or ping id.
    pub arg: u32,
}

impl Header {
    /// Appends the 14 header bytes to `out`.
    #[inline]
    pub fn encode(&self, out: &mut impl BufMut) {
        // One append of the whole header instead of five small ones.
        let mut bytes = [0u8; HEADER_LEN];
        bytes[0..4].copy_from_slice(&self.len.to_le_bytes());
        bytes[4] = self.op as u8;
        bytes[5] = self.flags;
        bytes[6..10].copy_from_slice(&self.mux.to_le_bytes());
        bytes[10..14].copy_from_slice(&self.arg.to_le_bytes());
        out.put_slice(&bytes);
    }

    /// Parses the fixed header. Fails on an unknown op or unknown flag bits.
    pub fn decode(bytes: &[u8; HEADER_LEN]) -> Result<Header, FrameError> {
        let [l0, l1, l2, l3, op, flags, m0, m1, m2, m3, a0, a1, a2, a3] = *bytes;
        let op = Op::from_u8(op).ok_or(FrameError::UnknownOp(op))?;
        if flags & !KNOWN_FLAGS != 0 {
            return Err(FrameError::UnknownFlags(flags));
        }
        Ok(Header {
            len: u32::from_le_bytes([l0, l1, l2, l3]),
            op,
            flags,
            mux: u32::from_le_bytes([m0, m1, m2, m3]),
            arg: u32::from_le_bytes([a0, a1, a2, a3]),
        })
    }

    /// Whether more fragments of this message follow.
    pub fn more(&self) -> bool {
        self.flags & FLAG_MORE != 0
    }
}

/// A malformed frame. Each one closes the connection: after it the byte stream
/// can no longer be trusted to be in sync.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The op byte names no known operation.
    #[error("unknown frame op 0x{0:02x}")]
    UnknownOp(u8),
    /// Reserved flag bits were set.
    #[error("unknown frame flags 0x{0:02x}")]
    UnknownFlags(u8),
    /// The declared payload length exceeds the configured maximum.
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// Declared length.
        len: u32,
        /// Configured maximum.
        max: u32,
    },
}

/// Appends a whole frame (header and payload) to `out`.
pub(crate) fn encode_frame(
    out: &mut impl BufMut,
    op: Op,
    flags: u8,
    mux: u32,
    arg: u32,
    payload: &[u8],
) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    Header {
        len,
        op,
        flags,
        mux,
        arg,
    }
    .encode(out);
    out.put_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let header = Header {
            len: 0xdead_beef,
            op: Op::Message,
            flags: FLAG_MORE,
            mux: ACCEPTOR_NAMESPACE | 7,
            arg: 42,
        };
        let mut buf = Vec::new();
        header.encode(&mut buf);
        assert_eq!(buf.len(), HEADER_LEN);
        let bytes: [u8; HEADER_LEN] = buf.as_slice().try_into().unwrap();
        assert_eq!(Header::decode(&bytes), Ok(header));
    }

    #[test]
    fn every_op_byte_round_trips_and_unknown_ones_fail() {
        for byte in 0..=u8::MAX {
            match Op::from_u8(byte) {
                Some(op) => assert_eq!(op as u8, byte),
                None => {
                    let mut bytes = [0u8; HEADER_LEN];
                    bytes[4] = byte;
                    assert_eq!(Header::decode(&bytes), Err(FrameError::UnknownOp(byte)));
                }
            }
        }
    }

    #[test]
    fn unknown_flags_are_rejected() {
        let mut bytes = [0u8; HEADER_LEN];
        bytes[4] = Op::Ping as u8;
        bytes[5] = 0x80;
        assert_eq!(Header::decode(&bytes), Err(FrameError::UnknownFlags(0x80)));
    }
}
