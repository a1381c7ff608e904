//! Where the two sides of a point run: the *split* and *single* topologies of
//! DESIGN.md §6, on tokio and on async-std.
//!
//! - tokio, split: the server side on a `new_current_thread` runtime in a
//!   thread of its own, the client side on another in the point's thread.
//! - tokio, single: both sides on one `new_current_thread` runtime.
//! - async-std has no per-node executor: every task grid spawns goes to the
//!   one global executor. *single* runs it with one worker thread (both nodes
//!   and the load on it: a true single-thread topology); *split* runs it with
//!   two worker threads shared by both nodes (a two-thread pool, which is what
//!   an async-std application gets — not one thread per node).

use std::future::Future;

use futures::channel::oneshot;

/// Which threads the two sides of a connection run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topology {
    /// Client and server each on a single-thread runtime of its own.
    Split,
    /// Client and server on one single-thread runtime.
    Single,
    /// Everything on one multi-thread runtime (the mesh only: a mesh of
    /// eight nodes has no thread per node on two cores).
    MultiThread,
}

impl Topology {
    /// Both topologies, in report order.
    pub const ALL: [Topology; 2] = [Topology::Split, Topology::Single];

    /// Short name used in the report and the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Topology::Split => "split",
            Topology::Single => "single",
            Topology::MultiThread => "multi-thread",
        }
    }
}

/// Resolves when the server side should stop (the client side is done).
pub type Stop = oneshot::Receiver<()>;

/// Runs a server side and a client side on tokio in `topology`; returns the
/// client's result once both have ended.
///
/// `server` runs until its [`Stop`] resolves; `client` runs to completion.
/// Both are built inside their runtime, so they may create tokio sockets.
/// Each side is a spawned task, as callers and servers are in a real node:
/// the `block_on` future itself would cost an extra poll of the I/O driver on
/// every wake-up (tokio checks for I/O before polling it again), which taxes
/// every system whose caller is woken by a connection task but not raw TCP,
/// whose caller does its own I/O.
pub fn tokio_pair<S, SF, C, CF, T>(topology: Topology, server: S, client: C) -> Result<T, String>
where
    S: FnOnce(Stop) -> SF + Send + 'static,
    SF: Future<Output = ()> + Send + 'static,
    C: FnOnce() -> CF + Send + 'static,
    CF: Future<Output = Result<T, String>> + Send + 'static,
    T: Send + 'static,
{
    let (stop_tx, stop_rx) = oneshot::channel();
    match topology {
        Topology::Split => {
            let server_thread = std::thread::Builder::new()
                .name("server".into())
                .spawn(move || -> Result<(), String> {
                    current_thread()?.block_on(async move {
                        tokio::spawn(server(stop_rx))
                            .await
                            .map_err(|e| format!("the server side failed: {e}"))
                    })
                })
                .map_err(|e| format!("cannot start the server thread: {e}"))?;
            let outcome = current_thread()?.block_on(async move {
                tokio::spawn(async move { client().await })
                    .await
                    .map_err(|e| format!("the client side failed: {e}"))?
            });
            let _ = stop_tx.send(());
            server_thread
                .join()
                .map_err(|_| "the server side panicked".to_string())??;
            outcome
        }
        Topology::Single => current_thread()?.block_on(async move {
            let server = tokio::spawn(server(stop_rx));
            let outcome = tokio::spawn(async move { client().await })
                .await
                .map_err(|e| format!("the client side failed: {e}"))?;
            let _ = stop_tx.send(());
            server
                .await
                .map_err(|e| format!("the server side failed: {e}"))?;
            outcome
        }),
        Topology::MultiThread => Err("two sides do not run on a multi-thread runtime here".into()),
    }
}

/// A single-thread tokio runtime with I/O and timers.
pub fn current_thread() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot build a tokio runtime: {e}"))
}

/// Worker threads of async-std's global executor when the comparison starts.
/// `main` sets `ASYNC_STD_THREAD_COUNT` to this before anything touches
/// async-std.
pub const ASYNC_STD_BASE_THREADS: usize = 1;

/// Runs a server side and a client side as tasks on async-std's global
/// executor, with one worker thread for `Single` and two for `Split` (see the
/// module docs); returns the client's result once both have ended.
pub fn async_std_pair<S, SF, C, CF, T>(
    topology: Topology,
    server: S,
    client: C,
) -> Result<T, String>
where
    S: FnOnce(Stop) -> SF + Send + 'static,
    SF: Future<Output = ()> + Send + 'static,
    C: FnOnce() -> CF + Send + 'static,
    CF: Future<Output = Result<T, String>> + Send + 'static,
    T: Send + 'static,
{
    let extra = match topology {
        Topology::Split => 2 - ASYNC_STD_BASE_THREADS,
        Topology::Single => 1 - ASYNC_STD_BASE_THREADS,
        Topology::MultiThread => return Err("not a topology of two sides".into()),
    };
    async_std::task::block_on(async move {
        let added = async_global_executor::spawn_more_threads(extra)
            .await
            .map_err(|e| format!("cannot add async-std worker threads: {e}"))?;
        let (stop_tx, stop_rx) = oneshot::channel();
        let server = async_std::task::spawn(server(stop_rx));
        let outcome = async_std::task::spawn(async move { client().await }).await;
        let _ = stop_tx.send(());
        server.await;
        for _ in 0..added {
            async_global_executor::stop_thread().await;
        }
        outcome
    })
}

/// Threads of this process whose name starts with `prefix` (Linux only;
/// `None` elsewhere). Used to state how many executor threads really ran.
pub fn threads_named(prefix: &str) -> Option<usize> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    let mut count = 0;
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.starts_with(prefix) {
            count += 1;
        }
    }
    Some(count)
}
