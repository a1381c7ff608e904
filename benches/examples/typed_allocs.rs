//! Allocations per call through the whole grid stack on tokio: byte calls
//! against typed calls, so the typed layer's own cost shows as the difference.
//!
//! `cargo run --release -p grid-benches --example typed_allocs`

use std::time::Duration;

use grid_benches::counting_alloc::{CountingAlloc, CountingGuard};
use grid_tokio::typed::Single;
use grid_tokio::{Bytes, Ctx, HandlerError, Manager, Router, Tokio};
use serde::{Deserialize, Serialize};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

const ECHO: u16 = 1;

/// A typical small metadata request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Stat {
    bucket: String,
    object: String,
    version: u64,
    flags: u32,
}

const STAT: Single<Stat, Stat> = Single::new(2);

const CALLS: u64 = 20_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let a = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let b = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let names = [a.local_addr()?.to_string(), b.local_addr()?.to_string()];
        let mut nodes = Vec::new();
        for (name, listener) in names.iter().zip([a, b]) {
            let node = Manager::builder(name)
                .peers(names.clone())
                .secret("typed allocs secret")
                .listener(Tokio::listener(listener))
                .router(
                    Router::new()
                        .single(ECHO, |_ctx: Ctx, request: Bytes| async move {
                            Ok::<_, HandlerError>(request)
                        })
                        .handle(&STAT, |_ctx: Ctx, stat: Stat| async move {
                            Ok::<_, String>(stat)
                        }),
                )
                .start()
                .await?;
            nodes.push(node);
        }
        nodes[0].wait_all_connected(Duration::from_secs(5)).await?;
        let conn = nodes[0].peer(&names[1])?;
        let stat = Stat {
            bucket: "photos".into(),
            object: "2026/11/21/IMG_0001.jpg".into(),
            version: 7,
            flags: 3,
        };
        let payload = Bytes::from(vec![7u8; 64]);
        // Warm up buffers, maps and the allocator.
        for _ in 0..2000 {
            conn.request(ECHO, payload.clone()).await?;
            conn.call(&STAT, &stat).await.map_err(|e| e.to_string())?;
        }
        let guard = CountingGuard::start();
        for _ in 0..CALLS {
            conn.request(ECHO, payload.clone()).await?;
        }
        let bytes_calls = guard.counts().per(CALLS);
        drop(guard);
        let guard = CountingGuard::start();
        for _ in 0..CALLS {
            let answer = conn.call(&STAT, &stat).await.map_err(|e| e.to_string())?;
            assert_eq!(answer.version, 7);
        }
        let typed_calls = guard.counts().per(CALLS);
        drop(guard);
        println!("allocations per call, both nodes, one in flight, {CALLS} calls:");
        println!(
            "  byte call  (64 B): {:.2} allocs, {:.2} reallocs, {:.0} B requested",
            bytes_calls.allocs, bytes_calls.reallocs, bytes_calls.bytes
        );
        println!(
            "  typed call (Stat): {:.2} allocs, {:.2} reallocs, {:.0} B requested",
            typed_calls.allocs, typed_calls.reallocs, typed_calls.bytes
        );
        for node in nodes {
            node.shutdown(Duration::from_millis(100)).await;
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
