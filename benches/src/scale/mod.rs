//! Many nodes: a full mesh of 8, 32 and 128 grid-tokio nodes in one process.
//!
//! ```text
//! cargo run --release -p grid-benches --features compare -- mesh-scale [--nodes 8,32,128] [--quick]
//! ```
//!
//! For each node count N, N grid-tokio nodes run on loopback with every
//! setting at its default, every node listing every other as a peer, all on
//! one tokio multi-thread runtime with [`run::WORKER_THREADS`] workers. Each
//! size runs in a fresh process of its own (this binary with `--one N`):
//! memory a previous size freed would otherwise be reused without showing
//! in the next size's resident memory. The figures, all of the whole
//! process:
//!
//! - **connect**: from starting the first node until every node's
//!   `wait_all_connected` returned. It includes starting the nodes, and the
//!   allocation counting below is on meanwhile (a few relaxed atomic
//!   additions per allocator call, small next to a handshake's system calls
//!   and HMACs).
//! - **fds**: the entries of `/proc/self/fd` once connected and idle. Both
//!   ends of every connection are in this process, so a mesh holds N
//!   listeners and N(N-1) sockets besides the runtime's few; the details also
//!   give the count before the first node started and after shutdown (which
//!   shows a leak). Before each size runs, the soft `RLIMIT_NOFILE` is raised
//!   to the hard limit if the size needs it; a size that cannot fit under the
//!   hard limit is not run, and the table says why.
//! - **RSS/conn**: resident memory (`/proc/self/statm`) once connected and
//!   idle for a moment, less resident memory before the first node started,
//!   over the N(N-1)/2 connections: per *pair*, so both ends of a connection
//!   and the nodes' own memory shared out among their connections. Pages
//!   touched, not bytes allocated: the allocator's retained and fragmented
//!   pages count, untouched parts of large allocations do not.
//! - **alloc/end**: heap bytes allocated and not yet freed per connection
//!   *end* (two per connection), counted by
//!   [`CountingAlloc`](crate::counting_alloc::CountingAlloc), this binary's
//!   global allocator: the net heap growth from before the first node started
//!   until connected and idle, less the net heap growth of as many nodes
//!   started with no peers (measured after the mesh, on a runtime of its
//!   own), over N(N-1) ends. It includes everything a connection costs on its
//!   node: the peer slot, the driver task, the protocol state, buffers, the
//!   socket's registration with tokio. The target is at most 16 KiB.
//! - **after use**: the same, once the mesh carried a first all-to-all round
//!   (below) and was idle again: what connections keep after traffic.
//!   Counting stays on from before the first node started until then, since
//!   what a connection allocates and keeps while carrying calls must be
//!   counted; the first round's time, counted, is in the details only.
//! - **round** and **calls/s**: the second all-to-all round, counting off,
//!   after the mesh was idle again: every node calls every other once (32 B
//!   echo, N(N-1) calls), each call a spawned task, all spawned before any is
//!   awaited; the wall time from spawning the first until the last finished,
//!   and the calls over it. It includes whatever an idle connection sets up
//!   again to carry traffic.
//!
//! Then every node shuts down (concurrently, no drain time) and the runtime
//! ends. Progress goes to stderr; the table, each size's details, and one
//! `mesh-scale-row` line per size (every raw figure, for scripts) go to
//! stdout.
//!
//! Modules: [`cli`], [`fd_budget`] (what fits under the descriptor limit),
//! [`procfs`] (descriptors and resident memory), [`run`] (one size in this
//! process), [`round`] (the all-to-all round), [`row`] (one size's figures
//! and the line that carries them), [`table`].

pub mod cli;
pub mod fd_budget;
pub mod procfs;
pub mod round;
pub mod row;
pub mod run;
pub mod table;

use std::process::{Command, Stdio};

use self::cli::{Options, COMMAND, USAGE};
use self::row::Row;
use self::table::Outcome;

/// Runs the benchmark with the arguments after the program name (the first
/// is [`cli::COMMAND`]); returns the process exit code: 0 when every size
/// ran or was skipped for the descriptor limit, 1 when one failed, 2 for a
/// bad command line.
pub fn main(args: impl IntoIterator<Item = String>) -> i32 {
    let options = match Options::parse(args) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return 0;
        }
        Err(error) => {
            eprintln!("{error}\n\n{USAGE}");
            return 2;
        }
    };
    // grid's tracing events go nowhere, as on a node with tracing off.
    let _ = tracing::subscriber::set_global_default(tracing::subscriber::NoSubscriber::default());
    match options.one {
        Some(nodes) => run_here(nodes, &options),
        None => run_each(&options),
    }
}

/// Runs one size in this process and prints its row.
fn run_here(nodes: usize, options: &Options) -> i32 {
    let fits = procfs::open_fds()
        .and_then(|open| fd_budget::ensure_fits(nodes, open as u64))
        .and_then(|()| run::run(nodes, options.settle()));
    match fits {
        Ok(row) => {
            println!("{}", row.to_line());
            0
        }
        Err(error) => {
            eprintln!("mesh-scale: {nodes} nodes: {error}");
            1
        }
    }
}

/// Runs each size in a process of its own, then prints the table.
fn run_each(options: &Options) -> i32 {
    let limits = fd_budget::limits()
        .map(|(soft, hard)| format!("file descriptor limit {soft} (hard {hard})"))
        .unwrap_or_else(|error| error);
    eprintln!(
        "mesh-scale: {:?} nodes, a process per size, {} worker threads, {limits}{}",
        options.nodes,
        run::WORKER_THREADS,
        if options.quick { " (--quick)" } else { "" }
    );
    if !run::allocations_counted() {
        eprintln!("mesh-scale: the counting allocator is not installed: no alloc/end figures");
    }
    let mut outcomes = Vec::new();
    let mut failed = false;
    for &nodes in &options.nodes {
        let open = procfs::open_fds().unwrap_or(0) as u64;
        if let Err(reason) = fd_budget::ensure_fits(nodes, open) {
            eprintln!("mesh-scale: skipping {nodes} nodes: {reason}");
            outcomes.push(Outcome::Missing { nodes, reason });
            continue;
        }
        eprintln!("mesh-scale: {nodes} nodes");
        match run_child(nodes, options.quick) {
            Ok(row) => outcomes.push(Outcome::Ran(row)),
            Err(reason) => {
                eprintln!("mesh-scale: {nodes} nodes failed: {reason}");
                failed = true;
                outcomes.push(Outcome::Missing { nodes, reason });
            }
        }
    }
    println!("{}", table::table(&outcomes));
    for outcome in &outcomes {
        if let Outcome::Ran(row) = outcome {
            println!("{}", row.to_line());
        }
    }
    i32::from(failed)
}

/// Runs `nodes` nodes in a fresh process of this binary and reads its row.
fn run_child(nodes: usize, quick: bool) -> Result<Row, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let mut command = Command::new(exe);
    command.args([COMMAND, "--one", &nodes.to_string()]);
    if quick {
        command.arg("--quick");
    }
    let output = command
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start the size's process: {e}"))?;
    if !output.status.success() {
        return Err(format!("its process ended with {}", output.status));
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(Row::from_line)
        .ok_or_else(|| "its process printed no row".into())
}
