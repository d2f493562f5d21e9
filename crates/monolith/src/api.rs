//! The fulfillment API the monolith calls (where it is and its key) and the
//! glue hook's shared secret: from flags or the environment, and from SSM
//! Parameter Store for whatever they lack (docs/contract.md, Configuration).
//!
//! SSM is read once at start (it allows 40 TPS per account, shared by every
//! task starting at once), through the AWS SDK's default chain so the same
//! binary works on a laptop, EC2 and ECS; `AWS_ENDPOINT_URL` points it at a
//! stand-in.

use platform::settings::{self, ConfigError, GlueHookSecretArgs, MissingSetting};
use platform::{ApiKey, HookSecretSetting, HookSecrets, MaskedUrl};

/// Where the fulfillment API is and how to authenticate: flags or
/// environment first, SSM Parameter Store for whatever is missing. Its
/// `Debug` shows the endpoint masked (it may carry a token) and hides the
/// key.
#[derive(Clone, clap::Args)]
pub struct FulfillmentApiArgs {
    /// Fulfillment API key; read from SSM when unset. Never logged.
    // Parsed straight into `ApiKey`, whose `Debug` hides it (a doc comment
    // here would be the flag's help text).
    #[arg(long, env = "INTERSTELLA_API_KEY", hide_env_values = true)]
    pub api_key: Option<ApiKey>,
    /// Fulfillment API URL; read from SSM when unset.
    // Its value is not shown in the help: it may carry a token.
    #[arg(long, env = "INTERSTELLA_API_ENDPOINT", hide_env_values = true)]
    pub api_endpoint: Option<String>,
    /// SSM parameter holding the API key.
    #[arg(long, env = "SSM_API_KEY_PARAM", default_value = "/interstella/apiKey")]
    pub ssm_api_key_param: String,
    /// SSM parameter holding the API endpoint.
    #[arg(
        long,
        env = "SSM_API_ENDPOINT_PARAM",
        default_value = "/interstella/apiEndpoint"
    )]
    pub ssm_api_endpoint_param: String,
}

impl std::fmt::Debug for FulfillmentApiArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let endpoint = self
            .api_endpoint
            .as_deref()
            .map(platform::MaskedUrl::shown_from_text);
        f.debug_struct("FulfillmentApiArgs")
            .field("api_key", &self.api_key)
            .field("api_endpoint", &endpoint)
            .field("ssm_api_key_param", &self.ssm_api_key_param)
            .field("ssm_api_endpoint_param", &self.ssm_api_endpoint_param)
            .finish()
    }
}

/// The glue hook's shared secret: flag or environment first, SSM Parameter
/// Store when unset (on ECS, a SecureString).
#[derive(Debug, Clone, clap::Args)]
pub struct HookSecretArgs {
    /// The secret itself.
    #[command(flatten)]
    pub secret: GlueHookSecretArgs,
    /// SSM parameter holding the glue hook's shared secret.
    #[arg(
        long,
        env = "SSM_GLUE_HOOK_SECRET_PARAM",
        default_value = "/interstella/glueHookSecret"
    )]
    pub ssm_glue_hook_secret_param: String,
}

/// The resolved fulfillment API: where and with which key. Its `Debug`
/// shows the URL masked, as logs do (it may carry a token), and hides the
/// key.
#[derive(Debug, Clone)]
pub struct FulfillmentApi {
    /// The fulfillment API URL.
    pub endpoint: MaskedUrl,
    /// The key sent as `x-api-key`.
    pub api_key: ApiKey,
}

/// How long start-up may wait on SSM before giving up with a clear line.
#[cfg(feature = "ssm")]
const SSM_DEADLINE: std::time::Duration = std::time::Duration::from_secs(20);
/// Attempts at SSM, throttling included: with [`SSM_MAX_BACKOFF`], the
/// pauses add up to at most 15 s, so SSM's own refusal, not the deadline,
/// is what a start-up that gives up reports.
#[cfg(feature = "ssm")]
const SSM_MAX_ATTEMPTS: u32 = 6;
/// The longest pause between two attempts at SSM.
#[cfg(feature = "ssm")]
const SSM_MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(4);

/// One setting that comes from a flag or the environment, else from SSM.
struct Wanted<'a> {
    /// The flag's or the environment's value, if any.
    given: Option<&'a str>,
    /// What it is, in words.
    what: &'static str,
    /// Its environment variable.
    env: &'static str,
    /// Its flag.
    flag: &'static str,
    /// Its SSM parameter.
    param: &'a str,
}

