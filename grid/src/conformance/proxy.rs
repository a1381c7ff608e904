//! A TCP proxy that injects faults between two nodes: cut, stall, delay.

use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

use futures_util::future::{select, Either};
use futures_util::io::{AsyncReadExt, AsyncWriteExt};

use crate::conformance::sleep;
use crate::runtime::{BoxIo, Listener, Runtime};

#[derive(Default)]
struct Controls {
    stalled: AtomicBool,
    /// Connections are numbered; those numbered below this are blackholed.
    next_connection: AtomicU64,
    blackholed_below: AtomicU64,
    /// Bumped by every cut; pumps of older connections stop.
    epoch: AtomicU64,
    delay_micros: AtomicU64,
    wakers: Mutex<Vec<Waker>>,
}

impl Controls {
    fn changed(&self) {
        let wakers = std::mem::take(&mut *self.wakers.lock().unwrap_or_else(|p| p.into_inner()));
        for waker in wakers {
            waker.wake();
        }
    }

    /// Resolves when any control changes.
    async fn next_change(&self) {
        let mut registered = false;
        std::future::poll_fn(|cx| {
            if registered {
                return Poll::Ready(());
            }
            registered = true;
            let mut wakers = self.wakers.lock().unwrap_or_else(|p| p.into_inner());
            if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                wakers.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }
}

/// A fault-injecting proxy in front of one address.
#[derive(Clone)]
pub struct FaultProxy {
    addr: SocketAddr,
    controls: Arc<Controls>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .finish()
    }
}

impl FaultProxy {
    /// Listens on a loopback port and forwards every connection to `target`.
    pub async fn start<R: Runtime>(runtime: &R, target: &str) -> io::Result<FaultProxy> {
        let listener = runtime.bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let controls = Arc::new(Controls::default());
        runtime.spawn(accept_loop(
            runtime.clone(),
            listener,
            target.to_string(),
            controls.clone(),
        ));
        Ok(FaultProxy { addr, controls })
    }

    /// The address to connect to instead of the target.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops (or resumes) forwarding in both directions, without closing:
    /// to each side the other looks alive but silent.
    pub fn stall(&self, stalled: bool) {
        self.controls.stalled.store(stalled, Ordering::SeqCst);
        self.controls.changed();
    }

    /// Stops forwarding on every connection open now, for good, without
    /// closing it (a peer host that vanished); later connections pass.
    pub fn blackhole(&self) {
        let next = self.controls.next_connection.load(Ordering::SeqCst);
        self.controls.blackholed_below.store(next, Ordering::SeqCst);
        self.controls.changed();
    }

    /// Closes every connection open now; later connections pass.
    pub fn cut(&self) {
        self.controls.epoch.fetch_add(1, Ordering::SeqCst);
        self.controls.changed();
    }

    /// Delays every forwarded chunk by `delay`.
    pub fn set_delay(&self, delay: Duration) {
        let micros = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.controls.delay_micros.store(micros, Ordering::SeqCst);
        self.controls.changed();
    }
}

async fn accept_loop<R: Runtime>(
    runtime: R,
    mut listener: Box<dyn Listener>,
    target: String,
    controls: Arc<Controls>,
) {
    while let Ok(incoming) = listener.accept().await {
        let Ok(accepted) = incoming.finish().await else {
            continue;
        };
        let inbound = accepted.io;
        let Ok(outbound) = runtime.connect(&target).await else {
            continue;
        };
        let epoch = controls.epoch.load(Ordering::SeqCst);
        let number = controls.next_connection.fetch_add(1, Ordering::SeqCst);
        let (in_read, in_write) = inbound.split();
        let (out_read, out_write) = outbound.split();
        runtime.spawn(pump(
            runtime.clone(),
            in_read,
            out_write,
            controls.clone(),
            epoch,
            number,
        ));
        runtime.spawn(pump(
            runtime.clone(),
            out_read,
            in_write,
            controls.clone(),
            epoch,
            number,
        ));
    }
}

async fn pump<R: Runtime>(
    runtime: R,
    mut from: futures_util::io::ReadHalf<BoxIo>,
    mut to: futures_util::io::WriteHalf<BoxIo>,
    controls: Arc<Controls>,
    epoch: u64,
    number: u64,
) {
    let cut = || controls.epoch.load(Ordering::SeqCst) != epoch;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let read = loop {
            if cut() {
                return;
            }
            let read = from.read(&mut buf);
            match select(pin!(read), pin!(controls.next_change())).await {
                Either::Left((read, _)) => break read,
                Either::Right(_) => continue,
            }
        };
        let n = match read {
            Ok(0) | Err(_) => {
                let _ = to.close().await;
                return;
            }
            Ok(n) => n,
        };
        let held = || {
            controls.stalled.load(Ordering::SeqCst)
                || number < controls.blackholed_below.load(Ordering::SeqCst)
        };
        while held() && !cut() {
            controls.next_change().await;
        }
        if cut() {
            return;
        }
        let delay = controls.delay_micros.load(Ordering::SeqCst);
        if delay > 0 {
            sleep(&runtime, Duration::from_micros(delay)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
