//! A stream's receive window, tuned by the receiver: it starts small and
//! doubles, up to the window the application set, for as long as doubling
//! raises the rate at which the application consumes the stream.
//!
//! What a window buys depends on where the two ends run. When they run on
//! one thread, everything in flight is work that thread does before anything
//! queued behind it, such as a small call's answer on the same connection: a
//! larger window raises a stream's rate a little and the latency of
//! everything else on the connection in proportion. Across threads or hosts,
//! a window smaller than the rate times the round trip starves the stream.
//! Measuring tells the two apart; the configuration cannot.
//!
//! The stream's rate is not all a window affects: the single requests this
//! side makes on the same connection wait behind the stream's data in
//! flight. A doubling that slows their answers by more than
//! [`LATENCY_LIMIT`] is taken back even if it raised the rate; requests the
//! peer makes are not seen here, so only the rate decides for them.
//!
//! Only the receiver's grants change, so the wire protocol is unchanged and
//! the memory bound stays the configured window plus one message.

use std::time::{Duration, Instant};

/// A tuned window doubles only if the doubling raised the consumed rate by
/// at least this factor. Where both ends share a thread, a doubling buys
/// well under this (7 % for a stream alone, under 20 % beside small calls,
/// measured on loopback); across threads, while the window is what limits
/// the rate, it buys nearly double.
const GAIN: f64 = 1.3;
/// How many doublings one trial may look ahead.
const LOOKAHEAD: i32 = 3;
/// A doubling is taken back if it made this side's requests on the
/// connection this much slower on average.
const LATENCY_LIMIT: f64 = 1.3;
/// Requests answered during each of two measurements for their latencies
/// to count.
const LATENCY_SAMPLES: u64 = 16;
/// A measurement during which requests are answered, but too few to
/// compare, goes on until this long.
const LATENCY_SPAN_TIME: Duration = Duration::from_millis(10);
/// A measurement spans at least this many windows' worth of consumed bytes...
const SPAN_WINDOWS: u64 = 4;
/// ...and at least this long, so that one scheduling hiccup does not decide
/// and requests answered meanwhile are enough to compare.
const SPAN_TIME: Duration = Duration::from_millis(2);
/// A doubling whose rate did not pay (and that slowed no request) is tried
/// again this soon, this many times in a row: one measurement that a
/// scheduling hiccup spoiled does not keep a window small.
const QUICK_RETRY: Duration = Duration::from_millis(20);
const QUICK_RETRIES: u32 = 5;
/// After that, the next try waits this long, twice as long after each
/// further failure, up to [`MAX_RETRY`]. A trial that fails slows what
/// shares the connection for its span, so tries are rare: well under a
/// thousandth of the time once backed off.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(10);

/// The single requests a connection's side made that the peer answered, and
/// how long they took in all: what a window's doubling is checked against.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RequestLatency {
    answered: u64,
    total: Duration,
}

impl RequestLatency {
    /// Counts a request answered `latency` after it was opened.
    pub(crate) fn record(&mut self, latency: Duration) {
        self.answered += 1;
        self.total += latency;
    }

    /// The mean latency of the requests answered since `earlier`, if enough were.
    fn mean_since(&self, earlier: &RequestLatency) -> Option<f64> {
        let answered = self.answered - earlier.answered;
        (answered >= LATENCY_SAMPLES)
            .then(|| (self.total - earlier.total).as_secs_f64() / answered as f64)
    }

    /// Whether a measurement that started at `earlier` and has run for
    /// `elapsed` should wait for more answers: some came, too few to compare.
    fn wants_more_since(&self, earlier: &RequestLatency, elapsed: Duration) -> bool {
        let answered = self.answered - earlier.answered;
        (1..LATENCY_SAMPLES).contains(&answered) && elapsed < LATENCY_SPAN_TIME
    }
}

/// What one measurement found.
#[derive(Clone, Copy, Debug)]
struct Measured {
    /// Bytes consumed per second.
    rate: f64,
    /// Mean latency of this side's requests answered meanwhile.
    latency: Option<f64>,
}

