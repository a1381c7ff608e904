//! Two connections wired by in-memory pipes, on a virtual clock.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};

use crate::config::{Config, Role};
use crate::connection::Connection;
use crate::event::Event;
use crate::rng::Rng;

use super::sim_config;

/// One end of a [`Pair`].
#[derive(Debug)]
pub struct Side {
    /// The connection.
    pub conn: Connection,
    /// Events collected from it, oldest first, until taken.
    pub events: VecDeque<Event>,
    /// While set, bytes sent to this side are held back (a peer that stopped reading).
    pub stalled: bool,
    inbox: VecDeque<(Instant, Bytes)>,
}

impl Side {
    fn new(conn: Connection) -> Side {
        Side {
            conn,
            events: VecDeque::new(),
            stalled: false,
            inbox: VecDeque::new(),
        }
    }

    /// Takes every collected event.
    pub fn take_events(&mut self) -> Vec<Event> {
        self.collect_events();
        self.events.drain(..).collect()
    }

    fn collect_events(&mut self) -> bool {
        let mut any = false;
        while let Some(event) = self.conn.poll_event() {
            self.events.push_back(event);
            any = true;
        }
        any
    }
}

/// Which side of a [`Pair`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// The dialer.
    Client,
    /// The acceptor.
    Server,
}

impl Which {
    /// Both sides, the client first.
    pub const BOTH: [Which; 2] = [Which::Client, Which::Server];

    /// The other side.
    pub fn other(self) -> Which {
        match self {
            Which::Client => Which::Server,
            Which::Server => Which::Client,
        }
    }

    /// An index for per-side arrays: 0 for the client, 1 for the server.
    pub fn index(self) -> usize {
        match self {
            Which::Client => 0,
            Which::Server => 1,
        }
    }

    /// The side that allocated call id `mux`: bit 31 is the acceptor's namespace.
    pub fn owner_of(mux: u32) -> Which {
        if mux & (1 << 31) == 0 {
            Which::Client
        } else {
            Which::Server
        }
    }
}

/// Two connections, a dialer (`client`) and an acceptor (`server`), wired together.
#[derive(Debug)]
pub struct Pair {
    /// Virtual time.
    pub now: Instant,
    /// The dialing side.
    pub client: Side,
    /// The accepting side.
    pub server: Side,
    /// One-way delay of every byte.
    pub latency: Duration,
    /// Largest chunk bytes are delivered in; chunk sizes are random up to it.
    pub max_chunk: usize,
    rng: Rng,
}

impl Pair {
    /// A pair with default configurations, not yet handshaken.
    pub fn new(seed: u64) -> Pair {
        Pair::with_configs(
            sim_config(Role::Dialer, seed),
            sim_config(Role::Acceptor, seed.wrapping_add(1)),
            seed,
        )
    }

    /// A pair with the given configurations, not yet handshaken.
    pub fn with_configs(client: Config, server: Config, seed: u64) -> Pair {
        let now = Instant::now();
        Pair {
            now,
            client: Side::new(Connection::new(client, now)),
            server: Side::new(Connection::new(server, now)),
            latency: Duration::ZERO,
            max_chunk: usize::MAX,
            rng: Rng::new(seed),
        }
    }

    /// A handshaken pair with default configurations.
    pub fn connected(seed: u64) -> Pair {
        Pair::connected_with(
            sim_config(Role::Dialer, seed),
            sim_config(Role::Acceptor, seed.wrapping_add(1)),
            seed,
        )
    }

    /// A handshaken pair with the given configurations; each side's
    /// `Connected` event is taken.
    ///
    /// # Panics
    ///
    /// If the handshake does not complete within a virtual second.
    pub fn connected_with(client: Config, server: Config, seed: u64) -> Pair {
        let mut pair = Pair::with_configs(client, server, seed);
        pair.drive();
        pair.settle(Duration::from_secs(1));
        assert!(matches!(
            pair.client.events.pop_front(),
            Some(Event::Connected(_))
        ));
        assert!(matches!(
            pair.server.events.pop_front(),
            Some(Event::Connected(_))
        ));
        pair
    }

    /// The side named by `which`.
    pub fn side(&mut self, which: Which) -> &mut Side {
        match which {
            Which::Client => &mut self.client,
            Which::Server => &mut self.server,
        }
    }

    /// The side named by `which`, read-only.
    pub fn side_ref(&self, which: Which) -> &Side {
        match which {
            Which::Client => &self.client,
            Which::Server => &self.server,
        }
    }

