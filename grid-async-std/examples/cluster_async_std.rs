//! A 3-node grid cluster on loopback, on async-std: requests, a stream, a
//! node dying and coming back, a drain, and a report of every connection.
//!
//! Run it with `cargo run -p grid-async-std --example cluster_async_std`.

fn main() {
    if let Err(error) = async_std::task::block_on(grid::demo::run(grid_async_std::AsyncStd)) {
        eprintln!("demo failed: {error}");
        std::process::exit(1);
    }
}
