//! A whole test run: the pair and its model, and the operations of the
//! strategies applied to them.

use std::time::Duration;

use crate::config::Role;
use crate::sim::model::{Allowances, LimitCloses, Model, Violation};
use crate::sim::{sim_config, Pair};

use super::ops::{Features, Op, Step};

/// A whole test run: the pair, the model and the bookkeeping of the checks.
pub(super) struct Harness {
    pub(super) pair: Pair,
    pub(super) model: Model,
}

impl Harness {
    pub(super) fn new(seed: u64, features: Features) -> Harness {
        let mut client = sim_config(Role::Dialer, seed);
        let mut server = sim_config(Role::Acceptor, seed.wrapping_add(1));
        // The server accepts shorter deadlines than the client asks for: it clamps
        // them, and tells the client when a clamped deadline passes.
        server.timeouts.max_deadline = Duration::from_secs(5);
        if features.small_limits {
            for (config, calls, message) in [(&mut client, 6, 90_000), (&mut server, 4, 70_000)] {
                config.limits.max_buffered_bytes = 64 * 1024;
                config.limits.max_message_size = message;
                config.limits.max_incoming_calls = calls;
                config.limits.max_incoming_streams = calls / 2;
                config.limits.send_buffer_size = 48 * 1024;
            }
        }
        if features.few_calls {
            for config in [&mut client, &mut server] {
                config.limits.max_incoming_calls = 2;
                config.limits.max_incoming_streams = 2;
            }
        }
        let allow = Allowances {
            overload: features.small_limits || features.few_calls,
            limit_closes: if features.small_limits {
                LimitCloses::BufferedBytes
            } else {
                LimitCloses::Never
            },
            peer_timeouts: false,
        };
        Harness {
            model: Model::new(&client, &server, allow),
            pair: Pair::connected_with(client, server, seed),
        }
    }

    pub(super) fn run(&mut self, steps: &[Step]) -> Result<(), Violation> {
        for (n, step) in steps.iter().enumerate() {
            self.model.step = n;
            self.apply(&step.op)?;
            if step.drive {
                self.pair.drive();
            }
            self.model.pump(&mut self.pair)?;
            self.model.check(&self.pair)?;
        }
        self.model.step = steps.len();
        self.model.wind_down(&mut self.pair)
    }

    // ----- operations -----

