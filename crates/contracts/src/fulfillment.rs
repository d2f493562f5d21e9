//! What the Interstella fulfillment API takes, and what the monolith's glue
//! hook takes from the microservices on the way there.

use crate::order::{Order, OrderError, Quantity, Resource, ResourceOrder};
use crate::order_id::OrderId;
use crate::quote::quoted;
use serde::ser::SerializeMap as _;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt;

/// The header carrying the fulfillment API key.
pub const API_KEY_HEADER: &str = "x-api-key";
/// The header that makes a repeated fulfillment count once; its value is
/// always an [`IdempotencyKey`] we derived, never one a caller sent.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
/// The header carrying the glue hook's shared secret (microservice → monolith).
pub const HOOK_SECRET_HEADER: &str = "x-interstella-hook-secret";
/// The glue hook body's field carrying the idempotency key.
const HOOK_KEY_FIELD: &str = "idempotency_key";
/// The glue hook body's field carrying the order id its log lines carry.
const HOOK_ORDER_ID_FIELD: &str = "order_id";

/// What a fulfillment is for: part of its idempotency key, so a bundle and a
/// resource fulfilled for the same SNS message never share a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FulfillmentKind {
    /// A bundle order, fulfilled by the monolith.
    Bundle,
    /// One resource, produced by its microservice.
    Resource(Resource),
}

impl FulfillmentKind {
    /// The name hashed into the key.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bundle => "bundle",
            Self::Resource(resource) => resource.as_str(),
        }
    }
}

/// The key the fulfillment API dedupes on: hex SHA-256 of
/// `TopicArn\nMessageId\nkind`, derived by our services from a verified SNS
/// message (docs/contract.md, Trust). Only [`IdempotencyKey::derive`] and the
/// glue hook's parser (behind its shared secret) make one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

/// Hex digits in a key (SHA-256).
const KEY_HEX_DIGITS: usize = 64;

impl IdempotencyKey {
    /// The key of the fulfillment of `kind` for SNS message `message_id` on
    /// `topic_arn`: redeliveries of one message share it; another topic's
    /// message with the same MessageId does not.
    pub fn derive(topic_arn: &str, message_id: &str, kind: FulfillmentKind) -> Self {
        let digest = Sha256::new()
            .chain_update(topic_arn)
            .chain_update("\n")
            .chain_update(message_id)
            .chain_update("\n")
            .chain_update(kind.as_str())
            .finalize();
        // One pass into one string: a `format!` per byte was a fifth of a
        // signed order's instructions beyond the RSA check (docs/bench.md).
        Self(hex::encode(digest))
    }

    /// A key as sent in the glue hook's body: 64 lower-case hex digits.
    pub fn parse(text: &str) -> Option<Self> {
        let shaped = text.len() == KEY_HEX_DIGITS
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        shaped.then(|| Self(text.to_owned()))
    }

    /// The key as sent in headers and bodies.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The glue hook's body: `{"iridium": n}`, plus `"idempotency_key"` for an
/// order that came through SNS (a direct order has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookRequest {
    /// The resource produced, and how much.
    pub order: ResourceOrder,
    /// The key the fulfillment API dedupes on; `None` for a direct order.
    pub idempotency_key: Option<IdempotencyKey>,
    /// The order's id in every service's log lines (`order_id`); `None`
    /// from a caller that sends none.
    pub order_id: Option<OrderId>,
}

impl HookRequest {
    /// Reads the hook's body: the order's one key, and the optional key and
    /// order id fields.
    pub fn from_text(body: &[u8]) -> Result<Self, OrderError> {
        let not_json = |e: serde_json::Error| OrderError::NotJson(e.to_string(), ResourceOrder::EXAMPLE);
        let mut body: Value = serde_json::from_slice(body).map_err(not_json)?;
        let order_id = match body.as_object_mut().and_then(|o| o.remove(HOOK_ORDER_ID_FIELD)) {
            None => None,
            Some(Value::String(text)) => {
                Some(OrderId::parse(&text).ok_or_else(|| OrderError::BadOrderId(quoted(&text).owned()))?)
            }
            Some(other) => return Err(OrderError::BadOrderId(quoted(&other.to_string()).owned())),
        };
        let idempotency_key = match body.as_object_mut().and_then(|o| o.remove(HOOK_KEY_FIELD)) {
            None => None,
            Some(Value::String(text)) => Some(
                IdempotencyKey::parse(&text)
                    .ok_or_else(|| OrderError::BadIdempotencyKey(quoted(&text).owned()))?,
            ),
            Some(other) => return Err(OrderError::BadIdempotencyKey(quoted(&other.to_string()).owned())),
        };
        Ok(Self {
            order: ResourceOrder::from_json(&body)?,
            idempotency_key,
            order_id,
        })
    }
}

