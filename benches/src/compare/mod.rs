//! End-to-end comparison of grid against raw TCP, tonic and tarpc, on
//! loopback, in the topologies of DESIGN.md §6.
//!
//! Run it with
//!
//! ```text
//! cargo run --release -p grid-benches --features compare -- compare [--quick]
//! ```
//!
//! (see [`cli`] for the options). Every *point* (one workload, one system,
//! one topology) runs for a fixed short time after a warm-up; a progress line
//! per point goes to stderr, and at the end a table (each figure with its
//! ratio to raw TCP, tonic and tarpc measured in the same run) and one JSON
//! line per point go to stdout (or the JSON to `--json FILE`).
//!
//! Workloads:
//! 1. single-request echo, 32 B and 4 KiB, 1/16/64/256 in flight on one
//!    connection: requests/s, p50, p99, CPU µs per call — raw TCP
//!    (ping-pong / pipelined), grid-tokio, grid-async-std, tonic, tarpc;
//! 2. a one-way stream of 32 B and of 64 KiB messages: messages/s and GiB/s —
//!    raw TCP one-way writes, grid-tokio, grid-async-std, tonic streaming;
//! 3. 32 B call latency while a 64 KiB bulk stream saturates the same
//!    connection, against the idle figure of workload 1 (grid, and tonic as
//!    a reference: HTTP/2 multiplexes too);
//! 4. a mesh of 8 grid-tokio nodes, every node calling every other.
//!
//! Modules: one per system under test ([`raw_tcp`], [`grid_rt`] for both grid
//! runtimes, [`tonic_echo`], [`tarpc_echo`], [`mesh`]), and the harness:
//! [`topology`] (where each side runs), [`measure`](mod@measure) (window, coordinator,
//! closed-loop load), [`latency`], [`cpu`], [`report`], [`cli`].

pub mod cli;
pub mod cpu;
pub mod grid_rt;
pub mod latency;
pub mod measure;
pub mod mesh;
pub mod raw_tcp;
pub mod report;
pub mod tarpc_echo;
pub mod tonic_echo;
pub mod topology;

use std::time::{Duration, Instant};

use grid_async_std::AsyncStd;
use grid_tokio::Tokio;

use self::cli::Options;
use self::latency::Histogram;
use self::measure::{measure, Session, Tally, Timing};
pub use self::topology::Topology;

/// A system under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum System {
    /// Length-prefixed frames on a tokio TCP socket: the reference.
    RawTcp,
    /// grid on tokio.
    GridTokio,
    /// grid on async-std.
    GridAsyncStd,
    /// tonic: gRPC over HTTP/2.
    Tonic,
    /// tarpc over TCP with bincode.
    Tarpc,
}

impl System {
    /// Name in the report and the JSON.
    pub fn name(self) -> &'static str {
        match self {
            System::RawTcp => "raw-tcp",
            System::GridTokio => "grid-tokio",
            System::GridAsyncStd => "grid-async-std",
            System::Tonic => "tonic",
            System::Tarpc => "tarpc",
        }
    }

    /// Whether this is one of the grid runtimes.
    pub fn is_grid(self) -> bool {
        matches!(self, System::GridTokio | System::GridAsyncStd)
    }
}

/// What a point does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Workload {
    /// Single requests echoing `size` bytes, `in_flight` outstanding on one
    /// connection.
    Echo {
        /// Payload bytes each way.
        size: usize,
        /// Calls outstanding at any time.
        in_flight: usize,
    },
    /// A one-way stream of `size`-byte messages, server to client.
    Stream {
        /// Message bytes.
        size: usize,
    },
    /// One 32 B echo at a time while a 64 KiB bulk stream saturates the same
    /// connection.
    EchoUnderBulk,
    /// `nodes` grid-tokio nodes, each with `in_flight` 32 B echo calls
    /// outstanding to every other.
    Mesh {
        /// Nodes in the mesh.
        nodes: usize,
        /// Calls outstanding per ordered pair of nodes.
        in_flight: usize,
    },
}

