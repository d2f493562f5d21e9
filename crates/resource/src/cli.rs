//! A resource service's command line and environment (README, Settings).

use crate::config::{DEFAULT_DOWNSTREAM_TIMEOUT_MS, ResourceConfig, glue_hook_url};
use clap::{CommandFactory, Parser};
use contracts::Resource;
use platform::HookSecretSetting;
use platform::route::RouteArgs;
use platform::settings::{ConfigError, GlueHookSecretArgs, HOOK_SECRET_SETTING, LogArgs, hook_secrets};

/// The port a resource service listens on unless told otherwise: the
/// workshop's containers listened on 80.
pub const DEFAULT_PORT: u16 = 80;

/// Settings of the `iridium` and `magnesite` binaries; every flag is also an
/// environment variable. Its `Debug` shows the monolith's URL masked (it
/// may carry a token) and hides the secret.
#[derive(Clone, Parser)]
#[command(version)]
pub struct Cli {
    /// Listen port.
    #[arg(long, env = "PORT", default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// How log lines are written.
    #[command(flatten)]
    pub logs: LogArgs,
    /// Where the monolith is (the workshop's `monolithUrl`): a bare host such
    /// as the ALB's DNS name, or a full URL. `MONOLITH_URL` is read when
    /// `monolithUrl` is not set.
    // Its value is not shown in the help: it may carry a token.
    #[arg(long = "monolith-url", env = "monolithUrl", hide_env_values = true)]
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

impl std::fmt::Debug for Cli {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let masked = |url: &Option<String>| url.as_deref().map(platform::MaskedUrl::shown_from_text);
        f.debug_struct("Cli")
            .field("port", &self.port)
            .field("logs", &self.logs)
            .field("monolith_url", &masked(&self.monolith_url))
            .field("monolith_url_upper", &masked(&self.monolith_url_upper))
            .field("route", &self.route)
            .field("hook", &self.hook)
            .finish()
    }
}

impl Cli {
    /// Reads the process's arguments and environment, naming the command
    /// after the resource; a refusal is said in one line and is the exit
    /// status ([`platform::startup::settings`]).
    pub fn parse_for(resource: Resource) -> Result<Self, std::process::ExitCode> {
        let command = Self::command()
            .name(resource.as_str())
            .about(format!("The Interstella {resource} microservice"));
        platform::startup::settings(resource.as_str(), command, &platform::settings::SWITCHES_OF_TRUST)
    }

    /// Resolves the configuration.
    pub fn resolve(&self, resource: Resource) -> Result<ResourceConfig, ConfigError> {
        // A blank setting counts as not set: `monolithUrl=${X}` with X unset
        // must not hide MONOLITH_URL.
        fn given(url: Option<&str>) -> Option<&str> {
            url.filter(|url| !url.trim().is_empty())
        }
        let monolith = given(self.monolith_url.as_deref())
            .map(|url| (url, "monolithUrl"))
            .or_else(|| given(self.monolith_url_upper.as_deref()).map(|url| (url, "MONOLITH_URL")));
        // During a rotation the setting holds two: this service sends the first.
        let hook_secret = hook_secrets(
            self.hook.glue_hook_secret.as_ref().map(HookSecretSetting::expose),
            HOOK_SECRET_SETTING,
        )?
        .map(|secrets| secrets.sent().clone());
        // Both named when both are missing: one start says all that is to be set.
        let unset = (monolith.is_none(), hook_secret.is_none());
        let (Some((monolith, from)), Some(hook_secret)) = (monolith, hook_secret) else {
            let missing: Vec<&str> = [
                (
                    unset.0,
                    "where the monolith is (monolithUrl, MONOLITH_URL or --monolith-url)",
                ),
                (
                    unset.1,
                    "the glue hook's shared secret (GLUE_HOOK_SECRET or --glue-hook-secret)",
                ),
            ]
            .into_iter()
            .filter_map(|(is_missing, what)| is_missing.then_some(what))
            .collect();
            return Err(ConfigError::NotGiven(missing.join(", ")));
        };
        // Not quoted: a URL may carry a password (logs show it masked).
        let glue_hook = glue_hook_url(monolith).map_err(|why| {
            ConfigError::Invalid(format!(
                "{from} is {why}: give a host such as the ALB's DNS name, or an http:// or https:// URL"
            ))
        })?;
        Ok(ResourceConfig {
            resource,
            glue_hook: glue_hook.into(),
            hook_secret,
            route: self.route.resolve(self.port)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123";

    fn resolved(args: &[&str]) -> Result<ResourceConfig, ConfigError> {
        let mut all = vec!["iridium", "--glue-hook-secret", SECRET];
        all.extend_from_slice(args);
        let cli = Cli::try_parse_from(all).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        cli.resolve(Resource::Iridium)
    }

    /// The monolith's URL may carry a token (a bare host with a password
    /// too), and the secret is a secret: neither in `Debug`.
    #[test]
    fn the_command_lines_debug_holds_no_secret() {
        let cli = Cli::try_parse_from([
            "iridium",
            "--glue-hook-secret",
            SECRET,
            "--monolith-url",
            "user:pass-5e2a@alb.example.com",
            "--monolith-url-upper",
            "http://alb.example.com/fulfill/?token=token-9c1d",
        ]);
        let shown = cli.map(|cli| format!("{cli:?}")).unwrap_or_default();
        assert!(shown.contains("alb.example.com"), "{shown}");
        for secret in [SECRET, "pass-5e2a", "token-9c1d"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn a_blank_monolith_url_leaves_monolith_url_upper_to_say_where() {
        let config = resolved(&["--monolith-url", " ", "--monolith-url-upper", "127.0.0.1:5000"]);
        assert_eq!(
            config.map(|c| c.glue_hook.expose().to_string()).ok().as_deref(),
            Some("http://127.0.0.1:5000/fulfill/")
        );
    }

    #[test]
    fn a_monolith_url_that_is_no_url_is_refused_without_quoting_it() {
        for (args, named) in [
            (
                ["--monolith-url", "http://ops:s3cret@[::1/"],
                "monolithUrl is not a URL",
            ),
            (
                ["--monolith-url-upper", "ftp://ops:s3cret@proxy/"],
                "MONOLITH_URL is not an http:// or https:// URL",
            ),
        ] {
            let refusal = resolved(&args);
            let said = refusal.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(said.contains(named), "{said}");
            assert!(!said.contains("s3cret"), "{said}");
        }
    }
}
