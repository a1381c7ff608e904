//! Raw TCP on tokio: the reference every RPC system is measured against.
//!
//! - Echo: length-prefixed frames (`u32` little-endian length, payload) on
//!   one connection; the server echoes every complete frame it has with one
//!   `write`. With one call in flight the client is a ping-pong: the lone
//!   caller task does its own I/O. With more, in the headline
//!   (task-per-caller) rows every caller is a task of its own sharing the
//!   connection through [`raw_mux`]; in the "callers in one
//!   task" rows one task keeps them all outstanding, pipelined, writing as
//!   many new requests in one `write` as responses arrived in the last
//!   `read`. No per-message parsing, allocation or dispatch: an idealised
//!   ceiling that no RPC system reaches.
//! - One-way: the server writes frames back to back, about 256 KiB of whole
//!   frames per `write` (three 64 KiB messages, or about 7000 32 B ones),
//!   and the client reads into a 256 KiB buffer and counts whole frames.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use futures::future::select;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::measure::{closed_loop, Callers, Load, Session, Tally};
use super::raw_mux;
use super::topology::{tokio_pair, Stop, Topology};

const READ_BUFFER: usize = 256 * 1024;

/// Bytes the one-way server hands the kernel per `write`: whole frames, so
/// 64 KiB messages go four to a write and the kernel cuts full segments
/// instead of a 64 KiB one and a 4-byte one per message.
const ONE_WAY_WRITE: usize = 256 * 1024;

/// One frame: length prefix and a payload of `size` bytes.
fn frame(size: usize) -> Vec<u8> {
    let mut frame = Vec::with_capacity(4 + size);
    frame.extend_from_slice(&(size as u32).to_le_bytes());
    frame.extend((0..size).map(|i| i as u8));
    frame
}

fn bind() -> Result<(std::net::TcpListener, SocketAddr), String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    Ok((listener, addr))
}

async fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(stream)
}

/// Accepts one connection and serves it with `serve` until `stop`.
async fn serve_one<F, Fut>(listener: std::net::TcpListener, stop: Stop, serve: F)
where
    F: FnOnce(TcpStream) -> Fut,
    Fut: std::future::Future<Output = std::io::Result<()>>,
{
    let work = async move {
        let listener = TcpListener::from_std(listener)?;
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        serve(stream).await
    };
    // Errors (the client hanging up) end the server; the client reports its own.
    let _ = select(Box::pin(work), stop).await;
}

/// Echo: `load.in_flight` requests of `load.size` bytes outstanding on one
/// connection.
pub fn echo(session: Session, topology: Topology, load: Load) -> Result<Tally, String> {
    let (listener, addr) = bind()?;
    let Load {
        callers,
        in_flight,
        size,
    } = load;
    tokio_pair(
        topology,
        move |stop| serve_one(listener, stop, echo_server),
        move || async move {
            if callers == Callers::OneTask || in_flight == 1 {
                echo_client(session, addr, size, in_flight).await
            } else {
                echo_callers(session, addr, size, in_flight).await
            }
        },
    )
}

/// Every caller a task of its own, on one connection shared through
/// [`raw_mux`].
async fn echo_callers(
    session: Session,
    addr: SocketAddr,
    size: usize,
    in_flight: usize,
) -> Result<Tally, String> {
    let stream = connect(addr).await?;
    let frame = std::sync::Arc::new(frame(size));
    let (mux, tasks) = raw_mux::start(stream, frame.len(), READ_BUFFER);
    let window = session.begin();
    let tally = closed_loop(
        Callers::Tasks,
        |task| drop(tokio::spawn(task)),
        in_flight,
        window,
        mux,
        move |mux| {
            let frame = frame.clone();
            async move {
                mux.call(&frame).await?;
                Ok(mux)
            }
        },
    )
    .await;
    for task in tasks {
        task.abort();
    }
    tally
}

async fn echo_server(mut stream: TcpStream) -> std::io::Result<()> {
    let mut buf = bytes::BytesMut::with_capacity(READ_BUFFER);
    loop {
        if stream.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
        let mut complete = 0;
        while buf.len() - complete >= 4 {
            let header = [
                buf[complete],
                buf[complete + 1],
                buf[complete + 2],
                buf[complete + 3],
            ];
            let len = u32::from_le_bytes(header) as usize;
            if buf.len() - complete - 4 < len {
                break;
            }
            complete += 4 + len;
        }
        if complete > 0 {
            let out = buf.split_to(complete);
            stream.write_all(&out).await?;
        }
        if buf.capacity() - buf.len() < READ_BUFFER / 4 {
            buf.reserve(READ_BUFFER);
        }
    }
}

async fn echo_client(
    session: Session,
    addr: SocketAddr,
    size: usize,
    in_flight: usize,
) -> Result<Tally, String> {
    let mut stream = connect(addr).await?;
    let frame = frame(size);
    let mut sent: VecDeque<Instant> = VecDeque::with_capacity(in_flight);
    let mut out = Vec::with_capacity(in_flight * frame.len());
    let mut buf = vec![0u8; READ_BUFFER.max(2 * frame.len())];
    let mut buffered = 0usize;
    let mut tally = Tally::default();
    let window = session.begin();
    let now = Instant::now();
    for _ in 0..in_flight {
        out.extend_from_slice(&frame);
        sent.push_back(now);
    }
    stream.write_all(&out).await.map_err(|e| e.to_string())?;
    loop {
        let n = stream
            .read(&mut buf[buffered..])
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the server hung up".into());
        }
        buffered += n;
        // Responses are the requests echoed: whole frames of a known length.
        let responses = buffered / frame.len();
        buf.copy_within(responses * frame.len()..buffered, 0);
        buffered -= responses * frame.len();
        let now = Instant::now();
        out.clear();
        for _ in 0..responses {
            let started = sent.pop_front().ok_or("more responses than requests")?;
            if tally.completed_at(&window, started, now) {
                return Ok(tally);
            }
            out.extend_from_slice(&frame);
            sent.push_back(now);
        }
        if !out.is_empty() {
            stream.write_all(&out).await.map_err(|e| e.to_string())?;
        }
    }
}

/// One-way: the server sends `size`-byte messages as fast as the client reads.
/// Messages are counted by the session's meter.
pub fn one_way(session: Session, topology: Topology, size: usize) -> Result<(), String> {
    let (listener, addr) = bind()?;
    tokio_pair(
        topology,
        move |stop| serve_one(listener, stop, move |stream| one_way_server(stream, size)),
        move || one_way_client(session, addr, size),
    )
}

async fn one_way_server(mut stream: TcpStream, size: usize) -> std::io::Result<()> {
    let frame = frame(size);
    let per_write = (ONE_WAY_WRITE / frame.len()).max(1);
    let chunk = frame.repeat(per_write);
    loop {
        stream.write_all(&chunk).await?;
    }
}

async fn one_way_client(session: Session, addr: SocketAddr, size: usize) -> Result<(), String> {
    let mut stream = connect(addr).await?;
    let frame_len = (4 + size) as u64;
    let meter = session.meter();
    let mut buf = vec![0u8; READ_BUFFER];
    let mut total = 0u64;
    session.begin();
    while !meter.stopped() {
        let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the server hung up".into());
        }
        total += n as u64;
        meter.set(total / frame_len);
    }
    Ok(())
}
