//! SNS trust end to end over loopback HTTP: envelopes signed with the test
//! key verify against a certificate served by a tiny local "SNS", and every
//! way of getting it wrong is refused, without fetching where it must not.

// Marked as test code, so that clippy.toml's allow-unwrap-in-tests covers
// the helpers here too (a panic is a failed test).
#![cfg(test)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use contracts::{Envelope, MessageAttribute, MessageType, SignatureVersion};
use hq::sns_signer::SnsSigner;
use platform::sns::{CertificateKey, SnsVerifier, TrustedHosts, VerifyError};
use testkit::TestSigner;
use testkit::keys::{OTHER_CERT_PEM, OTHER_KEY_PEM, TEST_CERT_PEM, TEST_KEY_PEM, TEST_KEY_PKCS1_PEM};
use url::Url;

const CERT: &str = "/SimpleNotificationService-0123456789abcdef.pem";
const OTHER_CERT: &str = "/SimpleNotificationService-00ff.pem";
const FLAKY: &str = "/flaky/SimpleNotificationService-abc.pem";
const REDIRECT: &str = "/redirect/SimpleNotificationService-abc.pem";
const TARGET: &str = "/target/SimpleNotificationService-abc.pem";
const CHUNKED: &str = "/chunked/SimpleNotificationService-abc.pem";
/// A SignatureVersion 1 Notification signed by OpenSSL with the test key.
const SIGNED_V1: &str = include_str!("../fixtures/sns-notification-v1.json");
/// A SignatureVersion 2 Notification signed by OpenSSL with the test key.
const SIGNED_V2: &str = include_str!("../fixtures/sns-notification-v2.json");

/// A local SNS stand-in serving certificates and counting every request by path.
struct Sns {
    base: Url,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    failures_left: Arc<Mutex<usize>>,
}

#[derive(Clone)]
struct ServerState {
    hits: Arc<Mutex<HashMap<String, usize>>>,
    failures_left: Arc<Mutex<usize>>,
}

impl Sns {
    async fn start() -> Self {
        let state = ServerState {
            hits: Arc::default(),
            failures_left: Arc::new(Mutex::new(1)),
        };
        let app = Router::new()
            .route(
                CERT,
                get(|| async {
                    // Slow enough that concurrent first requests overlap.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    TEST_CERT_PEM
                }),
            )
            .route(OTHER_CERT, get(|| async { OTHER_CERT_PEM }))
            .route("/many/{name}", get(|| async { TEST_CERT_PEM }))
            .route(
                FLAKY,
                get(|State(state): State<ServerState>| async move {
                    let mut left = state.failures_left.lock().unwrap();
                    if *left > 0 {
                        *left -= 1;
                        StatusCode::INTERNAL_SERVER_ERROR.into_response()
                    } else {
                        TEST_CERT_PEM.into_response()
                    }
                }),
            )
            .route(
                REDIRECT,
                get(|| async { (StatusCode::FOUND, [(header::LOCATION, TARGET)]) }),
            )
            .route(TARGET, get(|| async { TEST_CERT_PEM }))
            .route(CHUNKED, get(|| async { chunked(TEST_CERT_PEM) }))
            .route(
                "/down.pem",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    StatusCode::SERVICE_UNAVAILABLE
                }),
            )
            .route("/empty.pem", get(|| async { "" }))
            .route("/garbage.pem", get(|| async { "hello, I am a certificate" }))
            .route("/key.pem", get(|| async { TEST_KEY_PEM }))
            // The genuine certificate, then 1 MiB of blank lines, which a
            // PEM reader skips: only the size cap refuses it.
            .route(
                "/huge.pem",
                get(|| async { format!("{TEST_CERT_PEM}{}", "\n".repeat(1 << 20)) }),
            )
            .route(
                "/slow.pem",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    TEST_CERT_PEM
                }),
            )
            .fallback(|| async { StatusCode::NOT_FOUND })
            .layer(middleware::from_fn_with_state(state.clone(), count))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            base: Url::parse(&format!("http://{addr}/")).unwrap(),
            hits: state.hits,
            failures_left: state.failures_left,
        }
    }

    fn url(&self, path: &str) -> String {
        self.base.join(path).unwrap().to_string()
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    fn total_hits(&self) -> usize {
        self.hits.lock().unwrap().values().sum()
    }

    /// A verifier trusting this stand-in, on a client built like the services'.
    fn verifier(&self) -> SnsVerifier {
        SnsVerifier::new(TrustedHosts::new(Some(self.base.clone())), client())
    }

    /// A signer with the test key whose certificate is at `path` here.
    fn signer(&self, path: &str) -> TestSigner {
        TestSigner::from_pem(TEST_KEY_PEM, self.url(path)).unwrap()
    }
}

