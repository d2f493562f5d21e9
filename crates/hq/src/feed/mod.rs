//! The SNS-compatible order feed: topics, HTTP subscriptions confirmed the
//! way SNS confirms them, and signed deliveries retried like SNS retries them.
//!
//! A delivery is what SNS itself sends: a POST with the `x-amz-sns-*`
//! headers, `Content-Type: text/plain; charset=UTF-8`, SNS' User-Agent and
//! the JSON envelope (the order as a string in `Message`), signed with
//! SignatureVersion 2. 2xx–4xx end a delivery; 5xx, timeouts and refused
//! connections are retried per the [`RetryPolicy`].
//!
//! This module holds the [`Feed`] and publishing; the registry of
//! subscriptions, the envelopes, delivery and the counters are in their own
//! files.

mod delivery;
mod endpoint;
mod envelopes;
pub mod generator;
pub(crate) mod in_flight;
pub(crate) mod resend;
pub mod retry;
mod stats;
mod subscriptions;
pub mod topic;

/// The largest message SNS publishes (256 KiB), which HQ's feed holds to too.
pub use contracts::sns::MAX_MESSAGE_BYTES;
pub use delivery::MAX_ANSWER_BYTES;
pub use endpoint::Endpoint;
pub use retry::{Backoff, RetryPolicy};
pub use stats::TopicStats;
pub use subscriptions::{SubscriptionInfo, SubscriptionState};
pub use topic::{Topic, UnknownTopic};

use crate::ledger::{Ledger, LedgerError};
use crate::signing::{SigningError, SigningIdentity};
use contracts::order::OrderError;
use envelopes::Envelopes;
use in_flight::OrdersInFlight;
use serde::Serialize;
use stats::Stats;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use subscriptions::Subscriptions;
use tokio::sync::Semaphore;
use url::Url;

/// HQ's route `path` (from `/`) as services reach it: under the path of
/// `base_url` (`HQ_PUBLIC_URL`), which a proxy in front of HQ may strip.
/// Services trust links under their stand-in's path only, by this same rule.
pub(crate) fn under_base_url(base_url: &Url, path: &str) -> Url {
    let mut url = base_url.clone();
    let prefix = base_url.path().trim_end_matches('/');
    url.set_path(&format!("{prefix}{path}"));
    url.set_query(None);
    url
}

/// How deliveries are made.
#[derive(Debug, Clone, Copy)]
pub struct FeedConfig {
    /// When and how often failed deliveries are retried.
    pub retry: RetryPolicy,
    /// How long one delivery attempt may take (SNS: 15 s).
    pub delivery_timeout: Duration,
    /// Delivery attempts in flight at once, across all subscriptions; one
    /// subscription takes at most a quarter of them ([`FeedConfig::per_subscription`]).
    pub max_concurrent_deliveries: usize,
    /// Deliveries one subscription may have waiting or under way (its
    /// retries included); one more ends failed at once, logged, rather than
    /// wait in memory ([`DEFAULT_MAX_WAITING_PER_SUBSCRIPTION`]).
    pub max_waiting_per_subscription: usize,
    /// How long a subscription may stay pending confirmation before it is
    /// deleted (SNS: three days, [`DEFAULT_PENDING_EXPIRY`]); its token then
    /// confirms nothing.
    pub pending_expiry: Duration,
}

impl FeedConfig {
    /// Delivery attempts one subscription may have in flight at once: a
    /// quarter of the feed's. An endpoint that accepts and never answers (a
    /// mistyped address, a security group dropping packets) holds each
    /// attempt for the delivery timeout; with the whole pool it stalled
    /// every topic, and with half of it two such endpoints did. Three leave
    /// the rest a quarter.
    pub fn per_subscription(&self) -> usize {
        (self.max_concurrent_deliveries / 4).max(1)
    }
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            delivery_timeout: Duration::from_secs(15),
            max_concurrent_deliveries: 64,
            max_waiting_per_subscription: DEFAULT_MAX_WAITING_PER_SUBSCRIPTION,
            pending_expiry: DEFAULT_PENDING_EXPIRY,
        }
    }
}

/// Deliveries one subscription may have waiting or under way. Each is a
/// task of about 6 KiB; an endpoint that never answers takes one attempt
/// per slot per delivery timeout, so orders published faster than that
/// (four attempts each, at the default policy) piled up without end:
/// 10 MB an hour at 0.5 orders/s. At most about 60 MB a subscription here,
/// and a day of the workshop's generator at 0.1 s apart fits.
pub const DEFAULT_MAX_WAITING_PER_SUBSCRIPTION: usize = 10_000;

/// How long a subscription may stay pending confirmation, as on SNS, which
/// deletes one not confirmed within three days.
pub const DEFAULT_PENDING_EXPIRY: Duration = Duration::from_secs(3 * 24 * 60 * 60);

