//! The operations of a run and the strategies that draw them.

use std::time::Duration;

use proptest::prelude::*;
use proptest::strategy::Union;

use crate::sim::Which;

#[derive(Clone, Debug)]
pub(super) enum Op {
    OpenRequest {
        side: Which,
        size: usize,
        timeout: Option<Duration>,
    },
    OpenStream {
        side: Which,
        size: usize,
        window: u32,
        timeout: Option<Duration>,
    },
    /// `accept_stream` on an incoming stream the side holds.
    Accept {
        side: Which,
        pick: usize,
        window: u32,
    },
    /// `send_message` on a stream the side holds, in either role.
    Send {
        side: Which,
        pick: usize,
        size: usize,
    },
    /// Reads up to `max` messages of a stream the side holds.
    Read {
        side: Which,
        pick: usize,
        max: usize,
    },
    /// `finish` on a call the side holds, in either role.
    Finish {
        side: Which,
        pick: usize,
    },
    Respond {
        side: Which,
        pick: usize,
        size: usize,
    },
    Fail {
        side: Which,
        pick: usize,
        remote: bool,
    },
    /// `cancel` of a call the side holds, in either role.
    Cancel {
        side: Which,
        pick: usize,
    },
    Advance(Duration),
    Network {
        max_chunk: usize,
        latency: Duration,
    },
    /// Hands up to `buffers` buffers of `poll_transmit` to the peer (when the
    /// pipe towards it is empty) and leaves the rest queued, like a driver whose
    /// socket is slow.
    WriteSome {
        side: Which,
        buffers: usize,
    },
    /// Cancels the call on which `side` last queued a message (in either role).
    CancelRecent {
        side: Which,
    },
    /// Stops reading a stream the side holds.
    StopReading {
        side: Which,
        pick: usize,
    },
    /// Reads a message of the stream on which `side` last queued a message.
    ReadRecent {
        side: Which,
    },
    /// Both sides of a stream act at once: `side` queues a message of `size`
    /// and writes `buffers` buffers of its queue, then the peer ends the call
    /// (cancel as opener; finish, fail or cancel as responder, by `end`) and
    /// writes its frames first.
    Race {
        side: Which,
        pick: usize,
        size: usize,
        buffers: usize,
        end: u8,
    },
    /// An opener gives up on streams in the middle of messages and retries:
    /// `side` opens `streams` streams, which the peer accepts with a window of
    /// one, queues a message of `size` on each, writes `buffers` buffers,
    /// cancels the streams, opens `reopen` requests of `reopen_size` bytes and
    /// writes `more_buffers` buffers.
    Abandon {
        side: Which,
        streams: usize,
        size: usize,
        buffers: usize,
        reopen: usize,
        reopen_size: usize,
        more_buffers: usize,
    },
    /// The application of `side` opens a request of `size` bytes, the driver
    /// writes `buffers` buffers, and the application closes: a close in the
    /// middle of an upload.
    CloseMidWrite {
        side: Which,
        size: usize,
        buffers: usize,
    },
    Drain {
        side: Which,
        timeout: Duration,
    },
    Close {
        side: Which,
    },
}

#[derive(Clone, Debug)]
pub(super) struct Step {
    pub(super) op: Op,
    /// Drive the pipes after the operation. Without it commands pile up in the
    /// send queues, as they do between two writes of a real driver.
    pub(super) drive: bool,
}

/// What a test run may do beyond the basic operations.
#[derive(Clone, Copy, Debug)]
pub(super) struct Features {
    pub(super) drain: bool,
    /// `WriteSome` and the operations that aim at messages cut by it.
    pub(super) write_one: bool,
    /// `Race` (implies `write_one`).
    pub(super) race: bool,
    /// `Abandon` (implies `write_one`).
    pub(super) abandon: bool,
    /// Each side accepts only two incoming calls at a time.
    pub(super) few_calls: bool,
    /// Small limits (buffered bytes, message size, calls, send buffer) and big
    /// messages.
    pub(super) small_limits: bool,
}

