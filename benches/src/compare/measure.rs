//! How a point is measured: a measurement window, the coordinator that reads
//! the process CPU time at its edges, and the closed-loop load of calls.
//!
//! A point's code (one system, one topology) runs in threads of its own. When
//! its client side has connected, it calls [`Session::begin`], which fixes the
//! [`Window`]: a warm-up, then the measured interval. The coordinator — the
//! thread that called [`measure`], otherwise asleep — reads the process CPU
//! time and the stream [`Meter`] exactly at the window's start and end, then
//! raises the meter's stop flag. Calls are counted by their completion time
//! (those completing inside the window), each worker timing its own calls.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use futures::future::BoxFuture;

use super::cpu::{machine_busy_time, process_cpu_time};
use super::latency::Histogram;

/// How long a point runs.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Load before the window opens (connections warm, buffers grown).
    pub warmup: Duration,
    /// The measured interval.
    pub measure: Duration,
    /// How long setup (connecting) or the end of a point may take before the
    /// point is abandoned as hung.
    pub patience: Duration,
}

/// The measured interval of a point.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// Calls completing from here on count.
    pub start: Instant,
    /// Calls completing from here on do not; workers stop.
    pub end: Instant,
}

/// A message counter for streams, read by the coordinator at the window's
/// edges, and the flag it raises when the window has closed.
///
/// Receivers store their running count with a plain relaxed store (no
/// read-modify-write), so counting costs about nothing per message.
#[derive(Debug, Default)]
pub struct Meter {
    count: AtomicU64,
    stop: AtomicBool,
}

impl Meter {
    /// Publishes the receiver's running total.
    #[inline]
    pub fn set(&self, total: u64) {
        self.count.store(total, Ordering::Relaxed);
    }

    /// Whether the window has closed.
    #[inline]
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn get(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// Handed to a point's code: opens the window and carries the meter.
#[derive(Clone, Debug)]
pub struct Session {
    timing: Timing,
    window: mpsc::Sender<Window>,
    meter: Arc<Meter>,
}

impl Session {
    /// Fixes the window, starting after the warm-up, and tells the coordinator.
    pub fn begin(&self) -> Window {
        let start = Instant::now() + self.timing.warmup;
        let window = Window {
            start,
            end: start + self.timing.measure,
        };
        let _ = self.window.send(window);
        window
    }

    /// The stream message counter.
    pub fn meter(&self) -> Arc<Meter> {
        self.meter.clone()
    }
}

/// What the coordinator saw over the window.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Length of the window as actually measured.
    pub elapsed: Duration,
    /// Process CPU time spent in it.
    pub cpu: Duration,
    /// Messages the meter counted in it.
    pub metered: u64,
    /// CPU time other processes used in it (the machine's busy time less this
    /// process's), if known: noise from neighbours.
    pub foreign_cpu: Option<Duration>,
}

/// Runs `point` in a thread of its own and samples CPU time and the meter at
/// the edges of the window it opens. Gives up (and leaves the thread behind)
/// if the window is not opened, or the point does not end, within
/// `timing.patience`.
pub fn measure<T, F>(timing: Timing, point: F) -> Result<(T, Sample), String>
where
    F: FnOnce(Session) -> Result<T, String> + Send + 'static,
    T: Send + 'static,
{
    let (window_tx, window_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    let meter = Arc::new(Meter::default());
    let session = Session {
        timing,
        window: window_tx,
        meter: meter.clone(),
    };
    std::thread::Builder::new()
        .name("point".into())
        .spawn(move || {
            let _ = done_tx.send(point(session));
        })
        .map_err(|e| format!("cannot start a thread: {e}"))?;
    let window = match window_rx.recv_timeout(timing.patience) {
        Ok(window) => window,
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // The point ended without opening a window: it failed in setup.
            return match done_rx.recv_timeout(timing.patience) {
                Ok(Err(error)) => Err(error),
                Ok(Ok(_)) => Err("the point never opened its window".into()),
                Err(_) => Err("the point died in setup".into()),
            };
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            meter.stop.store(true, Ordering::Relaxed);
            return Err(format!(
                "setup hung for {:?}; its threads are left behind",
                timing.patience
            ));
        }
    };
    sleep_until(window.start);
    let (t0, cpu0, count0) = (Instant::now(), process_cpu_time(), meter.get());
    let busy0 = machine_busy_time();
    sleep_until(window.end);
    let (t1, cpu1, count1) = (Instant::now(), process_cpu_time(), meter.get());
    let busy1 = machine_busy_time();
    meter.stop.store(true, Ordering::Relaxed);
    let cpu = cpu1.saturating_sub(cpu0);
    let sample = Sample {
        elapsed: t1 - t0,
        cpu,
        metered: count1.saturating_sub(count0),
        foreign_cpu: busy0
            .zip(busy1)
            .map(|(b0, b1)| b1.saturating_sub(b0).saturating_sub(cpu)),
    };
    match done_rx.recv_timeout(timing.patience) {
        Ok(Ok(value)) => Ok((value, sample)),
        Ok(Err(error)) => Err(error),
        Err(_) => Err(format!(
            "the point did not end within {:?} of its window; its threads are left behind",
            timing.patience
        )),
    }
}

fn sleep_until(deadline: Instant) {
    let now = Instant::now();
    if deadline > now {
        std::thread::sleep(deadline - now);
    }
}

/// Calls completed inside a window, and their latencies.
#[derive(Debug, Default)]
pub struct Tally {
    /// Latency of every call completed inside the window.
    pub latency: Histogram,
    /// Socket writes both ends of the connection made inside the window,
    /// where the system counts them (grid).
    pub socket_writes: Option<u64>,
}

impl Tally {
    /// Calls completed inside the window.
    pub fn calls(&self) -> u64 {
        self.latency.len()
    }