/// Why the feed refused something.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// No such topic.
    #[error(transparent)]
    UnknownTopic(#[from] UnknownTopic),
    /// The message is not an order for the topic.
    #[error("not an order for this topic: {0}")]
    BadOrder(#[from] OrderError),
    /// The message wraps an order in a `Message` of its own (the workshop
    /// curl's body, sent to a service directly); `.0` is the topic's order.
    #[error(
        "publish the order itself, such as {0}: SNS puts it in the Message field of what it delivers, so a Message of its own would reach the services as an order they refuse"
    )]
    Enveloped(&'static str),
    /// The endpoint is not an http(s) URL; it is not quoted, as it may
    /// hold a password.
    #[error("endpoint must be an http:// or https:// URL with a host, such as http://proxy/order/")]
    BadEndpoint,
    /// The confirmation token matches no pending subscription of the topic.
    #[error("no subscription awaits confirmation with this token on this topic")]
    UnknownToken,
    /// No such subscription.
    #[error("no subscription {}", contracts::quote::quoted(.0))]
    UnknownSubscription(String),
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The ledger refused an order of HQ's feed (its write failed, so
    /// nothing was committed), and it was not published: nothing goes out
    /// that the ledger has not heard of.
    #[error("HQ's ledger could not record the order ({0}), so it was NOT published")]
    NotRecorded(LedgerError),
    /// SNS took the order (it will be delivered), but the ledger could not
    /// record it: publishing it again would make a second order.
    #[error(
        "published to SNS as MessageId {message_id} (it will be delivered), but HQ's ledger could not record it: {source}; do not publish it again"
    )]
    PublishedNotRecorded {
        /// SNS' MessageId for the order.
        message_id: String,
        /// Why the ledger failed.
        source: LedgerError,
    },
    /// AWS SNS refused or could not be reached (`HQ_PUBLISH_TO=aws`).
    #[error("SNS: {0}")]
    Sns(String),
    /// A Publish SNS may have taken without saying so (a timeout, a 5xx, a
    /// connection lost after sending): HQ cannot know, so did not record it.
    #[error(
        "SNS' answer to the Publish does not say whether it has the order ({0}); HQ did not record it: look for it in the services' logs before publishing it again"
    )]
    SnsOutcomeUnknown(String),
    /// Over SNS' limit on a message.
    #[error("the message is {0} bytes; SNS takes at most {MAX_MESSAGE_BYTES}")]
    TooLarge(usize),
    /// HQ is shutting down: nothing published now could be delivered.
    #[error("HQ is shutting down; the order was NOT published: publish it again once HQ is back")]
    Stopping,
    /// The publish task ended without an outcome (it panicked, or the
    /// runtime stopped): whether the order went out is not known.
    #[error(
        "the publish failed inside HQ ({0}); it may or may not have gone out: see GET /reconciliation before publishing it again"
    )]
    Interrupted(String),
}

/// Checks `message` may be published on `topic`, by HQ's feed or on SNS:
/// no larger than SNS takes, and an order the topic's subscribers take.
pub(crate) fn publishable(topic: Topic, message: &str) -> Result<(), FeedError> {
    if message.len() > MAX_MESSAGE_BYTES {
        return Err(FeedError::TooLarge(message.len()));
    }
    match topic.validate(message) {
        Ok(_) => Ok(()),
        Err(_) if is_enveloped(message) => Err(FeedError::Enveloped(topic.example())),
        Err(refused) => Err(refused.into()),
    }
}

/// Whether `message` is a JSON object with a `Message`: an order in an
/// envelope of its own.
fn is_enveloped(message: &str) -> bool {
    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(message)
        .is_ok_and(|object| object.contains_key("Message"))
}

/// Why the feed could not be made.
#[derive(Debug, thiserror::Error)]
pub enum FeedStartError {
    /// The signer could not be made from HQ's key.
    #[error(transparent)]
    Signing(#[from] SigningError),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// String attributes published with an order (SNS MessageAttributes), such
/// as a `traceparent`; delivered unchanged by the local feed and by SNS.
pub type MessageAttributes = BTreeMap<String, String>;

/// One published order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Published {
    /// The SNS MessageId; the services derive their Idempotency-Key from it
    /// (with the topic and the kind of fulfillment).
    pub message_id: String,
    /// Confirmed subscriptions it is being delivered to.
    pub subscribers: usize,
}

/// The feed; cheap to clone, every clone is the same feed.
#[derive(Debug, Clone)]
pub struct Feed {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    run_id: String,
    envelopes: Envelopes,
    ledger: Ledger,
    client: reqwest::Client,
    config: FeedConfig,
    subscriptions: Subscriptions,
    stats: Stats,
    /// Publishes and deliveries under way.
    in_flight: OrdersInFlight,
    permits: Semaphore,
}

/// Locks `mutex`; a panic while it was held leaves the data itself intact
/// (every change under these locks is a single step).
pub(crate) fn lock_ignoring_poison<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

impl Feed {
    /// A feed whose URLs (SubscribeURL, SigningCertURL, UnsubscribeURL) are
    /// under `base_url`, recording into `ledger` under `run_id`.
    pub fn new(
        base_url: Url,
        run_id: String,
        identity: SigningIdentity,
        ledger: Ledger,
        config: FeedConfig,
    ) -> Result<Self, FeedStartError> {
        Ok(Self {
            inner: Arc::new(Inner {
                run_id,
                envelopes: Envelopes::new(base_url, &identity)?,
                ledger,
                client: delivery::client(config.delivery_timeout)?,
                config,
                subscriptions: Subscriptions::new(config.pending_expiry),
                stats: Stats::default(),
                in_flight: OrdersInFlight::default(),
                permits: Semaphore::new(config.max_concurrent_deliveries.max(1)),
            }),
        })
    }

