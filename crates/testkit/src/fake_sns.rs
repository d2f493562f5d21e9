//! A fake SNS: serves the test signing certificate, counts certificate
//! fetches and subscription confirmations, and signs and delivers messages
//! exactly as SNS does (headers, `text/plain`, `Message` as a string).

use crate::TestApp;
use crate::keys::{TEST_CERT_PEM, TEST_KEY_PEM};
use crate::signer::TestSigner;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use contracts::sns::{
    CONTENT_TYPE, MESSAGE_ID_HEADER, MESSAGE_TYPE_HEADER, SUBSCRIPTION_ARN_HEADER, TOPIC_ARN_HEADER,
    USER_AGENT,
};
use contracts::{Envelope, MessageType, SignatureVersion};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use tokio::net::TcpListener;
use url::Url;

/// The topic the tests publish orders to.
pub const ORDERS_TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:interstella-orders";
/// The `Action` of a SubscribeURL the fake never answers.
pub const HANG_ACTION: &str = "Hang";
/// Where the fake serves its certificate, in SNS' path shape.
pub const CERT_PATH: &str = "/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem";

#[derive(Debug, Default)]
struct Counters {
    cert_fetches: AtomicUsize,
    confirmations: AtomicUsize,
}

/// A running fake SNS.
#[derive(Debug, Clone)]
pub struct FakeSns {
    /// Its base URL: what `AWS_ENDPOINT_URL_SNS` is set to.
    pub base: Url,
    signer: Arc<TestSigner>,
    counters: Arc<Counters>,
    next_id: Arc<AtomicU64>,
}

impl FakeSns {
    /// Starts the fake with the test key and certificate.
    pub async fn start() -> Self {
        let counters = Arc::new(Counters::default());
        let router = Router::new()
            .route(CERT_PATH, get(certificate))
            .route("/", get(confirm))
            .with_state(counters.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        let cert_url = base.join(CERT_PATH).unwrap();
        let signer = Arc::new(TestSigner::from_pem(TEST_KEY_PEM, cert_url.as_str()).unwrap());
        Self {
            base,
            signer,
            counters,
            next_id: Arc::new(AtomicU64::new(1)),
        }
    }

    /// How many times the certificate was fetched.
    pub fn cert_fetches(&self) -> usize {
        self.counters.cert_fetches.load(Ordering::SeqCst)
    }

    /// How many subscriptions were confirmed.
    pub fn confirmations(&self) -> usize {
        self.counters.confirmations.load(Ordering::SeqCst)
    }

    /// An unsigned envelope of `kind` on `topic` carrying `message`.
    pub fn envelope(&self, kind: MessageType, topic: &str, message: &str) -> Envelope {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let confirmation = kind != MessageType::Notification;
        let token = format!("token-{id}");
        let subscribe_url = self
            .base
            .join(&format!(
                "?Action=ConfirmSubscription&TopicArn={topic}&Token={token}"
            ))
            .unwrap()
            .to_string();
        Envelope {
            message_type: kind,
            message_id: format!("00000000-0000-4000-8000-{id:012}"),
            token: confirmation.then(|| token.clone()),
            topic_arn: topic.to_owned(),
            subject: None,
            message: message.to_owned(),
            subscribe_url: confirmation.then_some(subscribe_url),
            timestamp: "2026-11-25T10:00:00.123Z".to_owned(),
            // Not signed yet: `sign` sets the version.
            signature_version: SignatureVersion::Unsupported(String::new()),
            signature: String::new(),
            signing_cert_url: String::new(),
            unsubscribe_url: (!confirmation)
                .then(|| self.base.join("?Action=Unsubscribe").unwrap().to_string()),
            message_attributes: None,
        }
    }

    /// Signs `envelope` with the test key.
    pub fn sign(&self, envelope: &mut Envelope, version: SignatureVersion) {
        self.signer.sign(envelope, version);
    }

    /// A signed notification on the orders topic.
    pub fn notification(&self, message: &str, version: SignatureVersion) -> Envelope {
        let mut envelope = self.envelope(MessageType::Notification, ORDERS_TOPIC, message);
        self.sign(&mut envelope, version);
        envelope
    }
}

/// The headers SNS sends with `envelope`, apart from Content-Type
/// ([`CONTENT_TYPE`]).
pub fn delivery_headers(envelope: &Envelope) -> Vec<(&'static str, String)> {
    let mut headers = vec![
        (MESSAGE_TYPE_HEADER, envelope.message_type.as_str().to_owned()),
        (MESSAGE_ID_HEADER, envelope.message_id.clone()),
        (TOPIC_ARN_HEADER, envelope.topic_arn.clone()),
        ("user-agent", USER_AGENT.to_owned()),
    ];
    if envelope.message_type == MessageType::Notification {
        headers.push((SUBSCRIPTION_ARN_HEADER, format!("{}:sub-1", envelope.topic_arn)));
    }
    headers
}

/// POSTs `envelope` to `path` of `app` the way SNS does; returns status and text.
pub async fn deliver(app: &TestApp, path: &str, envelope: &Envelope) -> (u16, String) {
    let body = serde_json::to_string(envelope).unwrap();
    let headers = delivery_headers(envelope);
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    app.post(path, Some(CONTENT_TYPE), &headers, body).await
}

async fn certificate(State(counters): State<Arc<Counters>>) -> &'static str {
    counters.cert_fetches.fetch_add(1, Ordering::SeqCst);
    TEST_CERT_PEM
}

async fn confirm(
    State(counters): State<Arc<Counters>>,
    Query(query): Query<HashMap<String, String>>,
) -> (StatusCode, &'static str) {
    // A SubscribeURL that never answers, as an SNS behind a network that
    // drops packets: the confirmation's own timeout must end the wait.
    if query.get("Action").map(String::as_str) == Some(HANG_ACTION) {
        std::future::pending::<()>().await;
    }
    if query.get("Action").map(String::as_str) != Some("ConfirmSubscription") {
        return (StatusCode::BAD_REQUEST, "unknown action");
    }
    counters.confirmations.fetch_add(1, Ordering::SeqCst);
    (StatusCode::OK, "<ConfirmSubscriptionResponse/>")
}

/// A server that counts every request: stands in for an attacker's host.
#[derive(Debug, Clone)]
pub struct HitCounter {
    /// Its base URL.
    pub base: Url,
    hits: Arc<AtomicUsize>,
}

impl HitCounter {
    /// Starts it.
    pub async fn start() -> Self {
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        let router = Router::new().fallback(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { TEST_CERT_PEM }
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { base, hits }
    }

    /// How many requests it got.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}
