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

impl Ledger {
    /// Notes an order published in run `run_id` on `topic` (whose ARN,
    /// HQ's own or AWS', is `topic_arn`), with the idempotency key the
    /// services will fulfil it under.
    pub async fn record_published(
        &self,
        run_id: &str,
        message_id: &str,
        topic: Topic,
        topic_arn: &str,
        message: &str,
        subscribers: usize,
    ) -> Result<(), LedgerError> {
        let key = IdempotencyKey::derive(topic_arn, message_id, topic.fulfillment_kind());
        let values = (
            message_id.to_owned(),
            run_id.to_owned(),
            topic.as_str(),
            message.to_owned(),
            i64::try_from(subscribers).unwrap_or(i64::MAX),
            key.as_str().to_owned(),
        );
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO published (message_id, run_id, topic, message, published_at, subscribers, idempotency_key)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![values.0, values.1, values.2, values.3, now(), values.4, values.5],
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
                "INSERT OR REPLACE INTO deliveries (message_id, subscription_arn, outcome, attempts, finished_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![message_id, subscription_arn, outcome.as_str(), attempts, now()],
            )?;
            Ok(())
        })
        .await
    }
}
