//! What the Interstella fulfillment API takes, and what the monolith's glue
//! hook takes from the microservices on the way there.

use crate::order::{MAX_QUANTITY, Order, OrderError, Quantity, Resource, ResourceOrder};
use crate::order_id::{ORDER_ID_HEADER, OrderId};
use crate::quote::quoted;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// The header carrying the fulfillment API key.
pub const API_KEY_HEADER: &str = "x-api-key";
/// The header that makes a repeated fulfillment count once; its value is
/// always an [`IdempotencyKey`] a service derived (a microservice sends it
/// to the glue hook with the hook's secret), never one an outside caller sent.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
/// The header on a 2xx answer saying it repeats an earlier one (the same
/// idempotency key): the order was counted once, before. HQ sends it; the
/// monolith passes it on to its caller, a microservice to SNS or curl.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// The header carrying the glue hook's shared secret (microservice → monolith).
pub const HOOK_SECRET_HEADER: &str = "x-interstella-hook-secret";
/// The header naming which part of the platform produced a fulfillment's
/// resources ([`Producer`]), which HQ's dashboard charts. A header, not a
/// field: the body is exactly the two quantities (SPEC).
pub const PRODUCED_BY_HEADER: &str = "x-interstella-produced-by";

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
pub(crate) const KEY_HEX_DIGITS: usize = 64;

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

    /// A key as sent in the glue hook's header: 64 lower-case hex digits.
    pub fn parse(text: &str) -> Option<Self> {
        let shaped = text.len() == KEY_HEX_DIGITS
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        shaped.then(|| Self(text.to_owned()))
    }

    /// The key as sent in the [`IDEMPOTENCY_KEY_HEADER`] header.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An idempotency key as the fulfillment API takes it from any caller: 1
/// to [`ApiIdempotencyKey::MAX_LEN`] visible ASCII characters. Our services
/// send an [`IdempotencyKey`] (64 hex digits, always one of these); other
/// clients of the API, the workshop's among them, may send keys of their own.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ApiIdempotencyKey(String);

impl ApiIdempotencyKey {
    /// The longest key the API takes.
    pub const MAX_LEN: usize = 255;

    /// A key as sent in the [`IDEMPOTENCY_KEY_HEADER`] header, without the
    /// whitespace around it (no part of a header's value, RFC 9110).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let shaped =
            !text.is_empty() && text.len() <= Self::MAX_LEN && text.bytes().all(|b| b.is_ascii_graphic());
        shaped.then(|| Self(text.to_owned()))
    }

    /// The key as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The glue hook's request. Its body is exactly the order's one key,
/// `{"iridium": n}` (SPEC); the idempotency key and the order id travel in
/// the [`IDEMPOTENCY_KEY_HEADER`] and [`ORDER_ID_HEADER`] headers, which the
/// monolith reads only from a caller that presented the hook's secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookRequest {
    /// The resource produced, and how much: the body.
    pub order: ResourceOrder,
    /// The key the fulfillment API dedupes on; `None` for a direct order.
    pub idempotency_key: Option<IdempotencyKey>,
    /// The order's id in every service's log lines (`order_id`); `None`
    /// from a caller that sends none.
    pub order_id: Option<OrderId>,
}

impl HookRequest {
    /// Reads the hook's request: the body (exactly one key) and the
    /// idempotency key's header as it arrived, beside the order id already
    /// read from its header ([`OrderId::from_header`]): the monolith reads
    /// that first, so that a body it refuses is logged under the order's id.
    pub fn from_parts(
        body: &[u8],
        idempotency_key: Option<&[u8]>,
        order_id: Option<OrderId>,
    ) -> Result<Self, OrderError> {
        let idempotency_key = header(
            idempotency_key,
            IdempotencyKey::parse,
            OrderError::BadIdempotencyKey,
        )?;
        Ok(Self {
            order: ResourceOrder::from_text(body)?,
            idempotency_key,
            order_id,
        })
    }

    /// The headers that carry the key and the order id, those present.
    pub fn headers(&self) -> Vec<(&'static str, &str)> {
        let key = self
            .idempotency_key
            .as_ref()
            .map(|key| (IDEMPOTENCY_KEY_HEADER, key.as_str()));
        let id = self.order_id.as_ref().map(|id| (ORDER_ID_HEADER, id.as_str()));
        key.into_iter().chain(id).collect()
    }
}

/// A header's value read with `parse`, if it was sent; `bad` (with the
/// value quoted) if it does not parse.
pub(crate) fn header<T>(
    value: Option<&[u8]>,
    parse: impl Fn(&str) -> Option<T>,
    bad: fn(String) -> OrderError,
) -> Result<Option<T>, OrderError> {
    value
        .map(|value| {
            std::str::from_utf8(value)
                .ok()
                .and_then(&parse)
                .ok_or_else(|| bad(quoted(&String::from_utf8_lossy(value)).owned()))
        })
        .transpose()
}

