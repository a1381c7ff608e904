//! Process CPU time (user + system, all threads), read with `getrusage`.
//!
//! The comparison reports CPU microseconds per call: the CPU time the whole
//! process spent during a measurement window (both sides of the connection,
//! every runtime thread, and the few wake-ups of the idle coordinator thread)
//! divided by the calls or messages completed in it.
//!
//! These 2-core machines are shared: [`machine_busy_time`] reads the CPU time
//! of the whole machine, so that the report can say how much of it other
//! processes used while a point was measured (a point measured next to a busy
//! neighbour is not comparable).

// `getrusage` is a libc call; the struct it fills is plain data.
#![allow(unsafe_code)]

use std::time::Duration;

/// User plus system CPU time this process has used so far, all threads
/// together, at microsecond resolution.
pub fn process_cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` points to writable memory the size of a `rusage`, which
    // `getrusage` fills completely when it returns 0; it only reads `who`.
    let status = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if status != 0 {
        return Duration::ZERO;
    }
    // SAFETY: zero-initialised plain data, and filled by the successful call.
    let usage = unsafe { usage.assume_init() };
    timeval(usage.ru_utime) + timeval(usage.ru_stime)
}

fn timeval(tv: libc::timeval) -> Duration {
    let micros =
        u64::try_from(tv.tv_sec).unwrap_or(0) * 1_000_000 + u64::try_from(tv.tv_usec).unwrap_or(0);
    Duration::from_micros(micros)
}

/// CPU time the whole machine (every core, every process) has spent busy so
/// far: user, nice, system, irq, softirq and steal from `/proc/stat`, at its
/// 10 ms resolution. `None` where there is no `/proc/stat`.
pub fn machine_busy_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .map(|field| field.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let busy: u64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .map(|&i| ticks.get(i).copied().unwrap_or(0))
        .sum();
    // USER_HZ is 100 on every Linux configuration that matters here.
    Some(Duration::from_millis(busy * 10))
}
