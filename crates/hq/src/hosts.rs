//! The names HQ answers to. A page on another site can point its own name
//! at HQ's address once it has loaded (DNS rebinding): the browser then
//! takes HQ for that site, and the page's script may call HQ and read the
//! answers, with a credential it can guess (compose's local default) or
//! none, from behind the loopback bind or firewall that keeps the site
//! itself out. Its requests carry the page's name in `Host`, so HQ refuses
//! a name that is not its own, with 421 (Vite, webpack's dev server and
//! Jupyter refuse such names too).
//!
//! HQ's own names: its public URL's host (`HQ_PUBLIC_URL`), `localhost`
//! and any name under it (RFC 6761 keeps them on this machine), those
//! given in `HQ_ALLOWED_HOSTS`, and every IP address (no page loads from a
//! bare address and then moves it: a load balancer's health check and a
//! caller that names HQ by its address stay served).

use axum::http::uri::Authority;
use std::collections::BTreeSet;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
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

    /// The name HQ does not answer to in a request's `authority` (its
    /// target's in absolute form, which RFC 9112 puts before `Host`, or
    /// else its `Host`): `None` when HQ answers it. Text that names no host
    /// is given whole. A request with neither, or an empty `Host` (HTTP/1.0;
    /// the serve loop refuses HTTP/1.1 without `Host`), names nothing a page
    /// could have moved.
    pub fn not_ours<'a>(&self, authority: Option<&'a str>) -> Option<&'a str> {
        // An empty `Host` (RFC 9112 allows it) names nothing either: a
        // browser always names the page's host.
        let authority = authority.filter(|authority| !authority.is_empty())?;
        if self.any {
            return None;
        }
        let Ok(parsed) = Authority::from_str(authority) else {
            return Some(authority);
        };
        // A slice of `authority`, for the refusal to quote: the host, after
        // any user name (which the serve loop refuses in `Host`).
        let start = authority.rfind('@').map_or(0, |at| at + 1);
        let name = authority
            .get(start..start + parsed.host().len())
            .unwrap_or(authority);
        let bare = trimmed(name).to_ascii_lowercase();
        let ours = match name.strip_prefix('[').and_then(|name| name.strip_suffix(']')) {
            Some(literal) => literal.parse::<Ipv6Addr>().is_ok(),
            None => {
                bare.parse::<Ipv4Addr>().is_ok()
                    || bare == "localhost"
                    || bare.ends_with(".localhost")
                    || self.names.contains(&bare)
            }
        };
        (!ours).then_some(name)
    }
}

/// The names, as HQ's start-up line gives them: "localhost, IP addresses,
/// hq", or "any name".
impl fmt::Display for HostNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.any {
            return f.write_str("any name");
        }
        f.write_str("localhost, IP addresses")?;
        self.names.iter().try_for_each(|name| write!(f, ", {name}"))
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
        names.not_ours(Some(host)).is_none()
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
            "10.0.0.7",
            "[::1]:4000",
            "[fe80::1]",
        ] {
            assert!(answers(&names, host), "{host}");
        }
        for host in [
            "evil.example",
            "hq.evil.example",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "[evil.example]",
            "[v1.evil]",
            "a b",
        ] {
            assert!(!answers(&names, host), "{host}");
        }
        // The name alone is quoted, without its port; text that names no
        // host, whole.
        assert_eq!(names.not_ours(Some("Evil.Example:4000")), Some("Evil.Example"));
        assert_eq!(names.not_ours(Some("")), None);
        assert_eq!(names.not_ours(Some("a b")), Some("a b"));
        assert_eq!(names.not_ours(Some("u@evil.example:1")), Some("evil.example"));
        assert_eq!(names.not_ours(None), None, "HTTP/1.0 with no Host");
        assert_eq!(
            names.to_string(),
            "localhost, IP addresses, extra.example.com, hq"
        );
        let any = HostNames::new(&public, &[AllowedHost::Any]);
        assert!(answers(&any, "evil.example"));
        assert_eq!(any.to_string(), "any name");
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
