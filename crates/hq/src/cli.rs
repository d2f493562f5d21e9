//! The `hq` binary's command line; every flag is also an environment variable.

use crate::admin::{AdminToken, TOKEN_ENV};
use crate::config::{
    DEFAULT_GIVEN_KEYS_OWNER, DEFAULT_LEDGER_PROBE_EVERY, DEFAULT_SUBSCRIBE_EVERY, HqConfig,
};
use crate::feed::generator::GeneratorConfig;
use crate::feed::{Backoff, Endpoint, FeedConfig, RetryPolicy, Topic};
use crate::keys;
use crate::ledger::JournalMode;
use crate::publisher::{PublishTo, parse_topic_arn};
use clap::Parser;
use platform::ApiKey;
use platform::server::{LimitsError, ServerLimitArgs};
use platform::settings::{LogArgs, MetricsArgs, NeverQuoted, stand_in_url};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

/// HQ's port unless told otherwise (on 127.0.0.1), the launcher's too.
pub const DEFAULT_PORT: u16 = 4000;
/// HQ's data directory unless told otherwise.
pub const DEFAULT_DATA_DIR: &str = ".interstella-hq";
/// The variable naming HQ's data directory.
pub const DATA_DIR_SETTING: &str = "HQ_DATA_DIR";
/// The variable saying where HQ publishes: its own feed or SNS.
pub const PUBLISH_TO_SETTING: &str = "HQ_PUBLISH_TO";
/// The variable naming the ledger's journal mode.
pub const JOURNAL_MODE_SETTING: &str = "HQ_JOURNAL_MODE";
/// Set blank, these are refused rather than left to their defaults: a new
/// ledger in `.interstella-hq`, the local feed instead of SNS, WAL on EFS,
/// where it cannot work, or the data directory's admin credential in place
/// of the one meant (a secret stored empty), each unnoticed
/// ([`platform::startup::settings`]).
pub const BLANK_REFUSED: [&str; 4] = [
    DATA_DIR_SETTING,
    PUBLISH_TO_SETTING,
    JOURNAL_MODE_SETTING,
    crate::admin::TOKEN_ENV,
];
pub use crate::feed::generator::DEFAULT_MAX_QUANTITY;

/// Why HQ's settings cannot be used together.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The serve loop's limits do not work together.
    #[error(transparent)]
    Limits(#[from] LimitsError),
    /// The first retry delay is longer than the largest.
    #[error(
        "HQ_RETRY_MIN_DELAY_MS ({min_ms}) is above HQ_RETRY_MAX_DELAY_MS ({max_ms}): \
         SNS refuses such a delivery policy"
    )]
    RetryDelays {
        /// `--retry-min-delay-ms`.
        min_ms: u64,
        /// `--retry-max-delay-ms`.
        max_ms: u64,
    },
    /// `HQ_PUBLISH_TO=aws` without every topic's ARN, or in a build
    /// without SNS.
    #[error(transparent)]
    Sns(#[from] crate::publisher::SnsStartError),
    /// `METRICS_PORT` is `HQ_LISTEN`'s port.
    #[error(transparent)]
    Metrics(#[from] platform::settings::ConfigError),
}

/// The names HQ answers to, as `hq` and the launcher take them.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AllowedHosts {
    /// Names HQ answers to besides `localhost`, IP addresses and its public
    /// URL's name (if that is a name), comma-separated (`*`: any): a DNS
    /// alias, or the name of a port forward or a preview its pages are
    /// opened at. A request naming another host gets 421, so a page
    /// elsewhere cannot point its own name at HQ and call it.
    #[arg(
        long = "allowed-host",
        env = crate::hosts::ALLOWED_HOSTS_ENV,
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub names: Vec<crate::hosts::AllowedHost>,
}