async fn count(State(state): State<ServerState>, request: Request, next: Next) -> Response {
    *state
        .hits
        .lock()
        .unwrap()
        .entry(request.uri().path().to_owned())
        .or_default() += 1;
    next.run(request).await
}

/// `body` in 64-byte chunks and without a Content-Length, as a server
/// that streams it (or a proxy that re-chunks it) sends it.
fn chunked(body: &'static str) -> axum::body::Body {
    let chunks = body
        .as_bytes()
        .chunks(64)
        .map(|chunk| Ok::<_, std::convert::Infallible>(bytes::Bytes::from_static(chunk)));
    axum::body::Body::from_stream(futures_util::stream::iter(chunks))
}

/// The services' own client: what it follows (no redirect) is the
/// product's, not the test's.
fn client() -> reqwest::Client {
    platform::downstream::http_client(platform::downstream::DEFAULT_DOWNSTREAM_CONNECTIONS).unwrap()
}

fn notification(subject: Option<&str>) -> Envelope {
    Envelope {
        message_type: MessageType::Notification,
        message_id: "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324".into(),
        token: None,
        topic_arn: "arn:aws:sns:us-east-1:123456789012:orders".into(),
        subject: subject.map(Into::into),
        message: "{\"bundle\": 1}\nwith a newline and \"quotes\"".into(),
        subscribe_url: None,
        timestamp: "2012-05-02T00:54:06.655Z".into(),
        signature_version: SignatureVersion::Unsupported(String::new()),
        signature: String::new(),
        signing_cert_url: String::new(),
        unsubscribe_url: Some(
            "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=x".into(),
        ),
        message_attributes: None,
    }
}

fn confirmation(kind: MessageType) -> Envelope {
    Envelope {
        message_type: kind,
        token: Some("2336412f37fb687f5d51e6e241d7700ae02f7124".into()),
        subject: None,
        message: "You have chosen to subscribe to the topic arn:aws:sns:us-east-1:123456789012:orders.\nTo confirm the subscription, visit the SubscribeURL included in this message.".into(),
        subscribe_url: Some("https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-east-1:123456789012:orders&Token=2336412f37fb687f5d51e6e241d7700ae02f7124".into()),
        unsubscribe_url: None,
        ..notification(None)
    }
}

fn all_kinds() -> Vec<Envelope> {
    vec![
        notification(None),
        notification(Some("Order")),
        confirmation(MessageType::SubscriptionConfirmation),
        confirmation(MessageType::UnsubscribeConfirmation),
    ]
}

fn signed(signer: &TestSigner, mut envelope: Envelope, version: SignatureVersion) -> Envelope {
    signer.sign(&mut envelope, version);
    envelope
}

#[tokio::test]
async fn every_message_type_verifies_with_both_versions() {
    let sns = Sns::start().await;
    let verifier = sns.verifier();
    let signer = sns.signer(CERT);
    for version in [SignatureVersion::V1, SignatureVersion::V2] {
        for envelope in all_kinds() {
            let envelope = signed(&signer, envelope, version.clone());
            assert_eq!(envelope.signature_version, version);
            assert_eq!(envelope.signing_cert_url, sns.url(CERT));
            let result = verifier.verify(&envelope).await;
            assert!(result.is_ok(), "{version:?} {envelope:?}: {result:?}");
        }
    }
}

