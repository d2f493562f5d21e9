//! SNS HTTP/S delivery envelopes, exactly as Amazon SNS sends them.
//!
//! Every field is a JSON string on the wire. Field order here is the order SNS
//! itself writes them in, so a serialized [`Envelope`] reads like a real delivery.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The header SNS puts the message type in; a routing hint, never signed.
pub const MESSAGE_TYPE_HEADER: &str = "x-amz-sns-message-type";
/// The header SNS puts the message id in; a routing hint, never signed.
pub const MESSAGE_ID_HEADER: &str = "x-amz-sns-message-id";
/// The header SNS puts the topic ARN in; a routing hint, never signed.
pub const TOPIC_ARN_HEADER: &str = "x-amz-sns-topic-arn";
/// The header SNS puts the subscription ARN in (absent on confirmations).
pub const SUBSCRIPTION_ARN_HEADER: &str = "x-amz-sns-subscription-arn";
/// The header SNS adds (`true`) when a subscription has raw message
/// delivery on: the body is the message alone, with no envelope to verify.
pub const RAW_DELIVERY_HEADER: &str = "x-amz-sns-rawdelivery";
/// The Content-Type SNS sends by default, although the body is JSON.
pub const CONTENT_TYPE: &str = "text/plain; charset=UTF-8";
/// The User-Agent SNS sends.
pub const USER_AGENT: &str = "Amazon Simple Notification Service Agent";

/// The largest message SNS publishes, in bytes of its UTF-8 text: 256 KiB.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// Whether `text` is shaped as an SNS topic's ARN,
/// `arn:<partition>:sns:<region>:<account>:<name>`: a partition `aws` or
/// `aws-…`, a region of lower-case letters, digits and hyphens, a 12-digit
/// account, and a name SNS allows (1 to 256 letters, digits, `-` and `_`,
/// `.fifo` after it for a FIFO topic). Checked wherever a topic ARN is
/// configured: a misspelt one, or a pattern such as `…:*` (ARNs in IAM
/// take them, these are matched as written), matches no delivery, and a
/// delivery answered 403 for its topic is one SNS drops without retrying.
pub fn is_topic_arn(text: &str) -> bool {
    let [arn, partition, service, region, account, name] = text.split(':').collect::<Vec<_>>()[..] else {
        return false;
    };
    let lower = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    // `.fifo` counts in the 256.
    let (length, name) = (name.len(), name.strip_suffix(".fifo").unwrap_or(name));
    arn == "arn"
        && (partition == "aws" || (partition.starts_with("aws-") && lower(partition)))
        && service == "sns"
        && lower(region)
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && length <= 256
        && !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The three kinds of message SNS delivers to an HTTP/S subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum MessageType {
    /// Sent once when an endpoint is subscribed; confirm by visiting `SubscribeURL`.
    SubscriptionConfirmation,
    /// A published message; `Message` holds the payload.
    Notification,
    /// Sent when the subscription is deleted.
    UnsubscribeConfirmation,
}

impl MessageType {
    /// Every kind, in the order SNS' documentation lists them.
    pub const ALL: [Self; 3] = [
        Self::SubscriptionConfirmation,
        Self::Notification,
        Self::UnsubscribeConfirmation,
    ];

    /// The name SNS uses on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SubscriptionConfirmation => "SubscriptionConfirmation",
            Self::Notification => "Notification",
            Self::UnsubscribeConfirmation => "UnsubscribeConfirmation",
        }
    }
}

impl<'de> Deserialize<'de> for MessageType {
    /// By name; another `Type` is refused naming it quoted and cut short
    /// (serde's own message shows the caller's text whole and unescaped).
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(MessageTypeName)
    }
}

/// Reads a [`MessageType`] from its name, borrowed or not, without a copy.
struct MessageTypeName;

/// What a `Type` may be, for a refusal.
const MESSAGE_TYPES: &str = "Notification, SubscriptionConfirmation or UnsubscribeConfirmation";

