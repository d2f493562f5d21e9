//! The monolith's command line and environment (README, Settings).

use crate::api::{FulfillmentApiArgs, HookSecretArgs};
use crate::config::{DEFAULT_DOWNSTREAM_TIMEOUT_MS, MonolithConfig};
use clap::Parser;
use contracts::Resource;
use platform::route::RouteArgs;
use platform::settings::{ConfigError, LogArgs};
use std::collections::BTreeSet;

/// The port the monolith listens on unless told otherwise (the workshop's).
pub const DEFAULT_PORT: u16 = 5000;

/// Settings of the `monolith` binary; every flag is also an environment variable.
#[derive(Debug, Clone, Parser)]
#[command(name = "monolith", version, about = "The Interstella logistics monolith")]
pub struct Cli {
    /// Listen port.
    #[arg(long, env = "PORT", default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// How log lines are written.
    #[command(flatten)]
    pub logs: LogArgs,
    /// Where the fulfillment API is and its key.
    #[command(flatten)]
    pub api: FulfillmentApiArgs,
    /// The glue hook's shared secret.
    #[command(flatten)]
    pub hook: HookSecretArgs,
    /// Resources no longer gathered here, comma-separated (`iridium`, `magnesite`).
    #[arg(long, env = "STRANGLED", default_value = "")]
    pub strangled: String,
    /// Its order route: gather delay, the API call's timeout and bound,
    /// trust, serving, metrics.
    #[command(flatten)]
    pub route: RouteArgs<DEFAULT_DOWNSTREAM_TIMEOUT_MS>,
}

impl Cli {
    /// Resolves the configuration, reading SSM for whatever is missing.
    pub async fn resolve(&self) -> Result<MonolithConfig, ConfigError> {
        let strangled = parse_strangled(&self.strangled)?;
        let route = self.route.resolve(self.port)?;
        let (api, hook_secrets) = crate::api::resolve(&self.api, &self.hook).await?;
        Ok(MonolithConfig {
            api,
            hook_secrets,
            strangled,
            route,
        })
    }
}

/// Parses `STRANGLED`: comma-separated resource names, blanks ignored.
fn parse_strangled(list: &str) -> Result<BTreeSet<Resource>, ConfigError> {
    list.split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| {
            name.parse::<Resource>()
                .map_err(|e| ConfigError::Invalid(format!("STRANGLED: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strangled_list_parses_names_and_ignores_blanks() {
        assert_eq!(parse_strangled("").ok(), Some(BTreeSet::new()));
        assert_eq!(
            parse_strangled(" iridium, ").ok(),
            Some(BTreeSet::from([Resource::Iridium]))
        );
        assert_eq!(
            parse_strangled("Magnesite,iridium").ok(),
            Some(BTreeSet::from([Resource::Iridium, Resource::Magnesite]))
        );
        assert!(parse_strangled("gold").is_err());
    }

    #[test]
    fn a_downstream_timeout_of_zero_is_refused_not_a_504_for_every_order() {
        let parse = |ms: &str| Cli::try_parse_from(["monolith", "--downstream-timeout-ms", ms]);
        let error = parse("0").expect_err("refused").to_string();
        assert!(error.contains("--downstream-timeout-ms"), "{error}");
        assert!(parse("1").is_ok());
    }

    #[test]
    fn the_command_lines_debug_holds_no_secret() {
        let cli = Cli::try_parse_from([
            "monolith",
            "--api-key",
            "key-4f1c9e2a",
            "--glue-hook-secret",
            "hook-secret-7d3b8a6e",
            "--api-endpoint",
            "https://user:pass-5e2a@api.example.com/receiving/?token=token-9c1d",
        ]);
        let shown = cli.map(|cli| format!("{cli:?}")).unwrap_or_default();
        assert!(
            shown.contains("<redacted>") && shown.contains("api.example.com"),
            "{shown}"
        );
        for secret in ["key-4f1c9e2a", "hook-secret-7d3b8a6e", "pass-5e2a", "token-9c1d"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}
