//! Certificate fetching under forged messages: a few fetches at a time
//! whatever the number of URLs, failures never cached, and the genuine
//! key kept however many forged URLs come by; SNS-shaped URLs fetched from
//! the stand-in.
//!
//! The signing keys are testkit's (`testkit::keys`); the signer is HQ's.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use contracts::SignatureVersion;
use contracts::{Envelope, MessageType};
use platform::sns::verify::MAX_FETCHES_IN_FLIGHT;
use platform::sns::{SnsVerifier, TrustedHosts, VerifyError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use testkit::TestSigner;
use testkit::keys::{NOT_YET_VALID_CERT_PEM, OTHER_CERT_PEM, TEST_CERT_PEM, TEST_KEY_PEM};
use url::Url;

const CERT: &str = "/SimpleNotificationService-0123456789abcdef.pem";

/// A certificate server: the genuine certificate at [`CERT`], slow 404s under
/// `/forged/`, another key's certificate under `/other/`, a certificate valid
/// from 2099 under `/not-yet-valid/`; it counts requests
/// by path, the most it answered at once, and the `Authorization` headers.
#[derive(Clone, Default)]
struct CertServer {
    hits: Arc<Mutex<HashMap<String, usize>>>,
    authorizations: Arc<Mutex<Vec<String>>>,
    in_flight: Arc<AtomicUsize>,
    most_in_flight: Arc<AtomicUsize>,
}

impl CertServer {
    async fn start() -> (Self, Url) {
        let server = Self::default();
        let app = Router::new()
            .route(CERT, get(|| async { TEST_CERT_PEM }))
            .route(
                "/forged/{name}",
                get(|| async {
                    // Slow enough that unbounded fetches overlap, quick
                    // enough that bounded ones finish well within the
                    // fetch timeout (whose expiry would hang up mid-request).
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    StatusCode::NOT_FOUND
                }),
            )
            .route(
                "/hang/{name}",
                get(|| async {
                    // Longer than the fetch timeout: its callers give up.
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    StatusCode::NOT_FOUND
                }),
            )
            .route("/other/{name}", get(|| async { OTHER_CERT_PEM }))
            .route("/not-yet-valid/{name}", get(|| async { NOT_YET_VALID_CERT_PEM }))
            .fallback(|| async { StatusCode::NOT_FOUND.into_response() })
            .layer(middleware::from_fn_with_state(server.clone(), count))
            .with_state(server.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (server, base)
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    fn total_hits(&self) -> usize {
        self.hits.lock().unwrap().values().sum()
    }
}

async fn count(State(server): State<CertServer>, request: Request, next: Next) -> Response {
    *server
        .hits
        .lock()
        .unwrap()
        .entry(request.uri().path().to_owned())
        .or_default() += 1;
    if let Some(value) = request.headers().get("authorization") {
        server
            .authorizations
            .lock()
            .unwrap()
            .push(value.to_str().unwrap_or_default().to_owned());
    }
    let now = server.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    server.most_in_flight.fetch_max(now, Ordering::SeqCst);
    // Counted out even when the client hangs up and the handler is dropped.
    let _counted = InFlight(&server.in_flight);
    next.run(request).await
}

/// Takes one off the in-flight count when dropped.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn verifier(stand_in: &Url) -> SnsVerifier {
    // The services' own client.
    let client =
        platform::downstream::http_client(platform::downstream::DEFAULT_DOWNSTREAM_CONNECTIONS).unwrap();
    SnsVerifier::new(TrustedHosts::new(Some(stand_in.clone())), client)
}

/// A notification signed with the test key, naming `cert_url`.
fn signed(cert_url: &str) -> Envelope {
    let mut envelope = Envelope {
        message_type: MessageType::Notification,
        message_id: "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324".into(),
        token: None,
        topic_arn: "arn:aws:sns:us-east-1:123456789012:orders".into(),
        subject: None,
        message: "{\"bundle\": 1}".into(),
        subscribe_url: None,
        timestamp: "2026-01-02T00:54:06.655Z".into(),
        // Set by signing.
        signature_version: SignatureVersion::Unsupported(String::new()),
        signature: String::new(),
        signing_cert_url: String::new(),
        unsubscribe_url: None,
        message_attributes: None,
    };
    TestSigner::from_pem(TEST_KEY_PEM, cert_url)
        .unwrap()
        .sign(&mut envelope, SignatureVersion::V2);
    envelope
}

/// Verifies `genuine` once, then 300 forgeries of it at once: 200 naming
/// certificate URLs that fail to fetch, 100 naming another key's
/// certificate. How many of those failed on the signature.
async fn flood(verifier: &Arc<SnsVerifier>, base: &Url, genuine: &Envelope) -> usize {
    verifier.verify(genuine).await.unwrap();
    let mut forged = tokio::task::JoinSet::new();
    for i in 0..300 {
        let path = if i < 200 {
            format!("forged/{i}.pem")
        } else {
            format!("other/{i}.pem")
        };
        // SigningCertURL is not signed, so one signature serves them all.
        let mut envelope = genuine.clone();
        envelope.signing_cert_url = base.join(&path).unwrap().to_string();
        let verifier = Arc::clone(verifier);
        forged.spawn(async move { verifier.verify(&envelope).await });
    }
    let mut bad_signatures = 0;
    while let Some(result) = forged.join_next().await {
        match result.unwrap() {
            Err(VerifyError::BadSignature) => bad_signatures += 1,
            Err(error) => assert!(error.is_transient(), "{error:?}"),
            Ok(()) => panic!("a forged message verified"),
        }
    }
    bad_signatures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_cert_urls_in_bulk_make_few_fetches_at_once() {
    let (server, base) = CertServer::start().await;
    let verifier = Arc::new(verifier(&base));
    let genuine = signed(base.join(CERT).unwrap().as_str());
    flood(&verifier, &base, &genuine).await;
    let most = server.most_in_flight.load(Ordering::SeqCst);
    // Unbounded, the 200 slow URLs overlap by the dozen.
    assert!(
        (1..=MAX_FETCHES_IN_FLIGHT).contains(&most) && most < 16,
        "{most} certificate fetches at once"
    );
    assert!(server.total_hits() <= 301, "{}", server.total_hits());
}

/// Callers queued for a fetch slot behind fetches that never answer give
/// up when those do; none then sends its GET after its caller has its
/// answer (they did, a few hundred of them at once under a flood).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_certificate_is_fetched_for_a_caller_that_has_given_up() {
    let (server, base) = CertServer::start().await;
    let verifier = Arc::new(verifier(&base));
    let mut flood = Flood::new(&verifier, &base);
    flood.hold_every_slot(&server).await;
    // The callers under test come a little after, as messages do: when the
    // slots free, their own time is nearly up (0.1 s left, under the least
    // a fetch is sent with), but not quite.
    tokio::time::sleep(Duration::from_millis(100)).await;
    flood.forge(MAX_FETCHES_IN_FLIGHT..5 * MAX_FETCHES_IN_FLIGHT);
    while let Some(result) = flood.forged.join_next().await {
        let error = result.unwrap().unwrap_err();
        assert!(error.is_transient(), "{error:?}");
    }
    // Every caller has its answer: a GET sent as they gave up arrives
    // within moments. Watched for a second.
    let until = std::time::Instant::now() + Duration::from_secs(1);
    while std::time::Instant::now() < until {
        let hits = server.total_hits();
        assert!(
            hits <= MAX_FETCHES_IN_FLIGHT,
            "{hits} fetches for callers that had given up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Forged copies of a genuine message, each naming a certificate of its
/// own under `/hang/` (which never answers), verified as they come; and
/// genuine copies, verified likewise.
struct Flood {
    verifier: Arc<SnsVerifier>,
    base: Url,
    message: Envelope,
    forged: tokio::task::JoinSet<Result<(), VerifyError>>,
    genuine: tokio::task::JoinSet<Result<(), VerifyError>>,
}

impl Flood {
    /// Nothing sent yet; the genuine message names [`CERT`] on `base`.
    fn new(verifier: &Arc<SnsVerifier>, base: &Url) -> Self {
        Self {
            verifier: Arc::clone(verifier),
            base: base.clone(),
            message: signed(base.join(CERT).unwrap().as_str()),
            forged: tokio::task::JoinSet::new(),
            genuine: tokio::task::JoinSet::new(),
        }
    }

    /// Sends forgeries naming `/hang/<i>.pem` for each `i` in `urls`.
    fn forge(&mut self, urls: std::ops::Range<usize>) {
        for i in urls {
            let mut envelope = self.message.clone();
            envelope.signing_cert_url = self.base.join(&format!("hang/{i}.pem")).unwrap().to_string();
            let verifier = Arc::clone(&self.verifier);
            self.forged.spawn(async move { verifier.verify(&envelope).await });
        }
    }

    /// Sends as many forgeries as there are fetch slots, and waits until
    /// their fetches hold every slot (`server` has them all).
    async fn hold_every_slot(&mut self, server: &CertServer) {
        let hits_before = server.total_hits();
        self.forge(0..MAX_FETCHES_IN_FLIGHT);
        testkit::wait_until(
            "the flood's fetches holding every slot",
            Duration::from_secs(5),
            async || (server.total_hits() == hits_before + MAX_FETCHES_IN_FLIGHT).then_some(()),
        )
        .await;
    }

    /// Sends `copies` of the genuine message.
    fn send_genuine(&mut self, copies: usize) {
        for _ in 0..copies {
            let (verifier, message) = (Arc::clone(&self.verifier), self.message.clone());
            self.genuine.spawn(async move { verifier.verify(&message).await });
        }
    }

    /// The genuine copies' outcomes, once all have one; the flood is
    /// stopped.
    async fn genuine_outcomes(mut self) -> Vec<Result<(), VerifyError>> {
        let outcomes = self.genuine.join_all().await;
        self.forged.abort_all();
        outcomes
    }
}

/// A flood's fetches that never answer hold every slot; more of the flood
/// queues; then `genuine` copies of a genuine message come, whose
/// certificate is not cached. Each copy's outcome, once the flood's first
/// fetches give up and free their slots (about 3 s): first come, first
/// served, the queued flood would take them, and the genuine messages'
/// time would run out behind it.
async fn genuine_behind_a_flood(
    verifier: &Arc<SnsVerifier>,
    server: &CertServer,
    base: &Url,
    genuine: usize,
) -> Vec<Result<(), VerifyError>> {
    let mut flood = Flood::new(verifier, base);
    flood.hold_every_slot(server).await;
    // The rest of the flood and the genuine messages come a second later,
    // as messages do: with time to spare when the slots free, so queued
    // forgeries would fetch (and hang) in the genuine messages' place.
    tokio::time::sleep(Duration::from_secs(1)).await;
    flood.forge(MAX_FETCHES_IN_FLIGHT..6 * MAX_FETCHES_IN_FLIGHT);
    // The genuine messages come after the flood, in line behind it: the
    // order under test (first come, first served, they would lose).
    tokio::time::sleep(Duration::from_millis(200)).await;
    flood.send_genuine(genuine);
    flood.genuine_outcomes().await
}

/// SNS signs a region's every message with one certificate; each forgery
/// names its own. The one several messages wait for is fetched first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certificate_most_messages_wait_for_is_fetched_before_a_floods() {
    let (server, base) = CertServer::start().await;
    let verifier = Arc::new(verifier(&base));
    let outcomes = genuine_behind_a_flood(&verifier, &server, &base, 3).await;
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    assert_eq!(server.hits(CERT), 1);
}

/// A flood of more URLs than the verifier keeps fetches for pushes out the
/// least wanted, not the genuine certificate's that two messages wait on:
/// a third joins that fetch, rather than start one of its own at the back
/// of the line, where it would wait out its time behind the flood.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_more_urls_than_are_kept_leaves_the_wanted_fetch_in_place() {
    let (server, base) = CertServer::start().await;
    let verifier = Arc::new(verifier(&base));
    let mut flood = Flood::new(&verifier, &base);
    flood.hold_every_slot(&server).await;
    // The genuine messages come a second later: with time to spare when
    // the flood's first fetches give up and free their slots.
    tokio::time::sleep(Duration::from_secs(1)).await;
    flood.send_genuine(2);
    // Each step of this test is a wave of messages arriving after the last.
    tokio::time::sleep(Duration::from_millis(100)).await;
    flood.forge(MAX_FETCHES_IN_FLIGHT..MAX_FETCHES_IN_FLIGHT + 300);
    tokio::time::sleep(Duration::from_millis(200)).await;
    flood.send_genuine(1);
    let outcomes = flood.genuine_outcomes().await;
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    assert_eq!(server.hits(CERT), 1, "the genuine certificate fetched again");
}

/// A certificate that verified before, its hour over, is fetched again
/// ahead of a flood, even for one message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_that_verified_before_is_fetched_again_before_a_floods() {
    let (server, base) = CertServer::start().await;
    let ttl = Duration::from_millis(100);
    let verifier = Arc::new(verifier(&base).with_cache(ttl, 8));
    verifier
        .verify(&signed(base.join(CERT).unwrap().as_str()))
        .await
        .unwrap();
    // The condition under test is the time passed, not something awaited.
    tokio::time::sleep(2 * ttl).await;
    let outcomes = genuine_behind_a_flood(&verifier, &server, &base, 1).await;
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    assert_eq!(server.hits(CERT), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_cert_urls_in_bulk_do_not_evict_the_genuine_key() {
    const CACHED_KEYS: usize = 8;
    let (server, base) = CertServer::start().await;
    let verifier = Arc::new(verifier(&base).with_cache(Duration::from_secs(3600), CACHED_KEYS));
    let genuine = signed(base.join(CERT).unwrap().as_str());
    let bad_signatures = flood(&verifier, &base, &genuine).await;
    // The other key's certificates were fetched (those the fetch slots had
    // time for) and verified nothing; more of them than the cache holds.
    assert!(bad_signatures > CACHED_KEYS, "{bad_signatures} bad signatures");
    assert_eq!(server.hits(CERT), 1);
    // The genuine key is still cached: verified without a fetch.
    verifier.verify(&genuine).await.unwrap();
    assert_eq!(server.hits(CERT), 1);
}

#[tokio::test]
async fn a_failed_fetch_is_not_cached() {
    let (server, base) = CertServer::start().await;
    let verifier = verifier(&base);
    let envelope = signed(base.join("forged/once.pem").unwrap().as_str());
    // Every try after a failure (SNS's retry, the next message) fetches
    // afresh: nothing answers for the URL in between.
    for tries in 1..=3 {
        let result = verifier.verify(&envelope).await;
        assert!(matches!(&result, Err(e) if e.is_transient()), "{result:?}");
        assert_eq!(server.hits("/forged/once.pem"), tries);
    }
}

#[tokio::test]
async fn sns_shaped_cert_urls_are_fetched_from_the_stand_in() {
    let (server, base) = CertServer::start().await;
    let verifier = verifier(&base);
    // moto's shape: the real host, which this test could not reach anyway.
    let envelope = signed(&format!("https://sns.eu-west-1.amazonaws.com{CERT}"));
    verifier.verify(&envelope).await.unwrap();
    assert_eq!(server.hits(CERT), 1);
    let authorizations = server.authorizations.lock().unwrap().clone();
    assert_eq!(authorizations.len(), 1);
    assert!(
        authorizations[0].contains("/eu-west-1/sns/aws4_request"),
        "{authorizations:?}"
    );
    // Its own URLs are fetched as they are, with no SNS scope.
    let own = signed(base.join(CERT).unwrap().as_str());
    verifier.verify(&own).await.unwrap();
    assert_eq!(server.authorizations.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_certificate_not_yet_valid_by_our_clock_is_transient_and_fetched_again() {
    // A clock set behind (ours or the signer's) fails every genuine message:
    // transient (503, which SNS retries), not a 403 after which SNS drops
    // the order; and not cached, so a clock set right is seen at once.
    let (server, base) = CertServer::start().await;
    let verifier = verifier(&base);
    let envelope = signed(base.join("not-yet-valid/cert.pem").unwrap().as_str());
    for _ in 0..2 {
        match verifier.verify(&envelope).await {
            Err(error @ VerifyError::CertificateNotYetValid(_)) => {
                assert!(error.is_transient());
                assert!(error.to_string().contains("check the clock"), "{error}");
            }
            other => panic!("expected CertificateNotYetValid, got {other:?}"),
        }
    }
    assert_eq!(server.hits("/not-yet-valid/cert.pem"), 2);
}
