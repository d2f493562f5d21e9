//! The fulfillment API the monolith calls: where it is and its key, from
//! flags or the environment, and from SSM Parameter Store for whatever they
//! lack (docs/contract.md, Configuration).
//!
//! SSM is read once at start (it allows 40 TPS per account, shared by every
//! task starting at once), through the AWS SDK's default chain so the same
//! binary works on a laptop, EC2 and ECS; `AWS_ENDPOINT_URL` points it at a
//! stand-in.

use platform::ApiKey;
use platform::settings::ConfigError;
use std::time::Duration;
use url::Url;

/// Where the fulfillment API is and how to authenticate: flags or
/// environment first, SSM Parameter Store for whatever is missing.
#[derive(Debug, Clone, clap::Args)]
pub struct FulfillmentApiArgs {
    /// Fulfillment API key; read from SSM when unset. Never logged.
    #[arg(long, env = "INTERSTELLA_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Fulfillment API URL; read from SSM when unset.
    #[arg(long, env = "INTERSTELLA_API_ENDPOINT")]
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

/// The resolved fulfillment API: where and with which key.
#[derive(Debug, Clone)]
pub struct FulfillmentApi {
    /// The fulfillment API URL.
    pub endpoint: Url,
    /// The key sent as `x-api-key`.
    pub api_key: ApiKey,
}

/// How long start-up may wait on SSM before giving up with a clear line.
const SSM_DEADLINE: Duration = Duration::from_secs(20);

/// Resolves the fulfillment API: flags or environment first, SSM for the rest.
pub async fn resolve(args: &FulfillmentApiArgs) -> Result<FulfillmentApi, ConfigError> {
    let mut key = args.api_key.clone().filter(|k| !k.trim().is_empty());
    let mut endpoint = args.api_endpoint.clone().filter(|e| !e.trim().is_empty());
    if key.is_none() || endpoint.is_none() {
        let mut wanted = Vec::new();
        if key.is_none() {
            wanted.push(args.ssm_api_key_param.clone());
        }
        if endpoint.is_none() {
            wanted.push(args.ssm_api_endpoint_param.clone());
        }
        let (mut found, why) = match read_parameters(&wanted).await {
            Ok(found) => (found, "parameter not found".to_owned()),
            // The reason goes into a one-line message: fold any line breaks.
            Err(error) => (Vec::new(), error.split_whitespace().collect::<Vec<_>>().join(" ")),
        };
        let mut take = |name: &str| {
            found
                .iter()
                .position(|(n, _)| n == name)
                .map(|i| found.swap_remove(i).1)
        };
        if key.is_none() {
            key = Some(take(&args.ssm_api_key_param).ok_or_else(|| ConfigError::Missing {
                what: "the fulfillment API key",
                env: "INTERSTELLA_API_KEY",
                flag: "api-key",
                param: args.ssm_api_key_param.clone(),
                why: why.clone(),
            })?);
        }
        if endpoint.is_none() {
            endpoint = Some(
                take(&args.ssm_api_endpoint_param).ok_or_else(|| ConfigError::Missing {
                    what: "the fulfillment API endpoint",
                    env: "INTERSTELLA_API_ENDPOINT",
                    flag: "api-endpoint",
                    param: args.ssm_api_endpoint_param.clone(),
                    why,
                })?,
            );
        }
    }
    let (Some(key), Some(endpoint)) = (key, endpoint) else {
        return Err(ConfigError::Invalid(
            "fulfillment API settings vanished while resolving".into(),
        ));
    };
    let endpoint = Url::parse(endpoint.trim()).map_err(|e| {
        ConfigError::Invalid(format!("INTERSTELLA_API_ENDPOINT {endpoint:?} is not a URL: {e}"))
    })?;
    Ok(FulfillmentApi {
        endpoint,
        api_key: ApiKey::new(key.trim()),
    })
}

/// Reads parameters (decrypting SecureStrings); returns `(name, value)` for
/// those found, or why SSM could not be asked.
async fn read_parameters(names: &[String]) -> Result<Vec<(String, String)>, String> {
    let lookup = async {
        let config = aws_config::load_from_env().await;
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
                format!(
                    "SSM GetParameters failed: {}",
                    aws_sdk_ssm::error::DisplayErrorContext(e)
                )
            })?;
        Ok(output
            .parameters()
            .iter()
            .filter_map(|p| Some((p.name()?.to_owned(), p.value()?.to_owned())))
            .collect())
    };
    tokio::time::timeout(SSM_DEADLINE, lookup)
        .await
        .map_err(|_| format!("SSM did not answer within {}s", SSM_DEADLINE.as_secs()))?
}
