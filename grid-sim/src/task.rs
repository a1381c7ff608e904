//! Work run on a simulated node, and its result as the test sees it.

use std::fmt;

use tokio::sync::oneshot;

/// Why a [`Task`] gave no result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskError {
    /// The node crashed, or was down when the task was given to it, so the
    /// task was dropped or never ran.
    Lost,
    /// The simulation reached the given virtual time first.
    TimedOut,
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Lost => f.write_str("the node went down before the task finished"),
            TaskError::TimedOut => f.write_str("the task did not finish in time"),
        }
    }
}

impl std::error::Error for TaskError {}

/// A task running on a simulated node, started by
/// [`Simulation::spawn`](crate::Simulation::spawn). It runs as the
/// simulation runs; the test reads its result between steps.
#[derive(Debug)]
pub struct Task<T> {
    result: oneshot::Receiver<T>,
}

impl<T> Task<T> {
    pub(crate) fn new(result: oneshot::Receiver<T>) -> Task<T> {
        Task { result }
    }

    /// The task's result if it has finished, `Ok(None)` while it runs,
    /// [`TaskError::Lost`] if its node went down first.
    pub fn try_result(&mut self) -> Result<Option<T>, TaskError> {
        match self.result.try_recv() {
            Ok(value) => Ok(Some(value)),
            Err(oneshot::error::TryRecvError::Empty) => Ok(None),
            Err(oneshot::error::TryRecvError::Closed) => Err(TaskError::Lost),
        }
    }
}
