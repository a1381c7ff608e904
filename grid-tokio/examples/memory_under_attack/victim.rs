//! The node under attack, run in a process of its own so that its resident
//! memory is its alone: every limit at its default, the hostile suite's
//! handlers, and a line of its accounting on stdout every few milliseconds.

use std::error::Error;
use std::io::Read;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use grid::conformance::hostile::{dialing_name, victim_router, SECRET};
use grid_tokio::{Manager, PeerState, Tokio};

use crate::log::Printer;

/// The argument that makes the example run as the node under attack.
pub(crate) const ARG: &str = "victim";

/// How often the node reports what it accounts to the attacker.
const REPORT_EVERY: Duration = Duration::from_millis(20);

/// Runs the node until its parent closes our stdin.
pub(crate) fn run() -> Result<(), Box<dyn Error>> {
    tracing::subscriber::set_global_default(Printer)?;
    // The parent ends us by closing the pipe; nothing else is read.
    std::thread::spawn(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve())
}

async fn serve() -> Result<(), Box<dyn Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    // A name the node accepts a connection from rather than dialing, so the
    // attacker needs no listener.
    let attacker = dialing_name("attacker", &addr);
    let holding = Arc::new(AtomicUsize::new(0));
    let node = Manager::builder(&addr)
        .listener(Tokio::listener(listener))
        .peers([attacker.clone()])
        .secret(SECRET)
        .router(victim_router(&holding))
        .start()
        .await?;
    println!("ready {addr} {attacker}");
    let peer = node.peer(&attacker)?;
    loop {
        let stats = peer.stats();
        let p = &stats.protocol;
        println!(
            "stats {} {} {} {} {} {} {}",
            u8::from(stats.state == PeerState::Connected),
            p.outbound_backlog,
            p.control_backlog,
            p.held_request_bytes,
            p.buffered_bytes,
            p.incoming_calls,
            p.refused_overloaded,
        );
        tokio::time::sleep(REPORT_EVERY).await;
    }
}
