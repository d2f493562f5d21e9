//! Taking an order in: from SNS (verified, confirmations handled) or from a
//! direct caller such as the workshop's curl (docs/contract.md, "Orders" and
//! "Trust").
//!
//! Each order endpoint hands its headers, raw body and what to do with an
//! order here; the order reaches it parsed into the endpoint's order type,
//! and confirmations are answered without it.

use crate::downstream::Downstream;
use crate::error::ServiceError;
use crate::metrics::{Metrics, NotAnOrder, SnsMetrics};
use crate::reply::{Fulfilled, SUBSCRIBED, UNSUBSCRIBED};
use crate::server::RequestDeadline;
use crate::settings::TrustConfig;
use crate::sns::{SnsVerifier, TrustedHosts};
use crate::telemetry::{record_claimed_order_id, record_order_id, request_id};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use contracts::quote::quoted;
use contracts::sns::{MESSAGE_TYPE_HEADER, RAW_DELIVERY_HEADER};
use contracts::{
    Delivery, Envelope, FulfillmentKind, IdempotencyKey, MessageType, Order, OrderId, TypeHeader,
    message_order, parse_delivery,
};
use std::time::Duration;
use tracing::Instrument as _;
/// How long the SubscribeURL GET may take.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest topic ARN logged as it came (SNS' are at most about 330
/// characters: a 256-character name, a region, an account).
const MAX_TOPIC_ARN_CHARS: usize = 400;

/// An order to carry out, as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received<O> {
    /// The order, parsed into the type the endpoint takes.
    pub order: O,
    /// Which SNS message carried it; `None` for a direct order.
    pub sns: Option<SnsOrigin>,
    /// The id its log lines carry here and downstream: the SNS MessageId,
    /// or a fresh request id for a direct order.
    pub order_id: OrderId,
}

/// The SNS message an order came in: `(TopicArn, MessageId)` identifies the
/// order across redeliveries (docs/contract.md, Trust).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnsOrigin {
    /// The topic it was published to (on the allow-list, if there is one).
    pub topic_arn: String,
    /// Its MessageId, of SNS' shape (a UUID).
    pub message_id: String,
}

impl<O> Received<O> {
    /// The key the fulfillment API dedupes this order's fulfillment of
    /// `kind` on; `None` for a direct order, which has no identity.
    pub fn idempotency_key(&self, kind: FulfillmentKind) -> Option<IdempotencyKey> {
        self.sns
            .as_ref()
            .map(|sns| IdempotencyKey::derive(&sns.topic_arn, &sns.message_id, kind))
    }
}

/// The 2xx answer to a delivery, as [`OrderIntake::take`] gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// An order, carried out.
    Order(Fulfilled),
    /// A subscription (un)confirmation, handled: the reply's text. Marked
    /// [`NotAnOrder`] so the order metrics leave it out.
    NotAnOrder(&'static str),
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        match self {
            Self::Order(fulfilled) => fulfilled.into_response(),
            Self::NotAnOrder(text) => {
                let mut response = text.into_response();
                response.extensions_mut().insert(NotAnOrder);
                response
            }
        }
    }
}

/// What a delivery asks of the endpoint.
enum Delivered<O> {
    /// Carry out this order; from SNS, with the `traceparent` its message
    /// attributes carried (unsigned: it only links the trace).
    Order(Received<O>, Option<String>),
    /// Nothing to carry out; answer 200 with this text.
    Done(&'static str),
}

/// Receives deliveries for one service; built once at start.
#[derive(Debug)]
pub struct OrderIntake {
    trust: TrustConfig,
    verifier: SnsVerifier,
    client: reqwest::Client,
    metrics: SnsMetrics,
    /// Where confirmations' calls are counted (`SNS SubscribeURL`), if anywhere.
    registry: Option<Metrics>,
    /// How long carrying out an order may take (the route's gather and its
    /// downstream call's timeout): an order with less time left is not
    /// started.
    work: Work,
}

/// What carrying out an order may take, and the settings that make it up:
/// the refusal of an order read with less time left names them, for the
/// operator who tunes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Work {
    /// The time it may take.
    pub time: Duration,
    /// The settings `time` is made of, as the refusal names them.
    pub settings: &'static str,
}

impl Work {
    /// No work: only an order read with no time left at all is refused.
    pub const NONE: Work = Work {
        time: Duration::ZERO,
        settings: "nothing",
    };
}

