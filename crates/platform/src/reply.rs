//! What the order endpoints answer, in words (docs/contract.md, Replies).
//!
//! The monolith and the resource services answer the same texts, so they are
//! written here once; tests compare against these.

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
