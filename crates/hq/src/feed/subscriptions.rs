//! The subscription registry: HTTP(S) endpoints subscribed to a topic,
//! pending until they GET their SubscribeURL, as SNS confirms them, and
//! deleted if they have not after [`super::FeedConfig::pending_expiry`]
//! (three days, as on SNS).

use super::resend::{NOT_CONFIRMED_LOG_EVERY, Resend};
use super::{Endpoint, Feed, FeedError, Topic, lock_ignoring_poison};
use serde::Serialize;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

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
    /// Where deliveries go, as shown: credentials and query values masked
    /// (`http://***@host/path?token=***`).
    pub endpoint: String,
    /// Whether it was confirmed.
    pub state: SubscriptionState,
}

/// A subscription with what only HQ sees: the endpoint and the token.
#[derive(Clone)]
pub(super) struct Subscription {
    /// What is listed.
    pub(super) info: SubscriptionInfo,
    /// Where deliveries go.
    pub(super) endpoint: Endpoint,
    /// The secret in the SubscribeURL.
    pub(super) token: String,
    /// Its share of the feed's delivery slots ([`super::FeedConfig::per_subscription`]),
    /// shared by every copy of it.
    pub(super) slots: Arc<Semaphore>,
    /// Its deliveries of orders waiting or under way, shared likewise
    /// (bounded by [`super::FeedConfig::max_waiting_per_subscription`]).
    pub(super) waiting: Arc<AtomicUsize>,
    /// Its deliveries failed at once for want of room (for the log line).
    pub(super) turned_away: Arc<AtomicUsize>,
    /// Set once it is deleted (unsubscribed, or expired pending), shared by
    /// every copy: its deliveries under way, retrying or waiting for a slot
    /// send nothing more.
    removed: Arc<AtomicBool>,
    /// When it was made: a pending one expires a set time after.
    created: Instant,
}

impl Subscription {
    /// Whether it was deleted since this copy was taken.
    pub(super) fn removed(&self) -> bool {
        self.removed.load(Ordering::Relaxed)
    }

    /// Whether it was still pending `expiry` after it was made.
    fn expired(&self, expiry: Duration) -> bool {
        self.info.state == SubscriptionState::PendingConfirmation && self.created.elapsed() >= expiry
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// Every subscription, and how long a pending one lives.
#[derive(Debug)]
pub(super) struct Subscriptions {
    all: Mutex<Vec<Subscription>>,
    /// How long a subscription may stay pending before it is deleted.
    expiry: Duration,
}

impl Subscriptions {
    /// No subscriptions yet; pending ones are deleted `expiry` after they were made.
    pub(super) fn new(expiry: Duration) -> Self {
        Self {
            all: Mutex::new(Vec::new()),
            expiry,
        }
    }

    /// The subscriptions, those pending for longer than the expiry deleted
    /// first (as SNS deletes them; checked on use, so no task is needed for it).
    fn live(&self) -> std::sync::MutexGuard<'_, Vec<Subscription>> {
        let mut subscriptions = lock_ignoring_poison(&self.all);
        subscriptions.retain(|s| {
            let expired = s.expired(self.expiry);
            if expired {
                s.removed.store(true, Ordering::Relaxed);
                tracing::info!(topic = %s.info.topic, endpoint = %s.info.endpoint, expiry = ?self.expiry,
                    "subscription deleted: not confirmed in time, as SNS deletes one");
            }
            !expired
        });
        subscriptions
    }

    /// The subscription of `endpoint` to `topic`: the one there is, as SNS
    /// answers a Subscribe it has seen (one subscription, and so one
    /// delivery of each order, per endpoint), or a new one pending
    /// confirmation that may hold `slots` deliveries at once.
    fn add_pending(&self, topic: Topic, endpoint: Endpoint, slots: usize) -> Subscription {
        let mut subscriptions = self.live();
        if let Some(existing) = subscriptions
            .iter()
            .find(|s| s.info.topic == topic && s.endpoint == endpoint)
        {
            return existing.clone();
        }
        let subscription = Subscription {
            info: SubscriptionInfo {
                subscription_arn: format!("{}:{}", topic.arn(), uuid::Uuid::new_v4()),
                topic,
                endpoint: endpoint.to_string(),
                state: SubscriptionState::PendingConfirmation,
            },
            endpoint,
            token: hex::encode(rand::random::<[u8; 32]>()),
            slots: Arc::new(Semaphore::new(slots)),
            waiting: Arc::default(),
            turned_away: Arc::default(),
            removed: Arc::default(),
            created: Instant::now(),
        };
        subscriptions.push(subscription.clone());
        tracing::info!(topic = %topic, endpoint = %subscription.info.endpoint, "subscription pending confirmation");
        subscription
    }

    /// The subscription `subscription_arn` as listed, if it still exists.
    fn find(&self, subscription_arn: &str) -> Option<SubscriptionInfo> {
        self.live()
            .iter()
            .find(|s| s.info.subscription_arn == subscription_arn)
            .map(|s| s.info.clone())
    }

    /// Confirms the subscription holding `token` (the SubscribeURL's GET);
    /// returns its ARN. Confirming twice is harmless; the token of one
    /// that expired is as unknown as one never given.
    fn confirm(&self, topic_arn: &str, token: &str) -> Result<String, FeedError> {
        let mut subscriptions = self.live();
        let subscription = subscriptions
            .iter_mut()
            // The token is the confirmation's only proof: compared as
            // every credential is.
            .find(|s| {
                s.info.topic.arn() == topic_arn
                    && platform::secret::same_secret(s.token.as_bytes(), token.as_bytes())
            })
            .ok_or(FeedError::UnknownToken)?;
        if subscription.info.state != SubscriptionState::Confirmed {
            subscription.info.state = SubscriptionState::Confirmed;
            tracing::info!(topic = %subscription.info.topic, endpoint = %subscription.info.endpoint, "subscription confirmed");
        }
        Ok(subscription.info.subscription_arn.clone())
    }

    /// Deletes a subscription (the UnsubscribeURL's GET).
    fn remove(&self, subscription_arn: &str) -> Result<(), FeedError> {
        let mut subscriptions = self.live();
        let before = subscriptions.len();
        subscriptions.retain(|s| {
            let removed = s.info.subscription_arn == subscription_arn;
            if removed {
                s.removed.store(true, Ordering::Relaxed);
            }
            !removed
        });
        if subscriptions.len() == before {
            return Err(FeedError::UnknownSubscription(subscription_arn.to_owned()));
        }
        tracing::info!(subscription = %subscription_arn, "unsubscribed");
        Ok(())
    }

    /// Every subscription, as listed.
    fn list(&self) -> Vec<SubscriptionInfo> {
        self.live().iter().map(|s| s.info.clone()).collect()
    }

    /// The confirmed subscriptions of `topic`: where its orders go. (On
    /// every publish: the expired are left for the next [`Self::live`],
    /// since they are pending and so never among these.)
    pub(super) fn confirmed(&self, topic: Topic) -> Vec<Subscription> {
        lock_ignoring_poison(&self.all)
            .iter()
            .filter(|s| s.info.topic == topic && s.info.state == SubscriptionState::Confirmed)
            .cloned()
            .collect()
    }
}

impl Feed {
    /// Subscribes an HTTP(S) endpoint to `topic` and sends it a
    /// SubscriptionConfirmation; nothing else is delivered until it confirms.
    /// An endpoint already subscribed to `topic` keeps its subscription: a
    /// confirmed one is returned as it is, a pending one is sent its
    /// confirmation again.
    pub fn subscribe(&self, topic: Topic, endpoint: &str) -> Result<SubscriptionInfo, FeedError> {
        let subscription = self.inner.subscriptions.add_pending(
            topic,
            Endpoint::parse(endpoint)?,
            self.inner.config.per_subscription(),
        );
        let info = subscription.info.clone();
        if info.state == SubscriptionState::Confirmed {
            return Ok(info);
        }
        let envelope = self.inner.envelopes.confirmation(&subscription);
        self.inner.spawn_delivery(subscription, envelope);
        Ok(info)
    }