#[tokio::test]
async fn a_signed_envelope_survives_the_json_round_trip() {
    let sns = Sns::start().await;
    let signer = sns.signer(CERT);
    let envelope = signed(&signer, notification(Some("Order")), SignatureVersion::V2);
    let body = serde_json::to_string(&envelope).unwrap();
    let parsed: Envelope = serde_json::from_str(&body).unwrap();
    sns.verifier().verify(&parsed).await.unwrap();
}

#[tokio::test]
async fn tampered_signed_fields_fail() {
    let sns = Sns::start().await;
    let verifier = sns.verifier();
    let signer = sns.signer(CERT);
    type Tamper = fn(&mut Envelope);
    let tampers: [(&str, Tamper); 8] = [
        ("Message", |e| e.message = "{\"bundle\": 1000}".into()),
        ("TopicArn", |e| {
            e.topic_arn = "arn:aws:sns:us-east-1:999999999999:orders".into()
        }),
        ("MessageId", |e| e.message_id.push('0')),
        ("Timestamp", |e| e.timestamp = "2030-01-01T00:00:00.000Z".into()),
        ("Subject", |e| e.subject = Some("added".into())),
        ("Token", |e| e.token = Some("other".into())),
        ("SubscribeURL", |e| {
            e.subscribe_url =
                Some("https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=x".into())
        }),
        ("Type", |e| {
            e.message_type = match e.message_type {
                MessageType::Notification => MessageType::UnsubscribeConfirmation,
                _ => MessageType::Notification,
            }
        }),
    ];
    for version in [SignatureVersion::V1, SignatureVersion::V2] {
        for envelope in all_kinds() {
            let original = signed(&signer, envelope, version.clone());
            for (field, tamper) in &tampers {
                let mut envelope = original.clone();
                tamper(&mut envelope);
                if envelope.string_to_sign() == original.string_to_sign() {
                    continue; // a field this message type does not sign
                }
                let result = verifier.verify(&envelope).await;
                assert!(
                    matches!(result, Err(VerifyError::BadSignature)),
                    "{version:?} {:?} tampered {field}: {result:?}",
                    original.message_type
                );
            }
        }
    }
}

#[tokio::test]
async fn the_signature_version_cannot_be_swapped() {
    let sns = Sns::start().await;
    let verifier = sns.verifier();
    let signer = sns.signer(CERT);
    let mut v1 = signed(&signer, notification(None), SignatureVersion::V1);
    v1.signature_version = SignatureVersion::V2;
    assert!(matches!(
        verifier.verify(&v1).await,
        Err(VerifyError::BadSignature)
    ));
    let mut v2 = signed(&signer, notification(None), SignatureVersion::V2);
    v2.signature_version = SignatureVersion::V1;
    assert!(matches!(
        verifier.verify(&v2).await,
        Err(VerifyError::BadSignature)
    ));
}

#[tokio::test]
async fn unsigned_fields_may_change() {
    let sns = Sns::start().await;
    let signer = sns.signer(CERT);
    let mut envelope = signed(&signer, notification(None), SignatureVersion::V2);
    envelope.unsubscribe_url = None;
    envelope.message_attributes = Some([("a".to_owned(), MessageAttribute::string("b"))].into());
    sns.verifier().verify(&envelope).await.unwrap();
}

#[tokio::test]
async fn a_signature_from_another_key_fails() {
    let sns = Sns::start().await;
    let verifier = sns.verifier();
    // Signed with the other key but naming the test key's certificate.
    let impostor = TestSigner::from_pem(OTHER_KEY_PEM, sns.url(CERT)).unwrap();
    // Signed with the test key but naming the other key's certificate.
    let mismatched = TestSigner::from_pem(TEST_KEY_PEM, sns.url(OTHER_CERT)).unwrap();
    for signer in [&impostor, &mismatched] {
        for version in [SignatureVersion::V1, SignatureVersion::V2] {
            let envelope = signed(signer, notification(None), version.clone());
            let result = verifier.verify(&envelope).await;
            assert!(matches!(result, Err(VerifyError::BadSignature)), "{result:?}");
        }
    }
    // The other pair is consistent with itself.
    let other = TestSigner::from_pem(OTHER_KEY_PEM, sns.url(OTHER_CERT)).unwrap();
    let envelope = signed(&other, notification(None), SignatureVersion::V2);
    verifier.verify(&envelope).await.unwrap();
}

