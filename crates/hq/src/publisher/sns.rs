//! Publishing to AWS SNS with the AWS SDK: `Publish` to the topics named in
//! `HQ_SNS_TOPIC_ARNS`, `Subscribe` (http/https) and
//! `ListSubscriptionsByTopic` for the portal. SNS signs, delivers and
//! retries; HQ records what it published, under SNS' MessageId.

use super::{SnsStartError, check_topic_arns};
use crate::feed::in_flight::OrdersInFlight;
use crate::feed::resend::{NOT_CONFIRMED_LOG_EVERY, Resend};
use crate::feed::{
    Endpoint, FeedError, MessageAttributes, Published, SubscriptionInfo, SubscriptionState, Topic,
};
use crate::ledger::Ledger;
use aws_sdk_sns::config::http::HttpResponse;
use aws_sdk_sns::config::retry::RetryConfig;
use aws_sdk_sns::config::timeout::TimeoutConfig;
use aws_sdk_sns::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sns::operation::publish::PublishError;
use aws_sdk_sns::operation::unsubscribe::UnsubscribeError;
use aws_sdk_sns::types::MessageAttributeValue;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a topic's listing of subscriptions is reused before SNS is
/// asked again. A publish counts the confirmed ones (the count only labels
/// unfulfilled orders: unrouted or pending) and anyone may `GET /topics`,
/// while SNS throttles `ListSubscriptionsByTopic` per account: a listing per
/// order or per request let a client polling `/topics` get orders refused.
const LISTING_TTL: Duration = Duration::from_secs(10);

/// How long SNS' refusal of a listing is the answer to every caller: those
/// that waited for that listing (one SNS that never answers is 10 s a
/// call) get it at once rather than each asking again in turn.
const FAILED_LISTING_TTL: Duration = Duration::from_secs(1);

/// A topic's HTTP(S) subscriptions as last listed, and SNS' last refusal.
#[derive(Debug, Default)]
struct Listing {
    /// The last listing SNS gave, and when.
    listed: Option<(Instant, Vec<SubscriptionInfo>)>,
    /// Why the last attempt failed, and when, if it did.
    failed: Option<(Instant, String)>,
}

/// How long one attempt of an SNS call may take. The SDK's defaults bound
/// only the connection (3.1 s): an SNS endpoint that took the request and
/// never answered held a publish, the generator behind it, and HQ's stop
/// for ever.
pub const SNS_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long an SNS call may take with its retries (`Publish` has none: it
/// takes at most [`SNS_ATTEMPT_TIMEOUT`]). A publish is two calls (the
/// subscriptions counted, then `Publish`), `GET /topics` one per topic.
pub const SNS_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// HQ's three topics on SNS. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SnsTopics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: aws_sdk_sns::Client,
    arns: BTreeMap<Topic, String>,
    ledger: Ledger,
    run_id: String,
    /// Per topic: its last listing, behind a lock held while SNS is asked,
    /// so that callers arriving meanwhile wait for that one answer.
    listings: BTreeMap<Topic, tokio::sync::Mutex<Listing>>,
    /// Publishes under way: each runs to its end whoever waits for it.
    in_flight: OrdersInFlight,
}

/// An SDK error with its causes, as one line.
fn sns_error<E: ProvideErrorMetadata + std::error::Error + 'static>(action: &str, error: E) -> FeedError {
    FeedError::Sns(format!("{action}: {}", said(&error)))
}

/// What SNS said: its error's code and message (`NotFound: Topic does not
/// exist`) or, with none (no answer, no connection, no credentials), the
/// chain of causes; never the SDK's `Debug` dump of the whole response.
fn said<E: ProvideErrorMetadata + std::error::Error + 'static>(error: &E) -> String {
    match error.code() {
        Some(code) => format!("{code}: {}", error.message().unwrap_or("no message")),
        None => platform::error::Causes(error).to_string(),
    }
}

/// What a failed `Publish` tells the caller. Only a refusal (4xx: bad
/// request, no such topic, not authorized, throttled) or a request never
/// sent means SNS does not have the order; a 5xx (SNS' own InternalError,
/// or a proxy's 502/504 in front of it), a timeout or a connection lost may
/// come after SNS took it.
fn publish_error(error: SdkError<PublishError, HttpResponse>) -> FeedError {
    let refused = match &error {
        SdkError::ServiceError(service) => service.raw().status().is_client_error(),
        SdkError::ConstructionFailure(_) => true,
        _ => false,
    };
    if refused {
        sns_error("Publish", error)
    } else {
        FeedError::SnsOutcomeUnknown(said(&error))
    }
}

