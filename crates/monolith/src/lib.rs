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

use std::future::Future;
use tokio::net::TcpListener;

/// Serves the monolith on `listener` until `shutdown` resolves, then
/// drains; its metrics on `config.metrics_port`, if set.
pub async fn run(
    listener: TcpListener,
    config: MonolithConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (limits, metrics_port) = (config.server, config.metrics_port);
    let metrics = platform::Metrics::new();
    let exporter = platform::metrics::bind(metrics_port).await?;
    let router = router_with_metrics(config, &metrics)?;
    platform::metrics::serve_with_metrics(listener, router, limits, &metrics, exporter, shutdown).await?;
    Ok(())
}
