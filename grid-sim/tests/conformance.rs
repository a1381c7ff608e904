//! The grid conformance suite in the simulator: each test is the one client
//! of a fresh turmoil simulation, its nodes on the client host's loopback,
//! every timer and deadline on the virtual clock.
//!
//! `GRID_SIM_SEED=<n>` runs every test with that seed (each prints its seed
//! when it fails).

fn block_on(test: grid::BoxFuture<'static, ()>) {
    let seed = grid_sim::seed_from_env(0x5eed);
    // Past the suite's own timeout, so that one fails first, with its message.
    let limit = grid::conformance::TEST_TIMEOUT + std::time::Duration::from_secs(30);
    grid_sim::run_client(seed, limit, test);
}

grid::conformance_tests!(
    grid_sim::Turmoil,
    block_on,
    ignore_hostile = "the hostile peer times its attacks on the real clock, not the runtime's"
);