impl serde::de::Visitor<'_> for MessageTypeName {
    type Value = MessageType;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MESSAGE_TYPES)
    }

    fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<MessageType, E> {
        MessageType::ALL
            .into_iter()
            .find(|known| known.as_str() == name)
            .ok_or_else(|| {
                E::custom(format_args!(
                    "unknown Type {}: SNS sends {MESSAGE_TYPES}",
                    crate::quote::quoted(name)
                ))
            })
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an envelope is signed: the `SignatureVersion` field.
///
/// Any text parses, so that an envelope naming a version SNS does not use is
/// still an envelope, refused by the verifier as unsupported (403) rather
/// than by the parser as malformed (400).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum SignatureVersion {
    /// `"1"`: RSA PKCS#1 v1.5 with SHA-1 (the SNS default).
    V1,
    /// `"2"`: RSA PKCS#1 v1.5 with SHA-256.
    V2,
    /// Anything else, as sent; never verifies.
    Unsupported(String),
}

impl SignatureVersion {
    /// The value on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::V1 => "1",
            Self::V2 => "2",
            Self::Unsupported(text) => text,
        }
    }
}

impl From<String> for SignatureVersion {
    fn from(text: String) -> Self {
        match text.as_str() {
            "1" => Self::V1,
            "2" => Self::V2,
            _ => Self::Unsupported(text),
        }
    }
}

impl From<SignatureVersion> for String {
    fn from(version: SignatureVersion) -> Self {
        match version {
            SignatureVersion::Unsupported(text) => text,
            known => known.as_str().to_owned(),
        }
    }
}

/// One SNS HTTP/S delivery body.
///
/// Values are kept as the exact (unescaped) strings SNS sent, never reparsed,
/// because the signature covers them byte for byte. Its `Debug` masks the
/// confirmation token and the SubscribeURL and UnsubscribeURL: whoever holds
/// one can confirm or end the subscription.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// What kind of message this is.
    #[serde(rename = "Type")]
    pub message_type: MessageType,
    /// Unique per published message; redeliveries reuse it.
    #[serde(rename = "MessageId")]
    pub message_id: String,
    /// Confirmation token (confirmations only).
    #[serde(rename = "Token", default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The topic the message was published to.
    #[serde(rename = "TopicArn")]
    pub topic_arn: String,
    /// The publisher's subject; the key is absent when none was published.
    #[serde(rename = "Subject", default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The payload: always a string, JSON-encoded when the publisher sent JSON.
    #[serde(rename = "Message")]
    pub message: String,
    /// Where to confirm (confirmations only).
    #[serde(rename = "SubscribeURL", default, skip_serializing_if = "Option::is_none")]
    pub subscribe_url: Option<String>,
    /// ISO-8601 UTC time of publication, as sent (never reformatted).
    #[serde(rename = "Timestamp")]
    pub timestamp: String,
    /// `"1"` (SHA1withRSA) or `"2"` (SHA256withRSA).
    #[serde(rename = "SignatureVersion")]
    pub signature_version: SignatureVersion,
    /// Base64 signature over [`Envelope::string_to_sign`].
    #[serde(rename = "Signature")]
    pub signature: String,
    /// Where the signing certificate lives; not signed, so checked before use.
    #[serde(rename = "SigningCertURL")]
    pub signing_cert_url: String,
    /// Where to unsubscribe (notifications only); not signed.
    #[serde(rename = "UnsubscribeURL", default, skip_serializing_if = "Option::is_none")]
    pub unsubscribe_url: Option<String>,
    /// Publisher attributes (notifications only); not signed.
    #[serde(
        rename = "MessageAttributes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub message_attributes: Option<BTreeMap<String, MessageAttribute>>,
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let masked = |value: &Option<String>| value.as_ref().map(|_| "***");
        f.debug_struct("Envelope")
            .field("message_type", &self.message_type)
            .field("message_id", &self.message_id)
            .field("token", &masked(&self.token))
            .field("topic_arn", &self.topic_arn)
            .field("subject", &self.subject)
            .field("message", &self.message)
            .field("subscribe_url", &masked(&self.subscribe_url))
            .field("timestamp", &self.timestamp)
            .field("signature_version", &self.signature_version)
            .field("signature", &self.signature)
            .field("signing_cert_url", &self.signing_cert_url)
            .field("unsubscribe_url", &masked(&self.unsubscribe_url))
            .field("message_attributes", &self.message_attributes)
            .finish()
    }
}