impl OrderIntake {
    /// An intake with the service's trust settings and shared client.
    pub fn new(trust: TrustConfig, client: reqwest::Client) -> Self {
        let hosts = TrustedHosts::new(trust.sns_stand_in.clone());
        let verifier = SnsVerifier::new(hosts, client.clone());
        if !trust.has_topic_allow_list() {
            tracing::warn!(
                "SNS_TOPIC_ARNS is not set: SNS messages from ANY topic are accepted; anyone can subscribe this service to a topic of theirs and place genuinely signed orders"
            );
        }
        if !trust.verify_signatures {
            tracing::warn!(
                "SNS_VERIFY=false: SNS signatures are NOT verified; anyone who can reach this service can place orders"
            );
        }
        Self {
            trust,
            verifier,
            client,
            metrics: SnsMetrics::default(),
            registry: None,
            work: Work::NONE,
        }
    }

    /// Refuses (503) an order read with less than `work` left before its
    /// request's deadline: a slow body or a certificate fetch took the
    /// time, and an order started anyway could be fulfilled downstream
    /// after its caller was told it failed (a curl order sent again would
    /// then be fulfilled twice). Started only when it can finish, it is
    /// answered truthfully either way, and SNS' retry finds the
    /// certificate cached.
    pub fn with_work(mut self, work: Work) -> Self {
        self.work = work;
        self
    }

    /// Counts SNS verifications, certificate cache hits and fetches, and
    /// the subscription confirmations' calls in `metrics`.
    pub fn with_metrics(mut self, metrics: &Metrics) -> Self {
        self.metrics = metrics.sns();
        self.verifier = self.verifier.with_metrics(self.metrics.clone());
        self.registry = Some(metrics.clone());
        self
    }

    /// Takes one delivery in: an order goes to `carry_out`, whose answer is
    /// the reply; a subscription confirmation is handled here.
    /// `deadline` is the request's (none outside the serve loop): an order
    /// with too little time left is refused (see [`OrderIntake::with_work`]).
    pub async fn take<O: Order>(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        deadline: Option<RequestDeadline>,
        carry_out: impl AsyncFnOnce(Received<O>) -> Result<Fulfilled, ServiceError>,
    ) -> Result<Reply, ServiceError> {
        match self.receive(headers, body).await? {
            Delivered::Order(received, traceparent) => {
                time_left_for(deadline, self.work)?;
                let reply = match crate::traces::order_span(traceparent.as_deref(), &received.order_id) {
                    Some(span) => {
                        let reply = carry_out(received).instrument(span.clone()).await;
                        if let Err(error) = &reply {
                            crate::traces::fail(&span, error);
                        }
                        reply
                    }
                    None => carry_out(received).await,
                };
                reply.map(Reply::Order)
            }
            Delivered::Done(reply) => Ok(Reply::NotAnOrder(reply)),
        }
    }

