//! Which URLs in an SNS message may be fetched at all.
//!
//! `SigningCertURL` and `SubscribeURL` are chosen by whoever sent the body, and
//! `SigningCertURL` is not even covered by the signature. Both are checked
//! here, before any request leaves the service: the certificate URL must be a
//! real SNS certificate location (else anyone could sign with their own key),
//! and the subscribe URL must be an SNS confirmation (else a forged
//! confirmation makes us GET an address of the attacker's choosing).
//!
//! With a local SNS stand-in, URLs under it are trusted, and so are genuine
//! SNS-shaped ones (moto names the real host in its deliveries): those are
//! fetched from the stand-in at the same path, never from the real host,
//! because the stand-in is what signed the message.

use crate::secret::MaskedUrl;
use contracts::quote::quoted;
use url::Url;

/// The hosts whose certificate and confirmation URLs are trusted.
///
/// By default these are the Amazon SNS hosts (`sns.<region>.amazonaws.com`
/// and `sns.<region>.amazonaws.com.cn`). With a local SNS stand-in
/// configured, URLs under the stand-in are trusted, and SNS-shaped URLs are
/// redirected to it (see [`TrustedUrl`]).
#[derive(Clone, Debug)]
pub struct TrustedHosts {
    stand_in: Option<Url>,
}

impl TrustedHosts {
    /// `stand_in` is AWS_ENDPOINT_URL_SNS: a local SNS stand-in whose URLs are
    /// trusted in place of SNS hosts.
    pub fn new(stand_in: Option<Url>) -> Self {
        Self { stand_in }
    }

    /// Is this SigningCertURL acceptable, and where is it fetched?
    ///
    /// Real SNS: `https`, host `sns.<region>.amazonaws.com(.cn)` with a real
    /// region shape (`us-east-1`, `us-gov-west-1`, `cn-north-1`, ...), no
    /// userinfo, no port, no query, no fragment, and the path exactly
    /// `/SimpleNotificationService-<lowercase hex>.pem`.
    /// With a stand-in: a URL under it (its scheme, host and port, a path
    /// under its path ending in `.pem`, no userinfo, query or fragment), or a
    /// real-SNS one as above, which is then fetched from the stand-in.
    pub fn check_cert_url(&self, url: &str) -> Result<TrustedUrl, UntrustedUrl> {
        let untrusted = |reason| UntrustedUrl::new(url, reason);
        // Before anything keeps it: a URL waiting for its fetch is a key of
        // the verifier's map, and a stand-in's paths have no length of their own.
        if url.len() > MAX_CERT_URL_LEN {
            return Err(untrusted("a certificate URL is at most 1024 bytes"));
        }
        let parsed = Url::parse(url).map_err(|_| untrusted(NOT_A_URL))?;
        if parsed.query().is_some() {
            return Err(untrusted("a certificate URL has no query"));
        }
        if parsed.fragment().is_some() {
            return Err(untrusted("a certificate URL has no fragment"));
        }
        let sns_cert = || {
            let region = check_sns_origin(&parsed)?;
            if is_sns_cert_path(parsed.path()) {
                Ok(region)
            } else {
                Err("the path is not /SimpleNotificationService-<hex>.pem")
            }
        };
        let Some(stand_in) = &self.stand_in else {
            sns_cert().map_err(untrusted)?;
            return Ok(TrustedUrl::direct(parsed));
        };
        match check_under_stand_in(&parsed, stand_in) {
            Ok(()) if parsed.path().ends_with(".pem") => Ok(TrustedUrl::direct(parsed)),
            Ok(()) => Err(untrusted("a certificate path ends in .pem")),
            Err(reason) => match sns_cert() {
                Ok(region) => Ok(TrustedUrl::via_stand_in(stand_in, &parsed, region)),
                Err(_) => Err(untrusted(reason)),
            },
        }
    }