/// SNS names a subscription awaiting confirmation `PendingConfirmation`
/// (listings) or `pending confirmation` (Subscribe) instead of an ARN.
fn state_of(subscription_arn: &str) -> SubscriptionState {
    if subscription_arn.starts_with("arn:") {
        SubscriptionState::Confirmed
    } else {
        SubscriptionState::PendingConfirmation
    }
}

impl SnsTopics {
    /// The topics `arns` (each of [`Topic::ALL`] must be there) through
    /// `config`'s client (each call bounded by [`SNS_ATTEMPT_TIMEOUT`] and
    /// [`SNS_CALL_TIMEOUT`]), recording into `ledger` under `run_id`.
    pub fn new(
        config: &aws_config::SdkConfig,
        arns: BTreeMap<Topic, String>,
        ledger: Ledger,
        run_id: String,
    ) -> Result<Self, SnsStartError> {
        check_topic_arns(&arns)?;
        let timeouts = config
            .timeout_config()
            .map_or_else(TimeoutConfig::builder, TimeoutConfig::to_builder)
            .operation_attempt_timeout(SNS_ATTEMPT_TIMEOUT)
            .operation_timeout(SNS_CALL_TIMEOUT)
            .build();
        let sns_config = aws_sdk_sns::config::Builder::from(config)
            .timeout_config(timeouts)
            .build();
        Ok(Self {
            inner: Arc::new(Inner {
                client: aws_sdk_sns::Client::from_conf(sns_config),
                arns,
                ledger,
                run_id,
                listings: Topic::ALL
                    .iter()
                    .map(|&topic| (topic, tokio::sync::Mutex::default()))
                    .collect(),
                in_flight: OrdersInFlight::default(),
            }),
        })
    }

    /// The ARN of `topic` (present: checked in [`SnsTopics::new`]).
    pub fn topic_arn(&self, topic: Topic) -> &str {
        self.inner
            .arns
            .get(&topic)
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// Publishes `message` on `topic` with `attributes` as String
    /// MessageAttributes, and records it under the MessageId SNS returns.
    /// The publish runs to its end as a task of its own (`OrdersInFlight`):
    /// a caller that gives up cannot leave an order on SNS that the ledger
    /// never heard of. Refused once HQ stops publishing.
    pub async fn publish(
        &self,
        topic: Topic,
        message: &str,
        attributes: &MessageAttributes,
    ) -> Result<Published, FeedError> {
        crate::feed::publishable(topic, message)?;
        let topics = self.clone();
        let (message, attributes) = (message.to_owned(), attributes.clone());
        let publish = async move { topics.publish_now(topic, &message, &attributes).await };
        self.inner.in_flight.publish(publish).await
    }

    /// Publishes under way (SNS delivers them out of HQ's sight).
    pub(crate) fn orders_in_flight(&self) -> &OrdersInFlight {
        &self.inner.in_flight
    }

    /// [`SnsTopics::publish`]'s work, in the task that runs it.
    async fn publish_now(
        &self,
        topic: Topic,
        message: &str,
        attributes: &MessageAttributes,
    ) -> Result<Published, FeedError> {
        let topic_arn = self.topic_arn(topic);
        // Counted first: once SNS has the order, only recording it may fail.
        let subscribers = self.confirmed_count(topic).await?;
        // The last point where HQ may still refuse: a stop that began while
        // the subscriptions were counted leaves the drain only publishes
        // already sent (one attempt, SNS_ATTEMPT_TIMEOUT, and the record).
        if self.inner.in_flight.is_stopping() {
            return Err(FeedError::Stopping);
        }
        let mut sns_attributes = HashMap::new();
        for (name, value) in attributes {
            let value = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| FeedError::Sns(format!("MessageAttributes: {}", platform::error::Causes(&e))))?;
            sns_attributes.insert(name.clone(), value);
        }
        let output = self
            .inner
            .client
            .publish()
            .topic_arn(topic_arn)
            .message(message)
            .set_message_attributes((!sns_attributes.is_empty()).then_some(sns_attributes))
            // A standard topic's Publish is not idempotent: a retry after an
            // attempt SNS took but did not answer in time publishes a second
            // order, which the ledger would never hear of.
            .customize()
            .config_override(aws_sdk_sns::config::Builder::default().retry_config(RetryConfig::disabled()))
            .send()
            .await
            .map_err(publish_error)?;
        // Taken, but with no MessageId HQ cannot record it under the key the
        // services will fulfil it by.
        let message_id = output
            .message_id()
            .ok_or_else(|| FeedError::SnsOutcomeUnknown("it answered without a MessageId".into()))?
            .to_owned();
        // SNS may deliver before this is written (an emulator does so before
        // answering): harmless, reconciliation pairs by key when asked.
        self.inner
            .ledger
            .record_published(
                &self.inner.run_id,
                &message_id,
                topic,
                crate::ledger::PublishedOn::Sns(topic_arn),
                message,
                subscribers,
            )
            .await
            .map_err(|source| FeedError::PublishedNotRecorded {
                message_id: message_id.clone(),
                source,
            })?;
        Ok(Published {
            message_id,
            subscribers,
        })
    }