#[tokio::test]
async fn other_signature_versions_are_refused_without_fetching() {
    let sns = Sns::start().await;
    let verifier = sns.verifier();
    let signer = sns.signer(CERT);
    for version in ["3", "", "0", "01", "1 ", "2.0", "v2"] {
        let mut envelope = signed(&signer, notification(None), SignatureVersion::V1);
        envelope.signature_version = SignatureVersion::from(version.to_owned());
        let result = verifier.verify(&envelope).await;
        assert!(
            matches!(&result, Err(VerifyError::UnsupportedSignatureVersion(v)) if v == version),
            "{version:?}: {result:?}"
        );
        assert!(!result.unwrap_err().is_transient());
    }
    // A long one is shown quoted, cut short, and said to be longer.
    let mut envelope = signed(&signer, notification(None), SignatureVersion::V1);
    envelope.signature_version = SignatureVersion::from("2\n".repeat(300));
    let refusal = verifier.verify(&envelope).await.unwrap_err().to_string();
    assert!(
        refusal.starts_with(r#"unsupported SignatureVersion "2\n2\n"#) && refusal.ends_with("…(600 bytes)"),
        "{refusal}"
    );
    assert_eq!(sns.total_hits(), 0);
}

#[tokio::test]
async fn malformed_signatures_are_refused_without_fetching() {
    let sns = Sns::start().await;
    let verifier = sns.verifier();
    let signer = sns.signer(CERT);
    for signature in ["", "!!!not base64!!!", "c2ln\n", "c2ln====", "YWJj-_"] {
        let mut envelope = signed(&signer, notification(None), SignatureVersion::V2);
        envelope.signature = signature.into();
        let result = verifier.verify(&envelope).await;
        assert!(
            matches!(result, Err(VerifyError::MalformedSignature)),
            "{signature:?}: {result:?}"
        );
    }
    assert_eq!(sns.total_hits(), 0);
    // Well-formed base64 of the wrong bytes is a bad signature, not a malformed one.
    let mut envelope = signed(&signer, notification(None), SignatureVersion::V2);
    envelope.signature = "c2lnbmF0dXJl".into();
    assert!(matches!(
        verifier.verify(&envelope).await,
        Err(VerifyError::BadSignature)
    ));
}

#[tokio::test]
async fn untrusted_cert_urls_are_refused_without_fetching() {
    let sns = Sns::start().await;
    let verifier = sns.verifier();
    let port = sns.base.port().unwrap();
    let host = sns.base.host_str().unwrap();
    for url in [
        "http://evil.example/x.pem".to_owned(),
        format!("https://sns.s3.amazonaws.com{CERT}"),
        format!("http://{host}:{port}/SimpleNotificationService-abc.txt"),
        format!("http://{host}:{port}{CERT}?x=1"),
        format!("http://user:pw@{host}:{port}{CERT}"),
        format!("http://{host}:{}{CERT}", port.wrapping_add(1)),
        format!("https://{host}:{port}{CERT}"),
        format!("http://localhost:{port}{CERT}"),
        "not a url".to_owned(),
    ] {
        let signer = TestSigner::from_pem(TEST_KEY_PEM, url.clone()).unwrap();
        let envelope = signed(&signer, notification(None), SignatureVersion::V2);
        let result = verifier.verify(&envelope).await;
        assert!(
            matches!(&result, Err(VerifyError::UntrustedCertUrl(_))),
            "{url}: {result:?}"
        );
        assert!(!result.unwrap_err().is_transient());
    }
    assert_eq!(sns.total_hits(), 0);
}

#[tokio::test]
async fn without_a_stand_in_only_sns_shaped_urls_are_ever_requested() {
    // Every request this client makes lands on the local server, so a count
    // of zero proves nothing was fetched.
    let sns = Sns::start().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .proxy(reqwest::Proxy::all(sns.base.as_str()).unwrap())
        .build()
        .unwrap();
    let verifier = SnsVerifier::new(TrustedHosts::new(None), client);
    let path = "/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem";
    for url in [
        "http://evil.example/x.pem".to_owned(),
        format!("http://sns.us-east-1.amazonaws.com{path}"),
        format!("https://sns.s3.amazonaws.com{path}"),
        format!("https://sns.s3-us-east-1.amazonaws.com{path}"),
        format!("https://sns.amazonaws.com.evil.com{path}"),
        "https://sns.us-east-1.amazonaws.com/bucket/x.pem".to_owned(),
        format!("https://user@sns.us-east-1.amazonaws.com{path}"),
        format!("https://sns.us-east-1.amazonaws.com:8443{path}"),
        format!("https://sns.us-east-1.amazonaws.com{path}?a=b"),
        sns.url(CERT),
    ] {
        let signer = TestSigner::from_pem(TEST_KEY_PEM, url.clone()).unwrap();
        let envelope = signed(&signer, notification(None), SignatureVersion::V1);
        let result = verifier.verify(&envelope).await;
        assert!(
            matches!(&result, Err(VerifyError::UntrustedCertUrl(_))),
            "{url}: {result:?}"
        );
    }
    assert_eq!(sns.total_hits(), 0);

    // Control: a genuine-looking URL is requested (through the proxy, which
    // refuses the tunnel), so the zero above is meaningful.
    let signer =
        TestSigner::from_pem(TEST_KEY_PEM, format!("https://sns.us-east-1.amazonaws.com{path}")).unwrap();
    let envelope = signed(&signer, notification(None), SignatureVersion::V1);
    let result = verifier.verify(&envelope).await;
    assert!(matches!(&result, Err(e) if e.is_transient()), "{result:?}");
    assert!(sns.total_hits() >= 1);
}

#[tokio::test]
async fn the_certificate_is_fetched_once_for_many_verifications() {
    let sns = Sns::start().await;
    let verifier = Arc::new(sns.verifier());
    let signer = sns.signer(CERT);
    // Concurrent first requests share one fetch.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let verifier = Arc::clone(&verifier);
        let version = if i % 2 == 0 {
            SignatureVersion::V1
        } else {
            SignatureVersion::V2
        };
        let envelope = signed(&signer, notification(None), version);
        tasks.spawn(async move { verifier.verify(&envelope).await });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap().unwrap();
    }
    for envelope in all_kinds() {
        let envelope = signed(&signer, envelope, SignatureVersion::V2);
        for _ in 0..5 {
            verifier.verify(&envelope).await.unwrap();
        }
    }
    assert_eq!(sns.hits(CERT), 1);
}

