//! The printed table: a line per size, then each size's details and what
//! every column measures.

use std::fmt::Write;

use super::row::Row;

/// The target for heap bytes held per idle connection end.
pub const ALLOC_TARGET: f64 = 16.0 * 1024.0;

/// What became of one size: its row, or why it has none.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// The size ran.
    Ran(Row),
    /// The size was not run (the file descriptor limit) or failed.
    Missing {
        /// Nodes of the size.
        nodes: usize,
        /// Why.
        reason: String,
    },
}

/// The table of `outcomes`, with details and column definitions.
pub fn table(outcomes: &[Outcome]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>5} {:>6} {:>10} {:>6} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "nodes",
        "conns",
        "connect",
        "fds",
        "RSS/conn",
        "alloc/end",
        "after use",
        "round",
        "calls/s"
    );
    for outcome in outcomes {
        match outcome {
            Outcome::Ran(row) => {
                let _ = writeln!(
                    out,
                    "{:>5} {:>6} {:>10} {:>6} {:>10} {:>10} {:>10} {:>10} {:>10}",
                    row.nodes,
                    row.connections,
                    millis(row.connect.as_secs_f64()),
                    row.fds_idle,
                    kib(row.rss_per_connection()),
                    row.alloc_per_end().map_or_else(|| "-".into(), kib),
                    row.alloc_per_end_used().map_or_else(|| "-".into(), kib),
                    millis(row.round.as_secs_f64()),
                    format!("{:.0}", row.calls_per_s()),
                );
            }
            Outcome::Missing { nodes, reason } => {
                let _ = writeln!(out, "{nodes:>5}  not run: {reason}");
            }
        }
    }
    out.push('\n');
    for outcome in outcomes {
        if let Outcome::Ran(row) = outcome {
            out.push_str(&details(row));
        }
    }
    out.push('\n');
    out.push_str(COLUMNS);
    out
}

/// One size's underlying figures, and whether it meets the allocation target.
fn details(row: &Row) -> String {
    let mut out = format!(
        "{} nodes: {} of {} connections up, {} reconnects; RSS {} before, {} idle; \
         fds {} at start, {} before, {} idle, {} after shutdown (in {}){}; \
         first round {} (allocations counted);",
        row.nodes,
        row.connections,
        row.pairs(),
        row.reconnects,
        mib(row.rss_before as f64),
        mib(row.rss_idle as f64),
        row.fds_start,
        row.fds_before,
        row.fds_idle,
        row.fds_after,
        millis(row.shutdown.as_secs_f64()),
        if row.fds_after > row.fds_start {
            format!(", {} never closed", row.fds_after - row.fds_start)
        } else {
            String::new()
        },
        millis(row.first_round.as_secs_f64()),
    );
    let per_end = row.alloc_per_end().zip(row.alloc_per_end_used());
    match (row.live_mesh, row.live_lone, per_end) {
        (Some(mesh), Some(lone), Some((idle, used))) => {
            let verdict = if idle.max(used) <= ALLOC_TARGET {
                "meets"
            } else {
                "misses"
            };
            let _ = writeln!(
                out,
                " heap {} for the mesh, {} for as many nodes without peers; \
                 {} per connection end ({} with the nodes' share), {} once \
                 idle after a round: {verdict} the {} target",
                mib(mesh as f64),
                mib(lone as f64),
                kib(idle),
                row.alloc_per_end_gross().map_or_else(|| "-".into(), kib),
                kib(used),
                kib(ALLOC_TARGET),
            );
        }
        _ => out.push_str(" heap not counted (the counting allocator is not installed)\n"),
    }
    out
}

const COLUMNS: &str = "\
conns      connections up once idle (one per pair of nodes: N(N-1)/2)
connect    from starting the first node until every node's wait_all_connected returned
fds        file descriptors the process holds once connected and idle (both ends of
           every connection are in this process, plus one listener per node)
RSS/conn   growth of the process's resident memory from before the first node started
           to connected and idle, over the connections (per pair: both ends, and the
           nodes' own memory shared out)
alloc/end  heap bytes allocated and not freed per connection end (two per connection),
           from before the first node started to connected and idle, less what as many
           nodes without peers hold (counted by the counting allocator)
after use  the same once the mesh carried a first all-to-all round and was idle again
round      the second all-to-all round (counting off): every node calls every other once
           (32 B echo), one task per call, all at once; wall time until the last call's
           task finished
calls/s    calls of the round over its wall time
";

fn millis(seconds: f64) -> String {
    format!("{:.1} ms", seconds * 1e3)
}

fn kib(bytes: f64) -> String {
    format!("{:.1} KiB", bytes / 1024.0)
}

fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_row_per_size_and_the_reason_for_a_missing_one() {
        let row = Row {
            nodes: 8,
            connections: 28,
            connect: Duration::from_millis(12),
            reconnects: 0,
            fds_start: 5,
            fds_before: 20,
            fds_idle: 84,
            fds_after: 5,
            rss_before: 10 << 20,
            rss_idle: 11 << 20,
            live_mesh: Some(2 << 20),
            live_used: Some(3 << 20),
            live_lone: Some(1 << 20),
            round_calls: 56,
            first_round: Duration::from_millis(3),
            round: Duration::from_millis(2),
            shutdown: Duration::from_millis(100),
        };
        let printed = table(&[
            Outcome::Ran(row),
            Outcome::Missing {
                nodes: 128,
                reason: "too many file descriptors".into(),
            },
        ]);
        let lines: Vec<&str> = printed.lines().collect();
        assert!(
            lines[1].contains("12.0 ms") && lines[1].contains("28000"),
            "{printed}"
        );
        assert!(
            lines[2].contains("128") && lines[2].contains("too many"),
            "{printed}"
        );
        // (2 MiB - 1 MiB) over 56 ends is 18.3 KiB: over the target.
        assert!(printed.contains("18.3 KiB per connection end"), "{printed}");
        assert!(
            printed.contains("36.6 KiB once idle after a round"),
            "{printed}"
        );
        assert!(printed.contains("misses the 16.0 KiB target"), "{printed}");
    }
}
