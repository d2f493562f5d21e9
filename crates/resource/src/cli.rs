//! A resource service's command line and environment (README, Settings).

use crate::config::{DEFAULT_DOWNSTREAM_TIMEOUT_MS, ResourceConfig, glue_hook_url};
use clap::{CommandFactory, FromArgMatches, Parser};
use contracts::Resource;
use platform::HookSecret;
use platform::route::RouteArgs;
use platform::settings::{ConfigError, GlueHookSecretArgs, LogArgs, hook_secrets};

/// Settings of the `iridium` and `magnesite` binaries; every flag is also an
/// environment variable.
#[derive(Debug, Clone, Parser)]
#[command(version)]
pub struct Cli {
    /// Listen port.
    #[arg(long, env = "PORT", default_value_t = 80)]
    pub port: u16,
    /// How log lines are written.
    #[command(flatten)]
    pub logs: LogArgs,
    /// Where the monolith is (the workshop's `monolithUrl`): a bare host such
    /// as the ALB's DNS name, or a full URL. `MONOLITH_URL` is read when
    /// `monolithUrl` is not set.
    #[arg(long = "monolith-url", env = "monolithUrl")]
    pub monolith_url: Option<String>,
    /// The same as `monolithUrl`, in the usual spelling; `monolithUrl` wins
    /// when both are set. Hidden: `--monolith-url`'s help names it.
    #[arg(long = "monolith-url-upper", env = "MONOLITH_URL", hide = true)]
    pub monolith_url_upper: Option<String>,
    /// Its order route: gather delay, the glue-hook call's timeout and
    /// bound, trust, serving, metrics.
    #[command(flatten)]
    pub route: RouteArgs<DEFAULT_DOWNSTREAM_TIMEOUT_MS>,
    /// The glue hook's shared secret, sent with every fulfillment. Taken
    /// from `GLUE_HOOK_SECRET` or `--glue-hook-secret`, never from SSM (on
    /// ECS the task definition injects it from the SSM SecureString through
    /// `Secrets`), so these small binaries carry no AWS SDK.
    #[command(flatten)]
    pub hook: GlueHookSecretArgs,
}

impl Cli {
    /// Parses the process arguments, naming the command after the resource.
    pub fn parse_for(resource: Resource) -> Self {
        let command = Self::command()
            .name(resource.as_str())
            .about(format!("The Interstella {resource} microservice"));
        let matches = command.get_matches();
        Self::from_arg_matches(&matches).unwrap_or_else(|error| error.exit())
    }

    /// Resolves the configuration.
    pub fn resolve(&self, resource: Resource) -> Result<ResourceConfig, ConfigError> {
        let monolith = self
            .monolith_url
            .as_deref()
            .or(self.monolith_url_upper.as_deref())
            .filter(|url| !url.trim().is_empty())
            .ok_or_else(|| {
                ConfigError::NotGiven(
                    "where the monolith is; looked in monolithUrl, MONOLITH_URL and --monolith-url".into(),
                )
            })?;
        let glue_hook = glue_hook_url(monolith).map_err(|e| {
            ConfigError::Invalid(format!("monolithUrl {monolith:?} is not a host or URL: {e}"))
        })?;
        let hook_secrets = hook_secrets(self.hook.glue_hook_secret.as_ref().map(HookSecret::expose))?;
        // During a rotation the setting holds two: this service sends the first.
        let hook_secret = hook_secrets
            .map(|secrets| secrets.sent().clone())
            .ok_or_else(|| {
                ConfigError::NotGiven(
                    "the glue hook's shared secret; looked in GLUE_HOOK_SECRET and --glue-hook-secret".into(),
                )
            })?;
        Ok(ResourceConfig {
            resource,
            glue_hook,
            hook_secret,
            route: self.route.resolve(self.port)?,
        })
    }
}
