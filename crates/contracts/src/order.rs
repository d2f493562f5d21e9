//! Orders: bundles for the monolith, single resources for the microservices.
//!
//! Quantities arrive as numbers (`1`) or numeric strings (`"1"`, the
//! workshop's curl); anything else is refused with a message saying what was
//! expected, because such an order can never succeed.

use crate::quote::{quoted, quoted_json};
use serde::ser::SerializeMap as _;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use std::fmt;
use std::str::FromStr;

/// How many units of something were ordered: a whole number, at least 1.
pub type Quantity = u32;

/// The largest quantity one order may ask for; beyond it is a typo or an attack.
pub const MAX_QUANTITY: Quantity = 1_000_000;

/// A resource Interstella gathers and fulfills; in JSON, its lower-case name
/// ([`Resource::as_str`], the one place it is spelled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, strum::VariantArray)]
pub enum Resource {
    /// Iridium, the first resource carved out of the monolith.
    Iridium,
    /// Magnesite, the second.
    Magnesite,
}

impl Resource {
    /// Every resource, in the order the monolith gathers them (the enum's:
    /// a resource added to it is here too).
    pub const ALL: &[Resource] = <Self as strum::VariantArray>::VARIANTS;

    /// The lower-case name used in JSON keys, paths and settings.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Iridium => "iridium",
            Self::Magnesite => "magnesite",
        }
    }

    /// The resource named exactly `name` (a JSON key), as
    /// [`Resource::as_str`] writes it.
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|resource| resource.as_str() == name)
    }

    /// An order for this resource alone, for error messages.
    pub fn example(self) -> &'static str {
        match self {
            Self::Iridium => r#"{"iridium": 1}"#,
            Self::Magnesite => r#"{"magnesite": 1}"#,
        }
    }

    /// The capitalised name used in log lines (`Getting Iridium`).
    pub fn title(self) -> &'static str {
        match self {
            Self::Iridium => "Iridium",
            Self::Magnesite => "Magnesite",
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a resource.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown resource {}: expected one of {}", quoted(.0), names(Resource::ALL))]
pub struct UnknownResource(pub String);

impl FromStr for Resource {
    type Err = UnknownResource;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let trimmed = name.trim();
        Self::ALL
            .iter()
            .copied()
            .find(|resource| resource.as_str().eq_ignore_ascii_case(trimmed))
            .ok_or_else(|| UnknownResource(name.to_owned()))
    }
}

/// `items` by name, comma-separated: what an "expected one of" lists.
pub fn names<T: fmt::Display>(items: &[T]) -> String {
    items.iter().map(T::to_string).collect::<Vec<_>>().join(", ")
}

/// An order for `bundle` bundles, each one iridium and one magnesite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BundleOrder {
    /// How many bundles.
    pub bundle: Quantity,
}

/// An order for one resource: `{"iridium": n}` or `{"magnesite": n}`.
///
/// What a resource service takes (its own resource only, see
/// [`ResourceOrder::only`]) and, serialized the same way, the body the
/// resource services send to the monolith's glue hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceOrder {
    /// Which resource.
    pub resource: Resource,
    /// How much of it.
    pub quantity: Quantity,
}

/// Why an order was refused; the text tells the sender what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// The order is not JSON.
    #[error("the order is not valid JSON ({0}); expected {1}")]
    NotJson(String, &'static str),
    /// The order is JSON but not of the expected shape.
    #[error("this service is expecting exactly {0}")]
    WrongShape(&'static str),
    /// The quantity is not a whole number from 1 to 1,000,000.
    #[error("{key} must be a whole number from 1 to {MAX_QUANTITY}, got {got}; expected exactly {expected}")]
    BadQuantity {
        /// The key whose value was wrong.
        key: String,
        /// The value as it arrived, as JSON, cut short and escaped.
        got: String,
        /// What a correct order looks like.
        expected: &'static str,
    },
    /// The glue hook's `Idempotency-Key` header is not a key we derive (quoted).
    #[error(
        "the {} header must be {} lower-case hex digits, got {}",
        crate::fulfillment::IDEMPOTENCY_KEY_HEADER,
        crate::fulfillment::KEY_HEX_DIGITS,
        .0
    )]
    BadIdempotencyKey(String),
    /// The glue hook's `x-interstella-order-id` header is not short and plain (quoted).
    #[error(
        "the {} header must be 1 to {} ASCII letters, digits, '-', '_', '.' or ':', got {}",
        crate::order_id::ORDER_ID_HEADER,
        crate::order_id::MAX_ORDER_ID_CHARS,
        .0
    )]
    BadOrderId(String),
    /// The fulfillment's `x-interstella-produced-by` header names no producer (quoted).
    #[error(
        "the {} header must be one of {}, got {}",
        crate::fulfillment::PRODUCED_BY_HEADER,
        names(crate::fulfillment::Producer::ALL),
        .0
    )]
    BadProducer(String),
}

