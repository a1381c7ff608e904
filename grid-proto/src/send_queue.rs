//! The outgoing side: control frames first, then data messages of all muxes
//! interleaved fragment by fragment, coalesced into few large buffers.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use rustc_hash::FxHashMap;
use slab::Slab;
use smallvec::SmallVec;

use crate::frame::{encode_frame, Header, Op, FLAG_MORE, HEADER_LEN};

/// Transmit buffers are filled up to about this many bytes before being handed
/// to the driver: large enough to amortise a write syscall over many small frames.
const COALESCE_TARGET: usize = 64 * 1024;

/// Payload pieces at least this large are handed to the driver as slices of the
/// application's buffer instead of being copied into the transmit buffer.
const ZERO_COPY_MIN: usize = 4096;

/// The transmit buffer is topped up once less than this much room is left.
const RESERVE_BELOW: usize = 4096;

/// Messages up to this size whose mux has nothing queued are encoded into the
/// transmit buffer at once. They need no queue node, cannot overtake anything
/// of their own mux, and delay other muxes by no more than a fragment would.
const DIRECT_MAX: usize = 1024;

/// A run of small messages of one stream written at once shares a `Messages`
/// frame up to this payload size.
const BATCH_MAX: usize = 16 * 1024;

const NO_NODE: usize = usize::MAX;

/// Prefix bytes an [`OutMessage`] holds without allocating.
pub(crate) const PREFIX_INLINE: usize = 24;

/// Op-specific fields in front of a message's body.
pub(crate) type MessagePrefix = SmallVec<[u8; PREFIX_INLINE]>;

/// A message waiting to be sent: `prefix` then `body` form its payload.
#[derive(Debug)]
pub(crate) struct OutMessage {
    pub(crate) op: Op,
    pub(crate) mux: u32,
    pub(crate) arg: u32,
    /// Op-specific fields in front of the body (handler id, subroute, window).
    pub(crate) prefix: MessagePrefix,
    pub(crate) body: Bytes,
}

impl OutMessage {
    pub(crate) fn new(op: Op, mux: u32, arg: u32, body: Bytes) -> OutMessage {
        OutMessage {
            op,
            mux,
            arg,
            prefix: SmallVec::new(),
            body,
        }
    }

    fn len(&self) -> usize {
        self.prefix.len() + self.body.len()
    }
}

/// A `Message` or `Messages` frame at the end of `out`.
#[derive(Debug, Clone, Copy)]
struct Joinable {
    mux: u32,
    /// Where its header starts in `out`.
    at: usize,
    /// Sequence number the next message must have to join it.
    next_seq: u32,
    /// Already a `Messages` frame.
    batch: bool,
}

#[derive(Debug)]
struct Node {
    message: OutMessage,
    sent: usize,
    next: usize,
}

/// Head and tail of one mux's queue of messages inside the shared node slab.
#[derive(Debug, Clone, Copy)]
struct Lane {
    head: usize,
    tail: usize,
}

/// Outgoing frames. Messages of one mux leave in order; muxes take turns one
/// fragment at a time, so a bulk transfer delays a small call by at most one
/// fragment per other busy mux.
#[derive(Debug)]
pub(crate) struct SendQueue {
    /// Encoded frames ready to go: control frames are appended here as soon as
    /// they are produced, so they precede any data queued after them. Small
    /// data messages are too (see `DIRECT_MAX`).
    out: BytesMut,
    /// Bytes of `out` that are data frames rather than control frames.
    direct_bytes: usize,
    /// The last frame in `out`, when the next message of its stream may join it.
    joinable: Option<Joinable>,
    /// A zero-copy payload slice that must follow the bytes already handed out.
    deferred: Option<Bytes>,
    nodes: Slab<Node>,
    lanes: FxHashMap<u32, Lane>,
    ring: VecDeque<u32>,
    queued_bytes: usize,
    /// Queued `Request`/`StreamOpen` messages not yet started.
    pending_opens: usize,
}

fn is_open(op: Op) -> bool {
    matches!(op, Op::Request | Op::StreamOpen)
}

