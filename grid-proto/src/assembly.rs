//! Reassembly of messages that arrive as several fragments.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use crate::frame::{Header, Op};
use crate::recycle::{BufferPool, RECYCLE_MIN};

/// A message whose fragments are still arriving. Fragments are kept as they
/// came and joined once when the last arrives: into an exactly sized buffer,
/// or a large message into a recycled one (see [`BufferPool`]).
#[derive(Debug)]
struct Partial {
    op: Op,
    arg: u32,
    fragments: SmallVec<[Bytes; 4]>,
    len: usize,
}

impl Partial {
    fn join(self, pool: &Arc<BufferPool>) -> Bytes {
        if self.fragments.len() == 1 {
            return self.fragments.into_iter().next().unwrap_or_default();
        }
        if self.len >= RECYCLE_MIN {
            let mut joined = pool.take(self.len);
            joined.clear();
            for fragment in &self.fragments {
                joined.extend_from_slice(fragment);
            }
            return pool.payload(joined);
        }
        let mut joined = BytesMut::with_capacity(self.len);
        for fragment in &self.fragments {
            joined.extend_from_slice(fragment);
        }
        joined.freeze()
    }
}

/// What a fragment did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Assembled {
    /// The message is complete.
    Complete(Op, u32, Bytes),
    /// More fragments are needed.
    Pending,
}

/// Why a fragment was refused. Each is a connection error.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AssemblyError {
    /// The MORE flag is set on an op that may not be fragmented.
    NotFragmentable(Op),
    /// The reassembled size would exceed the message limit.
    TooLarge { size: usize, max: usize },
    /// More messages are partly received than calls can exist.
    TooManyPartials(usize),
}

/// Partial messages by mux. One per mux at most, because a sender finishes a
/// message before starting the next one on the same mux, except when it
/// abandons a message (the call was cancelled or failed): then the frame that
/// ends the call follows, and the partial message is dropped.
#[derive(Debug, Default)]
pub(crate) struct Assembler {
    partials: FxHashMap<u32, Partial>,
    bytes: usize,
    /// Where joined large messages get their buffers (the decoder's pool).
    pool: Arc<BufferPool>,
}

impl Assembler {
    /// An assembler that joins large messages into buffers from `pool`.
    pub(crate) fn new(pool: Arc<BufferPool>) -> Assembler {
        Assembler {
            pool,
            ..Assembler::default()
        }
    }

    /// Bytes held in partial messages.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Feeds one frame. Frames of ops that cannot be fragmented (credits, fins,
    /// cancels) pass through without disturbing a partial message of their mux.
    #[inline]
    pub(crate) fn push(
        &mut self,
        header: &Header,
        payload: Bytes,
        max_message: usize,
        max_partials: usize,
    ) -> Result<Assembled, AssemblyError> {
        // The common case, kept small enough to inline: a whole message in
        // one frame while no message is partly received.
        if !header.more() && self.partials.is_empty() {
            if !header.op.may_fragment() {
                return Ok(Assembled::Complete(header.op, header.arg, payload));
            }
            return check_size(header, payload, max_message);
        }
        self.push_fragment(header, payload, max_message, max_partials)
    }

    fn push_fragment(
        &mut self,
        header: &Header,
        payload: Bytes,
        max_message: usize,
        max_partials: usize,
    ) -> Result<Assembled, AssemblyError> {
        if !header.op.may_fragment() {
            if header.more() {
                return Err(AssemblyError::NotFragmentable(header.op));
            }
            return Ok(Assembled::Complete(header.op, header.arg, payload));
        }
        let continues = self
            .partials
            .get(&header.mux)
            .is_some_and(|partial| partial.op == header.op && partial.arg == header.arg);
        if !continues {
            // A different message on the same mux: the sender abandoned the old one.
            self.discard(header.mux);
            if !header.more() {
                return check_size(header, payload, max_message);
            }
            if self.partials.len() >= max_partials {
                return Err(AssemblyError::TooManyPartials(self.partials.len()));
            }
        }
        let partial = self.partials.entry(header.mux).or_insert_with(|| Partial {
            op: header.op,
            arg: header.arg,
            fragments: SmallVec::new(),
            len: 0,
        });
        let size = partial.len.saturating_add(payload.len());
        if size > max_message {
            self.discard(header.mux);
            return Err(AssemblyError::TooLarge {
                size,
                max: max_message,
            });
        }
        partial.len = size;
        self.bytes += payload.len();
        partial.fragments.push(payload);
        if header.more() {
            return Ok(Assembled::Pending);
        }
        let Some(done) = self.partials.remove(&header.mux) else {
            return Ok(Assembled::Pending);
        };
        self.bytes -= done.len;
        Ok(Assembled::Complete(
            done.op,
            done.arg,
            done.join(&self.pool),
        ))
    }

