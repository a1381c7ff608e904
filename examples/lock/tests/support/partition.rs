//! A network partition for nodes on loopback: every node dials through a
//! connector that refuses to cross the cut and breaks the connections that
//! already cross it.

use std::collections::HashSet;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};

use futures_io::{AsyncRead, AsyncWrite};
use grid::{BoxIo, Connector, Dialed, Runtime};

/// Which nodes are cut off from the rest.
#[derive(Clone, Default)]
pub(crate) struct Partition {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// One side of the cut; everything else is the other side.
    side: Mutex<HashSet<String>>,
    links: Mutex<Vec<Weak<Link>>>,
}

/// One connection, as the partition sees it.
struct Link {
    ends: (String, String),
    cut: AtomicBool,
    reader: Mutex<Option<Waker>>,
}

impl Link {
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        if let Some(waker) = self.reader.lock().unwrap().take() {
            waker.wake();
        }
    }

    fn check(&self) -> io::Result<()> {
        match self.cut.load(Ordering::SeqCst) {
            true => Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "partitioned",
            )),
            false => Ok(()),
        }
    }
}

impl Partition {
    /// Cuts `nodes` off from every other node, breaking their connections.
    pub(crate) fn isolate<S: AsRef<str>>(&self, nodes: impl IntoIterator<Item = S>) {
        let mut side = self.inner.side.lock().unwrap();
        side.extend(nodes.into_iter().map(|n| n.as_ref().to_string()));
        let links = self.inner.links.lock().unwrap();
        for link in links.iter().filter_map(Weak::upgrade) {
            if side.contains(&link.ends.0) != side.contains(&link.ends.1) {
                link.cut();
            }
        }
    }

    /// Removes the cut; nodes reconnect on their own.
    pub(crate) fn heal(&self) {
        self.inner.side.lock().unwrap().clear();
    }

    fn separated(&self, a: &str, b: &str) -> bool {
        let side = self.inner.side.lock().unwrap();
        side.contains(a) != side.contains(b)
    }

    /// The connector of node `me`: plain TCP on `runtime`, unless the
    /// partition separates `me` from the node dialed.
    pub(crate) fn connector<R: Runtime>(&self, runtime: R, me: &str) -> Connector {
        let partition = self.clone();
        let me = me.to_string();
        Arc::new(move |addr: &str| {
            let partition = partition.clone();
            let ends = (me.clone(), addr.to_string());
            let connect = runtime.connect(addr);
            Box::pin(async move {
                if partition.separated(&ends.0, &ends.1) {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionRefused,
                        "partitioned",
                    ));
                }
                let io = connect.await?;
                let link = Arc::new(Link {
                    ends,
                    cut: AtomicBool::new(false),
                    reader: Mutex::new(None),
                });
                let mut links = partition.inner.links.lock().unwrap();
                links.retain(|l| l.strong_count() > 0);
                links.push(Arc::downgrade(&link));
                // A partition set up while this connect was under way.
                if partition.separated(&link.ends.0, &link.ends.1) {
                    link.cut();
                }
                Ok(Dialed::plain(Box::new(CutIo { io, link })))
            })
        })
    }
}

/// A dialed connection that fails once the partition cuts it. The dialing
/// node then closes the socket, so the accepting node sees it end too.
struct CutIo {
    io: BoxIo,
    link: Arc<Link>,
}

impl AsyncRead for CutIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.link.check()?;
        *self.link.reader.lock().unwrap() = Some(cx.waker().clone());
        // Cut between the check and storing the waker: nobody will wake us.
        self.link.check()?;
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for CutIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.link.check()?;
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.link.check()?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_close(cx)
    }
}
