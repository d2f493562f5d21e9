//! Settings shared by the services: trust, logging and the fulfillment API.
//!
//! Every setting is an environment variable (SPEC §6) and the same-named
//! command-line flag; services flatten these into their own command lines.

use crate::downstream::DEFAULT_MAX_CONNECTIONS;
use clap::builder::BoolishValueParser;
use std::time::Duration;
use url::Url;

/// How a service decides whom to believe (SPEC §5).
#[derive(Debug, Clone, clap::Args)]
pub struct TrustConfig {
    /// Verify SNS signatures. Only `SNS_VERIFY=false` turns this off, loudly.
    #[arg(long = "sns-verify", env = "SNS_VERIFY", default_value = "true", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub verify_signatures: bool,
    /// Accept direct (non-SNS) orders such as the workshop's curl.
    #[arg(long, env = "ACCEPT_UNSIGNED_ORDERS", default_value = "true", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub accept_unsigned_orders: bool,
    /// The only SNS topics accepted, comma-separated; empty accepts any topic.
    #[arg(long = "sns-topic-arns", env = "SNS_TOPIC_ARNS", value_delimiter = ',')]
    pub topic_arns: Vec<String>,
    /// A local SNS stand-in (the variable AWS SDKs use): its certificate and
    /// SubscribeURLs are trusted in place of SNS hosts.
    #[arg(long = "aws-endpoint-url-sns", env = "AWS_ENDPOINT_URL_SNS")]
    pub sns_stand_in: Option<Url>,
}

impl Default for TrustConfig {
    fn default() -> Self {
        Self {
            verify_signatures: true,
            accept_unsigned_orders: true,
            topic_arns: Vec::new(),
            sns_stand_in: None,
        }
    }
}

impl TrustConfig {
    /// Is a message from this topic accepted here?
    pub fn accepts_topic(&self, topic_arn: &str) -> bool {
        self.topic_arns.is_empty() || self.topic_arns.iter().any(|allowed| allowed.trim() == topic_arn)
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (the default; what the workshop shows).
    #[default]
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

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

/// Reads a millisecond setting as a [`Duration`].
pub fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// How many calls a service keeps in flight to the one it calls next.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct DownstreamLimitArgs {
    /// Calls in flight at once to the next service (the fulfillment API for
    /// the monolith, the monolith for iridium and magnesite); more wait their
    /// turn, inside their timeout.
    #[arg(
        long,
        env = "DOWNSTREAM_MAX_CONNECTIONS",
        default_value_t = DEFAULT_MAX_CONNECTIONS,
        value_parser = max_connections
    )]
    pub downstream_max_connections: usize,
}

/// The most `DOWNSTREAM_MAX_CONNECTIONS` may be.
pub const MAX_CONNECTIONS_LIMIT: usize = 4096;

/// Parses `DOWNSTREAM_MAX_CONNECTIONS`: a whole number from 1 to [`MAX_CONNECTIONS_LIMIT`].
pub fn max_connections(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_CONNECTIONS_LIMIT).contains(&n) => Ok(n),
        _ => Err(format!(
            "expected a whole number from 1 to {MAX_CONNECTIONS_LIMIT}"
        )),
    }
}

/// Resolves the monolith's address from `monolithUrl`/`MONOLITH_URL`: a bare
/// host (the workshop passes an ALB DNS name) gets `http://`; a URL with no
/// path gets the glue hook's `/fulfill/`.
pub fn glue_hook_url(monolith: &str) -> Result<Url, url::ParseError> {
    let monolith = monolith.trim();
    let with_scheme = if monolith.contains("://") {
        monolith.to_owned()
    } else {
        format!("http://{monolith}")
    };
    let mut url = Url::parse(&with_scheme)?;
    if url.path().is_empty() || url.path() == "/" {
        url.set_path("/fulfill/");
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_connections_is_a_whole_number_from_one_to_the_limit() {
        assert_eq!(max_connections("64"), Ok(64));
        assert_eq!(max_connections(" 1 "), Ok(1));
        assert_eq!(max_connections("4096"), Ok(MAX_CONNECTIONS_LIMIT));
        for refused in ["0", "4097", "-1", "many", ""] {
            assert!(max_connections(refused).is_err(), "{refused:?} was accepted");
        }
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

    #[test]
    fn topic_allow_list() {
        let mut trust = TrustConfig::default();
        assert!(trust.accepts_topic("arn:any"));
        trust.topic_arns = vec!["arn:a".into(), " arn:b".into()];
        assert!(trust.accepts_topic("arn:b"));
        assert!(!trust.accepts_topic("arn:c"));
    }
}
