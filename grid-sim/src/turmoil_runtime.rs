//! The grid runtime over turmoil's simulated network and virtual time.

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use grid::{Accepted, BoxFuture, BoxIo, Incoming, Listener, Runtime, Timer};
use grid_tokio::Tokio;

use crate::random::{next_default_seed, SimRandom};

/// grid's runtime inside a turmoil simulation: turmoil's simulated TCP, and
/// randomness from a seed.
///
/// Timers and the clock are tokio's, as in grid-tokio:
/// turmoil runs every simulated host on a tokio runtime whose time is paused
/// and advanced by the simulation, so tokio's timers and `Instant` already
/// are the virtual clock. Only the sockets and the randomness differ.
///
/// Use it only inside a simulation (a turmoil host or client): its sockets
/// exist nowhere else.
#[derive(Clone, Debug)]
pub struct Turmoil {
    random: Arc<Mutex<SimRandom>>,
}

impl Turmoil {
    /// A runtime whose randomness (instance ids, handshake nonces, backoff
    /// jitter) is drawn from `seed`.
    pub fn seeded(seed: u64) -> Turmoil {
        Turmoil {
            random: Arc::new(Mutex::new(SimRandom::new(seed))),
        }
    }
}

impl Default for Turmoil {
    /// A runtime seeded from the next seed of this thread's sequence, which
    /// [`crate::run_client`] and [`crate::Simulation`] start from the
    /// simulation's seed: runtimes made in the same order get the same seeds.
    fn default() -> Turmoil {
        Turmoil::seeded(next_default_seed())
    }
}

struct SimListener(turmoil::net::TcpListener);

impl Listener for SimListener {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<Incoming>> {
        Box::pin(async move {
            let (stream, addr) = self.0.accept().await?;
            Ok(Incoming::ready(Accepted::plain(
                Tokio::compat(stream),
                addr,
            )))
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// Where to listen for `addr`: turmoil hosts listen on all their addresses
/// or on loopback only, so a node named by its host name (`node-1:7000`)
/// listens on every address at that port.
fn listen_addr(addr: &str) -> io::Result<String> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("no port in {addr}")))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let local = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified());
    if local {
        return Ok(addr.to_string());
    }
    let port: u16 = port
        .parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("bad port in {addr}")))?;
    Ok(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)).to_string())
}

impl Runtime for Turmoil {
    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        // On the host's local task set, not the tokio runtime: when a crash
        // drops a host's tasks, the runtime drops its own in an order that
        // depends on task ids numbered across the whole process, which would
        // change the order of the sockets' last messages from run to run.
        // The local set drops its tasks in the order they were spawned.
        tokio::task::spawn_local(future);
    }

    fn timer(&self, deadline: Instant) -> Box<dyn Timer> {
        Tokio.timer(deadline)
    }

    fn now(&self) -> Instant {
        Tokio.now()
    }

    fn connect(&self, addr: &str) -> BoxFuture<'static, io::Result<BoxIo>> {
        let addr = addr.to_string();
        Box::pin(async move {
            let stream = turmoil::net::TcpStream::connect(addr).await?;
            Ok(Tokio::compat(stream))
        })
    }

    fn bind(&self, addr: &str) -> BoxFuture<'static, io::Result<Box<dyn Listener>>> {
        let addr = listen_addr(addr);
        Box::pin(async move {
            let listener = turmoil::net::TcpListener::bind(addr?).await?;
            Ok(Box::new(SimListener(listener)) as Box<dyn Listener>)
        })
    }

    fn fill_random(&self, buf: &mut [u8]) {
        self.random
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .fill(buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_hosts_listen_on_every_address_and_loopback_stays() {
        assert_eq!(listen_addr("node-1:7000").unwrap(), "0.0.0.0:7000");
        assert_eq!(listen_addr("127.0.0.1:0").unwrap(), "127.0.0.1:0");
        assert_eq!(listen_addr("localhost:9").unwrap(), "localhost:9");
        assert!(listen_addr("node-1").is_err());
        assert!(listen_addr("node-1:x").is_err());
    }

    #[test]
    fn same_seed_draws_the_same_bytes() {
        let draw = |runtime: &Turmoil| {
            let mut buf = [0u8; 16];
            runtime.fill_random(&mut buf);
            buf
        };
        assert_eq!(draw(&Turmoil::seeded(3)), draw(&Turmoil::seeded(3)));
        assert_ne!(draw(&Turmoil::seeded(3)), draw(&Turmoil::seeded(4)));
    }
}