/// Settings of the `hq` binary.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "hq",
    version,
    about = "Interstella HQ on one machine: fulfillment API, key portal and SNS-compatible order feed"
)]
pub struct Cli {
    /// Listen address.
    #[arg(long, env = "HQ_LISTEN", default_value_t = std::net::SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)))]
    pub listen: std::net::SocketAddr,
    /// The URL services reach HQ at; default `http://<listen address>/`. A
    /// scheme, host, port and path: a user name, password, query or
    /// fragment, which could hold a secret, is refused.
    #[arg(long, env = "HQ_PUBLIC_URL", value_parser = NeverQuoted(stand_in_url))]
    pub public_url: Option<Url>,
    /// The names HQ answers to.
    #[command(flatten)]
    pub allowed_hosts: AllowedHosts,
    /// Directory of the ledger database and the signing key.
    #[arg(long, env = DATA_DIR_SETTING, default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// API keys accepted from the start, comma-separated (more come from `POST /keys`).
    #[arg(
        long = "api-key",
        env = "HQ_API_KEYS",
        value_name = "KEY",
        value_delimiter = ',',
        hide_env_values = true,
        value_parser = NeverQuoted(parse_api_key)
    )]
    pub api_keys: Vec<ApiKey>,
    /// The admin credential that issuing keys, totals, faults, subscribing,
    /// publishing and the dashboard's data require (16 to 512 visible ASCII characters). Give it
    /// by the environment (a flag shows in `ps`); default: the file
    /// `admin-token` in the data directory, made at first start.
    #[arg(
        long = "admin-token",
        env = TOKEN_ENV,
        hide_env_values = true,
        value_parser = NeverQuoted(parse_admin_token)
    )]
    pub admin_token: Option<AdminToken>,
    /// Issue a fresh key at start and print it (once, on stderr).
    #[arg(long)]
    pub issue_key: bool,
    /// Generated orders per second per topic, e.g. `orders=1,iridium=0.5`
    /// (0 to 1000 each).
    #[arg(
        long = "rate",
        env = "HQ_RATES",
        value_name = "TOPIC=PER_SECOND",
        value_delimiter = ',',
        value_parser = parse_rate
    )]
    pub rates: Vec<(Topic, f64)>,
    /// Largest quantity in a generated order: 1 to 1,000,000, the most an
    /// order may ask for.
    #[arg(
        long,
        env = "HQ_MAX_QUANTITY",
        default_value_t = DEFAULT_MAX_QUANTITY,
        value_parser = max_quantity_parser()
    )]
    pub max_quantity: u32,
    /// Retries of a failed delivery (SNS `numRetries`: 0 to 100).
    #[arg(
        long,
        env = "HQ_RETRIES",
        default_value_t = RetryPolicy::default().num_retries,
        value_parser = clap::value_parser!(u32).range(0..=i64::from(RetryPolicy::MAX_RETRIES))
    )]
    pub retries: u32,
    /// First retry delay in milliseconds (SNS `minDelayTarget`), at most
    /// the largest.
    #[arg(
        long,
        env = "HQ_RETRY_MIN_DELAY_MS",
        default_value_t = whole_millis(RetryPolicy::default().min_delay),
        value_parser = clap::value_parser!(u64).range(1..=whole_millis(RetryPolicy::MAX_DELAY))
    )]
    pub retry_min_delay_ms: u64,
    /// Largest retry delay in milliseconds (SNS `maxDelayTarget`: at most
    /// 3,600 s).
    #[arg(
        long,
        env = "HQ_RETRY_MAX_DELAY_MS",
        default_value_t = whole_millis(RetryPolicy::default().max_delay),
        value_parser = clap::value_parser!(u64).range(1..=whole_millis(RetryPolicy::MAX_DELAY))
    )]
    pub retry_max_delay_ms: u64,
    /// How retry delays grow (SNS `backoffFunction`).
    #[arg(long, env = "HQ_BACKOFF", value_enum, default_value_t = RetryPolicy::default().backoff)]
    pub backoff: Backoff,
    /// Timeout of one delivery attempt in milliseconds (SNS: 15 s).
    #[arg(
        long,
        env = "HQ_DELIVERY_TIMEOUT_MS",
        default_value_t = whole_millis(FeedConfig::default().delivery_timeout),
        value_parser = platform::settings::millis_at_least::<1>
    )]
    pub delivery_timeout_ms: u64,
    /// How long to let deliveries finish at shutdown, in seconds.
    #[arg(long, env = "HQ_DRAIN_SECS", default_value_t = 30)]
    pub drain_secs: u64,
    /// Endpoints to subscribe at start, e.g. `orders=http://proxy/order/`
    /// (repeatable, or comma-separated). Each is sent its
    /// SubscriptionConfirmation again until it confirms, so the endpoint may
    /// start after HQ: `--subscribe-every-ms` after the first, then twice as
    /// long each time up to 30 s.
    #[arg(
        long = "subscribe",
        env = "HQ_SUBSCRIBE",
        value_name = "TOPIC=ENDPOINT",
        value_delimiter = ',',
        hide_env_values = true,
        value_parser = NeverQuoted(parse_subscription)
    )]
    pub subscriptions: Vec<(Topic, Endpoint)>,
    /// How long after its first confirmation an unconfirmed `--subscribe`
    /// endpoint is sent it again, in milliseconds; each wait after that is
    /// twice the one before, up to 30 s (at least 100: with `--publish-to
    /// aws` each time is a call to SNS' `Subscribe`).
    #[arg(
        long,
        env = "HQ_SUBSCRIBE_EVERY_MS",
        default_value_t = whole_millis(DEFAULT_SUBSCRIBE_EVERY),
        value_parser = platform::settings::millis_at_least::<100>
    )]
    pub subscribe_every_ms: u64,
    /// Where orders are published: HQ's own SNS-compatible feed (`local`),
    /// or the AWS SNS topics of `--sns-topic-arn` (`aws`; region,
    /// credentials and `AWS_ENDPOINT_URL_SNS` from the AWS environment).
    #[arg(long, env = PUBLISH_TO_SETTING, value_enum, default_value_t = PublishTo::default())]
    pub publish_to: PublishTo,
    /// With `--publish-to aws`, each topic's ARN, e.g.
    /// `orders=arn:aws:sns:us-east-1:123456789012:orders` (all three topics;
    /// repeatable, or comma-separated).
    #[arg(
        long = "sns-topic-arn",
        env = "HQ_SNS_TOPIC_ARNS",
        value_name = "TOPIC=ARN",
        value_delimiter = ',',
        value_parser = parse_topic_arn
    )]
    pub sns_topic_arns: Vec<(Topic, String)>,
    /// The ledger's SQLite journal mode: `wal` on a local disk, `delete` on
    /// a network file system such as EFS (WAL needs shared memory, which
    /// NFS does not give).
    #[arg(long, env = JOURNAL_MODE_SETTING, value_enum, default_value_t = JournalMode::default())]
    pub journal_mode: JournalMode,
    /// How log lines are written.
    #[command(flatten)]
    pub logs: LogArgs,
    /// Where the metrics are served.
    #[command(flatten)]
    pub metrics: MetricsArgs,
    /// How long and how much clients may take (the services' settings;
    /// `DRAIN_TIMEOUT_MS` is the HTTP drain, `HQ_DRAIN_SECS` the deliveries').
    #[command(flatten)]
    pub server: ServerLimitArgs,
}

