//! Whether the result that ends a call at its opener is justified.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::error::{CloseReason, Error};

use super::{Answer, Call, Violation};

/// What is known at the opener's side when one of its calls ends.
pub(super) struct EndContext<'a> {
    pub(super) now: Instant,
    pub(super) closed: bool,
    pub(super) close_reason: Option<&'a CloseReason>,
    pub(super) responder_draining: bool,
    /// The responder's longest deadline: it clamps a longer one, and tells the
    /// opener when the clamped deadline passes.
    pub(super) responder_max_deadline: Duration,
    /// The responder's call limits are small enough to be reached.
    pub(super) responder_may_overload: bool,
}

/// Whether the terminal result an opener saw is justified by what happened.
pub(super) fn check_terminal(
    call: &Call,
    result: &Result<Option<Bytes>, Error>,
    context: &EndContext<'_>,
) -> Result<(), Violation> {
    let now = context.now;
    let answer = call
        .r_answer
        .as_ref()
        .filter(|(_, sent)| *sent)
        .map(|(a, _)| a);
    match (result, answer) {
        (Err(Error::DeadlineExceeded), _) => {
            let millis = u64::try_from(call.timeout.as_micros().div_ceil(1000)).unwrap_or(u64::MAX);
            let clamped = Duration::from_millis(millis.max(1)) > context.responder_max_deadline;
            ensure!(
                now >= call.deadline
                    || (clamped && now >= call.opened_at + context.responder_max_deadline),
                "DeadlineExceeded before the deadline"
            );
        }
        (Err(Error::Overloaded), _) => {
            ensure!(
                !call.r_seen && context.responder_may_overload,
                "Overloaded from a responder that cannot be"
            );
        }
        (Err(Error::Disconnected), answer) => {
            ensure!(context.closed, "Disconnected on an open connection");
            // The responder closed by a graceful drain: it sent every answer it
            // made before its Close.
            let drained_by_peer =
                matches!(context.close_reason, Some(CloseReason::Peer(text)) if text == "drained");
            ensure!(
                !(drained_by_peer && answer.is_some()),
                "the responder answered {answer:?}, then drained, but the opener saw Disconnected"
            );
        }
        (Err(Error::Draining), _) => {
            ensure!(
                !call.r_seen && context.responder_draining,
                "Draining from a responder that is not"
            );
        }
        (Err(Error::Cancelled), Some(Answer::Cancel)) => {}
        (result, Some(answer)) => {
            let expected = match answer {
                Answer::Respond(payload) => Ok(Some(payload.clone())),
                Answer::Fail(error) => Err(error.clone()),
                Answer::Finish => Ok(None),
                Answer::Cancel => Err(Error::Cancelled),
            };
            ensure_eq!(result, &expected, "terminal result differs from the answer");
            if call.stream && !call.r2o.stopped {
                ensure_eq!(
                    call.r2o.read,
                    call.r2o.sent.len(),
                    "stream ended before every message was read"
                );
            }
        }
        (result, None) => ensure!(false, "unjustified terminal result {result:?}"),
    }
    Ok(())
}
