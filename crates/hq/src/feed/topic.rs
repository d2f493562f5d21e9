//! The three topics HQ publishes orders on, and what an order on each looks like.

use contracts::order::OrderError;
use contracts::{BundleOrder, FulfillmentKind, Order, Quantity, Resource, ResourceOrder};
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// The AWS region in HQ's ARNs; any will do, this is the workshop's.
const REGION: &str = "us-east-1";
/// The account in HQ's ARNs: the all-zero account local stand-ins use.
const ACCOUNT: &str = "000000000000";

/// A topic of the order feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, strum::VariantArray)]
pub enum Topic {
    /// Bundle orders, `{"bundle": n}`, for the monolith's `/order/`.
    Orders,
    /// Iridium orders, `{"iridium": n}`, for the iridium service.
    Iridium,
    /// Magnesite orders, `{"magnesite": n}`, for the magnesite service.
    Magnesite,
}

impl Topic {
    /// Every topic (the enum's: a topic added to it is here too).
    pub const ALL: &[Topic] = <Self as strum::VariantArray>::VARIANTS;

    /// The topic of `resource`'s orders, which its microservice takes. A
    /// resource added to [`Resource`] does not build here until it has a
    /// topic.
    pub fn of_resource(resource: Resource) -> Self {
        match resource {
            Resource::Iridium => Self::Iridium,
            Resource::Magnesite => Self::Magnesite,
        }
    }

    /// The topic's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Orders => "orders",
            Self::Iridium => "iridium",
            Self::Magnesite => "magnesite",
        }
    }

    /// The topic's ARN, e.g. `arn:aws:sns:us-east-1:000000000000:orders`.
    pub fn arn(self) -> String {
        format!("arn:aws:sns:{REGION}:{ACCOUNT}:{}", self.as_str())
    }

    /// What the services fulfil for an order on this topic: the kind their
    /// idempotency key is derived with.
    pub fn fulfillment_kind(self) -> FulfillmentKind {
        match self {
            Self::Orders => FulfillmentKind::Bundle,
            Self::Iridium => FulfillmentKind::Resource(Resource::Iridium),
            Self::Magnesite => FulfillmentKind::Resource(Resource::Magnesite),
        }
    }

    /// The order text for `quantity`, as the generator publishes it: the
    /// key is the one the services' parsers read for this topic's kind.
    pub fn order(self, quantity: Quantity) -> String {
        match self.fulfillment_kind() {
            FulfillmentKind::Bundle => BundleOrder { bundle: quantity }.to_string(),
            FulfillmentKind::Resource(resource) => ResourceOrder { resource, quantity }.to_string(),
        }
    }

    /// An order for this topic, for error messages.
    pub fn example(self) -> &'static str {
        match self {
            Self::Orders => BundleOrder::EXAMPLE,
            Self::Iridium => Resource::Iridium.example(),
            Self::Magnesite => Resource::Magnesite.example(),
        }
    }

    /// Checks `message` is an order for this topic, with the services' own
    /// parsers: what a subscriber would refuse is refused at publication.
    pub fn validate(self, message: &str) -> Result<Quantity, OrderError> {
        let text = message.as_bytes();
        let resource = match self {
            Self::Orders => return BundleOrder::from_text(text).map(|order| order.bundle),
            Self::Iridium => Resource::Iridium,
            Self::Magnesite => Resource::Magnesite,
        };
        ResourceOrder::from_text(text)
            .and_then(|order| order.only(resource))
            .map(|order| order.quantity)
            .map_err(|error| error.expecting(resource.example()))
    }
}

/// As its name ([`Topic::as_str`], the one place it is spelled).
impl Serialize for Topic {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown topic {}: expected one of {}", contracts::quote::quoted(.0), contracts::order::names(Topic::ALL))]
pub struct UnknownTopic(pub String);

impl FromStr for Topic {
    type Err = UnknownTopic;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let name = name.trim();
        Self::ALL
            .iter()
            .copied()
            .find(|topic| topic.as_str().eq_ignore_ascii_case(name) || topic.arn() == name)
            .ok_or_else(|| UnknownTopic(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_arns_and_orders() {
        assert_eq!(Topic::Orders.arn(), "arn:aws:sns:us-east-1:000000000000:orders");
        assert_eq!("IRIDIUM".parse::<Topic>().ok(), Some(Topic::Iridium));
        assert_eq!(
            Topic::Magnesite.arn().parse::<Topic>().ok(),
            Some(Topic::Magnesite)
        );
        assert!("gold".parse::<Topic>().is_err());
        for &topic in Topic::ALL {
            // What the generator publishes, the services' parsers take.
            assert_eq!(topic.validate(&topic.order(3)).ok(), Some(3), "{topic}");
            assert_eq!(serde_json::to_value(topic).unwrap(), topic.as_str());
        }
        assert_eq!(Topic::Iridium.order(2), r#"{"iridium": 2}"#);
        assert!(Topic::Iridium.validate(r#"{"bundle": 1}"#).is_err());
        assert!(Topic::Orders.validate("{").is_err());
    }
}
