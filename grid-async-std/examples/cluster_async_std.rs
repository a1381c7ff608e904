//! A 3-node grid cluster on loopback, on async-std: requests, a stream, a
//! node dying and coming back, a drain, and a report of every connection.
//!
//! Run it with `cargo run -p grid-async-std --example cluster_async_std`;
//! add `--features tls -- --tls` to run it over mutual TLS, with a CA and
//! node certificates made at start.

fn main() {
    let tls = std::env::args().skip(1).any(|arg| arg == "--tls");
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
    let demo = grid::demo::run_over(grid_async_std::AsyncStd, transport);
    if let Err(error) = async_std::task::block_on(demo) {
        eprintln!("demo failed: {error}");
        std::process::exit(1);
    }
}

/// Mutual TLS: a CA made now, and for each node a certificate naming it,
/// issued when the node binds.
#[cfg(feature = "tls")]
fn tls_transport() -> Result<grid::demo::DemoTransport, Box<dyn std::error::Error>> {
    use grid_async_std::AsyncStd;

    grid::demo::DemoTransport::mutual_tls(
        |addr| {
            Box::pin(async move {
                let listener = async_std::net::TcpListener::bind(addr).await?;
                let name = listener.local_addr()?.to_string();
                Ok((listener, name))
            })
        },
        AsyncStd::tls_listener,
        AsyncStd::tls_connector,
    )
}

#[cfg(not(feature = "tls"))]
fn tls_transport() -> Result<grid::demo::DemoTransport, Box<dyn std::error::Error>> {
    Err("this build has no TLS: run with `--features tls`".into())
}
