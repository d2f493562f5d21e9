//! Settings shared by the services: trust, logging, downstream limits,
//! metrics, and the error a service exits with when its configuration cannot
//! be had. [`crate::route`] gathers them for a service's order route.
//!
//! Every setting is an environment variable (README, Settings)
//! and the same-named command-line flag; services flatten these into their
//! own command lines.

use crate::downstream::DEFAULT_DOWNSTREAM_CONNECTIONS;
use crate::secret::{HookSecret, HookSecretSetting, HookSecrets};
use clap::builder::BoolValueParser;
use std::time::Duration;
use url::Url;

/// Whether SNS signatures are verified unless told otherwise.
const DEFAULT_VERIFY_SIGNATURES: bool = true;
/// Whether direct orders are accepted unless told otherwise.
const DEFAULT_ACCEPT_UNSIGNED_ORDERS: bool = true;

/// The variable of the switch that verifies SNS signatures.
pub const SNS_VERIFY_SETTING: &str = "SNS_VERIFY";
/// The variable of the switch that accepts direct orders.
pub const ACCEPT_UNSIGNED_ORDERS_SETTING: &str = "ACCEPT_UNSIGNED_ORDERS";
/// The switches of trust: set blank, they stop the service as any word but
/// `true` and `false` does, rather than fall back to their defaults, one of
/// which accepts unsigned orders ([`crate::startup::settings`]).
pub const SWITCHES_OF_TRUST: [&str; 2] = [SNS_VERIFY_SETTING, ACCEPT_UNSIGNED_ORDERS_SETTING];

/// How a service decides whom to believe (docs/contract.md, Trust).
#[derive(Debug, Clone, clap::Args)]
pub struct TrustConfig {
    /// Verify SNS signatures (`true` or `false`). Only `SNS_VERIFY=false`
    /// turns this off, loudly: the two switches of trust take the words
    /// `true` and `false` alone, so that no `0`, `off` or `no` turns a check
    /// off unnoticed, and a misspelling stops the service at start.
    #[arg(long = "sns-verify", env = SNS_VERIFY_SETTING, default_value_t = DEFAULT_VERIFY_SIGNATURES, value_parser = BoolValueParser::new(), action = clap::ArgAction::Set)]
    pub verify_signatures: bool,
    /// Accept direct (non-SNS) orders such as the workshop's curl (`true` or
    /// `false`).
    #[arg(long, env = ACCEPT_UNSIGNED_ORDERS_SETTING, default_value_t = DEFAULT_ACCEPT_UNSIGNED_ORDERS, value_parser = BoolValueParser::new(), action = clap::ArgAction::Set)]
    pub accept_unsigned_orders: bool,
    /// The only SNS topics accepted, comma-separated; empty accepts any topic.
    #[arg(long = "sns-topic-arns", env = "SNS_TOPIC_ARNS", value_delimiter = ',')]
    pub topic_arns: Vec<String>,
    /// A local SNS stand-in (the variable AWS SDKs use): its certificate and
    /// SubscribeURLs are trusted in place of SNS hosts. A scheme, host, port
    /// and path alone.
    // Nothing in it can be a secret (`stand_in_url`), so the derived `Debug`
    // may show it whole.
    #[arg(long = "aws-endpoint-url-sns", env = "AWS_ENDPOINT_URL_SNS", value_parser = NeverQuoted(stand_in_url))]
    pub sns_stand_in: Option<Url>,
}

impl Default for TrustConfig {
    fn default() -> Self {
        Self {
            verify_signatures: DEFAULT_VERIFY_SIGNATURES,
            accept_unsigned_orders: DEFAULT_ACCEPT_UNSIGNED_ORDERS,
            topic_arns: Vec::new(),
            sns_stand_in: None,
        }
    }
}

impl TrustConfig {
    /// Is a message from this topic accepted here?
    pub fn accepts_topic(&self, topic_arn: &str) -> bool {
        !self.has_topic_allow_list() || self.allowed_topics().any(|allowed| allowed == topic_arn)
    }

    /// Whether `SNS_TOPIC_ARNS` names any topic (blank entries do not count).
    pub fn has_topic_allow_list(&self) -> bool {
        self.allowed_topics().next().is_some()
    }

