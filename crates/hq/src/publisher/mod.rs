//! Where HQ's orders go, chosen at start ([`PublishTo`]): HQ's own
//! SNS-compatible [`Feed`] (local, the default), or real AWS SNS topics
//! through the AWS SDK ([`sns`]). The generator, the admin publish endpoint
//! and the portal's subscribe buttons all go through one [`Publisher`];
//! either way each published order is recorded in the ledger under the
//! MessageId its publisher gave it, so reconciliation pairs it with the
//! fulfillments the services derive from the same topic ARN and MessageId.
//!
//! SNS needs the AWS SDK, which is HQ's `sns` feature (on by default, so the
//! `hq` binary and its image have it). `cargo run`'s launcher leaves it out:
//! it only ever publishes locally, and the SDK is about a third of the
//! first build's compile time.

#[cfg(feature = "sns")]
pub mod sns;

use crate::feed::in_flight::OrdersInFlight;
use crate::feed::{
    Endpoint, Feed, FeedError, MessageAttributes, Published, SubscriptionInfo, Topic, TopicStats,
};
use std::collections::BTreeMap;
use std::time::Duration;

/// Where orders are published (`HQ_PUBLISH_TO`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum PublishTo {
    /// HQ's own SNS-compatible feed: deliveries signed and retried by HQ.
    #[default]
    Local,
    /// AWS SNS (or an emulator at `AWS_ENDPOINT_URL_SNS`): the topics in
    /// `HQ_SNS_TOPIC_ARNS`, with credentials and region from the usual AWS
    /// environment (the ECS task role on AWS).
    Aws,
}

/// The publisher HQ was started with. Cheap to clone.
#[derive(Debug, Clone)]
pub enum Publisher {
    /// HQ's own feed.
    Local(Feed),
    /// AWS SNS.
    #[cfg(feature = "sns")]
    Sns(sns::SnsTopics),
}

/// Why HQ cannot publish to SNS.
#[derive(Debug, thiserror::Error)]
pub enum SnsStartError {
    /// `HQ_SNS_TOPIC_ARNS` lacks a topic.
    #[error(
        "HQ_PUBLISH_TO=aws needs the ARN of every topic in HQ_SNS_TOPIC_ARNS ({every}); {0} has none",
        every = every_topic_arn()
    )]
    MissingTopic(Topic),
    /// This build has no SNS client.
    #[error(
        "HQ_PUBLISH_TO=aws needs HQ built with its `sns` feature (the hq binary and image have it; the launcher leaves it out)"
    )]
    NotBuiltIn,
}

/// What `HQ_SNS_TOPIC_ARNS` looks like: `orders=arn:...,iridium=arn:...`,
/// a topic for each of [`Topic::ALL`].
fn every_topic_arn() -> String {
    let topics: Vec<String> = Topic::ALL
        .iter()
        .map(|topic| format!("{topic}=arn:..."))
        .collect();
    topics.join(",")
}

/// Ok when `arns` names every one of [`Topic::ALL`] and this build can
/// publish to SNS: what `HQ_PUBLISH_TO=aws` needs, checked before HQ makes
/// anything on disk.
pub fn check_topic_arns(arns: &BTreeMap<Topic, String>) -> Result<(), SnsStartError> {
    if !cfg!(feature = "sns") {
        return Err(SnsStartError::NotBuiltIn);
    }
    match Topic::ALL.iter().copied().find(|topic| !arns.contains_key(topic)) {
        Some(missing) => Err(SnsStartError::MissingTopic(missing)),
        None => Ok(()),
    }
}

impl Publisher {
    /// Publishes to the SNS topics `arns` (see [`check_topic_arns`]), with
    /// region, credentials and `AWS_ENDPOINT_URL(_SNS)` as every AWS tool
    /// reads them, recording into `ledger` under `run_id`.
    #[cfg(feature = "sns")]
    pub async fn sns(
        arns: BTreeMap<Topic, String>,
        ledger: crate::ledger::Ledger,
        run_id: String,
    ) -> Result<Self, SnsStartError> {
        let aws = aws_config::load_from_env().await;
        Ok(Self::Sns(sns::SnsTopics::new(&aws, arns, ledger, run_id)?))
    }

    /// Without the `sns` feature: always [`SnsStartError::NotBuiltIn`].
    #[cfg(not(feature = "sns"))]
    pub async fn sns(
        _arns: BTreeMap<Topic, String>,
        _ledger: crate::ledger::Ledger,
        _run_id: String,
    ) -> Result<Self, SnsStartError> {
        Err(SnsStartError::NotBuiltIn)
    }

    /// The ARN orders on `topic` are published under.
    pub fn topic_arn(&self, topic: Topic) -> String {
        match self {
            Self::Local(_) => topic.arn(),
            #[cfg(feature = "sns")]
            Self::Sns(sns) => sns.topic_arn(topic).to_owned(),
        }
    }

    /// Publishes an order on `topic` (checked with the services' own parsers
    /// first) and records it in the ledger under its MessageId.
    pub async fn publish(
        &self,
        topic: Topic,
        message: &str,
        attributes: &MessageAttributes,
    ) -> Result<Published, FeedError> {
        // The order's trace starts here, for either publisher; its deliveries
        // carry it on in a message attribute, as an SNS publisher would set
        // one. A traceparent the caller gave (the admin publish's header) wins.
        // At ERROR level, so that it is on under any filter (`platform::telemetry::request_span`).
        let span = tracing::error_span!("publish", %topic, order_id = tracing::field::Empty);
        let mut attributes = attributes.clone();
        if let Some(traceparent) = platform::traces::traceparent(&span) {
            attributes
                .entry(contracts::sns::TRACEPARENT.to_owned())
                .or_insert(traceparent);
        }
        let published = tracing::Instrument::instrument(
            async {
                match self {
                    Self::Local(feed) => feed.publish_with(topic, message, &attributes).await,
                    #[cfg(feature = "sns")]
                    Self::Sns(sns) => sns.publish(topic, message, &attributes).await,
                }
            },
            span.clone(),
        )
        .await?;
        span.record("order_id", tracing::field::display(&published.message_id));
        Ok(published)
    }

