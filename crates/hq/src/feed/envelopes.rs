//! The SNS envelopes HQ sends: SubscriptionConfirmations and Notifications,
//! with their SubscribeURL / UnsubscribeURL under HQ's URL, signed with
//! SignatureVersion 2 by HQ's key.

use super::subscriptions::Subscription;
use super::under_base_url;
use crate::ledger::now;
use crate::signing::{SigningError, SigningIdentity};
use crate::sns_signer::SnsSigner;
use contracts::SignatureVersion;
use contracts::{Envelope, MessageAttribute, MessageType};
use url::Url;

/// Builds and signs envelopes whose links point at HQ.
#[derive(Debug)]
pub(super) struct Envelopes {
    base_url: Url,
    signer: SnsSigner,
}

impl Envelopes {
    /// Envelopes linking under `base_url`, signed by `identity`, whose
    /// certificate HQ serves under `base_url` too.
    pub(super) fn new(base_url: Url, identity: &SigningIdentity) -> Result<Self, SigningError> {
        let cert_url = under_base_url(&base_url, &format!("/{}", identity.cert_file_name()));
        let signer = identity.signer(cert_url.as_str())?;
        Ok(Self { base_url, signer })
    }

    /// The URL the signing certificate is served at.
    pub(super) fn cert_url(&self) -> &str {
        self.signer.cert_url()
    }

    /// A link to SNS' query API on HQ (`/?Action=...`).
    fn action_url(&self, pairs: &[(&str, &str)]) -> String {
        let mut url = under_base_url(&self.base_url, "/");
        url.query_pairs_mut().clear().extend_pairs(pairs);
        url.to_string()
    }

    /// A fresh SubscriptionConfirmation for `subscription`.
    pub(super) fn confirmation(&self, subscription: &Subscription) -> Envelope {
        let topic_arn = subscription.info.topic.arn();
        self.signed(Envelope {
            message_type: MessageType::SubscriptionConfirmation,
            message_id: uuid::Uuid::new_v4().to_string(),
            token: Some(subscription.token.clone()),
            topic_arn: topic_arn.clone(),
            subject: None,
            message: format!(
                "You have chosen to subscribe to the topic {topic_arn}.\n\
                 To confirm the subscription, visit the SubscribeURL included in this message."
            ),
            subscribe_url: Some(self.action_url(&[
                ("Action", "ConfirmSubscription"),
                ("TopicArn", &topic_arn),
                ("Token", &subscription.token),
            ])),
            timestamp: now(),
            // Set by signing.
            signature_version: SignatureVersion::Unsupported(String::new()),
            signature: String::new(),
            signing_cert_url: String::new(),
            unsubscribe_url: None,
            message_attributes: None,
        })
    }

    /// The Notification of order `message` to `subscription`, with
    /// `message_attributes` (unsigned, as in SNS).
    pub(super) fn notification(
        &self,
        subscription: &Subscription,
        message_id: &str,
        message: &str,
        timestamp: &str,
        attributes: &super::MessageAttributes,
    ) -> Envelope {
        self.signed(Envelope {
            message_type: MessageType::Notification,
            message_id: message_id.to_owned(),
            token: None,
            topic_arn: subscription.info.topic.arn(),
            subject: None,
            message: message.to_owned(),
            subscribe_url: None,
            timestamp: timestamp.to_owned(),
            // Set by signing.
            signature_version: SignatureVersion::Unsupported(String::new()),
            signature: String::new(),
            signing_cert_url: String::new(),
            unsubscribe_url: Some(self.action_url(&[
                ("Action", "Unsubscribe"),
                ("SubscriptionArn", &subscription.info.subscription_arn),
            ])),
            message_attributes: (!attributes.is_empty()).then(|| {
                attributes
                    .iter()
                    .map(|(name, value)| (name.clone(), MessageAttribute::string(value)))
                    .collect()
            }),
        })
    }

    /// `envelope` with its signature fields filled in.
    fn signed(&self, mut envelope: Envelope) -> Envelope {
        self.signer.sign(&mut envelope);
        envelope
    }
}