#[tokio::test]
async fn a_verified_key_is_reused_only_for_its_own_url() {
    let sns = Sns::start().await;
    let verifier = sns.verifier();
    let genuine = signed(&sns.signer(CERT), notification(None), SignatureVersion::V2);
    verifier.verify(&genuine).await.unwrap();
    // SigningCertURL is not signed: the same signature naming another URL is
    // checked against that URL, however recently the key verified.
    let port = sns.base.port().unwrap();
    let host = sns.base.host_str().unwrap();
    for untrusted in [
        format!("http://{host}:{port}{CERT}?x=1"),
        format!("http://localhost:{port}{CERT}"),
    ] {
        let renamed = Envelope {
            signing_cert_url: untrusted.clone(),
            ..genuine.clone()
        };
        let result = verifier.verify(&renamed).await;
        assert!(
            matches!(&result, Err(VerifyError::UntrustedCertUrl(_))),
            "{untrusted}: {result:?}"
        );
    }
    // Another spelling of the same URL finds the cached key.
    let respelled = Envelope {
        signing_cert_url: format!("HTTP://{host}:{port}{CERT}"),
        ..genuine.clone()
    };
    verifier.verify(&respelled).await.unwrap();
    verifier.verify(&genuine).await.unwrap();
    assert_eq!(sns.hits(CERT), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_requests_on_threads_share_one_fetch() {
    let sns = Sns::start().await;
    let verifier = Arc::new(sns.verifier());
    let envelope = signed(&sns.signer(CERT), notification(None), SignatureVersion::V2);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let verifier = Arc::clone(&verifier);
        let envelope = envelope.clone();
        tasks.spawn(async move { verifier.verify(&envelope).await });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap().unwrap();
    }
    assert_eq!(sns.hits(CERT), 1);
}

#[tokio::test]
async fn cached_keys_expire_after_the_ttl() {
    // Long against a busy machine's stalls, short for a test. What each
    // check below expects is proven by the clock, not hoped for: a stall
    // makes fewer verifications count, never one count wrongly.
    const TTL: Duration = Duration::from_secs(2);
    let sns = Sns::start().await;
    let verifier = sns.verifier().with_cache(TTL, 64);
    let envelope = signed(&sns.signer(CERT), notification(None), SignatureVersion::V2);
    // The key is fetched between these two instants: it is fresh until at
    // least TTL after the first, and expired from TTL after the second.
    let fetching = Instant::now();
    verifier.verify(&envelope).await.unwrap();
    let fetched = Instant::now();
    assert_eq!(sns.hits(CERT), 1);
    // A verification over before `fetching + TTL` found the key fresh.
    let mut within = 0;
    while fetching.elapsed() < TTL {
        verifier.verify(&envelope).await.unwrap();
        let after = fetching.elapsed();
        if after < TTL {
            assert_eq!(
                sns.hits(CERT),
                1,
                "fetched again within the TTL ({after:?} after the fetch began)"
            );
            within += 1;
        }
        tokio::time::sleep(TTL / 20).await;
    }
    assert!(within > 0, "no verification ended within the TTL");
    // Once the TTL has passed, the next verification fetches again, once.
    tokio::time::sleep_until((fetched + TTL).into()).await;
    verifier.verify(&envelope).await.unwrap();
    assert_eq!(sns.hits(CERT), 2, "still cached after the TTL");
    verifier.verify(&envelope).await.unwrap();
    assert_eq!(sns.hits(CERT), 2);
}

#[tokio::test]
async fn the_cache_is_bounded() {
    let sns = Sns::start().await;
    let verifier = sns.verifier().with_cache(Duration::from_secs(3600), 2);
    let verify = |name: &'static str| {
        let envelope = signed(
            &sns.signer(&format!("/many/{name}.pem")),
            notification(None),
            SignatureVersion::V2,
        );
        let verifier = &verifier;
        async move { verifier.verify(&envelope).await.unwrap() }
    };
    verify("a").await;
    verify("b").await;
    verify("a").await;
    assert_eq!(sns.hits("/many/a.pem"), 1);
    verify("c").await; // evicts the oldest, "a"
    verify("b").await;
    verify("c").await;
    assert_eq!(sns.hits("/many/b.pem"), 1);
    assert_eq!(sns.hits("/many/c.pem"), 1);
    verify("a").await;
    assert_eq!(sns.hits("/many/a.pem"), 2);
}

