//! What the order endpoints answer, in words (docs/contract.md, Replies).
//!
//! The monolith and the resource services answer the same texts, so they are
//! written here once; tests compare against these.

use crate::downstream::Answer;
use crate::metrics::Replayed;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use contracts::fulfillment::REPLAYED_HEADER;

/// A fulfilled order (bundle or resource).
pub const ORDER_FULFILLED: &str = "Your order has been fulfilled";
/// An order whose fulfillment failed.
pub const ORDER_FAILED: &str = "Your order has NOT been fulfilled";
/// A glue-hook fulfillment the API took.
pub const HOOK_DELIVERED: &str = "Your fulfillment request has been delivered";
/// A glue-hook fulfillment that failed.
pub const HOOK_FAILED: &str = "Your fulfillment request has failed";
/// A SubscriptionConfirmation we confirmed.
pub const SUBSCRIBED: &str = "SNS topic subscribed!";
/// An UnsubscribeConfirmation.
pub const UNSUBSCRIBED: &str = "SNS unsubscribe noted";

/// An order carried out: the reply's text, and whether what it was sent to
/// said it repeats an earlier answer. A repeat says so to its caller too
/// ([`REPLAYED_HEADER`]), and the order metrics count it as `replayed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fulfilled {
    /// The reply's text, such as [`ORDER_FULFILLED`].
    pub text: &'static str,
    /// Whether the order had been counted once before.
    pub replayed: bool,
}

impl Fulfilled {
    /// `text`, repeating an earlier answer when `answer` did.
    pub fn after(text: &'static str, answer: Answer) -> Self {
        Self {
            text,
            replayed: answer.replayed,
        }
    }
}

impl IntoResponse for Fulfilled {
    fn into_response(self) -> Response {
        let mut response = self.text.into_response();
        if self.replayed {
            mark_replayed(&mut response);
        }
        response
    }
}

/// Marks `response` as repeating an earlier answer: [`REPLAYED_HEADER`] for
/// its caller, and `replayed` for the order metrics. HQ's fulfillment API
/// and the services' replies alike.
pub fn mark_replayed(response: &mut Response) {
    response
        .headers_mut()
        .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response.extensions_mut().insert(Replayed);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The replies are the contract's words, as docs/contract.md's table of
    /// replies quotes them (and the workshop's clients read them): tests
    /// that compare against these constants would pass a typo in one.
    #[test]
    fn the_replies_are_the_contracts_words() {
        let contract = include_str!("../../../docs/contract.md");
        let replies = contract
            .split_once("## Replies")
            .and_then(|(_, rest)| rest.split_once("\n## "))
            .map_or("", |(section, _)| section);
        for text in [
            ORDER_FULFILLED,
            ORDER_FAILED,
            HOOK_DELIVERED,
            HOOK_FAILED,
            SUBSCRIBED,
        ] {
            assert!(
                replies.contains(&format!("`{text}`")),
                "{text:?} is not in the contract's replies"
            );
        }
    }
}
