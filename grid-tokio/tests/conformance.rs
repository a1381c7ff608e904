//! The grid conformance suite on tokio.

/// Each test on its own single-threaded tokio runtime.
fn block_on(test: grid::BoxFuture<'static, ()>) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(test)
}

grid::conformance_tests!(grid_tokio::Tokio, block_on);

/// A multi-thread runtime with two workers, so that callers and connection
/// drivers write to one socket from different threads.
fn block_on_two_workers(test: grid::BoxFuture<'static, ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(test)
}

#[test]
fn lone_and_concurrent_calls_share_the_socket_on_two_workers() {
    grid::conformance::run::<grid_tokio::Tokio, _, _>(
        block_on_two_workers,
        grid::conformance::suite::lone_and_concurrent_calls_share_the_socket::<grid_tokio::Tokio>,
    );
}

/// A multi-thread runtime with one worker: tokio runs a task woken by the
/// running task next (its LIFO slot), so a connection's driver woken by one
/// caller would run before the other callers had queued their calls.
fn block_on_one_worker(test: grid::BoxFuture<'static, ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(test)
}

#[test]
fn calls_from_many_tasks_share_socket_writes_on_one_worker() {
    grid::conformance::run::<grid_tokio::Tokio, _, _>(
        block_on_one_worker,
        grid::conformance::suite::calls_from_many_tasks_share_socket_writes::<grid_tokio::Tokio>,
    );
}

#[test]
fn calls_from_many_tasks_share_socket_writes_on_two_workers() {
    grid::conformance::run::<grid_tokio::Tokio, _, _>(
        block_on_two_workers,
        grid::conformance::suite::calls_from_many_tasks_share_socket_writes::<grid_tokio::Tokio>,
    );
}
