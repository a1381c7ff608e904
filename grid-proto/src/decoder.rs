//! Incremental frame decoder: bytes in any chunking, frames out.

use std::sync::Arc;

use bytes::Bytes;

use crate::frame::{FrameError, Header, HEADER_LEN};
use crate::recycle::{BufferPool, RECYCLE_MIN};

/// Least of a payload still missing for [`FrameDecoder::input_space`] to offer
/// it: below that, a copy costs less than a read of its own.
const IN_PLACE_MIN: usize = 4096;

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
    /// Input not yet decoded starts at `read`: a frame is taken by moving
    /// `read` past it, and the consumed front is dropped when input arrives.
    buf: Vec<u8>,
    read: usize,
    /// The frame whose header has been read, and its payload so far.
    pending: Option<Pending>,
    /// Bytes [`input_space`](Self::input_space) last offered; only those can
    /// be pushed in place.
    offered: usize,
    max_frame: u32,
    pool: Arc<BufferPool>,
}

/// A payload being received.
#[derive(Debug)]
struct Pending {
    header: Header,
    /// Holds `filled` bytes of the payload, and may hold more initialized
    /// bytes after them (a recycled buffer's old contents, or zeros written
    /// to offer the rest of it as [`FrameDecoder::input_space`]).
    payload: Vec<u8>,
    filled: usize,
}

impl Pending {
    fn missing(&self) -> usize {
        // Lossless: `len` was checked against a u32 maximum and usize is at least 32 bits.
        self.header.len as usize - self.filled
    }

    /// Takes what it still misses from the front of `data`; returns how much.
    fn fill(&mut self, data: &[u8]) -> usize {
        let take = self.missing().min(data.len());
        let overwrite = (self.payload.len() - self.filled).min(take);
        self.payload[self.filled..self.filled + overwrite].copy_from_slice(&data[..overwrite]);
        self.payload.extend_from_slice(&data[overwrite..take]);
        self.filled += take;
        take
    }
}

impl FrameDecoder {
    /// A decoder that rejects frames whose payload exceeds `max_frame` bytes.
    pub fn new(max_frame: u32) -> FrameDecoder {
        FrameDecoder::with_pool(max_frame, BufferPool::new())
    }

    /// A decoder whose large payloads get their buffers from `pool`.
    pub(crate) fn with_pool(max_frame: u32, pool: Arc<BufferPool>) -> FrameDecoder {
        FrameDecoder {
            buf: Vec::new(),
            read: 0,
            pending: None,
            offered: 0,
            max_frame,
            pool,
        }
    }

    /// Changes the payload limit for frames whose header has not been read yet.
    pub fn set_max_frame(&mut self, max_frame: u32) {
        self.max_frame = max_frame;
    }

    /// Appends received bytes.
    pub fn push(&mut self, mut data: &[u8]) {
        self.offered = 0;
        if let Some(pending) = &mut self.pending {
            data = &data[pending.fill(data)..];
        }
        // What was decoded goes; what is left is at most part of a header.
        if self.read == self.buf.len() {
            self.buf.clear();
        } else {
            self.buf.drain(..self.read);
        }
        self.read = 0;
        self.buf.extend_from_slice(data);
    }

    /// Room to read input into directly, saving the copy [`push`](Self::push)
    /// makes: the rest of a large payload being received, when there is one.
    /// Read into a prefix of it, then report how much with
    /// [`push_in_place`](Self::push_in_place).
    pub fn input_space(&mut self) -> Option<&mut [u8]> {
        let unread = self.unread();
        let pending = self.pending.as_mut()?;
        if pending.missing() < IN_PLACE_MIN || unread != 0 {
            return None;
        }
        // Initialized before it is offered; a recycled buffer mostly already is.
        pending.payload.resize(pending.header.len as usize, 0);
        self.offered = pending.missing();
        Some(&mut pending.payload[pending.filled..])
    }

    /// Accounts for `len` bytes read into [`input_space`](Self::input_space);
    /// more than it offered counts as what it offered.
    pub fn push_in_place(&mut self, len: usize) {
        if let Some(pending) = &mut self.pending {
            pending.filled += len.min(self.offered);
        }
        self.offered = 0;
    }

