//! Memory of a node under attack, measured, with every limit at its default.
//!
//! Each attack runs against a fresh node in a child process (this example
//! started again with the argument `victim`), so the node's resident memory
//! is not mixed with the attacker's. The attacker is the hostile suite's raw
//! peer, written from PROTOCOL.md, with the cluster secret: an insider, or a
//! stolen secret. For each attack it prints how the node ended the
//! connection and when, the most the node accounted to the connection in
//! each category, and the node's peak resident memory (`VmHWM`) against the
//! baseline and the documented per-connection bound.
//!
//! Run it with `cargo run --release -p grid-tokio --example memory_under_attack`
//! (Linux, for `/proc`). It takes about two minutes: two of the attacks last
//! until the 30 s write-stall rule closes them.

mod attacks;
mod child;
mod log;
mod report;
mod victim;

use std::error::Error;
use std::time::Duration;

use grid_proto::{Limits, Timeouts};

use crate::attacks::Attack;
use crate::child::Victim;
use crate::report::{node_reason, print_one, print_table, Measurement};

fn main() {
    let result = match std::env::args().nth(1).as_deref() {
        Some(victim::ARG) => victim::run(),
        _ => measure(),
    };
    if let Err(error) = result {
        eprintln!("memory_under_attack: {error}");
        std::process::exit(1);
    }
}

fn measure() -> Result<(), Box<dyn Error>> {
    if !std::path::Path::new("/proc/self/status").exists() {
        return Err("this measurement reads /proc/<pid>/status: it runs on Linux".into());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let limits = Limits::default();
    let timeouts = Timeouts::default();
    println!(
        "Defaults: max_outbound_backlog {} MiB, max_held_request_bytes {} MiB, \
         max_buffered_bytes {} MiB, max_control_backlog {} MiB, write_stall {:?}, \
         keepalive {:?}, idle {:?}",
        limits.max_outbound_backlog >> 20,
        limits.max_held_request_bytes >> 20,
        limits.max_buffered_bytes >> 20,
        limits.max_control_backlog >> 20,
        timeouts.write_stall,
        timeouts.keepalive_interval,
        timeouts.idle,
    );
    let mut all: Vec<Measurement> = Vec::new();
    for attack in Attack::ALL {
        println!();
        println!("== {}: {}", attack.name(), attack.describe());
        let victim = Victim::start()?;
        let outcome = runtime.block_on(attack.run(&victim));
        // The node's last reports are on their way through the pipe.
        std::thread::sleep(Duration::from_millis(200));
        let rss = victim.rss();
        let view = victim.view();
        victim.stop();
        let measurement = Measurement {
            attack,
            outcome: outcome?,
            peak: view.peak,
            rss: rss?,
            node_reason: node_reason(&view.log),
        };
        print_one(&measurement, all.first().map(|b| &b.rss), &limits);
        all.push(measurement);
    }
    print_table(&all, &limits);
    Ok(())
}