impl SendQueue {
    pub(crate) fn new() -> SendQueue {
        SendQueue {
            // Grown when traffic needs it (see `poll`): a connection that
            // only ever sends its handshake and pings never allocates more.
            out: BytesMut::new(),
            direct_bytes: 0,
            joinable: None,
            deferred: None,
            nodes: Slab::new(),
            lanes: FxHashMap::default(),
            ring: VecDeque::new(),
            queued_bytes: 0,
            pending_opens: 0,
        }
    }

    /// Appends a control frame; it leaves before every data message not yet started.
    pub(crate) fn control(&mut self, op: Op, mux: u32, arg: u32, payload: &[u8]) {
        self.joinable = None;
        encode_frame(&mut self.out, op, 0, mux, arg, payload);
    }

    /// Bytes of encoded control frames not yet handed to the driver.
    pub(crate) fn control_backlog(&self) -> usize {
        self.out.len() - self.direct_bytes
    }

    /// Queues a message behind earlier messages of the same mux; `fragment` is
    /// the largest payload a frame may carry.
    pub(crate) fn push(&mut self, message: OutMessage, fragment: usize) {
        let mux = message.mux;
        let lane_free = self.lanes.is_empty() || !self.lanes.contains_key(&mux);
        if message.len() <= DIRECT_MAX.min(fragment) && lane_free {
            let before = self.out.len();
            if !self.join(&message, fragment) {
                let header = Header {
                    // Lossless: at most `DIRECT_MAX`.
                    len: message.len() as u32,
                    op: message.op,
                    flags: 0,
                    mux,
                    arg: message.arg,
                };
                // Header and a short prefix are put together first, so the
                // frame takes two appends instead of three.
                let prefix = message.prefix.len();
                if prefix <= PREFIX_INLINE {
                    let mut head = [0u8; HEADER_LEN + PREFIX_INLINE];
                    header.encode(&mut &mut head[..HEADER_LEN]);
                    head[HEADER_LEN..HEADER_LEN + prefix].copy_from_slice(&message.prefix);
                    self.out.extend_from_slice(&head[..HEADER_LEN + prefix]);
                } else {
                    header.encode(&mut self.out);
                    self.out.extend_from_slice(&message.prefix);
                }
                self.out.extend_from_slice(&message.body);
                self.joinable = (message.op == Op::Message).then_some(Joinable {
                    mux,
                    at: before,
                    next_seq: message.arg.wrapping_add(1),
                    batch: false,
                });
            }
            self.direct_bytes += self.out.len() - before;
            return;
        }
        self.queued_bytes += message.len();
        self.pending_opens += usize::from(is_open(message.op));
        let key = self.nodes.insert(Node {
            message,
            sent: 0,
            next: NO_NODE,
        });
        match self.lanes.get_mut(&mux) {
            Some(lane) => {
                if let Some(tail) = self.nodes.get_mut(lane.tail) {
                    tail.next = key;
                }
                lane.tail = key;
            }
            None => {
                self.lanes.insert(
                    mux,
                    Lane {
                        head: key,
                        tail: key,
                    },
                );
                self.ring.push_back(mux);
            }
        }
    }

    /// Appends a small stream message to the frame of the same stream's previous
    /// one, when that frame ends `out` and has room: a run of small messages
    /// then costs one header, and the peer one frame, instead of one each.
    fn join(&mut self, message: &OutMessage, fragment: usize) -> bool {
        let Some(joinable) = self.joinable else {
            return false;
        };
        if message.op != Op::Message
            || !message.prefix.is_empty()
            || joinable.mux != message.mux
            || joinable.next_seq != message.arg
        {
            return false;
        }
        let payload_at = joinable.at + HEADER_LEN;
        let frame_len = self.out.len() - payload_at;
        let converted = if joinable.batch { 0 } else { 4 };
        if frame_len + converted + 4 + message.body.len() > BATCH_MAX.min(fragment) {
            return false;
        }
        if !joinable.batch {
            // The lone message becomes the batch's first entry: a length goes
            // in front of it, and the frame's op changes.
            self.out.extend_from_slice(&[0; 4]);
            self.out
                .copy_within(payload_at..payload_at + frame_len, payload_at + 4);
            // Lossless: a frame of at most `BATCH_MAX` bytes.
            self.out[payload_at..payload_at + 4].copy_from_slice(&(frame_len as u32).to_le_bytes());
            self.out[joinable.at + 4] = Op::Messages as u8;
        }
        self.out
            .extend_from_slice(&(message.body.len() as u32).to_le_bytes());
        self.out.extend_from_slice(&message.body);
        let len = (self.out.len() - payload_at) as u32;
        self.out[joinable.at..joinable.at + 4].copy_from_slice(&len.to_le_bytes());
        self.joinable = Some(Joinable {
            next_seq: message.arg.wrapping_add(1),
            batch: true,
            ..joinable
        });
        true
    }

