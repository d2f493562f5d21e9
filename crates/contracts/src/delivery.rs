//! What arrives at an order endpoint: an SNS envelope or a direct order.
//!
//! The body is JSON whatever the Content-Type (SNS sends `text/plain`). A body
//! with a `Type` field, or sent with the `x-amz-sns-message-type` header,
//! claims to come from SNS and must parse as a full [`Envelope`]; a body with
//! only a `Message` is a direct order such as the workshop's curl.

use crate::order::{Order, OrderError};
use crate::quote::shortened_message;
use crate::sns::Envelope;
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use serde_json::value::RawValue;

/// One parsed delivery.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// A message claiming to come from SNS; verify it before acting on it.
    Sns(Box<Envelope>),
    /// A direct order: the `Message` value (object or JSON string) as
    /// written, unsigned; [`message_order`] reads the order in it.
    Direct(Box<RawValue>),
}

/// By hand: `RawValue` has no `PartialEq`; two direct orders are the same
/// if they were written the same.
impl PartialEq for Delivery {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Sns(one), Self::Sns(other)) => one == other,
            (Self::Direct(one), Self::Direct(other)) => one.get() == other.get(),
            _ => false,
        }
    }
}

/// Why a body is not a delivery; all of these can never succeed (4xx).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The body is not JSON at all.
    #[error("the body is not valid JSON ({0}); expected an SNS message or {{\"Message\": {1}}}")]
    NotJson(String, &'static str),
    /// JSON, but neither an SNS envelope nor a direct order.
    #[error("expected an SNS message or {{\"Message\": {0}}}")]
    NotAnEnvelope(&'static str),
    /// A direct order naming `Message` more than once: which one was meant?
    #[error("the body has more than one Message; expected an SNS message or {{\"Message\": {0}}}")]
    RepeatedMessage(&'static str),
    /// Claims to be from SNS but lacks or mistypes envelope fields.
    #[error(
        "the body claims to be an SNS message (a Type, or the x-amz-sns-message-type header) but is not a valid one, so it cannot be verified: {0}"
    )]
    BadEnvelope(String),
}

/// A body's JSON text, without the UTF-8 byte order mark some editors put
/// first (a file sent with `curl -d @order.json`); RFC 8259 lets a parser
/// ignore it, and serde_json does not.
pub fn json_text(body: &[u8]) -> &[u8] {
    body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body)
}

/// Whether a delivery came with SNS' `x-amz-sns-message-type` header. Its
/// presence, whatever its value, claims the body is an SNS message to be
/// verified: a value that is not text claims it as surely as one that is
/// (read as no header, such a delivery went through as an unsigned order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeHeader {
    /// The header is there.
    Sent,
    /// There is no such header.
    NotSent,
}

impl TypeHeader {
    fn is_sent(self) -> bool {
        self == Self::Sent
    }
}

