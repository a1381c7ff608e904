//! grid mounted on an HTTP server: one port serves grid connections
//! (upgraded from `Upgrade: grid` requests) and ordinary HTTP requests.
#![cfg(feature = "http")]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use grid_tokio::{http, Bytes, Connector, Ctx, Manager, Router};
use http_body_util::BodyExt;
use tokio::net::TcpListener;

const WHO: u16 = 1;
const SECRET: &str = "a shared cluster secret";

/// Two node names of which the first dials the second by the dial rule.
fn dialer_and_acceptor() -> (String, String) {
    let (a, b) = ("node-1:7000".to_string(), "node-2:7000".to_string());
    if grid_proto::dials(&a, &b) {
        (a, b)
    } else {
        (b, a)
    }
}

fn router() -> Router {
    Router::new().single(WHO, |ctx: Ctx, _request: Bytes| async move {
        let identity = ctx
            .peer_identity()
            .map(|identity| identity.nodes().join(","))
            .unwrap_or_else(|| "-".to_string());
        Ok(Bytes::from(format!("{} {identity}", ctx.peer())))
    })
}

/// An HTTP server whose ordinary requests get `hello from <path>`.
async fn hello(
    request: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<String>, Infallible> {
    Ok(hyper::Response::new(format!(
        "hello from {}",
        request.uri().path()
    )))
}

async fn get(addr: SocketAddr, path: &str) -> (hyper::StatusCode, String) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, addr.to_string())
        .body(String::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Starts the acceptor behind an HTTP port and the dialer with `connector`.
async fn mounted_pair(
    serve: impl Fn(Manager, tokio::net::TcpStream, SocketAddr) + Send + 'static,
    connector: impl FnOnce(&str) -> Connector,
) -> (Manager, Manager, SocketAddr, String, String) {
    let (dialer, acceptor) = dialer_and_acceptor();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap();
    let acceptor_node = Manager::builder(&acceptor)
        .peers([&dialer])
        .secret(SECRET)
        .no_listener()
        .router(router())
        .start()
        .await
        .unwrap();
    let served = acceptor_node.clone();
    tokio::spawn(async move {
        while let Ok((stream, remote)) = listener.accept().await {
            serve(served.clone(), stream, remote);
        }
    });
    let dialer_node = Manager::builder(&dialer)
        .peers([&acceptor])
        .peer_address(&acceptor, port.to_string())
        .secret(SECRET)
        .no_listener()
        .connector(connector(&dialer))
        .router(router())
        .start()
        .await
        .unwrap();
    (acceptor_node, dialer_node, port, acceptor, dialer)
}

#[tokio::test]
async fn one_port_serves_grid_and_ordinary_http() {
    let (acceptor_node, dialer_node, port, acceptor, dialer) = mounted_pair(
        |node, stream, remote| {
            tokio::spawn(http::serve_connection(node, stream, remote, hello));
        },
        |_| http::connector("/grid"),
    )
    .await;
    dialer_node
        .wait_connected(&acceptor, Duration::from_secs(5))
        .await
        .unwrap();
    // Calls both ways over the upgraded connection.
    let reply = dialer_node.peer(&acceptor).unwrap().request(WHO, "").await;
    assert_eq!(reply.unwrap(), format!("{dialer} -"));
    let reply = acceptor_node.peer(&dialer).unwrap().request(WHO, "").await;
    assert_eq!(reply.unwrap(), format!("{acceptor} -"));
    // Ordinary requests on the same port still reach the server's service.
    let (status, body) = get(port, "/status").await;
    assert_eq!(status, hyper::StatusCode::OK);
    assert_eq!(body, "hello from /status");
    dialer_node.shutdown(Duration::ZERO).await;
    acceptor_node.shutdown(Duration::ZERO).await;
}

#[tokio::test]
async fn a_server_without_grid_mounted_is_a_clear_dial_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(
                hyper_util::rt::TokioIo::new(stream),
                hyper::service::service_fn(hello),
            ));
        }
    });
    let error = match (http::connector("/grid"))(&port.to_string()).await {
        Ok(_) => panic!("a plain HTTP server accepted a grid upgrade"),
        Err(error) => error,
    };
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(error.to_string().contains("200 OK"), "{error}");
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn grid_mounted_on_an_https_port_carries_the_certificate_identity() {
    use grid_tokio::tls::DemoCa;
    use std::sync::Arc;

    let ca = Arc::new(DemoCa::new("cluster CA").unwrap());
    let (_, acceptor) = dialer_and_acceptor();
    let server_tls = ca.node_config(&[&acceptor]).unwrap();
    let (acceptor_node, dialer_node, _port, acceptor, dialer) = mounted_pair(
        move |node, stream, remote| {
            let tls = server_tls.clone();
            tokio::spawn(async move {
                http::serve_tls_connection(node, stream, remote, &tls, hello).await
            });
        },
        |name| http::tls_connector("/grid", &ca.node_config(&[name]).unwrap()),
    )
    .await;
    dialer_node
        .wait_connected(&acceptor, Duration::from_secs(5))
        .await
        .unwrap();
    let reply = acceptor_node.peer(&dialer).unwrap().request(WHO, "").await;
    assert_eq!(reply.unwrap(), format!("{acceptor} {acceptor}"));
    let reply = dialer_node.peer(&acceptor).unwrap().request(WHO, "").await;
    assert_eq!(reply.unwrap(), format!("{dialer} {dialer}"));
    dialer_node.shutdown(Duration::ZERO).await;
    acceptor_node.shutdown(Duration::ZERO).await;
}
