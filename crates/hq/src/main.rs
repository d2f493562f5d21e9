//! The `hq` binary: Interstella HQ alone (the launcher runs it with the services).

use clap::CommandFactory;
use hq::cli::Cli;
use std::process::ExitCode;

// jemalloc, one arena: why, in platform::allocator (the `jemalloc` feature,
// on by default; the launcher builds this crate without it).
#[cfg(feature = "jemalloc")]
platform::use_jemalloc!();

#[tokio::main]
async fn main() -> ExitCode {
    let cli: Cli = match platform::startup::settings("hq", Cli::command(), &hq::cli::BLANK_REFUSED) {
        Ok(cli) => cli,
        Err(refused) => return refused,
    };
    let logs = platform::telemetry::init("hq", cli.logs.log_format);
    let (config, issued) = match cli.config() {
        Ok(config) => config,
        Err(error) => {
            logs.fatal(&format_args!("hq: {error}"));
            return ExitCode::from(2);
        }
    };
    match hq::binary::run(&cli, config, issued, &logs).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            logs.fatal(&format_args!("hq: {error}"));
            ExitCode::FAILURE
        }
    }
}
