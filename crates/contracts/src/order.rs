//! Orders: bundles for the monolith, single resources for the microservices.
//!
//! Quantities arrive as numbers (`1`) or numeric strings (`"1"`, the
//! workshop's curl); anything else is refused with a message saying what was
//! expected, because such an order can never succeed.

use serde_json::{Map, Value};
use std::fmt;
use std::str::FromStr;

/// How many units of something were ordered: a whole number, at least 1.
pub type Quantity = u32;

/// The largest quantity one order may ask for; beyond it is a typo or an attack.
pub const MAX_QUANTITY: Quantity = 1_000_000;

/// A resource Interstella gathers and fulfills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    /// Iridium, the first resource carved out of the monolith.
    Iridium,
    /// Magnesite, the second.
    Magnesite,
}

impl Resource {
    /// Every resource, in the order the monolith gathers them.
    pub const ALL: [Resource; 2] = [Resource::Iridium, Resource::Magnesite];

    /// The lower-case name used in JSON keys, paths and settings.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Iridium => "iridium",
            Self::Magnesite => "magnesite",
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
#[error("unknown resource {0:?}: expected iridium or magnesite")]
pub struct UnknownResource(pub String);

impl FromStr for Resource {
    type Err = UnknownResource;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name.trim().to_ascii_lowercase().as_str() {
            "iridium" => Ok(Self::Iridium),
            "magnesite" => Ok(Self::Magnesite),
            _ => Err(UnknownResource(name.to_owned())),
        }
    }
}

/// An order for `bundle` bundles, each one iridium and one magnesite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BundleOrder {
    /// How many bundles.
    pub bundle: Quantity,
}

/// An order for one resource.
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
    /// The quantity is not a whole number from 1 to [`MAX_QUANTITY`].
    #[error("{key} must be a whole number from 1 to {MAX_QUANTITY}, got {got}; expected exactly {expected}")]
    BadQuantity {
        /// The key whose value was wrong.
        key: String,
        /// The value as it arrived.
        got: String,
        /// What a correct order looks like.
        expected: &'static str,
    },
}

const BUNDLE_EXAMPLE: &str = r#"{"bundle": 1}"#;
const IRIDIUM_EXAMPLE: &str = r#"{"iridium": 1}"#;
const MAGNESITE_EXAMPLE: &str = r#"{"magnesite": 1}"#;
const HOOK_EXAMPLE: &str = r#"{"iridium": 1} or {"magnesite": 1}"#;

fn example(resource: Resource) -> &'static str {
    match resource {
        Resource::Iridium => IRIDIUM_EXAMPLE,
        Resource::Magnesite => MAGNESITE_EXAMPLE,
    }
}

/// Parses a bundle order: `{"bundle": n}`.
pub fn parse_bundle(order: &Value) -> Result<BundleOrder, OrderError> {
    let (key, value) = single_entry(order, BUNDLE_EXAMPLE)?;
    if key != "bundle" {
        return Err(OrderError::WrongShape(BUNDLE_EXAMPLE));
    }
    Ok(BundleOrder {
        bundle: quantity(key, value, BUNDLE_EXAMPLE)?,
    })
}

/// Parses an order for one given resource: exactly `{"<resource>": n}`.
pub fn parse_resource_order(order: &Value, resource: Resource) -> Result<ResourceOrder, OrderError> {
    let expected = example(resource);
    let (key, value) = single_entry(order, expected)?;
    if key != resource.as_str() {
        return Err(OrderError::WrongShape(expected));
    }
    Ok(ResourceOrder {
        resource,
        quantity: quantity(key, value, expected)?,
    })
}