/// Which part of the platform produced a fulfillment's resources: the
/// monolith's own gathering, or a microservice through the glue hook. HQ's
/// dashboard charts it over time, so the strangling shows as it happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, strum::VariantArray)]
pub enum Producer {
    /// Gathered by the monolith itself (`POST /order/`).
    Monolith,
    /// Produced by the iridium microservice (through the glue hook).
    Iridium,
    /// Produced by the magnesite microservice (through the glue hook).
    Magnesite,
}

impl Producer {
    /// Every producer, the monolith first (the enum's order: a producer
    /// added to it is here too).
    pub const ALL: &[Producer] = <Self as strum::VariantArray>::VARIANTS;

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
        Self::ALL
            .iter()
            .copied()
            .find(|producer| producer.as_str() == name)
    }

    /// Reads the [`PRODUCED_BY_HEADER`] header's value as it arrived:
    /// `None` when it was not sent, an error quoting it (short, escaped)
    /// when it names no producer.
    pub fn from_header(value: Option<&[u8]>) -> Result<Option<Self>, OrderError> {
        header(value, Self::from_name, OrderError::BadProducer)
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

/// One fulfillment: the body `{"iridium": i, "magnesite": m}`, exactly, and
/// from our monolith which part of the platform produced it, in the
/// [`PRODUCED_BY_HEADER`] header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FulfillmentRequest {
    /// Units of iridium fulfilled: 0 (none gathered, e.g. strangled) to
    /// [`MAX_QUANTITY`], as an order can ask for.
    #[serde(deserialize_with = "fulfilled_quantity")]
    pub iridium: Quantity,
    /// Units of magnesite fulfilled, as `iridium`.
    #[serde(deserialize_with = "fulfilled_quantity")]
    pub magnesite: Quantity,
    /// Which part of the platform produced these resources: not in the body
    /// but in the [`PRODUCED_BY_HEADER`] header ([`Self::produced_by_header`],
    /// [`Producer::from_header`]); `None` from the workshop's clients, which
    /// send none.
    #[serde(skip)]
    pub produced_by: Option<Producer>,
}