impl OrderError {
    /// The same error, naming `example` as what a correct order looks like
    /// (a resource service takes only its own resource).
    pub fn expecting(self, example: &'static str) -> Self {
        match self {
            Self::NotJson(why, _) => Self::NotJson(why, example),
            Self::WrongShape(_) => Self::WrongShape(example),
            Self::BadQuantity { key, got, .. } => Self::BadQuantity {
                key,
                got,
                expected: example,
            },
            bad @ (Self::BadIdempotencyKey(_) | Self::BadOrderId(_) | Self::BadProducer(_)) => bad,
        }
    }
}

/// Something an endpoint takes as an order: a one-key JSON object whose
/// value is a [`Quantity`].
pub trait Order: Sized {
    /// A correct order, quoted in every error message.
    const EXAMPLE: &'static str;

    /// Reads the order from its key and quantity; `None` if the key is not
    /// one this order has.
    fn from_entry(key: &str, quantity: Quantity) -> Option<Self>;

    /// Reads the order from JSON (an object, as the workshop's curl sends it).
    fn from_json(order: &Value) -> Result<Self, OrderError> {
        let shape = || OrderError::WrongShape(Self::EXAMPLE);
        let object: &Map<String, Value> = order.as_object().ok_or_else(shape)?;
        let mut entries = object.iter();
        let (Some((key, value)), None) = (entries.next(), entries.next()) else {
            return Err(shape());
        };
        // The key decides the shape before the quantity is looked at.
        Self::from_entry(key, 1).ok_or_else(shape)?;
        let quantity = quantity(key, value, Self::EXAMPLE)?;
        Self::from_entry(key, quantity).ok_or_else(shape)
    }

    /// Reads the order from JSON text (the `Message` string SNS sends, or
    /// the glue hook's body).
    fn from_text(text: &[u8]) -> Result<Self, OrderError> {
        let order: Value = serde_json::from_slice(crate::delivery::json_text(text))
            .map_err(|e| OrderError::NotJson(e.to_string(), Self::EXAMPLE))?;
        Self::from_json(&order)
    }
}

impl BundleOrder {
    /// Its one JSON key.
    pub const KEY: &'static str = "bundle";
}

impl Order for BundleOrder {
    const EXAMPLE: &'static str = r#"{"bundle": 1}"#;

    fn from_entry(key: &str, bundle: Quantity) -> Option<Self> {
        (key == Self::KEY).then_some(Self { bundle })
    }
}

impl Order for ResourceOrder {
    const EXAMPLE: &'static str = r#"{"iridium": 1} or {"magnesite": 1}"#;

    fn from_entry(key: &str, quantity: Quantity) -> Option<Self> {
        Resource::named(key).map(|resource| Self { resource, quantity })
    }
}

impl ResourceOrder {
    /// This order if it is for `resource`, else what a service producing
    /// `resource` expects.
    pub fn only(self, resource: Resource) -> Result<Self, OrderError> {
        if self.resource == resource {
            Ok(self)
        } else {
            Err(OrderError::WrongShape(resource.example()))
        }
    }
}

impl Serialize for ResourceOrder {
    /// `{"iridium": n}`: the glue hook's body, and the order as sent.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(self.resource.as_str(), &self.quantity)?;
        map.end()
    }
}

