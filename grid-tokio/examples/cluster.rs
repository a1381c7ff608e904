//! A 3-node grid cluster on loopback, on tokio: requests, a stream, a node
//! dying and coming back, a drain, and a report of every connection.
//!
//! Run it with `cargo run --release -p grid-tokio --example cluster`.

fn main() {
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
    if let Err(error) = runtime.block_on(grid::demo::run(grid_tokio::Tokio)) {
        eprintln!("demo failed: {error}");
        std::process::exit(1);
    }
}
