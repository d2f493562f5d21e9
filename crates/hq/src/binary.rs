//! The `hq` binary's life after its settings are read: serve until a stop
//! signal (SIGTERM, SIGINT or SIGHUP), then give the reconciliation, printed
//! or, under JSON logs, logged; a second signal during the drain stops at
//! once. Here rather than in `main.rs`, so that `main` only reads settings
//! and says how the process ended.

use crate::StartError;
use crate::cli::Cli;
use crate::config::HqConfig;
use platform::startup::{RunError, STOPPED_AT_SECOND_SIGNAL, StopSignals, stop_signals};
use platform::telemetry::LogGuard;
use platform::{ApiKey, LogFormat};
use std::time::Duration;

/// Why the `hq` binary stopped other than cleanly; each is its one line.
#[derive(Debug, thiserror::Error)]
pub enum BinaryError {
    /// HQ's address could not be bound (the services' own error for it).
    #[error(transparent)]
    Listen(#[from] RunError),
    /// HQ could not start or serve.
    #[error(transparent)]
    Start(#[from] StartError),
    /// A second stop signal cut the drain short.
    #[error("{}", STOPPED_AT_SECOND_SIGNAL)]
    SecondSignal,
    /// The reconciliation could not be written as JSON.
    #[error("cannot write the reconciliation: {0}")]
    Reconciliation(#[source] serde_json::Error),
}

/// Serves with `config` until a stop signal, then gives the reconciliation.
/// `issued`, a key HQ made at start for the person who asked, is said on
/// the terminal only, never logged.
pub async fn run(
    cli: &Cli,
    config: HqConfig,
    issued: Option<ApiKey>,
    logs: &LogGuard,
) -> Result<(), BinaryError> {
    if let Some(key) = issued {
        platform::terminal::say_on_stderr(format_args!("HQ issued API key: {}", key.expose()));
    }
    let StopSignals { first, second } = stop_signals();
    let listener = platform::startup::bind_addr(cli.listen)
        .await
        .map_err(|source| RunError::Listen {
            what: cli.listen.to_string(),
            source,
        })?;
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
        ran = crate::run(listener, config, drain, stopping) => ran?,
        () = second => return Err(BinaryError::SecondSignal),
    };
    match cli.logs.log_format {
        // For the person at the terminal: the JSON /reconciliation answers.
        LogFormat::Text => {
            let text = serde_json::to_string_pretty(&reconciliation).map_err(BinaryError::Reconciliation)?;
            // After the lines of the drain, which the log writer may still hold.
            logs.flush();
            platform::terminal::say(format_args!("{text}"));
        }
        // One event per line, as every other line of HQ's.
        LogFormat::Json => reconciliation.log(),
    }
    tracing::info!("HQ stopped");
    Ok(())
}