/// Resolves the fulfillment API and the glue hook's secret: flags or
/// environment first, then one SSM call for whatever is missing.
pub async fn resolve(
    api: &FulfillmentApiArgs,
    hook: &HookSecretArgs,
) -> Result<(FulfillmentApi, HookSecrets), ConfigError> {
    let [key, endpoint, secret] = resolve_all([
        Wanted {
            given: api.api_key.as_ref().map(ApiKey::expose),
            what: "the fulfillment API key",
            env: "INTERSTELLA_API_KEY",
            flag: "api-key",
            param: &api.ssm_api_key_param,
        },
        Wanted {
            given: api.api_endpoint.as_deref(),
            what: "the fulfillment API endpoint",
            env: "INTERSTELLA_API_ENDPOINT",
            flag: "api-endpoint",
            param: &api.ssm_api_endpoint_param,
        },
        Wanted {
            given: hook
                .secret
                .glue_hook_secret
                .as_ref()
                .map(HookSecretSetting::expose),
            what: "the glue hook's shared secret",
            env: settings::HOOK_SECRET_SETTING,
            flag: "glue-hook-secret",
            param: &hook.ssm_glue_hook_secret_param,
        },
    ])
    .await?;
    // Not quoted: the value may carry a token (logs show it masked).
    let endpoint = settings::http_url(&endpoint.value).map_err(|why| {
        ConfigError::Invalid(format!(
            "{} is {why}: give one such as https://api.example.com/receiving/",
            endpoint.from
        ))
    })?;
    // Sent as `x-api-key` on every call: refused here, not on each order.
    let key_text = key.value.trim();
    if key_text.is_empty() {
        return Err(ConfigError::Invalid(format!("{} is blank", key.from)));
    }
    if !settings::is_header_text(key_text) {
        return Err(ConfigError::Invalid(format!(
            "{} holds characters an HTTP header cannot carry (control characters or non-ASCII)",
            key.from
        )));
    }
    let secrets = settings::hook_secrets(Some(&secret.value), &secret.from)?
        .ok_or_else(|| ConfigError::Invalid(format!("{} is blank", secret.from)))?;
    let api = FulfillmentApi {
        endpoint: endpoint.into(),
        api_key: ApiKey::new(key_text),
    };
    Ok((api, secrets))
}

/// A setting's value and where it came from, for errors about the value
/// (which never quote it).
struct Resolved {
    /// The value.
    value: String,
    /// Its environment variable, or its SSM parameter.
    from: String,
}

/// A parameter SSM returned.
#[cfg_attr(not(feature = "ssm"), allow(dead_code))]
struct Found {
    /// Its name.
    name: String,
    /// Its ARN, when SSM gave it.
    arn: Option<String>,
    /// Its value, decrypted.
    value: String,
}

impl Found {
    /// Whether `asked` names this parameter: by name or by ARN (a parameter
    /// shared from another account is asked for by ARN), with or without a
    /// `:version` or `:label` selector. Names hold no `:`.
    fn answers(&self, asked: &str) -> bool {
        [Some(self.name.as_str()), self.arn.as_deref()]
            .into_iter()
            .flatten()
            .any(|known| {
                asked
                    .strip_prefix(known)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(':'))
            })
    }
}

