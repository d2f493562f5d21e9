//! The launcher's command line (`cargo run --release -- --help`).

use crate::{LaunchConfig, Stage, demo_retry_policy};
use clap::Parser;
use contracts::Resource;
use hq::admin::AdminToken;
use hq::feed::Topic;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// The most simulated work per gathered resource `--gather-delay-ms`
/// takes, as the stacks' `GatherDelayMs` does: with a microservice's call to
/// the monolith it must fit in the time a service answers within.
pub const MAX_GATHER_DELAY_MS: u64 = 3000;

const _: () = assert!(
    platform::route::HOOK_CALL_TIMEOUT_MS + MAX_GATHER_DELAY_MS
        < platform::server::DEFAULT_REQUEST_TIMEOUT_MS
);

/// Set blank, refused rather than left to its default, as `hq` refuses it:
/// the data directory's credential in place of the one meant.
pub const BLANK_REFUSED: [&str; 1] = [hq::admin::TOKEN_ENV];

/// Settings of the launcher.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "interstella",
    version,
    about = "Runs the whole Interstella platform on this machine: HQ (order feed, fulfillment API), the monolith and a microservice per resource"
)]
pub struct Cli {
    /// Migration stage at start: everything in the monolith, iridium
    /// strangled, or both strangled. At a terminal, the keys m, i and b
    /// switch it while the platform runs.
    #[arg(long, value_enum, default_value_t = Stage::Both)]
    pub stage: Stage,
    /// Orders per second per topic, e.g. `orders=2,iridium=0.5`; topics not
    /// named get 0, through any stage switch. Default: 0.5/s on every topic
    /// the stage feeds, following a switch.
    #[arg(long = "rate", value_delimiter = ',', value_parser = hq::cli::parse_rate)]
    pub rates: Vec<(Topic, f64)>,
    /// Largest quantity in a generated order: 1 to 1,000,000, the most an
    /// order may ask for.
    #[arg(long, default_value_t = hq::cli::DEFAULT_MAX_QUANTITY, value_parser = hq::cli::max_quantity_parser())]
    pub max_quantity: u32,
    /// HQ's data directory: ledger database and signing key.
    #[arg(long, default_value = hq::cli::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// HQ's port (0: any free port).
    #[arg(long, default_value_t = hq::cli::DEFAULT_PORT)]
    pub hq_port: u16,
    /// The monolith's port (0: any free port).
    #[arg(long, default_value_t = monolith::cli::DEFAULT_PORT)]
    pub monolith_port: u16,
    /// A microservice's port, e.g. `iridium=6001`; one not named listens on
    /// the monolith's port plus its place among the resources (iridium
    /// 5001, magnesite 5002), or any free port when that is 0 or past 65535.
    #[arg(long = "microservice-port", value_delimiter = ',', value_parser = parse_microservice_port)]
    pub microservice_ports: Vec<(Resource, u16)>,
    /// Simulated work per gathered resource, in milliseconds (at most
    /// 3000, as the stacks allow: with a microservice's 10 s call to the
    /// monolith it must fit in the 14 s a service answers within).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=MAX_GATHER_DELAY_MS))]
    pub gather_delay_ms: u64,
    /// Retries of a failed delivery (doubling from 1 s to 20 s apart; at
    /// most 100, as SNS allows).
    #[arg(
        long,
        default_value_t = demo_retry_policy().num_retries,
        value_parser = clap::value_parser!(u32).range(0..=i64::from(hq::feed::RetryPolicy::MAX_RETRIES))
    )]
    pub retries: u32,
    /// How long Ctrl-C waits for deliveries and retries to finish, in seconds
    /// (Ctrl-C again to stop at once).
    #[arg(long, default_value_t = 60)]
    pub drain_secs: u64,
    /// HQ's admin credential (16 to 512 visible ASCII characters), as `hq`
    /// takes it. Give it by the environment (a flag shows in `ps`); default:
    /// the file `admin-token` in the data directory, made at first start.
    #[arg(
        long = "admin-token",
        env = hq::admin::TOKEN_ENV,
        hide_env_values = true,
        value_parser = platform::settings::NeverQuoted(hq::cli::parse_admin_token)
    )]
    pub admin_token: Option<AdminToken>,
    /// The names HQ answers to.
    #[command(flatten)]
    pub allowed_hosts: hq::cli::AllowedHosts,
}

