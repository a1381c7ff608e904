//! Command-line options of the comparison.

use std::path::PathBuf;
use std::time::Duration;

use super::measure::Timing;
use super::Point;

/// What `--help` prints.
pub const USAGE: &str = "\
usage: grid-benches compare [--quick] [--time SECS] [--warmup SECS] [--json FILE]
                            [--repeat N] [--stream-window N] [--only TEXT]...

End-to-end comparison of grid (grid-tokio, grid-async-std) against raw TCP,
tonic and tarpc on loopback, in the split and single topologies of DESIGN.md 6.
Headline rows measure what users run: every caller a task of its own, every
setting at its default; extra rows say in their label what differs. A
progress line per point goes to stderr; the table and one JSON line per point
go to stdout.

  --quick         short points (0.25 s after 0.05 s of warm-up; under a minute
                  in all) instead of 0.9 s after 0.2 s (about 3 minutes)
  --time SECS     measured seconds per point
  --warmup SECS   warm-up seconds per point, before the measurement
  --json FILE     write the JSON lines to FILE instead of stdout
  --repeat N      run every point N times and keep the run with the median
                  rate (split-topology figures are often bimodal between runs)
  --stream-window N
                  grid's stream receive window in bytes in the rows labelled
                  (hand-set window) (default for those rows: 256 KiB for
                  64 KiB messages, 4 MiB for 32 B ones, 64 KiB for the bulk
                  stream under small calls; headline rows keep grid's
                  default, 1 MiB)
  --only TEXT     run only the points whose label contains TEXT (repeatable;
                  e.g. --only grid-tokio --only 'echo 32 B x64'); a TEXT
                  ending in $ must end the label ('tarpc$': headline tarpc
                  rows only); ratios need the reference systems' points too

System calls per call of any system: run one point under strace, e.g.
  strace -f -c -e trace=sendto,recvfrom,write,writev,read,readv,epoll_wait \\
    grid-benches compare --only 'echo 32 B x64 single tarpc$' --time 1 --warmup 0
and divide the counts by the calls in the progress line (strace slows every
system call, so batching under strace is better than without it). grid's rows
count their socket writes themselves (column wr/call).
";

/// Parsed command line.
#[derive(Clone, Debug)]
pub struct Options {
    /// `--quick` was given.
    pub quick: bool,
    /// Warm-up and measured time per point.
    pub timing: Timing,
    /// Where the JSON lines go (stdout if `None`).
    pub json: Option<PathBuf>,
    /// `--only` filters.
    pub only: Vec<String>,
    /// `--stream-window`: grid's stream receive window, in bytes.
    pub stream_window: Option<u32>,
    /// `--repeat`: runs per point (the median is kept).
    pub repeat: usize,
}