/// Each wanted value: given, else read from SSM (all in one call); the first
/// missing one is the error.
async fn resolve_all<const N: usize>(wanted: [Wanted<'_>; N]) -> Result<[Resolved; N], ConfigError> {
    let given = |w: &Wanted<'_>| w.given.filter(|v| !v.trim().is_empty()).map(str::to_owned);
    let mut missing: Vec<String> = wanted
        .iter()
        .filter(|w| given(w).is_none())
        .map(|w| w.param.to_owned())
        .collect();
    // Two settings may name one parameter: asked for once.
    missing.sort_unstable();
    missing.dedup();
    let (found, why) = if missing.is_empty() {
        (Vec::new(), String::new())
    } else {
        match read_parameters(&missing).await {
            Ok(found) => (found, "parameter not found".to_owned()),
            // The reason goes into a one-line message: fold any line breaks.
            Err(error) => (Vec::new(), error.split_whitespace().collect::<Vec<_>>().join(" ")),
        }
    };
    let mut values = Vec::with_capacity(N);
    let mut missing = Vec::new();
    for w in &wanted {
        let resolved = match given(w) {
            Some(value) => Resolved {
                value,
                from: w.env.to_owned(),
            },
            // Two settings may name one parameter: each gets it.
            None => match found.iter().find(|found| found.answers(w.param)) {
                Some(found) => Resolved {
                    value: found.value.clone(),
                    from: format!("SSM parameter {}", w.param),
                },
                None => {
                    missing.push(MissingSetting {
                        what: w.what,
                        env: w.env,
                        flag: w.flag,
                        param: w.param.to_owned(),
                    });
                    continue;
                }
            },
        };
        values.push(resolved);
    }
    if !missing.is_empty() {
        return Err(ConfigError::Missing {
            settings: missing,
            why,
        });
    }
    values
        .try_into()
        .map_err(|_| ConfigError::Invalid("settings vanished while resolving".into()))
}

/// Reads parameters (decrypting SecureStrings); returns those found, or why
/// SSM could not be asked.
#[cfg(feature = "ssm")]
async fn read_parameters(names: &[String]) -> Result<Vec<Found>, String> {
    let lookup = async {
        // Tasks starting together share SSM's 40 TPS: throttled, try again
        // (the SDK's default is 3 attempts, about 2 s) until the deadline.
        let retry = aws_config::retry::RetryConfig::standard()
            .with_max_attempts(SSM_MAX_ATTEMPTS)
            .with_max_backoff(SSM_MAX_BACKOFF);
        let config = aws_config::from_env().retry_config(retry).load().await;
        if config.region().is_none() {
            return Err("no AWS region (set AWS_REGION)".to_owned());
        }
        let client = aws_sdk_ssm::Client::new(&config);
        let output = client
            .get_parameters()
            .set_names(Some(names.to_vec()))
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| {
                use aws_sdk_ssm::error::ProvideErrorMetadata as _;
                // SSM's own refusal by its code and message; when there is
                // none (no credentials, no connection), the chain of causes.
                match e.code() {
                    Some(code) => format!(
                        "SSM GetParameters failed: {code}: {}",
                        e.message().unwrap_or("no message")
                    ),
                    None => format!("SSM GetParameters failed: {}", platform::error::Causes(&e)),
                }
            })?;
        Ok(output
            .parameters()
            .iter()
            .filter_map(|p| {
                Some(Found {
                    name: p.name()?.to_owned(),
                    arn: p.arn().map(str::to_owned),
                    value: p.value()?.to_owned(),
                })
            })
            .collect())
    };
    tokio::time::timeout(SSM_DEADLINE, lookup)
        .await
        .map_err(|_| format!("SSM did not answer within {}s", SSM_DEADLINE.as_secs()))?
}

/// Without the `ssm` feature (the launcher's build) there is no SSM client:
/// says so, as an SSM that could not be asked.
#[cfg(not(feature = "ssm"))]
async fn read_parameters(_names: &[String]) -> Result<Vec<Found>, String> {
    Err("this build has no SSM client (the monolith crate's `ssm` feature, on by default, is off); give the settings in the environment".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use url::Url;

    /// The endpoint may carry a token, as logs show it masked; `Debug` too.
    #[test]
    fn a_fulfillment_apis_debug_shows_neither_token_nor_key() {
        let api = FulfillmentApi {
            endpoint: Url::parse(
                "https://user:s3cret-password@api.example.com/receiving/?token=s3cret-token",
            )
            .unwrap()
            .into(),
            api_key: ApiKey::new("s3cret-key"),
        };
        let shown = format!("{api:?}");
        assert!(
            shown.contains("api.example.com") && !shown.contains("s3cret"),
            "{shown}"
        );
    }

    #[test]
    fn a_parameter_answers_to_its_name_and_arn_with_or_without_a_selector() {
        let found = Found {
            name: "/interstella/apiKey".into(),
            arn: Some("arn:aws:ssm:us-east-1:123456789012:parameter/interstella/apiKey".into()),
            value: String::new(),
        };
        for asked in [
            "/interstella/apiKey",
            "/interstella/apiKey:3",
            "/interstella/apiKey:live",
            "arn:aws:ssm:us-east-1:123456789012:parameter/interstella/apiKey",
            "arn:aws:ssm:us-east-1:123456789012:parameter/interstella/apiKey:3",
        ] {
            assert!(found.answers(asked), "{asked}");
        }
        for asked in ["/interstella/apiKeyOld", "/interstella/api", "/other/apiKey"] {
            assert!(!found.answers(asked), "{asked}");
        }
    }
}