impl Serialize for HookRequest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields = 1 + usize::from(self.idempotency_key.is_some()) + usize::from(self.order_id.is_some());
        let mut map = serializer.serialize_map(Some(fields))?;
        map.serialize_entry(self.order.resource.as_str(), &self.order.quantity)?;
        if let Some(key) = &self.idempotency_key {
            map.serialize_entry(HOOK_KEY_FIELD, key.as_str())?;
        }
        if let Some(id) = &self.order_id {
            map.serialize_entry(HOOK_ORDER_ID_FIELD, id.as_str())?;
        }
        map.end()
    }
}

/// Which part of the platform produced a fulfillment's resources: the
/// monolith's own gathering, or a microservice through the glue hook. HQ's
/// dashboard charts it over time, so the strangling shows as it happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Producer {
    /// Gathered by the monolith itself (`POST /order/`).
    Monolith,
    /// Produced by the iridium microservice (through the glue hook).
    Iridium,
    /// Produced by the magnesite microservice (through the glue hook).
    Magnesite,
}

impl Producer {
    /// Every producer, the monolith first.
    pub const ALL: [Producer; 3] = [Producer::Monolith, Producer::Iridium, Producer::Magnesite];

    /// The name on the wire and in HQ's ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Monolith => "monolith",
            Self::Iridium => "iridium",
            Self::Magnesite => "magnesite",
        }
    }

    /// The microservice that produces `resource` once it is strangled out.
    pub fn microservice(resource: Resource) -> Self {
        match resource {
            Resource::Iridium => Self::Iridium,
            Resource::Magnesite => Self::Magnesite,
        }
    }

    /// The producer named `name` (as [`Producer::as_str`] writes it).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|producer| producer.as_str() == name)
    }

    /// Whether this producer can have produced `resource`: the monolith
    /// gathers both, a microservice only its own.
    pub fn produces(self, resource: Resource) -> bool {
        self == Self::Monolith || self == Self::microservice(resource)
    }
}

impl fmt::Display for Producer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One fulfillment: `{"iridium": i, "magnesite": m}`, plus, from our
/// monolith, `"produced_by"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FulfillmentRequest {
    /// Units of iridium fulfilled.
    pub iridium: Quantity,
    /// Units of magnesite fulfilled.
    pub magnesite: Quantity,
    /// Which part of the platform produced these resources. Optional on the
    /// wire (the workshop's clients send only the two quantities) and left
    /// out when `None`, so the payload stays the workshop's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub produced_by: Option<Producer>,
}

impl FulfillmentRequest {
    /// A fulfillment of one resource, the other counting 0 (the glue hook's),
    /// produced by that resource's microservice.
    pub fn single(resource: Resource, quantity: Quantity) -> Self {
        let mut request = Self {
            produced_by: Some(Producer::microservice(resource)),
            ..Self::default()
        };
        request.set(resource, quantity);
        request
    }

    /// The quantity of one resource.
    pub fn quantity(&self, resource: Resource) -> Quantity {
        match resource {
            Resource::Iridium => self.iridium,
            Resource::Magnesite => self.magnesite,
        }
    }

