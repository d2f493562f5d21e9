//! The launcher's command line (`cargo run --release -- --help`).

use crate::{LaunchConfig, Stage, demo_retry_policy};
use clap::Parser;
use hq::feed::Topic;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Settings of the launcher.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "interstella",
    version,
    about = "Runs the whole Interstella platform on this machine: HQ (order feed, fulfillment API), the monolith, iridium and magnesite"
)]
pub struct Cli {
    /// Migration stage: everything in the monolith, iridium strangled, or both strangled.
    #[arg(long, value_enum, default_value_t = Stage::Both)]
    pub stage: Stage,
    /// Orders per second per topic, e.g. `orders=2,iridium=0.5`; topics not
    /// named get 0. Default: 0.5/s on every topic the stage feeds.
    #[arg(long = "rate", value_delimiter = ',', value_parser = hq::cli::parse_rate)]
    pub rates: Vec<(Topic, f64)>,
    /// Largest quantity in a generated order.
    #[arg(long, default_value_t = hq::cli::DEFAULT_MAX_QUANTITY)]
    pub max_quantity: u32,
    /// HQ's data directory: ledger database and signing key.
    #[arg(long, default_value = hq::cli::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// HQ's port (0: any free port).
    #[arg(long, default_value_t = hq::cli::DEFAULT_PORT)]
    pub hq_port: u16,
    /// The monolith's port.
    #[arg(long, default_value_t = monolith::cli::DEFAULT_PORT)]
    pub monolith_port: u16,
    /// Iridium's port.
    #[arg(long, default_value_t = 5001)]
    pub iridium_port: u16,
    /// Magnesite's port.
    #[arg(long, default_value_t = 5002)]
    pub magnesite_port: u16,
    /// Simulated work per gathered resource, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub gather_delay_ms: u64,
    /// Retries of a failed delivery (doubling from 1 s to 20 s apart).
    #[arg(long, default_value_t = demo_retry_policy().num_retries)]
    pub retries: u32,
    /// How long Ctrl-C waits for deliveries and retries to finish, in seconds
    /// (Ctrl-C again to stop at once).
    #[arg(long, default_value_t = 60)]
    pub drain_secs: u64,
}

impl Cli {
    /// The launch configuration these settings describe.
    pub fn config(&self) -> LaunchConfig {
        let at = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let mut config = LaunchConfig::new(self.stage, &self.data_dir);
        config.hq_addr = at(self.hq_port);
        config.monolith_addr = at(self.monolith_port);
        config.iridium_addr = at(self.iridium_port);
        config.magnesite_addr = at(self.magnesite_port);
        config.rates = if self.rates.is_empty() {
            self.stage.fed_topics().into_iter().map(|t| (t, 0.5)).collect()
        } else {
            self.rates.iter().copied().collect::<BTreeMap<_, _>>()
        };
        config.max_quantity = self.max_quantity;
        config.gather_delay = Duration::from_millis(self.gather_delay_ms);
        config.feed.retry.num_retries = self.retries;
        config
    }

    /// How long Ctrl-C waits for deliveries.
    pub fn drain(&self) -> Duration {
        Duration::from_secs(self.drain_secs)
    }
}