/// Parses a delivery body for an endpoint taking orders `O`, which came
/// with or without SNS' type header.
pub fn parse_delivery<O: Order>(body: &[u8], type_header: TypeHeader) -> Result<Delivery, DeliveryError> {
    let body = json_text(body);
    // SNS always sends the header: read its object straight into an
    // envelope, one pass instead of a `Value` and then the envelope (a tenth
    // of a signed order's instructions beyond the RSA check). Whatever that
    // does not take (a duplicate field, a field the envelope does not know)
    // takes the general path below ([`read_whole`]).
    if type_header.is_sent()
        && let Some(envelope) = read_whole::<Envelope>(body)
    {
        return Ok(Delivery::Sns(Box::new(envelope)));
    }
    // The workshop's curl, likewise: no header, no `Type`, a `Message` and
    // nothing else, its Message read as written in the same pass.
    if !type_header.is_sent()
        && let Some(DirectBody {
            claims_sns: Seen(false),
            message: Some(message),
        }) = read_whole(body)
    {
        return Ok(Delivery::Direct(message));
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| DeliveryError::NotJson(e.to_string(), O::EXAMPLE))?;
    let Value::Object(object) = value else {
        return Err(DeliveryError::NotAnEnvelope(O::EXAMPLE));
    };
    if object.contains_key("Type") || type_header.is_sent() {
        // Read from the text, not the `Value`, which kept the last of a
        // repeated field: an envelope with two of one (two `Message`s) is
        // refused, as a direct order with two is, so that nothing in front
        // of us (a filter reading the first) sees another order than we do.
        drop(object);
        let envelope: Envelope =
            serde_json::from_slice(body).map_err(|e| DeliveryError::BadEnvelope(shortened_message(e)))?;
        return Ok(Delivery::Sns(Box::new(envelope)));
    }
    // A direct order with other fields beside its Message (valid JSON, as
    // the read above showed): its Message as written. Of a valid object
    // with no `Type`, this read refuses only a second `Message`, which a
    // `Value` kept the last of.
    match serde_json::from_slice::<DirectBody>(body) {
        Ok(DirectBody {
            message: Some(message),
            ..
        }) => Ok(Delivery::Direct(message)),
        Ok(DirectBody { message: None, .. }) => Err(DeliveryError::NotAnEnvelope(O::EXAMPLE)),
        Err(_) => Err(DeliveryError::RepeatedMessage(O::EXAMPLE)),
    }
}

/// `body` read in one pass as a `T`, if it is an object that has every
/// field `T` reads and no other, each once, and nothing after it: then it is
/// valid JSON too. `None` for anything else, which the general path, first
/// reading the body as a `Value` (which checks all of it), decides and
/// explains. serde skips a field `T` does not know without checking it (its
/// UTF-8, escapes, numbers, depth), and would read a `T` from an array too.
/// SNS' own bodies and the workshop's curl have no other field.
fn read_whole<T: serde::de::DeserializeOwned>(body: &[u8]) -> Option<T> {
    if !body.trim_ascii_start().starts_with(b"{") {
        return None;
    }
    let mut skipped = false;
    let mut reader = serde_json::Deserializer::from_slice(body);
    let read: Result<T, _> = serde_ignored::deserialize(&mut reader, |_| skipped = true)
        .and_then(|read| reader.end().map(|()| read));
    read.ok().filter(|_| !skipped)
}

/// A direct order's body as it is read: its `Message` as written (`null`
/// too: a Message, though no order), and whether it has a `Type` (of any
/// value, `null` too), which claims SNS.
#[derive(Deserialize)]
struct DirectBody {
    /// Whether the body has a `Type`, which claims SNS.
    #[serde(rename = "Type", default)]
    claims_sns: Seen,
    /// The `Message` as written, if there is one.
    #[serde(rename = "Message", default, deserialize_with = "present")]
    message: Option<Box<RawValue>>,
}

/// A field's value as written, whatever it is: as an `Option`, serde would
/// read `null` as no field.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(deserializer).map(Some)
}

/// Whether a field was there, whatever its value.
#[derive(Default)]
struct Seen(bool);

impl<'de> Deserialize<'de> for Seen {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(deserializer).map(|_| Seen(true))
    }
}

impl DeliveryError {
    /// The same error, naming `example` as what a correct order looks like.
    pub fn expecting(self, example: &'static str) -> Self {
        match self {
            Self::NotJson(why, _) => Self::NotJson(why, example),
            Self::NotAnEnvelope(_) => Self::NotAnEnvelope(example),
            Self::RepeatedMessage(_) => Self::RepeatedMessage(example),
            bad @ Self::BadEnvelope(_) => bad,
        }
    }
}

