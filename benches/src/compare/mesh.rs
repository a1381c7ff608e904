//! A mesh of grid-tokio nodes in one process, every node calling every other.
//!
//! All nodes share one tokio multi-thread runtime with two worker threads
//! (the machine's cores): a mesh of N nodes cannot have a thread per node on
//! a 2-core machine anyway, and the figure asked for is the aggregate. Each
//! ordered pair of nodes keeps its own closed loop of calls (every caller a
//! task of its own), all counted into one tally.

use std::time::Duration;

use bytes::Bytes;
use grid_tokio::Tokio;

use super::grid_rt::{bind_nodes, echo_call, start_node};
use super::measure::{closed_loop, Callers, Session, Tally};

/// Worker threads of the mesh's runtime.
pub const WORKER_THREADS: usize = 2;

/// `nodes` grid-tokio nodes; every node keeps `in_flight` echo calls of
/// `size` bytes outstanding to every other node.
pub fn mesh(
    session: Session,
    nodes: usize,
    in_flight: usize,
    size: usize,
) -> Result<Tally, String> {
    let (listeners, names) = bind_nodes(nodes)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot build a tokio runtime: {e}"))?;
    runtime.block_on(async move {
        let mut managers = Vec::new();
        for (name, listener) in names.iter().zip(listeners) {
            managers.push(start_node::<Tokio>(name, &names, listener).await?);
        }
        for manager in &managers {
            manager
                .wait_all_connected(Duration::from_secs(10))
                .await
                .map_err(|e| format!("the mesh did not connect: {e}"))?;
        }
        let payload = Bytes::from(vec![0xa5; size]);
        let window = session.begin();
        let mut pairs = Vec::new();
        for manager in &managers {
            for peer in manager.peers() {
                let conn = manager.peer(&peer).map_err(|e| e.to_string())?;
                let payload = payload.clone();
                pairs.push(tokio::spawn(closed_loop(
                    Callers::Tasks,
                    |task| drop(tokio::spawn(task)),
                    in_flight,
                    window,
                    conn,
                    move |conn| echo_call(conn, payload.clone()),
                )));
            }
        }
        let mut total = Tally::default();
        let mut failure = None;
        for pair in pairs {
            match pair.await {
                Ok(Ok(tally)) => total.merge(&tally),
                Ok(Err(error)) => failure = Some(error),
                Err(error) => failure = Some(format!("a caller task failed: {error}")),
            }
        }
        for manager in &managers {
            manager.shutdown(Duration::ZERO).await;
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(total),
        }
    })
}
