//! Starting HQ and a scriptable SNS subscriber on loopback, and talking to
//! HQ's API; waiting is testkit's `wait_until` (polling with a deadline).

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use contracts::{Envelope, MessageType};
use hq::feed::generator::GeneratorConfig;
use hq::feed::{Backoff, FeedConfig, RetryPolicy};
use hq::{HqConfig, RunningHq};
use platform::ApiKey;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::net::TcpListener;

/// The key HQ is given at start in these tests.
pub const KEY: &str = "test-hq-key-0001";

/// A retry policy fast enough for tests: 3 retries, 20 ms apart, and a
/// generous attempt timeout.
pub fn fast_retries() -> FeedConfig {
    FeedConfig {
        retry: RetryPolicy {
            num_retries: 3,
            min_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(20),
            backoff: Backoff::Linear,
        },
        // An attempt that times out is retried, a second notification the
        // tests counting deliveries would see: on a busy machine a loopback
        // answer took over 500 ms. No test waits for this timeout.
        delivery_timeout: Duration::from_secs(10),
        max_concurrent_deliveries: 16,
        ..FeedConfig::default()
    }
}

/// One signing identity for the whole test binary: making RSA keys is slow.
fn identity_pems() -> &'static (String, String) {
    static PEMS: OnceLock<(String, String)> = OnceLock::new();
    PEMS.get_or_init(|| hq::signing::generate().unwrap())
}

/// Puts the shared signing identity in `dir`, so HQ makes none there.
pub fn seed_identity(dir: &Path) {
    let (key, cert) = identity_pems();
    std::fs::create_dir_all(dir).unwrap();
    if !dir.join(hq::signing::KEY_FILE).exists() {
        std::fs::write(dir.join(hq::signing::KEY_FILE), key).unwrap();
        std::fs::write(dir.join(hq::signing::CERT_FILE), cert).unwrap();
    }
}

/// A config for HQ in `dir`, with [`KEY`], the shared identity and fast retries.
pub fn config(dir: &Path) -> HqConfig {
    seed_identity(dir);
    let mut config = HqConfig::new(dir);
    config.api_keys = vec![ApiKey::new(KEY)];
    config.feed = fast_retries();
    config.generator = GeneratorConfig::default();
    config
}

/// The `hq` binary, as a user runs it.
pub fn hq_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_hq"))
}

/// The `hq` binary's environment: its data in `dir`, listening on a port of
/// its own choosing on loopback, and nothing else (no AWS host reachable).
pub fn binary_env(dir: &Path) -> std::collections::HashMap<String, String> {
    let mut env = testkit::process::safe_aws_env();
    env.insert("HQ_DATA_DIR".into(), dir.display().to_string());
    env.insert("HQ_LISTEN".into(), "127.0.0.1:0".into());
    env
}

/// Starts HQ on `127.0.0.1:0`.
pub async fn start_hq(config: HqConfig) -> RunningHq {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    hq::start(listener, config).await.unwrap()
}

/// A client that sends HQ's admin credential with every request.
pub fn admin_client(hq: &RunningHq) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let bearer = format!("Bearer {}", hq.hq().admin_token().expose());
    headers.insert(reqwest::header::AUTHORIZATION, bearer.parse().unwrap());
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// The URL of `path` on HQ.
pub fn url(hq: &RunningHq, path: &str) -> String {
    format!("http://{}{path}", hq.addr())
}

/// One request the subscriber received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body, as sent.
    pub body: String,
    /// When it arrived.
    pub at: std::time::Instant,
}

impl Received {
    /// The body as an envelope.
    pub fn envelope(&self) -> Envelope {
        serde_json::from_str(&self.body).unwrap()
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What the subscriber answers to the n-th notification (0-based).
pub type Script = Arc<dyn Fn(usize) -> StatusCode + Send + Sync>;

/// A small SNS subscriber: confirms subscriptions by GETting SubscribeURL,
/// answers notifications per its script, and keeps everything it received.
#[derive(Clone)]
pub struct Subscriber {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Everything received, in order.
    pub received: Arc<Mutex<Vec<Received>>>,
    state: SubscriberState,
    stop: tokio_util::sync::CancellationToken,
}

#[derive(Clone)]
struct SubscriberState {
    received: Arc<Mutex<Vec<Received>>>,
    script: Script,
    confirm: Arc<AtomicBool>,
}

impl Subscriber {
    /// Starts a subscriber at `/order/`; `confirm` says whether it confirms.
    pub async fn start(script: Script, confirm: bool) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let state = SubscriberState {
            received: Arc::clone(&received),
            script,
            confirm: Arc::new(AtomicBool::new(confirm)),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, state)
    }

    fn serve(listener: TcpListener, state: SubscriberState) -> Self {
        let addr = listener.local_addr().unwrap();
        let received = Arc::clone(&state.received);
        let router = Router::new()
            .route("/order/", post(receive))
            .with_state(state.clone());
        let stop = tokio_util::sync::CancellationToken::new();
        let stopped = stop.clone().cancelled_owned();
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(stopped)
                .await
        });
        Self {
            addr,
            received,
            state,
            stop,
        }
    }

    /// Whether it confirms the subscriptions it is sent from now on.
    pub fn set_confirming(&self, confirm: bool) {
        self.state.confirm.store(confirm, Ordering::SeqCst);
    }

    /// Stops listening: deliveries now meet a refused connection.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Listens again on the same address, keeping what it received.
    pub async fn restart(&self) -> Self {
        let listener = testkit::wait_until(
            "the address to be free again",
            Duration::from_secs(5),
            async || TcpListener::bind(self.addr).await.ok(),
        )
        .await;
        Self::serve(listener, self.state.clone())
    }

    /// Confirms, and answers 503 to every notification until the gate it
    /// returns is opened (set to true), then 200.
    pub async fn gated() -> (Self, Arc<AtomicBool>) {
        let open = Arc::new(AtomicBool::new(false));
        let gate = Arc::clone(&open);
        let subscriber = Self::start(
            Arc::new(move |_| {
                if gate.load(Ordering::SeqCst) {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                }
            }),
            true,
        )
        .await;
        (subscriber, open)
    }

    /// Answers 200 to everything and confirms.
    pub async fn happy() -> Self {
        Self::start(Arc::new(|_| StatusCode::OK), true).await
    }

    /// Its endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://{}/order/", self.addr)
    }

    /// What it received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The notifications it received so far.
    pub fn notifications(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.envelope().message_type == MessageType::Notification)
            .collect()
    }
}

