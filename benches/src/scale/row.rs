//! What one mesh size measured, the figures derived from it, and the line
//! that carries it from the process that ran the mesh to the one that
//! prints the table.

use std::collections::BTreeMap;
use std::time::Duration;

/// The prefix of the line a size's process prints its [`Row`] on.
pub const ROW_PREFIX: &str = "mesh-scale-row";

/// What one run of a mesh of [`nodes`](Row::nodes) nodes measured. All
/// figures are of the whole process (every node in it).
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Nodes in the mesh.
    pub nodes: usize,
    /// Connections up once the mesh was idle: peer slots connected on every
    /// node, halved (each connection has an end on two nodes).
    pub connections: u64,
    /// From starting the first node until every node's `wait_all_connected`
    /// returned.
    pub connect: Duration,
    /// Connections established after a peer's first, summed over all nodes
    /// once idle: a connection replaced while the mesh formed shows here.
    pub reconnects: u64,
    /// File descriptors held before the runtime was built: what the process
    /// should be back to once every node and the runtime are gone.
    pub fds_start: u64,
    /// File descriptors held before the first node started (runtime built,
    /// listeners bound).
    pub fds_before: u64,
    /// File descriptors held once connected and idle.
    pub fds_idle: u64,
    /// File descriptors held after every node shut down and the runtime ended.
    pub fds_after: u64,
    /// Resident bytes before the first node started.
    pub rss_before: u64,
    /// Resident bytes once connected and idle.
    pub rss_idle: u64,
    /// Net heap bytes allocated (allocated minus freed) from before the first
    /// node started until the mesh was connected and idle; `None` when the
    /// counting allocator is not the global allocator.
    pub live_mesh: Option<i64>,
    /// The same once the mesh carried one all-to-all round (made with the
    /// counting on, before the timed one) and was idle again: what
    /// connections keep after traffic.
    pub live_used: Option<i64>,
    /// The same for the same number of nodes started with no peers, idle:
    /// what the nodes cost without their connections.
    pub live_lone: Option<i64>,
    /// Calls made in the all-to-all round: N(N-1).
    pub round_calls: u64,
    /// Wall time of the first all-to-all round (the first call on every
    /// connection, with allocation counting on).
    pub first_round: Duration,
    /// Wall time of the timed all-to-all round, from spawning the first
    /// call's task until the last call's task finished: the second round,
    /// after the mesh was idle again, with counting off.
    pub round: Duration,
    /// Wall time of shutting every node down, concurrently.
    pub shutdown: Duration,
}

impl Row {
    /// Connections of a full mesh: N(N-1)/2, one per pair.
    pub fn pairs(&self) -> u64 {
        let nodes = self.nodes as u64;
        nodes * nodes.saturating_sub(1) / 2
    }

    /// Resident bytes the mesh added per connection (per pair, both ends and
    /// the nodes' own share): the growth of RSS from before the first node
    /// started to connected and idle, over the connections.
    pub fn rss_per_connection(&self) -> f64 {
        (self.rss_idle as f64 - self.rss_before as f64) / self.pairs().max(1) as f64
    }

    /// Net heap bytes per connection end (two per connection) that the mesh
    /// holds beyond its nodes without peers: (`live_mesh` - `live_lone`) over
    /// 2N(N-1)/2 ends.
    pub fn alloc_per_end(&self) -> Option<f64> {
        let ends = (2 * self.pairs()).max(1) as f64;
        Some((self.live_mesh? - self.live_lone?) as f64 / ends)
    }

    /// [`alloc_per_end`](Self::alloc_per_end) once the connections carried
    /// a round of calls and were idle again.
    pub fn alloc_per_end_used(&self) -> Option<f64> {
        let ends = (2 * self.pairs()).max(1) as f64;
        Some((self.live_used? - self.live_lone?) as f64 / ends)
    }

    /// Net heap bytes per connection end including the nodes' own:
    /// `live_mesh` over the ends.
    pub fn alloc_per_end_gross(&self) -> Option<f64> {
        let ends = (2 * self.pairs()).max(1) as f64;
        Some(self.live_mesh? as f64 / ends)
    }

    /// Calls per second of the all-to-all round.
    pub fn calls_per_s(&self) -> f64 {
        self.round_calls as f64 / self.round.as_secs_f64().max(1e-9)
    }