pub(super) const BASIC: Features = Features {
    drain: false,
    write_one: false,
    race: false,
    abandon: false,
    few_calls: false,
    small_limits: false,
};

fn which() -> impl Strategy<Value = Which> {
    prop_oneof![Just(Which::Client), Just(Which::Server)]
}

/// Payload sizes: mostly small, sometimes larger than the 16 KiB fragment.
fn size(min: usize, features: Features) -> BoxedStrategy<usize> {
    if features.small_limits {
        prop_oneof![
            4 => min..64usize,
            3 => 1_000..20_000usize,
            2 => 20_000..100_000usize,
        ]
        .boxed()
    } else if features.write_one {
        // Many multi-fragment messages, to be cut between fragments.
        prop_oneof![
            4 => min..64usize,
            2 => 64..4_096usize,
            4 => 16_000..40_000usize,
        ]
        .boxed()
    } else {
        prop_oneof![
            8 => min..64usize,
            3 => 64..4_096usize,
            1 => 16_000..40_000usize,
        ]
        .boxed()
    }
}

fn timeout() -> impl Strategy<Value = Option<Duration>> {
    prop_oneof![
        2 => Just(None),
        // Tiny, including under 1 ms (fails locally) and fractional milliseconds.
        1 => (0u64..2_500).prop_map(|us| Some(Duration::from_micros(us))),
        2 => (1u64..200).prop_map(|ms| Some(Duration::from_millis(ms))),
        3 => (200u64..10_000).prop_map(|ms| Some(Duration::from_millis(ms))),
        2 => (10u64..120).prop_map(|s| Some(Duration::from_secs(s))),
    ]
}

/// A stream window, in bytes: mostly some credit, sometimes none; from one
/// message at a time to the default.
fn window() -> impl Strategy<Value = u32> {
    prop_oneof![
        1 => Just(0u32),
        2 => 1u32..64,
        3 => 64u32..4_096,
        2 => 16_000u32..200_000,
        1 => Just(crate::DEFAULT_STREAM_WINDOW),
    ]
}

fn advance() -> impl Strategy<Value = Duration> {
    prop_oneof![
        5 => (0u64..2_000).prop_map(Duration::from_micros),
        3 => (2u64..100).prop_map(Duration::from_millis),
        2 => (100u64..3_000).prop_map(Duration::from_millis),
        1 => (10u64..70).prop_map(Duration::from_secs),
    ]
}

/// Chunking and latency. Without `latency_too` the latency stays zero, so the
/// pipes are empty after every drive and `WriteSome` can cut messages often.
fn network(latency_too: bool) -> impl Strategy<Value = Op> {
    let max_chunk = prop_oneof![
        3 => Just(usize::MAX),
        1 => 1..16usize,
        2 => 16..2_000usize,
        1 => 2_000..70_000usize,
    ];
    let latency = if latency_too {
        prop_oneof![
            2 => Just(Duration::ZERO),
            1 => Just(Duration::from_micros(100)),
            1 => Just(Duration::from_millis(1)),
            1 => Just(Duration::from_millis(5)),
        ]
        .boxed()
    } else {
        Just(Duration::ZERO).boxed()
    };
    (max_chunk, latency).prop_map(|(max_chunk, latency)| Op::Network { max_chunk, latency })
}

