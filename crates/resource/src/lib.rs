//! The resource microservice carved out of the monolith: one program for
//! every resource, run as the `iridium` and `magnesite` binaries.
//!
//! `POST /<resource>/` takes an order for its resource, produces it and sends
//! it to the monolith's glueFulfill hook; `GET /<resource>/` answers the
//! ALB's health check on the path it routes here.

pub mod cli;
pub mod config;
pub mod routes;

pub use config::ResourceConfig;
pub use contracts::Resource;
pub use routes::{health_text, router, router_with_metrics};

use platform::startup::RunError;
use std::future::Future;
use tokio::net::TcpListener;

/// Serves the resource service on `listener` until `shutdown` resolves,
/// then drains; its metrics on `METRICS_PORT`, if set.
pub async fn run(
    listener: TcpListener,
    config: ResourceConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    platform::route::serve(listener, config, shutdown).await
}

/// The whole of a resource binary's `main`: settings, logs, serve until SIGTERM.
pub async fn main(resource: Resource) -> std::process::ExitCode {
    let cli = match cli::Cli::parse_for(resource) {
        Ok(cli) => cli,
        Err(refused) => return refused,
    };
    let logs = platform::telemetry::init(resource.as_str(), cli.logs.log_format);
    let config = std::future::ready(cli.resolve(resource));
    platform::startup::run_service(resource.as_str(), cli.port, config, logs, run).await
}