impl Workload {
    /// Short name of the kind of workload.
    pub fn kind(self) -> &'static str {
        match self {
            Workload::Echo { .. } => "echo",
            Workload::Stream { .. } => "stream",
            Workload::EchoUnderBulk => "echo-under-bulk",
            Workload::Mesh { .. } => "mesh",
        }
    }

    /// Payload bytes per call or message.
    pub fn size(self) -> usize {
        match self {
            Workload::Echo { size, .. } | Workload::Stream { size } => size,
            Workload::EchoUnderBulk | Workload::Mesh { .. } => 32,
        }
    }

    /// Calls outstanding (per connection), where that applies.
    pub fn in_flight(self) -> Option<usize> {
        match self {
            Workload::Echo { in_flight, .. } | Workload::Mesh { in_flight, .. } => Some(in_flight),
            Workload::EchoUnderBulk => Some(1),
            Workload::Stream { .. } => None,
        }
    }
}

/// One measurement: a workload, a system and a topology.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Point {
    /// What is done.
    pub workload: Workload,
    /// Who does it.
    pub system: System,
    /// Where the two sides run.
    pub topology: Topology,
}

impl Point {
    /// A one-line description, also what `--only` matches.
    pub fn label(&self) -> String {
        let detail = match self.workload {
            Workload::Echo { size, in_flight } => format!("{} x{in_flight}", report::bytes(size)),
            Workload::Stream { size } => report::bytes(size),
            Workload::EchoUnderBulk => {
                format!("32 B x1 + {} stream", report::bytes(grid_rt::HOL_BULK_SIZE))
            }
            Workload::Mesh { nodes, in_flight } => format!("{nodes} nodes, x{in_flight} per pair"),
        };
        format!(
            "{} {detail} {} {}",
            self.workload.kind(),
            self.topology.name(),
            self.system.name()
        )
    }

    /// The threads the point really ran on.
    pub fn executor(&self) -> &'static str {
        match (self.system, self.topology) {
            (_, Topology::MultiThread) => "one tokio multi-thread runtime, 2 workers, all nodes",
            (System::GridAsyncStd, Topology::Split) => {
                "async-std global executor, 2 threads shared by both nodes"
            }
            (System::GridAsyncStd, Topology::Single) => {
                "async-std global executor, 1 thread for both nodes"
            }
            (_, Topology::Split) => "tokio current_thread runtime per side, 2 threads",
            (_, Topology::Single) => "one tokio current_thread runtime for both sides",
        }
    }
}

/// What a point measured.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Calls (requests) or messages (streams) completed in the window.
    pub ops: u64,
    /// Length of the window.
    pub elapsed: Duration,
    /// Process CPU time in the window, all threads.
    pub cpu: Duration,
    /// Latency of the calls, for request workloads.
    pub latency: Option<Histogram>,
    /// Bulk stream messages received in the window (head-of-line workload).
    pub bulk_messages: Option<u64>,
    /// CPU time other processes on the machine used in the window.
    pub foreign_cpu: Option<Duration>,
}

impl Outcome {
    /// Calls or messages per second.
    pub fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// CPU microseconds per call or message.
    pub fn cpu_us_per_op(&self) -> Option<f64> {
        (self.ops > 0).then(|| self.cpu.as_secs_f64() * 1e6 / self.ops as f64)
    }

    /// A latency quantile in microseconds.
    pub fn latency_us(&self, q: f64) -> Option<f64> {
        self.latency
            .as_ref()
            .and_then(|h| h.quantile(q))
            .map(|d| d.as_secs_f64() * 1e6)
    }

    /// Share of one core that other processes used during the window: above
    /// [`NOISY`], the point's figures are suspect.
    pub fn foreign_share(&self) -> Option<f64> {
        self.foreign_cpu
            .map(|cpu| cpu.as_secs_f64() / self.elapsed.as_secs_f64().max(1e-9))
    }

