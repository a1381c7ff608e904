//! Reassembly of messages that arrive as several fragments.

use bytes::{Bytes, BytesMut};
use rustc_hash::FxHashMap;

use crate::frame::{Header, Op};

/// A message whose fragments are still arriving.
#[derive(Debug)]
struct Partial {
    op: Op,
    arg: u32,
    buf: BytesMut,
}

/// What a fragment did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Assembled {
    /// The message is complete.
    Complete(Op, u32, Bytes),
    /// More fragments are needed.
    Pending,
}

/// Why a fragment was refused. Each is a protocol error of the mux.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AssemblyError {
    /// The op may not be fragmented.
    NotFragmentable(Op),
    /// A continuation changed the op or argument of the message it continues.
    Mismatch,
    /// The reassembled size would exceed the message limit.
    TooLarge { size: usize, max: usize },
}

/// Partial messages by mux. One per mux at most, because a sender finishes a
/// message before starting the next one on the same mux.
#[derive(Debug, Default)]
pub(crate) struct Assembler {
    partials: FxHashMap<u32, Partial>,
    bytes: usize,
}

impl Assembler {
    /// Bytes held in partial messages.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Feeds one frame; a frame without the MORE flag and no partial message is
    /// complete by itself and never copied.
    pub(crate) fn push(
        &mut self,
        header: &Header,
        payload: Bytes,
        max_message: usize,
    ) -> Result<Assembled, AssemblyError> {
        if !header.more() && self.partials.is_empty() {
            return Ok(Assembled::Complete(header.op, header.arg, payload));
        }
        let existing = self.partials.get_mut(&header.mux);
        let partial = match existing {
            Some(partial) => {
                if partial.op != header.op || partial.arg != header.arg {
                    self.discard(header.mux);
                    return Err(AssemblyError::Mismatch);
                }
                partial
            }
            None if !header.more() => {
                return Ok(Assembled::Complete(header.op, header.arg, payload))
            }
            None => {
                if !header.op.may_fragment() {
                    return Err(AssemblyError::NotFragmentable(header.op));
                }
                self.partials.entry(header.mux).or_insert(Partial {
                    op: header.op,
                    arg: header.arg,
                    buf: BytesMut::new(),
                })
            }
        };
        let size = partial.buf.len().saturating_add(payload.len());
        if size > max_message {
            self.discard(header.mux);
            return Err(AssemblyError::TooLarge {
                size,
                max: max_message,
            });
        }
        partial.buf.extend_from_slice(&payload);
        self.bytes += payload.len();
        if header.more() {
            return Ok(Assembled::Pending);
        }
        let done = self.partials.remove(&header.mux);
        let Some(done) = done else {
            return Ok(Assembled::Pending);
        };
        self.bytes -= done.buf.len();
        Ok(Assembled::Complete(done.op, done.arg, done.buf.freeze()))
    }

    /// Forgets the partial message of `mux`, if any.
    pub(crate) fn discard(&mut self, mux: u32) {
        if self.partials.is_empty() {
            return;
        }
        if let Some(partial) = self.partials.remove(&mux) {
            self.bytes -= partial.buf.len();
        }
    }

    /// Forgets everything.
    pub(crate) fn clear(&mut self) {
        self.partials.clear();
        self.bytes = 0;
    }
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
            asm.push(&header(Op::Message, true, 1, 0), b(b"ab"), 100),
            Ok(Assembled::Pending)
        );
        assert_eq!(
            asm.push(&header(Op::Message, true, 2, 5), b(b"xy"), 100),
            Ok(Assembled::Pending)
        );
        assert_eq!(asm.bytes(), 4);
        assert_eq!(
            asm.push(&header(Op::Message, false, 1, 0), b(b"c"), 100),
            Ok(Assembled::Complete(Op::Message, 0, b(b"abc")))
        );
        assert_eq!(
            asm.push(&header(Op::Message, false, 2, 5), b(b"z"), 100),
            Ok(Assembled::Complete(Op::Message, 5, b(b"xyz")))
        );
        assert_eq!(asm.bytes(), 0);
    }

    #[test]
    fn limits_and_mismatches_are_errors() {
        let mut asm = Assembler::default();
        let payload = Bytes::from(vec![0u8; 60]);
        asm.push(&header(Op::Request, true, 1, 0), payload.clone(), 100)
            .unwrap();
        assert_eq!(
            asm.push(&header(Op::Request, true, 1, 0), payload.clone(), 100),
            Err(AssemblyError::TooLarge {
                size: 120,
                max: 100
            })
        );
        assert_eq!(asm.bytes(), 0);
        asm.push(&header(Op::Request, true, 1, 0), payload.clone(), 100)
            .unwrap();
        assert_eq!(
            asm.push(&header(Op::Response, false, 1, 0), payload.clone(), 100),
            Err(AssemblyError::Mismatch)
        );
        assert_eq!(
            asm.push(&header(Op::Ping, true, 0, 0), payload, 100),
            Err(AssemblyError::NotFragmentable(Op::Ping))
        );
    }
}
