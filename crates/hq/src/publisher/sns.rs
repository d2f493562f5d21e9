//! Publishing to AWS SNS with the AWS SDK: `Publish` to the topics named in
//! `HQ_SNS_TOPIC_ARNS`, `Subscribe` (http/https) and
//! `ListSubscriptionsByTopic` for the portal. SNS signs, delivers and
//! retries; HQ records what it published, under SNS' MessageId.

use super::{SnsStartError, check_topic_arns};
use crate::feed::resend::{NOT_CONFIRMED_LOG_EVERY, Resend};
use crate::feed::{
    Endpoint, FeedError, MessageAttributes, Published, SubscriptionInfo, SubscriptionState, Topic,
};
use crate::ledger::Ledger;
use aws_sdk_sns::error::DisplayErrorContext;
use aws_sdk_sns::types::MessageAttributeValue;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a topic's count of confirmed subscriptions is reused before SNS
/// is asked again: the count only labels unfulfilled orders (unrouted or
/// pending), so it need not cost a `ListSubscriptionsByTopic` per order.
const SUBSCRIBERS_TTL: Duration = Duration::from_secs(10);

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
    /// Per topic: when its confirmed subscriptions were counted, and how many.
    subscribers: Mutex<BTreeMap<Topic, (Instant, usize)>>,
}

/// An SDK error with its causes, as one line.
fn sns_error(action: &str, error: impl std::error::Error) -> FeedError {
    FeedError::Sns(format!("{action}: {}", DisplayErrorContext(error)))
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
    /// `config`'s client, recording into `ledger` under `run_id`.
    pub fn new(
        config: &aws_config::SdkConfig,
        arns: BTreeMap<Topic, String>,
        ledger: Ledger,
        run_id: String,
    ) -> Result<Self, SnsStartError> {
        check_topic_arns(&arns)?;
        Ok(Self {
            inner: Arc::new(Inner {
                client: aws_sdk_sns::Client::new(config),
                arns,
                ledger,
                run_id,
                subscribers: Mutex::new(BTreeMap::new()),
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
    pub async fn publish(
        &self,
        topic: Topic,
        message: &str,
        attributes: &MessageAttributes,
    ) -> Result<Published, FeedError> {
        topic.validate(message)?;
        let topic_arn = self.topic_arn(topic);
        // Counted first: once SNS has the order, only recording it may fail.
        let subscribers = self.confirmed_count(topic).await?;
        let mut sns_attributes = HashMap::new();
        for (name, value) in attributes {
            let value = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| sns_error("MessageAttributes", e))?;
            sns_attributes.insert(name.clone(), value);
        }
        let output = self
            .inner
            .client
            .publish()
            .topic_arn(topic_arn)
            .message(message)
            .set_message_attributes((!sns_attributes.is_empty()).then_some(sns_attributes))
            .send()
            .await
            .map_err(|e| sns_error("Publish", e))?;
        let message_id = output
            .message_id()
            .ok_or_else(|| FeedError::Sns("Publish answered without a MessageId".into()))?
            .to_owned();
        // SNS may deliver before this is written (an emulator does so before
        // answering): harmless, reconciliation pairs by key when asked.
        self.inner
            .ledger
            .record_published(
                &self.inner.run_id,
                &message_id,
                topic,
                topic_arn,
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

    /// Confirmed subscriptions of `topic`, counted at most every [`SUBSCRIBERS_TTL`].
    async fn confirmed_count(&self, topic: Topic) -> Result<usize, FeedError> {
        let cached = crate::feed::lock_ignoring_poison(&self.inner.subscribers)
            .get(&topic)
            .filter(|(at, _)| at.elapsed() < SUBSCRIBERS_TTL)
            .map(|(_, count)| *count);
        if let Some(count) = cached {
            return Ok(count);
        }
        let count = self
            .list(topic)
            .await?
            .iter()
            .filter(|s| s.state == SubscriptionState::Confirmed)
            .count();
        crate::feed::lock_ignoring_poison(&self.inner.subscribers).insert(topic, (Instant::now(), count));
        Ok(count)
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
        Ok(SubscriptionInfo {
            subscription_arn,
            topic,
            endpoint: endpoint.to_string(),
            state,
        })
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
        let mut all = Vec::new();
        for &topic in Topic::ALL {
            all.extend(self.list(topic).await?);
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
