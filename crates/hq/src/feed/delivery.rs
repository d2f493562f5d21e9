//! Delivering an envelope to a subscription the way SNS does: one POST with
//! SNS' headers per attempt, at most `max_concurrent_deliveries` at once
//! (a quarter of them per subscription, and at most
//! `max_waiting_per_subscription` waiting for one),
//! 5xx / timeouts / refused connections retried per the [`super::RetryPolicy`],
//! and the outcome counted and recorded in the ledger. At most
//! [`MAX_ANSWER_BYTES`] of an answer are read.

use super::Inner;
use super::subscriptions::Subscription;
use crate::ledger::DeliveryOutcome;
use contracts::sns::{
    CONTENT_TYPE, MESSAGE_ID_HEADER, MESSAGE_TYPE_HEADER, SUBSCRIPTION_ARN_HEADER, TOPIC_ARN_HEADER,
    USER_AGENT,
};
use contracts::{Envelope, MessageType};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tracing::Instrument as _;

/// How many deliveries turned away for want of room between two log lines.
const TURNED_AWAY_LOG_EVERY: usize = 1_000;

/// One delivery counted among its subscription's waiting ones for as long
/// as it lives.
struct Waiting {
    counter: Arc<AtomicUsize>,
    /// How many were waiting with this one.
    count: usize,
}