    /// Bulk stream throughput in bytes per second (head-of-line workload).
    pub fn bulk_bytes_per_s(&self) -> Option<f64> {
        self.bulk_messages.map(|messages| {
            (messages * grid_rt::HOL_BULK_SIZE as u64) as f64 / self.elapsed.as_secs_f64().max(1e-9)
        })
    }
}

/// A point and how it went.
#[derive(Clone, Debug)]
pub struct Record {
    /// The point.
    pub point: Point,
    /// Its figures (the run with the median rate, with `--repeat`), or why
    /// there are none.
    pub outcome: Result<Outcome, String>,
    /// Lowest and highest rate over the runs, with `--repeat`.
    pub spread: Option<(f64, f64)>,
}

/// Runs `point` `repeat` times; keeps the run with the median rate, and the
/// spread of the rates. The first failure ends the repetitions.
pub fn run_repeated(
    point: Point,
    timing: Timing,
    window: Option<u32>,
    repeat: usize,
) -> (Result<Outcome, String>, Option<(f64, f64)>) {
    let mut runs = Vec::with_capacity(repeat);
    for _ in 0..repeat.max(1) {
        match run_point(point, timing, window) {
            Ok(outcome) => runs.push(outcome),
            Err(error) => return (Err(error), None),
        }
    }
    runs.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
    let spread = (runs.len() > 1).then(|| {
        let low = runs.first().map_or(0.0, Outcome::rate);
        let high = runs.last().map_or(0.0, Outcome::rate);
        (low, high)
    });
    let median = runs.swap_remove(runs.len() / 2);
    (Ok(median), spread)
}

/// Share of one core used by other processes during a window above which a
/// point is flagged as noisy.
pub const NOISY: f64 = 0.1;

/// Echo payload sizes.
pub const ECHO_SIZES: [usize; 2] = [32, 4096];
/// Calls in flight on the one connection.
pub const IN_FLIGHT: [usize; 4] = [1, 16, 64, 256];
/// Stream message sizes.
pub const STREAM_SIZES: [usize; 2] = [32, 64 * 1024];
/// Nodes in the mesh.
pub const MESH_NODES: usize = 8;
/// Calls in flight per ordered pair of mesh nodes.
pub const MESH_IN_FLIGHT: usize = 16;

/// Every point, in the order they run (systems interleaved, so that the
/// figures compared were measured close together in time).
pub fn plan() -> Vec<Point> {
    let mut points = Vec::new();
    for size in ECHO_SIZES {
        for in_flight in IN_FLIGHT {
            for topology in Topology::ALL {
                for system in [
                    System::RawTcp,
                    System::GridTokio,
                    System::GridAsyncStd,
                    System::Tonic,
                    System::Tarpc,
                ] {
                    points.push(Point {
                        workload: Workload::Echo { size, in_flight },
                        system,
                        topology,
                    });
                }
            }
        }
    }
    for size in STREAM_SIZES {
        for topology in Topology::ALL {
            for system in [
                System::RawTcp,
                System::GridTokio,
                System::GridAsyncStd,
                System::Tonic,
            ] {
                points.push(Point {
                    workload: Workload::Stream { size },
                    system,
                    topology,
                });
            }
        }
    }
    for topology in Topology::ALL {
        for system in [System::GridTokio, System::GridAsyncStd, System::Tonic] {
            points.push(Point {
                workload: Workload::EchoUnderBulk,
                system,
                topology,
            });
        }
    }
    points.push(Point {
        workload: Workload::Mesh {
            nodes: MESH_NODES,
            in_flight: MESH_IN_FLIGHT,
        },
        system: System::GridTokio,
        topology: Topology::MultiThread,
    });
    points
}

