//! Frames forged by hand, for tests and fuzz targets that play a hostile or
//! broken peer.

use crate::frame::{encode_frame, Op};

/// One whole frame (header and payload) as it would cross the wire.
pub fn raw_frame(op: Op, flags: u8, mux: u32, arg: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(crate::HEADER_LEN + payload.len());
    encode_frame(&mut out, op, flags, mux, arg, payload);
    out
}

/// The payload of a `Messages` frame: each entry behind its little-endian
/// `u32` length.
pub fn batch(entries: &[&[u8]]) -> Vec<u8> {
    let mut payload = Vec::new();
    for entry in entries {
        let len = u32::try_from(entry.len()).unwrap_or(u32::MAX);
        payload.extend_from_slice(&len.to_le_bytes());
        payload.extend_from_slice(entry);
    }
    payload
}