    /// Moves bytes and events until nothing moves without the clock advancing.
    /// Returns whether anything moved.
    pub fn drive(&mut self) -> bool {
        let mut moved_any = false;
        loop {
            let mut moved = false;
            moved |= self.client.collect_events();
            moved |= self.server.collect_events();
            moved |= Self::transmit(
                &mut self.client,
                &mut self.server,
                self.now,
                self.latency,
                self.max_chunk,
                &mut self.rng,
            );
            moved |= Self::transmit(
                &mut self.server,
                &mut self.client,
                self.now,
                self.latency,
                self.max_chunk,
                &mut self.rng,
            );
            moved |= Self::deliver(&mut self.client, self.now);
            moved |= Self::deliver(&mut self.server, self.now);
            moved |= self.client.collect_events();
            moved |= self.server.collect_events();
            if !moved {
                return moved_any;
            }
            moved_any = true;
        }
    }

    fn transmit(
        from: &mut Side,
        to: &mut Side,
        now: Instant,
        latency: Duration,
        max_chunk: usize,
        rng: &mut Rng,
    ) -> bool {
        let mut moved = false;
        while let Some(mut bytes) = from.conn.poll_transmit(now) {
            moved = true;
            while !bytes.is_empty() {
                let limit = max_chunk.min(bytes.len());
                let take = if limit == bytes.len() && max_chunk == usize::MAX {
                    limit
                } else {
                    1 + rng.below(limit as u64) as usize
                };
                to.inbox.push_back((now + latency, bytes.split_to(take)));
            }
        }
        moved
    }

    fn deliver(to: &mut Side, now: Instant) -> bool {
        let mut moved = false;
        while !to.stalled {
            match to.inbox.front() {
                Some((at, _)) if *at <= now => {}
                _ => break,
            }
            if let Some((_, mut bytes)) = to.inbox.pop_front() {
                // As a driver does: into a large payload's own buffer when it
                // is offered, else through `handle_input`.
                while !bytes.is_empty() {
                    let Some(space) = to.conn.input_space() else {
                        to.conn.handle_input(now, &bytes);
                        break;
                    };
                    let len = space.len().min(bytes.len());
                    space[..len].copy_from_slice(&bytes[..len]);
                    to.conn.handle_input_in_place(now, len);
                    bytes.advance(len);
                }
                moved = true;
            }
        }
        moved
    }

    /// The earliest instant anything is due: a connection timer or a delivery.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let deliveries = [&self.client, &self.server]
            .into_iter()
            .filter(|side| !side.stalled)
            .filter_map(|side| side.inbox.front().map(|(at, _)| *at));
        [
            self.client.conn.poll_timeout(),
            self.server.conn.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .chain(deliveries)
        .min()
    }

    /// Advances virtual time by `duration`, firing timers and deliveries in order.
    pub fn advance(&mut self, duration: Duration) {
        let end = self.now + duration;
        self.drive();
        loop {
            let next = self.next_wakeup().filter(|at| *at <= end);
            let Some(next) = next else {
                self.now = end;
                self.fire_timers();
                return;
            };
            self.now = self.now.max(next);
            self.fire_timers();
        }
    }

    /// Advances time only while something is due within `limit` from now, and
    /// stops as soon as both sides are quiet: nothing in flight on the pipes.
    pub fn settle(&mut self, limit: Duration) {
        let end = self.now + limit;
        self.drive();
        while self
            .client
            .inbox
            .iter()
            .chain(self.server.inbox.iter())
            .next()
            .is_some()
        {
            let Some(next) = self.next_wakeup().filter(|at| *at <= end) else {
                return;
            };
            self.now = self.now.max(next);
            self.fire_timers();
        }
    }

    fn fire_timers(&mut self) {
        let now = self.now;
        if self.client.conn.poll_timeout().is_some_and(|at| at <= now) {
            self.client.conn.handle_timeout(now);
        }
        if self.server.conn.poll_timeout().is_some_and(|at| at <= now) {
            self.server.conn.handle_timeout(now);
        }
        self.drive();
    }

    /// Bytes waiting in the pipe towards `which`.
    pub fn in_flight_to(&self, which: Which) -> usize {
        self.side_ref(which)
            .inbox
            .iter()
            .map(|(_, bytes)| bytes.len())
            .sum()
    }
}
