//! Waiting for something by polling with a deadline, never a bare sleep: the
//! one polling helper of the tests.

use std::time::Duration;
use tokio::time::Instant;

/// How often `wait_until` looks again.
const POLL_EVERY: Duration = Duration::from_millis(5);

/// Polls `check` until it returns `Some`, and returns what it held; panics
/// naming `what` if that does not happen within `deadline`.
///
/// `check` may await (ask a server) or not: `async || (count == 1).then_some(())`.
pub async fn wait_until<T>(what: &str, deadline: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let give_up = Instant::now() + deadline;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            Instant::now() < give_up,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(POLL_EVERY).await;
    }
}
