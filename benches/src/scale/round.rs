//! The all-to-all round: every node calls every other node once, all calls
//! at the same time, each from a task of its own.

use std::time::{Duration, Instant};

use bytes::Bytes;
use grid::Manager;
use grid_tokio::Tokio;

use crate::compare::grid_rt::echo_call;

/// Size of each call's request (echoed back).
pub const CALL_SIZE: usize = 32;

/// How the round went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Round {
    /// Calls made and answered: N(N-1).
    pub calls: u64,
    /// From spawning the first call's task until the last one finished.
    pub elapsed: Duration,
}

/// Makes one [`CALL_SIZE`]-byte echo call from every node to every other,
/// one spawned task per call, all spawned before any is awaited. Fails if
/// any call fails: every figure of the round is of calls that were answered.
pub async fn all_to_all(managers: &[Manager<Tokio>]) -> Result<Round, String> {
    let payload = Bytes::from(vec![0xa5; CALL_SIZE]);
    // Peer handles are looked up before the clock starts: the round measures
    // calls, not name lookups.
    let mut peers = Vec::new();
    for manager in managers {
        for name in manager.peers() {
            peers.push(manager.peer(&name).map_err(|e| e.to_string())?);
        }
    }
    let calls = peers.len() as u64;
    let started = Instant::now();
    let tasks: Vec<_> = peers
        .into_iter()
        .map(|peer| tokio::spawn(echo_call(peer, payload.clone())))
        .collect();
    let mut failed = 0u64;
    let mut first_error = None;
    for task in tasks {
        let error = match task.await {
            Ok(Ok(_peer)) => continue,
            Ok(Err(error)) => error,
            Err(error) => format!("a call's task failed: {error}"),
        };
        failed += 1;
        first_error.get_or_insert(error);
    }
    let elapsed = started.elapsed();
    match first_error {
        None => Ok(Round { calls, elapsed }),
        Some(error) => Err(format!(
            "{failed} of {calls} calls of the all-to-all round failed, the first with: {error}"
        )),
    }
}
