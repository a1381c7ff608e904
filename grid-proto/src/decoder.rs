//! Incremental frame decoder: bytes in any chunking, frames out.

use bytes::{Buf, Bytes, BytesMut};

use crate::frame::{FrameError, Header, HEADER_LEN};

/// Payloads up to this size are copied out of the receive buffer instead of
/// sliced from it, so that a small payload held for a long time by the
/// application does not pin a whole receive buffer in memory.
const COPY_PAYLOAD_BELOW: usize = 512;

/// Splits a byte stream into frames.
///
/// The declared payload length is checked against the maximum before any byte
/// of the payload is buffered, so a peer cannot make the decoder reserve memory
/// by announcing a large frame.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    pending: Option<Header>,
    max_frame: u32,
}

impl FrameDecoder {
    /// A decoder that rejects frames whose payload exceeds `max_frame` bytes.
    pub fn new(max_frame: u32) -> FrameDecoder {
        FrameDecoder {
            buf: BytesMut::new(),
            pending: None,
            max_frame,
        }
    }

    /// Changes the payload limit for frames whose header has not been read yet.
    pub fn set_max_frame(&mut self, max_frame: u32) {
        self.max_frame = max_frame;
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete frame, `Ok(None)` if more input is needed.
    #[inline]
    pub fn next_frame(&mut self) -> Result<Option<(Header, Bytes)>, FrameError> {
        let header = match self.pending {
            Some(header) => header,
            None => {
                let Some(raw) = self.buf.get(..HEADER_LEN) else {
                    return Ok(None);
                };
                let mut bytes = [0u8; HEADER_LEN];
                bytes.copy_from_slice(raw);
                let header = Header::decode(&bytes)?;
                if header.len > self.max_frame {
                    return Err(FrameError::TooLarge {
                        len: header.len,
                        max: self.max_frame,
                    });
                }
                self.buf.advance(HEADER_LEN);
                self.pending = Some(header);
                header
            }
        };
        // Lossless: `len` was checked against a u32 maximum and usize is at least 32 bits.
        let len = header.len as usize;
        if self.buf.len() < len {
            self.buf.reserve(len - self.buf.len());
            return Ok(None);
        }
        self.pending = None;
        let payload = if len == 0 {
            Bytes::new()
        } else if len < COPY_PAYLOAD_BELOW {
            let payload = Bytes::copy_from_slice(&self.buf[..len]);
            self.buf.advance(len);
            payload
        } else {
            self.buf.split_to(len).freeze()
        };
        Ok(Some((header, payload)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{encode_frame, Op};

    fn frames(decoder: &mut FrameDecoder) -> Vec<(Header, Bytes)> {
        std::iter::from_fn(|| decoder.next_frame().unwrap()).collect()
    }

    #[test]
    fn decodes_one_byte_at_a_time() {
        let mut wire = Vec::new();
        encode_frame(&mut wire, Op::Ping, 0, 0, 9, b"");
        encode_frame(&mut wire, Op::Message, 0, 3, 1, &[7u8; 2000]);
        encode_frame(&mut wire, Op::Response, 0, 5, 0, b"hi");
        let mut decoder = FrameDecoder::new(4096);
        let mut got = Vec::new();
        for byte in &wire {
            decoder.push(std::slice::from_ref(byte));
            got.extend(frames(&mut decoder));
        }
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].0.op, Op::Ping);
        assert_eq!(got[0].0.arg, 9);
        assert_eq!(got[1].1.as_ref(), &[7u8; 2000][..]);
        assert_eq!(got[2].1.as_ref(), b"hi");
        assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn oversized_frame_fails_before_buffering_its_payload() {
        let mut wire = Vec::new();
        Header {
            len: u32::MAX,
            op: Op::Message,
            flags: 0,
            mux: 1,
            arg: 0,
        }
        .encode(&mut wire);
        let mut decoder = FrameDecoder::new(1024);
        decoder.push(&wire);
        assert_eq!(
            decoder.next_frame(),
            Err(FrameError::TooLarge {
                len: u32::MAX,
                max: 1024
            })
        );
        assert!(decoder.buf.capacity() < 1024);
    }
}
