//! Failures that repeat, reported at most once per window. A failure that
//! lasts (out of file descriptors, a full disk) fails again at every retry
//! or tick for as long as it lasts: a line per failure buried everything
//! else a service logged (accepting fails ten times a second; HQ's
//! generator failed once per tick per topic, 32,000 lines an hour). The
//! first failure is logged at once; those after it are counted, and the
//! count goes out with the next line, or with the line that says it works
//! again.

use tokio::time::{Duration, Instant};

/// Failures since the last line that reported them.
#[derive(Debug)]
pub struct RepeatedFailures {
    /// The least time between two lines.
    every: Duration,
    /// Failures not yet in a line.
    unreported: u64,
    /// Until when no line is written; `None` before the first failure.
    quiet_until: Option<Instant>,
    /// A line said it fails, and none yet that it works again.
    failing: bool,
}

impl RepeatedFailures {
    /// No failures yet; lines at most once per `every`.
    pub fn reported_every(every: Duration) -> Self {
        Self {
            every,
            unreported: 0,
            quiet_until: None,
            failing: false,
        }
    }

    /// The least time between two lines.
    pub fn every(&self) -> Duration {
        self.every
    }

    /// Counts a failure at `now`. Returns how many failures the line to log
    /// now reports (this one and those held back since the last line), or
    /// `None` while lines are held back.
    pub fn failed(&mut self, now: Instant) -> Option<u64> {
        self.unreported += 1;
        self.failing = true;
        self.report(now)
    }

    /// It worked at `now`. After failures, once a line may be written
    /// again, returns how many were held back (perhaps none), for the line
    /// that says it works again: the last word is not left to the failure,
    /// and a failure that ended is still counted in full. `None` otherwise
    /// (every success but that one).
    pub fn succeeded(&mut self, now: Instant) -> Option<u64> {
        if !self.failing {
            return None;
        }
        let held_back = self.report(now);
        if held_back.is_some() {
            self.failing = false;
            // A failure after this line is news: said at once.
            self.quiet_until = None;
        }
        held_back
    }

    fn report(&mut self, now: Instant) -> Option<u64> {
        if self.quiet_until.is_some_and(|until| now < until) {
            return None;
        }
        self.quiet_until = Some(now + self.every);
        Some(std::mem::take(&mut self.unreported))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT_EVERY: Duration = Duration::from_secs(10);

    #[test]
    fn the_first_failure_is_reported_and_the_rest_counted_into_the_next_line() {
        let start = Instant::now();
        let mut failures = RepeatedFailures::reported_every(REPORT_EVERY);
        assert_eq!(failures.succeeded(start), None, "nothing failed yet");
        assert_eq!(failures.failed(start), Some(1));
        // Ten a second for the rest of the window: all held back.
        for tenth in 1..100 {
            let now = start + Duration::from_millis(100 * tenth);
            assert_eq!(failures.failed(now), None, "at {tenth} tenths");
        }
        assert_eq!(failures.failed(start + REPORT_EVERY), Some(100));
        assert_eq!(failures.failed(start + REPORT_EVERY), None);
    }

    #[test]
    fn failures_held_back_are_reported_by_a_success_once_the_window_ends() {
        let start = Instant::now();
        let mut failures = RepeatedFailures::reported_every(REPORT_EVERY);
        assert_eq!(failures.failed(start), Some(1));
        assert_eq!(failures.failed(start + Duration::from_secs(1)), None);
        assert_eq!(failures.failed(start + Duration::from_secs(2)), None);
        // Working again within the window: still quiet.
        assert_eq!(failures.succeeded(start + Duration::from_secs(3)), None);
        assert_eq!(failures.succeeded(start + REPORT_EVERY), Some(2));
        // Reported: later successes have nothing to say.
        assert_eq!(failures.succeeded(start + REPORT_EVERY * 3), None);
        // A new shortage long after is reported at once.
        assert_eq!(failures.failed(start + REPORT_EVERY * 3), Some(1));
    }

    #[test]
    fn working_again_is_said_even_with_no_failure_held_back() {
        let start = Instant::now();
        let mut failures = RepeatedFailures::reported_every(REPORT_EVERY);
        assert_eq!(failures.failed(start), Some(1));
        assert_eq!(
            failures.succeeded(start + Duration::from_secs(1)),
            None,
            "within the window"
        );
        assert_eq!(failures.succeeded(start + REPORT_EVERY), Some(0));
        assert_eq!(failures.succeeded(start + REPORT_EVERY * 2), None, "said once");
        // Failing again just after: said at once, not a window later.
        let again = start + REPORT_EVERY * 2 + Duration::from_secs(1);
        assert_eq!(failures.failed(again), Some(1));
    }
}
