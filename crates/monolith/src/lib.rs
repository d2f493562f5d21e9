//! The legacy Interstella logistics platform, being strangled.
//!
//! `POST /order/` takes bundle orders, gathers what has not been carved out
//! yet and calls the fulfillment API; `POST /fulfill/` is the glueFulfill
//! hook the microservices call; `GET /` answers the ALB's health check.

pub mod api;
pub mod cli;
pub mod config;
pub mod gather;
pub mod routes;

pub use config::MonolithConfig;
pub use routes::{router, router_with_metrics};

use platform::startup::RunError;
use std::future::Future;
use tokio::net::TcpListener;

/// Serves the monolith on `listener` until `shutdown` resolves, then
/// drains; its metrics on `METRICS_PORT`, if set.
pub async fn run(
    listener: TcpListener,
    config: MonolithConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    platform::route::serve(listener, config, shutdown).await
}
