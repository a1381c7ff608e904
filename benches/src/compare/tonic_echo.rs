//! tonic (gRPC over HTTP/2) with a hand-written service: no protoc, no prost.
//!
//! Messages are raw [`Bytes`] through a small [`RawCodec`], so what is
//! measured is tonic, hyper and h2, not a protobuf encoder. Two methods on
//! one service: `/bench.Echo/Echo`, a unary echo, and `/bench.Echo/Bulk`, a
//! server-streaming call whose request is the message size and whose response
//! is an endless stream of copies of one message. One `Channel` (one HTTP/2
//! connection), each caller a clone of it, as tonic's documentation has
//! concurrent callers do. tonic's defaults throughout: `TCP_NODELAY` on both
//! ends (tonic's client and server builders turn it on), hyper's client
//! stream window 2 MiB, connection window 5 MiB.

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes};
use futures::future::{select, BoxFuture};
use futures::Stream;
use tonic::body::Body;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::{self, uri::PathAndQuery};
use tonic::codegen::Service;
use tonic::server::{Grpc, ServerStreamingService, UnaryService};
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Request, Response, Status};

use super::measure::{closed_loop, Callers, Load, Meter, Session, Tally};
use super::topology::{tokio_pair, Stop, Topology};

const ECHO_PATH: &str = "/bench.Echo/Echo";
const BULK_PATH: &str = "/bench.Echo/Bulk";

/// A codec whose messages are the raw bytes of the gRPC message.
#[derive(Clone, Copy, Debug, Default)]
pub struct RawCodec;

/// The encoder of [`RawCodec`]: copies the bytes into tonic's buffer.
#[derive(Clone, Copy, Debug, Default)]
pub struct RawEncoder;

/// The decoder of [`RawCodec`]: takes the message's bytes out of tonic's
/// buffer (without a copy where the buffer allows).
#[derive(Clone, Copy, Debug, Default)]
pub struct RawDecoder;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        let len = src.remaining();
        Ok(Some(src.copy_to_bytes(len)))
    }
}

/// The unary echo method.
struct EchoMethod;

impl UnaryService<Bytes> for EchoMethod {
    type Response = Bytes;
    type Future = Ready<Result<Response<Bytes>, Status>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        ready(Ok(Response::new(request.into_inner())))
    }
}

/// An endless stream of one message's copies.
type Copies = Pin<Box<dyn Stream<Item = Result<Bytes, Status>> + Send + 'static>>;

/// The server-streaming bulk method.
struct BulkMethod;

impl ServerStreamingService<Bytes> for BulkMethod {
    type Response = Bytes;
    type ResponseStream = Copies;
    type Future = Ready<Result<Response<Copies>, Status>>;

    // tonic's streams carry `Result<_, Status>`, however large `Status` is.
    #[allow(clippy::result_large_err)]
    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let size = match <[u8; 4]>::try_from(&request.get_ref()[..]) {
            Ok(size) => u32::from_le_bytes(size) as usize,
            Err(_) => return ready(Err(Status::invalid_argument("the request is the size"))),
        };
        let message = Bytes::from(vec![0x5a; size]);
        let copies: Copies = Box::pin(futures::stream::repeat_with(move || Ok(message.clone())));
        ready(Ok(Response::new(copies)))
    }
}

/// The service, routing by path as tonic-build's generated code does.
#[derive(Clone, Copy, Debug, Default)]
pub struct EchoService;

impl Service<http::Request<Body>> for EchoService {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        match request.uri().path() {
            ECHO_PATH => {
                Box::pin(async move { Ok(Grpc::new(RawCodec).unary(EchoMethod, request).await) })
            }
            BULK_PATH => Box::pin(async move {
                Ok(Grpc::new(RawCodec)
                    .server_streaming(BulkMethod, request)
                    .await)
            }),
            _ => Box::pin(async { Ok(Status::unimplemented("no such method").into_http()) }),
        }
    }
}

fn bind() -> Result<(std::net::TcpListener, SocketAddr), String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    Ok((listener, addr))
}

