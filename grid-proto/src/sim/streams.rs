//! Streams set up in one call: the client opens, the server sees (and accepts).

use bytes::Bytes;

use crate::connection::CallTarget;
use crate::event::{CallId, Event, IncomingCall};

use super::Pair;

/// The handler the streams of these helpers are opened on.
pub const STREAM_HANDLER: u16 = 3;

/// A window that holds exactly `messages` messages of `len` bytes: what they
/// cost, so the next one is refused for want of credit.
pub fn window_of(messages: u32, len: usize) -> u32 {
    let cost = len as u64 + u64::from(crate::STREAM_MESSAGE_OVERHEAD);
    u32::try_from(u64::from(messages) * cost).unwrap_or(u32::MAX)
}

impl Pair {
    /// The client opens a stream with `payload` and a window of `window`
    /// bytes; after a drive the server's only event is its `IncomingStream`.
    /// Returns the client's id and the server's view of the call.
    ///
    /// # Panics
    ///
    /// If the open fails or the server sees anything else.
    pub fn open_stream(&mut self, payload: Bytes, window: u32) -> (CallId, IncomingCall) {
        let id = self
            .client
            .conn
            .open_stream(
                self.now,
                CallTarget::new(STREAM_HANDLER),
                payload,
                None,
                window,
            )
            .unwrap_or_else(|error| panic!("open_stream: {error:?}"));
        self.drive();
        let call = match &self.server.take_events()[..] {
            [Event::IncomingStream(call)] => call.clone(),
            other => panic!("expected one IncomingStream, got {other:?}"),
        };
        (id, call)
    }

    /// As [`Pair::open_stream`] with an empty payload, then the server accepts
    /// with a window of `server_window` and the client's events are taken.
    /// Returns the client's id and the server's view of the call.
    ///
    /// # Panics
    ///
    /// If the open or the accept fails.
    pub fn accepted_stream(
        &mut self,
        client_window: u32,
        server_window: u32,
    ) -> (CallId, IncomingCall) {
        let (id, call) = self.open_stream(Bytes::new(), client_window);
        self.server
            .conn
            .accept_stream(call.id, server_window)
            .unwrap_or_else(|error| panic!("accept_stream: {error:?}"));
        self.drive();
        self.client.take_events();
        (id, call)
    }
}
