//! The report: a progress line per point, the final table with ratios to the
//! references measured in the same run, the DESIGN.md §6 targets, and one JSON
//! line per point (in `json`).

mod json;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::cli::Options;
use super::{Outcome, Point, Record, System, Topology, Variant, Workload, NOISY};

/// `32 B`, `4 KiB`, `64 KiB`.
pub fn bytes(size: usize) -> String {
    if size >= 1024 && size % 1024 == 0 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

/// `15.9k`, `1.23M`.
fn rate(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.2}M", value / 1e6)
    } else if value >= 1e3 {
        format!("{:.1}k", value / 1e3)
    } else {
        format!("{value:.0}")
    }
}

fn opt(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v:.decimals$}"))
}

fn ratio(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v:.2}x"))
}

fn gib(bytes_per_s: f64) -> f64 {
    bytes_per_s / (1024.0 * 1024.0 * 1024.0)
}

/// ` [others: 35% of a core]` when neighbours used more than [`NOISY`].
fn noise(outcome: &Outcome) -> String {
    match outcome.foreign_share() {
        Some(share) if share > NOISY => format!("  [others: {:.0}% of a core]", share * 100.0),
        _ => String::new(),
    }
}

/// The progress line of a finished point.
pub fn progress(point: &Point, outcome: &Result<Outcome, String>) -> String {
    let label = point.label();
    let line = match outcome {
        Err(error) => format!("{label}: FAILED: {error}"),
        Ok(o) => match point.workload {
            Workload::Stream { size } => format!(
                "{label}: {} msgs/s, {:.2} GiB/s, {} cpu us/msg",
                rate(o.rate()),
                gib(o.rate() * size as f64),
                opt(o.cpu_us_per_op(), 2)
            ),
            _ => {
                let mut line = format!(
                    "{label}: {} calls/s, p50 {} us, p99 {} us, {} cpu us/call",
                    rate(o.rate()),
                    opt(o.latency_us(0.5), 1),
                    opt(o.latency_us(0.99), 1),
                    opt(o.cpu_us_per_op(), 2)
                );
                if let Some(bulk) = o.bulk_bytes_per_s() {
                    let _ = write!(line, ", bulk {:.2} GiB/s", gib(bulk));
                }
                line
            }
        },
    };
    match outcome {
        Ok(o) => line + &noise(o),
        Err(_) => line,
    }
}

/// Records indexed for the ratio look-ups.
pub struct Report<'a> {
    records: &'a [Record],
    /// `--stream-window`, if given.
    window: Option<u32>,
    by_point: HashMap<Point, &'a Outcome>,
}

impl<'a> Report<'a> {
    /// Indexes `records`, measured with grid stream window override `window`.
    pub fn new(records: &'a [Record], window: Option<u32>) -> Report<'a> {
        let by_point = records
            .iter()
            .filter_map(|r| r.outcome.as_ref().ok().map(|o| (r.point, o)))
            .collect();
        Report {
            records,
            window,
            by_point,
        }
    }

    /// `system`'s figures at `point`'s workload and topology: in the same
    /// variant if it was measured (callers in one task against callers in one
    /// task), else in the headline one.
    fn reference(&self, point: &Point, system: System) -> Option<&'a Outcome> {
        [point.variant, Variant::Default]
            .iter()
            .find_map(|&variant| {
                self.by_point.get(&Point {
                    system,
                    variant,
                    ..*point
                })
            })
            .copied()
    }

