//! The benchmark's command line.

use std::path::PathBuf;

/// Benchmarks the Interstella services from their release builds on loopback.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "bench", version, about)]
pub struct Cli {
    /// A short run (3 s per load instead of 10 s, fewer start-up samples),
    /// to check that everything works; figures are noisier.
    #[arg(long)]
    pub quick: bool,
    /// Where the figures are written as JSON; the chart goes beside it, as
    /// the same name with `.svg`.
    #[arg(long, default_value = "bench-results/latest.json")]
    pub out: PathBuf,
    /// Seconds each measured load lasts (default 10, or 3 with --quick).
    #[arg(long)]
    pub duration: Option<u64>,
    /// An earlier run's JSON to compare with: prints each load's change and
    /// draws the earlier figures in the chart.
    #[arg(long, value_name = "PREVIOUS.json")]
    pub compare: Option<PathBuf>,
    /// Directory holding the `monolith` and `iridium` binaries (default:
    /// the directory this `bench` binary is in, where scripts/bench builds
    /// them all: `target/x86_64-unknown-linux-musl/<profile>`).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Start-up samples per service (default 15, or 5 with --quick).
    #[arg(long)]
    pub startup_runs: Option<usize>,
    /// Extra environment for every service, `NAME=VALUE`, repeatable: to
    /// compare settings (e.g. `RUST_LOG=warn`); the default measures the
    /// services as they ship.
    #[arg(long = "service-env", value_name = "NAME=VALUE", value_parser = parse_env_pair)]
    pub service_env: Vec<(String, String)>,
}

fn parse_env_pair(pair: &str) -> Result<(String, String), String> {
    pair.split_once('=')
        .filter(|(name, _)| !name.is_empty())
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("expected NAME=VALUE, got {pair:?}"))
}

impl Cli {
    /// Seconds each measured load lasts.
    pub fn load_seconds(&self) -> u64 {
        self.duration.unwrap_or(if self.quick { 3 } else { 10 }).max(1)
    }

    /// Seconds of warm-up before each measured load.
    pub fn warmup_seconds(&self) -> u64 {
        1
    }

    /// Start-up samples per service.
    pub fn startup_samples(&self) -> usize {
        self.startup_runs
            .unwrap_or(if self.quick { 5 } else { 15 })
            .max(1)
    }
}