    fn allowed_topics(&self) -> impl Iterator<Item = &str> {
        self.topic_arns
            .iter()
            .map(|arn| arn.trim())
            .filter(|arn| !arn.is_empty())
    }

    /// Refuses a configuration that takes orders only from SNS yet from any
    /// topic: anyone can subscribe our URL to their own topic, and SNS signs
    /// those messages genuinely (docs/contract.md, Trust).
    pub fn check(self) -> Result<Self, ConfigError> {
        if !self.accept_unsigned_orders && !self.has_topic_allow_list() {
            return Err(ConfigError::Invalid(
                "ACCEPT_UNSIGNED_ORDERS=false needs SNS_TOPIC_ARNS (or --sns-topic-arns): without an allow-list, any AWS account's topic could place orders here".into(),
            ));
        }
        // A misspelt entry would refuse every delivery with a 403, which SNS
        // drops without retrying.
        if let Some(other) = self
            .allowed_topics()
            .find(|arn| !contracts::sns::is_topic_arn(arn))
        {
            return Err(ConfigError::Invalid(format!(
                "SNS_TOPIC_ARNS (or --sns-topic-arns) takes SNS topic ARNs, arn:aws:sns:<region>:<account>:<topic>, comma-separated; got {}",
                contracts::quote::quoted(other)
            )));
        }
        Ok(self)
    }
}

/// The glue hook's shared secret, as the monolith and the microservices
/// both take it (docs/contract.md, Configuration).
#[derive(Debug, Clone, clap::Args)]
pub struct GlueHookSecretArgs {
    /// The glue hook's shared secret (at least 16 characters); during a
    /// rotation two, comma-separated: the first is sent, either is let in.
    /// Never logged.
    // Parsed straight into `HookSecretSetting`, whose `Debug` hides it (a
    // doc comment here would be the flag's help text); `hook_secrets`
    // splits it.
    #[arg(long, env = HOOK_SECRET_SETTING, hide_env_values = true)]
    pub glue_hook_secret: Option<HookSecretSetting>,
}

/// The shortest glue hook secret accepted: shorter is a placeholder, not a secret.
pub const MIN_HOOK_SECRET_CHARS: usize = 16;

/// Where the glue hook's secret is set unless an SSM parameter gave it.
pub const HOOK_SECRET_SETTING: &str = "GLUE_HOOK_SECRET";

/// Checks a glue hook secret setting, one secret or several comma-separated
/// ([`HookSecrets`]); `None` when unset or blank. `from` names where the
/// value came from ([`HOOK_SECRET_SETTING`], or an SSM parameter) for the
/// error, which never quotes the value.
pub fn hook_secrets(value: Option<&str>, from: &str) -> Result<Option<HookSecrets>, ConfigError> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let parts: Vec<&str> = value.split(',').map(str::trim).collect();
    let mut secrets = Vec::with_capacity(parts.len());
    for (at, secret) in parts.iter().enumerate() {
        // Which one, never what it is.
        let which = match parts.len() {
            1 => String::new(),
            n => format!(" (secret {} of {n}, comma-separated)", at + 1),
        };
        if secret.chars().count() < MIN_HOOK_SECRET_CHARS {
            return Err(ConfigError::Invalid(format!(
                "{from}{which} is shorter than {MIN_HOOK_SECRET_CHARS} characters; use a random one (e.g. openssl rand -hex 32)"
            )));
        }
        // Sent in a header: refused here rather than on every glue-hook call.
        if !is_header_text(secret) {
            return Err(ConfigError::Invalid(format!(
                "{from}{which} holds characters an HTTP header cannot carry (control characters or non-ASCII); use a random one (e.g. openssl rand -hex 32)"
            )));
        }
        secrets.push(HookSecret::new(*secret));
    }
    let mut secrets = secrets.into_iter();
    Ok(secrets.next().map(|sent| HookSecrets::new(sent, secrets)))
}

/// Whether `text` can be sent as a header's value as it is: visible ASCII
/// and spaces (what a key or secret sent in a header must be).
pub fn is_header_text(text: &str) -> bool {
    text.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
}