impl Measured {
    /// Whether this side's requests were slower in `self` than in `before`
    /// by more than the limit.
    fn slower_than(&self, before: &Measured) -> bool {
        match (self.latency, before.latency) {
            (Some(now), Some(then)) => now > then * LATENCY_LIMIT,
            _ => false,
        }
    }

    /// Whether `self`, measured with a window `doublings` times doubled,
    /// makes the larger window worth keeping over `before`.
    fn pays_over(&self, before: &Measured, doublings: i32) -> bool {
        self.rate >= before.rate * GAIN.powi(doublings) && !self.slower_than(before)
    }
}

/// A larger window being tried.
#[derive(Clone, Copy, Debug)]
struct Trial {
    /// The window before the trial.
    before: u32,
    /// What was measured with that.
    then: Measured,
    /// How many times the window was doubled since.
    doublings: i32,
}

/// The receive window of one stream direction.
#[derive(Debug, Default)]
pub(crate) struct ReceiveWindow {
    /// What the application set: the window is never larger.
    max: u32,
    /// The window now.
    current: u32,
    /// The measurement under way: when it started, the cost consumed since,
    /// and the requests answered when it started.
    span: Option<(Instant, u64, RequestLatency)>,
    /// A larger window being tried.
    trial: Option<Trial>,
    /// No doubling is tried before this.
    next_try: Option<Instant>,
    /// How long the next failed trial makes the one after wait, once the
    /// quick retries are spent.
    retry: Duration,
    /// Trials that failed since the last that paid.
    failures: u32,
    /// The window the stream started with.
    start: u32,
    /// No measurement has completed at the window since it last changed:
    /// the next one includes the change's transition (or the stream's
    /// start), and decides nothing.
    fresh: bool,
    /// Mean latency of this side's requests while the window was at its
    /// start: what every larger window is held to, so that latency cannot
    /// creep up a little with each doubling.
    reference: Option<f64>,
}

impl ReceiveWindow {
    /// A window of at most `max` bytes that starts at `start` (a window
    /// starting at `max` or above stays fixed).
    pub(crate) fn new(max: u32, start: u32) -> ReceiveWindow {
        ReceiveWindow {
            max,
            current: start.min(max),
            start: start.min(max),
            fresh: true,
            retry: FIRST_RETRY,
            ..ReceiveWindow::default()
        }
    }

    /// The window now.
    pub(crate) fn current(&self) -> u32 {
        self.current
    }

    /// The application consumed `cost` bytes of messages at `now`, when
    /// this side's requests on the connection stood at `requests`. Ends a
    /// measurement when it is long enough, and doubles the window or takes a
    /// trial back by what it measured.
    pub(crate) fn on_consumed(&mut self, cost: u64, now: Instant, requests: RequestLatency) {
        if self.current >= self.max && self.trial.is_none() {
            return;
        }
        let (start, consumed, requests_then) = self.span.get_or_insert((now, 0, requests));
        *consumed += cost;
        let elapsed = now.saturating_duration_since(*start);
        if *consumed < SPAN_WINDOWS * u64::from(self.current)
            || elapsed < SPAN_TIME
            || requests.wants_more_since(requests_then, elapsed)
        {
            return;
        }
        let measured = Measured {
            rate: *consumed as f64 / elapsed.as_secs_f64(),
            latency: requests.mean_since(requests_then),
        };
        self.span = None;
        if self.trial.is_none()
            && !self.fresh
            && self.current == self.start
            && measured.latency.is_some()
        {
            self.reference = measured.latency;
        }
        match self.trial.take() {
            Some(trial) if measured.pays_over(&trial.then, trial.doublings) => {
                self.next_try = None;
                self.retry = FIRST_RETRY;
                self.failures = 0;
                // Kept: the trial's measurement was the first at this window,
                // so the next one is the baseline for the next try.
            }
            // A rate does not always grow evenly with the window: one
            // doubling may buy little where a later one buys much (measured:
            // 32 B messages across threads gained 0-45 % from 64 to 128 and
            // to 256 KiB, and twice as much from 256 to 512). So a doubling
            // that bought too little is doubled again, up to LOOKAHEAD
            // times, before it is given up: but only while no requests of
            // this side share the connection, since each step of a trial
            // slows those.
            Some(trial)
                if trial.doublings < LOOKAHEAD
                    && self.current < self.max
                    && measured.latency.is_none() =>
            {
                self.current = self.current.saturating_mul(2).min(self.max);
                self.trial = Some(Trial {
                    doublings: trial.doublings + 1,
                    ..trial
                });
            }
            Some(trial) => {
                // The larger window bought too little: back, and try again
                // later, in case what limited the rate changes. Requests it
                // slowed are no hiccup: no quick retry for them.
                self.current = trial.before;
                self.fresh = true;
                self.failures += 1;
                if measured.slower_than(&trial.then) {
                    // Requests share the connection and a larger window
                    // slows them: that changes rarely, so tries are too.
                    self.failures = self.failures.max(QUICK_RETRIES + 1);
                    self.retry = MAX_RETRY;
                }
                if self.failures <= QUICK_RETRIES {
                    self.next_try = Some(now + QUICK_RETRY);
                } else {
                    self.next_try = Some(now + self.retry);
                    self.retry = (self.retry * 2).min(MAX_RETRY);
                }
            }
            None if std::mem::take(&mut self.fresh) => {}
            None if self.next_try.is_none_or(|at| now >= at) => self.try_doubling(measured),
            None => {}
        }
    }

