//! What the Interstella fulfillment API takes.

use crate::order::{Quantity, Resource};
use serde::{Deserialize, Serialize};

/// The header carrying the fulfillment API key.
pub const API_KEY_HEADER: &str = "x-api-key";
/// The header that makes a repeated fulfillment count once (the SNS MessageId).
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// One fulfillment: `{"iridium": i, "magnesite": m}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FulfillmentRequest {
    /// Units of iridium fulfilled.
    pub iridium: Quantity,
    /// Units of magnesite fulfilled.
    pub magnesite: Quantity,
}

impl FulfillmentRequest {
    /// A fulfillment of one resource, the other counting 0 (the glue hook's).
    pub fn single(resource: Resource, quantity: Quantity) -> Self {
        let mut request = Self::default();
        request.set(resource, quantity);
        request
    }

    /// Sets the quantity of one resource.
    fn set(&mut self, resource: Resource, quantity: Quantity) {
        match resource {
            Resource::Iridium => self.iridium = quantity,
            Resource::Magnesite => self.magnesite = quantity,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_the_workshop_payload() {
        let request = FulfillmentRequest {
            iridium: 1,
            magnesite: 1,
        };
        assert_eq!(
            serde_json::to_string(&request).ok().as_deref(),
            Some(r#"{"iridium":1,"magnesite":1}"#)
        );
        let single = FulfillmentRequest::single(Resource::Magnesite, 2);
        assert_eq!(
            single,
            FulfillmentRequest {
                iridium: 0,
                magnesite: 2
            }
        );
    }
}