    /// The publisher's orders under way: publishes, and on the feed their
    /// deliveries too.
    fn orders_in_flight(&self) -> &OrdersInFlight {
        match self {
            Self::Local(feed) => feed.orders_in_flight(),
            #[cfg(feature = "sns")]
            Self::Sns(sns) => sns.orders_in_flight(),
        }
    }

    /// Refuses every publish from now on; those under way finish, and
    /// [`Publisher::drain`] waits for them.
    pub fn stop_publishing(&self) {
        self.orders_in_flight().stop_publishing();
    }

    /// Waits until every publish under way has ended (and, on the feed,
    /// every delivery with its retries), or `deadline` passes; true when
    /// all ended.
    pub async fn drain(&self, deadline: Duration) -> bool {
        self.orders_in_flight().drain(deadline).await
    }

    /// Publishes (and, on the feed, deliveries) under way.
    pub fn in_flight(&self) -> usize {
        self.orders_in_flight().len()
    }

    /// Subscribes an HTTP(S) endpoint to `topic`; the endpoint is sent a
    /// SubscriptionConfirmation and stays pending until it confirms.
    pub async fn subscribe(&self, topic: Topic, endpoint: &str) -> Result<SubscriptionInfo, FeedError> {
        match self {
            Self::Local(feed) => feed.subscribe(topic, endpoint),
            #[cfg(feature = "sns")]
            Self::Sns(sns) => sns.subscribe(topic, &Endpoint::parse(endpoint)?).await,
        }
    }

    /// Deletes the subscription `subscription_arn` of one of HQ's topics,
    /// confirmed or pending (on SNS a pending one has no ARN to name it:
    /// SNS deletes it three days unconfirmed).
    pub async fn unsubscribe(&self, subscription_arn: &str) -> Result<(), FeedError> {
        match self {
            // The feed holds subscriptions of HQ's topics alone.
            Self::Local(feed) => feed.unsubscribe(subscription_arn),
            #[cfg(feature = "sns")]
            Self::Sns(sns) => sns.unsubscribe(subscription_arn).await,
        }
    }

    /// Subscribes `endpoint` to `topic` and asks for the confirmation again
    /// until it is confirmed, `first` after the first time, then twice as
    /// long each time up to [`crate::config::MAX_SUBSCRIBE_EVERY`]; for
    /// endpoints that may start after HQ. Runs until confirmed; drop the
    /// future to give up.
    pub async fn subscribe_until_confirmed(
        &self,
        topic: Topic,
        endpoint: Endpoint,
        first: Duration,
    ) -> Result<SubscriptionInfo, FeedError> {
        match self {
            Self::Local(feed) => feed.subscribe_until_confirmed(topic, endpoint, first).await,
            #[cfg(feature = "sns")]
            Self::Sns(sns) => sns.subscribe_until_confirmed(topic, &endpoint, first).await,
        }
    }

    /// The HTTP(S) subscriptions of every topic, pending or confirmed.
    pub async fn subscriptions(&self) -> Result<Vec<SubscriptionInfo>, FeedError> {
        match self {
            Self::Local(feed) => Ok(feed.subscriptions()),
            #[cfg(feature = "sns")]
            Self::Sns(sns) => sns.subscriptions().await,
        }
    }

    /// Delivery counters per topic; `None` on SNS, which delivers out of
    /// HQ's sight (its CloudWatch metrics count them).
    pub fn stats(&self) -> Option<BTreeMap<Topic, TopicStats>> {
        match self {
            Self::Local(feed) => Some(feed.stats()),
            #[cfg(feature = "sns")]
            Self::Sns(_) => None,
        }
    }
}

/// Parses `topic=arn:aws:sns:region:account:name`, one entry of `HQ_SNS_TOPIC_ARNS`.
pub fn parse_topic_arn(text: &str) -> Result<(Topic, String), String> {
    let (topic, arn) = text.split_once('=').ok_or_else(|| {
        format!(
            "expected topic=arn:aws:sns:region:account:name, got {}",
            contracts::quote::quoted(text)
        )
    })?;
    let topic = topic.parse::<Topic>().map_err(|e| e.to_string())?;
    let arn = arn.trim();
    if !contracts::sns::is_topic_arn(arn) {
        return Err(format!(
            "expected an SNS topic ARN (arn:aws:sns:region:account:name) for {topic}, got {}",
            contracts::quote::quoted(arn)
        ));
    }
    Ok((topic, arn.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_arns_are_parsed_and_checked() {
        assert_eq!(
            parse_topic_arn(" iridium=arn:aws:sns:eu-west-1:123456789012:hq-iridium "),
            Ok((
                Topic::Iridium,
                "arn:aws:sns:eu-west-1:123456789012:hq-iridium".to_owned()
            ))
        );
        for bad in [
            "orders",
            "gold=arn:aws:sns:eu-west-1:123456789012:gold",
            "orders=arn:aws:sqs:eu-west-1:123456789012:orders",
            "orders=arn:aws:sns:eu-west-1::orders",
            "orders=https://sns.amazonaws.com/",
        ] {
            assert!(parse_topic_arn(bad).is_err(), "{bad}");
        }
    }
}
