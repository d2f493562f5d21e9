//! The SNS-compatible order feed: topics, HTTP subscriptions confirmed the
//! way SNS confirms them, and signed deliveries retried like SNS retries them.
//!
//! A delivery is what SNS itself sends: a POST with the `x-amz-sns-*`
//! headers, `Content-Type: text/plain; charset=UTF-8`, SNS' User-Agent and
//! the JSON envelope (the order as a string in `Message`), signed with
//! SignatureVersion 2. 2xx–4xx end a delivery; 5xx, timeouts and refused
//! connections are retried per the [`RetryPolicy`].

pub mod generator;
pub mod retry;
pub mod topic;

pub use retry::{Backoff, RetryPolicy};
pub use topic::{Topic, UnknownTopic};

use crate::ledger::{DeliveryOutcome, Ledger, LedgerError};
use crate::signing::{SigningError, SigningIdentity};
use crate::sns_signer::SnsSigner;
use contracts::order::OrderError;
use contracts::sns::{
    CONTENT_TYPE, MESSAGE_ID_HEADER, MESSAGE_TYPE_HEADER, SUBSCRIPTION_ARN_HEADER, TOPIC_ARN_HEADER,
    USER_AGENT,
};
use contracts::{Envelope, MessageType, SignatureVersion};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;
use url::Url;

/// How deliveries are made.
#[derive(Debug, Clone, Copy)]
pub struct FeedConfig {
    /// When and how often failed deliveries are retried.
    pub retry: RetryPolicy,
    /// How long one delivery attempt may take (SNS: 15 s).
    pub delivery_timeout: Duration,
    /// Delivery attempts in flight at once, across all subscriptions.
    pub max_concurrent_deliveries: usize,
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            delivery_timeout: Duration::from_secs(15),
            max_concurrent_deliveries: 64,
        }
    }
}

/// Why the feed refused something.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// No such topic.
    #[error(transparent)]
    UnknownTopic(#[from] UnknownTopic),
    /// The message is not an order for the topic.
    #[error("not an order for this topic: {0}")]
    BadOrder(#[from] OrderError),
    /// The endpoint is not an http(s) URL.
    #[error("endpoint must be an http:// or https:// URL, got {0:?}")]
    BadEndpoint(String),
    /// The confirmation token matches no pending subscription of the topic.
    #[error("no subscription awaits confirmation with this token on this topic")]
    UnknownToken,
    /// No such subscription.
    #[error("no subscription {0}")]
    UnknownSubscription(String),
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
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

/// Where a subscription stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionState {
    /// The SubscriptionConfirmation was sent; nothing is delivered until it is confirmed.
    PendingConfirmation,
    /// Confirmed: notifications flow.
    Confirmed,
}

/// A subscription, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubscriptionInfo {
    /// The subscription's ARN: the topic ARN and an id.
    pub subscription_arn: String,
    /// The topic.
    pub topic: Topic,
    /// Where deliveries go.
    pub endpoint: String,
    /// Whether it was confirmed.
    pub state: SubscriptionState,
}

#[derive(Debug, Clone)]
struct Subscription {
    info: SubscriptionInfo,
    endpoint: Url,
    token: String,
}

/// Counters of one topic since HQ started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TopicStats {
    /// Orders published.
    pub published: u64,
    /// Deliveries answered 2xx/3xx.
    pub delivered: u64,
    /// Deliveries answered 4xx (never retried).
    pub rejected: u64,
    /// Deliveries that failed every attempt.
    pub failed: u64,
    /// Retry attempts made.
    pub retried: u64,
    /// Deliveries not finished yet.
    pub in_flight: u64,
}

/// One published order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Published {
    /// The SNS MessageId; the services send it on as the Idempotency-Key.
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
    base_url: Url,
    run_id: String,
    signer: SnsSigner,
    ledger: Ledger,
    client: reqwest::Client,
    config: FeedConfig,
    subscriptions: Mutex<Vec<Subscription>>,
    stats: Mutex<BTreeMap<Topic, TopicStats>>,
    tracker: TaskTracker,
    permits: Semaphore,
}