fn quantity(key: &str, value: &Value, expected: &'static str) -> Result<Quantity, OrderError> {
    let parsed = match value {
        // `1.0` is a whole number too (JSON does not tell it from `1`, and
        // the workshop's Python read it as 1); `1.5` is not.
        Value::Number(number) => number.as_u64().or_else(|| {
            number
                .as_f64()
                .filter(|n| n.fract() == 0.0 && (1.0..=f64::from(MAX_QUANTITY)).contains(n))
                .map(|n| n as u64)
        }),
        Value::String(text) => text.trim().parse::<u64>().ok(),
        _ => None,
    };
    match parsed {
        Some(n) if (1..=u64::from(MAX_QUANTITY)).contains(&n) => Ok(n as Quantity),
        _ => Err(OrderError::BadQuantity {
            key: key.to_owned(),
            got: match value {
                Value::String(text) => quoted(text).owned(),
                other => quoted_json(&other.to_string()).owned(),
            },
            expected,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quote::QUOTED_CHARS;
    use serde_json::json;

    #[test]
    fn bundle_quantity_may_be_number_or_numeric_string() {
        assert_eq!(
            BundleOrder::from_json(&json!({"bundle": 2})),
            Ok(BundleOrder { bundle: 2 })
        );
        assert_eq!(
            BundleOrder::from_text(br#"{"bundle": "1"}"#),
            Ok(BundleOrder { bundle: 1 })
        );
        // JSON does not tell 2.0 from 2.
        for whole in [br#"{"bundle": 2.0}"#.as_slice(), br#"{"bundle": 2e0}"#] {
            assert_eq!(BundleOrder::from_text(whole), Ok(BundleOrder { bundle: 2 }));
        }
    }

    #[test]
    fn bad_quantities_are_refused() {
        for bad in [
            json!(-1),
            json!("-1"),
            json!(0),
            json!(1.5),
            json!(0.0),
            json!(1e7),
            json!("2.0"),
            json!("one"),
            json!(null),
            json!([1]),
            json!(5_000_000),
        ] {
            assert!(
                matches!(
                    BundleOrder::from_json(&json!({"bundle": bad})),
                    Err(OrderError::BadQuantity { .. })
                ),
                "{bad}"
            );
        }
        assert_eq!(
            BundleOrder::from_json(&json!({"bundle": 0})).map_err(|e| e.to_string()),
            Err(
                r#"bundle must be a whole number from 1 to 1000000, got 0; expected exactly {"bundle": 1}"#
                    .into()
            )
        );
    }

    #[test]
    fn a_bad_quantity_is_quoted_short_and_escaped() {
        let refusal = |bad: Value| match BundleOrder::from_json(&json!({"bundle": bad})) {
            Err(OrderError::BadQuantity { got, .. }) => got,
            other => panic!("{other:?}"),
        };
        let long = "y".repeat(300);
        assert_eq!(
            refusal(json!(long)),
            format!("\"{}\"…(300 bytes)", "y".repeat(QUOTED_CHARS))
        );
        assert_eq!(
            refusal(json!("1\u{2028}FAKE \u{202e}")),
            r#""1\u{2028}FAKE \u{202e}""#
        );
        let list: Vec<u32> = (0..100).collect();
        let shown = refusal(json!(list));
        assert!(
            shown.starts_with("[0,1,2") && shown.ends_with("…(291 bytes)"),
            "{shown}"
        );
    }

    #[test]
    fn resource_service_takes_exactly_its_own_key() {
        let own = |order: Value| {
            ResourceOrder::from_json(&order)
                .and_then(|order| order.only(Resource::Iridium))
                .map_err(|e| e.expecting(Resource::Iridium.example()))
        };
        assert_eq!(
            own(json!({"iridium": 3})),
            Ok(ResourceOrder {
                resource: Resource::Iridium,
                quantity: 3
            })
        );
        assert!(own(json!({"magnesite": 3})).is_err());
        assert!(own(json!({"iridium": 3, "magnesite": 1})).is_err());
        for wrong in [json!({}), json!({"magnesite": 3}), json!({"Iridium": 3})] {
            assert_eq!(
                own(wrong).map_err(|e| e.to_string()),
                Err(r#"this service is expecting exactly {"iridium": 1}"#.into())
            );
        }
    }

    #[test]
    fn glue_hook_takes_either_resource() {
        assert_eq!(
            ResourceOrder::from_json(&json!({"magnesite": "4"})).map(|o| (o.resource, o.quantity)),
            Ok((Resource::Magnesite, 4))
        );
        assert_eq!(
            ResourceOrder::from_json(&json!({"bundle": 1})),
            Err(OrderError::WrongShape(r#"{"iridium": 1} or {"magnesite": 1}"#))
        );
    }

    #[test]
    fn the_glue_hook_body_round_trips() {
        let order = ResourceOrder {
            resource: Resource::Magnesite,
            quantity: 7,
        };
        let body = serde_json::to_vec(&order).unwrap_or_default();
        assert_eq!(body, br#"{"magnesite":7}"#);
        assert_eq!(ResourceOrder::from_text(&body), Ok(order));
    }

    #[test]
    fn not_json_names_the_expected_order() {
        assert!(matches!(
            BundleOrder::from_text(b"{"),
            Err(OrderError::NotJson(_, r#"{"bundle": 1}"#))
        ));
    }
}