    /// The same system's idle figure for the head-of-line workload: the
    /// 32 B, one-in-flight echo of workload 1.
    fn idle(&self, point: &Point) -> Option<&'a Outcome> {
        self.by_point
            .get(&Point {
                workload: Workload::Echo {
                    size: 32,
                    in_flight: 1,
                },
                variant: Variant::Default,
                ..*point
            })
            .copied()
    }

    /// Rate of `point` over that of `system` at the same workload and topology.
    fn rate_vs(&self, point: &Point, outcome: &Outcome, system: System) -> Option<f64> {
        if point.system == system {
            return None;
        }
        let reference = self.reference(point, system)?;
        (reference.rate() > 0.0).then(|| outcome.rate() / reference.rate())
    }

    /// p50 of `point` over raw TCP's at the same workload and topology.
    fn p50_vs_raw(&self, point: &Point, outcome: &Outcome) -> Option<f64> {
        if point.system == System::RawTcp {
            return None;
        }
        let reference = self.reference(point, System::RawTcp)?.latency_us(0.5)?;
        Some(outcome.latency_us(0.5)? / reference)
    }

    fn vs_idle(&self, point: &Point, outcome: &Outcome, q: f64) -> Option<f64> {
        let idle = self.idle(point)?.latency_us(q)?;
        Some(outcome.latency_us(q)? / idle)
    }

    fn of(&self, keep: impl Fn(&Point) -> bool + 'a) -> impl Iterator<Item = &'a Record> + 'a {
        self.records.iter().filter(move |r| keep(&r.point))
    }

    /// The whole human-readable report.
    pub fn table(&self, total: Duration, options: &Options) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\ngrid end-to-end comparison on loopback: {} points in {:.1} s ({:.2} s measured per point after {:.2} s warm-up{}{})",
            self.records.len(),
            total.as_secs_f64(),
            options.timing.measure.as_secs_f64(),
            options.timing.warmup.as_secs_f64(),
            if options.repeat > 1 {
                format!(", median of {} runs", options.repeat)
            } else {
                String::new()
            },
            if options.quick { ", --quick" } else { "" },
        );
        out.push_str(
            "topologies: split = client and server each on a tokio current_thread runtime in a thread of its own;\n\
             \x20           single = both on one tokio current_thread runtime.\n\
             \x20 (*) grid-async-std: async-std has no per-node executor, grid spawns on its global executor:\n\
             \x20     split = 2 executor threads shared by both nodes, single = 1 executor thread for both.\n\
             headline rows: every caller a task of its own, every setting at its default (grid's builder\n\
             \x20 defaults, tonic's and tarpc's as a new user gets them; tarpc leaves TCP_NODELAY off).\n\
             \x20 Extra rows say in brackets what differs: [one task] = the callers are futures joined in one\n\
             \x20 task; [window N] = grid's stream receive window set by hand to N bytes; [nodelay] =\n\
             \x20 TCP_NODELAY set on both ends. raw-tcp with many in flight: caller tasks sharing the socket\n\
             \x20 through a minimal multiplexer; [one task] = one task pipelining them all.\n\
             cpu = process user+system CPU over the window / calls (both sides, all threads).\n\
             wr/call = socket writes (system calls) of both ends / calls, where counted (grid).\n\
             ratios: /raw /tonic /tarpc = rate over that system's rate at the same point (>1 is faster);\n\
             \x20       p50/raw = p50 latency over raw TCP's (<1 is lower).\n",
        );
        let noisy = self
            .records
            .iter()
            .filter(|r| {
                r.outcome
                    .as_ref()
                    .is_ok_and(|o| o.foreign_share().is_some_and(|s| s > NOISY))
            })
            .count();
        if noisy > 0 {
            let _ = writeln!(
                out,
                "WARNING: on {noisy} points other processes used more than {:.0}% of a core (marked [others: ..]); rerun those on a quiet machine.",
                NOISY * 100.0
            );
        }
        self.echo_table(&mut out);
        self.stream_table(&mut out);
        self.hol_table(&mut out);
        self.mesh_table(&mut out);
        self.targets(&mut out);
        out
    }

    /// The system column: the system, then in brackets what differs from
    /// the headline (see the legend).
    fn name(&self, point: &Point) -> String {
        let system = match (point.system, point.workload, point.variant) {
            (System::RawTcp, Workload::Echo { in_flight: 1, .. }, _) => "raw-tcp ping-pong",
            (System::RawTcp, Workload::Echo { .. }, Variant::OneTask) => "raw-tcp pipelined",
            (System::RawTcp, Workload::Echo { .. }, _) => "raw-tcp",
            (System::RawTcp, _, _) => "raw-tcp one-way",
            (System::GridAsyncStd, _, _) => "grid-async-std*",
            (System::Tonic, Workload::EchoUnderBulk, _) => "tonic (reference)",
            (system, _, _) => system.name(),
        };
        match point.variant {
            Variant::Default => system.to_string(),
            Variant::OneTask => format!("{system} [one task]"),
            Variant::NoDelay => format!("{system} [nodelay]"),
            Variant::HandSetWindow => format!(
                "{system} [window {}]",
                crate::compare::stream_window(point, self.window).unwrap_or(0)
            ),
        }
    }

    fn echo_table(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\n1. single request echo on one connection (rate = requests/s)\n{:<7} {:>4} {:<7} {:<28} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7} {:>7} {:>7}",
            "size", "infl", "topo", "system", "rate", "p50 us", "p99 us", "cpu/call", "wr/call", "/raw", "/tonic", "/tarpc", "p50/raw"
        );
        let mut last = None;
        for record in self.of(|p| matches!(p.workload, Workload::Echo { .. })) {
            let p = &record.point;
            let Workload::Echo { size, in_flight } = p.workload else {
                continue;
            };
            if last.is_some_and(|l| l != (size, in_flight, p.topology)) {
                out.push('\n');
            }
            last = Some((size, in_flight, p.topology));
            let head = format!(
                "{:<7} {:>4} {:<7} {:<28}",
                bytes(size),
                in_flight,
                p.topology.name(),
                self.name(p)
            );
            match &record.outcome {
                Err(error) => {
                    let _ = writeln!(out, "{head} FAILED: {error}");
                }
                Ok(o) => {
                    let _ = writeln!(
                        out,
                        "{head} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7} {:>7} {:>7}{}",
                        rate(o.rate()),
                        opt(o.latency_us(0.5), 1),
                        opt(o.latency_us(0.99), 1),
                        opt(o.cpu_us_per_op(), 2),
                        opt(o.writes_per_op(), 2),
                        ratio(self.rate_vs(p, o, System::RawTcp)),
                        ratio(self.rate_vs(p, o, System::Tonic)),
                        ratio(self.rate_vs(p, o, System::Tarpc)),
                        ratio(self.p50_vs_raw(p, o)),
                        noise(o),
                    );
                }
            }
        }
    }

    fn stream_table(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\n2. one-way stream, server to client, one connection\n{:<7} {:<7} {:<28} {:>9} {:>7} {:>8} {:>7} {:>7}",
            "size", "topo", "system", "msgs/s", "GiB/s", "cpu/msg", "/raw", "/tonic"
        );
        let mut last = None;
        for record in self.of(|p| matches!(p.workload, Workload::Stream { .. })) {
            let p = &record.point;
            let size = p.workload.size();
            if last.is_some_and(|l| l != (size, p.topology)) {
                out.push('\n');
            }
            last = Some((size, p.topology));
            let head = format!(
                "{:<7} {:<7} {:<28}",
                bytes(size),
                p.topology.name(),
                self.name(p)
            );
            match &record.outcome {
                Err(error) => {
                    let _ = writeln!(out, "{head} FAILED: {error}");
                }
                Ok(o) => {
                    let _ = writeln!(
                        out,
                        "{head} {:>9} {:>7.2} {:>8} {:>7} {:>7}{}",
                        rate(o.rate()),
                        gib(o.rate() * size as f64),
                        opt(o.cpu_us_per_op(), 3),
                        ratio(self.rate_vs(p, o, System::RawTcp)),
                        ratio(self.rate_vs(p, o, System::Tonic)),
                        noise(o),
                    );
                }
            }
        }
    }

    fn hol_table(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\n3. 32 B calls (one in flight) while a {} stream saturates the same connection (server to client),\n   against the same system's idle 32 B x1 echo of table 1; tonic as a reference (HTTP/2 multiplexes too)\n{:<7} {:<28} {:>8} {:>8} {:>8} {:>9} {:>9} {:>8} {:>8} {:>10}",
            bytes(crate::compare::grid_rt::HOL_BULK_SIZE),
            "topo", "system", "calls/s", "p50 us", "p99 us", "idle p50", "idle p99", "p50/idle", "p99/idle", "bulk GiB/s"
        );
        for record in self.of(|p| p.workload == Workload::EchoUnderBulk) {
            let p = &record.point;
            let head = format!("{:<7} {:<28}", p.topology.name(), self.name(p));
            match &record.outcome {
                Err(error) => {
                    let _ = writeln!(out, "{head} FAILED: {error}");
                }
                Ok(o) => {
                    let idle = self.idle(p);
                    let _ = writeln!(
                        out,
                        "{head} {:>8} {:>8} {:>8} {:>9} {:>9} {:>8} {:>8} {:>10}{}",
                        rate(o.rate()),
                        opt(o.latency_us(0.5), 1),
                        opt(o.latency_us(0.99), 1),
                        opt(idle.and_then(|i| i.latency_us(0.5)), 1),
                        opt(idle.and_then(|i| i.latency_us(0.99)), 1),
                        ratio(self.vs_idle(p, o, 0.5)),
                        ratio(self.vs_idle(p, o, 0.99)),
                        opt(o.bulk_bytes_per_s().map(gib), 2),
                        noise(o),
                    );
                }
            }
        }
    }

    fn mesh_table(&self, out: &mut String) {
        for record in self.of(|p| matches!(p.workload, Workload::Mesh { .. })) {
            let p = &record.point;
            let Workload::Mesh { nodes, in_flight } = p.workload else {
                continue;
            };
            let _ = writeln!(
                out,
                "\n4. mesh: {nodes} grid-tokio nodes, every node calling every other ({} connections, {in_flight} x 32 B calls in flight per ordered pair);\n   {}",
                nodes * (nodes - 1) / 2,
                p.executor()
            );
            match &record.outcome {
                Err(error) => {
                    let _ = writeln!(out, "   FAILED: {error}");
                }
                Ok(o) => {
                    let _ = writeln!(
                        out,
                        "   aggregate {} requests/s, p50 {} us, p99 {} us, {} cpu us/call{}",
                        rate(o.rate()),
                        opt(o.latency_us(0.5), 1),
                        opt(o.latency_us(0.99), 1),
                        opt(o.cpu_us_per_op(), 2),
                        noise(o),
                    );
                }
            }
        }
    }

    fn outcome(
        &self,
        workload: Workload,
        system: System,
        topology: Topology,
    ) -> Option<(Point, &'a Outcome)> {
        let point = Point {
            workload,
            system,
            topology,
            variant: Variant::Default,
        };
        self.by_point.get(&point).map(|o| (point, *o))
    }

    fn targets(&self, out: &mut String) {
        type Check<'r> = Box<dyn Fn(Point, &Outcome) -> Option<(f64, String)> + 'r>;
        let echo = |size, in_flight| Workload::Echo { size, in_flight };
        let stream = |size| Workload::Stream { size };
        let targets: Vec<(&str, Workload, Check<'_>, f64, bool)> = vec![
            (
                "32 B x64 requests/s >= 3x tarpc",
                echo(32, 64),
                Box::new(|p, o| {
                    self.rate_vs(&p, o, System::Tarpc)
                        .map(|r| (r, format!("{r:.2}x")))
                }),
                3.0,
                true,
            ),
            (
                "32 B x64 CPU per call <= 2 us",
                echo(32, 64),
                Box::new(|_, o| o.cpu_us_per_op().map(|c| (c, format!("{c:.2} us")))),
                2.0,
                false,
            ),
            (
                "32 B x1 p50 <= 1.2x raw ping-pong",
                echo(32, 1),
                Box::new(|p, o| self.p50_vs_raw(&p, o).map(|r| (r, format!("{r:.2}x")))),
                1.2,
                false,
            ),
            (
                "64 KiB stream >= 0.9x raw TCP",
                stream(64 * 1024),
                Box::new(|p, o| {
                    self.rate_vs(&p, o, System::RawTcp)
                        .map(|r| (r, format!("{r:.2}x")))
                }),
                0.9,
                true,
            ),
            (
                "32 B stream >= 1x tonic msgs/s",
                stream(32),
                Box::new(|p, o| {
                    self.rate_vs(&p, o, System::Tonic)
                        .map(|r| (r, format!("{r:.2}x")))
                }),
                1.0,
                true,
            ),
            (
                "p99 under bulk <= 3x idle p99",
                Workload::EchoUnderBulk,
                Box::new(|p, o| self.vs_idle(&p, o, 0.99).map(|r| (r, format!("{r:.2}x")))),
                3.0,
                false,
            ),
        ];
        let _ = writeln!(
            out,
            "\nperformance targets (DESIGN.md 6), headline rows (value, then ok/MISS)\n{:<36} {:<7} {:<18} {:<18}",
            "target", "topo", "grid-tokio", "grid-async-std (*)"
        );
        for (name, workload, check, bound, at_least) in &targets {
            for topology in Topology::ALL {
                let cells: Vec<String> = [System::GridTokio, System::GridAsyncStd]
                    .iter()
                    .map(|&system| {
                        match self
                            .outcome(*workload, system, topology)
                            .and_then(|(p, o)| check(p, o))
                        {
                            None => "-".to_string(),
                            Some((value, shown)) => {
                                let ok = if *at_least {
                                    value >= *bound
                                } else {
                                    value <= *bound
                                };
                                format!("{shown} {}", if ok { "ok" } else { "MISS" })
                            }
                        }
                    })
                    .collect();
                let _ = writeln!(
                    out,
                    "{:<36} {:<7} {:<18} {:<18}",
                    name,
                    topology.name(),
                    cells[0],
                    cells[1]
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(bytes(32), "32 B");
        assert_eq!(bytes(4096), "4 KiB");
        assert_eq!(rate(1_234_567.0), "1.23M");
        assert_eq!(rate(15_900.0), "15.9k");
        assert_eq!(rate(12.0), "12");
    }
}
