//! The conformance tests, each generic over the runtime, one file per area.
//! Every `pub async fn NAME<R: TestRuntime>` here is a test of the `suite` list.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use grid_proto::Error;

mod access;
mod admission;
mod backpressure;
mod calls;
mod deadlines;
mod failures;
mod nodes;
mod streams;
mod visibility;

pub use access::*;
pub use admission::*;
pub use backpressure::*;
pub use calls::*;
pub use deadlines::*;
pub use failures::*;
pub use streams::*;
pub use visibility::*;

const WAIT: Duration = Duration::from_secs(5);

/// Polls `call` until `started` resolves (the handler is running), so the test
/// can then act on a call that is known to be in flight.
async fn until_started<F, S>(call: &mut F, started: S)
where
    F: Future + Unpin,
    F::Output: std::fmt::Debug,
    S: Future,
{
    match futures_util::future::select(call, std::pin::pin!(started)).await {
        futures_util::future::Either::Left((result, _)) => panic!("call ended early: {result:?}"),
        futures_util::future::Either::Right(_) => {}
    }
}

fn remote(text: &str) -> Error {
    Error::Remote(Bytes::copy_from_slice(text.as_bytes()))
}