    /// Is this SubscribeURL acceptable to GET, and where?
    ///
    /// Real SNS: `https`, an SNS host (no userinfo, no port, no fragment) and a
    /// query whose only `Action` is `ConfirmSubscription`. With a stand-in: a
    /// URL under it (its scheme, host and port and a path under its path), or
    /// a real-SNS one as above, which is then fetched from the stand-in.
    pub fn check_subscribe_url(&self, url: &str) -> Result<TrustedUrl, UntrustedUrl> {
        // Refused, it is shown with its query's values masked: its `Token`
        // is the subscription's secret (a genuine one, from a stand-in the
        // service was not told of).
        let shown = MaskedUrl::shown_from_text(url);
        let untrusted = |reason| UntrustedUrl::new(&shown, reason);
        let parsed = Url::parse(url).map_err(|_| untrusted(NOT_A_URL))?;
        if parsed.fragment().is_some() {
            return Err(untrusted("a subscribe URL has no fragment"));
        }
        let sns_confirmation = || {
            let region = check_sns_origin(&parsed)?;
            let mut actions = parsed
                .query_pairs()
                .filter(|(key, _)| key == "Action")
                .map(|(_, value)| value);
            // Exactly one Action: with two, SNS and we might disagree on which counts.
            match (actions.next(), actions.next()) {
                (Some(action), None) if action == "ConfirmSubscription" => Ok(region),
                _ => Err("the query is not Action=ConfirmSubscription"),
            }
        };
        let Some(stand_in) = &self.stand_in else {
            sns_confirmation().map_err(untrusted)?;
            return Ok(TrustedUrl::direct(parsed));
        };
        match check_under_stand_in(&parsed, stand_in) {
            Ok(()) => Ok(TrustedUrl::direct(parsed)),
            Err(reason) => match sns_confirmation() {
                Ok(region) => Ok(TrustedUrl::via_stand_in(stand_in, &parsed, region)),
                Err(_) => Err(untrusted(reason)),
            },
        }
    }
}

/// A URL from an SNS message that passed the checks: where to fetch it, and
/// how. Its `Debug` masks the URL's query: a SubscribeURL's `Token` is the
/// subscription's secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedUrl {
    url: MaskedUrl,
    /// For an SNS URL fetched from the stand-in: the `Authorization` value
    /// that addresses SNS there (see [`TrustedUrl::headers`]).
    sns_scope: Option<String>,
}

impl TrustedUrl {
    fn direct(url: Url) -> Self {
        Self {
            url: url.into(),
            sns_scope: None,
        }
    }

    /// `sns_url`'s path and query on the stand-in (under its path).
    fn via_stand_in(stand_in: &Url, sns_url: &Url, region: &str) -> Self {
        let mut url = stand_in.clone();
        url.set_path(&format!(
            "{}{}",
            stand_in.path().trim_end_matches('/'),
            sns_url.path()
        ));
        url.set_query(sns_url.query());
        url.set_fragment(None);
        // moto serves every AWS service on one port and picks the service by
        // the credential scope of a SigV4 Authorization header: unsigned, the
        // request lands in S3. This names SNS and the region the URL named,
        // with no credential and no valid signature (a stand-in checks none).
        let sns_scope = format!(
            "AWS4-HMAC-SHA256 Credential=interstella/20000101/{region}/sns/aws4_request, SignedHeaders=host, Signature=0"
        );
        Self {
            url: url.into(),
            sns_scope: Some(sns_scope),
        }
    }

    /// Where to fetch it.
    pub fn url(&self) -> &Url {
        self.url.expose()
    }

    /// Headers the fetch carries: none, except for an SNS URL fetched from
    /// the stand-in, which names the SNS service for a multi-service stand-in.
    pub fn headers(&self) -> Vec<(&'static str, &str)> {
        self.sns_scope
            .as_deref()
            .map(|scope| (reqwest::header::AUTHORIZATION.as_str(), scope))
            .into_iter()
            .collect()
    }
}

/// A URL from an SNS message that must not be fetched, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("untrusted URL {}: {reason}", quoted(.url))]
pub struct UntrustedUrl {
    url: String,
    reason: &'static str,
}

impl UntrustedUrl {
    fn new(url: &str, reason: &'static str) -> Self {
        Self {
            url: url.to_owned(),
            reason,
        }
    }