async fn receive(State(state): State<SubscriberState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let body = String::from_utf8(body.to_vec()).unwrap();
    let envelope: Envelope = serde_json::from_str(&body).unwrap();
    let notifications_before = {
        let mut received = state.received.lock().unwrap();
        let before = received
            .iter()
            .filter(|r| r.envelope().message_type == MessageType::Notification)
            .count();
        received.push(Received {
            headers,
            body,
            at: std::time::Instant::now(),
        });
        before
    };
    match envelope.message_type {
        MessageType::SubscriptionConfirmation if state.confirm.load(Ordering::SeqCst) => {
            let url = envelope.subscribe_url.unwrap();
            let status = reqwest::get(url).await.unwrap().status();
            StatusCode::from_u16(status.as_u16()).unwrap()
        }
        MessageType::Notification => (state.script)(notifications_before),
        _ => StatusCode::OK,
    }
}

/// Subscribes `endpoint` to `topic` through HQ's API, as the admin.
pub async fn subscribe(hq: &RunningHq, topic: &str, endpoint: &str) -> serde_json::Value {
    let response = admin_client(hq)
        .post(url(hq, &format!("/topics/{topic}/subscriptions")))
        .json(&serde_json::json!({ "endpoint": endpoint }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

/// Subscribes and waits until the subscription is confirmed.
pub async fn subscribe_confirmed(hq: &RunningHq, topic: &str, endpoint: &str) {
    subscribe(hq, topic, endpoint).await;
    let feed = hq.hq().feed();
    testkit::wait_until(
        "the subscription to be confirmed",
        Duration::from_secs(5),
        async || {
            (feed
                .subscriptions()
                .iter()
                .any(|s| s.endpoint == endpoint && s.state == hq::feed::SubscriptionState::Confirmed))
            .then_some(())
        },
    )
    .await;
}

/// Publishes `order` on `topic` through HQ's API, as the admin; returns the MessageId.
pub async fn publish(hq: &RunningHq, topic: &str, order: &str) -> String {
    let response = publish_answer(hq, topic, order).await;
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    let body: serde_json::Value = response.json().await.unwrap();
    body["message_id"].as_str().unwrap().to_owned()
}

/// HQ's answer to publishing `order` on `topic` through its API, as the
/// admin, whatever it is.
pub async fn publish_answer(hq: &RunningHq, topic: &str, order: &str) -> reqwest::Response {
    admin_client(hq)
        .post(url(hq, &format!("/topics/{topic}/publish")))
        .body(order.to_owned())
        .send()
        .await
        .unwrap()
}

/// The `message` of an error answer, once its status is checked to be `status`.
pub async fn refusal(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status(), status, "{:?}", response.url().path());
    let body: serde_json::Value = response.json().await.unwrap();
    body["message"].as_str().unwrap().to_owned()
}

/// POSTs `body` as JSON to `path` on HQ, as the admin.
pub async fn post_json(hq: &RunningHq, path: &str, body: &serde_json::Value) -> reqwest::Response {
    admin_client(hq)
        .post(url(hq, path))
        .json(body)
        .send()
        .await
        .unwrap()
}

/// GETs `path` on HQ as the admin, checks it answers 200, and returns its JSON.
pub async fn get_json(hq: &RunningHq, path: &str) -> serde_json::Value {
    let response = admin_client(hq).get(url(hq, path)).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

/// An address where nothing listens, for as long as the socket returned
/// with it is kept: bound but never listening, so a connection there is
/// refused, and no other test's server can take the port meanwhile (as one
/// could take a port found free and let go).
pub fn nobody_listening() -> (std::net::SocketAddr, tokio::net::TcpSocket) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    (socket.local_addr().unwrap(), socket)
}