    /// Adds another worker's tally.
    pub fn merge(&mut self, other: &Tally) {
        self.latency.merge(&other.latency);
        if let Some(writes) = other.socket_writes {
            *self.socket_writes.get_or_insert(0) += writes;
        }
    }

    /// Records a call started at `started` that completed now; returns
    /// whether the window has closed (the worker should stop).
    #[inline]
    pub fn completed(&mut self, window: &Window, started: Instant) -> bool {
        self.completed_at(window, started, Instant::now())
    }

    /// Records a call started at `started` that completed at `now`; returns
    /// whether the window has closed.
    #[inline]
    pub fn completed_at(&mut self, window: &Window, started: Instant, now: Instant) -> bool {
        if now >= window.end {
            return true;
        }
        if now >= window.start {
            self.latency.record(now - started);
        }
        false
    }
}

/// The closed-loop load of an echo point.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    /// How the callers run.
    pub callers: Callers,
    /// Calls outstanding at any time: one per caller.
    pub in_flight: usize,
    /// Payload bytes each way.
    pub size: usize,
}

/// How the callers of a closed loop are run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Callers {
    /// Every caller is a task of its own, as calls are made in a node
    /// (handlers, background loops): the headline shape.
    Tasks,
    /// Every caller is a future joined in the one task that runs the loop, so
    /// their requests are queued together before any connection task runs:
    /// friendlier to write batching than what users run.
    OneTask,
}

/// Keeps `in_flight` calls going until the window closes: `in_flight`
/// callers, each making one call after the other, run as `callers` says
/// (tasks started with `spawn`, or futures joined in the calling task).
///
/// Each caller owns a `state` (a client handle, cloned once per caller) that
/// `call` consumes and gives back, so calls need not borrow it.
pub async fn closed_loop<S, F, Fut, SP>(
    callers: Callers,
    spawn: SP,
    in_flight: usize,
    window: Window,
    state: S,
    call: F,
) -> Result<Tally, String>
where
    S: Clone + Send + 'static,
    F: Fn(S) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<S, String>> + Send + 'static,
    SP: Fn(BoxFuture<'static, ()>),
{
    let caller = move |mut state: S, call: F| async move {
        let mut tally = Tally::default();
        loop {
            let started = Instant::now();
            state = call(state).await?;
            if tally.completed(&window, started) {
                return Ok::<_, String>(tally);
            }
        }
    };
    let tallies = match callers {
        Callers::OneTask => {
            let workers = (0..in_flight).map(|_| caller(state.clone(), call.clone()));
            futures::future::try_join_all(workers).await?
        }
        Callers::Tasks => {
            let mut results = Vec::with_capacity(in_flight);
            for _ in 0..in_flight {
                let (done, result) = oneshot::channel();
                let work = caller(state.clone(), call.clone());
                spawn(Box::pin(async move {
                    let _ = done.send(work.await);
                }));
                results.push(result);
            }
            let mut tallies = Vec::with_capacity(in_flight);
            for result in results {
                tallies.push(
                    result
                        .await
                        .map_err(|_| "a caller task vanished".to_string())??,
                );
            }
            tallies
        }
    };
    let mut total = Tally::default();
    for tally in &tallies {
        total.merge(tally);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    fn window(length: Duration) -> Window {
        let start = Instant::now();
        Window {
            start,
            end: start + length,
        }
    }

    /// Task-per-caller loops start one task per caller; one-task loops none.
    #[test]
    fn callers_run_as_asked() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for (callers, spawns) in [(Callers::Tasks, 8), (Callers::OneTask, 0)] {
            let spawned = Arc::new(AtomicUsize::new(0));
            let tally = runtime.block_on({
                let spawned = spawned.clone();
                async move {
                    closed_loop(
                        callers,
                        move |task| {
                            spawned.fetch_add(1, Ordering::Relaxed);
                            drop(tokio::spawn(task));
                        },
                        8,
                        window(Duration::from_millis(20)),
                        (),
                        |()| async {
                            tokio::task::yield_now().await;
                            Ok(())
                        },
                    )
                    .await
                }
            });
            assert_eq!(spawned.load(Ordering::Relaxed), spawns, "{callers:?}");
            assert!(tally.unwrap().calls() > 8, "{callers:?}");
        }
    }

    /// A failing call fails the loop, whichever way its callers run.
    #[test]
    fn a_failed_call_fails_the_loop() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for callers in [Callers::Tasks, Callers::OneTask] {
            let outcome = runtime.block_on(closed_loop(
                callers,
                |task| drop(tokio::spawn(task)),
                4,
                window(Duration::from_secs(10)),
                (),
                |()| async { Err::<(), _>("refused".to_string()) },
            ));
            assert_eq!(outcome.unwrap_err(), "refused", "{callers:?}");
        }
    }
}
