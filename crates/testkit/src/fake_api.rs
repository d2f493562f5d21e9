//! A fake Interstella fulfillment API that records every request.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use contracts::fulfillment::{IDEMPOTENCY_KEY_HEADER, REPLAYED_HEADER};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use url::Url;

/// How the fake answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiBehaviour {
    /// 200 OK.
    Succeed,
    /// The given error status.
    Fail(u16),
    /// Never answers (for a while longer than any test's timeout).
    Hang,
    /// Answers 200 after the given time.
    Delay(Duration),
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Request headers.
    pub headers: HeaderMap,
    /// The body, parsed as JSON (`Null` if it was not JSON).
    pub body: serde_json::Value,
}

impl Received {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The fulfillment as the API was told it: the body, which must be
    /// exactly a quantity per resource (SPEC; panics otherwise), with
    /// `"produced_by"` added from its header when one was sent.
    pub fn fulfillment(&self) -> serde_json::Value {
        let mut fulfillment = self.body.clone();
        let keys: std::collections::BTreeSet<&str> = self
            .body
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let resources = contracts::Resource::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            keys, resources,
            "the body is not exactly a quantity per resource: {}",
            self.body
        );
        if let (Some(producer), Some(object)) = (
            self.header(contracts::fulfillment::PRODUCED_BY_HEADER),
            fulfillment.as_object_mut(),
        ) {
            object.insert("produced_by".into(), producer.into());
        }
        fulfillment
    }
}

#[derive(Debug)]
struct Shared {
    behaviour: Mutex<ApiBehaviour>,
    received: Mutex<Vec<Received>>,
    /// The idempotency keys of the requests answered 2xx.
    taken: Mutex<HashSet<HeaderValue>>,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
}

/// A running fake API; dropped with the test's runtime.
#[derive(Debug, Clone)]
pub struct FakeApi {
    /// Its `/receiving/` URL.
    pub url: Url,
    shared: Arc<Shared>,
}

impl FakeApi {
    /// Starts a fake that succeeds.
    pub async fn start() -> Self {
        let shared = Arc::new(Shared {
            behaviour: Mutex::new(ApiBehaviour::Succeed),
            received: Mutex::new(Vec::new()),
            taken: Mutex::new(HashSet::new()),
            in_flight: AtomicUsize::new(0),
            most_in_flight: AtomicUsize::new(0),
        });
        let router = Router::new()
            .route("/receiving/", post(receive))
            .with_state(shared.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/receiving/", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { url, shared }
    }

    /// Changes how it answers from now on.
    pub fn behave(&self, behaviour: ApiBehaviour) {
        *self.shared.behaviour.lock().unwrap() = behaviour;
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// How many requests were received.
    pub fn count(&self) -> usize {
        self.shared.received.lock().unwrap().len()
    }

    /// How many fulfillments it recorded: as the real API does, requests
    /// repeating an `Idempotency-Key` count once; requests without one, each.
    pub fn fulfillments(&self) -> usize {
        let received = self.shared.received.lock().unwrap();
        let mut keys = std::collections::HashSet::new();
        received
            .iter()
            .filter(|r| {
                r.header(IDEMPOTENCY_KEY_HEADER)
                    .is_none_or(|key| keys.insert(key.to_owned()))
            })
            .count()
    }

    /// The most requests it was answering at the same time.
    pub fn most_in_flight(&self) -> usize {
        self.shared.most_in_flight.load(Ordering::SeqCst)
    }
}

/// Counts a request in flight until dropped.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.most_in_flight.fetch_max(now, Ordering::SeqCst);
        Self(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Answers as the behaviour says; a success repeating the `Idempotency-Key`
/// of an earlier success says it is a repeat, as HQ does.
async fn receive(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let _in_flight = InFlight::enter(&shared);
    let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    let key = headers.get(IDEMPOTENCY_KEY_HEADER).cloned();
    shared.received.lock().unwrap().push(Received { headers, body });
    let behaviour = *shared.behaviour.lock().unwrap();
    let status = answer(behaviour).await;
    let repeat = status.is_success() && key.is_some_and(|key| !shared.taken.lock().unwrap().insert(key));
    if repeat {
        (status, [(REPLAYED_HEADER, "true")]).into_response()
    } else {
        status.into_response()
    }
}

/// The status `behaviour` answers with, once it is time to.
async fn answer(behaviour: ApiBehaviour) -> StatusCode {
    match behaviour {
        ApiBehaviour::Succeed => StatusCode::OK,
        ApiBehaviour::Fail(status) => StatusCode::from_u16(status).unwrap(),
        ApiBehaviour::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            StatusCode::OK
        }
        ApiBehaviour::Delay(delay) => {
            tokio::time::sleep(delay).await;
            StatusCode::OK
        }
    }
}
