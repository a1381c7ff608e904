//! Picking apart the events a [`Side`](super::Side) collected, and reading
//! what a stream holds.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::connection::Connection;
use crate::error::CloseReason;
use crate::event::{CallId, Event, ReadOutcome};

/// Reads every message waiting on stream `id` (which returns their credit),
/// in order; then what the next read found: `Empty`, or the stream's end.
///
/// # Panics
///
/// If the connection refuses the read.
pub fn read_to_end(conn: &mut Connection, id: CallId) -> (Vec<Bytes>, ReadOutcome) {
    let mut read = VecDeque::new();
    loop {
        match conn.read(id, &mut read, usize::MAX) {
            Ok(ReadOutcome::Messages { .. }) => {}
            Ok(outcome) => return (read.into(), outcome),
            Err(error) => panic!("read of {id}: {error:?}"),
        }
    }
}

/// The messages [`read_to_end`] reads, without the outcome.
pub fn read_messages(conn: &mut Connection, id: CallId) -> Vec<Bytes> {
    read_to_end(conn, id).0
}

/// The reason of the `Closed` event among `events`, if there is one.
pub fn closed_reason(events: &[Event]) -> Option<CloseReason> {
    events.iter().find_map(|event| match event {
        Event::Closed(reason) => Some(reason.clone()),
        _ => None,
    })
}
