//! What the feed did, in the ledger: each order it published and how each
//! delivery of it ended.

use super::{Ledger, LedgerError, now};
use crate::feed::Topic;
use contracts::IdempotencyKey;
use rusqlite::params;
use serde::Serialize;

/// How a delivery of one message to one subscription ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// 2xx or 3xx.
    Delivered,
    /// 4xx: the endpoint said it can never succeed; SNS does not retry it.
    Rejected,
    /// 5xx, timeouts or refused connections until the retries ran out.
    Failed,
}

impl DeliveryOutcome {
    /// The outcome as stored (and as serialized).
    fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Rejected => "rejected",
            Self::Failed => "failed",
        }
    }
}

/// Where an order was published: which says whether HQ sees how its
/// deliveries end (reconciliation reads one that has none finished as
/// pending on the feed, and as delivered on SNS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishedOn<'a> {
    /// HQ's own feed, on the topic's ARN there ([`Topic::arn`]): every
    /// delivery's end is recorded.
    Feed,
    /// The AWS SNS topic of this ARN: HQ sees none of its deliveries.
    Sns(&'a str),
}

impl PublishedOn<'_> {
    /// As stored in `published.publisher` (NULL for orders published before
    /// ledger version 5).
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Feed => FEED,
            Self::Sns(_) => "sns",
        }
    }
}

/// `published.publisher` of an order published on HQ's own feed.
pub(super) const FEED: &str = "feed";

impl Ledger {
    /// Notes an order published in run `run_id` on `topic`, through
    /// `published_on`, with the idempotency key the services will fulfil it
    /// under (derived from the topic's ARN there).
    pub async fn record_published(
        &self,
        run_id: &str,
        message_id: &str,
        topic: Topic,
        published_on: PublishedOn<'_>,
        message: &str,
        subscribers: usize,
    ) -> Result<(), LedgerError> {
        let topic_arn = match published_on {
            PublishedOn::Feed => topic.arn(),
            PublishedOn::Sns(arn) => arn.to_owned(),
        };
        let key = IdempotencyKey::derive(&topic_arn, message_id, topic.fulfillment_kind());
        let values = (
            message_id.to_owned(),
            run_id.to_owned(),
            topic.as_str(),
            message.to_owned(),
            i64::try_from(subscribers).unwrap_or(i64::MAX),
            key.as_str().to_owned(),
            published_on.as_str(),
        );
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO published
                 (message_id, run_id, topic, message, published_at, subscribers, idempotency_key, publisher)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    values.0,
                    values.1,
                    values.2,
                    values.3,
                    now(),
                    values.4,
                    values.5,
                    values.6
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// Notes how the delivery of a message to a subscription ended.
    pub async fn record_delivery(
        &self,
        message_id: &str,
        subscription_arn: &str,
        outcome: DeliveryOutcome,
        attempts: u32,
    ) -> Result<(), LedgerError> {
        let (message_id, subscription_arn) = (message_id.to_owned(), subscription_arn.to_owned());
        self.write(move |conn| {
            conn.execute(
                // An upsert, not INSERT OR REPLACE: the row a REPLACE
                // deletes would fire no trigger, and the order's count of
                // deliveries ended (schema version 5) would go up twice.
                "INSERT INTO deliveries (message_id, subscription_arn, outcome, attempts, finished_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (message_id, subscription_arn) DO UPDATE SET
                     outcome = excluded.outcome, attempts = excluded.attempts, finished_at = excluded.finished_at",
                params![message_id, subscription_arn, outcome.as_str(), attempts, now()],
            )?;
            Ok(())
        })
        .await
    }
}
