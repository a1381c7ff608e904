//! The grid conformance suite on async-std.

use std::future::Future;

use grid::conformance::TestRuntime;
use grid_async_std::AsyncStd;

/// async-std's global executor, one test at a time per `block_on`.
#[derive(Clone, Copy, Debug, Default)]
struct AsyncStdTest;

impl grid::Runtime for AsyncStdTest {
    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        AsyncStd.spawn(future)
    }

    fn timer(&self, deadline: std::time::Instant) -> Box<dyn grid::Timer> {
        AsyncStd.timer(deadline)
    }

    fn connect(&self, addr: &str) -> grid::BoxFuture<'static, std::io::Result<grid::BoxIo>> {
        AsyncStd.connect(addr)
    }

    fn bind(
        &self,
        addr: &str,
    ) -> grid::BoxFuture<'static, std::io::Result<Box<dyn grid::Listener>>> {
        AsyncStd.bind(addr)
    }
}

impl TestRuntime for AsyncStdTest {
    fn block_on<F>(future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        async_std::task::block_on(future)
    }
}

grid::conformance_tests!(AsyncStdTest);