/// The receive window (in bytes) grid's bulk streams get at `point`, if
/// it has one: `override_window`, else [`grid_rt::bulk_capacity`].
pub fn stream_window(point: &Point, override_window: Option<u32>) -> Option<u32> {
    let size = match point.workload {
        Workload::Stream { size } => size,
        Workload::EchoUnderBulk => grid_rt::HOL_BULK_SIZE,
        _ => return None,
    };
    point
        .system
        .is_grid()
        .then(|| override_window.unwrap_or_else(|| grid_rt::bulk_capacity(size)))
}

/// Measures one point; `window` overrides grid's stream receive window.
pub fn run_point(point: Point, timing: Timing, window: Option<u32>) -> Result<Outcome, String> {
    let topology = point.topology;
    let capacity = stream_window(&point, window).unwrap_or(0);
    match (point.workload, point.system) {
        (Workload::Echo { size, in_flight }, system) => {
            calls(timing, move |session| match system {
                System::RawTcp => raw_tcp::echo(session, topology, size, in_flight),
                System::GridTokio => grid_rt::echo::<Tokio>(session, topology, size, in_flight),
                System::GridAsyncStd => {
                    grid_rt::echo::<AsyncStd>(session, topology, size, in_flight)
                }
                System::Tonic => tonic_echo::echo(session, topology, size, in_flight),
                System::Tarpc => tarpc_echo::echo(session, topology, size, in_flight),
            })
        }
        (Workload::Stream { size }, system) => {
            let ((), sample) = measure(timing, move |session| match system {
                System::RawTcp => raw_tcp::one_way(session, topology, size),
                System::GridTokio => grid_rt::stream::<Tokio>(session, topology, size, capacity),
                System::GridAsyncStd => {
                    grid_rt::stream::<AsyncStd>(session, topology, size, capacity)
                }
                System::Tonic => tonic_echo::stream(session, topology, size),
                System::Tarpc => Err("tarpc has no streams".into()),
            })?;
            Ok(Outcome {
                ops: sample.metered,
                elapsed: sample.elapsed,
                cpu: sample.cpu,
                latency: None,
                bulk_messages: None,
                foreign_cpu: sample.foreign_cpu,
            })
        }
        (Workload::EchoUnderBulk, system) => calls(timing, move |session| match system {
            System::GridTokio => grid_rt::echo_under_bulk::<Tokio>(session, topology, capacity),
            System::GridAsyncStd => {
                grid_rt::echo_under_bulk::<AsyncStd>(session, topology, capacity)
            }
            System::Tonic => tonic_echo::echo_under_bulk(session, topology, grid_rt::HOL_BULK_SIZE),
            _ => Err("no head-of-line workload for this system".into()),
        })
        .map(|mut outcome| {
            outcome.bulk_messages = outcome.bulk_messages.or(Some(0));
            outcome
        }),
        (Workload::Mesh { nodes, in_flight }, _) => calls(timing, move |session| {
            mesh::mesh(session, nodes, in_flight, 32)
        }),
    }
}

/// Measures a point whose client tallies calls.
fn calls<F>(timing: Timing, point: F) -> Result<Outcome, String>
where
    F: FnOnce(Session) -> Result<Tally, String> + Send + 'static,
{
    let (tally, sample) = measure(timing, point)?;
    Ok(Outcome {
        ops: tally.calls(),
        // Calls are counted by completion time inside the nominal window.
        elapsed: timing.measure,
        cpu: sample.cpu,
        latency: Some(tally.latency),
        bulk_messages: (sample.metered > 0).then_some(sample.metered),
        foreign_cpu: sample.foreign_cpu,
    })
}

