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
