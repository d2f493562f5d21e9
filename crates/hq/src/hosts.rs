//! The names HQ answers to. A page on another site can point its own name
//! at HQ's address once it has loaded (DNS rebinding): the browser then
//! takes HQ for that site, and the page's script may call HQ and read the
//! answers, with a credential it can guess (compose's local default) or
//! none, from behind the loopback bind or firewall that keeps the site
//! itself out. Its requests carry the page's name in `Host`, so HQ refuses
//! a name that is not its own: 421, as Vite, webpack's dev server and
//! Jupyter refuse one.
//!
//! HQ's own names: its public URL's host (`HQ_PUBLIC_URL`), `localhost`
//! and any name under it (RFC 6761 keeps them on this machine), those
//! given in `HQ_ALLOWED_HOSTS`, and every IP address (no page loads from a
//! bare address and then moves it: a load balancer's health check and a
//! caller that names HQ by its address stay served).

use axum::http::HeaderValue;
use axum::http::uri::Authority;
use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;
use url::Url;

/// The setting that adds names HQ answers to.
pub const ALLOWED_HOSTS_ENV: &str = "HQ_ALLOWED_HOSTS";

/// One entry of [`ALLOWED_HOSTS_ENV`]: a DNS name, or `*` for any name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedHost {
    /// Any name: HQ answers whatever `Host` names (behind a front that
    /// checks it, or where no browser reaches HQ).
    Any,
    /// A DNS name, lower-case, without a port or a trailing dot.
    Name(String),
}

/// Why an [`AllowedHost`] was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "{0} is not a DNS name (letters, digits, hyphens and dots, no port: `hq.example.com`) nor `*` \
     (any name)"
)]
pub struct NotAHostName(String);

impl FromStr for AllowedHost {
    type Err = NotAHostName;

    fn from_str(text: &str) -> Result<Self, NotAHostName> {
        let text = text.trim();
        if text == "*" {
            return Ok(Self::Any);
        }
        let name = text.strip_suffix('.').unwrap_or(text);
        let label_ok = |label: &str| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if name.len() <= 253 && name.split('.').all(label_ok) {
            Ok(Self::Name(name.to_ascii_lowercase()))
        } else {
            Err(NotAHostName(contracts::quote::quoted(text).owned()))
        }
    }
}

impl fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("*"),
            Self::Name(name) => f.write_str(name),
        }
    }
}

/// The names one HQ answers to (see the module's documentation).
#[derive(Debug, Clone, Default)]
pub struct HostNames {
    /// `*` was given: every name.
    any: bool,
    /// The public URL's host and the names given, lower-case.
    names: BTreeSet<String>,
}

impl HostNames {
    /// The names of an HQ reached at `public_url`, and those `given`.
    pub fn new(public_url: &Url, given: &[AllowedHost]) -> Self {
        let mut names = Self::default();
        if let Some(url::Host::Domain(name)) = public_url.host() {
            names.names.insert(trimmed(name).to_ascii_lowercase());
        }
        for host in given {
            match host {
                AllowedHost::Any => names.any = true,
                AllowedHost::Name(name) => {
                    names.names.insert(name.clone());
                }
            }
        }
        names
    }

    /// Whether a request whose `Host` is `host` is answered. A request with
    /// none (HTTP/1.0; the serve loop refuses HTTP/1.1 without one) names
    /// nothing a page could have moved.
    pub fn answers(&self, host: Option<&HeaderValue>) -> bool {
        let Some(host) = host else {
            return true;
        };
        if self.any {
            return true;
        }
        let Some(authority) = host.to_str().ok().and_then(|host| Authority::from_str(host).ok()) else {
            return false;
        };
        let name = authority.host();
        if name.starts_with('[') {
            // An IPv6 literal.
            return true;
        }
        let name = trimmed(name).to_ascii_lowercase();
        name.parse::<Ipv4Addr>().is_ok()
            || name == "localhost"
            || name.ends_with(".localhost")
            || self.names.contains(&name)
    }
}

/// `name` without the trailing dot of a fully qualified name.
fn trimmed(name: &str) -> &str {
    name.strip_suffix('.').unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(names: &HostNames, host: &str) -> bool {
        names.answers(Some(&HeaderValue::from_str(host).unwrap()))
    }

    #[test]
    fn its_own_names_and_addresses_only() {
        let public = Url::parse("http://HQ:4000/").unwrap();
        let names = HostNames::new(&public, &["extra.example.com".parse().unwrap()]);
        for host in [
            "hq:4000",
            "HQ",
            "hq.",
            "extra.example.com",
            "Extra.Example.Com.:80",
            "localhost:4000",
            "LOCALHOST.",
            "portal.localhost",
            "127.0.0.1:4000",
            "10.0.3.7",
            "[::1]:4000",
        ] {
            assert!(answers(&names, host), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:4000",
            "hq.evil.example",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "",
            "a b",
        ] {
            assert!(!answers(&names, host), "{host}");
        }
        assert!(names.answers(None), "HTTP/1.0 with no Host");
        let any = HostNames::new(&public, &[AllowedHost::Any]);
        assert!(answers(&any, "evil.example"));
    }

    #[test]
    fn a_setting_names_hosts_or_any() {
        assert_eq!("*".parse(), Ok(AllowedHost::Any));
        assert_eq!(
            " HQ.Example.com. ".parse(),
            Ok(AllowedHost::Name("hq.example.com".into()))
        );
        for refused in ["", "hq:4000", "http://hq/", "-hq", "a..b", "*.example.com"] {
            assert!(refused.parse::<AllowedHost>().is_err(), "{refused}");
        }
    }
}
