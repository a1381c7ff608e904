//! tarpc: a `#[tarpc::service]` echo over TCP with tarpc's serde transport
//! (length-delimited frames, bincode). One client (one connection); calls
//! are pipelined by issuing many of them concurrently on it, each caller a
//! clone of the client. Payloads are [`Bytes`], which bincode writes as one
//! length and a copy. tarpc's defaults, as `serde_transport::tcp::connect`
//! and `listen` give them: the default length-delimited framing, and
//! `TCP_NODELAY` off, which tarpc leaves to the application (the rows with
//! it set on both ends say so); client: 1000 requests in flight at most;
//! server: each request handled in a tokio task of its own.

use std::net::SocketAddr;

use bytes::Bytes;
use futures::future::select;
use futures::StreamExt;
use tarpc::server::{BaseChannel, Channel};
use tarpc::tokio_serde::formats::Bincode;
use tarpc::tokio_util::codec::LengthDelimitedCodec;
use tarpc::{client, context, serde_transport};
use tokio::net::{TcpListener, TcpStream};

use super::measure::{closed_loop, Load, Session, Tally};
use super::topology::{tokio_pair, Stop, Topology};

/// The service, in a module of its own: the items tarpc generates carry no
/// documentation.
#[allow(missing_docs, unreachable_pub)]
mod service {
    use bytes::Bytes;

    #[tarpc::service]
    pub trait Echo {
        /// Returns the payload.
        async fn echo(payload: Bytes) -> Bytes;
    }

    /// The server: echoes.
    #[derive(Clone, Copy)]
    pub struct EchoServer;

    impl Echo for EchoServer {
        async fn echo(self, _: tarpc::context::Context, payload: Bytes) -> Bytes {
            payload
        }
    }
}

use service::{Echo, EchoClient, EchoServer};

/// The transport `serde_transport::tcp::connect` and `listen` build on a
/// socket, with `TCP_NODELAY` set first if `nodelay`.
type Transport<Item, SinkItem> =
    serde_transport::Transport<TcpStream, Item, SinkItem, Bincode<Item, SinkItem>>;

fn transport<Item, SinkItem>(
    stream: TcpStream,
    nodelay: bool,
) -> std::io::Result<Transport<Item, SinkItem>>
where
    Item: for<'de> tarpc::serde::Deserialize<'de>,
    SinkItem: tarpc::serde::Serialize,
{
    if nodelay {
        stream.set_nodelay(true)?;
    }
    Ok(serde_transport::new(
        LengthDelimitedCodec::builder().new_framed(stream),
        Bincode::default(),
    ))
}

async fn server(listener: std::net::TcpListener, nodelay: bool, stop: Stop) {
    let work = async move {
        let listener = TcpListener::from_std(listener)?;
        let (stream, _) = listener.accept().await?;
        let transport = transport(stream, nodelay)?;
        BaseChannel::with_defaults(transport)
            .execute(EchoServer.serve())
            .for_each(|response| async move {
                tokio::spawn(response);
            })
            .await;
        Ok::<_, std::io::Error>(())
    };
    let _ = select(Box::pin(work), stop).await;
}

async fn echo_call(client: EchoClient, payload: Bytes) -> Result<EchoClient, String> {
    let reply = client
        .echo(context::current(), payload.clone())
        .await
        .map_err(|e| format!("echo: {e}"))?;
    if reply.len() != payload.len() {
        return Err(format!(
            "echo of {} bytes came back with {}",
            payload.len(),
            reply.len()
        ));
    }
    Ok(client)
}

/// Echo: `load.in_flight` calls of `load.size` bytes outstanding on one
/// client; `nodelay` sets `TCP_NODELAY` on both ends.
pub fn echo(
    session: Session,
    topology: Topology,
    load: Load,
    nodelay: bool,
) -> Result<Tally, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let addr: SocketAddr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio_pair(
        topology,
        move |stop| server(listener, nodelay, stop),
        move || async move {
            let stream = TcpStream::connect(addr)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let transport = transport(stream, nodelay).map_err(|e| e.to_string())?;
            let client = EchoClient::new(client::Config::default(), transport).spawn();
            let payload = Bytes::from(vec![0xa5; load.size]);
            let client = echo_call(client, payload.clone()).await?;
            let window = session.begin();
            closed_loop(
                load.callers,
                |task| drop(tokio::spawn(task)),
                load.in_flight,
                window,
                client,
                move |client| echo_call(client, payload.clone()),
            )
            .await
        },
    )
}
