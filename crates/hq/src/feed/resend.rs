//! When a start-up subscription's confirmation is sent again, and when its
//! "not confirmed yet" line is logged: the waits double from the configured
//! first one up to [`MAX_SUBSCRIBE_EVERY`], and the line is logged at the
//! first miss and then at most every [`NOT_CONFIRMED_LOG_EVERY`]. For HQ's
//! own feed and for SNS alike (there each send is a call to `Subscribe`).

use crate::config::MAX_SUBSCRIBE_EVERY;
use std::time::{Duration, Instant};

/// The least time between two "not confirmed yet" lines of one subscription.
pub const NOT_CONFIRMED_LOG_EVERY: Duration = Duration::from_secs(300);

/// The schedule of one start-up subscription's confirmations.
#[derive(Debug)]
pub(crate) struct Resend {
    /// The wait before the next send.
    next: Duration,
    /// The longest wait: [`MAX_SUBSCRIBE_EVERY`], or the first if longer.
    cap: Duration,
    /// Sends that were not confirmed.
    misses: u64,
    /// When the last line was logged.
    logged: Option<Instant>,
}

/// What to do after a send that was not confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Miss {
    /// How long to wait before sending again.
    pub(crate) wait: Duration,
    /// Sends not confirmed so far, this one included.
    pub(crate) misses: u64,
    /// Whether to log it.
    pub(crate) log: bool,
}

impl Resend {
    /// A schedule whose first wait is `first`.
    pub(crate) fn new(first: Duration) -> Self {
        Self {
            next: first,
            cap: MAX_SUBSCRIBE_EVERY.max(first),
            misses: 0,
            logged: None,
        }
    }

    /// The longest wait of this schedule.
    pub(crate) fn cap(&self) -> Duration {
        self.cap
    }

    /// A send was not confirmed at `now`: how long to wait, and whether to say so.
    pub(crate) fn missed(&mut self, now: Instant) -> Miss {
        self.misses += 1;
        let wait = self.next;
        self.next = self.next.saturating_mul(2).min(self.cap);
        let log = self
            .logged
            .is_none_or(|logged| now.saturating_duration_since(logged) >= NOT_CONFIRMED_LOG_EVERY);
        if log {
            self.logged = Some(now);
        }
        Miss {
            wait,
            misses: self.misses,
            log,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_SUBSCRIBE_EVERY, NOT_CONFIRMED_LOG_EVERY, Resend};
    use std::time::{Duration, Instant};

    #[test]
    fn the_waits_double_up_to_the_cap_and_a_miss_is_logged_first_then_every_five_minutes() {
        let start = Instant::now();
        let mut resend = Resend::new(Duration::from_secs(1));
        let mut at = start;
        let mut waits = Vec::new();
        let mut logged = Vec::new();
        // An endpoint down for an hour.
        while at < start + Duration::from_secs(3600) {
            let miss = resend.missed(at);
            waits.push(miss.wait.as_secs());
            if miss.log {
                logged.push(at.duration_since(start).as_secs());
            }
            at += miss.wait;
        }
        assert_eq!(waits[..8], [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(MAX_SUBSCRIBE_EVERY, Duration::from_secs(30));
        // 2 a minute once capped, not 60 as at 1 s.
        assert!(waits.len() < 130, "{} sends in an hour", waits.len());
        // The first miss, then one line per five minutes at most: 12 an hour.
        assert_eq!(logged[0], 0);
        assert!(
            logged
                .windows(2)
                .all(|pair| pair[1] - pair[0] >= NOT_CONFIRMED_LOG_EVERY.as_secs()),
            "{logged:?}"
        );
        assert!((11..=13).contains(&logged.len()), "{logged:?}");
    }

    #[test]
    fn a_first_wait_above_the_cap_is_kept() {
        let mut resend = Resend::new(Duration::from_secs(60));
        let now = Instant::now();
        assert_eq!(resend.missed(now).wait, Duration::from_secs(60));
        assert_eq!(resend.missed(now).wait, Duration::from_secs(60));
        assert_eq!(resend.cap(), Duration::from_secs(60));
    }
}