/// One message attribute as SNS delivers it over HTTP:
/// `{"Type": "String", "Value": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageAttribute {
    /// SNS' data type: `String`, `String.Array`, `Number` or `Binary`.
    #[serde(rename = "Type")]
    pub data_type: String,
    /// The value as text (base64 for `Binary`, a JSON array for
    /// `String.Array`).
    #[serde(rename = "Value")]
    pub value: String,
}

impl MessageAttribute {
    /// A `String` attribute.
    pub fn string(value: impl Into<String>) -> Self {
        Self {
            data_type: "String".to_owned(),
            value: value.into(),
        }
    }
}

/// The W3C trace context header, and the SNS message attribute of that name.
pub const TRACEPARENT: &str = "traceparent";

impl Envelope {
    /// The `traceparent` message attribute (a W3C trace context), if any.
    /// Not covered by the signature: it may link a trace, nothing more.
    pub fn traceparent(&self) -> Option<&str> {
        let attribute = self.message_attributes.as_ref()?.get(TRACEPARENT)?;
        (attribute.data_type == "String").then_some(attribute.value.as_str())
    }

    /// Whether `MessageId` has SNS' shape, a UUID (8-4-4-4-12 hex digits).
    /// Anything else did not come from SNS, and must not reach an
    /// idempotency key.
    pub fn has_sns_message_id(&self) -> bool {
        let groups: Vec<&str> = self.message_id.split('-').collect();
        groups.len() == 5
            && groups
                .iter()
                .zip([8, 4, 4, 4, 12])
                .all(|(group, len)| group.len() == len && group.bytes().all(|b| b.is_ascii_hexdigit()))
    }