/// Runs the comparison with command-line arguments `args` (without the
/// program name); returns the process exit code.
pub fn main(args: impl IntoIterator<Item = String>) -> i32 {
    let options = match Options::parse(args) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{}", cli::USAGE);
            return 0;
        }
        Err(error) => {
            eprintln!("{error}\n\n{}", cli::USAGE);
            return 2;
        }
    };
    // async-std reads its thread count once, when first used; the topologies
    // add threads to this base (see `topology`). Nothing has touched
    // async-std yet, and this thread is the only one.
    std::env::set_var(
        "ASYNC_STD_THREAD_COUNT",
        topology::ASYNC_STD_BASE_THREADS.to_string(),
    );
    // A deployed node installs a tracing subscriber. Without one, every span
    // of every system here would go to the `log` fallback that tarpc's
    // `tracing/log` feature turns on for the whole binary; one that records
    // nothing measures what a node with debug tracing off pays.
    let _ = tracing::subscriber::set_global_default(tracing::subscriber::NoSubscriber::default());
    let started = Instant::now();
    let points: Vec<Point> = plan()
        .into_iter()
        .filter(|point| options.selects(point))
        .collect();
    eprintln!(
        "grid comparison: {} points, {:.2} s each after {:.2} s of warm-up{}{}",
        points.len(),
        options.timing.measure.as_secs_f64(),
        options.timing.warmup.as_secs_f64(),
        if options.repeat > 1 {
            format!(", {} runs each (median kept)", options.repeat)
        } else {
            String::new()
        },
        if options.quick { " (--quick)" } else { "" }
    );
    let mut records = Vec::with_capacity(points.len());
    for (index, point) in points.iter().enumerate() {
        let point_started = Instant::now();
        let (outcome, spread) = run_repeated(
            *point,
            options.timing,
            options.stream_window,
            options.repeat,
        );
        let spread_note = spread.map_or_else(String::new, |(low, high)| {
            format!(
                " [median of {}; rate {:.0}..{:.0}]",
                options.repeat, low, high
            )
        });
        eprintln!(
            "[{:>3}/{}] {}{spread_note} ({:.2} s)",
            index + 1,
            points.len(),
            report::progress(point, &outcome),
            point_started.elapsed().as_secs_f64()
        );
        records.push(Record {
            point: *point,
            outcome,
            spread,
        });
    }
    let total = started.elapsed();
    let report = report::Report::new(&records, options.stream_window);
    print!("{}", report.table(total, &options));
    let json = report.json_lines();
    match &options.json {
        Some(path) => {
            if let Err(error) = std::fs::write(path, json) {
                eprintln!("cannot write {}: {error}", path.display());
                return 1;
            }
            eprintln!("JSON lines written to {}", path.display());
        }
        None => print!("{json}"),
    }
    if records.iter().any(|record| record.outcome.is_err()) {
        eprintln!("some points failed; see the table");
        return 1;
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every system runs a short point of each kind it supports.
    #[test]
    fn every_system_runs() {
        let timing = Timing {
            warmup: Duration::from_millis(20),
            measure: Duration::from_millis(50),
            patience: Duration::from_secs(20),
        };
        let mut points: Vec<Point> = plan()
            .into_iter()
            .filter(|p| {
                matches!(
                    p.workload,
                    Workload::Echo {
                        size: 32,
                        in_flight: 16
                    } | Workload::Stream { size: 65536 }
                        | Workload::EchoUnderBulk
                ) && p.topology == Topology::Single
            })
            .collect();
        points.push(Point {
            workload: Workload::Mesh {
                nodes: 3,
                in_flight: 2,
            },
            system: System::GridTokio,
            topology: Topology::MultiThread,
        });
        let mut records = Vec::new();
        for point in points {
            let outcome = run_point(point, timing, None);
            match &outcome {
                Ok(o) => assert!(o.ops > 0, "{}: nothing completed", point.label()),
                Err(error) => panic!("{}: {error}", point.label()),
            }
            records.push(Record {
                point,
                outcome,
                spread: None,
            });
        }
        let report = report::Report::new(&records, None);
        assert_eq!(report.json_lines().lines().count(), records.len());
    }
}
