//! Picking apart the events a [`Side`](super::Side) collected.

use bytes::Bytes;

use crate::error::CloseReason;
use crate::event::Event;

/// The payloads of every `Message` event, in order.
pub fn messages(events: &[Event]) -> Vec<Bytes> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Message { payload, .. } => Some(payload.clone()),
            _ => None,
        })
        .collect()
}

/// The reason of the `Closed` event among `events`, if there is one.
pub fn closed_reason(events: &[Event]) -> Option<CloseReason> {
    events.iter().find_map(|event| match event {
        Event::Closed(reason) => Some(reason.clone()),
        _ => None,
    })
}