    /// Drops every queued message of `mux`. A message already partly sent is cut
    /// short; the caller follows up with a frame that tells the peer to discard it.
    pub(crate) fn remove_mux(&mut self, mux: u32) {
        if self.lanes.is_empty() {
            // Small frames are encoded at once: most calls never had a lane.
            return;
        }
        let Some(lane) = self.lanes.remove(&mux) else {
            return;
        };
        let mut key = lane.head;
        while key != NO_NODE {
            let node = self.nodes.remove(key);
            self.queued_bytes -= node.message.len() - node.sent;
            self.pending_opens -= usize::from(node.sent == 0 && is_open(node.message.op));
            key = node.next;
        }
        // The mux's entry in `ring` is skipped when reached.
    }

    /// Calls queued whose first fragment has not been handed out yet.
    pub(crate) fn pending_opens(&self) -> usize {
        self.pending_opens
    }

    /// Drops everything queued except a payload whose header was already
    /// handed out: without it the byte stream would lose its framing.
    pub(crate) fn abandon(&mut self) {
        let deferred = self.deferred.take();
        *self = SendQueue::new();
        self.deferred = deferred;
    }

    /// Whether any frame is waiting.
    pub(crate) fn is_empty(&self) -> bool {
        self.out.is_empty() && self.deferred.is_none() && self.lanes.is_empty()
    }

    /// Payload bytes of queued data messages plus encoded bytes not yet handed out.
    pub(crate) fn buffered(&self) -> usize {
        self.queued_bytes + self.out.len() + self.deferred.as_ref().map_or(0, Bytes::len)
    }

    /// Gives the transmit buffer's spare room back to the system when nothing
    /// waits to be sent: an idle connection then holds no coalescing buffer,
    /// and the frames of a quiet one (pings, a call now and then) take only
    /// what they need until traffic makes the buffer grow again.
    pub(crate) fn release_if_idle(&mut self) {
        if self.is_empty() {
            self.out = BytesMut::new();
            self.joinable = None;
        }
    }