    /// The exact text SNS signs: `Key\nValue\n` for each signed field, in
    /// byte order of the key names. Notifications sign `Subject` only when it
    /// is present; confirmations sign `SubscribeURL` and `Token`.
    pub fn string_to_sign(&self) -> String {
        let mut fields: Vec<(&str, &str)> = Vec::with_capacity(7);
        fields.push(("Message", &self.message));
        fields.push(("MessageId", &self.message_id));
        match self.message_type {
            MessageType::Notification => {
                if let Some(subject) = &self.subject {
                    fields.push(("Subject", subject));
                }
            }
            MessageType::SubscriptionConfirmation | MessageType::UnsubscribeConfirmation => {
                fields.push(("SubscribeURL", self.subscribe_url.as_deref().unwrap_or("")));
            }
        }
        fields.push(("Timestamp", &self.timestamp));
        if self.message_type != MessageType::Notification {
            fields.push(("Token", self.token.as_deref().unwrap_or("")));
        }
        fields.push(("TopicArn", &self.topic_arn));
        fields.push(("Type", self.message_type.as_str()));

        let len = fields.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
        let mut out = String::with_capacity(len);
        for (key, value) in fields {
            out.push_str(key);
            out.push('\n');
            out.push_str(value);
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_arns_are_told_from_other_text() {
        for arn in [
            "arn:aws:sns:us-east-1:123456789012:orders",
            "arn:aws-cn:sns:cn-north-1:123456789012:hq-iridium.fifo",
            "arn:aws-us-gov:sns:us-gov-west-1:123456789012:Orders_2",
            &format!("arn:aws:sns:us-east-1:123456789012:{}", "a".repeat(256)),
            &format!("arn:aws:sns:us-east-1:123456789012:{}.fifo", "a".repeat(251)),
        ] {
            assert!(is_topic_arn(arn), "{arn}");
        }
        for other in [
            "",
            "orders",
            "\"arn:aws:sns:us-east-1:123456789012:orders\"",
            "arn:aws:sqs:us-east-1:123456789012:orders",
            "arn:aws:sns:us-east-1:123456789012",
            "arn:aws:sns::123456789012:orders",
            "arn:aws:sns:us-east-1:123456789012:orders:extra",
            "arn:aws:sns:us-east-1:123456789012:or ders",
            // Patterns, as IAM takes them: matched as written, they match nothing.
            "arn:aws:sns:us-east-1:123456789012:*",
            "arn:aws:sns:*:*:*",
            "arn:aws:sns:us-east-1:123456789012:order?",
            "arn:aws:sns:us-east-1:123456789012:orders/x",
            "arn:aws:sns:us-east-1:0:orders",
            "arn:aws:sns:US-EAST-1:123456789012:orders",
            "arn:amazon:sns:us-east-1:123456789012:orders",
            "arn:aws:sns:us-east-1:123456789012:.fifo",
            &format!("arn:aws:sns:us-east-1:123456789012:{}.fifo", "a".repeat(252)),
        ] {
            assert!(!is_topic_arn(other), "{other}");
        }
    }

    #[test]
    fn debug_masks_what_confirms_or_ends_a_subscription() {
        let mut confirmation = notification();
        confirmation.message_type = MessageType::SubscriptionConfirmation;
        confirmation.token = Some("t0ken-s3cret".into());
        confirmation.subscribe_url =
            Some("https://sns/?Action=ConfirmSubscription&Token=t0ken-s3cret".into());
        let shown = format!("{confirmation:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("Action=Unsubscribe"),
            "{shown}"
        );
        assert!(shown.contains("token: Some(\"***\")"), "{shown}");
        assert!(shown.contains("message_id: \"id-1\""), "{shown}");
    }

    fn notification() -> Envelope {
        Envelope {
            message_type: MessageType::Notification,
            message_id: "id-1".into(),
            token: None,
            topic_arn: "arn:aws:sns:us-east-1:123456789012:orders".into(),
            subject: None,
            message: "{\"bundle\": 1}\nline".into(),
            subscribe_url: None,
            timestamp: "2012-04-26T20:45:04.751Z".into(),
            signature_version: SignatureVersion::V2,
            signature: "c2ln".into(),
            signing_cert_url: "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem".into(),
            unsubscribe_url: Some("https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe".into()),
            message_attributes: None,
        }
    }

    #[test]
    fn message_attributes_read_as_sns_delivers_them() {
        // SNS' HTTP shape; only a String `traceparent` links a trace.
        let delivered = r#"{"Type":"Notification","MessageId":"id-1","TopicArn":"t","Message":"m",
            "Timestamp":"2012-04-26T20:45:04.751Z","SignatureVersion":"2","Signature":"c2ln",
            "SigningCertURL":"https://x","MessageAttributes":{
            "traceparent":{"Type":"String","Value":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
            "count":{"Type":"Number","Value":"3"}}}"#;
        let envelope: Envelope = serde_json::from_str(delivered).unwrap();
        assert_eq!(
            envelope.traceparent(),
            Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        );
        let attributes = envelope.message_attributes.clone().unwrap_or_default();
        assert_eq!(attributes["count"].data_type, "Number");
        let mut binary = envelope.clone();
        binary.message_attributes = Some(
            [(
                "traceparent".to_owned(),
                MessageAttribute {
                    data_type: "Binary".to_owned(),
                    value: "AAE=".to_owned(),
                },
            )]
            .into(),
        );
        assert_eq!(binary.traceparent(), None);
        // Written back in SNS' shape.
        let written = serde_json::to_value(&envelope).unwrap();
        assert_eq!(
            written["MessageAttributes"]["count"],
            serde_json::json!({"Type": "Number", "Value": "3"})
        );
    }

    #[test]
    fn message_ids_must_be_uuids() {
        let mut envelope = notification();
        for good in [
            "da41e39f-ea4d-435a-b922-c6aae3915ebe",
            "DA41E39F-EA4D-435A-B922-C6AAE3915EBE",
        ] {
            envelope.message_id = good.into();
            assert!(envelope.has_sns_message_id(), "{good}");
        }
        for bad in [
            "id-1",
            "",
            "da41e39f-ea4d-435a-b922-c6aae3915eb",
            "da41e39f-ea4d-435a-b922-c6aae3915ebe-",
            "da41e39f-ea4d-435a-b922-c6aae3915ebg",
            "da41e39fea4d-435a-b922-c6aae3915ebe-",
        ] {
            envelope.message_id = bad.into();
            assert!(!envelope.has_sns_message_id(), "{bad}");
        }
    }

    #[test]
    fn notification_signs_sorted_fields_without_absent_subject() {
        assert_eq!(
            notification().string_to_sign(),
            "Message\n{\"bundle\": 1}\nline\nMessageId\nid-1\nTimestamp\n2012-04-26T20:45:04.751Z\n\
             TopicArn\narn:aws:sns:us-east-1:123456789012:orders\nType\nNotification\n"
        );
    }

    #[test]
    fn notification_signs_subject_when_present() {
        let mut envelope = notification();
        envelope.subject = Some("Order".into());
        assert!(
            envelope
                .string_to_sign()
                .contains("MessageId\nid-1\nSubject\nOrder\nTimestamp\n")
        );
    }

    #[test]
    fn confirmations_sign_subscribe_url_and_token() {
        for kind in [
            MessageType::SubscriptionConfirmation,
            MessageType::UnsubscribeConfirmation,
        ] {
            let mut envelope = notification();
            envelope.message_type = kind;
            envelope.token = Some("tok".into());
            envelope.subscribe_url = Some("https://sns/confirm".into());
            envelope.subject = Some("ignored".into());
            assert_eq!(
                envelope.string_to_sign(),
                format!(
                    "Message\n{{\"bundle\": 1}}\nline\nMessageId\nid-1\nSubscribeURL\nhttps://sns/confirm\n\
                     Timestamp\n2012-04-26T20:45:04.751Z\nToken\ntok\n\
                     TopicArn\narn:aws:sns:us-east-1:123456789012:orders\nType\n{kind}\n"
                )
            );
        }
    }

    #[test]
    fn serializes_in_sns_field_order() {
        let json = serde_json::to_string(&notification()).unwrap_or_default();
        let positions: Vec<Option<usize>> = [
            "\"Type\"",
            "\"MessageId\"",
            "\"TopicArn\"",
            "\"Message\"",
            "\"Timestamp\"",
            "\"SignatureVersion\"",
            "\"Signature\"",
            "\"SigningCertURL\"",
            "\"UnsubscribeURL\"",
        ]
        .iter()
        .map(|key| json.find(key))
        .collect();
        assert!(
            positions.iter().all(Option::is_some),
            "a field is missing: {json}"
        );
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{json}");
        assert!(json.contains(r#""SignatureVersion":"2""#), "{json}");
        assert!(!json.contains("Subject"));
    }
}

#[cfg(test)]
mod signature_version_tests {
    use super::*;

    #[test]
    fn unknown_versions_parse_and_keep_their_text() {
        for (wire, version) in [
            ("1", SignatureVersion::V1),
            ("2", SignatureVersion::V2),
            ("3", SignatureVersion::Unsupported("3".into())),
        ] {
            let json = format!("{wire:?}");
            assert_eq!(
                serde_json::from_str::<SignatureVersion>(&json).ok(),
                Some(version.clone())
            );
            assert_eq!(serde_json::to_string(&version).ok(), Some(json));
        }
    }
}
