//! What the measurement prints: each attack as it ends, then a table of all
//! of them against the node's documented bounds.

use grid_proto::Limits;

use crate::attacks::{Attack, Outcome};
use crate::child::{Accounted, Rss};

const MIB: f64 = 1024.0 * 1024.0;

/// One attack's results.
pub(crate) struct Measurement {
    pub(crate) attack: Attack,
    pub(crate) outcome: Outcome,
    /// The largest figures the node reported while the connection was up.
    pub(crate) peak: Accounted,
    /// The node's resident memory once the attack was over.
    pub(crate) rss: Rss,
    /// Why the node says it closed the connection, from its log.
    pub(crate) node_reason: Option<String>,
}

fn mib(bytes: impl Into<u64>) -> String {
    format!("{:.1} MiB", bytes.into() as f64 / MIB)
}

fn size(bytes: usize) -> u64 {
    u64::try_from(bytes).unwrap_or(u64::MAX)
}

/// The most one peer can make a node hold on one connection by the
/// documented bounds, apart from the overshoot of answers of calls already
/// admitted when the backlog crossed its bound (PROTOCOL.md §13).
pub(crate) fn per_connection_bound(limits: &Limits) -> usize {
    limits.max_buffered_bytes + limits.max_held_request_bytes + limits.max_outbound_backlog
}

/// The reason in the node's `disconnected` log line, if it logged one.
pub(crate) fn node_reason(log: &[String]) -> Option<String> {
    log.iter()
        .find(|line| line.contains("disconnected"))
        .and_then(|line| {
            line.split_once(" reason=")
                .map(|(_, reason)| reason.to_string())
        })
}

/// Prints one attack's results as it ends.
pub(crate) fn print_one(m: &Measurement, baseline: Option<&Rss>, limits: &Limits) {
    let p = &m.peak;
    println!("   outcome: {}", m.outcome.ending);
    if let Some(after) = m.outcome.closed_after {
        println!(
            "   closed {:.1} s after the attack began",
            after.as_secs_f64()
        );
    }
    if let Some(reason) = &m.node_reason {
        println!("   the node's log: disconnected, reason={reason}");
    }
    println!("   {}", m.outcome.notes);
    println!(
        "   peak accounted: outbound backlog {} (control frames {:.1} KiB), held request bytes {}, \
         buffered {}; calls in flight {}",
        mib(size(p.outbound)),
        p.control as f64 / 1024.0,
        mib(size(p.held)),
        mib(size(p.buffered)),
        p.calls
    );
    let growth = baseline.map_or(0, |b| m.rss.peak.saturating_sub(b.peak));
    let (bound, which) = m.attack.bound(limits);
    println!(
        "   peak RSS {} ({} over the baseline; {} at the end); bound for this attack {} \
         ({which}); per-connection bound {}",
        mib(m.rss.peak),
        mib(growth),
        mib(m.rss.now),
        mib(size(bound)),
        mib(size(per_connection_bound(limits)))
    );
}

/// Prints every attack in one table, ready for the README.
pub(crate) fn print_table(all: &[Measurement], limits: &Limits) {
    let baseline = all.first().map_or(0, |m| m.rss.peak);
    println!();
    println!(
        "Every limit at its default; per-connection bound (max_buffered_bytes + \
         max_held_request_bytes + max_outbound_backlog) {}.",
        mib(size(per_connection_bound(limits)))
    );
    println!();
    println!(
        "| attack | outcome | peak accounted (outbound / held / buffered) | peak RSS | over baseline |"
    );
    println!("|---|---|---|---|---|");
    for m in all {
        let ending = match m.outcome.closed_after {
            Some(after) => format!(
                "{}, after {:.0} s",
                short(&m.outcome.ending),
                after.as_secs_f64()
            ),
            None => short(&m.outcome.ending),
        };
        println!(
            "| {} | {ending} | {} / {} / {} | {} | {} |",
            m.attack.name(),
            mib(size(m.peak.outbound)),
            mib(size(m.peak.held)),
            mib(size(m.peak.buffered)),
            mib(m.rss.peak),
            mib(m.rss.peak.saturating_sub(baseline)),
        );
    }
}

/// An ending without the reason's text: `Close PeerTooSlow (8)`.
fn short(ending: &str) -> String {
    ending
        .split_once(':')
        .map_or(ending, |(head, _)| head)
        .to_string()
}
