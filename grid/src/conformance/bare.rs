//! A bare protocol connection to a node, driven by grid's own driver with no
//! handlers: for tests that need a peer the node cannot tell from a real one
//! but whose every step the test controls.

use grid_proto::{CloseReason, Config, Connection as Proto, Role};

use crate::conformance::transport::dial_as;
use crate::conformance::TestRuntime;
use crate::driver::{Driver, Exit, Host};
use crate::runtime::{clock, BoxIo};
use crate::shared::Shared;

/// Incoming calls on a bare connection are never started.
pub(crate) struct NoHandlers;

impl Host for NoHandlers {
    fn on_dispatched(
        &self,
        _shared: &std::sync::Arc<Shared>,
        _dispatched: &mut crate::shared::Dispatched,
    ) {
    }
}

/// A bare protocol connection over `io`, dialed to a node and calling itself
/// `name`, with the driver that runs it.
pub(crate) fn raw_connection<R: TestRuntime>(
    rt: &R,
    io: BoxIo,
    name: &str,
) -> (std::sync::Arc<Shared>, Driver) {
    let now = rt.now();
    let mut config = Config::new(
        name,
        1,
        b"conformance secret".to_vec(),
        Role::Dialer,
        [7; 32],
    );
    config.timeouts = crate::conformance::cluster::test_timeouts();
    let shared = Shared::new(Proto::new(config, now), io, clock(rt), None);
    let driver = Driver::new(shared.clone(), rt.timer(now));
    (shared, driver)
}

/// Runs `driver` until its connection has closed; why it did.
pub(crate) async fn drive_to_close(driver: &mut Driver) -> CloseReason {
    loop {
        match std::future::poll_fn(|cx| driver.poll_drive(cx, &NoHandlers)).await {
            Exit::Connected(_) => continue,
            Exit::Closed(reason) => return reason,
        }
    }
}

/// Dials `addr` with a bare protocol connection that calls itself `name`, and
/// returns why the connection ended.
pub(crate) async fn raw_dial<R: TestRuntime>(rt: &R, addr: &str, name: &str) -> CloseReason {
    let io = dial_as(rt, addr, name).await.expect("connect");
    let (_shared, mut driver) = raw_connection(rt, io, name);
    drive_to_close(&mut driver).await
}
