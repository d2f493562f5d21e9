//! The `monolith` binary: read settings, log, serve until SIGTERM.

use clap::Parser;
use monolith::cli::Cli;
use platform::startup::{bind, shutdown_signal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let logs = platform::telemetry::init(cli.log_format);
    let config = match cli.resolve().await {
        Ok(config) => config,
        Err(error) => {
            eprintln!("monolith: {error}");
            drop(logs);
            std::process::exit(2);
        }
    };
    let listener = bind(cli.port).await?;
    tracing::info!("monolith listening on {}", listener.local_addr()?);
    monolith::run(listener, config, shutdown_signal()).await?;
    tracing::info!("monolith stopped");
    Ok(())
}