/// Why a setting is not an http:// or https:// URL. Says
/// nothing of the text, which may carry a password or a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotHttpUrl {
    /// Not a URL at all (the parser's reason names no part of it).
    #[error("not a URL ({0})")]
    Unparsable(url::ParseError),
    /// A URL of another scheme, or a host and port without one
    /// (`localhost:4000/` parses as the scheme `localhost`).
    #[error("not an http:// or https:// URL")]
    Scheme,
    /// A URL with a user name, password, query or fragment where only an
    /// origin and a path are meant ([`stand_in_url`]).
    #[error(
        "an http:// or https:// URL with a user name, password, query or fragment; only a scheme, host, port and path are taken"
    )]
    NotAnOrigin,
}

/// `text`, trimmed, as an http:// or https:// URL (which always has a
/// host: the parser refuses one without).
pub fn http_url(text: &str) -> Result<Url, NotHttpUrl> {
    let url = Url::parse(text.trim()).map_err(NotHttpUrl::Unparsable)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(NotHttpUrl::Scheme);
    }
    Ok(url)
}

/// `text`, trimmed, as an SNS stand-in's address: an [`http_url`] with no
/// user name, password, query or fragment. Certificates are fetched from
/// below it and its own URLs carry none of those, so such a part is a
/// mistake, and one that may hold a secret: refused, it never reaches a
/// settings `Debug`, a log line or a fetched certificate's URL.
pub fn stand_in_url(text: &str) -> Result<Url, NotHttpUrl> {
    let url = http_url(text)?;
    if !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(NotHttpUrl::NotAnOrigin);
    }
    Ok(url)
}

/// `text`, trimmed, with `http://` before it when it names no scheme: a
/// bare host, as `monolithUrl` is in the workshop (an ALB's DNS name).
pub fn with_http_scheme(text: &str) -> std::borrow::Cow<'_, str> {
    let text = text.trim();
    if text.contains("://") {
        text.into()
    } else {
        format!("http://{text}").into()
    }
}

/// A clap value parser whose refusal never quotes the value, which may be
/// a secret or hold one (clap's own quotes it, and on ECS that line goes
/// to CloudWatch). Names the flag, then the parser's reason.
pub struct NeverQuoted<T, E>(pub fn(&str) -> Result<T, E>);

// By hand: derived, they would ask `T` and `E` to be `Clone` too.
impl<T, E> Clone for NeverQuoted<T, E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T, E> Copy for NeverQuoted<T, E> {}

impl<T, E> clap::builder::TypedValueParser for NeverQuoted<T, E>
where
    T: Clone + Send + Sync + 'static,
    E: std::fmt::Display + 'static,
{
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<T, clap::Error> {
        let parsed = match value.to_str() {
            Some(text) => (self.0)(text).map_err(|error| error.to_string()),
            None => Err("not UTF-8".to_owned()),
        };
        parsed.map_err(|error| {
            let setting = arg
                .and_then(clap::Arg::get_long)
                .map(|long| format!("--{long}: "))
                .unwrap_or_default();
            // The variable's name, never its value.
            let variable = arg
                .and_then(clap::Arg::get_env)
                .map(|variable| format!(" (its environment variable: {})", variable.to_string_lossy()))
                .unwrap_or_default();
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("{setting}{error}{variable}\n"),
            )
            .with_cmd(cmd)
        })
    }
}

/// Where a service serves its Prometheus metrics.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct MetricsArgs {
    /// Port of `GET /metrics` (OpenMetrics text, which Prometheus scrapes), apart from the
    /// service's own so the load balancer never routes to it; unset, no
    /// metrics are served (they are still counted).
    #[arg(long, env = "METRICS_PORT")]
    pub metrics_port: Option<u16>,
}

impl MetricsArgs {
    /// The metrics port, refused when it is the service's own `port`.
    pub fn port(&self, port: u16) -> Result<Option<u16>, ConfigError> {
        match self.metrics_port {
            Some(metrics) if metrics == port && port != 0 => Err(ConfigError::Invalid(format!(
                "METRICS_PORT {metrics} is the port the service itself listens on; metrics need a port of their own"
            ))),
            other => Ok(other),
        }
    }
}

/// How a service writes its log lines: the one `LOG_FORMAT` setting every
/// service takes.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct LogArgs {
    /// Log line format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::default())]
    pub log_format: LogFormat,
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

