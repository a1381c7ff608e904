//! Byte windows on one stream, driven a transmit buffer at a time: a writer
//! sends whenever it has credit, a reader reads in batches of random sizes,
//! and what crosses the wire in between is chosen at random.

use std::collections::VecDeque;

use bytes::Bytes;
use proptest::prelude::*;

use crate::sim::model::message_cost;
use crate::sim::Pair;
use crate::{CallId, CommandError, Connection, ReadOutcome, DEFAULT_STREAM_WINDOW};

use super::proptest_config;

/// Turns after which a writer that has not finished is stuck.
const MAX_TURNS: usize = 20_000;

/// A message size: tiny ones, mid-sized ones, and ones larger than most
/// windows (and than a fragment).
fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        4 => 0usize..64,
        2 => 64usize..4_096,
        1 => 20_000usize..150_000,
    ]
}

fn window() -> impl Strategy<Value = u32> {
    prop_oneof![
        2 => 1u32..64,
        2 => 64u32..4_096,
        2 => 4_096u32..300_000,
        1 => Just(DEFAULT_STREAM_WINDOW),
    ]
}

/// Hands at most `buffers` transmit buffers of `from` to `to`; returns
/// whether any moved.
fn carry(
    from: &mut Connection,
    to: &mut Connection,
    pair_now: std::time::Instant,
    buffers: usize,
) -> bool {
    let mut moved = false;
    for _ in 0..buffers {
        let Some(bytes) = from.poll_transmit(pair_now) else {
            break;
        };
        to.handle_input(pair_now, &bytes);
        moved = true;
    }
    moved
}

/// The message numbered `i` of `len` bytes, recognisable byte for byte.
fn message(i: usize, len: usize) -> Bytes {
    (0..len).map(|at| (i * 31 + at) as u8).collect()
}

fn run(
    seed: u64,
    window: u32,
    sizes: &[usize],
    reads: &[usize],
    buffers: usize,
) -> Result<(), TestCaseError> {
    let mut pair = Pair::connected(seed);
    let (id, call) = pair.accepted_stream(0, window);
    let now = pair.now;
    let server_id: CallId = call.id;
    let mut sent = 0;
    let mut largest: Option<u64> = None;
    let mut received: Vec<Bytes> = Vec::new();
    let mut out = VecDeque::new();
    for turn in 0..MAX_TURNS {
        // The writer sends while it has credit.
        while let Some(&len) = sizes.get(sent) {
            match pair.client.conn.send_message(id, message(sent, len)) {
                Ok(()) => {
                    largest = largest.max(Some(message_cost(len)));
                    sent += 1;
                }
                Err(CommandError::NoCredit) => break,
                Err(error) => return Err(TestCaseError::fail(format!("send: {error:?}"))),
            }
        }
        if received.len() == sizes.len() {
            for (i, got) in received.iter().enumerate() {
                prop_assert!(*got == message(i, sizes[i]), "message {} differs", i);
            }
            return Ok(());
        }
        carry(&mut pair.client.conn, &mut pair.server.conn, now, buffers);
        // The receiver never holds a window and a message's worth.
        let unread = pair.server.conn.unread_bytes(server_id) as u64;
        let bound = largest.map_or(0, |cost| u64::from(window) + cost);
        prop_assert!(
            unread == 0 || unread < bound,
            "{unread} unread bytes with a window of {window} and largest message {largest:?}"
        );
        let max = reads[turn % reads.len()];
        match pair.server.conn.read(server_id, &mut out, max) {
            Ok(ReadOutcome::Messages { .. } | ReadOutcome::Empty) => received.extend(out.drain(..)),
            other => return Err(TestCaseError::fail(format!("read: {other:?}"))),
        }
        carry(&mut pair.server.conn, &mut pair.client.conn, now, buffers);
        pair.client.take_events();
        pair.server.take_events();
    }
    Err(TestCaseError::fail(format!(
        "stuck: sent {sent} of {}, received {}, client credit {}",
        sizes.len(),
        received.len(),
        pair.client.conn.send_credit(id)
    )))
}

proptest! {
    #![proptest_config(proptest_config(64, 0x6772_6964_0007))]

    /// A reader that reads everything always lets the writer finish, every
    /// message arrives whole and in order, and the receiver holds fewer
    /// unread bytes than its window plus the largest message, whatever the
    /// window, the message sizes, the read batches and the interleaving.
    #[test]
    fn a_reader_that_reads_everything_lets_the_writer_finish(
        seed in any::<u64>(),
        window in window(),
        sizes in proptest::collection::vec(size(), 1..60),
        reads in proptest::collection::vec(1usize..64, 1..8),
        buffers in 1usize..4,
    ) {
        run(seed, window, &sizes, &reads, buffers)?;
    }
}
