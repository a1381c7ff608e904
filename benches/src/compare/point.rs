//! What a point is: a workload, a system under test, a topology, and how it
//! departs from the headline (task-per-caller, default settings) shape.

use super::measure::Callers;
use super::{grid_rt, report, Topology};

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

/// How a point departs from what a new user runs. Headline rows are
/// [`Variant::Default`]; every other variant is an extra row whose label says
/// what differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Variant {
    /// Every setting at its default, every caller a task of its own.
    Default,
    /// Default settings, but the callers are futures joined in one task.
    OneTask,
    /// grid's stream receive window set by hand (`--stream-window`, else
    /// [`grid_rt::bulk_capacity`]).
    HandSetWindow,
    /// `TCP_NODELAY` set by hand on both ends (tarpc leaves it off).
    NoDelay,
}

impl Variant {
    /// How the point's callers run.
    pub fn callers(self) -> Callers {
        match self {
            Variant::OneTask => Callers::OneTask,
            _ => Callers::Tasks,
        }
    }

    /// Name in the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Default => "default",
            Variant::OneTask => "callers-in-one-task",
            Variant::HandSetWindow => "hand-set-window",
            Variant::NoDelay => "nodelay",
        }
    }

    /// What the label says of it; empty for the default.
    pub fn note(self) -> &'static str {
        match self {
            Variant::Default => "",
            Variant::OneTask => " (callers in one task)",
            Variant::HandSetWindow => " (hand-set window)",
            Variant::NoDelay => " (TCP_NODELAY set)",
        }
    }
}

/// One measurement: a workload, a system, a topology and a variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Point {
    /// What is done.
    pub workload: Workload,
    /// Who does it.
    pub system: System,
    /// Where the two sides run.
    pub topology: Topology,
    /// Default settings, or what differs.
    pub variant: Variant,
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
            "{} {detail} {} {}{}",
            self.workload.kind(),
            self.topology.name(),
            self.system.name(),
            self.variant.note()
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
