//! The end of a run: both applications end everything they hold.

use std::time::Duration;

use crate::sim::{Pair, Which};

use super::{Model, Violation};

impl Model {
    // ----- the end -----

    /// Both applications end everything they hold, read everything waiting,
    /// the openers finish their streams; then property 3.
    pub fn wind_down(&mut self, pair: &mut Pair) -> Result<(), Violation> {
        for round in 0..20 {
            // Let everything in flight land (and deadlines under 1 ms away fire).
            let latency = pair.latency;
            pair.advance(latency * 2 + Duration::from_millis(2));
            self.pump(pair)?;
            self.check(pair)?;
            if self.settled(pair) && self.calls.values().all(|c| !c.o_open && !c.r_held) {
                break;
            }
            for side in Which::BOTH {
                if round == 0 {
                    // Accepting twice, or a cancelled stream, fails.
                    for mux in self.calls_where(|c| c.opener != side && c.r_held && c.stream) {
                        self.accept(pair, side, mux, 2)?;
                    }
                }
                for mux in self.readable(side) {
                    self.read_all(pair, side, mux)?;
                }
                for mux in
                    self.calls_where(|c| c.opener == side && c.o_open && c.stream && !c.o_finished)
                {
                    self.finish(pair, side, mux)?;
                }
                for mux in self.calls_where(|c| c.opener != side && c.r_held) {
                    let call = &self.calls[&mux];
                    if call.r_cancelled.is_some() {
                        self.fail(pair, side, mux, true)?;
                    } else if call.stream {
                        self.finish(pair, side, mux)?;
                    } else {
                        self.respond(pair, side, mux, 16)?;
                    }
                }
            }
            self.pump(pair)?;
            self.check(pair)?;
        }
        let open = self.calls_where(|c| c.o_open || c.r_held);
        ensure!(
            open.is_empty(),
            "calls {open:x?} still open after the wind-down"
        );
        ensure!(self.settled(pair), "the pair does not settle");
        for (mux, call) in &self.calls {
            ensure!(
                call.o_cancelled != call.o_result.is_some(),
                "{mux:#x}: cancelled by its opener {}, result {:?}",
                call.o_cancelled,
                call.o_result
            );
        }
        for side in Which::BOTH {
            let connection = &pair.side_ref(side).conn;
            let stats = connection.stats();
            ensure_eq!(
                connection.in_flight(),
                (0, 0),
                "{:?} in flight at the end",
                side
            );
            ensure_eq!(
                (
                    stats.outgoing_calls,
                    stats.incoming_calls,
                    stats.outgoing_streams,
                    stats.incoming_streams
                ),
                (0, 0, 0, 0),
                "{:?} call gauges at the end",
                side
            );
            ensure_eq!(
                stats.buffered_bytes,
                0,
                "{:?} buffered bytes at the end",
                side
            );
            ensure_eq!(stats.send_buffered, 0, "{:?} send buffer at the end", side);
        }
        // A refused command is followed by `Writable` once the send buffer has
        // room (at the latest with the next keepalive ping that leaves).
        let keepalive = self.timeouts[0]
            .keepalive_interval
            .max(self.timeouts[1].keepalive_interval);
        pair.advance(keepalive + Duration::from_secs(1));
        self.pump(pair)?;
        for side in Which::BOTH {
            let model = &self.sides[side.index()];
            ensure!(
                !model.owed_writable || model.closed.is_some(),
                "{side:?} refused a command with SendBufferFull and never said Writable"
            );
        }
        Ok(())
    }
}
