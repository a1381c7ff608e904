//! A 3-node grid cluster on loopback, on tokio: requests, a stream, a node
//! dying and coming back, a drain, and a report of every connection.
//!
//! Run it with `cargo run --release -p grid-tokio --example cluster`; add
//! `--features tls -- --tls` to run it over mutual TLS, with a CA and node
//! certificates made at start.

fn main() {
    let tls = std::env::args().skip(1).any(|arg| arg == "--tls");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start tokio: {error}");
            std::process::exit(1);
        }
    };
    let transport = if tls {
        match tls_transport() {
            Ok(transport) => Some(transport),
            Err(error) => {
                eprintln!("cannot set up TLS: {error}");
                std::process::exit(1);
            }
        }
    } else {
        None
    };
    if let Err(error) = runtime.block_on(grid::demo::run_over(grid_tokio::Tokio, transport)) {
        eprintln!("demo failed: {error}");
        std::process::exit(1);
    }
}

/// Mutual TLS: a CA made now, and for each node a certificate naming it,
/// issued when the node binds (its name is the address it is bound to).
#[cfg(feature = "tls")]
fn tls_transport() -> Result<grid::demo::DemoTransport, Box<dyn std::error::Error>> {
    use std::sync::Arc;

    use grid_tokio::tls::DemoCa;
    use grid_tokio::Tokio;

    let ca = Arc::new(DemoCa::new("grid demo CA")?);
    let for_bind = ca.clone();
    Ok(grid::demo::DemoTransport {
        description: "mutual TLS, each node's certificate from a CA made at start".to_string(),
        bind: Box::new(move |addr: &str| {
            let ca = for_bind.clone();
            let addr = addr.to_string();
            Box::pin(async move {
                let listener = tokio::net::TcpListener::bind(addr).await?;
                let name = listener.local_addr()?.to_string();
                let tls = ca
                    .node_config(&[&name])
                    .map_err(|error| std::io::Error::other(error.to_string()))?;
                Ok(Tokio::tls_listener(listener, &tls))
            })
        }),
        connector: Box::new(move |name: &str| match ca.node_config(&[name]) {
            Ok(tls) => Tokio::tls_connector(&tls),
            // Not reachable with a name the demo bound; a connector that
            // fails every dial says why instead of panicking.
            Err(error) => {
                let error = error.to_string();
                Arc::new(move |_addr: &str| {
                    let error = std::io::Error::other(error.clone());
                    Box::pin(async move { Err(error) })
                })
            }
        }),
    })
}

#[cfg(not(feature = "tls"))]
fn tls_transport() -> Result<grid::demo::DemoTransport, Box<dyn std::error::Error>> {
    Err("this build has no TLS: run with `--features tls`".into())
}