async fn server(listener: std::net::TcpListener, stop: Stop) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(error) => return eprintln!("  tonic listener: {error}"),
    };
    // What `Server::builder().serve(addr)` does with the builder's default
    // `tcp_nodelay(true)`; a listener handed over does not get it by itself.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let serve = Server::builder().serve_with_incoming(EchoService, incoming);
    let _ = select(Box::pin(serve), stop).await;
}

async fn channel(addr: SocketAddr) -> Result<Channel, String> {
    Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| format!("connect: {e}"))
}

type Client = tonic::client::Grpc<Channel>;

async fn echo_call(mut client: Client, payload: Bytes) -> Result<Client, String> {
    client.ready().await.map_err(|e| format!("ready: {e}"))?;
    let reply = client
        .unary(
            Request::new(payload.clone()),
            PathAndQuery::from_static(ECHO_PATH),
            RawCodec,
        )
        .await
        .map_err(|e| format!("unary: {e}"))?
        .into_inner();
    if reply.len() != payload.len() {
        return Err(format!(
            "echo of {} bytes came back with {}",
            payload.len(),
            reply.len()
        ));
    }
    Ok(client)
}

/// Echo: `load.in_flight` unary calls of `load.size` bytes outstanding on one
/// channel.
pub fn echo(session: Session, topology: Topology, load: Load) -> Result<Tally, String> {
    let (listener, addr) = bind()?;
    tokio_pair(
        topology,
        move |stop| server(listener, stop),
        move || async move {
            let client = Client::new(channel(addr).await?);
            let payload = Bytes::from(vec![0xa5; load.size]);
            // One call before the window, so the connection is up.
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

/// Opens the bulk call of `size`-byte messages and consumes it, counting
/// messages on `meter`, until the meter stops.
async fn consume_bulk(mut client: Client, size: usize, meter: &Meter) -> Result<(), String> {
    client.ready().await.map_err(|e| format!("ready: {e}"))?;
    let mut messages = client
        .server_streaming(
            Request::new(Bytes::copy_from_slice(&(size as u32).to_le_bytes())),
            PathAndQuery::from_static(BULK_PATH),
            RawCodec,
        )
        .await
        .map_err(|e| format!("server_streaming: {e}"))?
        .into_inner();
    let mut received = 0u64;
    while !meter.stopped() {
        match messages.message().await {
            Ok(Some(message)) if message.len() == size => {
                received += 1;
                meter.set(received);
            }
            Ok(Some(message)) => {
                return Err(format!("a message of {} bytes, not {size}", message.len()))
            }
            Ok(None) => return Err("the stream ended early".into()),
            Err(status) => return Err(format!("stream: {status}")),
        }
    }
    Ok(())
}

/// One-way: a server-streaming call of `size`-byte messages, counted by the
/// session's meter.
pub fn stream(session: Session, topology: Topology, size: usize) -> Result<(), String> {
    let (listener, addr) = bind()?;
    tokio_pair(
        topology,
        move |stop| server(listener, stop),
        move || async move {
            let client = Client::new(channel(addr).await?);
            let meter = session.meter();
            session.begin();
            consume_bulk(client, size, &meter).await
        },
    )
}

/// Head-of-line reference: one 32 B unary call at a time while a 64 KiB
/// server-streaming call (consumed by a task of its own) saturates the same
/// HTTP/2 connection.
pub fn echo_under_bulk(
    session: Session,
    topology: Topology,
    bulk_size: usize,
) -> Result<Tally, String> {
    let (listener, addr) = bind()?;
    tokio_pair(
        topology,
        move |stop| server(listener, stop),
        move || async move {
            let client = Client::new(channel(addr).await?);
            let payload = Bytes::from(vec![0xa5; 32]);
            let client = echo_call(client, payload.clone()).await?;
            let meter = session.meter();
            let bulk = tokio::spawn({
                let client = client.clone();
                async move { consume_bulk(client, bulk_size, &meter).await }
            });
            let window = session.begin();
            let tally = closed_loop(
                Callers::Tasks,
                |task| drop(tokio::spawn(task)),
                1,
                window,
                client,
                move |client| echo_call(client, payload.clone()),
            )
            .await;
            bulk.await
                .map_err(|e| format!("the bulk task failed: {e}"))??;
            tally
        },
    )
}