    /// The rejected URL, as it was given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Why it was rejected.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

/// Why a URL that does not parse is refused.
const NOT_A_URL: &str = "not a valid absolute URL";

/// A refusal's `reason`, and for a URL on this machine or its network
/// (a local SNS stand-in's, most likely) the way to trust one: a service
/// run beside HQ or moto without it refused their messages, and said
/// nothing of why a subscription never confirmed. Never for a public host:
/// a forger's URL must not come with advice to trust it.
macro_rules! refusal {
    ($url:expr, $reason:literal) => {
        if looks_local($url) {
            concat!(
                $reason,
                " (from a local SNS stand-in such as HQ or moto? set AWS_ENDPOINT_URL_SNS to its URL)"
            )
        } else {
            $reason
        }
    };
}

/// https, an SNS host, no userinfo, no port; the region the host names.
/// Its refusals are shown only when no stand-in is set.
fn check_sns_origin(url: &Url) -> Result<&str, &'static str> {
    if url.scheme() != "https" {
        return Err(refusal!(url, "SNS URLs are https"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("SNS URLs carry no userinfo");
    }
    // `Url` drops the default port, so an explicit `:443` passes: it names the same origin.
    if url.port().is_some() {
        return Err(refusal!(url, "SNS URLs carry no port"));
    }
    match url.host() {
        Some(url::Host::Domain(host)) => sns_region(host),
        _ => None,
    }
    .ok_or(refusal!(url, "the host is not sns.<region>.amazonaws.com(.cn)"))
}

/// Whether `url`'s host is this machine or a private network's: a loopback
/// or private address, `localhost`, or a name of one label (a container's,
/// such as docker compose's `hq`).
fn looks_local(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.');
            name == "localhost" || name.ends_with(".localhost") || !name.contains('.')
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_private() || ip.is_link_local(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback() || ip.is_unique_local(),
        None => false,
    }
}

/// Same scheme, host and port as the stand-in, no userinfo, and a path at or
/// below the stand-in's path (on a segment boundary).
fn check_under_stand_in(url: &Url, stand_in: &Url) -> Result<(), &'static str> {
    if url.scheme() != stand_in.scheme()
        || url.host() != stand_in.host()
        || url.port_or_known_default() != stand_in.port_or_known_default()
    {
        return Err("not on the SNS stand-in's origin");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("stand-in URLs carry no userinfo");
    }
    let base = stand_in.path().trim_end_matches('/');
    let path = url.path();
    let under = path.strip_prefix(base).is_some_and(|rest| rest.starts_with('/'));
    if !under {
        return Err("not under the SNS stand-in's path");
    }
    Ok(())
}

/// The region of `sns.<region>.amazonaws.com` or `sns.<region>.amazonaws.com.cn`.
fn sns_region(host: &str) -> Option<&str> {
    let rest = host.strip_prefix("sns.")?;
    rest.strip_suffix(".amazonaws.com")
        .or_else(|| rest.strip_suffix(".amazonaws.com.cn"))
        .filter(|region| is_region(region))
}

/// A region name: a two-letter partition prefix, one or more lowercase words,
/// and a number (`us-east-1`, `us-gov-west-1`, `cn-north-1`, `ap-southeast-2`).
///
/// This shape, not just "some label", is what keeps S3-style hosts such as
/// `sns.s3.amazonaws.com` or `sns.s3-us-east-1.amazonaws.com` (a bucket named
/// `sns`, which anyone could once write to) out.
fn is_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    let [prefix, words @ .., number] = parts.as_slice() else {
        return false;
    };
    prefix.len() == 2
        && prefix.bytes().all(|b| b.is_ascii_lowercase())
        && !words.is_empty()
        && words
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        && !number.is_empty()
        && number.len() <= 2
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// The most hex digits a certificate's name may have. SNS' have 32; the
/// bound keeps a caller from making each URL (kept as a key of the verifier's
/// caches, quoted in replies and logs) as long as a body allows.
const MAX_CERT_NAME_HEX: usize = 64;

/// The longest certificate URL taken, SNS' or a stand-in's (SNS' own are
/// about 100 bytes).
const MAX_CERT_URL_LEN: usize = 1024;

/// `/SimpleNotificationService-<lowercase hex>.pem`, exactly, with at most
/// [`MAX_CERT_NAME_HEX`] digits.
fn is_sns_cert_path(path: &str) -> bool {
    path.strip_prefix("/SimpleNotificationService-")
        .and_then(|rest| rest.strip_suffix(".pem"))
        .is_some_and(|hex| {
            (1..=MAX_CERT_NAME_HEX).contains(&hex.len())
                && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT_PATH: &str = "/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem";

    fn sns() -> TrustedHosts {
        TrustedHosts::new(None)
    }

    fn stand_in(base: &str) -> TrustedHosts {
        TrustedHosts::new(Some(Url::parse(base).unwrap()))
    }

    /// A SubscribeURL's `Token` is the subscription's secret: `Debug` masks it.
    #[test]
    fn a_trusted_url_debug_masks_its_query() {
        let url = "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-east-1:123456789012:orders&Token=s3cret-token";
        let trusted = sns().check_subscribe_url(url).unwrap();
        let shown = format!("{trusted:?}");
        assert!(
            shown.contains("sns.us-east-1.amazonaws.com") && !shown.contains("s3cret"),
            "{shown}"
        );
    }

    /// Refused without a stand-in, a local stand-in's URL says how to trust it.
    #[test]
    fn a_stand_ins_url_refused_says_how_to_trust_one() {
        for url in [
            "http://127.0.0.1:4000/SimpleNotificationService-0123abcd.pem",
            "https://localhost/SimpleNotificationService-0123abcd.pem",
            "http://hq:4000/SimpleNotificationService-0123abcd.pem",
            "https://10.0.3.7:4566/SimpleNotificationService-0123abcd.pem",
        ] {
            let refused = sns().check_cert_url(url).unwrap_err().to_string();
            assert!(refused.contains("set AWS_ENDPOINT_URL_SNS"), "{refused}");
        }
        let confirm = "http://127.0.0.1:4000/?Action=ConfirmSubscription&Token=s3cret";
        let refused = sns().check_subscribe_url(confirm).unwrap_err().to_string();
        assert!(refused.contains("set AWS_ENDPOINT_URL_SNS"), "{refused}");
        // Its Token, the subscription's secret, is not shown.
        assert!(
            refused.contains("Token=***") && !refused.contains("s3cret"),
            "{refused}"
        );
        // A public host, a forger's most likely, gets no advice to trust it.
        for url in [
            "https://attacker.example/SimpleNotificationService-0123abcd.pem",
            "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123abcd.pem",
            "https://203.0.113.9/SimpleNotificationService-0123abcd.pem",
        ] {
            let refused = sns().check_cert_url(url).unwrap_err().to_string();
            assert!(!refused.contains("AWS_ENDPOINT_URL_SNS"), "{refused}");
        }
    }

    #[test]
    fn real_sns_cert_urls_are_accepted() {
        for host in [
            "sns.us-east-1.amazonaws.com",
            "sns.us-west-2.amazonaws.com",
            "sns.cn-north-1.amazonaws.com.cn",
            "sns.us-gov-west-1.amazonaws.com",
            "sns.ap-southeast-2.amazonaws.com",
            "sns.il-central-1.amazonaws.com",
        ] {
            let url = format!("https://{host}{CERT_PATH}");
            assert!(sns().check_cert_url(&url).is_ok(), "{url}");
        }
    }

    #[test]
    fn look_alike_hosts_are_rejected() {
        for host in [
            "sns.amazonaws.com",
            "sns.amazonaws.com.evil.com",
            "sns.us-east-1.amazonaws.com.evil.com",
            "evil.com",
            "sns.us-east-1.evil.com",
            "xsns.us-east-1.amazonaws.com",
            "evil.sns.us-east-1.amazonaws.com",
            // S3 hosts a bucket named `sns` could live on.
            "sns.s3.amazonaws.com",
            "sns.s3-us-east-1.amazonaws.com",
            "sns.s3.us-east-1.amazonaws.com",
            "sns.s3-external-1.amazonaws.com",
            "s3.amazonaws.com",
            "sns.us-east.amazonaws.com",
            "sns.east-1.amazonaws.com",
            "sns.us-east-1a.amazonaws.com",
            "sns.us--1.amazonaws.com",
            "sns.us-east-1.amazonaws.cn",
            "127.0.0.1",
        ] {
            let url = format!("https://{host}{CERT_PATH}");
            assert!(sns().check_cert_url(&url).is_err(), "{url}");
        }
    }

    #[test]
    fn cert_urls_other_than_plain_https_to_the_pem_are_rejected() {
        for url in [
            format!("http://sns.us-east-1.amazonaws.com{CERT_PATH}"),
            format!("ftp://sns.us-east-1.amazonaws.com{CERT_PATH}"),
            format!("https://user@sns.us-east-1.amazonaws.com{CERT_PATH}"),
            format!("https://user:pw@sns.us-east-1.amazonaws.com{CERT_PATH}"),
            format!("https://sns.us-east-1.amazonaws.com:8443{CERT_PATH}"),
            format!("https://sns.us-east-1.amazonaws.com{CERT_PATH}?x=1"),
            format!("https://sns.us-east-1.amazonaws.com{CERT_PATH}?"),
            format!("https://sns.us-east-1.amazonaws.com{CERT_PATH}#f"),
            format!("https://sns.us-east-1.amazonaws.com/bucket{CERT_PATH}"),
            "https://sns.us-east-1.amazonaws.com/x.pem".to_owned(),
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-.pem".to_owned(),
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-xyz.pem".to_owned(),
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-ABC.pem".to_owned(),
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem/".to_owned(),
            "https://sns.us-east-1.amazonaws.com/?x=/SimpleNotificationService-abc.pem".to_owned(),
            "/SimpleNotificationService-abc.pem".to_owned(),
            String::new(),
        ] {
            assert!(sns().check_cert_url(&url).is_err(), "{url}");
        }
    }

    #[test]
    fn cert_names_longer_than_any_sns_uses_are_rejected() {
        let url = |digits: usize| {
            format!(
                "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-{}.pem",
                "a".repeat(digits)
            )
        };
        assert!(sns().check_cert_url(&url(MAX_CERT_NAME_HEX)).is_ok());
        for digits in [MAX_CERT_NAME_HEX + 1, 500_000] {
            let refused = sns()
                .check_cert_url(&url(digits))
                .map_err(|e| e.to_string().len());
            assert!(
                matches!(refused, Err(len) if len < 400),
                "{digits} digits: {refused:?}"
            );
        }
    }

    #[test]
    fn a_stand_ins_certificate_url_is_at_most_a_kibibyte() {
        let stand_in = TrustedHosts::new(Some(Url::parse("http://127.0.0.1:4000/").unwrap()));
        let url = |len: usize| {
            let name = "a".repeat(len - "http://127.0.0.1:4000/.pem".len());
            format!("http://127.0.0.1:4000/{name}.pem")
        };
        assert!(stand_in.check_cert_url(&url(MAX_CERT_URL_LEN)).is_ok());
        for len in [MAX_CERT_URL_LEN + 1, 400_000] {
            let refused = stand_in.check_cert_url(&url(len)).map_err(|e| e.to_string());
            assert!(
                matches!(&refused, Err(why) if why.contains(&format!("at most {MAX_CERT_URL_LEN} bytes")) && why.len() < 400),
                "{len} bytes: {refused:?}"
            );
        }
    }

    #[test]
    fn rejection_says_which_url_and_why() {
        let err = sns().check_cert_url("http://evil.example/x.pem").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("http://evil.example/x.pem"), "{text}");
        assert!(text.contains("https"), "{text}");
        let long = format!("https://evil.example/{}", "a".repeat(10_000));
        assert!(sns().check_cert_url(&long).unwrap_err().to_string().len() < 400);
    }

    #[test]
    fn stand_in_replaces_sns_hosts() {
        let hosts = stand_in("http://127.0.0.1:4566");
        assert!(
            hosts
                .check_cert_url("http://127.0.0.1:4566/certs/any.pem")
                .is_ok()
        );
        assert!(
            hosts
                .check_cert_url(&format!("http://127.0.0.1:4566{CERT_PATH}"))
                .is_ok()
        );
        for url in [
            format!("http://sns.us-east-1.amazonaws.com{CERT_PATH}"),
            format!("https://sns.s3.amazonaws.com{CERT_PATH}"),
            "https://sns.us-east-1.amazonaws.com/a.pem".to_owned(),
            "https://127.0.0.1:4566/a.pem".to_owned(),
            "http://127.0.0.1:4567/a.pem".to_owned(),
            "http://127.0.0.1/a.pem".to_owned(),
            "http://localhost:4566/a.pem".to_owned(),
            "http://user@127.0.0.1:4566/a.pem".to_owned(),
            "http://127.0.0.1:4566/a.txt".to_owned(),
            "http://127.0.0.1:4566/a.pem?x".to_owned(),
        ] {
            assert!(hosts.check_cert_url(&url).is_err(), "{url}");
        }
    }

    #[test]
    fn under_a_stand_in_its_own_urls_are_fetched_as_they_are() {
        let hosts = stand_in("http://127.0.0.1:4566");
        let localstack = format!("http://127.0.0.1:4566/_aws/sns{CERT_PATH}");
        let trusted = hosts.check_cert_url(&localstack).unwrap();
        assert_eq!(trusted.url().as_str(), localstack);
        assert!(trusted.headers().is_empty());
        let confirm = "http://127.0.0.1:4566/?Action=ConfirmSubscription&Token=t";
        let trusted = hosts.check_subscribe_url(confirm).unwrap();
        assert_eq!(trusted.url().as_str(), confirm);
        assert!(trusted.headers().is_empty());
    }

    #[test]
    fn under_a_stand_in_sns_urls_are_fetched_from_it() {
        for (base, prefix) in [
            ("http://127.0.0.1:4566", "http://127.0.0.1:4566"),
            ("http://hq:8080/sns/", "http://hq:8080/sns"),
        ] {
            let hosts = stand_in(base);
            // moto's shape: the real host, which must never be asked.
            let trusted = hosts
                .check_cert_url(&format!("https://sns.eu-west-3.amazonaws.com{CERT_PATH}"))
                .unwrap();
            assert_eq!(trusted.url().as_str(), format!("{prefix}{CERT_PATH}"));
            let headers = trusted.headers();
            let [(name, scope)] = headers.as_slice() else {
                panic!("{headers:?}");
            };
            assert_eq!(*name, "authorization");
            assert!(scope.contains("/eu-west-3/sns/aws4_request"), "{scope}");

            let confirm = "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-east-1:123456789012:orders&Token=t";
            let trusted = hosts.check_subscribe_url(confirm).unwrap();
            assert_eq!(
                trusted.url().as_str(),
                format!(
                    "{prefix}/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-east-1:123456789012:orders&Token=t"
                )
            );
            assert_eq!(trusted.headers().len(), 1);
            // The real-SNS rules still hold for what is redirected.
            assert!(
                hosts
                    .check_subscribe_url("https://sns.us-east-1.amazonaws.com/?Action=Publish")
                    .is_err()
            );
            assert!(
                hosts
                    .check_subscribe_url("https://evil.example/?Action=ConfirmSubscription")
                    .is_err()
            );
        }
    }

    #[test]
    fn without_a_stand_in_urls_are_fetched_as_they_are() {
        let url = format!("https://sns.us-east-1.amazonaws.com{CERT_PATH}");
        let trusted = sns().check_cert_url(&url).unwrap();
        assert_eq!(trusted.url().as_str(), url);
        assert!(trusted.headers().is_empty());
    }

    #[test]
    fn stand_in_path_is_a_segment_prefix() {
        for base in ["http://hq:8080/sns", "http://hq:8080/sns/"] {
            let hosts = stand_in(base);
            assert!(hosts.check_cert_url("http://hq:8080/sns/a.pem").is_ok());
            assert!(hosts.check_cert_url("http://hq:8080/snsx/a.pem").is_err());
            assert!(hosts.check_cert_url("http://hq:8080/a.pem").is_err());
            assert!(hosts.check_cert_url("http://hq:8080/sns/../a.pem").is_err());
            assert!(
                hosts
                    .check_subscribe_url("http://hq:8080/sns/confirm?t=1")
                    .is_ok()
            );
            assert!(hosts.check_subscribe_url("http://hq:8080/other").is_err());
        }
    }

    #[test]
    fn subscribe_urls_on_sns_hosts_with_confirm_action_are_accepted() {
        for url in [
            "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-west-2:123456789012:orders&Token=2336412f37",
            "https://sns.cn-north-1.amazonaws.com.cn/?Token=t&Action=ConfirmSubscription",
        ] {
            assert!(sns().check_subscribe_url(url).is_ok(), "{url}");
        }
    }

    #[test]
    fn other_subscribe_urls_are_rejected() {
        for url in [
            "http://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription",
            "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe",
            "https://sns.us-west-2.amazonaws.com/?Action=Publish&Message=x",
            "https://sns.us-west-2.amazonaws.com/",
            "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&Action=Publish",
            "https://sns.us-west-2.amazonaws.com/?action=ConfirmSubscription",
            "https://u:p@sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription",
            "https://sns.us-west-2.amazonaws.com:444/?Action=ConfirmSubscription",
            "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription#x",
            "https://evil.example/?Action=ConfirmSubscription",
            "https://sns.s3.amazonaws.com/?Action=ConfirmSubscription",
            "https://169.254.169.254/?Action=ConfirmSubscription",
            "not a url",
        ] {
            assert!(sns().check_subscribe_url(url).is_err(), "{url}");
        }
    }
}