    /// The row as one line: [`ROW_PREFIX`], then `key=value` fields
    /// (durations in microseconds, `-` for a figure not measured).
    pub fn to_line(&self) -> String {
        let optional = |value: Option<i64>| value.map_or_else(|| "-".into(), |v| v.to_string());
        let micros = |d: Duration| d.as_micros().to_string();
        let fields = [
            ("nodes", self.nodes.to_string()),
            ("connections", self.connections.to_string()),
            ("connect_us", micros(self.connect)),
            ("reconnects", self.reconnects.to_string()),
            ("fds_start", self.fds_start.to_string()),
            ("fds_before", self.fds_before.to_string()),
            ("fds_idle", self.fds_idle.to_string()),
            ("fds_after", self.fds_after.to_string()),
            ("rss_before", self.rss_before.to_string()),
            ("rss_idle", self.rss_idle.to_string()),
            ("live_mesh", optional(self.live_mesh)),
            ("live_used", optional(self.live_used)),
            ("live_lone", optional(self.live_lone)),
            ("round_calls", self.round_calls.to_string()),
            ("first_round_us", micros(self.first_round)),
            ("round_us", micros(self.round)),
            ("shutdown_us", micros(self.shutdown)),
        ];
        let mut line = ROW_PREFIX.to_string();
        for (key, value) in fields {
            line.push_str(&format!(" {key}={value}"));
        }
        line
    }

    /// Reads a line written by [`to_line`](Self::to_line); `None` if `line`
    /// is not one.
    pub fn from_line(line: &str) -> Option<Row> {
        let rest = line.trim().strip_prefix(ROW_PREFIX)?;
        let fields: BTreeMap<&str, &str> = rest
            .split_whitespace()
            .map(|field| field.split_once('='))
            .collect::<Option<_>>()?;
        let number = |key: &str| fields.get(key)?.parse::<u64>().ok();
        let optional = |key: &str| match *fields.get(key)? {
            "-" => Some(None),
            text => text.parse::<i64>().ok().map(Some),
        };
        let micros = |key: &str| number(key).map(Duration::from_micros);
        Some(Row {
            nodes: usize::try_from(number("nodes")?).ok()?,
            connections: number("connections")?,
            connect: micros("connect_us")?,
            reconnects: number("reconnects")?,
            fds_start: number("fds_start")?,
            fds_before: number("fds_before")?,
            fds_idle: number("fds_idle")?,
            fds_after: number("fds_after")?,
            rss_before: number("rss_before")?,
            rss_idle: number("rss_idle")?,
            live_mesh: optional("live_mesh")?,
            live_used: optional("live_used")?,
            live_lone: optional("live_lone")?,
            round_calls: number("round_calls")?,
            first_round: micros("first_round_us")?,
            round: micros("round_us")?,
            shutdown: micros("shutdown_us")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> Row {
        Row {
            nodes: 8,
            connections: 28,
            connect: Duration::from_micros(12_345),
            reconnects: 0,
            fds_start: 5,
            fds_before: 20,
            fds_idle: 84,
            fds_after: 5,
            rss_before: 10 << 20,
            rss_idle: (10 << 20) + 28 * 8192,
            live_mesh: Some(8 * 4096 + 56 * 10_000),
            live_used: Some(8 * 4096 + 56 * 12_000),
            live_lone: Some(8 * 4096),
            round_calls: 56,
            first_round: Duration::from_millis(3),
            round: Duration::from_millis(2),
            shutdown: Duration::from_millis(150),
        }
    }

    #[test]
    fn a_line_reads_back_as_the_row() {
        let row = row();
        assert_eq!(Row::from_line(&row.to_line()), Some(row.clone()));
        let unmeasured = Row {
            live_mesh: None,
            live_used: None,
            live_lone: None,
            ..row
        };
        assert_eq!(
            Row::from_line(&unmeasured.to_line()),
            Some(unmeasured.clone())
        );
        assert_eq!(unmeasured.alloc_per_end(), None);
    }

    #[test]
    fn other_lines_are_not_rows() {
        assert_eq!(Row::from_line("grid: 8 nodes connected"), None);
        assert_eq!(Row::from_line("mesh-scale-row nodes=8"), None);
        let line = row().to_line().replace("round_us=2000", "round_us=fast");
        assert_eq!(Row::from_line(&line), None);
    }

    #[test]
    fn per_connection_figures() {
        let row = row();
        assert_eq!(row.pairs(), 28);
        assert_eq!(row.rss_per_connection(), 8192.0);
        // 10 000 bytes per end once the lone nodes' share is taken off.
        assert_eq!(row.alloc_per_end(), Some(10_000.0));
        assert_eq!(row.alloc_per_end_used(), Some(12_000.0));
        assert!(row.alloc_per_end_gross().unwrap() > 10_000.0);
        assert_eq!(row.calls_per_s(), 28_000.0);
    }
}