    /// Whether no message is partly received.
    pub(crate) fn is_empty(&self) -> bool {
        self.partials.is_empty()
    }

    /// Forgets the partial message of `mux`, if any.
    pub(crate) fn discard(&mut self, mux: u32) {
        if self.partials.is_empty() {
            return;
        }
        if let Some(partial) = self.partials.remove(&mux) {
            self.bytes -= partial.len;
        }
    }

    /// Forgets everything.
    pub(crate) fn clear(&mut self) {
        self.partials.clear();
        self.bytes = 0;
    }
}

#[inline]
fn check_size(
    header: &Header,
    payload: Bytes,
    max_message: usize,
) -> Result<Assembled, AssemblyError> {
    if payload.len() > max_message {
        return Err(AssemblyError::TooLarge {
            size: payload.len(),
            max: max_message,
        });
    }
    Ok(Assembled::Complete(header.op, header.arg, payload))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::FLAG_MORE;

    fn header(op: Op, more: bool, mux: u32, arg: u32) -> Header {
        Header {
            len: 0,
            op,
            flags: if more { FLAG_MORE } else { 0 },
            mux,
            arg,
        }
    }

    #[test]
    fn interleaved_fragments_of_two_muxes_reassemble() {
        let mut asm = Assembler::default();
        let b = |s: &'static [u8]| Bytes::from_static(s);
        assert_eq!(
            asm.push(&header(Op::Message, true, 1, 0), b(b"ab"), 100, 10),
            Ok(Assembled::Pending)
        );
        assert_eq!(
            asm.push(&header(Op::Message, true, 2, 5), b(b"xy"), 100, 10),
            Ok(Assembled::Pending)
        );
        assert_eq!(asm.bytes(), 4);
        assert_eq!(
            asm.push(&header(Op::Message, false, 1, 0), b(b"c"), 100, 10),
            Ok(Assembled::Complete(Op::Message, 0, b(b"abc")))
        );
        assert_eq!(
            asm.push(&header(Op::Message, false, 2, 5), b(b"z"), 100, 10),
            Ok(Assembled::Complete(Op::Message, 5, b(b"xyz")))
        );
        assert_eq!(asm.bytes(), 0);
    }

    #[test]
    fn limits_are_errors() {
        let mut asm = Assembler::default();
        let payload = Bytes::from(vec![0u8; 60]);
        asm.push(&header(Op::Request, true, 1, 0), payload.clone(), 100, 10)
            .unwrap();
        assert_eq!(
            asm.push(&header(Op::Request, true, 1, 0), payload.clone(), 100, 10),
            Err(AssemblyError::TooLarge {
                size: 120,
                max: 100
            })
        );
        assert_eq!(asm.bytes(), 0);
        assert_eq!(
            asm.push(&header(Op::Ping, true, 0, 0), payload, 100, 10),
            Err(AssemblyError::NotFragmentable(Op::Ping))
        );
        assert_eq!(
            asm.push(
                &header(Op::Message, false, 2, 0),
                Bytes::from(vec![0u8; 101]),
                100,
                10
            ),
            Err(AssemblyError::TooLarge {
                size: 101,
                max: 100
            })
        );
        for mux in 0..2 {
            asm.push(&header(Op::Message, true, mux, 0), Bytes::new(), 100, 2)
                .unwrap();
        }
        assert_eq!(
            asm.push(&header(Op::Message, true, 9, 0), Bytes::new(), 100, 2),
            Err(AssemblyError::TooManyPartials(2))
        );
    }

    #[test]
    fn control_frames_pass_a_partial_and_a_new_message_replaces_an_abandoned_one() {
        let mut asm = Assembler::default();
        let b = |s: &'static [u8]| Bytes::from_static(s);
        asm.push(&header(Op::Message, true, 1, 4), b(b"part"), 100, 10)
            .unwrap();
        assert_eq!(
            asm.push(&header(Op::Credit, false, 1, 3), Bytes::new(), 100, 10),
            Ok(Assembled::Complete(Op::Credit, 3, Bytes::new()))
        );
        assert_eq!(asm.bytes(), 4);
        assert_eq!(
            asm.push(&header(Op::Message, false, 1, 4), b(b"-end"), 100, 10),
            Ok(Assembled::Complete(Op::Message, 4, b(b"part-end")))
        );
        asm.push(&header(Op::Request, true, 3, 0), b(b"abandoned"), 100, 10)
            .unwrap();
        assert_eq!(
            asm.push(&header(Op::Error, false, 3, 7), b(b"x"), 100, 10),
            Ok(Assembled::Complete(Op::Error, 7, b(b"x")))
        );
        assert_eq!(asm.bytes(), 0);
    }
}