#[tokio::test]
async fn a_failed_fetch_is_transient_and_not_cached() {
    let sns = Sns::start().await;
    let verifier = sns.verifier();
    let envelope = signed(&sns.signer(FLAKY), notification(None), SignatureVersion::V1);
    let result = verifier.verify(&envelope).await;
    assert!(
        matches!(&result, Err(VerifyError::CertificateUnavailable(why)) if why.contains("500")),
        "{result:?}"
    );
    assert!(result.unwrap_err().is_transient());
    assert_eq!(*sns.failures_left.lock().unwrap(), 0);
    verifier.verify(&envelope).await.unwrap();
    verifier.verify(&envelope).await.unwrap();
    assert_eq!(sns.hits(FLAKY), 2);
}

#[tokio::test]
async fn concurrent_requests_share_one_failed_fetch_and_later_ones_retry() {
    let sns = Sns::start().await;
    let verifier = Arc::new(sns.verifier());
    let envelope = signed(&sns.signer("/down.pem"), notification(None), SignatureVersion::V2);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let verifier = Arc::clone(&verifier);
        let envelope = envelope.clone();
        tasks.spawn(async move { verifier.verify(&envelope).await });
    }
    while let Some(result) = tasks.join_next().await {
        let result = result.unwrap();
        assert!(matches!(&result, Err(e) if e.is_transient()), "{result:?}");
    }
    assert_eq!(sns.hits("/down.pem"), 1);
    assert!(verifier.verify(&envelope).await.is_err());
    assert_eq!(sns.hits("/down.pem"), 2);
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let sns = Sns::start().await;
    let envelope = signed(&sns.signer(REDIRECT), notification(None), SignatureVersion::V2);
    let result = sns.verifier().verify(&envelope).await;
    assert!(
        matches!(
            &result,
            Err(VerifyError::CertificateUnavailable(_) | VerifyError::BadCertificate(_))
        ),
        "{result:?}"
    );
    assert_eq!(sns.hits(REDIRECT), 1);
    assert_eq!(sns.hits(TARGET), 0);
}