impl Cli {
    /// The launch configuration these settings describe.
    pub fn config(&self) -> LaunchConfig {
        let at = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let mut config = LaunchConfig::new(self.stage, &self.data_dir);
        config.hq_addr = at(self.hq_port);
        config.monolith_addr = at(self.monolith_port);
        config.microservice_addrs = Resource::ALL
            .iter()
            .zip(1..)
            .map(|(&resource, place)| {
                let named = self.microservice_ports.iter().rev().find(|(r, _)| *r == resource);
                let port = match named {
                    Some(&(_, port)) => port,
                    None if self.monolith_port == 0 => 0,
                    // Past the last port: any free one (65535 for two would
                    // be named as given to both).
                    None => self.monolith_port.checked_add(place).unwrap_or(0),
                };
                (resource, at(port))
            })
            .collect();
        config.rates_follow_stage = self.rates.is_empty();
        config.rates = if config.rates_follow_stage {
            self.stage.default_rates()
        } else {
            self.rates.iter().copied().collect::<BTreeMap<_, _>>()
        };
        config.max_quantity = self.max_quantity;
        config.gather_delay = Duration::from_millis(self.gather_delay_ms);
        config.feed.retry.num_retries = self.retries;
        config.admin_token = self.admin_token.clone();
        config.hq_allowed_hosts = self.allowed_hosts.names.clone();
        config
    }

    /// How long Ctrl-C waits for deliveries.
    pub fn drain(&self) -> Duration {
        Duration::from_secs(self.drain_secs)
    }
}

/// Parses `resource=port`.
fn parse_microservice_port(text: &str) -> Result<(Resource, u16), String> {
    let (resource, port) = text
        .split_once('=')
        .ok_or_else(|| format!("expected resource=port, e.g. iridium=6001, got {text:?}"))?;
    let resource = resource.trim().parse::<Resource>().map_err(|e| e.to_string())?;
    let port = port
        .trim()
        .parse::<u16>()
        .map_err(|_| format!("a port is a number from 0 to 65535, got {port:?}"))?;
    Ok((resource, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The help texts that name a bound or a default name the one in force:
    /// written there as text, they would not follow a change to it.
    #[test]
    fn help_texts_name_the_bounds_in_force() {
        use clap::CommandFactory;
        let help = Cli::command().render_long_help().to_string();
        let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
        let secs = |ms: u64| ms / 1000;
        let port = monolith::cli::DEFAULT_PORT;
        for bound in [
            format!("(iridium {}, magnesite {})", port + 1, port + 2),
            format!("(at most {MAX_GATHER_DELAY_MS}, as the stacks allow"),
            format!(
                "with a microservice's {} s call",
                secs(platform::route::HOOK_CALL_TIMEOUT_MS)
            ),
            format!(
                "fit in the {} s a service",
                secs(platform::server::DEFAULT_REQUEST_TIMEOUT_MS)
            ),
            format!(
                "({} to {} visible ASCII characters)",
                hq::admin::MIN_LEN,
                hq::admin::MAX_LEN
            ),
            format!("Default: {}/s on every topic", crate::DEFAULT_RATE),
        ] {
            assert!(help.contains(&bound), "{bound:?} in {help}");
        }
    }

    fn ports(args: &[&str]) -> Vec<(Resource, u16)> {
        let cli = Cli::try_parse_from(std::iter::once("interstella").chain(args.iter().copied())).unwrap();
        let config = cli.config();
        config
            .microservice_addrs
            .iter()
            .map(|(&resource, addr)| (resource, addr.port()))
            .collect()
    }

    #[test]
    fn every_resource_gets_a_port_after_the_monoliths_unless_named() {
        assert_eq!(
            ports(&[]),
            [(Resource::Iridium, 5001), (Resource::Magnesite, 5002)]
        );
        assert_eq!(
            ports(&["--monolith-port", "7000", "--microservice-port", "magnesite=7100"]),
            [(Resource::Iridium, 7001), (Resource::Magnesite, 7100)]
        );
        assert_eq!(
            ports(&["--monolith-port", "0"]),
            [(Resource::Iridium, 0), (Resource::Magnesite, 0)]
        );
        // Past the last port: any free one, not 65535 again.
        assert_eq!(
            ports(&["--monolith-port", "65534"]),
            [(Resource::Iridium, 65535), (Resource::Magnesite, 0)]
        );
    }

    #[test]
    fn a_microservice_port_names_a_resource_and_a_port() {
        assert!(parse_microservice_port("pyrite=6001").is_err());
        assert!(parse_microservice_port("iridium=70000").is_err());
        assert!(parse_microservice_port("iridium").is_err());
        assert_eq!(
            parse_microservice_port("iridium=6001"),
            Ok((Resource::Iridium, 6001))
        );
    }
}
