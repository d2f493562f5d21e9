//! What HQ is told at start: [`HqConfig`] and its defaults.

use crate::admin::AdminToken;
use crate::feed::generator::GeneratorConfig;
use crate::feed::{Endpoint, FeedConfig, Topic};
use crate::hosts::AllowedHost;
use crate::ledger::JournalMode;
use crate::publisher::PublishTo;
use platform::{ApiKey, ServerLimits};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

/// Everything HQ needs to run.
#[derive(Debug, Clone)]
pub struct HqConfig {
    /// Directory of the ledger database and the signing key; created if missing.
    pub data_dir: PathBuf,
    /// Keys accepted from the start, besides those the portal issues.
    pub api_keys: Vec<ApiKey>,
    /// Who the keys given at start are recorded as issued to, the first
    /// time HQ sees each ([`DEFAULT_GIVEN_KEYS_OWNER`] unless told).
    pub api_keys_owner: String,
    /// The admin credential (`HQ_ADMIN_TOKEN`); default: the one in the
    /// data directory's `admin-token`, made at first start.
    pub admin_token: Option<AdminToken>,
    /// The URL services reach HQ at; default `http://<listen address>`.
    pub public_url: Option<Url>,
    /// Names HQ answers to besides its public URL's host, `localhost` and
    /// IP addresses (`HQ_ALLOWED_HOSTS`; `*`: any); others get 421 (see
    /// [`crate::hosts`]). None by default.
    pub allowed_hosts: Vec<AllowedHost>,
    /// How the feed delivers.
    pub feed: FeedConfig,
    /// What the generator publishes (nothing by default).
    pub generator: GeneratorConfig,
    /// Endpoints to subscribe once HQ listens; each is sent its
    /// SubscriptionConfirmation again until it confirms (none by default).
    pub subscriptions: Vec<(Topic, Endpoint)>,
    /// How long after its first SubscriptionConfirmation an unconfirmed
    /// start-up subscription is sent it again; each wait after that is
    /// twice the one before, up to [`MAX_SUBSCRIBE_EVERY`].
    pub subscribe_every: Duration,
    /// Where orders are published: HQ's own feed (default) or AWS SNS.
    pub publish_to: PublishTo,
    /// The SNS topic ARN of each topic, for [`PublishTo::Aws`] (all three needed there).
    pub sns_topic_arns: BTreeMap<Topic, String>,
    /// The ledger's SQLite journal mode: WAL (default) on a local disk,
    /// DELETE on a network file system such as EFS.
    pub journal_mode: JournalMode,
    /// Where `GET /metrics` is served (`METRICS_PORT`); `None`: nowhere.
    pub metrics_port: Option<u16>,
    /// The serve loop's limits, as the services have them
    /// (`HEADER_READ_TIMEOUT_MS` and the rest): HQ is internet-facing too,
    /// and behind its ALB its keep-alive must outlast the ALB's.
    pub server: ServerLimits,
    /// How often the ledger is probed with a small write when nothing else
    /// wrote to it meanwhile, so the health check (`GET /`) knows whether
    /// it can record even with no orders coming (as when its load balancer
    /// stopped sending any).
    pub ledger_probe_every: Duration,
}

/// The owner the keys given at start (`HQ_API_KEYS`) are recorded under.
pub const DEFAULT_GIVEN_KEYS_OWNER: &str = "given at start";

impl HqConfig {
    /// A configuration with defaults for everything but the data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            api_keys: Vec::new(),
            api_keys_owner: DEFAULT_GIVEN_KEYS_OWNER.to_owned(),
            admin_token: None,
            public_url: None,
            allowed_hosts: Vec::new(),
            feed: FeedConfig::default(),
            generator: GeneratorConfig::default(),
            subscriptions: Vec::new(),
            subscribe_every: DEFAULT_SUBSCRIBE_EVERY,
            publish_to: PublishTo::default(),
            sns_topic_arns: BTreeMap::new(),
            journal_mode: JournalMode::default(),
            metrics_port: None,
            server: ServerLimits::default(),
            ledger_probe_every: DEFAULT_LEDGER_PROBE_EVERY,
        }
    }
}

/// How long an unconfirmed start-up subscription first waits to be sent its
/// confirmation again, unless configured otherwise.
pub const DEFAULT_SUBSCRIBE_EVERY: Duration = Duration::from_secs(1);

/// The longest wait between two confirmations sent to an unconfirmed
/// start-up subscription (unless [`HqConfig::subscribe_every`] is longer):
/// the waits double up to it, so an endpoint that is down for long is sent
/// two a minute, and one that comes up late is confirmed at most this long
/// after it is up.
pub const MAX_SUBSCRIBE_EVERY: Duration = Duration::from_secs(30);

/// How often an idle ledger is probed, unless configured otherwise: the
/// interval of HQ's load balancer health check, so a check sees a failure
/// found at most one interval before.
pub const DEFAULT_LEDGER_PROBE_EVERY: Duration = Duration::from_secs(10);