#[tokio::test]
async fn a_client_that_follows_redirects_still_gets_no_key_from_the_target() {
    let sns = Sns::start().await;
    let following = reqwest::Client::new();
    let verifier = SnsVerifier::new(TrustedHosts::new(Some(sns.base.clone())), following);
    let envelope = signed(&sns.signer(REDIRECT), notification(None), SignatureVersion::V2);
    let result = verifier.verify(&envelope).await;
    assert!(
        matches!(&result, Err(VerifyError::CertificateUnavailable(_))),
        "{result:?}"
    );
}

/// A certificate streamed in 64-byte chunks with no Content-Length, as a
/// server or proxy that re-chunks it sends it: read whole, it verifies.
#[tokio::test]
async fn a_certificate_sent_in_many_small_chunks_verifies() {
    let sns = Sns::start().await;
    let verifier = sns.verifier();
    for version in [SignatureVersion::V1, SignatureVersion::V2] {
        let envelope = signed(&sns.signer(CHUNKED), notification(None), version.clone());
        let result = verifier.verify(&envelope).await;
        assert!(result.is_ok(), "{version:?}: {result:?}");
    }
    assert_eq!(sns.hits(CHUNKED), 1);
}

#[tokio::test]
async fn bodies_that_are_not_rsa_certificates_are_bad_certificates() {
    let sns = Sns::start().await;
    let verifier = sns.verifier();
    for path in ["/empty.pem", "/garbage.pem", "/key.pem", "/huge.pem"] {
        let envelope = signed(&sns.signer(path), notification(None), SignatureVersion::V2);
        let result = verifier.verify(&envelope).await;
        assert!(
            matches!(&result, Err(VerifyError::BadCertificate(_))),
            "{path}: {result:?}"
        );
        let error = result.unwrap_err();
        assert!(!error.is_transient());
        if path == "/huge.pem" {
            assert!(error.to_string().contains("larger than 65536 bytes"), "{error}");
        }
        // Not cached either.
        let _ = verifier.verify(&envelope).await;
        assert_eq!(sns.hits(path), 2, "{path}");
    }
}

#[tokio::test]
async fn missing_certificates_and_slow_servers_are_transient() {
    let sns = Sns::start().await;
    let verifier = sns.verifier();
    let missing = signed(
        &sns.signer("/SimpleNotificationService-dead.pem"),
        notification(None),
        SignatureVersion::V2,
    );
    let result = verifier.verify(&missing).await;
    assert!(matches!(&result, Err(e) if e.is_transient()), "{result:?}");

    let slow = signed(&sns.signer("/slow.pem"), notification(None), SignatureVersion::V2);
    let result = verifier.verify(&slow).await;
    assert!(matches!(&result, Err(e) if e.is_transient()), "{result:?}");
    // Given up at the fetch's timeout, not when the 10 s answer came.
    let said = result.map(|_| ()).unwrap_err().to_string();
    assert!(said.contains("no answer within 3s"), "{said}");
}

