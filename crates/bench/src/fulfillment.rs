//! The fulfillment side, inside the bench process: a fake Interstella
//! fulfillment API that answers `POST /receiving/` as fast as it can, and
//! testkit's SNS stand-in, which serves the test signing certificate and
//! signs deliveries.
//!
//! The API only counts what it receives (testkit's fake API records every
//! request, which at tens of thousands a second would measure its own
//! memory), so the figures measure our services, not a database.

use crate::error::BenchError;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use contracts::fulfillment::API_KEY_HEADER;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use testkit::fake_sns::FakeSns;
use testkit::spawn::TEST_API_KEY;
use tokio::net::TcpListener;
use url::Url;

#[derive(Debug, Default)]
struct Counters {
    fulfilled: AtomicU64,
    refused: AtomicU64,
}

/// The running fake fulfillment API and SNS stand-in.
#[derive(Debug, Clone)]
pub struct FulfillmentSide {
    api: Url,
    counters: Arc<Counters>,
    /// The SNS stand-in.
    pub sns: FakeSns,
}

impl FulfillmentSide {
    /// Starts it on a loopback port, in the caller's runtime.
    pub async fn start() -> Result<Self, BenchError> {
        let counters = Arc::new(Counters::default());
        let router = Router::new()
            .route(contracts::paths::RECEIVING, post(receive))
            .with_state(counters.clone());
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(BenchError::io("binding the fake fulfillment API"))?;
        let addr = listener
            .local_addr()
            .map_err(BenchError::io("reading the fake API's address"))?;
        let api = Url::parse(&format!("http://{addr}/receiving/"))?;
        tokio::spawn(async move { axum::serve(listener, router).await });
        let sns = FakeSns::start().await;
        Ok(Self { api, counters, sns })
    }

    /// The SNS stand-in's base URL: what `AWS_ENDPOINT_URL_SNS` is set to.
    pub fn sns_base(&self) -> &Url {
        &self.sns.base
    }

    /// The fulfillment API URL: what `INTERSTELLA_API_ENDPOINT` is set to.
    pub fn api_url(&self) -> &Url {
        &self.api
    }

    /// The API key the services are given and the fake checks.
    pub fn api_key(&self) -> &'static str {
        TEST_API_KEY
    }

    /// Fulfillment requests answered 200 so far.
    pub fn fulfilled(&self) -> u64 {
        self.counters.fulfilled.load(Ordering::Relaxed)
    }

    /// Fulfillment requests refused (wrong or missing API key) so far.
    pub fn refused(&self) -> u64 {
        self.counters.refused.load(Ordering::Relaxed)
    }
}

// The body is taken so that the connection stays reusable; its content is
// the services' business, checked by their own tests.
async fn receive(State(counters): State<Arc<Counters>>, headers: HeaderMap, _body: Bytes) -> StatusCode {
    if headers.get(API_KEY_HEADER).is_some_and(|key| key == TEST_API_KEY) {
        counters.fulfilled.fetch_add(1, Ordering::Relaxed);
        StatusCode::OK
    } else {
        counters.refused.fetch_add(1, Ordering::Relaxed);
        StatusCode::UNAUTHORIZED
    }
}
