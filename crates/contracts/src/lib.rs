//! The JSON contracts every Interstella service shares.
//!
//! Pure types and parsing, no I/O: what SNS delivers ([`sns`]), what an order
//! looks like ([`order`]), what the fulfillment API takes ([`fulfillment`])
//! and where each is sent ([`paths`]).
//! Every service parses with these, so the wire format is decided in one place.

pub mod delivery;
pub mod fulfillment;
pub mod order;
pub mod order_id;
pub mod paths;
pub mod quote;
pub mod sns;

pub use delivery::{Delivery, DeliveryError, TypeHeader, json_text, message_order, parse_delivery};
pub use fulfillment::{
    ApiIdempotencyKey, FulfillmentKind, FulfillmentRequest, HookRequest, IdempotencyKey, Producer,
};
pub use order::{BundleOrder, MAX_QUANTITY, Order, OrderError, Quantity, Resource, ResourceOrder};
pub use order_id::OrderId;
pub use sns::{Envelope, MessageAttribute, MessageType, SignatureVersion};