/// How one attempt went.
enum Attempt {
    Done(DeliveryOutcome, u16),
    Retry(String),
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
        let mut cert_url = base_url.clone();
        cert_url.set_path(&format!("/{}", identity.cert_file_name()));
        cert_url.set_query(None);
        let signer = identity.signer(cert_url.as_str())?;
        let client = reqwest::Client::builder()
            .connect_timeout(config.delivery_timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .build()?;
        Ok(Self {
            inner: Arc::new(Inner {
                base_url,
                run_id,
                signer,
                ledger,
                client,
                config,
                subscriptions: Mutex::new(Vec::new()),
                stats: Mutex::new(
                    Topic::ALL
                        .into_iter()
                        .map(|t| (t, TopicStats::default()))
                        .collect(),
                ),
                tracker: TaskTracker::new(),
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
        self.inner.signer.cert_url().to_owned()
    }

    /// Subscribes an HTTP(S) endpoint to `topic` and sends it a
    /// SubscriptionConfirmation; nothing else is delivered until it confirms.
    pub fn subscribe(&self, topic: Topic, endpoint: &str) -> Result<SubscriptionInfo, FeedError> {
        let subscription = self.add_pending(topic, endpoint)?;
        let info = subscription.info.clone();
        let envelope = self.inner.confirmation(&subscription);
        let inner = Arc::clone(&self.inner);
        self.inner
            .tracker
            .spawn(async move { inner.deliver(subscription, envelope).await });
        Ok(info)
    }

    /// Subscribes an HTTP(S) endpoint to `topic` and sends it a fresh
    /// SubscriptionConfirmation every `every` until it confirms; returns the
    /// confirmed subscription. For endpoints that may not be up yet, such as
    /// the subscriptions HQ makes at start-up in a container stack. Runs until
    /// confirmed; drop or abort the future to give up.
    pub async fn subscribe_until_confirmed(
        &self,
        topic: Topic,
        endpoint: &str,
        every: Duration,
    ) -> Result<SubscriptionInfo, FeedError> {
        let subscription = self.add_pending(topic, endpoint)?;
        let arn = subscription.info.subscription_arn.clone();
        let mut attempts: u64 = 0;
        loop {
            attempts += 1;
            let envelope = self.inner.confirmation(&subscription);
            let outcome = match serde_json::to_string(&envelope) {
                Ok(body) => match self.inner.attempt(&subscription, &envelope, &body).await {
                    Attempt::Done(_, status) => format!("answered {status}"),
                    Attempt::Retry(why) => why,
                },
                Err(error) => format!("could not serialize the confirmation: {error}"),
            };
            let current = self
                .inner
                .lock_subscriptions()
                .iter()
                .find(|s| s.info.subscription_arn == arn)
                .map(|s| s.info.clone());
            match current {
                None => return Err(FeedError::UnknownSubscription(arn)),
                Some(info) if info.state == SubscriptionState::Confirmed => return Ok(info),
                Some(info) => {
                    // The first miss and then one in ten: an endpoint that is
                    // still starting is expected, not alarming.
                    if attempts % 10 == 1 {
                        tracing::info!(topic = %topic, endpoint = %info.endpoint, attempts,
                            "subscription not confirmed yet ({outcome}); sending the confirmation again every {every:?}");
                    }
                }
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Adds a subscription pending confirmation.
    fn add_pending(&self, topic: Topic, endpoint: &str) -> Result<Subscription, FeedError> {
        let url = Url::parse(endpoint.trim())
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
            .ok_or_else(|| FeedError::BadEndpoint(endpoint.to_owned()))?;
        let subscription = Subscription {
            info: SubscriptionInfo {
                subscription_arn: format!("{}:{}", topic.arn(), uuid::Uuid::new_v4()),
                topic,
                endpoint: url.to_string(),
                state: SubscriptionState::PendingConfirmation,
            },
            endpoint: url,
            token: hex::encode(rand::random::<[u8; 32]>()),
        };
        self.inner.lock_subscriptions().push(subscription.clone());
        tracing::info!(topic = %topic, endpoint = %subscription.info.endpoint, "subscription pending confirmation");
        Ok(subscription)
    }

    /// Confirms the subscription holding `token` (the SubscribeURL's GET);
    /// returns its ARN. Confirming twice is harmless.
    pub fn confirm(&self, topic_arn: &str, token: &str) -> Result<String, FeedError> {
        let mut subscriptions = self.inner.lock_subscriptions();
        let subscription = subscriptions
            .iter_mut()
            .find(|s| s.info.topic.arn() == topic_arn && s.token == token)
            .ok_or(FeedError::UnknownToken)?;
        if subscription.info.state != SubscriptionState::Confirmed {
            subscription.info.state = SubscriptionState::Confirmed;
            tracing::info!(topic = %subscription.info.topic, endpoint = %subscription.info.endpoint, "subscription confirmed");
        }
        Ok(subscription.info.subscription_arn.clone())
    }

    /// Deletes a subscription (the UnsubscribeURL's GET).
    pub fn unsubscribe(&self, subscription_arn: &str) -> Result<(), FeedError> {
        let mut subscriptions = self.inner.lock_subscriptions();
        let before = subscriptions.len();
        subscriptions.retain(|s| s.info.subscription_arn != subscription_arn);
        if subscriptions.len() == before {
            return Err(FeedError::UnknownSubscription(subscription_arn.to_owned()));
        }
        tracing::info!(subscription = %subscription_arn, "unsubscribed");
        Ok(())
    }

    /// Every subscription.
    pub fn subscriptions(&self) -> Vec<SubscriptionInfo> {
        self.inner
            .lock_subscriptions()
            .iter()
            .map(|s| s.info.clone())
            .collect()
    }

    /// Publishes an order on `topic` to every confirmed subscription. The
    /// order is checked with the services' own parsers first.
    pub async fn publish(&self, topic: Topic, message: &str) -> Result<Published, FeedError> {
        topic.validate(message)?;
        let message_id = uuid::Uuid::new_v4().to_string();
        let targets: Vec<Subscription> = self
            .inner
            .lock_subscriptions()
            .iter()
            .filter(|s| s.info.topic == topic && s.info.state == SubscriptionState::Confirmed)
            .cloned()
            .collect();
        // Recorded before any delivery starts, so a fulfillment can never
        // arrive for an order the ledger has not heard of.
        self.inner
            .ledger
            .record_published(
                &self.inner.run_id,
                &message_id,
                topic.as_str(),
                message,
                targets.len(),
            )
            .await?;
        let timestamp = crate::ledger::now();
        {
            let mut stats = self.inner.lock_stats();
            let entry = stats.entry(topic).or_default();
            entry.published += 1;
            entry.in_flight += targets.len() as u64;
        }
        for subscription in &targets {
            let envelope = self
                .inner
                .notification(subscription, &message_id, message, &timestamp);
            let inner = Arc::clone(&self.inner);
            let subscription = subscription.clone();
            self.inner
                .tracker
                .spawn(async move { inner.deliver(subscription, envelope).await });
        }
        Ok(Published {
            message_id,
            subscribers: targets.len(),
        })
    }

    /// Counters per topic since HQ started.
    pub fn stats(&self) -> BTreeMap<Topic, TopicStats> {
        self.inner.lock_stats().clone()
    }

    /// Deliveries (confirmations included) not finished yet.
    pub fn in_flight(&self) -> usize {
        self.inner.tracker.len()
    }

    /// Waits until every delivery has finished, retries included, or
    /// `deadline` passes; true when everything finished.
    pub async fn drain(&self, deadline: Duration) -> bool {
        self.inner.tracker.close();
        let finished = tokio::time::timeout(deadline, self.inner.tracker.wait())
            .await
            .is_ok();
        self.inner.tracker.reopen();
        finished
    }
}

impl Inner {
    fn lock_subscriptions(&self) -> MutexGuard<'_, Vec<Subscription>> {
        // A panic while holding the lock leaves the list itself intact.
        self.subscriptions
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn lock_stats(&self) -> MutexGuard<'_, BTreeMap<Topic, TopicStats>> {
        self.stats.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    fn action_url(&self, pairs: &[(&str, &str)]) -> String {
        let mut url = self.base_url.clone();
        url.set_path("/");
        url.query_pairs_mut().clear().extend_pairs(pairs);
        url.to_string()
    }

    fn confirmation(&self, subscription: &Subscription) -> Envelope {
        let topic_arn = subscription.info.topic.arn();
        let mut envelope = Envelope {
            message_type: MessageType::SubscriptionConfirmation,
            message_id: uuid::Uuid::new_v4().to_string(),
            token: Some(subscription.token.clone()),
            topic_arn: topic_arn.clone(),
            subject: None,
            message: format!(
                "You have chosen to subscribe to the topic {topic_arn}.\n\
                 To confirm the subscription, visit the SubscribeURL included in this message."
            ),
            subscribe_url: Some(self.action_url(&[
                ("Action", "ConfirmSubscription"),
                ("TopicArn", &topic_arn),
                ("Token", &subscription.token),
            ])),
            timestamp: crate::ledger::now(),
            // Set by signing.
            signature_version: SignatureVersion::Unsupported(String::new()),
            signature: String::new(),
            signing_cert_url: String::new(),
            unsubscribe_url: None,
            message_attributes: None,
        };
        self.signer.sign(&mut envelope, SignatureVersion::V2);
        envelope
    }

    fn notification(
        &self,
        subscription: &Subscription,
        message_id: &str,
        message: &str,
        timestamp: &str,
    ) -> Envelope {
        let mut envelope = Envelope {
            message_type: MessageType::Notification,
            message_id: message_id.to_owned(),
            token: None,
            topic_arn: subscription.info.topic.arn(),
            subject: None,
            message: message.to_owned(),
            subscribe_url: None,
            timestamp: timestamp.to_owned(),
            // Set by signing.
            signature_version: SignatureVersion::Unsupported(String::new()),
            signature: String::new(),
            signing_cert_url: String::new(),
            unsubscribe_url: Some(self.action_url(&[
                ("Action", "Unsubscribe"),
                ("SubscriptionArn", &subscription.info.subscription_arn),
            ])),
            message_attributes: None,
        };
        self.signer.sign(&mut envelope, SignatureVersion::V2);
        envelope
    }

    /// Delivers `envelope` to `subscription`, retrying per the policy.
    async fn deliver(self: Arc<Self>, subscription: Subscription, envelope: Envelope) {
        let topic = subscription.info.topic;
        let is_notification = envelope.message_type == MessageType::Notification;
        let body = match serde_json::to_string(&envelope) {
            Ok(body) => body,
            Err(error) => {
                tracing::error!(%error, "could not serialize an SNS envelope");
                return;
            }
        };
        let retry = self.config.retry;
        let mut attempts = 0;
        let outcome = loop {
            attempts += 1;
            match self.attempt(&subscription, &envelope, &body).await {
                Attempt::Done(outcome, status) => {
                    if outcome == DeliveryOutcome::Rejected {
                        tracing::warn!(%topic, endpoint = %subscription.info.endpoint, status,
                            message_id = %envelope.message_id, "delivery refused with 4xx; SNS does not retry it");
                    }
                    break outcome;
                }
                Attempt::Retry(why) if attempts <= retry.num_retries => {
                    let delay = retry.delay(attempts);
                    tracing::warn!(%topic, endpoint = %subscription.info.endpoint, attempt = attempts,
                        message_id = %envelope.message_id, "delivery failed ({why}); retrying in {delay:?}");
                    if is_notification {
                        self.lock_stats().entry(topic).or_default().retried += 1;
                    }
                    tokio::time::sleep(delay).await;
                }
                Attempt::Retry(why) => {
                    tracing::error!(%topic, endpoint = %subscription.info.endpoint, attempts,
                        message_id = %envelope.message_id, "delivery failed ({why}); no retries left");
                    break DeliveryOutcome::Failed;
                }
            }
        };
        if !is_notification {
            return;
        }
        {
            let mut stats = self.lock_stats();
            let entry = stats.entry(topic).or_default();
            entry.in_flight = entry.in_flight.saturating_sub(1);
            match outcome {
                DeliveryOutcome::Delivered => entry.delivered += 1,
                DeliveryOutcome::Rejected => entry.rejected += 1,
                DeliveryOutcome::Failed => entry.failed += 1,
            }
        }
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

    async fn attempt(&self, subscription: &Subscription, envelope: &Envelope, body: &str) -> Attempt {
        let Ok(_permit) = self.permits.acquire().await else {
            return Attempt::Retry("the feed is shutting down".into());
        };
        let mut request = self
            .client
            .post(subscription.endpoint.clone())
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
                let _ = response.bytes().await;
                if status.is_server_error() {
                    Attempt::Retry(format!("answered {status}"))
                } else if status.is_client_error() {
                    Attempt::Done(DeliveryOutcome::Rejected, status.as_u16())
                } else {
                    Attempt::Done(DeliveryOutcome::Delivered, status.as_u16())
                }
            }
            Err(error) if error.is_timeout() => Attempt::Retry("no answer in time".into()),
            Err(error) if error.is_connect() => Attempt::Retry("connection refused".into()),
            Err(error) => Attempt::Retry(format!("transport error: {error}")),
        }
    }
}
