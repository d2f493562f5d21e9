//! Orders: bundles for the monolith, single resources for the microservices.
//!
//! Quantities arrive as numbers (`1`) or numeric strings (`"1"`, the
//! workshop's curl); anything else is refused with a message saying what was
//! expected, because such an order can never succeed.

use crate::quote::{quoted, quoted_json};
use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeMap as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use std::borrow::Cow;
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

    /// Reads the order from JSON text: the `Message` SNS sends as a string,
    /// the object the workshop's curl sends as its `Message` (its text as
    /// written, [`crate::message_order`]), or the glue hook's body.
    ///
    /// Read as written rather than through a `serde_json::Value`, which
    /// keeps the last of a repeated key and makes every decimal an `f64`:
    /// `{"bundle": 1, "bundle": 500}` is two keys, not the one "exactly"
    /// allows, and `1.0000000000000001` is no whole number.
    fn from_text(text: &[u8]) -> Result<Self, OrderError> {
        let shape = || OrderError::WrongShape(Self::EXAMPLE);
        let written: Written<'_> = serde_json::from_slice(crate::delivery::json_text(text))
            .map_err(|e| OrderError::NotJson(e.to_string(), Self::EXAMPLE))?;
        let Written::OneEntry(key, value) = written else {
            return Err(shape());
        };
        // The key decides the shape before the quantity is looked at.
        Self::from_entry(&key, 1).ok_or_else(shape)?;
        let quantity = quantity(&key, value, Self::EXAMPLE)?;
        Self::from_entry(&key, quantity).ok_or_else(shape)
    }
}

/// A JSON value as an order reads it: an object of exactly one entry (a
/// repeated key counts twice), its key and its value's text; or anything
/// else, skipped as serde skips (its strings' UTF-8 and numbers' range
/// unchecked: whatever it holds, it is the wrong shape).
enum Written<'a> {
    /// An object with one entry.
    OneEntry(Cow<'a, str>, &'a RawValue),
    /// Any other value, an object of no or several entries included.
    Other,
}

impl<'de> Deserialize<'de> for Written<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(WrittenVisitor)
    }
}

struct WrittenVisitor;

impl<'de> Visitor<'de> for WrittenVisitor {
    type Value = Written<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let Some(Key(key)) = map.next_key()? else {
            return Ok(Written::Other);
        };
        let value: &RawValue = map.next_value()?;
        let mut one = true;
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value::<IgnoredAny>()?;
            one = false;
        }
        Ok(if one {
            Written::OneEntry(key, value)
        } else {
            Written::Other
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Written::Other)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Written::Other)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Written::Other)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Written::Other)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Written::Other)
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Written::Other)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Written::Other)
    }
}

/// An object's key, borrowed from the text unless it holds an escape.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(key)))
            }

            fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(key.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

impl BundleOrder {
    /// Its one JSON key.
    pub const KEY: &'static str = "bundle";
}

/// The order as JSON text, as the workshop's clients write it (`{"bundle":
/// 3}`): what HQ publishes, and what [`Order::from_text`] reads back.
impl fmt::Display for BundleOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, r#"{{"{}": {}}}"#, Self::KEY, self.bundle)
    }
}

/// The order as JSON text (`{"iridium": 3}`), as [`BundleOrder`]'s is; its
/// key and number need no escaping.
impl fmt::Display for ResourceOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, r#"{{"{}": {}}}"#, self.resource.as_str(), self.quantity)
    }
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

fn quantity(key: &str, value: &RawValue, expected: &'static str) -> Result<Quantity, OrderError> {
    let written = value.get();
    // A string's text, its escapes undone (`"1"`, the workshop's curl).
    let text = || serde_json::from_str::<String>(written).ok();
    let parsed = match written.as_bytes().first() {
        Some(b'"') => text().and_then(|text| text.trim().parse::<u64>().ok()),
        Some(b'0'..=b'9') => whole_number(written),
        // A minus sign, an object, an array, true, false or null.
        _ => None,
    };
    match parsed {
        Some(n) if (1..=u64::from(MAX_QUANTITY)).contains(&n) => Ok(n as Quantity),
        _ => Err(OrderError::BadQuantity {
            key: key.to_owned(),
            got: match text() {
                Some(text) => quoted(&text).owned(),
                None => quoted_json(written).owned(),
            },
            expected,
        }),
    }
}

