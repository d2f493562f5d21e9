//! The `hq` binary: Interstella HQ alone (the launcher runs it with the services).

use anyhow::Context;
use clap::Parser;
use hq::cli::Cli;
use platform::startup::{STOPPED_AT_SECOND_SIGNAL, StopSignals, stop_signals};
use std::process::ExitCode;
use std::time::Duration;

// jemalloc, one arena: why, in platform::allocator (the `jemalloc` feature,
// on by default; the launcher builds this crate without it).
#[cfg(feature = "jemalloc")]
platform::use_jemalloc!();

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let logs = platform::telemetry::init("hq", cli.log_format);
    let config = match cli.config() {
        Ok(config) => config,
        Err(error) => {
            logs.fatal(&format_args!("hq: {error}"));
            return ExitCode::from(2);
        }
    };
    match run(&cli, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `:#`: the causes on the same line.
            logs.fatal(&format_args!("hq: {error:#}"));
            ExitCode::FAILURE
        }
    }
}

/// Serves until a stop signal (SIGTERM, SIGINT or SIGHUP), then gives the
/// reconciliation (printed, or logged under JSON logs); a second signal
/// during the drain stops at once.
async fn run(
    cli: &Cli,
    (config, issued): (hq::config::HqConfig, Option<platform::ApiKey>),
) -> anyhow::Result<()> {
    if let Some(key) = issued {
        // Printed for the person who asked, on the terminal only; never logged.
        platform::terminal::say_on_stderr(format_args!("HQ issued API key: {}", key.expose()));
    }
    let StopSignals { first, second } = stop_signals();
    let listener = platform::startup::bind_addr(cli.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cli.listen))?;
    let drain = Duration::from_secs(cli.drain_secs);
    // HQ serves on while the orders under way finish (the services call its
    // API), unlike a service, which stops accepting at once.
    let stopping = async move {
        first.await;
        tracing::info!(
            "stopping: no new orders; serving until the publishes and deliveries under way end (up to {drain:?}), then reconciling"
        );
    };
    let reconciliation = tokio::select! {
        ran = hq::run(listener, config, drain, stopping) => ran?,
        () = second => anyhow::bail!(STOPPED_AT_SECOND_SIGNAL),
    };
    match cli.log_format {
        // For the person at the terminal: the JSON /reconciliation answers.
        platform::LogFormat::Text => {
            platform::terminal::say(format_args!("{}", serde_json::to_string_pretty(&reconciliation)?));
        }
        // One event per line, as every other line of HQ's.
        platform::LogFormat::Json => reconciliation.log(),
    }
    tracing::info!("HQ stopped");
    Ok(())
}