impl Waiting {
    /// Counts one more delivery in `counter`.
    fn join(counter: &Arc<AtomicUsize>) -> Self {
        let count = counter.fetch_add(1, Ordering::Relaxed) + 1;
        Self {
            counter: Arc::clone(counter),
            count,
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How one attempt went.
enum Attempt {
    /// Answered 2xx–4xx: the delivery is over (with the status).
    Done(DeliveryOutcome, u16),
    /// 5xx, no answer in time, or no connection: worth another try.
    Retry {
        /// Why, for a person.
        why: String,
        /// The status answered, if any: a number on the line, for a log
        /// query (`filter status >= 500`) as on the services' lines.
        status: Option<u16>,
    },
    /// The subscription was deleted meanwhile: nothing was sent.
    Removed,
}

impl Attempt {
    /// Worth another try, with no answer to go by: `why`.
    fn not_answered(why: impl Into<String>) -> Self {
        Self::Retry {
            why: why.into(),
            status: None,
        }
    }
}

/// The most of a subscriber's answer HQ reads: the platform's cap on any
/// answer. SNS ignores the body; HQ reads a small one to the end so the
/// connection can be reused, and drops the connection on a larger one, so no
/// subscriber can fill HQ's memory.
pub const MAX_ANSWER_BYTES: usize = platform::downstream::MAX_BODY_BYTES;

/// The HTTP client deliveries are made with: no redirects (SNS follows
/// none), connecting for at most the attempt timeout or 5 s, idle
/// connections dropped before the services close them (as the services'
/// own client does).
pub(super) fn client(attempt_timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(attempt_timeout.min(Duration::from_secs(5)))
        .pool_idle_timeout(platform::downstream::POOL_IDLE_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true)
        .build()
}

impl Inner {
    /// Delivers `envelope` to `subscription` in the background. An order's
    /// delivery is tracked, so that [`super::Feed::drain`] waits for it and
    /// [`super::Feed::in_flight`] counts it; a subscription confirmation is
    /// not: no order hangs on it, and one retried to an endpoint that is not
    /// up held every stop for the whole drain deadline.
    ///
    /// A subscription with [`super::FeedConfig::max_waiting_per_subscription`]
    /// deliveries waiting already (its endpoint slower than the orders
    /// coming) gets no more: the order's delivery to it ends failed at once,
    /// logged and recorded, as SNS drops what its policy cannot deliver.
    pub(super) fn spawn_delivery(self: &Arc<Self>, subscription: Subscription, envelope: Envelope) {
        let inner = Arc::clone(self);
        // The delivery's lines carry the order's id as the services' do
        // (`order_id`, the MessageId), so one query finds the order in both.
        // At ERROR level, so that a warning under `RUST_LOG=warn` carries it too.
        let span = tracing::error_span!("delivery", order_id = %envelope.message_id);
        if envelope.message_type != MessageType::Notification {
            tokio::spawn(async move { inner.deliver(subscription, envelope).await }.instrument(span));
            return;
        }
        let waiting = Waiting::join(&subscription.waiting);
        let delivery = async move {
            if waiting.count > inner.config.max_waiting_per_subscription {
                let turned_away = subscription.turned_away.fetch_add(1, Ordering::Relaxed) + 1;
                // One line for the first and then every thousandth, not one
                // per order for as long as the endpoint stays down.
                if turned_away % TURNED_AWAY_LOG_EVERY == 1 {
                    tracing::error!(topic = %subscription.info.topic, endpoint = %subscription.info.endpoint,
                        waiting = waiting.count - 1, turned_away,
                        "deliveries failing at once, not retried: the endpoint already has this many waiting \
                         (it answers too slowly or not at all); this line again every {TURNED_AWAY_LOG_EVERY}");
                }
                inner
                    .record_outcome(&subscription, &envelope, DeliveryOutcome::Failed, 0)
                    .await;
                return;
            }
            inner.deliver(subscription, envelope).await;
            drop(waiting);
        };
        self.in_flight.spawn(delivery.instrument(span));
    }

    /// Delivers `envelope` to `subscription`, retrying per the policy; a
    /// notification's outcome is counted and recorded.
    async fn deliver(self: Arc<Self>, subscription: Subscription, envelope: Envelope) {
        let body = match serde_json::to_string(&envelope) {
            Ok(body) => body,
            Err(error) => {
                tracing::error!(%error, "could not serialize an SNS envelope");
                return;
            }
        };
        let (outcome, attempts) = self.attempt_until_done(&subscription, &envelope, &body).await;
        if envelope.message_type == MessageType::Notification {
            self.record_outcome(&subscription, &envelope, outcome, attempts)
                .await;
        }
    }

    /// Attempts until an answer ends the delivery or the retries run out;
    /// returns how it ended and after how many attempts.
    async fn attempt_until_done(
        &self,
        subscription: &Subscription,
        envelope: &Envelope,
        body: &str,
    ) -> (DeliveryOutcome, u32) {
        let topic = subscription.info.topic;
        let endpoint = &subscription.info.endpoint;
        // The order's id is the delivery span's `order_id`: not again here.
        let retry = self.config.retry;
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.attempt(subscription, envelope, body).await {
                Attempt::Done(outcome, status) => {
                    if outcome == DeliveryOutcome::Rejected {
                        tracing::warn!(%topic, %endpoint, status,
                            "delivery refused with 4xx; SNS does not retry it");
                    } else if attempts > 1 {
                        // The end of the failures said above, at their level,
                        // so that a console showing warnings shows it too.
                        let failed = attempts - 1;
                        let plural = if failed == 1 { "" } else { "s" };
                        tracing::warn!(%topic, %endpoint, status, attempts,
                            "delivered after {failed} failed attempt{plural}");
                    }
                    return (outcome, attempts);
                }
                Attempt::Retry { why, status } if attempts <= retry.num_retries => {
                    let delay = retry.delay(attempts);
                    tracing::warn!(%topic, %endpoint, status, attempt = attempts,
                        "delivery failed ({why}); retry {attempts} of {} in {delay:?}", retry.num_retries);
                    if envelope.message_type == MessageType::Notification {
                        self.stats.retried(topic);
                    }
                    tokio::time::sleep(delay).await;
                }
                Attempt::Retry { why, status } => {
                    tracing::error!(%topic, %endpoint, status, attempts,
                        "delivery failed ({why}); no retries left");
                    return (DeliveryOutcome::Failed, attempts);
                }
                Attempt::Removed => {
                    // Given up, as for a subscription SNS deleted: the order
                    // reached no one through it.
                    tracing::warn!(%topic, %endpoint,
                        "delivery abandoned: the subscription was removed");
                    return (DeliveryOutcome::Failed, attempts - 1);
                }
            }
        }
    }

    /// Counts a finished notification and records it in the ledger.
    async fn record_outcome(
        &self,
        subscription: &Subscription,
        envelope: &Envelope,
        outcome: DeliveryOutcome,
        attempts: u32,
    ) {
        self.stats.finished(subscription.info.topic, outcome);
        if let Err(error) = self
            .ledger
            .record_delivery(
                &envelope.message_id,
                &subscription.info.subscription_arn,
                outcome,
                attempts,
            )
            .await
        {
            tracing::error!(%error, "could not record a delivery outcome");
        }
    }

    /// Sends `envelope` to `subscription` once, with no retry and nothing
    /// recorded; says how it went.
    pub(super) async fn send_once(&self, subscription: &Subscription, envelope: &Envelope) -> String {
        let body = match serde_json::to_string(envelope) {
            Ok(body) => body,
            Err(error) => return format!("could not serialize the envelope: {error}"),
        };
        match self.attempt(subscription, envelope, &body).await {
            Attempt::Done(_, status) => format!("answered {status}"),
            Attempt::Retry { why, .. } => why,
            Attempt::Removed => "not sent: the subscription was removed".into(),
        }
    }

    /// One POST of `body` to the subscription's endpoint.
    async fn attempt(&self, subscription: &Subscription, envelope: &Envelope, body: &str) -> Attempt {
        // Its own share first: an endpoint that never answers holds only
        // that, and every other subscription still gets its deliveries.
        let Ok(_own) = subscription.slots.acquire().await else {
            return Attempt::not_answered("the feed is shutting down");
        };
        let Ok(_permit) = self.permits.acquire().await else {
            return Attempt::not_answered("the feed is shutting down");
        };
        // Checked once the slots are held: a delivery may have waited for
        // them, or for its retry, past the subscription's removal.
        if subscription.removed() {
            return Attempt::Removed;
        }
        let mut request = self
            .client
            .post(subscription.endpoint.url().clone())
            .timeout(self.config.delivery_timeout)
            .header(MESSAGE_TYPE_HEADER, envelope.message_type.as_str())
            .header(MESSAGE_ID_HEADER, &envelope.message_id)
            .header(TOPIC_ARN_HEADER, &envelope.topic_arn)
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .header(reqwest::header::USER_AGENT, USER_AGENT)
            .body(body.to_owned());
        // Like SNS: confirmations carry no subscription ARN header.
        if envelope.message_type != MessageType::SubscriptionConfirmation {
            request = request.header(SUBSCRIPTION_ARN_HEADER, &subscription.info.subscription_arn);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                // The status decided; the body only matters for the connection.
                let _ = platform::downstream::read_body(
                    response,
                    MAX_ANSWER_BYTES,
                    platform::downstream::BODY_TIMEOUT,
                )
                .await;
                if status.is_server_error() {
                    Attempt::Retry {
                        why: format!("answered {status}"),
                        status: Some(status.as_u16()),
                    }
                } else if status.is_client_error() {
                    Attempt::Done(DeliveryOutcome::Rejected, status.as_u16())
                } else {
                    Attempt::Done(DeliveryOutcome::Delivered, status.as_u16())
                }
            }
            Err(error) if error.is_timeout() => Attempt::not_answered("no answer in time"),
            // Why, in the system's words: a refused port, a name that does
            // not resolve and https to a plain-http server each read
            // "connection refused" before, the last two misleadingly.
            Err(error) if error.is_connect() => Attempt::not_answered(format!(
                "could not connect: {}",
                platform::downstream::root_cause(&error.without_url())
            )),
            // Without its URL: an endpoint's query can hold a secret.
            Err(error) => Attempt::not_answered(format!("transport error: {}", error.without_url())),
        }
    }
}
