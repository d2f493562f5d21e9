//! The `monolith` binary: read settings, log, serve until SIGTERM.

use clap::CommandFactory;
use monolith::cli::Cli;
use std::process::ExitCode;

// jemalloc, one arena: why, in platform::allocator (the `jemalloc` feature,
// on by default; the launcher builds this crate without it).
#[cfg(feature = "jemalloc")]
platform::use_jemalloc!();

#[tokio::main]
async fn main() -> ExitCode {
    let cli: Cli =
        match platform::startup::settings("monolith", Cli::command(), &platform::settings::SWITCHES_OF_TRUST)
        {
            Ok(cli) => cli,
            Err(refused) => return refused,
        };
    let logs = platform::telemetry::init("monolith", cli.logs.log_format);
    platform::startup::run_service("monolith", cli.port, cli.resolve(), logs, monolith::run).await
}