    /// Doubles the window, to be kept if what is measured with it pays over
    /// `measured`.
    fn try_doubling(&mut self, measured: Measured) {
        if self.current < self.max {
            // Requests are held to their latency at the start window.
            let then = Measured {
                latency: self.reference.or(measured.latency),
                ..measured
            };
            self.trial = Some(Trial {
                before: self.current,
                then,
                doublings: 1,
            });
            self.current = self.current.saturating_mul(2).min(self.max);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: u32 = 1024;

    /// Consumes at `rate(window)` bytes per second for `time`, in reads of
    /// half a window; returns the time reached.
    fn run(
        window: &mut ReceiveWindow,
        now: Instant,
        time: Duration,
        rate: impl Fn(u32) -> f64,
    ) -> Instant {
        run_beside_requests(window, now, time, rate, |_, _| (0, Duration::ZERO))
    }

    /// Like [`run`], while this side's requests on the connection are
    /// answered: `requests(window, read time)` says how many were during
    /// one read and how long each took.
    fn run_beside_requests(
        window: &mut ReceiveWindow,
        mut now: Instant,
        time: Duration,
        rate: impl Fn(u32) -> f64,
        requests: impl Fn(u32, Duration) -> (u64, Duration),
    ) -> Instant {
        let mut answered = RequestLatency::default();
        let end = now + time;
        while now < end {
            let size = window.current();
            let read = u64::from(size / 2).max(1);
            let took = Duration::from_secs_f64(read as f64 / rate(size));
            now += took;
            let (count, latency) = requests(size, took);
            for _ in 0..count {
                answered.record(latency);
            }
            window.on_consumed(read, now, answered);
        }
        now
    }

    #[test]
    fn grows_while_growing_pays_and_stops_at_the_maximum() {
        // Across threads: the rate is the window over a 100 us round trip.
        let mut window = ReceiveWindow::new(1024 * KIB, 64 * KIB);
        run(
            &mut window,
            Instant::now(),
            Duration::from_millis(50),
            |w| f64::from(w) / 100e-6,
        );
        assert_eq!(window.current(), 1024 * KIB);
    }

    #[test]
    fn stays_small_when_growing_does_not_pay() {
        // On one thread: the rate barely depends on the window.
        let mut window = ReceiveWindow::new(1024 * KIB, 64 * KIB);
        let start = Instant::now();
        let rate = |w: u32| 5e9 * (1.0 + f64::from(w) / f64::from(4096 * KIB));
        let mut now = start;
        let mut largest = 0;
        let mut time_above = Duration::ZERO;
        while now < start + Duration::from_secs(20) {
            let before = now;
            now = run(&mut window, now, Duration::from_micros(100), rate);
            largest = largest.max(window.current());
            if window.current() > 64 * KIB {
                time_above += now - before;
            }
        }
        assert_eq!(window.current(), 64 * KIB);
        assert_eq!(largest, 512 * KIB, "trials look three doublings ahead");
        // Trials back off: the window spends a small share of the time above.
        assert!(time_above < Duration::from_millis(100), "{time_above:?}");
    }

    #[test]
    fn a_doubling_that_buys_little_is_doubled_again_before_giving_up() {
        // Across threads with small messages (measured, in MB/s of cost):
        // little from 64 to 128 KiB, much from 256 to 512, nothing beyond.
        let rate = |w: u32| match w / KIB {
            64 => 330e6,
            128 => 400e6,
            256 => 600e6,
            512 => 1300e6,
            _ => 1350e6,
        };
        let mut window = ReceiveWindow::new(1024 * KIB, 64 * KIB);
        run(&mut window, Instant::now(), Duration::from_secs(1), rate);
        assert_eq!(window.current(), 512 * KIB);
    }

    #[test]
    fn finds_the_window_where_the_gain_flattens() {
        // The rate grows with the window up to 256 KiB, then not at all.
        let mut window = ReceiveWindow::new(4096 * KIB, 64 * KIB);
        run(&mut window, Instant::now(), Duration::from_secs(1), |w| {
            f64::from(w.min(256 * KIB)) / 100e-6
        });
        assert_eq!(window.current(), 256 * KIB);
    }

    #[test]
    fn a_doubling_that_slows_this_sides_requests_is_taken_back() {
        // The rate gains from every doubling, but requests made meanwhile
        // (one every 20 us) take as long as the window's data ahead of them.
        let mut window = ReceiveWindow::new(1024 * KIB, 64 * KIB);
        let across_threads = |w: u32| f64::from(w) / 100e-6;
        run_beside_requests(
            &mut window,
            Instant::now(),
            Duration::from_secs(1),
            across_threads,
            |w, took| every_20_us(took, Duration::from_nanos(u64::from(w) / 4)),
        );
        assert_eq!(window.current(), 64 * KIB);
    }

    #[test]
    fn request_latency_cannot_creep_up_a_doubling_at_a_time() {
        // Each doubling pays in rate and slows requests by a quarter: under
        // the limit step by step, over it against the start.
        let doublings = |w: u32| (w / (64 * KIB)).ilog2() as i32;
        let mut window = ReceiveWindow::new(1024 * KIB, 64 * KIB);
        run_beside_requests(
            &mut window,
            Instant::now(),
            Duration::from_secs(1),
            |w| 1e9 * 1.35f64.powi(doublings(w)),
            |w, took| {
                let latency = 10e-6 * 1.25f64.powi(doublings(w));
                every_20_us(took, Duration::from_secs_f64(latency))
            },
        );
        assert_eq!(window.current(), 128 * KIB);
    }

    #[test]
    fn requests_that_do_not_slow_down_let_the_window_grow() {
        let mut window = ReceiveWindow::new(1024 * KIB, 64 * KIB);
        run_beside_requests(
            &mut window,
            Instant::now(),
            Duration::from_millis(100),
            |w| f64::from(w) / 100e-6,
            |_, took| every_20_us(took, Duration::from_micros(80)),
        );
        assert_eq!(window.current(), 1024 * KIB);
    }

    /// Requests answered one every 20 us during `took`, each after `latency`.
    fn every_20_us(took: Duration, latency: Duration) -> (u64, Duration) {
        ((took.as_secs_f64() / 20e-6).ceil() as u64, latency)
    }

    #[test]
    fn a_window_starting_at_its_maximum_is_fixed() {
        let mut window = ReceiveWindow::new(64 * KIB, 1024 * KIB);
        assert_eq!(window.current(), 64 * KIB);
        run(
            &mut window,
            Instant::now(),
            Duration::from_millis(50),
            |w| f64::from(w) / 100e-6,
        );
        assert_eq!(window.current(), 64 * KIB);
    }
}