/// `duration` in whole milliseconds, as the flags take it (the inverse of
/// `platform::settings::millis`).
fn whole_millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Why an `HQ_API_KEYS` entry cannot be a key (never quoting it).
#[derive(Debug, thiserror::Error)]
#[error(
    "an API key holds characters the x-api-key header cannot carry (control characters or non-ASCII): it could never match"
)]
pub struct NotAnApiKey;

/// Parses an API key, trimmed; held as an [`ApiKey`] so that the flags'
/// `Debug` never shows it. A key no header can carry (`ünï`) is refused at
/// start, by the rule the monolith's `INTERSTELLA_API_KEY` is checked by:
/// no caller could ever present it. An empty entry (`a,,b`) stays
/// harmless: an empty header is no key.
fn parse_api_key(text: &str) -> Result<ApiKey, NotAnApiKey> {
    let key = text.trim();
    if !platform::settings::is_header_text(key) {
        return Err(NotAnApiKey);
    }
    Ok(ApiKey::new(key))
}

/// Parses the largest quantity a generated order may have: from 1 to
/// [`contracts::MAX_QUANTITY`], since the services refuse an order above it.
pub fn max_quantity_parser() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(1..=i64::from(contracts::MAX_QUANTITY))
}

/// The most orders per second `--rate` takes for a topic (its help text and
/// `deploy/hq.yaml`'s `AllowedPattern` say so too).
pub const MAX_RATE: f64 = 1000.0;

