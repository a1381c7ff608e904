//! The fields in front of the body of `Request` and `StreamOpen` messages
//! (PROTOCOL.md §7.1, §8.1): handler, subroute length, subroute, and a
//! stream's window. Written by the opener, read by the responder.

use bytes::{Buf, Bytes};

use crate::connection::CallTarget;
use crate::frame::Op;
use crate::send_queue::{MessagePrefix, PREFIX_INLINE};

/// The prefix of a call to `target`, with a stream's `window`.
pub(crate) fn encode(target: &CallTarget<'_>, window: Option<u32>) -> MessagePrefix {
    let subroute = target.subroute.len();
    let len = 3 + subroute + if window.is_some() { 4 } else { 0 };
    if len > PREFIX_INLINE {
        // A long subroute: the prefix lives on the heap anyway.
        let mut prefix = MessagePrefix::new();
        prefix.extend_from_slice(&target.handler.to_le_bytes());
        // Lossless: checked against MAX_SUBROUTE (255) by the caller.
        prefix.push(subroute as u8);
        prefix.extend_from_slice(target.subroute);
        if let Some(window) = window {
            prefix.extend_from_slice(&window.to_le_bytes());
        }
        return prefix;
    }
    // Written in place: the common prefix (a handler, a short subroute) then
    // costs a few stores instead of a growable vector's appends.
    let mut buf = [0u8; PREFIX_INLINE];
    buf[..2].copy_from_slice(&target.handler.to_le_bytes());
    // Lossless: checked against MAX_SUBROUTE (255) by the caller.
    buf[2] = subroute as u8;
    buf[3..3 + subroute].copy_from_slice(target.subroute);
    if let Some(window) = window {
        buf[3 + subroute..len].copy_from_slice(&window.to_le_bytes());
    }
    MessagePrefix::from_buf_and_len(buf, len)
}

/// Fields in front of the body of `Request` and `StreamOpen` messages.
pub(crate) struct OpenPrefix {
    pub(crate) handler: u16,
    pub(crate) subroute: Bytes,
    pub(crate) window: u32,
    pub(crate) body: Bytes,
}

/// Splits a complete `Request` or `StreamOpen` payload (`op`) into its
/// fields; `None` if it is too short for them.
pub(crate) fn parse(op: Op, mut payload: Bytes) -> Option<OpenPrefix> {
    let handler = u16::from_le_bytes([*payload.first()?, *payload.get(1)?]);
    let subroute_len = usize::from(*payload.get(2)?);
    let subroute_end = 3 + subroute_len;
    let (window, body_start) = if op == Op::StreamOpen {
        let raw = payload.get(subroute_end..subroute_end + 4)?;
        (u32::from_le_bytes(raw.try_into().ok()?), subroute_end + 4)
    } else {
        (0, subroute_end)
    };
    if payload.len() < body_start {
        return None;
    }
    // Copying the short subroute and advancing the payload keeps a request free
    // of the shared-buffer bookkeeping that slicing would set up.
    let subroute = if subroute_len == 0 {
        Bytes::new()
    } else {
        Bytes::copy_from_slice(&payload[3..subroute_end])
    };
    payload.advance(body_start);
    Some(OpenPrefix {
        handler,
        subroute,
        window,
        body: payload,
    })
}