/// Parses the glue hook's body: exactly one of `{"iridium": n}`, `{"magnesite": n}`.
pub fn parse_any_resource_order(order: &Value) -> Result<ResourceOrder, OrderError> {
    let (key, value) = single_entry(order, HOOK_EXAMPLE)?;
    let resource = match key.as_str() {
        "iridium" => Resource::Iridium,
        "magnesite" => Resource::Magnesite,
        _ => return Err(OrderError::WrongShape(HOOK_EXAMPLE)),
    };
    Ok(ResourceOrder {
        resource,
        quantity: quantity(key, value, HOOK_EXAMPLE)?,
    })
}

/// Parses order text (the `Message` string of a notification, or a raw body).
pub fn parse_json(text: &[u8], expected: OrderKind) -> Result<Value, OrderError> {
    serde_json::from_slice(text).map_err(|e| OrderError::NotJson(e.to_string(), expected.example()))
}

/// Which kind of order an endpoint takes, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderKind {
    /// `{"bundle": n}`.
    Bundle,
    /// `{"<resource>": n}` for the given resource.
    Resource(Resource),
    /// Either resource (the glue hook).
    AnyResource,
}

impl OrderKind {
    /// A correct order of this kind, for error messages.
    pub fn example(self) -> &'static str {
        match self {
            Self::Bundle => BUNDLE_EXAMPLE,
            Self::Resource(resource) => example(resource),
            Self::AnyResource => HOOK_EXAMPLE,
        }
    }
}

fn single_entry<'a>(order: &'a Value, expected: &'static str) -> Result<(&'a String, &'a Value), OrderError> {
    let object: &Map<String, Value> = order.as_object().ok_or(OrderError::WrongShape(expected))?;
    let mut entries = object.iter();
    match (entries.next(), entries.next()) {
        (Some(entry), None) => Ok(entry),
        _ => Err(OrderError::WrongShape(expected)),
    }
}

fn quantity(key: &str, value: &Value, expected: &'static str) -> Result<Quantity, OrderError> {
    let parsed = match value {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => text.trim().parse::<u64>().ok(),
        _ => None,
    };
    match parsed {
        Some(n) if (1..=u64::from(MAX_QUANTITY)).contains(&n) => Ok(n as Quantity),
        _ => Err(OrderError::BadQuantity {
            key: key.to_owned(),
            got: value.to_string(),
            expected,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bundle_quantity_may_be_number_or_numeric_string() {
        assert_eq!(parse_bundle(&json!({"bundle": 2})), Ok(BundleOrder { bundle: 2 }));
        assert_eq!(
            parse_bundle(&json!({"bundle": "1"})),
            Ok(BundleOrder { bundle: 1 })
        );
    }

    #[test]
    fn bad_quantities_are_refused() {
        for bad in [
            json!(-1),
            json!("-1"),
            json!(0),
            json!(1.5),
            json!("one"),
            json!(null),
            json!([1]),
            json!(5_000_000),
        ] {
            assert!(
                matches!(
                    parse_bundle(&json!({"bundle": bad})),
                    Err(OrderError::BadQuantity { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn resource_service_takes_exactly_its_own_key() {
        assert_eq!(
            parse_resource_order(&json!({"iridium": 3}), Resource::Iridium),
            Ok(ResourceOrder {
                resource: Resource::Iridium,
                quantity: 3
            })
        );
        assert!(parse_resource_order(&json!({"magnesite": 3}), Resource::Iridium).is_err());
        assert!(parse_resource_order(&json!({"iridium": 3, "magnesite": 1}), Resource::Iridium).is_err());
        let error = parse_resource_order(&json!({}), Resource::Iridium).err();
        assert_eq!(
            error.map(|e| e.to_string()).as_deref(),
            Some(r#"this service is expecting exactly {"iridium": 1}"#)
        );
    }

    #[test]
    fn glue_hook_takes_either_resource() {
        assert_eq!(
            parse_any_resource_order(&json!({"magnesite": "4"})).map(|o| (o.resource, o.quantity)),
            Ok((Resource::Magnesite, 4))
        );
        assert!(parse_any_resource_order(&json!({"bundle": 1})).is_err());
    }
}
