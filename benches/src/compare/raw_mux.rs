//! Raw TCP with every caller a task of its own: the reference for the
//! task-per-caller shape with more than one call in flight.
//!
//! Callers share one connection through the thinnest multiplexer that lets
//! them be separate tasks: a caller appends its frame to a shared output
//! buffer, queues a completion, wakes the writer task and waits. The writer
//! task writes everything queued so far in one `write`; the reader task reads
//! whole echoed frames (each the length of a request: the server answers in
//! order) and completes that many waiting callers. No ids, no call table, no
//! per-message allocation beyond the completion: what is left is the cost of
//! the shape itself (task wake-ups, and how many frames a write gathers
//! under the runtime's scheduling).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::channel::oneshot;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// What the callers and the connection's two tasks share.
#[derive(Debug, Default)]
struct Queue {
    /// Frames not yet handed to the writer.
    out: Vec<u8>,
    /// Callers waiting for their answer, in the order their frames were sent.
    waiting: VecDeque<oneshot::Sender<()>>,
    /// The connection failed: callers are refused.
    failed: bool,
}

/// One connection shared by caller tasks.
#[derive(Debug, Default)]
pub struct Mux {
    queue: Mutex<Queue>,
    writer: Notify,
}

impl Mux {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        // A panic elsewhere cannot leave the queue inconsistent: keep going.
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sends `frame` and waits for its echo.
    pub async fn call(&self, frame: &[u8]) -> Result<(), String> {
        let (done, answer) = oneshot::channel();
        {
            let mut queue = self.queue();
            if queue.failed {
                return Err("the connection failed".into());
            }
            queue.out.extend_from_slice(frame);
            queue.waiting.push_back(done);
        }
        self.writer.notify_one();
        answer
            .await
            .map_err(|_| "the connection failed".to_string())
    }

    fn fail(&self) {
        let mut queue = self.queue();
        queue.failed = true;
        // Dropping the completions fails the waiting callers.
        queue.waiting.clear();
    }
}

/// Starts the writer and reader tasks of `stream`, whose answers are frames
/// of `frame_len` bytes; returns the shared connection and the two tasks
/// (to abort when done).
pub fn start(
    stream: TcpStream,
    frame_len: usize,
    read_buffer: usize,
) -> (Arc<Mux>, [tokio::task::JoinHandle<()>; 2]) {
    let mux = Arc::new(Mux::default());
    let (read, write) = stream.into_split();
    let writer = tokio::spawn({
        let mux = mux.clone();
        async move {
            if write_loop(&mux, write).await.is_err() {
                mux.fail();
            }
        }
    });
    let reader = tokio::spawn({
        let mux = mux.clone();
        async move {
            let _ = read_loop(&mux, read, frame_len, read_buffer.max(2 * frame_len)).await;
            mux.fail();
        }
    });
    (mux, [writer, reader])
}

async fn write_loop(mux: &Mux, mut write: OwnedWriteHalf) -> std::io::Result<()> {
    let mut batch = Vec::new();
    loop {
        mux.writer.notified().await;
        loop {
            std::mem::swap(&mut mux.queue().out, &mut batch);
            if batch.is_empty() {
                break;
            }
            write.write_all(&batch).await?;
            batch.clear();
        }
    }
}

async fn read_loop(
    mux: &Mux,
    mut read: OwnedReadHalf,
    frame_len: usize,
    buffer: usize,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; buffer];
    let mut buffered = 0usize;
    loop {
        let n = read.read(&mut buf[buffered..]).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buffered += n;
        let answers = buffered / frame_len;
        buf.copy_within(answers * frame_len..buffered, 0);
        buffered -= answers * frame_len;
        let mut queue = mux.queue();
        if answers > queue.waiting.len() {
            return Err(std::io::Error::other("more answers than calls"));
        }
        for done in queue.waiting.drain(..answers) {
            let _ = done.send(());
        }
    }
}
