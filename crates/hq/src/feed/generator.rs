//! The order generator: publishes random orders on each topic at a set rate,
//! as Interstella HQ's generator fed the workshop.

use super::{MessageAttributes, Topic};
use crate::publisher::Publisher;
use rand::Rng;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

/// What to generate.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GeneratorConfig {
    /// Orders per second on each topic; topics absent or at 0 get none.
    pub rates: BTreeMap<Topic, f64>,
    /// Largest quantity in one generated order (at least 1).
    pub max_quantity: u32,
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
        for (&topic, &rate) in &config.rates {
            if !(rate.is_finite() && rate > 0.0) {
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
                loop {
                    tokio::select! {
                        () = cancel.cancelled() => break,
                        _ = ticks.tick() => {}
                    }
                    let quantity = rand::thread_rng().gen_range(1..=max_quantity);
                    let order = topic.order(quantity);
                    if let Err(error) = publisher.publish(topic, &order, &MessageAttributes::new()).await {
                        tracing::error!(%topic, %error, "could not publish a generated order");
                    }
                }
            });
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
