//! The monolith's resolved configuration.

use crate::api::FulfillmentApi;
use contracts::Resource;
use platform::HookSecrets;
use platform::route::RouteSettings;
use platform::settings::millis;
use std::collections::BTreeSet;

/// Everything the monolith needs to run, resolved (no SSM left to read).
#[derive(Debug, Clone)]
pub struct MonolithConfig {
    /// The fulfillment API and its key.
    pub api: FulfillmentApi,
    /// The secrets the glue hook lets in (`GLUE_HOOK_SECRET`: one, or two
    /// during a rotation).
    pub hook_secrets: HookSecrets,
    /// Resources no longer gathered here (the strangled set, `STRANGLED`).
    pub strangled: BTreeSet<Resource>,
    /// Its order route's settings: gather delay, the API call's timeout
    /// and bound, trust, serving, metrics.
    pub route: RouteSettings,
}

/// The default fulfillment API timeout in milliseconds.
pub const DEFAULT_DOWNSTREAM_TIMEOUT_MS: u64 = platform::route::API_CALL_TIMEOUT_MS;

impl MonolithConfig {
    /// A configuration with defaults for everything but the API and the
    /// glue hook's secret (or secrets).
    pub fn new(api: FulfillmentApi, hook_secrets: impl Into<HookSecrets>) -> Self {
        Self {
            api,
            hook_secrets: hook_secrets.into(),
            strangled: BTreeSet::new(),
            route: RouteSettings::with_downstream_timeout(millis(DEFAULT_DOWNSTREAM_TIMEOUT_MS)),
        }
    }
}