/// A fulfilled quantity: no order asks for more than [`MAX_QUANTITY`], so a
/// larger one is refused rather than counted (it would only inflate the
/// totals and the reconciliation's units).
fn fulfilled_quantity<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Quantity, D::Error> {
    let quantity = Quantity::deserialize(deserializer)?;
    if quantity > MAX_QUANTITY {
        return Err(serde::de::Error::invalid_value(
            serde::de::Unexpected::Unsigned(quantity.into()),
            &format!("a whole number from 0 to {MAX_QUANTITY}, as no order asks for more").as_str(),
        ));
    }
    Ok(quantity)
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

    /// The [`PRODUCED_BY_HEADER`] header that carries `produced_by`, if any.
    pub fn produced_by_header(&self) -> Option<(&'static str, &'static str)> {
        self.produced_by
            .map(|producer| (PRODUCED_BY_HEADER, producer.as_str()))
    }

    /// The quantity of one resource.
    pub fn quantity(&self, resource: Resource) -> Quantity {
        match resource {
            Resource::Iridium => self.iridium,
            Resource::Magnesite => self.magnesite,
        }
    }

    /// Whether `other` asks for the same quantity of every resource
    /// (whoever produced them).
    pub fn same_quantities(&self, other: &Self) -> bool {
        Resource::ALL
            .iter()
            .all(|&resource| self.quantity(resource) == other.quantity(resource))
    }

    /// The first resource with a quantity that `produced_by` cannot have
    /// produced (a microservice claiming the other resource), if any.
    pub fn misattributed(&self) -> Option<Resource> {
        let producer = self.produced_by?;
        Resource::ALL
            .iter()
            .copied()
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

    /// What the API takes: any caller's key of visible ASCII, ours among
    /// them, without the whitespace around it.
    #[test]
    fn the_api_takes_our_keys_and_any_callers_visible_ascii() {
        let ours = IdempotencyKey::derive("arn:a", "m", FulfillmentKind::Bundle);
        assert_eq!(
            ApiIdempotencyKey::parse(ours.as_str()).map(|key| key.as_str().to_owned()),
            Some(ours.as_str().to_owned())
        );
        assert_eq!(
            ApiIdempotencyKey::parse(" my-order-1 ").map(|key| key.as_str().to_owned()),
            Some("my-order-1".to_owned())
        );
        let longest = "k".repeat(ApiIdempotencyKey::MAX_LEN);
        assert!(ApiIdempotencyKey::parse(&longest).is_some());
        for refused in [
            String::new(),
            "  ".into(),
            format!("{longest}k"),
            "a b".into(),
            "é".into(),
            "a\tb".into(),
        ] {
            assert_eq!(ApiIdempotencyKey::parse(&refused), None, "{refused:?}");
        }
    }

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
    fn the_hook_body_is_the_order_and_the_key_is_a_header() {
        let key = IdempotencyKey::derive("arn:a", "m", FulfillmentKind::Resource(Resource::Iridium));
        let id = "9d6c1b6a-2f0e-4c3b-8d1e-0f4a5b6c7d8e";
        let request = HookRequest {
            order: ResourceOrder {
                resource: Resource::Iridium,
                quantity: 2,
            },
            idempotency_key: Some(key.clone()),
            order_id: OrderId::parse(id),
        };
        let body = serde_json::to_string(&request.order).unwrap_or_default();
        assert_eq!(body, r#"{"iridium":2}"#);
        assert_eq!(
            request.headers(),
            [(IDEMPOTENCY_KEY_HEADER, key.as_str()), (ORDER_ID_HEADER, id)]
        );
        let parsed = HookRequest::from_parts(
            body.as_bytes(),
            Some(key.as_str().as_bytes()),
            OrderId::from_header(Some(id.as_bytes())).unwrap(),
        );
        assert_eq!(parsed, Ok(request));
        let direct = HookRequest::from_parts(br#"{"magnesite": "3"}"#, None, None);
        assert_eq!(direct.map(|r| r.headers().len()), Ok(0));
        // The body is exactly one key: the old body fields are refused.
        for bad in [
            format!(r#"{{"iridium":1,"idempotency_key":"{key}"}}"#),
            format!(r#"{{"iridium":1,"order_id":"{id}"}}"#),
        ] {
            assert!(
                matches!(
                    HookRequest::from_parts(bad.as_bytes(), None, None),
                    Err(OrderError::WrongShape(_))
                ),
                "{bad}"
            );
        }
        for bad in [&b"msg-42"[..], b"", &[0xff; 64]] {
            assert!(
                matches!(
                    HookRequest::from_parts(br#"{"iridium":1}"#, Some(bad), None),
                    Err(OrderError::BadIdempotencyKey(_))
                ),
                "{bad:?}"
            );
        }
        for bad in [&b"a b"[..], b"", &[b'x'; 65]] {
            assert!(
                matches!(OrderId::from_header(Some(bad)), Err(OrderError::BadOrderId(_))),
                "{bad:?}"
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
    fn the_same_quantities_are_those_of_every_resource_whoever_produced_them() {
        let hook = FulfillmentRequest::single(Resource::Iridium, 2);
        let bundle = FulfillmentRequest {
            iridium: 2,
            magnesite: 0,
            produced_by: Some(Producer::Monolith),
        };
        assert!(hook.same_quantities(&bundle));
        let other = FulfillmentRequest {
            magnesite: 1,
            ..bundle
        };
        assert!(!hook.same_quantities(&other));
    }

    #[test]
    fn a_fulfilled_quantity_is_0_to_what_an_order_may_ask_for() {
        let parse = |text: &str| serde_json::from_str::<FulfillmentRequest>(text).map_err(|e| e.to_string());
        let most = parse(r#"{"iridium":0,"magnesite":1000000}"#).map(|r| (r.iridium, r.magnesite));
        assert_eq!(most, Ok((0, MAX_QUANTITY)));
        for over in [
            r#"{"iridium":1000001,"magnesite":0}"#,
            r#"{"iridium":0,"magnesite":4294967295}"#,
        ] {
            let refused = parse(over).unwrap_err();
            assert!(
                refused.contains("expected a whole number from 0 to 1000000, as no order asks for more"),
                "{refused}"
            );
        }
    }

    #[test]
    fn produced_by_travels_in_a_header_and_is_checked_against_the_resources() {
        let old: FulfillmentRequest =
            serde_json::from_str(r#"{"iridium":1,"magnesite":2}"#).unwrap_or_default();
        assert_eq!((old.iridium, old.magnesite, old.produced_by), (1, 2, None));
        assert_eq!(old.produced_by_header(), None);
        let tagged = FulfillmentRequest {
            iridium: 2,
            magnesite: 3,
            produced_by: Some(Producer::Monolith),
        };
        // The body is exactly the two quantities (SPEC); the producer is a header.
        let text = serde_json::to_string(&tagged).unwrap_or_default();
        assert_eq!(text, r#"{"iridium":2,"magnesite":3}"#);
        assert_eq!(
            tagged.produced_by_header(),
            Some((PRODUCED_BY_HEADER, "monolith"))
        );
        assert!(
            serde_json::from_str::<FulfillmentRequest>(
                r#"{"iridium":1,"magnesite":0,"produced_by":"monolith"}"#
            )
            .is_err()
        );
        assert_eq!(Producer::from_header(None), Ok(None));
        assert_eq!(
            Producer::from_header(Some(b"iridium")),
            Ok(Some(Producer::Iridium))
        );
        assert_eq!(
            Producer::from_header(Some(b"hq\n")).map_err(|e| e.to_string()),
            Err(
                r#"the x-interstella-produced-by header must be one of monolith, iridium, magnesite, got "hq\n""#
                    .to_owned()
            )
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
        for &producer in Producer::ALL {
            assert_eq!(Producer::from_name(producer.as_str()), Some(producer));
        }
    }
}
