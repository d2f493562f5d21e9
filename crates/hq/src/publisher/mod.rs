//! Where HQ's orders go, chosen at start ([`PublishTo`]): HQ's own
//! SNS-compatible [`Feed`] (local, the default), or real AWS SNS topics
//! through the AWS SDK ([`sns`]). The generator, the admin publish endpoint
//! and the portal's subscribe buttons all go through one [`Publisher`];
//! either way each published order is recorded in the ledger under the
//! MessageId its publisher gave it, so reconciliation pairs it with the
//! fulfillments the services derive from the same topic ARN and MessageId.

pub mod sns;

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
    Sns(sns::SnsTopics),
}

impl Publisher {
    /// The ARN orders on `topic` are published under.
    pub fn topic_arn(&self, topic: Topic) -> String {
        match self {
            Self::Local(_) => topic.arn(),
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
        let span = tracing::info_span!("publish", %topic, order_id = tracing::field::Empty);
        let mut attributes = attributes.clone();
        if let Some(traceparent) = platform::traces::traceparent(&span) {
            attributes.entry("traceparent".to_owned()).or_insert(traceparent);
        }
        let published = tracing::Instrument::instrument(
            async {
                match self {
                    Self::Local(feed) => feed.publish_with(topic, message, &attributes).await,
                    Self::Sns(sns) => sns.publish(topic, message, &attributes).await,
                }
            },
            span.clone(),
        )
        .await?;
        span.record("order_id", tracing::field::display(&published.message_id));
        Ok(published)
    }

    /// Subscribes an HTTP(S) endpoint to `topic`; the endpoint is sent a
    /// SubscriptionConfirmation and stays pending until it confirms.
    pub async fn subscribe(&self, topic: Topic, endpoint: &str) -> Result<SubscriptionInfo, FeedError> {
        match self {
            Self::Local(feed) => feed.subscribe(topic, endpoint),
            Self::Sns(sns) => sns.subscribe(topic, &Endpoint::parse(endpoint)?).await,
        }
    }

    /// Subscribes `endpoint` to `topic` and asks for the confirmation again
    /// every `every` until it is confirmed; for endpoints that may start
    /// after HQ. Runs until confirmed; drop the future to give up.
    pub async fn subscribe_until_confirmed(
        &self,
        topic: Topic,
        endpoint: Endpoint,
        every: Duration,
    ) -> Result<SubscriptionInfo, FeedError> {
        match self {
            Self::Local(feed) => feed.subscribe_until_confirmed(topic, endpoint, every).await,
            Self::Sns(sns) => sns.subscribe_until_confirmed(topic, &endpoint, every).await,
        }
    }

    /// The HTTP(S) subscriptions of every topic, pending or confirmed.
    pub async fn subscriptions(&self) -> Result<Vec<SubscriptionInfo>, FeedError> {
        match self {
            Self::Local(feed) => Ok(feed.subscriptions()),
            Self::Sns(sns) => sns.subscriptions().await,
        }
    }

    /// Delivery counters per topic; `None` on SNS, which delivers out of
    /// HQ's sight (its CloudWatch metrics count them).
    pub fn stats(&self) -> Option<BTreeMap<Topic, TopicStats>> {
        match self {
            Self::Local(feed) => Some(feed.stats()),
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
    let parts: Vec<&str> = arn.split(':').collect();
    let is_topic_arn = parts.len() == 6
        && parts[0] == "arn"
        && parts[2] == "sns"
        && parts[1..].iter().all(|part| !part.is_empty());
    if !is_topic_arn {
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
