//! Arbitrary bytes, cut into arbitrary chunks, through `grid_proto::FrameDecoder`.
//!
//! Input layout: byte 0 picks the maximum frame size, byte 1 the chunking
//! (0: everything in one push; n > 0: chunk sizes drawn from 1..=n by a small
//! PRNG seeded with n, so the fuzzer explores chunkings by mutating one byte);
//! the rest is the byte stream.
//!
//! Checked, besides "never panics":
//! - no payload is longer than the maximum, and every payload is as long as its header says;
//! - the frames and the final error are exactly those of a one-shot reference
//!   parse of the whole stream, whatever the chunking;
//! - after a push, `buffered()` is at most max frame + header + chunk, and after
//!   the decoder has returned every complete frame it is below
//!   max(max frame, header): an incomplete frame is all it may hold.
#![no_main]

use grid_proto::{FrameDecoder, FrameError, Header, HEADER_LEN};
use libfuzzer_sys::fuzz_target;

const MAX_FRAMES: [u32; 12] = [0, 1, 13, 14, 15, 64, 255, 256, 511, 512, 513, 4096];

/// What decoding the whole stream at once yields.
#[derive(Debug, PartialEq)]
enum End {
    /// Ran out of bytes (maybe inside a frame).
    NeedMore,
    Error(FrameError),
}

/// An independent parse of the whole stream: the specification of the decoder.
fn reference(data: &[u8], max_frame: u32) -> (Vec<(Header, Vec<u8>)>, End) {
    let mut frames = Vec::new();
    let mut at = 0;
    loop {
        let Some(raw) = data.get(at..at + HEADER_LEN) else {
            return (frames, End::NeedMore);
        };
        let raw: &[u8; HEADER_LEN] = raw.try_into().expect("14 bytes");
        let header = match Header::decode(raw) {
            Ok(header) => header,
            Err(error) => return (frames, End::Error(error)),
        };
        if header.len > max_frame {
            return (
                frames,
                End::Error(FrameError::TooLarge {
                    len: header.len,
                    max: max_frame,
                }),
            );
        }
        let start = at + HEADER_LEN;
        let Some(payload) = data.get(start..start + header.len as usize) else {
            return (frames, End::NeedMore);
        };
        frames.push((header, payload.to_vec()));
        at = start + header.len as usize;
    }
}

/// xorshift32, for chunk sizes.
struct Chunks(u32);

impl Chunks {
    fn next(&mut self, max: usize) -> usize {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        1 + (x as usize) % max
    }
}

fuzz_target!(|data: &[u8]| {
    let [select, chunking, stream @ ..] = data else {
        return;
    };
    let max_frame = MAX_FRAMES[usize::from(*select) % MAX_FRAMES.len()];
    let max = max_frame as usize;
    let (expected, expected_end) = reference(stream, max_frame);

    let mut decoder = FrameDecoder::new(max_frame);
    let mut got: Vec<(Header, Vec<u8>)> = Vec::new();
    let mut end = End::NeedMore;
    let mut chunks = Chunks(0x9e37_79b9 ^ u32::from(*chunking));
    let mut rest = stream;
    'feed: while !rest.is_empty() {
        let size = if *chunking == 0 {
            rest.len()
        } else {
            chunks.next(usize::from(*chunking)).min(rest.len())
        };
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        decoder.push(chunk);
        assert!(
            decoder.buffered() <= max + HEADER_LEN + chunk.len(),
            "{} bytes buffered after a push of {}, max frame {max}",
            decoder.buffered(),
            chunk.len()
        );
        loop {
            match decoder.next_frame() {
                Ok(Some((header, payload))) => {
                    assert!(
                        payload.len() <= max,
                        "payload of {} bytes over the maximum {max}",
                        payload.len()
                    );
                    assert_eq!(
                        payload.len(),
                        header.len as usize,
                        "payload length != header"
                    );
                    got.push((header, payload.to_vec()));
                }
                Ok(None) => break,
                Err(error) => {
                    // The error is sticky: the stream cannot be resynchronised.
                    assert_eq!(decoder.next_frame(), Err(error.clone()));
                    end = End::Error(error);
                    break 'feed;
                }
            }
        }
        assert!(
            decoder.buffered() < max.max(HEADER_LEN),
            "{} bytes buffered with no complete frame left, max frame {max}",
            decoder.buffered()
        );
    }
    assert_eq!(
        got.len(),
        expected.len(),
        "frame count differs from the reference"
    );
    assert!(got == expected, "frames differ from the reference parse");
    assert_eq!(end, expected_end);
});