fn op(features: Features) -> impl Strategy<Value = Op> {
    let mut options: Vec<(u32, BoxedStrategy<Op>)> = vec![
        (
            80,
            (which(), size(0, features), timeout())
                .prop_map(|(side, size, timeout)| Op::OpenRequest {
                    side,
                    size,
                    timeout,
                })
                .boxed(),
        ),
        (
            60,
            (which(), 0usize..64, window(), timeout())
                .prop_map(|(side, size, window, timeout)| Op::OpenStream {
                    side,
                    size,
                    window,
                    timeout,
                })
                .boxed(),
        ),
        (
            80,
            (which(), any::<usize>(), window())
                .prop_map(|(side, pick, window)| Op::Accept { side, pick, window })
                .boxed(),
        ),
        (
            200,
            (which(), any::<usize>(), size(8, features))
                .prop_map(|(side, pick, size)| Op::Send { side, pick, size })
                .boxed(),
        ),
        (
            100,
            (which(), any::<usize>(), 1usize..=4)
                .prop_map(|(side, pick, max)| Op::Read { side, pick, max })
                .boxed(),
        ),
        (
            15,
            (which(), any::<usize>())
                .prop_map(|(side, pick)| Op::StopReading { side, pick })
                .boxed(),
        ),
        (
            40,
            (which(), any::<usize>())
                .prop_map(|(side, pick)| Op::Finish { side, pick })
                .boxed(),
        ),
        (
            60,
            (which(), any::<usize>(), size(0, features))
                .prop_map(|(side, pick, size)| Op::Respond { side, pick, size })
                .boxed(),
        ),
        (
            20,
            (which(), any::<usize>(), any::<bool>())
                .prop_map(|(side, pick, remote)| Op::Fail { side, pick, remote })
                .boxed(),
        ),
        (
            30,
            (which(), any::<usize>())
                .prop_map(|(side, pick)| Op::Cancel { side, pick })
                .boxed(),
        ),
        (100, advance().prop_map(Op::Advance).boxed()),
        (20, network(!features.write_one).boxed()),
        (3, which().prop_map(|side| Op::Close { side }).boxed()),
    ];
    if features.race {
        options.push((
            60,
            (
                which(),
                any::<usize>(),
                16_000..40_000usize,
                1..4usize,
                0..3u8,
            )
                .prop_map(|(side, pick, size, buffers, end)| Op::Race {
                    side,
                    pick,
                    size,
                    buffers,
                    end,
                })
                .boxed(),
        ));
    }
    if features.abandon {
        options.push((
            60,
            (
                which(),
                1..4usize,
                16_000..40_000usize,
                1..8usize,
                1..4usize,
                16_000..40_000usize,
                1..8usize,
            )
                .prop_map(
                    |(side, streams, size, buffers, reopen, reopen_size, more_buffers)| {
                        Op::Abandon {
                            side,
                            streams,
                            size,
                            buffers,
                            reopen,
                            reopen_size,
                            more_buffers,
                        }
                    },
                )
                .boxed(),
        ));
    }
    if features.write_one {
        options.push((
            20,
            (which(), 16_000..64_000usize, 1..6usize)
                .prop_map(|(side, size, buffers)| Op::CloseMidWrite {
                    side,
                    size,
                    buffers,
                })
                .boxed(),
        ));
    }
    if features.write_one {
        options.push((
            150,
            (which(), 1..4usize)
                .prop_map(|(side, buffers)| Op::WriteSome { side, buffers })
                .boxed(),
        ));
        // Frames on a mux whose message may be cut between two fragments.
        options.push((
            60,
            which().prop_map(|side| Op::CancelRecent { side }).boxed(),
        ));
        options.push((60, which().prop_map(|side| Op::ReadRecent { side }).boxed()));
    }
    if features.drain {
        let timeouts = prop_oneof![
            (1u64..50).prop_map(Duration::from_millis),
            (1u64..20).prop_map(Duration::from_secs),
        ];
        options.push((
            20,
            (which(), timeouts)
                .prop_map(|(side, timeout)| Op::Drain { side, timeout })
                .boxed(),
        ));
    }
    Union::new_weighted(options)
}

pub(super) fn steps(features: Features) -> impl Strategy<Value = Vec<Step>> {
    // Without a drive commands pile up in the send queues.
    let drive = if features.write_one {
        0.3
    } else if features.small_limits {
        0.6
    } else {
        0.85
    };
    prop::collection::vec(
        (op(features), prop::bool::weighted(drive)).prop_map(|(op, drive)| Step { op, drive }),
        1..120,
    )
}
