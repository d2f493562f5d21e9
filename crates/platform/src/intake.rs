//! Taking an order in: from SNS (verified, confirmations handled) or from a
//! direct caller such as the workshop's curl (SPEC §2, §5).
//!
//! Each order endpoint hands its headers and raw body here and gets back the
//! order to carry out, or a reply when there is nothing to carry out.

use crate::downstream::Downstream;
use crate::error::ServiceError;
use crate::settings::TrustConfig;
use crate::sns::{SnsVerifier, TrustedHosts};
use axum::http::HeaderMap;
use contracts::order::OrderKind;
use contracts::sns::MESSAGE_TYPE_HEADER;
use contracts::{Delivery, Envelope, MessageType, message_order, parse_delivery};
use serde_json::Value;
use std::time::Duration;

/// The reply to a SubscriptionConfirmation we confirmed.
pub const SUBSCRIBED: &str = "SNS topic subscribed!";
/// The reply to an UnsubscribeConfirmation.
pub const UNSUBSCRIBED: &str = "SNS unsubscribe noted";
/// How long the SubscribeURL GET may take.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);

/// What a delivery asks of the endpoint.
#[derive(Debug)]
pub enum Intake {
    /// Carry out this order.
    Order {
        /// The order JSON (to parse with the endpoint's order parser).
        order: Value,
        /// The SNS MessageId, which identifies the order across redeliveries.
        message_id: Option<String>,
    },
    /// Nothing to carry out; answer 200 with this text.
    Done(&'static str),
}

/// Receives deliveries for one service; built once at start.
#[derive(Debug)]
pub struct OrderIntake {
    trust: TrustConfig,
    verifier: SnsVerifier,
    client: reqwest::Client,
}

impl OrderIntake {
    /// An intake with the service's trust settings and shared client.
    pub fn new(trust: TrustConfig, client: reqwest::Client) -> Self {
        let hosts = TrustedHosts::new(trust.sns_stand_in.clone());
        let verifier = SnsVerifier::new(hosts, client.clone());
        if !trust.verify_signatures {
            tracing::warn!(
                "SNS_VERIFY=false: SNS signatures are NOT verified; anyone who can reach this service can place orders"
            );
        }
        Self {
            trust,
            verifier,
            client,
        }
    }

    /// Turns one delivery into an order, or handles it.
    pub async fn receive(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        kind: OrderKind,
    ) -> Result<Intake, ServiceError> {
        let type_header = headers.get(MESSAGE_TYPE_HEADER).and_then(|v| v.to_str().ok());
        match parse_delivery(body, type_header, kind)? {
            Delivery::Direct(message) => {
                if !self.trust.accept_unsigned_orders {
                    return Err(ServiceError::UnsignedRefused);
                }
                let order = message_order(&message, kind)?.into_owned();
                Ok(Intake::Order {
                    order,
                    message_id: None,
                })
            }
            Delivery::Sns(envelope) => self.receive_sns(*envelope, kind).await,
        }
    }

    async fn receive_sns(&self, envelope: Envelope, kind: OrderKind) -> Result<Intake, ServiceError> {
        if !self.trust.accepts_topic(&envelope.topic_arn) {
            return Err(ServiceError::TopicRefused(envelope.topic_arn));
        }
        if self.trust.verify_signatures {
            self.verifier.verify(&envelope).await?;
        }
        match envelope.message_type {
            MessageType::Notification => {
                let order = contracts::order::parse_json(envelope.message.as_bytes(), kind)?;
                Ok(Intake::Order {
                    order,
                    message_id: Some(envelope.message_id),
                })
            }
            MessageType::SubscriptionConfirmation => {
                self.confirm(&envelope).await?;
                tracing::info!(topic = %envelope.topic_arn, "SNS subscription confirmed");
                Ok(Intake::Done(SUBSCRIBED))
            }
            MessageType::UnsubscribeConfirmation => {
                tracing::info!(topic = %envelope.topic_arn, "SNS subscription ended (UnsubscribeConfirmation)");
                Ok(Intake::Done(UNSUBSCRIBED))
            }
        }
    }

    async fn confirm(&self, envelope: &Envelope) -> Result<(), ServiceError> {
        let url = envelope.subscribe_url.as_deref().unwrap_or_default();
        let trusted = self
            .verifier
            .hosts()
            .check_subscribe_url(url)
            .map_err(ServiceError::UntrustedSubscribeUrl)?;
        let subscribe = Downstream::new(
            self.client.clone(),
            trusted.url().clone(),
            "SNS SubscribeURL",
            CONFIRM_TIMEOUT,
        );
        subscribe
            .get(&trusted.headers())
            .await
            .map(|_| ())
            .map_err(ServiceError::ConfirmationFailed)
    }
}
