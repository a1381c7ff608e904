//! Incremental frame decoder: bytes in any chunking, frames out.

use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};

use crate::frame::{FrameError, Header, HEADER_LEN};
use crate::recycle::{BufferPool, RECYCLE_MIN};

/// Splits a byte stream into frames.
///
/// The declared payload length is checked against the maximum before any byte
/// of the payload is buffered, so a peer cannot make the decoder reserve more
/// than one maximum frame.
///
/// Every payload gets a buffer of its own, filled straight from the input once
/// its header is known: of exactly its size, or for a large payload a
/// recycled one of at most twice its size. So a payload held for long by the
/// application pins only itself, never a shared receive buffer, and large
/// frames do not make the receive buffer double into sizes that the system
/// allocator hands back to the kernel and faults in again on every frame.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    /// The frame whose header has been read, and its payload so far.
    pending: Option<(Header, Vec<u8>)>,
    max_frame: u32,
    pool: Arc<BufferPool>,
}

impl FrameDecoder {
    /// A decoder that rejects frames whose payload exceeds `max_frame` bytes.
    pub fn new(max_frame: u32) -> FrameDecoder {
        FrameDecoder {
            buf: BytesMut::new(),
            pending: None,
            max_frame,
            pool: BufferPool::new(),
        }
    }

    /// Changes the payload limit for frames whose header has not been read yet.
    pub fn set_max_frame(&mut self, max_frame: u32) {
        self.max_frame = max_frame;
    }

    /// Appends received bytes.
    pub fn push(&mut self, mut data: &[u8]) {
        if let Some((header, payload)) = &mut self.pending {
            // Lossless: `len` was checked against a u32 maximum and usize is at least 32 bits.
            let missing = header.len as usize - payload.len();
            let (now, rest) = data.split_at(missing.min(data.len()));
            payload.extend_from_slice(now);
            data = rest;
        }
        self.buf.extend_from_slice(data);
    }

    /// Returns the recycled receive buffers to the system if no payload needed
    /// one since the last call.
    pub(crate) fn trim_buffers_if_unused(&self) {
        self.pool.trim_if_unused();
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len()
            + self
                .pending
                .as_ref()
                .map_or(0, |(_, payload)| payload.len())
    }

    /// The next complete frame, `Ok(None)` if more input is needed.
    #[inline]
    pub fn next_frame(&mut self) -> Result<Option<(Header, Bytes)>, FrameError> {
        if self.pending.is_none() {
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
            let len = header.len as usize;
            let mut payload = if len >= RECYCLE_MIN {
                self.pool.take(len)
            } else {
                Vec::with_capacity(len)
            };
            let available = len.min(self.buf.len());
            payload.extend_from_slice(&self.buf[..available]);
            self.buf.advance(available);
            self.pending = Some((header, payload));
        }
        match &self.pending {
            Some((header, payload)) if payload.len() == header.len as usize => {}
            _ => return Ok(None),
        }
        Ok(self.pending.take().map(|(header, payload)| {
            let payload = if payload.capacity() >= RECYCLE_MIN {
                self.pool.payload(payload)
            } else {
                // Exactly its size: no copy, no second allocation.
                Bytes::from(payload)
            };
            (header, payload)
        }))
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
        assert!(decoder.pending.is_none());
    }
}