/// Parses `topic=rate`.
pub fn parse_rate(text: &str) -> Result<(Topic, f64), String> {
    let (topic, rate) = text
        .split_once('=')
        .ok_or_else(|| format!("expected topic=orders-per-second, got {text:?}"))?;
    let topic = topic.parse::<Topic>().map_err(|e| e.to_string())?;
    let rate = rate
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|rate| rate.is_finite() && *rate >= 0.0 && *rate <= MAX_RATE)
        .ok_or_else(|| {
            format!("rate must be a number from 0 to {MAX_RATE} orders per second, got {rate:?}")
        })?;
    Ok((topic, rate))
}

/// Parses an admin credential (for [`NeverQuoted`]).
pub fn parse_admin_token(text: &str) -> Result<AdminToken, String> {
    AdminToken::parse(text).map_err(|e| e.to_string())
}

/// Parses `topic=http://endpoint/path/` (for [`NeverQuoted`]: the endpoint
/// may carry a password or a token).
pub fn parse_subscription(text: &str) -> Result<(Topic, Endpoint), String> {
    let (topic, endpoint) = text
        .split_once('=')
        // Not quoted: the text may hold a password.
        .ok_or_else(|| "expected topic=http://endpoint/, such as orders=http://proxy/order/".to_owned())?;
    let topic = topic.trim().parse::<Topic>().map_err(|e| e.to_string())?;
    let endpoint = Endpoint::parse(endpoint).map_err(|e| e.to_string())?;
    Ok((topic, endpoint))
}

impl Cli {
    /// The configuration these settings describe; also returns a freshly
    /// generated key when `--issue-key` asked for one. Fails when the serve
    /// loop's limits do not work together, or the retry delays would be a
    /// policy SNS refuses.
    pub fn config(&self) -> Result<(HqConfig, Option<ApiKey>), SettingsError> {
        if self.retry_min_delay_ms > self.retry_max_delay_ms {
            return Err(SettingsError::RetryDelays {
                min_ms: self.retry_min_delay_ms,
                max_ms: self.retry_max_delay_ms,
            });
        }
        let sns_topic_arns: BTreeMap<Topic, String> = self.sns_topic_arns.iter().cloned().collect();
        if self.publish_to == PublishTo::Aws {
            // A setting, refused as the others are (exit 2), not at start.
            crate::publisher::check_topic_arns(&sns_topic_arns)?;
        }
        let mut api_keys: Vec<ApiKey> = self
            .api_keys
            .iter()
            .filter(|key| !key.expose().is_empty())
            .cloned()
            .collect();
        let issued = self.issue_key.then(keys::generate);
        api_keys.extend(issued.clone());
        let config = HqConfig {
            data_dir: self.data_dir.clone(),
            api_keys,
            api_keys_owner: DEFAULT_GIVEN_KEYS_OWNER.to_owned(),
            admin_token: self.admin_token.clone(),
            public_url: self.public_url.clone(),
            allowed_hosts: self.allowed_hosts.names.clone(),
            feed: FeedConfig {
                retry: RetryPolicy {
                    num_retries: self.retries,
                    min_delay: Duration::from_millis(self.retry_min_delay_ms),
                    max_delay: Duration::from_millis(self.retry_max_delay_ms),
                    backoff: self.backoff,
                },
                delivery_timeout: Duration::from_millis(self.delivery_timeout_ms),
                ..FeedConfig::default()
            },
            generator: GeneratorConfig {
                rates: self.rates.iter().copied().collect::<BTreeMap<_, _>>(),
                max_quantity: self.max_quantity,
                ..GeneratorConfig::default()
            },
            subscriptions: self.subscriptions.clone(),
            subscribe_every: Duration::from_millis(self.subscribe_every_ms),
            publish_to: self.publish_to,
            sns_topic_arns,
            journal_mode: self.journal_mode,
            metrics_port: self.metrics.port(self.listen.port())?,
            // HQ's routes call nothing slow: only the request timeout bounds them.
            server: self.server.limits()?,
            ledger_probe_every: DEFAULT_LEDGER_PROBE_EVERY,
        };
        Ok((config, issued))
    }
}
