//! A resource service's resolved configuration.

use contracts::Resource;
use platform::downstream::DEFAULT_MAX_CONNECTIONS;
use platform::{ServerLimits, TrustConfig};
use std::time::Duration;
use url::Url;

/// Everything a resource service needs to run.
#[derive(Debug, Clone)]
pub struct ResourceConfig {
    /// Which resource this service produces.
    pub resource: Resource,
    /// The monolith's glue hook (`monolithUrl` resolved to `.../fulfill/`).
    pub glue_hook: Url,
    /// Simulated work per order (`GATHER_DELAY_MS`).
    pub gather_delay: Duration,
    /// Timeout of each glue-hook call (`DOWNSTREAM_TIMEOUT_MS`); longer than
    /// the monolith's own API timeout, so its answer gets back to us.
    pub downstream_timeout: Duration,
    /// Calls in flight to the monolith at most (`DOWNSTREAM_MAX_CONNECTIONS`).
    pub downstream_max_connections: usize,
    /// Whom to believe.
    pub trust: TrustConfig,
    /// The serve loop's limits.
    pub server: ServerLimits,
}

impl ResourceConfig {
    /// The default glue-hook timeout: the monolith's 5 s plus margin, inside SNS' 15 s.
    pub const DEFAULT_DOWNSTREAM_TIMEOUT: Duration = Duration::from_secs(10);

    /// A configuration with defaults for everything but the resource and the hook.
    pub fn new(resource: Resource, glue_hook: Url) -> Self {
        Self {
            resource,
            glue_hook,
            gather_delay: Duration::ZERO,
            downstream_timeout: Self::DEFAULT_DOWNSTREAM_TIMEOUT,
            downstream_max_connections: DEFAULT_MAX_CONNECTIONS,
            trust: TrustConfig::default(),
            server: ServerLimits::default(),
        }
    }
}
