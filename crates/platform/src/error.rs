//! The one error type of the order endpoints, and the one place it becomes
//! a status code: 4xx for what will never succeed (SNS drops it), 5xx for what
//! might (SNS retries it). Also how any error's causes are written on one
//! line ([`Causes`]).

use crate::downstream::DownstreamError;
use crate::sns::{UntrustedUrl, VerifyError};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use contracts::fulfillment::HOOK_SECRET_HEADER;
use contracts::quote::quoted;
use contracts::sns::RAW_DELIVERY_HEADER;
use contracts::{DeliveryError, OrderError};
use std::sync::Arc;

/// Why a request was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The body is not an envelope or direct order.
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    /// The order is not an order this endpoint takes.
    #[error(transparent)]
    Order(#[from] OrderError),
    /// A direct order where only SNS orders are accepted.
    #[error("unsigned orders are not accepted here (ACCEPT_UNSIGNED_ORDERS=false); send orders through SNS")]
    UnsignedRefused,
    /// An SNS delivery from a subscription with raw message delivery on: no
    /// envelope, so no signature to verify and no MessageId to count it once
    /// by. 403 like a message that fails verification (SNS does not retry
    /// it, and no retry would succeed).
    #[error(
        "raw message delivery ({RAW_DELIVERY_HEADER}: true) carries no signature, so this order cannot be verified; turn RawMessageDelivery off for this subscription"
    )]
    RawDelivery,
    /// An SNS message from a topic not on the allow-list (unverified:
    /// quoted when shown).
    #[error("messages from topic {} are not accepted here", quoted(.0))]
    TopicRefused(String),
    /// A verified SNS message whose MessageId is not SNS' shape (quoted when shown).
    #[error("MessageId {} is not an SNS MessageId (a UUID)", quoted(.0))]
    BadMessageId(String),
    /// The glue hook was called without its shared secret.
    #[error("the glue hook needs its shared secret in the {HOOK_SECRET_HEADER} header")]
    HookSecretMissing,
    /// The glue hook was called with a secret that is not ours.
    #[error("the glue hook's shared secret does not match")]
    HookSecretWrong,
    /// The SNS message failed (or could not complete) verification.
    #[error("SNS message verification failed: {0}")]
    Verification(#[from] VerifyError),
    /// A SubscribeURL outside SNS: never fetched.
    #[error("SubscribeURL refused: {0}")]
    UntrustedSubscribeUrl(UntrustedUrl),
    /// The confirmation GET failed.
    #[error("subscription confirmation failed: {0}")]
    ConfirmationFailed(DownstreamError),
    /// Too little of the request's time was left to carry the order out
    /// (see `OrderIntake::with_work`); not started. A 5xx: sent again, it
    /// can succeed.
    #[error(
        "the order was read with {left:?} of REQUEST_TIMEOUT_MS left, less than carrying it out may take ({:?}: {}); it was not started, send it again",
        .work.time,
        .work.settings
    )]
    NoTimeLeft {
        /// The time left when the order was read.
        left: std::time::Duration,
        /// What carrying it out may take.
        work: crate::intake::Work,
    },
    /// A path the service does not have; `.0` is its order route.
    #[error("no such path; orders are POSTed to {0}")]
    NoSuchPath(Arc<str>),
    /// A method the path does not take; `.0` is the order route.
    #[error("this path does not take that method; orders are POSTed to {0}")]
    WrongMethod(Arc<str>),
    /// The downstream call of an order failed; `reply` is the text for people.
    #[error("{reply}: {source}")]
    Downstream {
        /// What the sender reads.
        reply: &'static str,
        /// What went wrong.
        source: DownstreamError,
    },
}

impl ServiceError {
    /// The status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            // Claims to be from SNS but is no envelope: it cannot be verified,
            // and a claimed SNS message that is not verified is refused 403.
            Self::Delivery(DeliveryError::BadEnvelope(_)) => StatusCode::FORBIDDEN,
            Self::Delivery(_) | Self::Order(_) | Self::BadMessageId(_) => StatusCode::BAD_REQUEST,
            // Missing or wrong, the caller lacks the credential (RFC 9110's
            // 401); SPEC names 401 for a call without the secret.
            Self::HookSecretMissing | Self::HookSecretWrong => StatusCode::UNAUTHORIZED,
            Self::UnsignedRefused
            | Self::RawDelivery
            | Self::TopicRefused(_)
            | Self::UntrustedSubscribeUrl(_) => StatusCode::FORBIDDEN,
            Self::Verification(error) if error.is_transient() => StatusCode::SERVICE_UNAVAILABLE,
            Self::Verification(_) => StatusCode::FORBIDDEN,
            Self::ConfirmationFailed(_) => StatusCode::BAD_GATEWAY,
            Self::NoTimeLeft { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::NoSuchPath(_) => StatusCode::NOT_FOUND,
            Self::WrongMethod(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Downstream { source, .. } => source.status(),
        }
    }
}

impl ServiceError {
    /// The same error, naming `example` as what a correct order looks like
    /// (a resource service takes only its own resource).
    pub fn expecting(self, example: &'static str) -> Self {
        match self {
            Self::Delivery(error) => Self::Delivery(error.expecting(example)),
            Self::Order(error) => Self::Order(error.expecting(example)),
            other => other,
        }
    }
}

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        let status = self.status();
        let text = match &self {
            Self::Downstream { reply, .. } => (*reply).to_owned(),
            other => other.to_string(),
        };
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = %self, "request failed");
        } else if let Self::NoSuchPath(_) | Self::WrongMethod(_) = self {
            // The access line says so: a scan of paths would otherwise be
            // a warning per probe.
        } else {
            tracing::warn!(status = status.as_u16(), error = %self, "request refused");
        }
        let mut response = (status, text).into_response();
        if status == StatusCode::UNAUTHORIZED {
            // RFC 9110 has every 401 name how to authenticate: the hook's
            // own scheme, the secret in its header.
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(HOOK_CHALLENGE));
        }
        response
    }
}

/// The glue hook's challenge: a scheme of its own (the reply's text names the
/// header the secret goes in).
const HOOK_CHALLENGE: &str = "Interstella-Hook-Secret";

/// An error and each of its sources, on one line, joined by ": " (`dispatch
/// failure: io error: Connection refused`): what the AWS SDK's
/// `DisplayErrorContext` says, without the `Debug` dump of the raw response
/// it appends, which is no line for a person.
pub struct Causes<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Causes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut current = self.0.source();
        while let Some(cause) = current {
            write!(f, ": {cause}")?;
            current = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("dispatch failure")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn causes_are_one_line_without_debug() {
        let error = Outer(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused",
        ));
        assert_eq!(Causes(&error).to_string(), "dispatch failure: Connection refused");
    }
}
