//! The grid conformance suite on async-std.

/// Each test driven by `block_on` on async-std's global executor.
fn block_on(test: grid::BoxFuture<'static, ()>) {
    async_std::task::block_on(test)
}

grid::conformance_tests!(grid_async_std::AsyncStd, block_on);
