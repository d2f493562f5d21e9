//! Accept failures that repeat, reported at most once per
//! [`REPORT_EVERY`]. Out of file descriptors, accepting fails again every
//! retry (ten times a second) for as long as the shortage lasts, and at the
//! open-file limit it flaps with every idle connection closed: one error
//! line per failure buried everything else a service logged. The first
//! failure is logged at once; those after it are counted, and the count
//! goes out with the next line.

use tokio::time::{Duration, Instant};

/// The least time between two accept-failure lines.
pub(super) const REPORT_EVERY: Duration = Duration::from_secs(10);

/// Failures to accept since the last line that reported them.
#[derive(Debug, Default)]
pub(super) struct AcceptFailures {
    /// Failures not yet in a line.
    unreported: u64,
    /// Until when no line is written; `None` before the first failure.
    quiet_until: Option<Instant>,
}

impl AcceptFailures {
    /// Counts a failure at `now`. Returns how many failures the line to log
    /// now reports (this one and those held back since the last line), or
    /// `None` while lines are held back.
    pub(super) fn failed(&mut self, now: Instant) -> Option<u64> {
        self.unreported += 1;
        self.report(now)
    }

    /// A connection was accepted at `now`. Returns how many failures were
    /// held back, once a line may be written again, so that a shortage that
    /// ended is still counted in full; `None` when there are none to report
    /// (every accept but those few).
    pub(super) fn accepted(&mut self, now: Instant) -> Option<u64> {
        if self.unreported == 0 {
            return None;
        }
        self.report(now)
    }

    fn report(&mut self, now: Instant) -> Option<u64> {
        if self.quiet_until.is_some_and(|until| now < until) {
            return None;
        }
        self.quiet_until = Some(now + REPORT_EVERY);
        Some(std::mem::take(&mut self.unreported))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_is_reported_and_the_rest_counted_into_the_next_line() {
        let start = Instant::now();
        let mut failures = AcceptFailures::default();
        assert_eq!(failures.accepted(start), None, "nothing failed yet");
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
    fn failures_held_back_are_reported_by_an_accept_once_the_window_ends() {
        let start = Instant::now();
        let mut failures = AcceptFailures::default();
        assert_eq!(failures.failed(start), Some(1));
        assert_eq!(failures.failed(start + Duration::from_secs(1)), None);
        assert_eq!(failures.failed(start + Duration::from_secs(2)), None);
        // Accepting again within the window: still quiet.
        assert_eq!(failures.accepted(start + Duration::from_secs(3)), None);
        assert_eq!(failures.accepted(start + REPORT_EVERY), Some(2));
        // Reported: later accepts have nothing to say.
        assert_eq!(failures.accepted(start + REPORT_EVERY * 3), None);
        // A new shortage long after is reported at once.
        assert_eq!(failures.failed(start + REPORT_EVERY * 3), Some(1));
    }
}
