//! Frames as PROTOCOL.md §3 lays them out, encoded and decoded here from the
//! specification alone: the hostile peer must not share a single line of
//! framing with the node it attacks, or a bug in one would hide in the other.

/// Operation codes (PROTOCOL.md §3.3).
pub mod op {
    /// The first frame of each side (§5.1).
    pub const HELLO: u8 = 0x01;
    /// A handshake proof (§5.2).
    pub const AUTH: u8 = 0x02;
    /// A handshake refusal with its reason (§5.4).
    pub const REJECT: u8 = 0x03;
    /// Opens a single request.
    pub const REQUEST: u8 = 0x10;
    /// Ends a call with an error code.
    pub const ERROR: u8 = 0x12;
    /// Opens a stream.
    pub const STREAM_OPEN: u8 = 0x13;
    /// Grants stream messages.
    pub const CREDIT: u8 = 0x15;
    /// Cancels a call.
    pub const CANCEL: u8 = 0x17;
    /// A keepalive ping.
    pub const PING: u8 = 0x20;
    /// Answers a ping.
    pub const PONG: u8 = 0x21;
    /// Ends the connection with a code and a reason (§12.2).
    pub const CLOSE: u8 = 0x23;
}

/// Close codes (PROTOCOL.md §12.2, with the refusals and the write-stall rules).
pub mod close_code {
    /// A connection-level limit was exceeded.
    pub const LIMIT_EXCEEDED: u32 = 5;
    /// Queued output made no progress for the write-stall timeout.
    pub const PEER_NOT_READING: u32 = 7;
    /// The outbound backlog drained too slowly.
    pub const PEER_TOO_SLOW: u32 = 8;
    /// A newer connection under the same name replaced this one.
    pub const REPLACED: u32 = 12;
    /// A newcomer claimed a name whose connection was replaced too recently.
    pub const REPLACING_TOO_OFTEN: u32 = 13;
}

/// `Error` frame codes (PROTOCOL.md §10.1).
pub mod error_code {
    /// Over a limit: retryable.
    pub const OVERLOADED: u32 = 2;
    /// The opener broke the protocol on this call.
    pub const PROTOCOL: u32 = 6;
}

/// The `MORE` flag: more fragments of the message follow.
pub(super) const MORE: u8 = 0x01;

/// Size of a frame header.
pub(super) const HEADER_LEN: usize = 14;

/// The frame limit while the handshake is in progress (§5.5).
pub(super) const HANDSHAKE_FRAME_LIMIT: u32 = 1024;

/// One frame: a header's fields and the payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Operation (an [`op`] code).
    pub op: u8,
    /// Flag bits: `MORE` (0x01) or nothing.
    pub flags: u8,
    /// The call's mux id, or 0 for connection-level frames.
    pub mux: u32,
    /// The op's argument: a deadline, a code, a count, a ping id.
    pub arg: u32,
    /// The payload.
    pub payload: Vec<u8>,
}

impl Frame {
    /// A frame without flags.
    pub fn new(op: u8, mux: u32, arg: u32, payload: impl Into<Vec<u8>>) -> Frame {
        Frame {
            op,
            flags: 0,
            mux,
            arg,
            payload: payload.into(),
        }
    }

    /// The same frame with `MORE` set: a fragment that is not the last.
    pub fn more(mut self) -> Frame {
        self.flags |= MORE;
        self
    }

    /// Appends the frame's bytes to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let len = u32::try_from(self.payload.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.push(self.op);
        out.push(self.flags);
        out.extend_from_slice(&self.mux.to_le_bytes());
        out.extend_from_slice(&self.arg.to_le_bytes());
        out.extend_from_slice(&self.payload);
    }

    /// The frame's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.payload.len());
        self.encode_into(&mut out);
        out
    }

    /// The payload as text, for reasons in `Reject` and `Close`.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

/// Encodes several frames into one buffer, so they leave in one write.
pub(super) fn encode_all(frames: &[Frame]) -> Vec<u8> {
    let mut out = Vec::new();
    for frame in frames {
        frame.encode_into(&mut out);
    }
    out
}