    /// Turns one delivery into an order, or handles it.
    async fn receive<O: Order>(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Delivered<O>, ServiceError> {
        // Raw delivery drops the envelope, its signature and MessageId with
        // it: such an order could be neither verified nor counted once.
        if headers
            .get(RAW_DELIVERY_HEADER)
            .is_some_and(|raw| raw.as_bytes().eq_ignore_ascii_case(b"true"))
        {
            return Err(ServiceError::RawDelivery);
        }
        let type_header = if headers.contains_key(MESSAGE_TYPE_HEADER) {
            TypeHeader::Sent
        } else {
            TypeHeader::NotSent
        };
        match parse_delivery::<O>(body, type_header)? {
            Delivery::Direct(message) => {
                if !self.trust.accept_unsigned_orders {
                    return Err(ServiceError::UnsignedRefused);
                }
                // From here on every line about this order carries its id,
                // a refusal of it included (as for an SNS message).
                let order_id = request_id();
                record_order_id(&order_id);
                Ok(Delivered::Order(
                    Received {
                        order: message_order(&message)?,
                        sns: None,
                        order_id,
                    },
                    None,
                ))
            }
            Delivery::Sns(envelope) => self.receive_sns(*envelope).await,
        }
    }

    async fn receive_sns<O: Order>(&self, envelope: Envelope) -> Result<Delivered<O>, ServiceError> {
        // Of SNS' shape, the MessageId becomes the order's id; taken only
        // so, it cannot carry text of the sender's choosing.
        let claimed_id = if envelope.has_sns_message_id() {
            OrderId::parse(&envelope.message_id)
        } else {
            None
        };
        if let Err(refused) = self.check_trust(&envelope).await {
            // The refusal names the order the delivery claimed to be, as a
            // claim: a tampered copy, or a certificate that could not be
            // fetched, is then found beside that order's lines, and told
            // apart from them.
            if let Some(claimed) = &claimed_id {
                record_claimed_order_id(claimed);
            }
            return Err(refused);
        }
        // Before anything is called: the MessageId goes into idempotency keys.
        let Some(order_id) = claimed_id else {
            return Err(ServiceError::BadMessageId(envelope.message_id));
        };
        // Trusted now: from here on every line about this message carries
        // it, a refusal of its order or a confirmation's included.
        record_order_id(&order_id);
        match envelope.message_type {
            MessageType::Notification => Ok(Delivered::Order(
                Received {
                    order: O::from_text(envelope.message.as_bytes())?,
                    order_id,
                    sns: Some(SnsOrigin {
                        topic_arn: envelope.topic_arn.clone(),
                        message_id: envelope.message_id.clone(),
                    }),
                },
                envelope.traceparent().map(str::to_owned),
            )),
            MessageType::SubscriptionConfirmation => {
                Box::pin(self.confirm(&envelope)).await?;
                tracing::info!(topic = %logged_topic(self.trust.verify_signatures, &envelope.topic_arn), "SNS subscription confirmed");
                Ok(Delivered::Done(SUBSCRIBED))
            }
            MessageType::UnsubscribeConfirmation => {
                tracing::info!(topic = %logged_topic(self.trust.verify_signatures, &envelope.topic_arn), "SNS subscription ended (UnsubscribeConfirmation)");
                Ok(Delivered::Done(UNSUBSCRIBED))
            }
        }
    }

    /// Whether `envelope` may be acted on: its topic is one accepted here,
    /// and its signature verifies (unless verification is off).
    async fn check_trust(&self, envelope: &Envelope) -> Result<(), ServiceError> {
        if !self.trust.accepts_topic(&envelope.topic_arn) {
            return Err(ServiceError::TopicRefused(envelope.topic_arn.clone()));
        }
        if self.trust.verify_signatures {
            // Boxed, here and for the confirmation: inline, their futures
            // (certificate fetches included) sized every order's future for
            // its whole life, a gather included (docs/bench.md).
            let verified = Box::pin(self.verifier.verify(envelope)).await;
            match &verified {
                Ok(()) => &self.metrics.verified,
                Err(error) if error.is_transient() => &self.metrics.unavailable,
                Err(_) => &self.metrics.refused,
            }
            .inc();
            verified?;
        }
        Ok(())
    }

    async fn confirm(&self, envelope: &Envelope) -> Result<(), ServiceError> {
        let url = envelope.subscribe_url.as_deref().unwrap_or_default();
        let trusted = self
            .verifier
            .hosts()
            .check_subscribe_url(url)
            .map_err(ServiceError::UntrustedSubscribeUrl)?;
        let mut subscribe = Downstream::new(
            self.client.clone(),
            trusted.url().clone(),
            "SNS SubscribeURL",
            CONFIRM_TIMEOUT,
        );
        if let Some(metrics) = &self.registry {
            subscribe = subscribe.with_metrics(metrics);
        }
        subscribe
            .get(&trusted.headers())
            .await
            .map(|_| ())
            .map_err(ServiceError::ConfirmationFailed)
    }
}

/// Ok when an order read now can be carried out, in `work`, before its
/// request's `deadline` (none outside the serve loop); else the refusal
/// (503, not started), for the reasons [`OrderIntake::with_work`] gives.
/// For every route that starts an order: the monolith's glue hook too.
pub fn time_left_for(deadline: Option<RequestDeadline>, work: Work) -> Result<(), ServiceError> {
    match deadline.map(RequestDeadline::left) {
        Some(left) if left <= work.time => Err(ServiceError::NoTimeLeft { left, work }),
        _ => Ok(()),
    }
}

/// A delivery's topic as a log field: as SNS signed it once verified and
/// shaped like an ARN (so a query matches the ARN itself), quoted short
/// otherwise: when verification is off anyone may have written it, and a
/// stand-in's key signs whatever its owner likes (docs/contract.md, Trust).
fn logged_topic(verified: bool, topic_arn: &str) -> String {
    let arn_shaped =
        topic_arn.len() <= MAX_TOPIC_ARN_CHARS && topic_arn.bytes().all(|b| b.is_ascii_graphic());
    if verified && arn_shaped {
        topic_arn.to_owned()
    } else {
        quoted(topic_arn).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::logged_topic;

    #[test]
    fn a_verified_topic_is_logged_as_it_came_only_when_shaped_like_an_arn() {
        let arn = "arn:aws:sns:us-east-1:123456789012:orders";
        assert_eq!(logged_topic(true, arn), arn);
        assert_eq!(logged_topic(false, arn), format!("\"{arn}\""));
        let forged = "arn:\u{202e}evil\u{2028}INFO forged\0";
        let shown = logged_topic(true, forged);
        assert!(
            !shown.contains('\u{202e}') && !shown.contains('\u{2028}') && !shown.contains('\0'),
            "{shown}"
        );
    }
}
