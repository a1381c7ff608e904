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
/// at least this factor.
const GAIN: f64 = 1.2;
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
const SPAN_TIME: Duration = Duration::from_millis(1);
/// After a doubling that did not pay, the next try waits this long, twice as
/// long after each further failure, up to [`MAX_RETRY`].
/// A trial that fails slows what shares the connection for its span, so
/// tries are rare: well under a thousandth of the time once backed off.
const FIRST_RETRY: Duration = Duration::from_millis(100);
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
    /// Whether `self`, measured with a doubled window, makes the doubling
    /// worth keeping over `before`.
    fn pays_over(&self, before: &Measured) -> bool {
        let slower = match (self.latency, before.latency) {
            (Some(now), Some(then)) => now > then * LATENCY_LIMIT,
            _ => false,
        };
        self.rate >= before.rate * GAIN && !slower
    }
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
    /// A doubling being tried: the window before it and what was measured
    /// with that.
    trial: Option<(u32, Measured)>,
    /// No doubling is tried before this.
    next_try: Option<Instant>,
    /// How long the next failed trial makes the one after wait.
    retry: Duration,
}

impl ReceiveWindow {
    /// A window of at most `max` bytes that starts at `start` (a window
    /// starting at `max` or above stays fixed).
    pub(crate) fn new(max: u32, start: u32) -> ReceiveWindow {
        ReceiveWindow {
            max,
            current: start.min(max),
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
        match self.trial.take() {
            Some((before, then)) if !measured.pays_over(&then) => {
                // The larger window bought too little: back, and try again
                // later, in case what limited the rate changes.
                self.current = before;
                self.next_try = Some(now + self.retry);
                self.retry = (self.retry * 2).min(MAX_RETRY);
            }
            Some(_) => {
                self.next_try = None;
                self.retry = FIRST_RETRY;
                self.try_doubling(measured);
            }
            None if self.next_try.is_none_or(|at| now >= at) => self.try_doubling(measured),
            None => {}
        }
    }

    /// Doubles the window, to be kept if what is measured with it pays over
    /// `measured`.
    fn try_doubling(&mut self, measured: Measured) {
        if self.current < self.max {
            self.trial = Some((self.current, measured));
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
        mut now: Instant,
        time: Duration,
        rate: impl Fn(u32) -> f64,
    ) -> Instant {
        let end = now + time;
        while now < end {
            let read = u64::from(window.current() / 2).max(1);
            now += Duration::from_secs_f64(read as f64 / rate(window.current()));
            window.on_consumed(read, now, RequestLatency::default());
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
        while now < start + Duration::from_secs(2) {
            let before = now;
            now = run(&mut window, now, Duration::from_micros(100), rate);
            largest = largest.max(window.current());
            if window.current() > 64 * KIB {
                time_above += now - before;
            }
        }
        assert_eq!(window.current(), 64 * KIB);
        assert_eq!(largest, 128 * KIB, "only trials go above the start");
        // Trials back off: the window spends a small share of the time above.
        assert!(time_above < Duration::from_millis(20), "{time_above:?}");
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
        // take as long as the window's worth of data ahead of them.
        let mut window = ReceiveWindow::new(1024 * KIB, 64 * KIB);
        let mut requests = RequestLatency::default();
        let mut now = Instant::now();
        let end = now + Duration::from_secs(1);
        while now < end {
            let size = window.current();
            let read = u64::from(size / 2);
            now += Duration::from_secs_f64(read as f64 / (f64::from(size) / 100e-6));
            // A request answered every 20 us, slower with a larger window.
            for _ in 0..(read * 50_000 / (u64::from(size) * 1000 / 100)).max(1) {
                requests.record(Duration::from_nanos(u64::from(size) / 4));
            }
            window.on_consumed(read, now, requests);
        }
        assert_eq!(window.current(), 64 * KIB);
    }

    #[test]
    fn requests_that_do_not_slow_down_let_the_window_grow() {
        let mut window = ReceiveWindow::new(1024 * KIB, 64 * KIB);
        let mut requests = RequestLatency::default();
        let mut now = Instant::now();
        let end = now + Duration::from_millis(100);
        while now < end {
            let size = window.current();
            let read = u64::from(size / 2);
            now += Duration::from_secs_f64(read as f64 / (f64::from(size) / 100e-6));
            for _ in 0..4 {
                requests.record(Duration::from_micros(80));
            }
            window.on_consumed(read, now, requests);
        }
        assert_eq!(window.current(), 1024 * KIB);
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
