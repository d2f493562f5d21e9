//! Settings shared by the services: trust, logging, downstream limits, and
//! the error a service exits with when its configuration cannot be had.
//!
//! Every setting is an environment variable (docs/contract.md, Configuration)
//! and the same-named command-line flag; services flatten these into their
//! own command lines.

use crate::downstream::DEFAULT_MAX_CONNECTIONS;
use clap::builder::BoolishValueParser;
use std::time::Duration;
use url::Url;

/// How a service decides whom to believe (docs/contract.md, Trust).
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

/// Configuration that could not be had; the message is the one line a
/// service prints before exiting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value is missing from the environment and from SSM.
    #[error(
        "missing configuration: {what}; looked in {env} (or --{flag}) and in SSM parameter {param}: {why}"
    )]
    Missing {
        /// What is missing, in words.
        what: &'static str,
        /// The environment variable looked at.
        env: &'static str,
        /// The flag looked at.
        flag: &'static str,
        /// The SSM parameter looked at.
        param: String,
        /// Why SSM did not have it.
        why: String,
    },
    /// A value is present but unusable.
    #[error("invalid configuration: {0}")]
    Invalid(String),
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
const MAX_CONNECTIONS_LIMIT: usize = 4096;

/// Parses `DOWNSTREAM_MAX_CONNECTIONS`: a whole number from 1 to [`MAX_CONNECTIONS_LIMIT`].
fn max_connections(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_CONNECTIONS_LIMIT).contains(&n) => Ok(n),
        _ => Err(format!(
            "expected a whole number from 1 to {MAX_CONNECTIONS_LIMIT}"
        )),
    }
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
    fn topic_allow_list() {
        let mut trust = TrustConfig::default();
        assert!(trust.accepts_topic("arn:any"));
        trust.topic_arns = vec!["arn:a".into(), " arn:b".into()];
        assert!(trust.accepts_topic("arn:b"));
        assert!(!trust.accepts_topic("arn:c"));
    }
}