/// A setting found neither where it is given nor in SSM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingSetting {
    /// What it is, in words.
    pub what: &'static str,
    /// The environment variable looked at.
    pub env: &'static str,
    /// The flag looked at.
    pub flag: &'static str,
    /// The SSM parameter looked at.
    pub param: String,
}

impl std::fmt::Display for MissingSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self {
            what,
            env,
            flag,
            param,
        } = self;
        write!(f, "{what} ({env} or --{flag}, or SSM parameter {param})")
    }
}

/// `settings`, comma-separated.
fn list(settings: &[MissingSetting]) -> String {
    settings
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Configuration that could not be had; the message is the one line a
/// service prints before exiting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Values missing from the environment and from SSM: each of them, so
    /// that one start says all that is to be set (it said one a start).
    #[error("missing configuration: {}: {why}", list(.settings))]
    Missing {
        /// What is missing, each with where it was looked for.
        settings: Vec<MissingSetting>,
        /// Why SSM did not have them.
        why: String,
    },
    /// A value that has no SSM parameter is missing: what, and where it
    /// was looked for.
    #[error("missing configuration: {0}")]
    NotGiven(String),
    /// A value is present but unusable.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// The serve loop's limits do not work together.
    #[error("invalid configuration: {0}")]
    Limits(#[from] crate::server::LimitsError),
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
    /// turn, inside their timeout. Also the idle connections kept to each host.
    #[arg(
        long,
        env = "DOWNSTREAM_MAX_CONNECTIONS",
        default_value_t = DEFAULT_DOWNSTREAM_CONNECTIONS,
        value_parser = max_connections
    )]
    pub downstream_max_connections: usize,
}

/// Parses a time in milliseconds that must be at least `MIN` (a timeout,
/// a drain: 1): clap's own range check said "0 is not in
/// 1..18446744073709551615".
pub fn millis_at_least<const MIN: u64>(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(n) if n >= MIN => Ok(n),
        _ => Err(format!("expected a whole number of milliseconds, at least {MIN}")),
    }
}

/// The most a connection bound may be: `MAX_CONNECTIONS` (the serve
/// loop's) and `DOWNSTREAM_MAX_CONNECTIONS` (each downstream pool's).
const MAX_CONNECTIONS_LIMIT: usize = 4096;

