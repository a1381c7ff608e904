//! Payloads that say where they belong, so that a misassembled or misdelivered
//! one shows.

use bytes::Bytes;

/// `len` bytes starting with the little-endian `tag`, then a pseudo-random fill
/// derived from it, so that a misassembled or misdelivered payload shows.
pub fn pattern(tag: u64, len: usize) -> Bytes {
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&tag.to_le_bytes()[..len.min(8)]);
    let mut x = tag.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push((x >> 24) as u8);
    }
    Bytes::from(out)
}

/// A stream message: its first four bytes are the sequence number (bit 31 set
/// for the responder's direction), the next four the mux id.
pub fn stream_payload(mux: u32, from_opener: bool, seq: usize, len: usize) -> Bytes {
    let dir = if from_opener { 0 } else { 1 << 31 };
    let tag = (u64::from(mux) << 32) | dir | seq as u64;
    pattern(tag, len)
}
