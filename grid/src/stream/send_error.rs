//! Why a stream message could not be sent.

use grid_proto::{CommandError, Error};

/// Why a stream's send half could not send.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// This half already finished its output (`finish`, or closing the `Sink`).
    #[error("this side already finished sending on the stream")]
    Finished,
    /// The stream ended normally: the other side takes no more messages.
    #[error("the stream has ended")]
    Ended,
    /// The stream failed, was cancelled or lost its connection, or this
    /// message could not be sent (e.g. [`Error::TooLarge`], [`Error::Encode`]).
    #[error(transparent)]
    Failed(#[from] Error),
}

impl SendError {
    /// The send half's view of a refusal that is not back-pressure.
    pub(crate) fn from_refusal(refused: CommandError) -> SendError {
        match refused {
            CommandError::Finished => SendError::Finished,
            CommandError::Call(error) => SendError::Failed(error),
            // A stream the protocol no longer holds has ended: the handler
            // that owned it returned. Back-pressure never gets here: the send
            // half waits it out.
            _ => SendError::Ended,
        }
    }
}
