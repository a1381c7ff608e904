//! What an idle connection costs: a node with many peers keeps most of its
//! connections quiet, and each must then hold little memory. Allocated bytes
//! are counted (not the pages touched), by a counting allocator: this file is
//! its own test binary with a single test, so nothing else allocates at the
//! same time.

// A global allocator is an unsafe trait; this one only forwards to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use grid_tokio::{Bytes, Ctx, HandlerError, Manager, Router, Timeouts, Tokio};

/// The most allocated memory an idle connection may hold, per end.
const IDLE_BUDGET: i64 = 16 * 1024;
const NODES: usize = 6;
const ECHO: u16 = 1;

/// Counts live allocated bytes; forwards to the system allocator.
struct LiveBytes;

static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: every method forwards to `System` with its arguments unchanged and
// only adds atomic counting, which never allocates.
unsafe impl GlobalAlloc for LiveBytes {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, Relaxed);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Relaxed);
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as i64 - layout.size() as i64, Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: LiveBytes = LiveBytes;

async fn echo(_: Ctx, payload: Bytes) -> Result<Bytes, HandlerError> {
    Ok(payload)
}

/// Connection ends in the mesh: each node holds one per other node.
fn ends() -> i64 {
    (NODES * (NODES - 1)) as i64
}

/// Allocated bytes per connection end since `before`; the nodes' own state
/// (router, listener, tasks) is counted too, so this overstates the cost.
fn per_end(before: i64) -> i64 {
    (LIVE.load(Relaxed) - before) / ends()
}

/// Just connected, and again a moment after traffic with large payloads
/// stopped, each connection end of a six-node mesh holds at most 16 KiB: the
/// read and transmit buffers are sized for the traffic, and given back once
/// the connection is quiet.
#[test]
fn idle_connections_hold_at_most_16_kib_each() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let listeners: Vec<_> = (0..NODES)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
            .collect();
        let names: Vec<String> = listeners
            .iter()
            .map(|listener| listener.local_addr().expect("address").to_string())
            .collect();
        // Idle connections give their buffers back at keepalive pings.
        let timeouts = Timeouts {
            keepalive_interval: Duration::from_millis(100),
            ..Timeouts::default()
        };
        let before = LIVE.load(Relaxed);
        let mut nodes = Vec::new();
        for (listener, name) in listeners.into_iter().zip(&names) {
            listener.set_nonblocking(true).expect("non-blocking");
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let node = Manager::builder(name.clone())
                .peers(names.iter().filter(|peer| *peer != name).cloned())
                .secret(b"a shared cluster secret")
                .timeouts(timeouts.clone())
                .listener(Tokio::listener(listener))
                .router(Router::new().single(ECHO, echo))
                .start()
                .await
                .expect("start");
            nodes.push(node);
        }
        for node in &nodes {
            node.wait_all_connected(Duration::from_secs(10))
                .await
                .expect("connected");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let connected = per_end(before);
        assert!(
            connected <= IDLE_BUDGET,
            "{connected} bytes per connection end just after connecting"
        );

        {
            let large = Bytes::from(vec![7u8; 1 << 20]);
            let mut calls = Vec::new();
            for node in &nodes {
                for peer in node.peers() {
                    let peer = node.peer(&peer).expect("peer");
                    for size in [1 << 20, 64 * 1024, 100, 10] {
                        let payload = large.slice(..size);
                        let peer = peer.clone();
                        calls.push(tokio::spawn(async move {
                            let reply = peer.request(ECHO, payload.clone()).await.expect("echo");
                            assert_eq!(reply, payload);
                        }));
                    }
                }
            }
            for call in calls {
                call.await.expect("echo task");
            }
        }
        let busy = per_end(before);
        assert!(busy > IDLE_BUDGET, "traffic grew no buffer: {busy} bytes");

        let quiet_by = Instant::now() + Duration::from_secs(8);
        let mut quiet = per_end(before);
        while quiet > IDLE_BUDGET && Instant::now() < quiet_by {
            tokio::time::sleep(Duration::from_millis(100)).await;
            quiet = per_end(before);
        }
        assert!(
            quiet <= IDLE_BUDGET,
            "{quiet} bytes per connection end 8 s after traffic stopped ({busy} while busy)"
        );
        for node in nodes {
            node.shutdown(Duration::from_secs(1)).await;
        }
    });
}