/// The value of a JSON number's text (non-negative, as JSON writes it) if
/// it is a whole number of at most seven digits, judged exactly: `2`, `2.0`,
/// `2e0` and `0.2e1` are 2, as the workshop's Python read them; `1.5` and
/// `0.99999999999999999999e6` are none.
fn whole_number(number: &str) -> Option<u64> {
    if number.bytes().all(|byte| byte.is_ascii_digit()) {
        return number.parse().ok();
    }
    let (mantissa, exponent) = match number.split_once(['e', 'E']) {
        // An exponent past `i64` makes the number 0, vast or a fraction:
        // none is a quantity.
        Some((mantissa, exponent)) => (mantissa, exponent.parse::<i64>().ok()?),
        None => (number, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    // The number is `digits` × 10^`scale`.
    let digits = [whole, fraction].concat();
    let digits = digits.trim_start_matches('0');
    let significant = digits.trim_end_matches('0');
    let scale = exponent
        .checked_sub(i64::try_from(fraction.len()).ok()?)?
        .checked_add(i64::try_from(digits.len() - significant.len()).ok()?)?;
    if significant.is_empty() {
        return Some(0);
    }
    // A fraction left over, or more than seven digits: no quantity.
    let scale = u32::try_from(scale).ok()?;
    if significant.len() + scale as usize > 7 {
        return None;
    }
    significant
        .parse::<u64>()
        .ok()?
        .checked_mul(10u64.checked_pow(scale)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quote::QUOTED_CHARS;
    use serde_json::{Value, json};

    /// An order read from `order`'s JSON text.
    fn read<O: Order>(order: &Value) -> Result<O, OrderError> {
        O::from_text(order.to_string().as_bytes())
    }

    #[test]
    fn orders_written_as_text_read_back_as_themselves() {
        for bundle in [1, 42, MAX_QUANTITY] {
            let order = BundleOrder { bundle };
            assert_eq!(order.to_string(), format!(r#"{{"bundle": {bundle}}}"#));
            assert_eq!(BundleOrder::from_text(order.to_string().as_bytes()), Ok(order));
        }
        for &resource in Resource::ALL {
            let order = ResourceOrder {
                resource,
                quantity: 7,
            };
            assert_eq!(ResourceOrder::from_text(order.to_string().as_bytes()), Ok(order));
            // The same JSON as the glue hook's body, but for its space.
            let serialized = serde_json::to_value(order).ok();
            assert_eq!(serde_json::from_str::<Value>(&order.to_string()).ok(), serialized);
        }
    }

    #[test]
    fn bundle_quantity_may_be_number_or_numeric_string() {
        assert_eq!(
            read::<BundleOrder>(&json!({"bundle": 2})),
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
    fn a_decimal_is_whole_only_if_it_is_exactly() {
        let bundle = |text: &str| {
            BundleOrder::from_text(format!(r#"{{"bundle": {text}}}"#).as_bytes()).map(|order| order.bundle)
        };
        for (text, whole) in [
            ("3", 3),
            ("3.000", 3),
            ("0.3e1", 3),
            ("300e-2", 3),
            ("3E+0", 3),
            ("1000000", 1_000_000),
            ("1e6", 1_000_000),
            ("0.000001e12", 1_000_000),
            ("10000000e-1", 1_000_000),
        ] {
            assert_eq!(bundle(text), Ok(whole), "{text}");
        }
        // An f64 reads each of these as a whole number.
        for text in [
            "1.0000000000000001",
            "999999.99999999999999",
            "0.99999999999999999999e6",
            "1000000.0000000000000001",
            "1e99999999999999999999",
            "1e-99999999999999999999",
            "0e5",
            "1000001",
            "10000001e-1",
        ] {
            assert!(
                matches!(bundle(text), Err(OrderError::BadQuantity { .. })),
                "{text}: {:?}",
                bundle(text)
            );
        }
    }

    #[test]
    fn a_repeated_key_is_not_exactly_one() {
        for (text, expected) in [
            (r#"{"bundle": 1, "bundle": 500}"#, BundleOrder::EXAMPLE),
            (r#"{"bundle": 1, "bun\u0064le": 500}"#, BundleOrder::EXAMPLE),
            (r#"{"bundle": 1, "extra": {"a": [1, 2]}}"#, BundleOrder::EXAMPLE),
        ] {
            assert_eq!(
                BundleOrder::from_text(text.as_bytes()),
                Err(OrderError::WrongShape(expected)),
                "{text}"
            );
        }
        assert_eq!(
            ResourceOrder::from_text(br#"{"iridium": 1, "iridium": 2}"#),
            Err(OrderError::WrongShape(ResourceOrder::EXAMPLE))
        );
        // An escaped key is the same key.
        assert_eq!(
            BundleOrder::from_text(br#"{"bun\u0064le": "2"}"#),
            Ok(BundleOrder { bundle: 2 })
        );
        // What is not an object is the wrong shape, not "not JSON".
        for other in [&b"[1]"[..], b"\"bundle\"", b"1", b"null", b"true", b"{}"] {
            assert_eq!(
                BundleOrder::from_text(other),
                Err(OrderError::WrongShape(BundleOrder::EXAMPLE))
            );
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
                    read::<BundleOrder>(&json!({"bundle": bad})),
                    Err(OrderError::BadQuantity { .. })
                ),
                "{bad}"
            );
        }
        assert_eq!(
            read::<BundleOrder>(&json!({"bundle": 0})).map_err(|e| e.to_string()),
            Err(
                r#"bundle must be a whole number from 1 to 1000000, got 0; expected exactly {"bundle": 1}"#
                    .into()
            )
        );
    }

    #[test]
    fn a_bad_quantity_is_quoted_short_and_escaped() {
        let refusal = |bad: Value| match read::<BundleOrder>(&json!({"bundle": bad})) {
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
            read::<ResourceOrder>(&order)
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
            read::<ResourceOrder>(&json!({"magnesite": "4"})).map(|o| (o.resource, o.quantity)),
            Ok((Resource::Magnesite, 4))
        );
        assert_eq!(
            read::<ResourceOrder>(&json!({"bundle": 1})),
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
