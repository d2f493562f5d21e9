//! The id one order's log lines carry on every service it passes through:
//! its SNS MessageId, or a request id given where a direct order (curl)
//! came in. It travels with the order in the [`ORDER_ID_HEADER`] header,
//! on the glue hook and to the fulfillment API.
//!
//! It only ties log lines together; it grants nothing, and what a caller
//! sends is checked to be short and plain before it is logged.

use crate::order::OrderError;
use std::fmt;
use uuid::Uuid;

/// The header carrying the order id on the glue hook and to the fulfillment API.
pub const ORDER_ID_HEADER: &str = "x-interstella-order-id";
/// The longest order id accepted (a UUID is 36 characters).
pub const MAX_ORDER_ID_CHARS: usize = 64;

/// An order's id: 1 to [`MAX_ORDER_ID_CHARS`] ASCII letters, digits, `-`,
/// `_`, `.` or `:`, so it can be logged as it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrderId(String);

impl OrderId {
    /// Reads an id as sent; `None` unless it is of the shape above.
    pub fn parse(text: &str) -> Option<Self> {
        let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':');
        (!text.is_empty() && text.len() <= MAX_ORDER_ID_CHARS && text.chars().all(plain))
            .then(|| Self(text.to_owned()))
    }

    /// Reads the [`ORDER_ID_HEADER`] header's value as it arrived: `None`
    /// when it was not sent, an error quoting it (short, escaped) when it is
    /// not of the shape above. Every service that takes the header reads it
    /// here.
    pub fn from_header(value: Option<&[u8]>) -> Result<Option<Self>, OrderError> {
        crate::fulfillment::header(value, Self::parse, OrderError::BadOrderId)
    }

    /// The id of a UUID, written as UUIDs are (`8-4-4-4-12` lower-case hex
    /// digits) by uuid's own encoder: `format!` was 3,400 instructions of
    /// every direct order (docs/bench.md).
    pub fn from_uuid(id: Uuid) -> Self {
        Self(
            id.hyphenated()
                .encode_lower(&mut Uuid::encode_buffer())
                .to_owned(),
        )
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_short_and_plain() {
        let message_id = "9d6c1b6a-2f0e-4c3b-8d1e-0f4a5b6c7d8e";
        assert_eq!(
            OrderId::parse(message_id).map(|id| id.to_string()).as_deref(),
            Some(message_id)
        );
        assert!(OrderId::parse("req:42").is_some());
        let generated = OrderId::from_uuid(Uuid::from_u128(0x9d6c1b6a_2f0e_4c3b_8d1e_0f4a5b6c7d8e));
        assert_eq!(generated.as_str(), message_id);
        assert_eq!(OrderId::parse(generated.as_str()), Some(generated));
        let too_long = "a".repeat(MAX_ORDER_ID_CHARS + 1);
        for bad in ["", "a b", "x\ny", "\u{1b}[31m", "é", too_long.as_str()] {
            assert_eq!(OrderId::parse(bad), None, "{bad:?}");
        }
    }
}