/// Parses a connection bound (`MAX_CONNECTIONS`, `DOWNSTREAM_MAX_CONNECTIONS`):
/// a whole number from 1 to [`MAX_CONNECTIONS_LIMIT`].
pub(crate) fn max_connections(text: &str) -> Result<usize, String> {
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

    /// `--help` of a service's settings, its whitespace made single spaces.
    pub(crate) fn help_of<Settings: clap::CommandFactory>() -> String {
        let help = Settings::command().render_long_help().to_string();
        help.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// The help texts that name a bound name the bound in force: written
    /// there as text, they would not follow a change to it.
    #[test]
    fn help_texts_name_the_bounds_in_force() {
        #[derive(clap::Parser)]
        struct Settings {
            #[command(flatten)]
            limits: crate::server::ServerLimitArgs,
            #[command(flatten)]
            hook: GlueHookSecretArgs,
            #[command(flatten)]
            downstream: DownstreamLimitArgs,
        }
        let help = help_of::<Settings>();
        use crate::server::{MAX_HEADER_BYTES_LIMIT, MIN_HEADER_BYTES};
        for bound in [
            format!("Connections served at once (1 to {MAX_CONNECTIONS_LIMIT}"),
            format!("({MIN_HEADER_BYTES} to {MAX_HEADER_BYTES_LIMIT})"),
            format!("(at least {MIN_HOOK_SECRET_CHARS} characters)"),
        ] {
            assert!(help.contains(&bound), "{bound:?} in {help}");
        }
    }

    #[test]
    fn max_connections_is_a_whole_number_from_one_to_the_limit() {
        assert_eq!(max_connections("64"), Ok(64));
        assert_eq!(max_connections(" 1 "), Ok(1));
        assert_eq!(max_connections("4096"), Ok(MAX_CONNECTIONS_LIMIT));
        for refused in ["0", "4097", "-1", "many", ""] {
            assert!(max_connections(refused).is_err(), "{refused:?} was accepted");
        }
    }

    /// The switches of trust take `true` and `false` only: clap's usual
    /// "boolish" words (`0`, `off`, `no`) would turn a check off as well.
    #[test]
    fn the_switches_of_trust_take_true_and_false_only() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            trust: TrustConfig,
        }
        let parsed = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("service").chain(args.iter().copied()))
                .map(|cli| (cli.trust.verify_signatures, cli.trust.accept_unsigned_orders))
        };
        assert_eq!(parsed(&[]).ok(), Some((true, true)));
        // The same defaults as a configuration made in code.
        let made = TrustConfig::default();
        assert_eq!(
            parsed(&[]).ok(),
            Some((made.verify_signatures, made.accept_unsigned_orders))
        );
        assert_eq!(
            parsed(&["--sns-verify", "false", "--accept-unsigned-orders", "false"]).ok(),
            Some((false, false))
        );
        for word in ["0", "off", "no", "n", "f", "False", "flase", ""] {
            assert!(
                parsed(&["--sns-verify", word]).is_err(),
                "SNS_VERIFY={word:?} was taken"
            );
            assert!(
                parsed(&["--accept-unsigned-orders", word]).is_err(),
                "ACCEPT_UNSIGNED_ORDERS={word:?} was taken"
            );
        }
    }

    #[test]
    fn a_time_in_milliseconds_is_at_least_one_and_says_so() {
        assert_eq!(millis_at_least::<1>(" 250 "), Ok(250));
        for bad in ["0", "-1", "1.5", "", "ten"] {
            assert_eq!(
                millis_at_least::<1>(bad),
                Err("expected a whole number of milliseconds, at least 1".to_owned()),
                "{bad:?}"
            );
        }
        assert!(millis_at_least::<100>("99").is_err());
        assert_eq!(millis_at_least::<100>("100"), Ok(100));
    }

    #[test]
    fn topic_allow_list() {
        let mut trust = TrustConfig::default();
        assert!(trust.accepts_topic("arn:any"));
        trust.topic_arns = vec!["arn:a".into(), " arn:b".into()];
        assert!(trust.accepts_topic("arn:b"));
        assert!(!trust.accepts_topic("arn:c"));
        // `SNS_TOPIC_ARNS=` (blank) is no allow-list.
        trust.topic_arns = vec![" ".into()];
        assert!(trust.accepts_topic("arn:any"));
    }

    #[test]
    fn sns_only_without_topics_is_refused() {
        let sns_only = TrustConfig {
            accept_unsigned_orders: false,
            topic_arns: vec!["".into()],
            ..TrustConfig::default()
        };
        assert!(sns_only.clone().check().is_err());
        let listed = TrustConfig {
            topic_arns: vec!["arn:aws:sns:us-east-1:123456789012:orders".into()],
            ..sns_only
        };
        assert!(listed.clone().check().is_ok());
        assert!(TrustConfig::default().check().is_ok());
        // An entry that is no topic ARN would refuse every delivery.
        let misspelt = TrustConfig {
            topic_arns: vec![listed.topic_arns[0].clone(), "orders".into()],
            ..listed
        };
        let refused = misspelt.check().unwrap_err().to_string();
        assert!(
            refused.contains("SNS_TOPIC_ARNS") && refused.contains("\"orders\""),
            "{refused}"
        );
    }

    #[test]
    fn hook_secrets_are_long_enough() {
        assert!(matches!(hook_secrets(None, HOOK_SECRET_SETTING), Ok(None)));
        assert!(matches!(hook_secrets(Some("  "), HOOK_SECRET_SETTING), Ok(None)));
        assert!(hook_secrets(Some("short"), HOOK_SECRET_SETTING).is_err());
        let secrets = hook_secrets(Some(" 0123456789abcdef "), HOOK_SECRET_SETTING)
            .ok()
            .flatten();
        assert_eq!(
            secrets.as_ref().map(|s| s.sent().expose()),
            Some("0123456789abcdef")
        );
    }

    #[test]
    fn a_hook_secret_a_header_cannot_carry_is_refused_unquoted() {
        for value in [
            "0123456789abcdef\u{1}",
            "0123456789abcdef\nnext-line",
            "0123456789abcdéf",
        ] {
            let refused = hook_secrets(Some(value), "SSM parameter /x/hook").map_err(|e| e.to_string());
            assert!(
                matches!(&refused, Err(why) if why.contains("SSM parameter /x/hook") && why.contains("header") && !why.contains("0123")),
                "{value:?}: {refused:?}"
            );
        }
    }

    #[test]
    fn http_urls_need_the_scheme_and_a_host_and_are_never_quoted() {
        assert_eq!(
            http_url(" https://api.example.com/receiving/ ").map(String::from),
            Ok("https://api.example.com/receiving/".to_owned())
        );
        for (text, why) in [
            ("localhost:4000/receiving/", NotHttpUrl::Scheme),
            ("ftp://ops:s3cret@proxy/", NotHttpUrl::Scheme),
            ("http:///", NotHttpUrl::Unparsable(url::ParseError::EmptyHost)),
            (
                "api.example.com/receiving/",
                NotHttpUrl::Unparsable(url::ParseError::RelativeUrlWithoutBase),
            ),
        ] {
            assert_eq!(http_url(text), Err(why), "{text}");
        }
        let refused = http_url("http://u:s3cret@[::1/").map_err(|e| e.to_string());
        assert!(
            matches!(&refused, Err(why) if !why.contains("s3cret")),
            "{refused:?}"
        );
    }

    #[test]
    fn an_sns_stand_in_needs_http_and_its_refusal_quotes_nothing() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            trust: TrustConfig,
        }
        let parse = |value: &str| {
            <Cli as clap::Parser>::try_parse_from(["service", "--aws-endpoint-url-sns", value])
                .map(|cli| cli.trust.sns_stand_in.map(String::from))
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            parse("http://127.0.0.1:4566"),
            Ok(Some("http://127.0.0.1:4566/".to_owned()))
        );
        assert_eq!(
            parse("http://127.0.0.1:4566/_aws/sns"),
            Ok(Some("http://127.0.0.1:4566/_aws/sns".to_owned()))
        );
        for (value, why) in [
            ("localhost:4566", "not an http:// or https:// URL"),
            ("http://u:snspass@[::1/", "not a URL"),
            ("http://u:snspass@127.0.0.1:4566/", "user name, password"),
            ("http://snspass@127.0.0.1:4566/", "user name, password"),
            ("http://127.0.0.1:4566/?token=snspass", "query"),
            ("http://127.0.0.1:4566/#snspass", "fragment"),
        ] {
            let refused = parse(value);
            assert!(
                matches!(&refused, Err(said) if said.contains("--aws-endpoint-url-sns: ") && said.contains(why) && !said.contains("snspass") && !said.contains("4566")),
                "{value}: {refused:?}"
            );
        }
    }

    #[test]
    fn a_rotation_sends_the_first_secret_and_lets_in_each() {
        let secrets = hook_secrets(
            Some("new-secret-0123456789, old-secret-0123456789"),
            HOOK_SECRET_SETTING,
        )
        .ok()
        .flatten();
        assert_eq!(
            secrets.as_ref().map(|s| s.sent().expose()),
            Some("new-secret-0123456789")
        );
        let lets_in = |presented: &str| secrets.as_ref().is_some_and(|s| s.matches(presented.as_bytes()));
        assert!(lets_in("new-secret-0123456789") && lets_in("old-secret-0123456789"));
        assert!(!lets_in("new-secret-0123456789, old-secret-0123456789"));
        // Each must be a secret: an empty or short one is named, not shown.
        for (value, which) in [
            ("new-secret-0123456789,", "secret 2 of 2"),
            ("new-secret-0123456789,,old-secret-0123456789", "secret 2 of 3"),
            ("tiny-new,old-secret-0123456789", "secret 1 of 2"),
        ] {
            let refused = hook_secrets(Some(value), HOOK_SECRET_SETTING).map_err(|e| e.to_string());
            assert!(
                matches!(&refused, Err(why) if why.contains(which) && !why.contains("old-secret") && !why.contains("tiny")),
                "{value}: {refused:?}"
            );
        }
    }
}