impl Options {
    /// Parses the arguments after the program name. `Ok(None)` for `--help`.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Options>, String> {
        let mut args = args.into_iter();
        match args.next().as_deref() {
            Some("compare") => {}
            Some("--help" | "-h" | "help") => return Ok(None),
            Some(other) => return Err(format!("unknown command {other:?}")),
            None => return Err("missing command: compare".into()),
        }
        let mut quick = false;
        let mut time = None;
        let mut warmup = None;
        let mut json = None;
        let mut only = Vec::new();
        let mut stream_window = None;
        let mut repeat = 1;
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
            match arg.as_str() {
                "--quick" => quick = true,
                "--time" => time = Some(seconds("--time", &value("--time")?, 0.001)?),
                "--warmup" => warmup = Some(seconds("--warmup", &value("--warmup")?, 0.0)?),
                "--json" => json = Some(PathBuf::from(value("--json")?)),
                "--only" => only.push(value("--only")?),
                "--repeat" => {
                    let text = value("--repeat")?;
                    match text.parse::<usize>() {
                        Ok(n) if (1..=99).contains(&n) => repeat = n,
                        _ => return Err(format!("--repeat: {text:?} is not a count from 1 to 99")),
                    }
                }
                "--stream-window" => {
                    let text = value("--stream-window")?;
                    match text.parse::<u32>() {
                        Ok(n) if n > 0 => stream_window = Some(n),
                        _ => return Err(format!("--stream-window: {text:?} is not a count")),
                    }
                }
                "--help" | "-h" => return Ok(None),
                other => return Err(format!("unknown option {other:?}")),
            }
        }
        let (default_time, default_warmup) = if quick { (0.25, 0.05) } else { (0.9, 0.2) };
        Ok(Some(Options {
            quick,
            timing: Timing {
                warmup: Duration::from_secs_f64(warmup.unwrap_or(default_warmup)),
                measure: Duration::from_secs_f64(time.unwrap_or(default_time)),
                patience: Duration::from_secs(20),
            },
            json,
            only,
            stream_window,
            repeat,
        }))
    }

    /// Whether `point` passes the `--only` filters.
    pub fn selects(&self, point: &Point) -> bool {
        let label = point.label();
        self.only.is_empty()
            || self.only.iter().any(|text| match text.strip_suffix('$') {
                Some(end) => label.ends_with(end),
                None => label.contains(text.as_str()),
            })
    }
}

fn seconds(name: &str, text: &str, least: f64) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value >= least && value < 3600.0 => Ok(value),
        _ => Err(format!("{name}: {text:?} is not a number of seconds")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Options>, String> {
        Options::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults_and_quick() {
        let full = parse(&["compare"]).unwrap().unwrap();
        assert!(!full.quick);
        assert_eq!(full.timing.measure, Duration::from_millis(900));
        let quick = parse(&["compare", "--quick"]).unwrap().unwrap();
        assert!(quick.quick);
        assert!(quick.timing.measure < full.timing.measure);
    }

    #[test]
    fn options() {
        let o = parse(&[
            "compare",
            "--time",
            "2",
            "--warmup",
            "0",
            "--json",
            "x.json",
            "--only",
            "tarpc",
            "--stream-window",
            "64",
            "--repeat",
            "3",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(o.timing.measure, Duration::from_secs(2));
        assert_eq!(o.timing.warmup, Duration::ZERO);
        assert_eq!(o.json, Some(PathBuf::from("x.json")));
        assert_eq!(o.only, vec!["tarpc".to_string()]);
        assert_eq!(o.stream_window, Some(64));
        assert_eq!(o.repeat, 3);
        assert!(parse(&["--help"]).unwrap().is_none());
        assert!(parse(&["compare", "--stream-window", "0"]).is_err());
        assert!(parse(&["compare", "--repeat", "0"]).is_err());
        assert!(parse(&["compare", "--time"]).is_err());
        assert!(parse(&["compare", "--time", "0"]).is_err());
        assert!(parse(&["compare", "--bogus"]).is_err());
        assert!(parse(&["bench"]).is_err());
    }

    #[test]
    fn only_matches_labels() {
        use crate::compare::{Point, System, Topology, Variant, Workload};
        let point = |system, variant| Point {
            workload: Workload::Echo {
                size: 32,
                in_flight: 64,
            },
            system,
            topology: Topology::Single,
            variant,
        };
        let headline = point(System::Tarpc, Variant::Default);
        let one_task = point(System::Tarpc, Variant::OneTask);
        let grid = point(System::GridTokio, Variant::Default);
        let o = parse(&["compare", "--only", "x64 single tarpc"])
            .unwrap()
            .unwrap();
        assert!(o.selects(&headline) && o.selects(&one_task) && !o.selects(&grid));
        let o = parse(&["compare", "--only", "tarpc$"]).unwrap().unwrap();
        assert!(o.selects(&headline) && !o.selects(&one_task) && !o.selects(&grid));
        assert!(parse(&["compare"]).unwrap().unwrap().selects(&grid));
    }
}
