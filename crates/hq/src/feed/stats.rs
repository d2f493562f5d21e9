//! Delivery counters per topic since HQ started, as `GET /topics` shows them.

use super::Topic;
use super::lock_ignoring_poison;
use crate::ledger::DeliveryOutcome;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Counters of one topic since HQ started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TopicStats {
    /// Orders published.
    pub published: u64,
    /// Deliveries answered 2xx/3xx.
    pub delivered: u64,
    /// Deliveries answered 4xx (never retried).
    pub rejected: u64,
    /// Deliveries that failed every attempt, or that failed at once because
    /// their subscription had too many waiting (`max_waiting_per_subscription`).
    pub failed: u64,
    /// Retry attempts made.
    pub retried: u64,
    /// Deliveries not finished yet.
    pub in_flight: u64,
    /// Orders published while no confirmed subscription took the topic's
    /// orders: they reached nobody.
    pub unrouted: u64,
}

/// The counters of every topic.
#[derive(Debug)]
pub(super) struct Stats(Mutex<BTreeMap<Topic, TopicStats>>);

impl Default for Stats {
    /// Every topic, at zero.
    fn default() -> Self {
        Self(Mutex::new(
            Topic::ALL
                .iter()
                .copied()
                .map(|topic| (topic, TopicStats::default()))
                .collect(),
        ))
    }
}

impl Stats {
    /// Changes the counters of `topic`.
    fn update(&self, topic: Topic, change: impl FnOnce(&mut TopicStats)) {
        change(lock_ignoring_poison(&self.0).entry(topic).or_default());
    }

    /// An order was published on `topic`, to `deliveries` subscriptions.
    pub(super) fn published(&self, topic: Topic, deliveries: usize) {
        self.update(topic, |stats| {
            stats.published += 1;
            stats.in_flight += deliveries as u64;
            if deliveries == 0 {
                stats.unrouted += 1;
            }
        });
    }

    /// A delivery on `topic` is being retried.
    pub(super) fn retried(&self, topic: Topic) {
        self.update(topic, |stats| stats.retried += 1);
    }

    /// A delivery on `topic` ended with `outcome`.
    pub(super) fn finished(&self, topic: Topic, outcome: DeliveryOutcome) {
        self.update(topic, |stats| {
            stats.in_flight = stats.in_flight.saturating_sub(1);
            match outcome {
                DeliveryOutcome::Delivered => stats.delivered += 1,
                DeliveryOutcome::Rejected => stats.rejected += 1,
                DeliveryOutcome::Failed => stats.failed += 1,
            }
        });
    }

    /// The counters as they are now.
    pub(super) fn snapshot(&self) -> BTreeMap<Topic, TopicStats> {
        lock_ignoring_poison(&self.0).clone()
    }
}