#[test]
fn signers_take_pkcs8_and_pkcs1_keys_only() {
    assert!(TEST_KEY_PKCS1_PEM.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    let from_pkcs1 = SnsSigner::from_pem(TEST_KEY_PKCS1_PEM, "u").unwrap();
    let from_pkcs8 = SnsSigner::from_pem(TEST_KEY_PEM, "u").unwrap();
    assert_eq!(from_pkcs1.cert_url(), "u");
    // PKCS#1 v1.5 signatures are deterministic: the same key signs the same.
    let mut pkcs1_signed = notification(None);
    from_pkcs1.sign(&mut pkcs1_signed);
    let mut pkcs8_signed = notification(None);
    from_pkcs8.sign(&mut pkcs8_signed);
    assert_eq!(pkcs1_signed.signature_version, SignatureVersion::V2);
    assert_eq!(pkcs1_signed.signature, pkcs8_signed.signature);
    assert!(SnsSigner::from_pem(TEST_CERT_PEM, "u").is_err());
    assert!(SnsSigner::from_pem("", "u").is_err());
    assert!(TestSigner::from_pem(TEST_KEY_PKCS1_PEM, "u").is_ok());
    // The signers never print their key.
    assert_eq!(format!("{from_pkcs8:?}"), r#"SnsSigner { cert_url: "u", .. }"#);
    let test_signer = TestSigner::from_pem(TEST_KEY_PEM, "u").unwrap();
    assert_eq!(format!("{test_signer:?}"), r#"TestSigner { cert_url: "u", .. }"#);
}

/// Notifications signed by OpenSSL, not by our code
/// (fixtures/make-signed-notifications.sh): the verifier agrees with an
/// independent signer, and one flipped byte anywhere signed fails.
#[tokio::test]
async fn openssl_signed_notifications_verify_and_a_flipped_byte_fails() {
    let sns = Sns::start().await;
    let verifier = sns.verifier();
    for (fixture, version) in [
        (SIGNED_V1, SignatureVersion::V1),
        (SIGNED_V2, SignatureVersion::V2),
    ] {
        let mut genuine: Envelope = serde_json::from_str(fixture).unwrap();
        assert_eq!(genuine.signature_version, version);
        // SigningCertURL is not signed: point it at the stand-in serving
        // the test certificate.
        genuine.signing_cert_url = sns.url(CERT);
        verifier.verify(&genuine).await.unwrap();

        let signature = STANDARD.decode(&genuine.signature).unwrap();
        for at in [0, signature.len() / 2, signature.len() - 1] {
            let mut flipped = signature.clone();
            flipped[at] ^= 0x01;
            let mut forged = genuine.clone();
            forged.signature = STANDARD.encode(&flipped);
            let result = verifier.verify(&forged).await;
            assert!(
                matches!(result, Err(VerifyError::BadSignature)),
                "{version:?} signature byte {at}: {result:?}"
            );
        }
        let text = genuine.string_to_sign();
        for at in [0, text.len() / 2, text.len() - 1] {
            let key = CertificateKey::from_pem(TEST_CERT_PEM.as_bytes()).unwrap();
            let mut flipped = text.clone().into_bytes();
            flipped[at] ^= 0x01;
            assert!(key.verify(&version, text.as_bytes(), &signature).is_ok());
            assert!(
                key.verify(&version, &flipped, &signature).is_err(),
                "{version:?} signed text byte {at}"
            );
        }
        let mut forged = genuine.clone();
        forged.message = forged.message.replace(['1', '2'], "7");
        assert!(matches!(
            verifier.verify(&forged).await,
            Err(VerifyError::BadSignature)
        ));
    }
}
