//! The order generator: publishes random orders on each topic at a set rate,
//! as Interstella HQ's generator fed the workshop.

use super::{MessageAttributes, Topic};
use crate::publisher::Publisher;
use platform::telemetry::repeated::RepeatedFailures;
use rand::Rng;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

/// The least time between two lines about generated orders that could not
/// be published, per topic, unless told otherwise: while the ledger cannot
/// record (a full disk), every tick fails.
pub const FAILURES_REPORTED_EVERY: Duration = Duration::from_secs(60);

/// Largest quantity in a generated order unless told otherwise.
pub const DEFAULT_MAX_QUANTITY: u32 = 5;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorConfig {
    /// Orders per second on each topic; topics absent or at 0 get none.
    pub rates: BTreeMap<Topic, f64>,
    /// Largest quantity in one generated order (at least 1).
    pub max_quantity: u32,
    /// The least time between two lines, per topic, about generated orders
    /// that could not be published (those in between are counted into the
    /// next line): [`FAILURES_REPORTED_EVERY`] unless told otherwise.
    pub failures_reported_every: Duration,
}

impl Default for GeneratorConfig {
    /// No orders (and, once rates are set, quantities up to
    /// [`DEFAULT_MAX_QUANTITY`]).
    fn default() -> Self {
        Self {
            rates: BTreeMap::new(),
            max_quantity: DEFAULT_MAX_QUANTITY,
            failures_reported_every: FAILURES_REPORTED_EVERY,
        }
    }
}

impl GeneratorConfig {
    /// Whether it publishes anything: a topic at a rate above 0.
    pub fn generates(&self) -> bool {
        self.rates.values().copied().any(publishes_at)
    }
}

/// Whether orders are generated at `rate` a second (a finite rate above 0).
fn publishes_at(rate: f64) -> bool {
    rate.is_finite() && rate > 0.0
}

/// A running generator; stop it with [`Generator::stop`].
#[derive(Debug)]
pub struct Generator {
    cancel: CancellationToken,
    tasks: JoinSet<()>,
}

impl Generator {
    /// Starts publishing through `publisher`.
    pub fn start(publisher: &Publisher, config: &GeneratorConfig) -> Self {
        let ready = CancellationToken::new();
        ready.cancel();
        Self::start_when(publisher, config, ready)
    }

    /// Starts publishing through `publisher` once `ready` is cancelled.
    pub fn start_when(publisher: &Publisher, config: &GeneratorConfig, ready: CancellationToken) -> Self {
        let cancel = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let max_quantity = config.max_quantity.max(1);
        let failures_reported_every = config.failures_reported_every;
        for (&topic, &rate) in &config.rates {
            if !publishes_at(rate) {
                continue;
            }
            let period = Duration::from_secs_f64((1.0 / rate).clamp(0.001, 86_400.0));
            let (publisher, cancel, ready) = (publisher.clone(), cancel.clone(), ready.clone());
            tasks.spawn(async move {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = ready.cancelled() => {}
                }
                tracing::info!(%topic, "generating {rate} orders/s");
                let mut ticks = tokio::time::interval(period);
                ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
                let mut failures = RepeatedFailures::reported_every(failures_reported_every);
                // Whether the last order published reached nobody (said once).
                let mut reaching_nobody = false;
                loop {
                    tokio::select! {
                        () = cancel.cancelled() => break,
                        _ = ticks.tick() => {}
                    }
                    let quantity = rand::rng().random_range(1..=max_quantity);
                    let order = topic.order(quantity);
                    match publisher.publish(topic, &order, &MessageAttributes::new()).await {
                        Ok(published) => {
                            say_whom_it_reaches(topic, published.subscribers, &mut reaching_nobody);
                            if let Some(failed) = failures.succeeded(Instant::now()) {
                                tracing::warn!(
                                    %topic,
                                    failed,
                                    "publishing generated orders again ({failed} could not be published since \
                                     the last such line)"
                                );
                            }
                        }
                        Err(error) => {
                            if let Some(failed) = failures.failed(Instant::now()) {
                                tracing::error!(
                                    %topic,
                                    %error,
                                    failed,
                                    "could not publish a generated order ({failed} since the last such line); \
                                     reporting at most every {failures_reported_every:?}"
                                );
                            }
                        }
                    }
                }
            }.in_current_span());
        }
        Self { cancel, tasks }
    }

    /// Stops generating at once. A publish under way runs on in a task of
    /// its own (the publisher's), and the publisher's drain waits for it:
    /// waiting here held HQ's stop for as long as SNS took to answer.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Says, once, that generated orders on `topic` reach nobody (they count as
/// unrouted, not lost), and again once they reach someone. HQ's own feed
/// keeps its subscriptions in memory: after a restart, those made through
/// the portal or the admin API are gone, and the generator went on
/// publishing to nobody without a word.
fn say_whom_it_reaches(topic: Topic, subscribers: usize, reaching_nobody: &mut bool) {
    if subscribers == 0 && !*reaching_nobody {
        tracing::warn!(
            %topic,
            "generated orders reach nobody: no subscription to the topic is confirmed, so they count as \
             unrouted (HQ's own feed keeps subscriptions in memory: after a restart, subscribe again, or \
             list them in HQ_SUBSCRIBE)"
        );
    } else if subscribers > 0 && *reaching_nobody {
        tracing::info!(%topic, subscribers, "generated orders reach subscribers again");
    }
    *reaching_nobody = subscribers == 0;
}
