//! The grid conformance suite on tokio.

use std::future::Future;

use grid::conformance::TestRuntime;
use grid_tokio::Tokio;

/// Each test on its own single-threaded tokio runtime.
#[derive(Clone, Copy, Debug, Default)]
struct TokioTest;

impl grid::Runtime for TokioTest {
    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        Tokio.spawn(future)
    }

    fn timer(&self, deadline: std::time::Instant) -> Box<dyn grid::Timer> {
        Tokio.timer(deadline)
    }

    fn connect(&self, addr: &str) -> grid::BoxFuture<'static, std::io::Result<grid::BoxIo>> {
        Tokio.connect(addr)
    }

    fn bind(
        &self,
        addr: &str,
    ) -> grid::BoxFuture<'static, std::io::Result<Box<dyn grid::Listener>>> {
        Tokio.bind(addr)
    }
}

impl TestRuntime for TokioTest {
    fn block_on<F>(future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
            .block_on(future)
    }
}

grid::conformance_tests!(TokioTest);
