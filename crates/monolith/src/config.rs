//! The monolith's resolved configuration.

use crate::api::FulfillmentApi;
use contracts::Resource;
use platform::downstream::DEFAULT_MAX_CONNECTIONS;
use platform::settings::millis;
use platform::{HookSecret, ServerLimits, TrustConfig};
use std::collections::BTreeSet;
use std::time::Duration;

/// Everything the monolith needs to run, resolved (no SSM left to read).
#[derive(Debug, Clone)]
pub struct MonolithConfig {
    /// The fulfillment API and its key.
    pub api: FulfillmentApi,
    /// The secret the microservices send to the glue hook (`GLUE_HOOK_SECRET`).
    pub hook_secret: HookSecret,
    /// Resources no longer gathered here (the strangled set, `STRANGLED`).
    pub strangled: BTreeSet<Resource>,
    /// Simulated work per gathered resource (`GATHER_DELAY_MS`).
    pub gather_delay: Duration,
    /// Timeout of each fulfillment API call (`DOWNSTREAM_TIMEOUT_MS`).
    pub downstream_timeout: Duration,
    /// Calls in flight to the fulfillment API at most (`DOWNSTREAM_MAX_CONNECTIONS`).
    pub downstream_max_connections: usize,
    /// Whom to believe.
    pub trust: TrustConfig,
    /// The serve loop's limits.
    pub server: ServerLimits,
    /// Where `GET /metrics` is served (`METRICS_PORT`); `None`: nowhere.
    pub metrics_port: Option<u16>,
}

/// The default fulfillment API timeout in milliseconds: well inside SNS' 15 s.
pub const DEFAULT_DOWNSTREAM_TIMEOUT_MS: u64 = 5000;

impl MonolithConfig {
    /// A configuration with defaults for everything but the API and the
    /// glue hook's secret.
    pub fn new(api: FulfillmentApi, hook_secret: HookSecret) -> Self {
        Self {
            api,
            hook_secret,
            strangled: BTreeSet::new(),
            gather_delay: Duration::ZERO,
            downstream_timeout: millis(DEFAULT_DOWNSTREAM_TIMEOUT_MS),
            downstream_max_connections: DEFAULT_MAX_CONNECTIONS,
            trust: TrustConfig::default(),
            server: ServerLimits::default(),
            metrics_port: None,
        }
    }
}