/// A `Request` payload (§7.1): handler, subroute, body.
pub fn request_payload(handler: u16, subroute: &[u8], body: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(3 + subroute.len() + body.len());
    payload.extend_from_slice(&handler.to_le_bytes());
    payload.push(u8::try_from(subroute.len()).unwrap_or(u8::MAX));
    payload.extend_from_slice(subroute);
    payload.extend_from_slice(body);
    payload
}

/// A `StreamOpen` payload (§8.1): as a request, with the responder's window
/// between subroute and body.
pub(super) fn stream_open_payload(handler: u16, window: u32, body: &[u8]) -> Vec<u8> {
    let mut payload = request_payload(handler, &[], &[]);
    payload.extend_from_slice(&window.to_le_bytes());
    payload.extend_from_slice(body);
    payload
}

/// Why bytes could not be decoded into frames.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Malformed(pub(super) String);

/// Turns a byte stream, in any chunking, into frames.
#[derive(Debug)]
pub(super) struct Decoder {
    buf: Vec<u8>,
    limit: u32,
}

impl Decoder {
    /// A decoder that accepts frames of at most the handshake's limit.
    pub(super) fn new() -> Decoder {
        Decoder {
            buf: Vec::new(),
            limit: HANDSHAKE_FRAME_LIMIT,
        }
    }

    /// Accepts payloads up to `limit` bytes from now on (this side's
    /// `max_frame_size` once established).
    pub(super) fn set_limit(&mut self, limit: u32) {
        self.limit = limit;
    }

    /// Adds received bytes.
    pub(super) fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, if one has arrived. The header is checked
    /// before the payload is waited for, as a receiver must (§3.1).
    pub(super) fn next(&mut self) -> Result<Option<Frame>, Malformed> {
        let Some(header) = self.buf.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let word = |at: usize| {
            u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
        };
        let len = word(0);
        let (op, flags, mux, arg) = (header[4], header[5], word(6), word(10));
        if len > self.limit {
            return Err(Malformed(format!(
                "frame of {len} bytes over the limit of {}",
                self.limit
            )));
        }
        if flags & !MORE != 0 {
            return Err(Malformed(format!("reserved flag bits {flags:#04x}")));
        }
        let end = HEADER_LEN + len as usize;
        if self.buf.len() < end {
            return Ok(None);
        }
        let payload = self.buf[HEADER_LEN..end].to_vec();
        self.buf.drain(..end);
        Ok(Some(Frame {
            op,
            flags,
            mux,
            arg,
            payload,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `Request` and `Response` of PROTOCOL.md §15.1, byte for byte.
    #[test]
    fn encodes_the_specification_examples() {
        let request = Frame::new(op::REQUEST, 1, 60_000, request_payload(7, b"d1", b"hi"));
        assert_eq!(
            request.encode(),
            [7, 0, 0, 0, 0x10, 0, 1, 0, 0, 0, 0x60, 0xea, 0, 0, 7, 0, 2, b'd', b'1', b'h', b'i']
        );
        // 0x11: Response.
        let response = Frame::new(0x11, 1, 0, &b"ok"[..]);
        assert_eq!(
            response.encode(),
            [2, 0, 0, 0, 0x11, 0, 1, 0, 0, 0, 0, 0, 0, 0, b'o', b'k']
        );
    }

    #[test]
    fn decodes_frames_in_any_chunking() {
        let frames = [
            Frame::new(op::PING, 0, 9, Vec::new()),
            Frame::new(op::REQUEST, 3, 5, vec![1, 2, 3, 4]).more(),
        ];
        let bytes = encode_all(&frames);
        let mut decoder = Decoder::new();
        let mut decoded = Vec::new();
        for byte in bytes {
            decoder.push(&[byte]);
            while let Some(frame) = decoder.next().unwrap() {
                decoded.push(frame);
            }
        }
        assert_eq!(decoded, frames);
    }

    #[test]
    fn refuses_oversized_headers_before_their_payload() {
        let mut decoder = Decoder::new();
        decoder.push(&Frame::new(op::HELLO, 0, 0, vec![0; 1025]).encode()[..HEADER_LEN]);
        assert!(decoder.next().is_err());
    }
}
