//! A resource service's resolved configuration.

use contracts::Resource;
use platform::route::RouteSettings;
use platform::settings::{NotHttpUrl, http_url, millis, with_http_scheme};
use platform::{HookSecret, MaskedUrl};
use url::Url;

/// Everything a resource service needs to run. Its `Debug` shows the glue
/// hook's URL masked, as logs do (it may carry a token), and hides the
/// secret.
#[derive(Debug, Clone)]
pub struct ResourceConfig {
    /// Which resource this service produces.
    pub resource: Resource,
    /// The monolith's glue hook (`monolithUrl` resolved to `.../fulfill/`).
    pub glue_hook: MaskedUrl,
    /// The secret the glue hook checks (`GLUE_HOOK_SECRET`).
    pub hook_secret: HookSecret,
    /// Its order route's settings: gather delay, the glue-hook call's
    /// timeout (longer than the monolith's own API timeout, so its answer
    /// gets back to us) and bound, trust, serving, metrics.
    pub route: RouteSettings,
}

/// The default glue-hook timeout in milliseconds: the monolith's own
/// timeout plus margin.
pub const DEFAULT_DOWNSTREAM_TIMEOUT_MS: u64 = platform::route::HOOK_CALL_TIMEOUT_MS;

impl ResourceConfig {
    /// A configuration with defaults for everything but the resource, the
    /// hook and its secret.
    pub fn new(resource: Resource, glue_hook: Url, hook_secret: HookSecret) -> Self {
        Self {
            resource,
            glue_hook: glue_hook.into(),
            hook_secret,
            route: RouteSettings::with_downstream_timeout(millis(DEFAULT_DOWNSTREAM_TIMEOUT_MS)),
        }
    }
}

/// Resolves the monolith's address from `monolithUrl`/`MONOLITH_URL`: a bare
/// host (the workshop passes an ALB DNS name) gets `http://`; a URL with no
/// path gets the glue hook's `/fulfill/`.
pub fn glue_hook_url(monolith: &str) -> Result<Url, NotHttpUrl> {
    let mut url = http_url(&with_http_scheme(monolith))?;
    if url.path().is_empty() || url.path() == "/" {
        url.set_path(contracts::paths::FULFILL);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The glue hook's URL may carry a token, as logs show it masked;
    /// `Debug` too, and the secret hidden.
    #[test]
    fn a_configurations_debug_shows_neither_token_nor_secret() {
        let config = ResourceConfig::new(
            Resource::Iridium,
            Url::parse("http://user:s3cret-password@monolith.internal/fulfill/?token=s3cret-token").unwrap(),
            HookSecret::new("s3cret-hook-0123456789"),
        );
        let shown = format!("{config:?}");
        assert!(
            shown.contains("monolith.internal") && !shown.contains("s3cret"),
            "{shown}"
        );
    }

    #[test]
    fn glue_hook_url_takes_bare_hosts_and_full_urls() {
        let cases = [
            (
                "interstella-alb-1.us-east-1.elb.amazonaws.com",
                "http://interstella-alb-1.us-east-1.elb.amazonaws.com/fulfill/",
            ),
            ("127.0.0.1:5000", "http://127.0.0.1:5000/fulfill/"),
            ("https://alb.example.com", "https://alb.example.com/fulfill/"),
            ("http://localhost:5000/fulfill/", "http://localhost:5000/fulfill/"),
        ];
        for (given, expected) in cases {
            assert_eq!(
                glue_hook_url(given).map(String::from).as_deref(),
                Ok(expected),
                "{given}"
            );
        }
    }
}
