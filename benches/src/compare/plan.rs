//! Which points `compare` runs, in which order, and the stream window the
//! hand-set rows give grid.

use super::point::{Point, System, Variant, Workload};
use super::{grid_rt, Topology};

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

/// Echo workloads that also get the extra rows of [`echo_extras`].
const EXTRA_ECHO: Workload = Workload::Echo {
    size: 32,
    in_flight: 64,
};

/// The extra (non-headline) rows measured next to the headline echo of
/// `workload`: every system with its callers in one task at 32 B x64 (the
/// shape `compare` measured before), and tarpc with `TCP_NODELAY` at 32 B x1
/// and x64.
fn echo_extras(workload: Workload) -> Vec<(System, Variant)> {
    let mut extras = Vec::new();
    if workload == EXTRA_ECHO {
        extras.extend(ECHO_SYSTEMS.map(|system| (system, Variant::OneTask)));
    }
    if matches!(
        workload,
        Workload::Echo {
            size: 32,
            in_flight: 1 | 64
        }
    ) {
        extras.push((System::Tarpc, Variant::NoDelay));
    }
    extras
}

/// Systems of the echo workload.
const ECHO_SYSTEMS: [System; 5] = [
    System::RawTcp,
    System::GridTokio,
    System::GridAsyncStd,
    System::Tonic,
    System::Tarpc,
];

/// Every point, in the order they run (systems interleaved, so that the
/// figures compared were measured close together in time; a workload's
/// extra rows right after its headline rows).
pub fn plan() -> Vec<Point> {
    let mut points = Vec::new();
    let mut add = |workload, topology, rows: &[(System, Variant)]| {
        for &(system, variant) in rows {
            points.push(Point {
                workload,
                system,
                topology,
                variant,
            });
        }
    };
    let defaults = |systems: &[System]| -> Vec<(System, Variant)> {
        systems.iter().map(|&s| (s, Variant::Default)).collect()
    };
    for size in ECHO_SIZES {
        for in_flight in IN_FLIGHT {
            let workload = Workload::Echo { size, in_flight };
            for topology in Topology::ALL {
                add(workload, topology, &defaults(&ECHO_SYSTEMS));
                add(workload, topology, &echo_extras(workload));
            }
        }
    }
    let hand_set = [(System::GridTokio, Variant::HandSetWindow)];
    for size in STREAM_SIZES {
        let workload = Workload::Stream { size };
        for topology in Topology::ALL {
            add(
                workload,
                topology,
                &defaults(&[
                    System::RawTcp,
                    System::GridTokio,
                    System::GridAsyncStd,
                    System::Tonic,
                ]),
            );
            add(workload, topology, &hand_set);
        }
    }
    for topology in Topology::ALL {
        add(
            Workload::EchoUnderBulk,
            topology,
            &defaults(&[System::GridTokio, System::GridAsyncStd, System::Tonic]),
        );
        add(Workload::EchoUnderBulk, topology, &hand_set);
    }
    add(
        Workload::Mesh {
            nodes: MESH_NODES,
            in_flight: MESH_IN_FLIGHT,
        },
        Topology::MultiThread,
        &defaults(&[System::GridTokio]),
    );
    points
}

/// The receive window (in bytes) set by hand on grid's bulk streams at
/// `point`, if any: only [`Variant::HandSetWindow`] rows set one
/// (`override_window`, else [`grid_rt::bulk_capacity`] for streams and
/// [`grid_rt::LATENCY_WINDOW`] under bulk); headline rows keep grid's default.
pub fn stream_window(point: &Point, override_window: Option<u32>) -> Option<u32> {
    let chosen = match point.workload {
        Workload::Stream { size } => grid_rt::bulk_capacity(size),
        Workload::EchoUnderBulk => grid_rt::LATENCY_WINDOW,
        _ => return None,
    };
    (point.system.is_grid() && point.variant == Variant::HandSetWindow)
        .then(|| override_window.unwrap_or(chosen))
}
