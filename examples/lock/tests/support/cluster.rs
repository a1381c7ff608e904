//! A cluster of grid-tokio nodes on loopback, each running a lock server,
//! with short leases so that tests of expiry run in well under a second.

use std::time::Duration;

use grid::{BackoffConfig, Timeouts};
use grid_lock::{
    system_clock, ClientConfig, LeaseTiming, LockClient, LockServer, Locker, RetryBackoff,
};
use grid_tokio::{Manager, Tokio};

use super::partition::Partition;

/// The lease timing of the tests: a 600 ms lease refreshed every 100 ms.
pub(crate) fn test_timing() -> LeaseTiming {
    LeaseTiming {
        lease: Duration::from_millis(600),
        refresh_interval: Duration::from_millis(100),
        call_deadline: Duration::from_millis(150),
        max_drift: 0.01,
        margin: Duration::from_millis(50),
    }
}

/// A client configuration with [`test_timing`] and short backoffs.
pub(crate) fn test_config(seed: u64) -> ClientConfig {
    ClientConfig {
        timing: test_timing(),
        acquire_timeout: Duration::from_secs(10),
        backoff: RetryBackoff {
            initial: Duration::from_millis(2),
            max: Duration::from_millis(40),
        },
        seed: Some(seed),
    }
}

/// Nodes on loopback: the first `servers` run lock servers, the rest only
/// clients. Node names are their addresses.
pub(crate) struct LockCluster {
    /// Node names, by index.
    pub(crate) names: Vec<String>,
    nodes: Vec<Option<Manager>>,
    /// The lock servers, by index (the first `servers` nodes).
    pub(crate) servers: Vec<LockServer>,
    /// The partition every node dials through.
    pub(crate) partition: Partition,
}

impl LockCluster {
    /// Starts `servers` lock server nodes and `clients` client-only nodes,
    /// and waits until all are connected.
    pub(crate) async fn start(servers: usize, clients: usize) -> LockCluster {
        let mut listeners = Vec::new();
        for _ in 0..servers + clients {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind loopback");
            listeners.push(listener);
        }
        let names: Vec<String> = listeners
            .iter()
            .map(|l| l.local_addr().expect("local address").to_string())
            .collect();
        let partition = Partition::default();
        let timing = test_timing();
        let mut cluster = LockCluster {
            names: names.clone(),
            nodes: Vec::new(),
            servers: Vec::new(),
            partition: partition.clone(),
        };
        for (index, listener) in listeners.into_iter().enumerate() {
            let name = &names[index];
            let mut builder = Manager::builder(name)
                .peers(names.clone())
                .secret(b"lock test secret")
                .listener(Tokio::listener(listener))
                .connector(partition.connector(Tokio, name))
                .timeouts(Timeouts {
                    keepalive_interval: Duration::from_millis(100),
                    idle: Duration::from_millis(600),
                    ..Timeouts::default()
                })
                .backoff(BackoffConfig {
                    initial: Duration::from_millis(10),
                    max: Duration::from_millis(100),
                    multiplier: 2,
                });
            if index < servers {
                let server = LockServer::fresh(name, system_clock(), timing.lease);
                server.spawn_sweeper(&Tokio);
                builder = builder.router(server.router());
                cluster.servers.push(server);
            }
            cluster
                .nodes
                .push(Some(builder.start().await.expect("start node")));
        }
        for node in cluster.nodes.iter().flatten() {
            node.wait_all_connected(Duration::from_secs(10))
                .await
                .expect("cluster connects");
        }
        cluster
    }

    /// The server nodes' names.
    pub(crate) fn server_names(&self) -> &[String] {
        &self.names[..self.servers.len()]
    }

    /// Node `index`; panics if it is stopped.
    pub(crate) fn node(&self, index: usize) -> &Manager {
        self.nodes[index].as_ref().expect("node is running")
    }

    /// A client on node `index` of every lock server.
    pub(crate) fn client(&self, index: usize, config: ClientConfig) -> LockClient<Tokio> {
        let local = self.servers.get(index);
        let lockers = Locker::for_node(self.node(index), self.server_names(), local)
            .expect("lock servers are peers");
        LockClient::new(Tokio, system_clock(), lockers, config).expect("client config")
    }

    /// Stops node `index` at once, as a crash looks to its peers.
    pub(crate) async fn stop(&mut self, index: usize) {
        if let Some(node) = self.nodes[index].take() {
            node.shutdown(Duration::ZERO).await;
        }
    }

    /// Every server's live grants of `name`, by server.
    pub(crate) fn grants(&self, name: &str) -> Vec<usize> {
        self.servers.iter().map(|s| s.holders(name).len()).collect()
    }

    /// Shuts every running node down.
    pub(crate) async fn shutdown(mut self) {
        for node in self.nodes.iter_mut().filter_map(Option::take) {
            node.shutdown(Duration::ZERO).await;
        }
    }
}
