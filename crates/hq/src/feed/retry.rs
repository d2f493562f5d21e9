//! SNS' delivery policy for HTTP/S endpoints: how often and how far apart a
//! failed delivery is tried again.

use std::time::Duration;

/// How the delay grows from `min_delay` to `max_delay` (SNS' `backoffFunction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Backoff {
    /// Evenly spaced steps from min to max (SNS' default).
    #[default]
    Linear,
    /// Doubling from min, capped at max. Not quite SNS' `exponential`,
    /// which spreads its retries from min to max and reaches max only on
    /// the last: the same policy retries for longer here than on SNS.
    Exponential,
}

/// The retry policy: SNS' `numRetries`, `minDelayTarget`, `maxDelayTarget`
/// and `backoffFunction`. Only 5xx answers, timeouts and refused connections
/// are retried; a 2xx–4xx ends the delivery (a 4xx counted rejected).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub num_retries: u32,
    /// Delay before the first retry.
    pub min_delay: Duration,
    /// Largest delay between attempts.
    pub max_delay: Duration,
    /// How the delay grows.
    pub backoff: Backoff,
}

impl Default for RetryPolicy {
    /// SNS' default HTTP/S policy: 3 retries, 20 s apart.
    fn default() -> Self {
        Self {
            num_retries: 3,
            min_delay: Duration::from_secs(20),
            max_delay: Duration::from_secs(20),
            backoff: Backoff::Linear,
        }
    }
}

impl RetryPolicy {
    /// The most retries SNS' delivery policy takes (`numRetries`).
    pub const MAX_RETRIES: u32 = 100;
    /// The longest delay SNS' delivery policy takes (`maxDelayTarget`).
    pub const MAX_DELAY: Duration = Duration::from_secs(3600);

    /// The delay before retry number `retry` (1 for the first retry).
    pub fn delay(&self, retry: u32) -> Duration {
        let min = self.min_delay;
        let max = self.max_delay.max(min);
        let step = retry.saturating_sub(1);
        match self.backoff {
            Backoff::Linear => {
                if self.num_retries <= 1 {
                    return min;
                }
                let span = max - min;
                min + span.mul_f64(f64::from(step) / f64::from(self.num_retries - 1))
            }
            Backoff::Exponential => {
                let factor = 2u32.saturating_pow(step.min(31));
                min.saturating_mul(factor).min(max)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sns_default_is_three_retries_twenty_seconds_apart() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.num_retries, 3);
        assert!((1..=3).all(|retry| policy.delay(retry) == Duration::from_secs(20)));
    }

    #[test]
    fn linear_and_exponential_growth() {
        let linear = RetryPolicy {
            num_retries: 5,
            min_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(5),
            backoff: Backoff::Linear,
        };
        let delays: Vec<u64> = (1..=5).map(|r| linear.delay(r).as_secs()).collect();
        assert_eq!(delays, [1, 2, 3, 4, 5]);
        let exponential = RetryPolicy {
            backoff: Backoff::Exponential,
            max_delay: Duration::from_secs(10),
            ..linear
        };
        let delays: Vec<u64> = (1..=5).map(|r| exponential.delay(r).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 10]);
    }
}
