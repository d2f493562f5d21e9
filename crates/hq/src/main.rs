//! The `hq` binary: Interstella HQ alone (the launcher runs it with the services).

use clap::Parser;
use hq::cli::Cli;
use platform::startup::shutdown_signal;
use std::time::Duration;

// jemalloc, one arena: why, in platform::allocator (the `jemalloc` feature,
// on by default; the launcher builds this crate without it).
#[cfg(feature = "jemalloc")]
platform::use_jemalloc!();

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _logs = platform::telemetry::init("hq", cli.log_format);
    let (config, issued) = cli.config()?;
    if let Some(key) = issued {
        // Printed for the person who asked, on the terminal only; never logged.
        eprintln!("HQ issued API key: {}", key.expose());
    }
    let listener = platform::startup::bind_addr(cli.listen).await?;
    let reconciliation = hq::run(
        listener,
        config,
        Duration::from_secs(cli.drain_secs),
        shutdown_signal(),
    )
    .await?;
    println!("{}", serde_json::to_string_pretty(&reconciliation)?);
    Ok(())
}