    /// Confirmed subscriptions of `topic`, from its listing ([`Self::listed`]).
    /// When SNS refuses a new listing (throttled, say), the last one stands
    /// in, however old: the count labels an order and must not refuse it.
    async fn confirmed_count(&self, topic: Topic) -> Result<usize, FeedError> {
        let confirmed = |listed: &[SubscriptionInfo]| {
            listed
                .iter()
                .filter(|s| s.state == SubscriptionState::Confirmed)
                .count()
        };
        match self.listed(topic).await {
            Ok(listed) => Ok(confirmed(&listed)),
            Err(error) => {
                let last = match self.inner.listings.get(&topic) {
                    Some(slot) => slot
                        .lock()
                        .await
                        .listed
                        .as_ref()
                        .map(|(_, listed)| confirmed(listed)),
                    None => None,
                };
                let count = last.ok_or(error)?;
                tracing::warn!(%topic, subscribers = count,
                    "SNS did not list the topic's subscriptions; the order is labelled with the last count");
                Ok(count)
            }
        }
    }

    /// The HTTP(S) subscriptions of `topic`, listed at most every
    /// [`LISTING_TTL`], one listing at a time per topic.
    async fn listed(&self, topic: Topic) -> Result<Vec<SubscriptionInfo>, FeedError> {
        let Some(slot) = self.inner.listings.get(&topic) else {
            return self.list(topic).await;
        };
        let mut listing = slot.lock().await;
        if let Some((_, listed)) = listing
            .listed
            .as_ref()
            .filter(|(at, _)| at.elapsed() < LISTING_TTL)
        {
            return Ok(listed.clone());
        }
        if let Some((_, why)) = listing
            .failed
            .as_ref()
            .filter(|(at, _)| at.elapsed() < FAILED_LISTING_TTL)
        {
            return Err(FeedError::Sns(why.clone()));
        }
        match self.list(topic).await {
            Ok(listed) => {
                listing.listed = Some((Instant::now(), listed.clone()));
                listing.failed = None;
                Ok(listed)
            }
            Err(FeedError::Sns(why)) => {
                listing.failed = Some((Instant::now(), why.clone()));
                Err(FeedError::Sns(why))
            }
            Err(other) => Err(other),
        }
    }

    /// Subscribes `endpoint` to `topic` (SNS sends it a confirmation; for a
    /// pending subscription, again).
    pub async fn subscribe(&self, topic: Topic, endpoint: &Endpoint) -> Result<SubscriptionInfo, FeedError> {
        let output = self
            .inner
            .client
            .subscribe()
            .topic_arn(self.topic_arn(topic))
            .protocol(endpoint.url().scheme())
            .endpoint(endpoint.url().as_str())
            .send()
            .await
            // SNS may quote the endpoint, which may hold a password: masked.
            .map_err(|e| match sns_error("Subscribe", e) {
                FeedError::Sns(text) => {
                    FeedError::Sns(text.replace(endpoint.url().as_str(), &endpoint.shown()))
                }
                other => other,
            })?;
        let subscription_arn = output
            .subscription_arn()
            .unwrap_or("pending confirmation")
            .to_owned();
        let state = state_of(&subscription_arn);
        tracing::info!(%topic, %endpoint, ?state, "subscribed on SNS");
        // The next listing asks SNS: the subscription shows at once.
        if let Some(slot) = self.inner.listings.get(&topic) {
            *slot.lock().await = Listing::default();
        }
        Ok(SubscriptionInfo {
            subscription_arn,
            topic,
            endpoint: endpoint.to_string(),
            state,
        })
    }

