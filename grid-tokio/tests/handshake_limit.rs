//! Clients that connect and say nothing hold at most
//! `max_pending_handshakes` of a node's sockets and tasks; connections over
//! that are closed at once, and a real peer gets in once the silent ones go.

use std::time::{Duration, Instant};

use grid_tokio::{Bytes, Ctx, Manager, Router, Timeouts};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

async fn node(name: &str, peers: &[String]) -> Manager {
    Manager::builder(name)
        .peers(peers.to_vec())
        .secret("handshake limit test secret")
        .router(Router::new().single(1, |_ctx: Ctx, request: Bytes| async move { Ok(request) }))
        .timeouts(Timeouts {
            handshake: Duration::from_secs(3),
            ..Timeouts::default()
        })
        .max_pending_handshakes(3)
        .start()
        .await
        .expect("start")
}

/// What the node does with a fresh connection within `wait`: `Some(n)` if
/// it sent `n` bytes (its `Hello`), `None` if it closed it.
async fn first_read(socket: &mut TcpStream, wait: Duration) -> Option<usize> {
    let mut buf = [0u8; 256];
    match tokio::time::timeout(wait, socket.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => None,
        Ok(Ok(n)) => Some(n),
        Err(_) => panic!("the node neither greeted nor closed the connection"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_clients_hold_a_bounded_number_of_handshakes() {
    let names = grid::conformance::free_loopback_addresses(2);
    // Of two nodes only one dials: the node under test is the one that
    // accepts, whichever of the two names sorts where.
    let (victim, peer) = if grid_proto::dials(&names[1], &names[0]) {
        (&names[0], &names[1])
    } else {
        (&names[1], &names[0])
    };
    let node_under_test = node(victim, &names).await;

    let mut silent = Vec::new();
    for _ in 0..3 {
        let mut socket = TcpStream::connect(victim.as_str()).await.unwrap();
        assert!(first_read(&mut socket, Duration::from_secs(2))
            .await
            .is_some());
        silent.push(socket);
    }
    // Over the limit: closed at once, long before the handshake timeout.
    let started = Instant::now();
    let mut over = TcpStream::connect(victim.as_str()).await.unwrap();
    assert_eq!(first_read(&mut over, Duration::from_secs(2)).await, None);
    assert!(started.elapsed() < Duration::from_secs(1));

    // The real peer is turned away while the silent clients hold every
    // place, and gets in once they hang up.
    let real = node(peer, &names).await;
    assert!(node_under_test
        .wait_connected(peer, Duration::from_millis(300))
        .await
        .is_err());
    drop(silent);
    node_under_test
        .wait_connected(peer, Duration::from_secs(10))
        .await
        .expect("the real peer connects once places are free");
    real.wait_connected(victim, Duration::from_secs(5))
        .await
        .unwrap();
    let echoed = real
        .peer(victim)
        .unwrap()
        .request(1, "still serving")
        .await
        .unwrap();
    assert_eq!(&echoed[..], b"still serving");
}
