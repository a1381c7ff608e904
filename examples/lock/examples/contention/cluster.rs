//! Lock server nodes on loopback, connected to each other.

use std::time::Duration;

use grid_lock::{system_clock, ClientConfig, LockClient, LockServer, Locker};
use grid_tokio::{Manager, Tokio};

/// `size` grid-tokio nodes, each running a lock server.
pub(crate) struct Cluster {
    names: Vec<String>,
    nodes: Vec<Manager>,
    servers: Vec<LockServer>,
}

impl Cluster {
    /// Starts the nodes and waits until every one is connected to every
    /// other.
    pub(crate) async fn start(
        size: usize,
        config: &ClientConfig,
    ) -> Result<Cluster, Box<dyn std::error::Error>> {
        let mut listeners = Vec::new();
        for _ in 0..size {
            listeners.push(tokio::net::TcpListener::bind("127.0.0.1:0").await?);
        }
        let names = listeners
            .iter()
            .map(|l| l.local_addr().map(|a| a.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut cluster = Cluster {
            names: names.clone(),
            nodes: Vec::new(),
            servers: Vec::new(),
        };
        for (name, listener) in names.iter().zip(listeners) {
            // A fresh cluster: no server has granted anything before, so
            // none needs to wait out a lease before granting.
            let server = LockServer::fresh(name, system_clock(), config.timing.lease);
            server.spawn_sweeper(&Tokio);
            let node = Manager::builder(name)
                .peers(names.clone())
                .secret(b"contention benchmark")
                .listener(Tokio::listener(listener))
                .router(server.router())
                .start()
                .await?;
            cluster.nodes.push(node);
            cluster.servers.push(server);
        }
        for node in &cluster.nodes {
            node.wait_all_connected(Duration::from_secs(20)).await?;
        }
        Ok(cluster)
    }

    /// A client on node `index % size`.
    pub(crate) fn client(
        &self,
        index: usize,
        config: ClientConfig,
    ) -> Result<LockClient<Tokio>, Box<dyn std::error::Error>> {
        let at = index % self.nodes.len();
        let lockers = Locker::for_node(&self.nodes[at], &self.names, Some(&self.servers[at]))?;
        Ok(LockClient::new(Tokio, system_clock(), lockers, config)?)
    }

    /// Stops every node.
    pub(crate) async fn shutdown(self) {
        for node in self.nodes {
            node.shutdown(Duration::from_millis(100)).await;
        }
    }
}