    /// Deletes the subscription `subscription_arn` of one of HQ's topics.
    pub async fn unsubscribe(&self, subscription_arn: &str) -> Result<(), FeedError> {
        // A subscription's ARN is its topic's ARN and an id: HQ's admin
        // removes subscriptions of HQ's topics, no other in the account.
        let topic = Topic::ALL
            .iter()
            .copied()
            .find(|&topic| {
                subscription_arn
                    .strip_prefix(self.topic_arn(topic))
                    .is_some_and(|id| id.starts_with(':'))
            })
            .ok_or_else(|| FeedError::UnknownSubscription(subscription_arn.to_owned()))?;
        self.inner
            .client
            .unsubscribe()
            .subscription_arn(subscription_arn)
            .send()
            .await
            .map_err(|error| match &error {
                // A malformed id under a topic's ARN is no subscription either.
                SdkError::ServiceError(service)
                    if matches!(
                        service.err(),
                        UnsubscribeError::NotFoundException(_)
                            | UnsubscribeError::InvalidParameterException(_)
                    ) =>
                {
                    FeedError::UnknownSubscription(subscription_arn.to_owned())
                }
                _ => sns_error("Unsubscribe", error),
            })?;
        tracing::info!(%topic, subscription = %subscription_arn, "unsubscribed on SNS");
        // The next listing asks SNS: the subscription is gone at once.
        if let Some(slot) = self.inner.listings.get(&topic) {
            *slot.lock().await = Listing::default();
        }
        Ok(())
    }

    /// Subscribes `endpoint` to `topic` again (SNS sends a pending
    /// subscription its confirmation again, and makes a new one for a
    /// subscription it deleted unconfirmed) until it is confirmed: `first`
    /// after the first time, then twice as long each time up to
    /// [`crate::config::MAX_SUBSCRIBE_EVERY`].
    pub async fn subscribe_until_confirmed(
        &self,
        topic: Topic,
        endpoint: &Endpoint,
        first: Duration,
    ) -> Result<SubscriptionInfo, FeedError> {
        let mut resend = Resend::new(first);
        loop {
            let info = self.subscribe(topic, endpoint).await?;
            if info.state == SubscriptionState::Confirmed {
                return Ok(info);
            }
            let miss = resend.missed(Instant::now());
            if miss.log {
                tracing::info!(%topic, %endpoint, attempts = miss.misses,
                    "SNS subscription not confirmed yet; subscribing again in {:?}, waiting twice as \
                     long each time up to {:?} (this line again in {NOT_CONFIRMED_LOG_EVERY:?} if still \
                     unconfirmed)", miss.wait, resend.cap());
            }
            tokio::time::sleep(miss.wait).await;
        }
    }

    /// The HTTP(S) subscriptions of every topic.
    pub async fn subscriptions(&self) -> Result<Vec<SubscriptionInfo>, FeedError> {
        // Every topic's listing at once: one after another, a slow SNS
        // took three calls' time, longer than the request's timeout.
        let listings: Vec<_> = Topic::ALL
            .iter()
            .map(|&topic| {
                let topics = self.clone();
                tokio::spawn(async move { topics.listed(topic).await })
            })
            .collect();
        let mut all = Vec::new();
        for listing in listings {
            let listed = listing
                .await
                .map_err(|error| FeedError::Sns(format!("ListSubscriptionsByTopic: {error}")))?;
            all.extend(listed?);
        }
        Ok(all)
    }

    /// The HTTP(S) subscriptions of `topic`, endpoints masked.
    async fn list(&self, topic: Topic) -> Result<Vec<SubscriptionInfo>, FeedError> {
        let subscriptions = self
            .inner
            .client
            .list_subscriptions_by_topic()
            .topic_arn(self.topic_arn(topic))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| sns_error("ListSubscriptionsByTopic", e))?;
        Ok(subscriptions
            .iter()
            .filter_map(|s| {
                // Other protocols (email, SQS, ...) are no business of HQ's.
                let endpoint = Endpoint::parse(s.endpoint()?).ok()?;
                let subscription_arn = s.subscription_arn().unwrap_or_default().to_owned();
                Some(SubscriptionInfo {
                    state: state_of(&subscription_arn),
                    subscription_arn,
                    topic,
                    endpoint: endpoint.to_string(),
                })
            })
            .collect())
    }
}
