//! The 2-hop floor: the least a service can do for a bundle order, to hold
//! the monolith against in the same run.
//!
//! A minimal axum service (plain `axum::serve`, no limits, no logging, no
//! trust checks) that parses the order's JSON and forwards the fulfillment
//! over the same kept-alive client the services use. Whatever the monolith
//! costs beyond it is ours: the serve loop's limits, the log lines, the
//! intake. It runs as a process of its own, the bench binary started again
//! with `--serve-floor`, so its CPU and memory are measured like a
//! service's, and it reads the monolith's environment (`PORT`,
//! `INTERSTELLA_API_ENDPOINT`, `INTERSTELLA_API_KEY`).

use crate::error::BenchError;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use contracts::fulfillment::API_KEY_HEADER;
use contracts::{
    BundleOrder, Delivery, FulfillmentRequest, Producer, TypeHeader, message_order, parse_delivery,
};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use url::Url;

/// The command-line flag that makes the bench binary serve the floor.
pub const SERVE_FLAG: &str = "--serve-floor";

/// What the floor's handler needs.
struct Floor {
    client: reqwest::Client,
    api: Url,
    api_key: String,
}

/// Serves the floor on `PORT` until the process is killed.
pub async fn serve_from_env() -> Result<(), BenchError> {
    let var = |name: &'static str| std::env::var(name).map_err(|_| BenchError::FloorEnv(name));
    let port: u16 = var("PORT")?.parse().map_err(|_| BenchError::FloorEnv("PORT"))?;
    let floor = Floor {
        client: platform::downstream::http_client(platform::downstream::DEFAULT_DOWNSTREAM_CONNECTIONS)?,
        api: Url::parse(&var("INTERSTELLA_API_ENDPOINT")?)?,
        api_key: var("INTERSTELLA_API_KEY")?,
    };
    let router = Router::new()
        .route("/", get(|| async { "floor" }))
        .route(contracts::paths::ORDER, post(order))
        .with_state(Arc::new(floor));
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .await
        .map_err(BenchError::io("binding the floor's port"))?;
    axum::serve(listener, router)
        .await
        .map_err(BenchError::io("serving the floor"))
}

/// Parses the bundle in the workshop's curl body (`{"Message": {"bundle":
/// 1}}`), forwards it, answers by the API's status line.
async fn order(State(floor): State<Arc<Floor>>, body: Bytes) -> (StatusCode, &'static str) {
    // The services' own reading of a direct order (contracts).
    let order = match parse_delivery::<BundleOrder>(&body, TypeHeader::NotSent) {
        Ok(Delivery::Direct(message)) => message_order::<BundleOrder>(&message).ok(),
        _ => None,
    };
    let Some(order) = order else {
        return (StatusCode::BAD_REQUEST, "not a bundle order");
    };
    let request = FulfillmentRequest {
        iridium: order.bundle,
        magnesite: order.bundle,
        // What the monolith sends for its own gathering: the same body and
        // producer header.
        produced_by: Some(Producer::Monolith),
    };
    let mut call = floor
        .client
        .post(floor.api.clone())
        .header(API_KEY_HEADER, &floor.api_key)
        .json(&request);
    if let Some((name, value)) = request.produced_by_header() {
        call = call.header(name, value);
    }
    let sent = call.send().await;
    match sent {
        Ok(answer) if answer.status().is_success() => {
            // Read to the end so the connection goes back to the pool.
            let _ = answer.bytes().await;
            (StatusCode::OK, "fulfilled")
        }
        _ => (StatusCode::BAD_GATEWAY, "not fulfilled"),
    }
}