/// The order inside a direct order's `Message`: curl users send an object,
/// some a JSON string as SNS does.
pub fn message_order<O: Order>(message: &RawValue) -> Result<O, OrderError> {
    let written = message.get();
    if written.starts_with('"') {
        let text: String =
            serde_json::from_str(written).map_err(|e| OrderError::NotJson(e.to_string(), O::EXAMPLE))?;
        return O::from_text(text.as_bytes());
    }
    O::from_text(written.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::{BundleOrder, ResourceOrder};
    use crate::sns::MessageType;
    use serde_json::json;

    /// An SNS Notification body carrying `{"bundle": 1}`.
    fn notification() -> String {
        json!({
            "Type": "Notification", "MessageId": "m", "TopicArn": "t", "Message": "{\"bundle\": 1}",
            "Timestamp": "2024-01-01T00:00:00.000Z", "SignatureVersion": "1", "Signature": "s",
            "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-a.pem",
            "UnsubscribeURL": "https://x"
        })
        .to_string()
    }

    #[test]
    fn workshop_curl_is_a_direct_order() {
        let delivery = parse_delivery::<BundleOrder>(br#"{"Message":{"bundle":"1"}}"#, TypeHeader::NotSent);
        assert_eq!(delivery, Ok(direct(r#"{"bundle":"1"}"#)));
        assert_eq!(
            message_order::<BundleOrder>(&written(r#"{"bundle":"1"}"#)),
            Ok(BundleOrder { bundle: 1 })
        );
        // Some send the order as SNS does, a JSON string.
        assert_eq!(
            message_order::<BundleOrder>(&written(r#""{\"bundle\": 2}""#)),
            Ok(BundleOrder { bundle: 2 })
        );
    }

    /// `text` as a JSON value as written.
    fn written(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    /// A direct order whose `Message` is written `text`.
    fn direct(text: &str) -> Delivery {
        Delivery::Direct(written(text))
    }

    #[test]
    fn a_direct_order_is_read_as_written() {
        let order = |body: &str| {
            parse_delivery::<BundleOrder>(body.as_bytes(), TypeHeader::NotSent)
                .map_err(|e| e.to_string())
                .and_then(|delivery| match delivery {
                    Delivery::Direct(message) => {
                        message_order::<BundleOrder>(&message).map_err(|e| e.to_string())
                    }
                    Delivery::Sns(_) => Err("read as SNS".into()),
                })
        };
        assert_eq!(
            order(r#"{"Message": {"bundle": 1}, "Subject": "x"}"#),
            Ok(BundleOrder { bundle: 1 })
        );
        // Two of the order's keys, two Messages: neither is "exactly" one.
        assert_eq!(
            order(r#"{"Message": {"bundle": 1, "bundle": 900}}"#),
            Err(r#"this service is expecting exactly {"bundle": 1}"#.into())
        );
        assert_eq!(
            order(r#"{"Message": {"bundle": 1}, "Message": {"bundle": 900}}"#),
            Err(r#"the body has more than one Message; expected an SNS message or {"Message": {"bundle": 1}}"#.into())
        );
        // A decimal an f64 rounds to a whole number.
        assert!(
            order(r#"{"Message": {"bundle": 1.0000000000000001}}"#)
                .is_err_and(|e| e.contains("whole number"))
        );
        // A Type of any value claims SNS, null too.
        for claim in [
            r#"{"Type": null, "Message": {"bundle": 1}}"#,
            r#"{"Message": {"bundle": 1}, "Type": "Notification"}"#,
        ] {
            assert!(
                matches!(
                    parse_delivery::<BundleOrder>(claim.as_bytes(), TypeHeader::NotSent),
                    Err(DeliveryError::BadEnvelope(_))
                ),
                "{claim}"
            );
        }
        // A Message of null is no order; no Message, no direct order.
        for no_order in [r#"{"Message": null}"#, r#"{"Message": null, "Subject": "x"}"#] {
            assert_eq!(
                order(no_order),
                Err(r#"this service is expecting exactly {"bundle": 1}"#.into()),
                "{no_order}"
            );
        }
        assert!(matches!(
            parse_delivery::<BundleOrder>(br#"{"Subject": "x"}"#, TypeHeader::NotSent),
            Err(DeliveryError::NotAnEnvelope(_))
        ));
        // A field beside the Message is not read, but the body must still be
        // JSON: invalid UTF-8, a lone surrogate, a number past f64, nesting
        // past the limit.
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        for beside in [&b"\"\xff\""[..], br#""\ud800""#, b"1e400", deep.as_bytes()] {
            let body = [&br#"{"Message": {"bundle": 1}, "x": "#[..], beside, b"}"].concat();
            assert!(
                matches!(
                    parse_delivery::<BundleOrder>(&body, TypeHeader::NotSent),
                    Err(DeliveryError::NotJson(..))
                ),
                "{}",
                String::from_utf8_lossy(&body)
            );
        }
    }

    #[test]
    fn the_workshops_curl_and_sns_bodies_are_read_in_one_pass() {
        // The hot paths: nothing skipped, nothing read twice.
        let curl = read_whole::<DirectBody>(br#"{"Message":{"bundle":"1"}}"#);
        assert!(curl.is_some_and(|body| {
            body.message
                .is_some_and(|message| message.get() == r#"{"bundle":"1"}"#)
        }));
        assert!(read_whole::<Envelope>(notification().as_bytes()).is_some());
        // Anything else is left to the general path.
        for other in [
            &br#"{"Message":{"bundle":"1"},"Subject":"x"}"#[..],
            br#"[{"bundle":"1"}]"#,
            br#"{"Message":1} x"#,
        ] {
            assert!(
                read_whole::<DirectBody>(other).is_none(),
                "{}",
                String::from_utf8_lossy(other)
            );
        }
    }

    #[test]
    fn a_byte_order_mark_first_is_ignored() {
        let saved_by_an_editor = b"\xef\xbb\xbf{\"Message\":{\"bundle\":\"1\"}}";
        let delivery = parse_delivery::<BundleOrder>(saved_by_an_editor, TypeHeader::NotSent);
        assert_eq!(delivery, Ok(direct(r#"{"bundle":"1"}"#)));
        assert_eq!(
            ResourceOrder::from_text(b"\xef\xbb\xbf{\"iridium\": 2}").map(|order| order.quantity),
            Ok(2)
        );
        // Only first: anywhere else it is a character like any other.
        assert!(parse_delivery::<BundleOrder>(b" \xef\xbb\xbf{}", TypeHeader::NotSent).is_err());
    }

    #[test]
    fn sns_notification_keeps_message_as_string() {
        let Ok(Delivery::Sns(envelope)) =
            parse_delivery::<BundleOrder>(notification().as_bytes(), TypeHeader::NotSent)
        else {
            panic!("not parsed as SNS");
        };
        assert_eq!(envelope.message_type, MessageType::Notification);
        assert_eq!(envelope.message, r#"{"bundle": 1}"#);
        assert_eq!(
            BundleOrder::from_text(envelope.message.as_bytes()),
            Ok(BundleOrder { bundle: 1 })
        );
    }

    #[test]
    fn with_the_header_an_envelope_is_read_as_without() {
        let body = notification();
        let read = |body: &str, header| parse_delivery::<BundleOrder>(body.as_bytes(), header);
        assert!(matches!(read(&body, TypeHeader::Sent), Ok(Delivery::Sns(_))));
        assert_eq!(read(&body, TypeHeader::Sent), read(&body, TypeHeader::NotSent));
        // A repeated field is refused, as without the header.
        let repeated = body.replacen("{", r#"{"MessageId":"first","#, 1);
        assert!(matches!(
            read(&repeated, TypeHeader::Sent),
            Err(DeliveryError::BadEnvelope(_))
        ));
        assert_eq!(
            read(&repeated, TypeHeader::Sent),
            read(&repeated, TypeHeader::NotSent)
        );
        // An array of the fields in order is not an envelope.
        let fields = r#"["Notification","m",null,"t",null,"{}",null,"2024-01-01T00:00:00.000Z","1","s","https://sns.us-east-1.amazonaws.com/SimpleNotificationService-a.pem"]"#;
        assert!(matches!(
            read(fields, TypeHeader::Sent),
            Err(DeliveryError::NotAnEnvelope(_))
        ));
    }

    #[test]
    fn with_the_header_a_field_the_envelope_does_not_know_is_checked_as_without() {
        let body = notification();
        let read = |body: &[u8], header| parse_delivery::<BundleOrder>(body, header);
        let with_field = |value: &[u8]| {
            let mut out = body.trim_end().strip_suffix('}').unwrap().as_bytes().to_vec();
            out.extend_from_slice(br#","Extra":"#);
            out.extend_from_slice(value);
            out.push(b'}');
            out
        };
        // Not JSON, but only where serde skips without looking: a lone
        // surrogate, a byte that is not UTF-8, a number past f64, nesting
        // past serde_json's limit; and text after the object.
        let deep = [b"[".repeat(200), b"]".repeat(200)].concat();
        let mut trailing = body.clone().into_bytes();
        trailing.extend_from_slice(b" x");
        for bad in [
            with_field(br#""\udc00""#),
            with_field(b"\"\xff\""),
            with_field(b"1e400"),
            with_field(&deep),
            trailing,
        ] {
            let shown = String::from_utf8_lossy(&bad).into_owned();
            assert!(
                matches!(read(&bad, TypeHeader::Sent), Err(DeliveryError::NotJson(..))),
                "read with the header: {shown}"
            );
            assert_eq!(
                read(&bad, TypeHeader::Sent),
                read(&bad, TypeHeader::NotSent),
                "{shown}"
            );
        }
        // A well-formed field it does not know is read, the same both ways.
        let known = with_field(br#"{"a":[1,"b"]}"#);
        assert!(matches!(read(&known, TypeHeader::Sent), Ok(Delivery::Sns(_))));
        assert_eq!(read(&known, TypeHeader::Sent), read(&known, TypeHeader::NotSent));
    }

    #[test]
    fn an_envelope_with_a_field_twice_is_refused() {
        let body = notification();
        let twice = body.replacen(r#""Message":"#, r#""Message":"{\"bundle\": 900}","Message":"#, 1);
        assert_ne!(twice, body);
        for header in [TypeHeader::Sent, TypeHeader::NotSent] {
            let result = parse_delivery::<BundleOrder>(twice.as_bytes(), header);
            assert!(
                matches!(&result, Err(DeliveryError::BadEnvelope(why)) if why.contains("duplicate field `Message`")),
                "{result:?}"
            );
        }
    }

    #[test]
    fn sns_header_without_envelope_is_refused() {
        let result = parse_delivery::<BundleOrder>(br#"{"Message":{"bundle":1}}"#, TypeHeader::Sent);
        assert!(matches!(result, Err(DeliveryError::BadEnvelope(_))));
    }

    #[test]
    fn unknown_type_and_non_objects_are_refused() {
        let unknown =
            parse_delivery::<BundleOrder>(br#"{"Type":"Bogus","Message":"x"}"#, TypeHeader::NotSent);
        assert!(matches!(unknown, Err(DeliveryError::BadEnvelope(_))));
        assert!(matches!(
            parse_delivery::<BundleOrder>(b"[1]", TypeHeader::NotSent),
            Err(DeliveryError::NotAnEnvelope(_))
        ));
        assert!(matches!(
            parse_delivery::<BundleOrder>(b"{", TypeHeader::NotSent),
            Err(DeliveryError::NotJson(..))
        ));
        assert!(matches!(
            parse_delivery::<BundleOrder>(b"{}", TypeHeader::NotSent),
            Err(DeliveryError::NotAnEnvelope(_))
        ));
    }
}