    fn apply(&mut self, op: &Op) -> Result<(), Violation> {
        match *op {
            Op::OpenRequest {
                side,
                size,
                timeout,
            } => self.model.open(&mut self.pair, side, None, size, timeout),
            Op::OpenStream {
                side,
                size,
                window,
                timeout,
            } => self
                .model
                .open(&mut self.pair, side, Some(window), size, timeout),
            Op::Accept { side, pick, window } => {
                // Streams not accepted yet; a second accept is tried at the end of
                // the case (`wind_down`).
                let held = self
                    .model
                    .calls_where(|c| c.opener != side && c.r_held && c.stream && !c.r_accepted);
                match pick_one(&held, pick) {
                    Some(mux) => self.model.accept(&mut self.pair, side, mux, window),
                    None => Ok(()),
                }
            }
            Op::Send { side, pick, size } => {
                let streams = self.model.calls_where(|c| {
                    c.stream && if c.opener == side { c.o_open } else { c.r_held }
                });
                match pick_one(&streams, pick) {
                    Some(mux) => self.model.send(&mut self.pair, side, mux, size),
                    None => Ok(()),
                }
            }
            Op::Read { side, pick, max } => {
                let streams = self.model.readable(side);
                match pick_one(&streams, pick) {
                    Some(mux) => self.model.read(&mut self.pair, side, mux, max).map(|_| ()),
                    None => Ok(()),
                }
            }
            Op::Finish { side, pick } => {
                let calls = self.model.calls_where(|c| {
                    if c.opener == side {
                        c.o_open && c.stream
                    } else {
                        c.r_held
                    }
                });
                match pick_one(&calls, pick) {
                    Some(mux) => self.model.finish(&mut self.pair, side, mux),
                    None => Ok(()),
                }
            }
            Op::Respond { side, pick, size } => {
                let held = self.model.calls_where(|c| c.opener != side && c.r_held);
                match pick_one(&held, pick) {
                    Some(mux) => self.model.respond(&mut self.pair, side, mux, size),
                    None => Ok(()),
                }
            }
            Op::Fail { side, pick, remote } => {
                let held = self.model.calls_where(|c| c.opener != side && c.r_held);
                match pick_one(&held, pick) {
                    Some(mux) => self.model.fail(&mut self.pair, side, mux, remote),
                    None => Ok(()),
                }
            }
            Op::Cancel { side, pick } => {
                let calls =
                    self.model
                        .calls_where(|c| if c.opener == side { c.o_open } else { c.r_held });
                match pick_one(&calls, pick) {
                    Some(mux) => self.model.cancel(&mut self.pair, side, mux),
                    None => Ok(()),
                }
            }
            Op::Advance(duration) => {
                self.pair.advance(duration);
                Ok(())
            }
            Op::Network { max_chunk, latency } => {
                self.pair.max_chunk = max_chunk;
                self.pair.latency = latency;
                Ok(())
            }
            Op::WriteSome { side, buffers } => self.model.write_some(&mut self.pair, side, buffers),
            Op::Race {
                side,
                pick,
                size,
                buffers,
                end,
            } => {
                let peer = side.other();
                let streams = self.model.calls_where(|c| {
                    c.stream
                        && c.o_open
                        && c.live_at_responder()
                        && !(c.opener == side && c.o_finished)
                });
                let Some(mux) = pick_one(&streams, pick) else {
                    return Ok(());
                };
                self.model.send(&mut self.pair, side, mux, size)?;
                self.model.write_some(&mut self.pair, side, buffers)?;
                let call = &self.model.calls[&mux];
                if call.opener == peer {
                    if call.o_open {
                        self.model.cancel(&mut self.pair, peer, mux)?;
                    }
                } else if call.r_held {
                    match end {
                        0 => self.model.finish(&mut self.pair, peer, mux)?,
                        1 => self.model.fail(&mut self.pair, peer, mux, true)?,
                        _ => self.model.cancel(&mut self.pair, peer, mux)?,
                    }
                }
                self.model.write_some(&mut self.pair, peer, 4)
            }
            Op::Abandon {
                side,
                streams,
                size,
                buffers,
                reopen,
                reopen_size,
                more_buffers,
            } => {
                let mut opened = Vec::new();
                for _ in 0..streams {
                    let before = self.model.recent[side.index()];
                    self.model.open(&mut self.pair, side, Some(1), 0, None)?;
                    if self.model.recent[side.index()] != before {
                        opened.extend(self.model.recent[side.index()]);
                    }
                }
                self.pair.drive();
                self.model.pump(&mut self.pair)?;
                for &mux in &opened {
                    if self.model.calls[&mux].live_at_responder()
                        && !self.model.calls[&mux].r_accepted
                    {
                        self.model.accept(&mut self.pair, side.other(), mux, 1)?;
                    }
                }
                self.pair.drive();
                self.model.pump(&mut self.pair)?;
                let streams = opened;
                for &mux in &streams {
                    if self.model.calls[&mux].o_open {
                        self.model.send(&mut self.pair, side, mux, size)?;
                    }
                }
                self.model.write_some(&mut self.pair, side, buffers)?;
                for mux in streams {
                    if self.model.calls[&mux].o_open {
                        self.model.cancel(&mut self.pair, side, mux)?;
                    }
                }
                for _ in 0..reopen {
                    self.model
                        .open(&mut self.pair, side, None, reopen_size, None)?;
                }
                self.model.write_some(&mut self.pair, side, more_buffers)
            }
            Op::CancelRecent { side } => match self.model.recent[side.index()] {
                Some(mux)
                    if self.model.calls.get(&mux).is_some_and(|c| {
                        if c.opener == side {
                            c.o_open
                        } else {
                            c.r_held
                        }
                    }) =>
                {
                    self.model.cancel(&mut self.pair, side, mux)
                }
                _ => Ok(()),
            },
            Op::StopReading { side, pick } => {
                let streams = self.model.readable(side);
                match pick_one(&streams, pick) {
                    Some(mux) => self.model.stop_reading(&mut self.pair, side, mux),
                    None => Ok(()),
                }
            }
            Op::ReadRecent { side } => match self.model.recent[side.index()] {
                Some(mux) if self.model.readable(side).contains(&mux) => {
                    self.model.read(&mut self.pair, side, mux, 1).map(|_| ())
                }
                _ => Ok(()),
            },
            Op::Drain { side, timeout } => {
                self.model.drain(&mut self.pair, side, timeout);
                Ok(())
            }
            Op::CloseMidWrite {
                side,
                size,
                buffers,
            } => {
                self.model.open(&mut self.pair, side, None, size, None)?;
                self.model.write_some(&mut self.pair, side, buffers)?;
                self.apply(&Op::Close { side })
            }
            Op::Close { side } => {
                self.model.close(&mut self.pair, side);
                Ok(())
            }
        }
    }
}

/// The `pick`-th candidate, modulo their number (shrinks towards the first).
fn pick_one(muxes: &[u32], pick: usize) -> Option<u32> {
    (!muxes.is_empty()).then(|| muxes[pick % muxes.len()])
}
