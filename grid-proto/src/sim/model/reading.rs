//! Reading streams, as either side's application does: every message read
//! must be the next one sent, and an end is reported only after the last.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::event::{CallId, ReadOutcome};
use crate::sim::{Pair, Which};

use super::{stream_payload, Call, Model, Violation};

impl Model {
    /// Streams whose messages `side`'s application may read: those it holds.
    pub fn readable(&self, side: Which) -> Vec<u32> {
        self.calls_where(|c| c.stream && if c.opener == side { c.o_open } else { c.r_held })
    }

    /// `side` reads up to `max` messages of `mux`; every message must be the
    /// next one sent, and an end reported only after the last of them.
    pub fn read(
        &mut self,
        pair: &mut Pair,
        side: Which,
        mux: u32,
        max: usize,
    ) -> Result<ReadOutcome, Violation> {
        let mut read = VecDeque::new();
        let result = pair.side(side).conn.read(CallId(mux), &mut read, max);
        if !self.readable(side).contains(&mux) {
            self.off_target("read", mux, result.is_ok())?;
            return Ok(ReadOutcome::Empty);
        }
        let step = self.step;
        let Some(call) = self.calls.get_mut(&mux) else {
            return Ok(ReadOutcome::Empty);
        };
        let as_opener = call.opener == side;
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(error) => {
                return Err(Violation::new(format!(
                    "step {step}: {side:?} cannot read {mux:#x}, which it holds: {error:?}"
                )))
            }
        };
        match &outcome {
            ReadOutcome::Messages { count, .. } => {
                ensure!(
                    *count >= 1 && *count <= max.max(1) && *count == read.len(),
                    "step {step}: read {count} messages of {mux:#x} ({} handed over, max {max})",
                    read.len()
                );
                for payload in read {
                    take_message(call, mux, as_opener, payload)
                        .map_err(|e| Violation::new(format!("step {step}: {mux:#x}: {e}")))?;
                }
            }
            ReadOutcome::Empty => {}
            ReadOutcome::Finished => {
                // A stream this side opened reports its end only after its
                // `StreamEnded`, where the model reads it to the end at once.
                ensure!(
                    !as_opener && call.r_cancelled.is_none(),
                    "step {step}: {side:?} read the end of {mux:#x} (opener {as_opener}, \
                     cancelled {:?})",
                    call.r_cancelled
                );
                ensure!(
                    call.o2r.stopped || Some(call.o2r.read) == call.o2r.fin_at,
                    "step {step}: input of {mux:#x} finished after {} of {:?} messages were read",
                    call.o2r.read,
                    call.o2r.fin_at
                );
                call.r_input_finished = true;
            }
            ReadOutcome::Failed(error) => ensure!(
                !as_opener && call.r_cancelled.as_ref() == Some(error),
                "step {step}: {side:?} read {mux:#x} as failed with {error:?} (opener \
                 {as_opener}, cancelled {:?})",
                call.r_cancelled
            ),
        }
        Ok(outcome)
    }

    /// `side` stops reading `mux`: what waits is dropped, and what arrives
    /// later is consumed at once.
    pub fn stop_reading(
        &mut self,
        pair: &mut Pair,
        side: Which,
        mux: u32,
    ) -> Result<(), Violation> {
        let result = pair.side(side).conn.stop_reading(CallId(mux));
        if !self.readable(side).contains(&mux) {
            return self.off_target("stop_reading", mux, result.is_ok());
        }
        ensure_eq!(
            result,
            Ok(()),
            "step {}: stop_reading {:#x}",
            self.step,
            mux
        );
        if let Some(call) = self.calls.get_mut(&mux) {
            let dir = if call.opener == side {
                &mut call.r2o
            } else {
                &mut call.o2r
            };
            dir.stopped = true;
        }
        Ok(())
    }

    /// `side` reads `mux` until nothing more waits.
    pub fn read_all(&mut self, pair: &mut Pair, side: Which, mux: u32) -> Result<(), Violation> {
        while let ReadOutcome::Messages { .. } = self.read(pair, side, mux, usize::MAX)? {}
        Ok(())
    }
}

/// Checks a message that the application of the receiving side read on call
/// `mux` (`as_opener`: the opener read it) against what the sender sent, byte
/// for byte and in order, and counts it.
pub(super) fn take_message(
    call: &mut Call,
    mux: u32,
    as_opener: bool,
    payload: Bytes,
) -> Result<(), String> {
    let dir = if as_opener {
        &mut call.r2o
    } else {
        &mut call.o2r
    };
    if dir.stopped {
        return Err(format!(
            "read a message after stopping reading, at {}",
            dir.read
        ));
    }
    let seq = dir.read;
    let Some(&sent) = dir.sent.get(seq) else {
        return Err(format!("read message {seq}, only {} sent", dir.sent.len()));
    };
    if payload != stream_payload(mux, !as_opener, seq, sent) {
        let got_seq = payload
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes);
        return Err(format!(
            "message {seq} arrived as {} bytes with sequence {got_seq:?}, sent as {sent} bytes",
            payload.len()
        ));
    }
    if let Some(fin_at) = dir.fin_at {
        if seq >= fin_at {
            return Err(format!("message {seq} after fin at {fin_at}"));
        }
    }
    dir.read += 1;
    Ok(())
}