    /// Subscribes an HTTP(S) endpoint to `topic` and sends it a fresh
    /// SubscriptionConfirmation until it confirms, waiting `first` after the
    /// first, then twice as long each time up to
    /// [`crate::config::MAX_SUBSCRIBE_EVERY`]; returns the confirmed
    /// subscription. For endpoints that may not be up yet, such as the
    /// subscriptions HQ makes at start-up in a container stack. A
    /// subscription that expires unconfirmed is made anew at the next send,
    /// as SNS' `Subscribe` would make it; one unsubscribed ends this with
    /// [`FeedError::UnknownSubscription`]. Runs until confirmed; drop or
    /// abort the future to give up.
    pub async fn subscribe_until_confirmed(
        &self,
        topic: Topic,
        endpoint: Endpoint,
        first: Duration,
    ) -> Result<SubscriptionInfo, FeedError> {
        let slots = self.inner.config.per_subscription();
        let expiry = self.inner.config.pending_expiry;
        let subscriptions = &self.inner.subscriptions;
        let mut subscription = subscriptions.add_pending(topic, endpoint.clone(), slots);
        let mut resend = Resend::new(first);
        loop {
            if subscription.expired(expiry) {
                // Deleted (or about to be): a new one, with a new token, or
                // the one there is if it was confirmed meanwhile.
                subscription = subscriptions.add_pending(topic, endpoint.clone(), slots);
            }
            let envelope = self.inner.envelopes.confirmation(&subscription);
            let outcome = self.inner.send_once(&subscription, &envelope).await;
            let arn = &subscription.info.subscription_arn;
            match subscriptions.find(arn) {
                Some(info) if info.state == SubscriptionState::Confirmed => return Ok(info),
                Some(_) => {}
                // It expired while this send was under way: made anew above.
                None if subscription.expired(expiry) => {}
                None => return Err(FeedError::UnknownSubscription(arn.clone())),
            }
            let miss = resend.missed(Instant::now());
            if miss.log {
                // An endpoint that is still starting is expected, not alarming.
                tracing::info!(topic = %topic, endpoint = %subscription.info.endpoint, attempts = miss.misses,
                    "subscription not confirmed yet ({outcome}); sending the confirmation again in {:?}, \
                     waiting twice as long each time up to {:?} (this line again in {NOT_CONFIRMED_LOG_EVERY:?} \
                     if still unconfirmed)", miss.wait, resend.cap());
            }
            tokio::time::sleep(miss.wait).await;
        }
    }

    /// Confirms the subscription holding `token` (the SubscribeURL's GET);
    /// returns its ARN. Confirming twice is harmless.
    pub fn confirm(&self, topic_arn: &str, token: &str) -> Result<String, FeedError> {
        self.inner.subscriptions.confirm(topic_arn, token)
    }

    /// Deletes a subscription (the UnsubscribeURL's GET).
    pub fn unsubscribe(&self, subscription_arn: &str) -> Result<(), FeedError> {
        self.inner.subscriptions.remove(subscription_arn)
    }

    /// Every subscription.
    pub fn subscriptions(&self) -> Vec<SubscriptionInfo> {
        self.inner.subscriptions.list()
    }
}