    /// This run's id, under which published orders are recorded.
    pub fn run_id(&self) -> &str {
        &self.inner.run_id
    }

    /// The URL the signing certificate is served at.
    pub fn cert_url(&self) -> String {
        self.inner.envelopes.cert_url().to_owned()
    }

    /// Publishes an order on `topic` to every confirmed subscription. The
    /// order is checked with the services' own parsers first.
    pub async fn publish(&self, topic: Topic, message: &str) -> Result<Published, FeedError> {
        self.publish_with(topic, message, &MessageAttributes::new()).await
    }

    /// [`Feed::publish`] with MessageAttributes, put in each envelope as SNS does.
    ///
    /// The publish runs as a task of its own, tracked as deliveries are
    /// (`in_flight`): a caller that gives up (a request timed out) does
    /// not stop it between recording the order and starting its deliveries,
    /// which left orders pending for ever, and [`Feed::drain`] waits for it.
    /// Once [`Feed::stop_publishing`] is called, publishes are refused.
    pub async fn publish_with(
        &self,
        topic: Topic,
        message: &str,
        attributes: &MessageAttributes,
    ) -> Result<Published, FeedError> {
        publishable(topic, message)?;
        let inner = Arc::clone(&self.inner);
        let message = message.to_owned();
        let attributes = attributes.clone();
        let publish = async move { inner.publish(topic, &message, &attributes).await };
        self.inner.in_flight.publish(publish).await
    }

    /// Refuses every publish from now on ([`FeedError::Stopping`]); those
    /// already under way finish, and [`Feed::drain`] waits for them.
    pub fn stop_publishing(&self) {
        self.inner.in_flight.stop_publishing();
    }

    /// Counters per topic since HQ started.
    pub fn stats(&self) -> BTreeMap<Topic, TopicStats> {
        self.inner.stats.snapshot()
    }

    /// Its orders under way: publishes and deliveries.
    pub(crate) fn orders_in_flight(&self) -> &OrdersInFlight {
        &self.inner.in_flight
    }

    /// Orders being published or delivered, retries included (subscription
    /// confirmations are not counted: no order waits on them).
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.len()
    }

    /// Waits until every order's delivery has finished, retries included,
    /// or `deadline` passes; true when everything finished. Confirmations
    /// still being retried are left to end with the process.
    pub async fn drain(&self, deadline: Duration) -> bool {
        self.inner.in_flight.drain(deadline).await
    }
}

impl Inner {
    /// Records `message` as published on `topic` and starts its deliveries.
    async fn publish(
        self: &Arc<Self>,
        topic: Topic,
        message: &str,
        attributes: &MessageAttributes,
    ) -> Result<Published, FeedError> {
        let message_id = uuid::Uuid::new_v4().to_string();
        let targets = self.subscriptions.confirmed(topic);
        // Recorded before any delivery starts, so a fulfillment can never
        // arrive for an order the ledger has not heard of.
        self.ledger
            .record_published(
                &self.run_id,
                &message_id,
                topic,
                crate::ledger::PublishedOn::Feed,
                message,
                targets.len(),
            )
            .await
            .map_err(|error| match error {
                // SQLite's or the probe's refusal: the row was not committed.
                LedgerError::Sqlite(_) | LedgerError::NoRoom { .. } => FeedError::NotRecorded(error),
                // Found after the commit (a file replaced, a task that died):
                // the row may be kept, so whether it was recorded is not known.
                error => FeedError::Ledger(error),
            })?;
        let timestamp = crate::ledger::now();
        self.stats.published(topic, targets.len());
        let subscribers = targets.len();
        for subscription in targets {
            let envelope =
                self.envelopes
                    .notification(&subscription, &message_id, message, &timestamp, attributes);
            self.spawn_delivery(subscription, envelope);
        }
        Ok(Published {
            message_id,
            subscribers,
        })
    }
}
