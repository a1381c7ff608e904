//! The conformance suite: one set of end-to-end tests over real loopback
//! sockets that every runtime crate runs unchanged, with the cluster harness
//! and the fault-injecting proxy they use.
//!
//! A runtime crate implements [`TestRuntime`] and expands
//! [`conformance_tests!`](crate::conformance_tests) in a test file.

mod bare;
mod cluster;
pub mod hostile;
#[cfg(test)]
mod list_check;
mod paused_reads;
mod probe;
mod proxy;
pub mod suite;
mod transport;
pub mod typed_suite;

use std::future::Future;
use std::time::{Duration, Instant};

pub use cluster::{
    free_loopback_addresses, handlers, register, test_backoff, test_timeouts, Cluster,
    ClusterOptions,
};
pub use probe::Probe;
pub use proxy::FaultProxy;
pub use transport::{use_transport, BindFn, TestTransport};

use crate::runtime::{sleep_until, BoxFuture, Runtime};

/// A runtime the conformance suite can run on: any [`Runtime`] with a default
/// value.
pub trait TestRuntime: Runtime + Default {}

impl<R: Runtime + Default> TestRuntime for R {}

/// Runs a test's future to completion on a fresh runtime of the kind under test.
pub type BlockOn = fn(BoxFuture<'static, ()>);

/// Every test must finish within this, or it fails instead of hanging CI.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs one conformance test on `R` through `block_on`, failing it if it
/// exceeds [`TEST_TIMEOUT`].
pub fn run<R, F, Fut>(block_on: BlockOn, test: F)
where
    R: TestRuntime,
    F: FnOnce(R) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    block_on(Box::pin(async move {
        let runtime = R::default();
        let expiry = sleep(&runtime, TEST_TIMEOUT);
        let test = test(runtime.clone());
        let test = std::pin::pin!(test);
        let expiry = std::pin::pin!(expiry);
        let outcome = futures_util::future::select(test, expiry).await;
        if let futures_util::future::Either::Right(_) = outcome {
            panic!("test exceeded {TEST_TIMEOUT:?}");
        }
    }));
}

/// Waits `duration` on `rt`'s clock: a test's pause must follow the clock
/// its nodes' timers follow, which a simulator may run faster than real time.
pub(crate) async fn sleep<R: Runtime>(rt: &R, duration: Duration) {
    sleep_until(rt, rt.now() + duration).await
}

/// How long it is since `start` on `rt`'s clock.
pub(crate) fn elapsed<R: Runtime>(rt: &R, start: Instant) -> Duration {
    rt.now().saturating_duration_since(start)
}