    /// Returns the recycled receive buffers to the system if no payload needed
    /// one since the last call, and the input buffer's room if it holds no
    /// partial frame: an idle connection keeps no receive buffers.
    pub(crate) fn release_idle_buffers(&mut self) {
        self.pool.trim_if_unused();
        if self.unread() == 0 && self.pending.is_none() {
            self.buf = Vec::new();
            self.read = 0;
        }
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.unread() + self.pending.as_ref().map_or(0, |pending| pending.filled)
    }

    /// Bytes of `buf` not yet decoded.
    fn unread(&self) -> usize {
        self.buf.len() - self.read
    }

    /// The next complete frame, `Ok(None)` if more input is needed.
    #[inline]
    pub fn next_frame(&mut self) -> Result<Option<(Header, Bytes)>, FrameError> {
        if self.pending.is_none() {
            let unread = &self.buf[self.read..];
            let Some(raw) = unread.get(..HEADER_LEN) else {
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
            let len = header.len as usize;
            if len < RECYCLE_MIN {
                if let Some(whole) = unread.get(HEADER_LEN..HEADER_LEN + len) {
                    // A small frame that arrived whole, the common case: a
                    // buffer of exactly its size, filled in one copy.
                    let payload = Bytes::from(whole.to_vec());
                    self.read += HEADER_LEN + len;
                    return Ok(Some((header, payload)));
                }
            }
            let payload = if len >= RECYCLE_MIN {
                self.pool.take(len)
            } else {
                Vec::with_capacity(len)
            };
            let mut pending = Pending {
                header,
                payload,
                filled: 0,
            };
            let used = pending.fill(&unread[HEADER_LEN..]);
            self.read += HEADER_LEN + used;
            if pending.missing() == 0 {
                // A large frame that arrived whole.
                return Ok(Some(self.complete(pending)));
            }
            self.pending = Some(pending);
            return Ok(None);
        }
        match self.pending.take() {
            Some(pending) if pending.missing() == 0 => Ok(Some(self.complete(pending))),
            still => {
                self.pending = still;
                Ok(None)
            }
        }
    }

    /// The frame of a payload received whole.
    fn complete(&self, mut pending: Pending) -> (Header, Bytes) {
        pending.payload.truncate(pending.filled);
        let payload = if pending.payload.capacity() >= RECYCLE_MIN {
            self.pool.payload(pending.payload)
        } else {
            // Exactly its size: no copy, no second allocation.
            Bytes::from(pending.payload)
        };
        (pending.header, payload)
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
    fn input_read_in_place_gives_the_same_frames() {
        let big: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let mut wire = Vec::new();
        encode_frame(&mut wire, Op::Message, 0, 3, 0, &big);
        encode_frame(&mut wire, Op::Message, 0, 3, 1, &big[..20_000]);
        encode_frame(&mut wire, Op::Response, 0, 5, 0, b"hi");
        let mut decoder = FrameDecoder::new(1 << 20);
        let mut got = Vec::new();
        let mut rest = &wire[..];
        // As a driver does: read into the payload when offered room, else into
        // its own buffer; reads of uneven sizes.
        let mut sizes = [7_001usize, 40_000, 3, 65_536].into_iter().cycle();
        while !rest.is_empty() {
            let size = sizes.next().unwrap().min(rest.len());
            match decoder.input_space() {
                Some(space) => {
                    let n = size.min(space.len());
                    space[..n].copy_from_slice(&rest[..n]);
                    decoder.push_in_place(n);
                    rest = &rest[n..];
                }
                None => {
                    decoder.push(&rest[..size]);
                    rest = &rest[size..];
                }
            }
            got.extend(frames(&mut decoder));
        }
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].1.as_ref(), &big[..]);
        assert_eq!(got[1].1.as_ref(), &big[..20_000]);
        assert_eq!(got[2].1.as_ref(), b"hi");
        assert_eq!(decoder.buffered(), 0);
        assert!(decoder.input_space().is_none());
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
