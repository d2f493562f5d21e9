//! Orders under way, for either publisher: each publish runs as a task of
//! its own, tracked with the deliveries it starts, so that it runs to its
//! end whoever waits for it, and a drain waits for all of them.
//!
//! A publish cut off half-way loses or doubles an order: once SNS (or the
//! feed) has it, only the ledger's record of it says it was published, and
//! a caller whose request timed out is told to send it again. Run here, a
//! caller that gives up leaves the publish to finish, and its outcome is
//! logged since no one hears it.

use super::{FeedError, Published};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// Publishes and deliveries under way; refuses publishes once stopping.
#[derive(Debug, Default)]
pub(crate) struct OrdersInFlight {
    tracker: TaskTracker,
    /// Set once HQ begins to stop: publishes are refused from then on.
    stopping: Arc<AtomicBool>,
}

impl OrdersInFlight {
    /// Runs `publish` to its end as a tracked task and returns its outcome,
    /// or [`FeedError::Stopping`] once [`OrdersInFlight::stop_publishing`]
    /// was called. Dropping the returned future does not stop the publish.
    pub(crate) async fn publish(
        &self,
        publish: impl Future<Output = Result<Published, FeedError>> + Send + 'static,
    ) -> Result<Published, FeedError> {
        let (outcome_to, outcome) = tokio::sync::oneshot::channel();
        let stopping = Arc::clone(&self.stopping);
        // The tracker counts the task from here, before it looks at
        // `stopping`: a drain that began after that look waits for it, and
        // one that began before it is seen.
        let task = async move {
            let ended = if stopping.load(Ordering::SeqCst) {
                Err(FeedError::Stopping)
            } else {
                publish.await
            };
            if let Err(unheard) = outcome_to.send(ended) {
                match unheard {
                    Ok(published) => tracing::info!(
                        order_id = %published.message_id,
                        "published and recorded after its caller stopped waiting"
                    ),
                    Err(error) => tracing::error!(%error, "a publish whose caller stopped waiting failed"),
                }
            }
        };
        self.tracker.spawn(task.in_current_span());
        outcome
            .await
            .map_err(|_| FeedError::Interrupted("the publish ended without an outcome".into()))?
    }

    /// Runs `task` (an order's delivery) tracked: drains wait for it.
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.tracker.spawn(task);
    }

    /// Refuses every publish from now on ([`FeedError::Stopping`]); those
    /// already under way finish, and [`OrdersInFlight::drain`] waits for them.
    pub(crate) fn stop_publishing(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Whether publishing has stopped: a publish under way checks it last
    /// before the step that cannot be taken back (SNS' Publish), so that at
    /// a stop only a publish already past that step is left to the drain.
    #[cfg(feature = "sns")] // only SNS' publish has such a step
    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Publishes and deliveries under way.
    pub(crate) fn len(&self) -> usize {
        self.tracker.len()
    }

    /// Waits until every publish and delivery under way has ended, or
    /// `deadline` passes; true when everything ended.
    pub(crate) async fn drain(&self, deadline: Duration) -> bool {
        self.tracker.close();
        let finished = tokio::time::timeout(deadline, self.tracker.wait()).await.is_ok();
        self.tracker.reopen();
        finished
    }
}
