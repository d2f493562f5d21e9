//! Waiting for something by polling with a deadline, never a bare sleep.

use std::time::Duration;
use tokio::time::Instant;

/// Polls `condition` every few milliseconds until it holds; panics naming
/// `what` if it does not within `deadline`.
pub async fn wait_until(what: &str, deadline: Duration, mut condition: impl FnMut() -> bool) {
    let give_up = Instant::now() + deadline;
    while !condition() {
        assert!(
            Instant::now() < give_up,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
