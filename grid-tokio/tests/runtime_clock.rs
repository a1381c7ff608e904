//! grid reads time only through its runtime, so a simulator's virtual clock
//! controls every deadline, keepalive and backoff. Here the runtime's clock
//! runs an hour ahead of the system's, with timers to match: any time grid
//! took from the system clock instead would be an hour off, and the
//! deadlines and keepalives below would fire at once or never.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use grid::{BoxFuture, BoxIo, Listener, Runtime, Timer};
use grid_tokio::{Bytes, Ctx, Error, HandlerError, Router, Timeouts, Tokio};

const AHEAD: Duration = Duration::from_secs(3600);
const ECHO: u16 = 1;
const HANG: u16 = 2;

/// tokio, with a clock an hour ahead of the system's.
#[derive(Clone, Default)]
struct HourAhead {
    tokio: Tokio,
    /// Whether any random bytes were asked of the runtime.
    drew_randomness: Arc<AtomicBool>,
}

impl Runtime for HourAhead {
    fn spawn<F>(&self, future: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.tokio.spawn(future);
    }

    fn timer(&self, deadline: Instant) -> Box<dyn Timer> {
        Box::new(Behind(self.tokio.timer(deadline - AHEAD)))
    }

    fn connect(&self, addr: &str) -> BoxFuture<'static, io::Result<BoxIo>> {
        self.tokio.connect(addr)
    }

    fn bind(&self, addr: &str) -> BoxFuture<'static, io::Result<Box<dyn Listener>>> {
        self.tokio.bind(addr)
    }

    fn now(&self) -> Instant {
        self.tokio.now() + AHEAD
    }

    fn fill_random(&self, buf: &mut [u8]) {
        self.drew_randomness.store(true, Ordering::Relaxed);
        self.tokio.fill_random(buf);
    }
}

/// A tokio timer set on the runtime's clock.
struct Behind(Box<dyn Timer>);

impl Timer for Behind {
    fn reset(&mut self, deadline: Instant) {
        self.0.reset(deadline - AHEAD);
    }

    fn poll_expired(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        self.0.poll_expired(cx)
    }
}

async fn echo(_: Ctx, payload: Bytes) -> Result<Bytes, HandlerError> {
    Ok(payload)
}

async fn hang(_: Ctx, _: Bytes) -> Result<Bytes, HandlerError> {
    std::future::pending().await
}

/// Calls, a deadline and keepalives behave on a clock an hour ahead: the
/// deadline fires after its 200 ms, not at once and not never, and the
/// connection stays up across many keepalive intervals with short timeouts.
#[test]
fn grid_follows_its_runtime_clock() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let rt = HourAhead::default();
        let listeners = [
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        ];
        let names: Vec<String> = listeners
            .iter()
            .map(|listener| listener.local_addr().unwrap().to_string())
            .collect();
        let timeouts = Timeouts {
            keepalive_interval: Duration::from_millis(50),
            idle: Duration::from_millis(300),
            ..Timeouts::default()
        };
        let mut nodes = Vec::new();
        for (index, listener) in listeners.into_iter().enumerate() {
            let node = grid::ManagerBuilder::new(rt.clone(), names[index].clone())
                .peers([names[1 - index].clone()])
                .secret(b"a shared cluster secret")
                .timeouts(timeouts.clone())
                .listener(Tokio::listener(listener))
                .router(Router::new().single(ECHO, echo).single(HANG, hang))
                .start()
                .await
                .expect("start");
            nodes.push(node);
        }
        nodes[0]
            .wait_connected(&names[1], Duration::from_secs(5))
            .await
            .expect("connected");
        assert!(rt.drew_randomness.load(Ordering::Relaxed));
        let peer = nodes[0].peer(&names[1]).unwrap();
        assert_eq!(peer.request(ECHO, "on time").await.unwrap(), "on time");

        let started = Instant::now();
        let hung = peer
            .request(HANG, "")
            .timeout(Duration::from_millis(200))
            .await;
        let waited = started.elapsed();
        assert_eq!(hung, Err(Error::DeadlineExceeded));
        assert!(
            waited >= Duration::from_millis(180) && waited < Duration::from_secs(2),
            "a 200 ms deadline ended after {waited:?}"
        );

        // Many keepalive intervals and more than the idle bound: the
        // connection is kept alive by pings sent and answered on time.
        tokio::time::sleep(Duration::from_millis(800)).await;
        let stats = peer.stats();
        assert_eq!(stats.reconnects, 0, "{stats:?}");
        assert_eq!(peer.request(ECHO, "still up").await.unwrap(), "still up");
        for node in &nodes {
            node.shutdown(Duration::from_millis(100)).await;
        }
    });
}