    /// The next buffer to write, with fragments of at most `fragment` payload bytes.
    pub(crate) fn poll(&mut self, fragment: usize) -> Option<Bytes> {
        // Whatever `out` holds is handed out now or follows a frame added here.
        self.joinable = None;
        if let Some(deferred) = self.deferred.take() {
            return Some(deferred);
        }
        let fragment = fragment.max(1);
        while self.out.len() < COALESCE_TARGET && self.deferred.is_none() {
            let Some(mux) = self.ring.pop_front() else {
                break;
            };
            let Some(lane) = self.lanes.get_mut(&mux) else {
                continue;
            };
            let key = lane.head;
            let Some(node) = self.nodes.get_mut(key) else {
                self.lanes.remove(&mux);
                continue;
            };
            let message = &node.message;
            let total = message.len();
            let start = node.sent;
            if start == 0 && is_open(message.op) {
                self.pending_opens -= 1;
            }
            let take = (total - start).min(fragment);
            let end = start + take;
            let more = end < total;
            Header {
                // Lossless: `take` is at most `fragment`, itself at most a u32 frame size.
                len: take as u32,
                op: message.op,
                flags: if more { FLAG_MORE } else { 0 },
                mux,
                arg: message.arg,
            }
            .encode(&mut self.out);
            let prefix_len = message.prefix.len();
            if start < prefix_len {
                self.out
                    .extend_from_slice(&message.prefix[start..end.min(prefix_len)]);
            }
            if end > prefix_len {
                let body = start.max(prefix_len) - prefix_len..end - prefix_len;
                if body.len() >= ZERO_COPY_MIN {
                    self.deferred = Some(message.body.slice(body));
                } else {
                    self.out.extend_from_slice(&message.body[body]);
                }
            }
            node.sent = end;
            self.queued_bytes -= take;
            if more {
                self.ring.push_back(mux);
            } else {
                let next = node.next;
                self.nodes.remove(key);
                if next == NO_NODE {
                    self.lanes.remove(&mux);
                } else {
                    lane.head = next;
                    self.ring.push_back(mux);
                }
            }
        }
        if self.out.is_empty() {
            return self.deferred.take();
        }
        let buffer = self.out.split().freeze();
        self.direct_bytes = 0;
        // Only while traffic flows: a lone frame (a ping on an idle
        // connection) leaves a small buffer small, see `release_if_idle`.
        let busy = buffer.len() >= RESERVE_BELOW || !self.ring.is_empty();
        if busy && self.out.capacity() < RESERVE_BELOW {
            // By now the driver has usually written and dropped the buffers
            // handed out before, so this reclaims their allocation instead of
            // making a new one. Reserving while `buffer` is still held would not.
            self.out.reserve(COALESCE_TARGET);
        }
        Some(buffer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoder::FrameDecoder;
    use crate::frame::HEADER_LEN;

    fn drain(queue: &mut SendQueue, fragment: usize) -> Vec<(Header, Bytes)> {
        let mut decoder = FrameDecoder::new(1 << 20);
        while let Some(bytes) = queue.poll(fragment) {
            decoder.push(&bytes);
        }
        std::iter::from_fn(|| decoder.next_frame().unwrap()).collect()
    }

    /// Larger than `DIRECT_MAX`, so it is queued.
    fn queued_body(byte: u8) -> Bytes {
        Bytes::from(vec![byte; DIRECT_MAX + 1])
    }

    #[test]
    fn control_frames_precede_queued_data() {
        let mut queue = SendQueue::new();
        queue.push(OutMessage::new(Op::Response, 1, 0, queued_body(1)), 4096);
        queue.control(Op::Ping, 0, 5, b"");
        assert_eq!(queue.control_backlog(), HEADER_LEN);
        let frames = drain(&mut queue, 4096);
        assert_eq!(frames[0].0.op, Op::Ping);
        assert_eq!(frames[1].0.op, Op::Response);
        assert!(queue.is_empty());
        assert_eq!(queue.buffered(), 0);
    }

    #[test]
    fn small_messages_are_encoded_at_once_but_never_overtake_their_mux() {
        let mut queue = SendQueue::new();
        queue.push(OutMessage::new(Op::Message, 1, 0, queued_body(1)), 4096);
        // Mux 1 has a message queued: this one waits behind it.
        queue.push(
            OutMessage::new(Op::Message, 1, 1, Bytes::from_static(b"a")),
            4096,
        );
        // Mux 2 has nothing queued: encoded at once, not a control frame.
        queue.push(
            OutMessage::new(Op::Message, 2, 0, Bytes::from_static(b"b")),
            4096,
        );
        assert_eq!(queue.control_backlog(), 0);
        assert_eq!(queue.buffered(), DIRECT_MAX + 2 + HEADER_LEN + 1);
        let frames = drain(&mut queue, 4096);
        let order: Vec<(u32, u32)> = frames.iter().map(|(h, _)| (h.mux, h.arg)).collect();
        assert_eq!(order, vec![(2, 0), (1, 0), (1, 1)]);
        assert_eq!(queue.buffered(), 0);
        assert!(queue.is_empty());
    }

    #[test]
    fn consecutive_small_messages_of_a_stream_share_a_frame_until_something_comes_between() {
        let mut queue = SendQueue::new();
        let small = |mux, seq| OutMessage::new(Op::Message, mux, seq, Bytes::from_static(b"m"));
        queue.push(small(1, 0), 4096);
        queue.push(small(1, 1), 4096);
        queue.push(small(1, 2), 4096);
        // Another stream's message, then a control frame: each ends the run.
        queue.push(small(2, 0), 4096);
        queue.push(small(1, 3), 4096);
        queue.control(Op::Ping, 0, 9, b"");
        queue.push(small(1, 4), 4096);
        // Not the next sequence number: a frame of its own.
        queue.push(small(1, 7), 4096);
        assert_eq!(queue.control_backlog(), HEADER_LEN);
        let frames = drain(&mut queue, 4096);
        let shape: Vec<(Op, u32, u32, usize)> = frames
            .iter()
            .map(|(h, p)| (h.op, h.mux, h.arg, p.len()))
            .collect();
        assert_eq!(
            shape,
            vec![
                (Op::Messages, 1, 0, 3 * 5),
                (Op::Message, 2, 0, 1),
                (Op::Message, 1, 3, 1),
                (Op::Ping, 0, 9, 0),
                (Op::Message, 1, 4, 1),
                (Op::Message, 1, 7, 1),
            ]
        );
        assert_eq!(
            frames[0].1.as_ref(),
            &[1, 0, 0, 0, b'm', 1, 0, 0, 0, b'm', 1, 0, 0, 0, b'm']
        );
        assert_eq!(queue.buffered(), 0);
    }

    #[test]
    fn a_shared_frame_stops_growing_at_its_size_limit() {
        let mut queue = SendQueue::new();
        let body = Bytes::from(vec![3u8; 1000]);
        for seq in 0..40 {
            queue.push(OutMessage::new(Op::Message, 1, seq, body.clone()), 1 << 20);
        }
        let frames = drain(&mut queue, 1 << 20);
        assert!(frames.len() > 1);
        assert!(frames.iter().all(|(h, _)| h.len as usize <= BATCH_MAX));
        let entries: usize = frames
            .iter()
            .map(|(h, p)| {
                if h.op == Op::Messages {
                    p.len() / 1004
                } else {
                    1
                }
            })
            .sum();
        assert_eq!(entries, 40);
    }

    #[test]
    fn muxes_interleave_one_fragment_at_a_time_and_keep_their_order() {
        let mut queue = SendQueue::new();
        let big = Bytes::from(vec![1u8; 10_000]);
        queue.push(OutMessage::new(Op::Message, 1, 0, big.clone()), 4096);
        queue.push(OutMessage::new(Op::Message, 1, 1, queued_body(2)), 4096);
        queue.push(OutMessage::new(Op::Request, 3, 0, queued_body(3)), 4096);
        let frames = drain(&mut queue, 4096);
        let order: Vec<(u32, u32, bool)> = frames
            .iter()
            .map(|(h, _)| (h.mux, h.arg, h.more()))
            .collect();
        assert_eq!(
            order,
            vec![
                (1, 0, true),
                (3, 0, false),
                (1, 0, true),
                (1, 0, false),
                (1, 1, false)
            ]
        );
        let reassembled: Vec<u8> = frames
            .iter()
            .filter(|(h, _)| h.mux == 1 && h.arg == 0)
            .flat_map(|(_, p)| p.to_vec())
            .collect();
        assert_eq!(reassembled, big.to_vec());
    }

    #[test]
    fn prefix_and_body_are_split_across_fragments() {
        let mut queue = SendQueue::new();
        let mut message = OutMessage::new(Op::Request, 1, 9, Bytes::from_static(b"body"));
        message.prefix.extend_from_slice(b"prefix");
        // Larger than a fragment, so it is queued and cut.
        queue.push(message, 4);
        let frames = drain(&mut queue, 4);
        let joined: Vec<u8> = frames.iter().flat_map(|(_, p)| p.to_vec()).collect();
        assert_eq!(joined, b"prefixbody");
        assert_eq!(frames.len(), 3);
    }

    #[test]
    fn removed_mux_sends_nothing_more() {
        let mut queue = SendQueue::new();
        queue.push(OutMessage::new(Op::Message, 1, 0, queued_body(0)), 4096);
        queue.push(OutMessage::new(Op::Message, 1, 1, queued_body(0)), 4096);
        queue.push(OutMessage::new(Op::Message, 2, 0, queued_body(0)), 4096);
        queue.remove_mux(1);
        assert_eq!(queue.buffered(), DIRECT_MAX + 1);
        let frames = drain(&mut queue, 4096);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].0.mux, 2);
    }

    #[test]
    fn large_payloads_are_handed_out_without_copying() {
        let mut queue = SendQueue::new();
        let body = Bytes::from(vec![3u8; 64 * 1024]);
        queue.push(OutMessage::new(Op::Message, 1, 0, body.clone()), 1 << 20);
        let first = queue.poll(16 * 1024).unwrap();
        assert_eq!(first.len(), crate::frame::HEADER_LEN);
        let second = queue.poll(16 * 1024).unwrap();
        assert_eq!(second.as_ptr(), body.as_ptr());
    }
}
