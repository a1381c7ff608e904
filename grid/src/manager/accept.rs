//! Accepting: the loop that takes connections from the node's listener and
//! runs each on a task of its own, until the node shuts down.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::{select, Either};
use grid_proto::Role;
use tracing::Instrument;

use super::connection::run_connection;
use super::node::ManagerInner;
use crate::runtime::{sleep_until, Listener, Runtime};

/// Accepts until shutdown, then says the listener is closed.
pub(super) async fn accept_loop<R: Runtime>(
    inner: Arc<ManagerInner<R>>,
    listener: Box<dyn Listener>,
) {
    accept_until_shutdown(&inner, listener).await;
    // The listener is closed now: a node restarted on the same address can bind.
    inner.listener_closed.raise();
}

async fn accept_until_shutdown<R: Runtime>(
    inner: &Arc<ManagerInner<R>>,
    mut listener: Box<dyn Listener>,
) {
    loop {
        let accepted = {
            let accept = listener.accept();
            let stop = inner.shutdown.wait();
            match select(accept, pin!(stop)).await {
                Either::Left((accepted, _)) => accepted,
                Either::Right(_) => return,
            }
        };
        match accepted {
            Ok((io, addr)) => {
                let inner = inner.clone();
                let span = tracing::debug_span!("grid.accept", node = %inner.name, %addr);
                inner.runtime.clone().spawn(
                    async move {
                        run_connection(&inner, io, Role::Acceptor, None).await;
                    }
                    .instrument(span),
                );
            }
            Err(error) => {
                tracing::warn!(node = %inner.name, %error, "accept failed");
                // Accept errors (e.g. out of file descriptors) persist for a while.
                sleep_until(
                    &inner.runtime,
                    inner.runtime.now() + Duration::from_millis(50),
                )
                .await;
            }
        }
    }
}
