//! Without the `metrics` feature: nothing is recorded, and nothing is read
//! (not even the clock) to record it.

use std::time::Instant;

use grid_proto::Error;

use super::{CallKind, Side};
use crate::failure::FailureKind;
use crate::handler::HandlerId;
use crate::runtime::SharedClock;

/// A node's metric handles: none.
#[derive(Debug, Default)]
pub(crate) struct Telemetry;

impl Telemetry {
    pub(crate) fn new() -> Telemetry {
        Telemetry
    }

    #[inline]
    pub(crate) fn start(
        &self,
        _side: Side,
        _kind: CallKind,
        _handler: Option<HandlerId>,
        _started: Instant,
        _clock: &SharedClock,
    ) -> CallObserver {
        CallObserver
    }

    #[inline]
    pub(crate) fn start_now(
        &self,
        _side: Side,
        _kind: CallKind,
        _handler: Option<HandlerId>,
        _clock: &SharedClock,
    ) -> CallObserver {
        CallObserver
    }
}

/// A call being observed: nothing to do.
#[derive(Debug, Default)]
pub(crate) struct CallObserver;

impl CallObserver {
    #[inline]
    pub(crate) fn finish(&mut self, _outcome: Result<(), &Error>) {}
}

#[inline]
pub(crate) fn count_failure(_peer: &str, _kind: FailureKind) {}