    /// The first resource with a quantity that `produced_by` cannot have
    /// produced (a microservice claiming the other resource), if any.
    pub fn misattributed(&self) -> Option<Resource> {
        let producer = self.produced_by?;
        Resource::ALL
            .into_iter()
            .find(|&resource| self.quantity(resource) > 0 && !producer.produces(resource))
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
    fn keys_depend_on_topic_message_and_kind() {
        let id = "00000000-0000-4000-8000-000000000001";
        let key = IdempotencyKey::derive("arn:a", id, FulfillmentKind::Bundle);
        assert_eq!(key, IdempotencyKey::derive("arn:a", id, FulfillmentKind::Bundle));
        assert_eq!(IdempotencyKey::parse(key.as_str()), Some(key.clone()));
        for other in [
            IdempotencyKey::derive("arn:b", id, FulfillmentKind::Bundle),
            IdempotencyKey::derive("arn:a", id, FulfillmentKind::Resource(Resource::Iridium)),
            IdempotencyKey::derive(
                "arn:a\n",
                "\n00000000-0000-4000-8000-000000000001",
                FulfillmentKind::Bundle,
            ),
        ] {
            assert_ne!(key, other);
        }
        // The documented derivation, hashed elsewhere (Python's hashlib).
        assert_eq!(
            IdempotencyKey::derive("arn:a", "m", FulfillmentKind::Resource(Resource::Iridium)).as_str(),
            "2e08dba94844e2f91ba595869e38ff36ca2f5fffd1077a4f2331fe0c567e4ba0"
        );
        for bad in ["", "msg-42", &key.as_str().to_uppercase(), &format!("{key}0")] {
            assert_eq!(IdempotencyKey::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_hook_body_carries_the_key() {
        let key = IdempotencyKey::derive("arn:a", "m", FulfillmentKind::Resource(Resource::Iridium));
        let request = HookRequest {
            order: ResourceOrder {
                resource: Resource::Iridium,
                quantity: 2,
            },
            idempotency_key: Some(key.clone()),
            order_id: OrderId::parse("9d6c1b6a-2f0e-4c3b-8d1e-0f4a5b6c7d8e"),
        };
        let body = serde_json::to_string(&request).unwrap_or_default();
        assert_eq!(
            body,
            format!(
                r#"{{"iridium":2,"idempotency_key":"{key}","order_id":"9d6c1b6a-2f0e-4c3b-8d1e-0f4a5b6c7d8e"}}"#
            )
        );
        assert_eq!(HookRequest::from_text(body.as_bytes()), Ok(request));
        let direct = HookRequest::from_text(br#"{"magnesite": "3"}"#).map(|r| r.idempotency_key);
        assert_eq!(direct, Ok(None));
        for bad in [
            r#"{"iridium":1,"idempotency_key":"msg-42"}"#,
            r#"{"iridium":1,"idempotency_key":7}"#,
        ] {
            assert!(
                matches!(
                    HookRequest::from_text(bad.as_bytes()),
                    Err(OrderError::BadIdempotencyKey(_))
                ),
                "{bad}"
            );
        }
        for bad in [
            r#"{"iridium":1,"order_id":"a b"}"#,
            r#"{"iridium":1,"order_id":7}"#,
        ] {
            assert!(
                matches!(
                    HookRequest::from_text(bad.as_bytes()),
                    Err(OrderError::BadOrderId(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn serializes_as_the_workshop_payload() {
        let request = FulfillmentRequest {
            iridium: 1,
            magnesite: 1,
            produced_by: None,
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
                magnesite: 2,
                produced_by: Some(Producer::Magnesite),
            }
        );
    }

    #[test]
    fn produced_by_is_optional_and_checked_against_the_resources() {
        let old: FulfillmentRequest =
            serde_json::from_str(r#"{"iridium":1,"magnesite":2}"#).unwrap_or_default();
        assert_eq!((old.iridium, old.magnesite, old.produced_by), (1, 2, None));
        let tagged = FulfillmentRequest {
            iridium: 2,
            magnesite: 3,
            produced_by: Some(Producer::Monolith),
        };
        let text = serde_json::to_string(&tagged).unwrap_or_default();
        assert_eq!(text, r#"{"iridium":2,"magnesite":3,"produced_by":"monolith"}"#);
        assert_eq!(
            serde_json::from_str::<FulfillmentRequest>(&text).ok(),
            Some(tagged)
        );
        assert!(
            serde_json::from_str::<FulfillmentRequest>(r#"{"iridium":1,"magnesite":0,"produced_by":"hq"}"#)
                .is_err()
        );
        assert_eq!(tagged.misattributed(), None);
        assert_eq!(
            FulfillmentRequest::single(Resource::Iridium, 4).misattributed(),
            None
        );
        let claims_other = FulfillmentRequest {
            produced_by: Some(Producer::Iridium),
            ..tagged
        };
        assert_eq!(claims_other.misattributed(), Some(Resource::Magnesite));
        for producer in Producer::ALL {
            assert_eq!(Producer::from_name(producer.as_str()), Some(producer));
        }
    }
}
