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
//! one topology, one [`Variant`]) runs for a fixed short time after a
//! warm-up; a progress line per point goes to stderr, and at the end a table
//! (each figure with its ratio to raw TCP, tonic and tarpc measured in the
//! same run) and one JSON line per point go to stdout (or the JSON to
//! `--json FILE`).
//!
//! Headline rows measure what users run: every caller is a task of its own
//! (for every system, raw TCP included), and every setting is left at its
//! default (grid's builder defaults, tonic's and tarpc's as a new user gets
//! them). Extra rows, each labelled with what differs, put the headline in
//! context: the callers joined in one task (the shape this comparison
//! measured before, friendlier to write batching), grid's stream window set
//! by hand, tarpc with `TCP_NODELAY`.
//!
//! Workloads:
//! 1. single-request echo, 32 B and 4 KiB, 1/16/64/256 in flight on one
//!    connection: requests/s, p50, p99, CPU µs per call (both sides), and
//!    for grid socket writes per call — raw TCP (ping-pong / caller tasks
//!    sharing the socket through [`raw_mux`]), grid-tokio, grid-async-std,
//!    tonic, tarpc;
//! 2. a one-way stream of 32 B and of 64 KiB messages: messages/s and GiB/s —
//!    raw TCP one-way writes, grid-tokio, grid-async-std, tonic streaming;
//! 3. 32 B call latency while a 64 KiB bulk stream saturates the same
//!    connection, against the idle figure of workload 1 (grid, and tonic as
//!    a reference: HTTP/2 multiplexes too);
//! 4. a mesh of 8 grid-tokio nodes, every node calling every other.
//!
//! Modules: one per system under test ([`raw_tcp`] and [`raw_mux`],
//! [`grid_rt`] for both grid runtimes, [`tonic_echo`], [`tarpc_echo`],
//! [`mesh`]), and the harness: [`point`] and [`plan`](mod@plan) (what runs),
//! [`topology`] (where each side runs), [`measure`](mod@measure) (window,
//! coordinator, closed-loop load), [`latency`], [`cpu`], [`report`], [`cli`].

pub mod cli;
pub mod cpu;
pub mod grid_rt;
pub mod latency;
pub mod measure;
pub mod mesh;
pub mod plan;
pub mod point;
pub mod raw_mux;
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
#[cfg(test)]
use self::measure::Callers;
use self::measure::{measure, Load, Session, Tally, Timing};
pub use self::plan::{plan, stream_window};
pub use self::point::{Point, System, Variant, Workload};
pub use self::topology::Topology;

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
    /// Socket writes of both ends in the window, where counted (grid).
    pub socket_writes: Option<u64>,
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

    /// Socket writes (system calls) of both ends per call or message.
    pub fn writes_per_op(&self) -> Option<f64> {
        self.socket_writes
            .filter(|_| self.ops > 0)
            .map(|writes| writes as f64 / self.ops as f64)
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

/// Measures one point; `window` overrides grid's stream receive window.
pub fn run_point(point: Point, timing: Timing, window: Option<u32>) -> Result<Outcome, String> {
    let topology = point.topology;
    let callers = point.variant.callers();
    let capacity = stream_window(&point, window);
    match (point.workload, point.system) {
        (Workload::Echo { size, in_flight }, system) => calls(timing, move |session| {
            let load = Load {
                callers,
                in_flight,
                size,
            };
            match system {
                System::RawTcp => raw_tcp::echo(session, topology, load),
                System::GridTokio => grid_rt::echo::<Tokio>(session, topology, load),
                System::GridAsyncStd => grid_rt::echo::<AsyncStd>(session, topology, load),
                System::Tonic => tonic_echo::echo(session, topology, load),
                System::Tarpc => {
                    tarpc_echo::echo(session, topology, load, point.variant == Variant::NoDelay)
                }
            }
        }),
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
                socket_writes: None,
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
        socket_writes: tally.socket_writes,
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

    /// Every system runs a short point of each kind and variant it supports.
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
                        in_flight: 64
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
            variant: Variant::Default,
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

    /// Headline rows are the default variant of every system; every other
    /// row says in its label what differs, and only hand-set rows set a
    /// stream window.
    #[test]
    fn headline_rows_use_defaults() {
        let points = plan();
        for system in [
            System::RawTcp,
            System::GridTokio,
            System::GridAsyncStd,
            System::Tonic,
            System::Tarpc,
        ] {
            assert!(points
                .iter()
                .any(|p| p.system == system && p.variant == Variant::Default));
        }
        for point in &points {
            let label = point.label();
            match point.variant {
                Variant::Default => {
                    assert!(!label.contains('('), "{label}");
                    assert_eq!(stream_window(point, Some(64)), None, "{label}");
                    assert_eq!(point.variant.callers(), Callers::Tasks);
                }
                variant => assert!(label.ends_with(variant.note()), "{label}"),
            }
            if point.variant == Variant::HandSetWindow {
                assert!(point.system.is_grid());
                assert_eq!(stream_window(point, Some(64)), Some(64));
            }
        }
        let unique: std::collections::HashSet<String> = points.iter().map(Point::label).collect();
        assert_eq!(unique.len(), points.len(), "labels tell points apart");
    }
}