/// Expands to one `#[test]` per conformance test, run on the given runtime
/// type, each test on a fresh runtime started by the given [`BlockOn`]
/// function: `grid::conformance_tests!(grid_tokio::Tokio, block_on);`
///
/// A runtime on which the hostile-peer group cannot run says why, and those
/// tests are generated ignored, with that reason:
/// `grid::conformance_tests!(grid_sim::Turmoil, block_on, ignore_hostile = "why");`
///
/// The list of tests is written once, in the `@list` arm; `list_check.rs`
/// compares it with the `pub async fn`s of `suite/`, `typed_suite.rs` and
/// the hostile suite's test files, so a test added there but not here fails
/// the build's tests instead of never running.
#[macro_export]
macro_rules! conformance_tests {
    ($runtime:ty, $block_on:path) => {
        // `cfg(all())` is always true: an attribute that changes nothing.
        $crate::conformance_tests!(@list (@tests $runtime, $block_on, cfg(all()), {}));
    };
    ($runtime:ty, $block_on:path, ignore_hostile = $reason:literal) => {
        $crate::conformance_tests!(@list (@tests $runtime, $block_on, ignore = $reason, {}));
    };
    // Over a transport other than the runtime's TCP (a `TestTransport`).
    ($runtime:ty, $block_on:path, transport = $transport:expr, ignore_hostile = $reason:literal) => {
        $crate::conformance_tests!(@list (@tests $runtime, $block_on, ignore = $reason, {
            $crate::conformance::use_transport($transport);
        }));
    };
    // Hands the list to the arm named by `$mode`: `@tests` (the user's
    // expansion), `@names` or `@hostile_names` (the list check).
    (@list ($($mode:tt)*)) => {
        $crate::conformance_tests! {$($mode)*;
            suite [
                echo,
                remote_error_is_the_exact_value,
                handler_panic_is_an_internal_error,
                one_mib_echo,
                unknown_handler_and_subroute,
                subroutes_reach_their_handlers,
                duplicate_registration_is_an_error,
                short_secrets_are_refused_at_start,
                lock_step_stream_echo,
                stream_handler_error_arrives_after_its_messages,
                client_cancel_reaches_the_handler,
                dropping_a_request_cancels_the_handler,
                deadline_reaches_the_handler,
                lone_call_deadline_fires_without_an_answer,
                lone_and_concurrent_calls_share_the_socket,
                calls_from_many_tasks_share_socket_writes,
                stalled_stream_does_not_block_requests,
                blocked_consumer_and_cancel_clean_up_both_sides,
                blocked_streams_survive_keepalives,
                stalled_peer_is_detected_dead,
                cut_connection_fails_calls_and_reconnects,
                restarted_node_is_reconnected,
                calls_to_a_stopped_node_fail_fast,
                graceful_shutdown_drains,
                five_node_mesh,
                strangers_and_wrong_side_dialers_are_refused,
                full_send_buffer_wakes_stream_senders,
                full_send_buffer_ends_a_request_at_its_deadline,
                full_send_buffer_ends_a_stream_open_at_its_deadline,
                close_reason_arrives_despite_unread_input,
                sink_batches_arrive_whole_and_in_order,
                vanished_peer_with_unsent_data_is_redialed,
                restricted_handlers_refuse_other_peers,
                wrong_secret_is_reported_not_retried,
                unreachable_peer_names_the_dial_failure,
            ]
            typed [
                typed_echo_with_nested_types,
                typed_error_is_decoded,
                typed_stream_round_trip,
                typed_stream_on_a_subroute,
                typed_stream_error_is_decoded,
                version_skew_still_decodes,
                undecodable_payloads_are_clear_errors,
            ]
            hostile [
                ping_flood_is_closed,
                empty_fragment_flood_is_closed,
                credit_overflow_fails_only_its_call,
                partial_messages_on_many_muxes_are_bounded,
                rapid_open_cancel_leaves_nothing_behind,
                scanner_without_the_secret_gets_no_proof,
                silent_scanner_is_dropped_at_the_handshake_timeout,
                never_reading_peer_is_closed_as_not_reading,
                slow_reader_is_closed_as_too_slow,
                held_requests_are_bounded,
                replacement_churn_is_rate_limited,
            ]
        }
    };
    (@tests $runtime:ty, $block_on:path, $hostile_attr:meta, $setup:block;
        suite [$($name:ident),* $(,)?]
        typed [$($typed:ident),* $(,)?]
        hostile [$($hostile:ident),* $(,)?]
    ) => {
        $(
            #[test]
            fn $name() {
                $setup
                $crate::conformance::run::<$runtime, _, _>($block_on, $crate::conformance::suite::$name::<$runtime>);
            }
        )*
        $(
            #[test]
            fn $typed() {
                $setup
                $crate::conformance::run::<$runtime, _, _>($block_on, $crate::conformance::typed_suite::$typed::<$runtime>);
            }
        )*
        /// The hostile-peer tests, in a module of their own so that
        /// `cargo test hostile` runs them alone.
        mod hostile {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                #[$hostile_attr]
                fn $hostile() {
                    $setup
                    $crate::conformance::run::<$runtime, _, _>($block_on, $crate::conformance::hostile::$hostile::<$runtime>);
                }
            )*
        }
    };
    (@names;
        suite [$($name:ident),* $(,)?]
        typed [$($typed:ident),* $(,)?]
        hostile [$($hostile:ident),* $(,)?]
    ) => {
        (
            &[$(stringify!($name)),*] as &[&str],
            &[$(stringify!($typed)),*] as &[&str],
        )
    };
    (@hostile_names;
        suite [$($name:ident),* $(,)?]
        typed [$($typed:ident),* $(,)?]
        hostile [$($hostile:ident),* $(,)?]
    ) => {
        &[$(stringify!($hostile)),*] as &[&str]
    };
}
