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
pub use routes::router;

use std::future::Future;
use tokio::net::TcpListener;

/// Serves the monolith on `listener` until `shutdown` resolves, then drains.
pub async fn run(
    listener: TcpListener,
    config: MonolithConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let router = router(config)?;
    platform::serve(listener, router, shutdown).await?;
    Ok(())
}
