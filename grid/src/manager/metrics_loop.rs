//! With the `metrics` feature: the loop that publishes every peer's
//! connection gauges and counters, sampled from its stats, until the node
//! shuts down.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::{select, Either};

use super::node::{Manager, ManagerInner};
use crate::runtime::{sleep_until, Runtime};
use crate::telemetry::publish_peers;

/// How often peers' metrics are published by default.
pub const DEFAULT_METRICS_INTERVAL: Duration = Duration::from_secs(1);

pub(super) async fn metrics_loop<R: Runtime>(inner: Arc<ManagerInner<R>>, interval: Duration) {
    let manager = Manager { inner };
    loop {
        publish_peers(&manager.stats());
        let next = manager.inner.runtime.now() + interval;
        let tick = sleep_until(&manager.inner.runtime, next);
        let stop = manager.inner.shutdown.wait();
        if let Either::Right(_) = select(pin!(tick), pin!(stop)).await {
            // The last figures, so that a scrape after shutdown shows every
            // peer disconnected.
            publish_peers(&manager.stats());
            return;
        }
    }
}
