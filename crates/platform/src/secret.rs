//! Secrets that must never reach a log line, and URLs that may carry one.

use std::fmt;
use subtle::ConstantTimeEq as _;
use url::Url;

/// Declares a secret string type: `Debug` prints a placeholder and there is
/// no `Display`, so formatting one into a log cannot leak it; and no `==`,
/// whose early return would time a guess (a check of what a caller
/// presents goes through a constant-time comparison, as
/// [`HookSecret::matches`] does).
macro_rules! secret {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(String);

        impl $name {
            /// Wraps a secret.
            pub fn new(secret: impl Into<String>) -> Self {
                Self(secret.into())
            }

            /// The secret itself: for the request header that sends it and
            /// for resolving and checking the setting, never for a log.
            pub fn expose(&self) -> &str {
                &self.0
            }
        }

        /// So that a command line parses a secret setting straight into
        /// its type, whose `Debug` cannot show it.
        impl From<String> for $name {
            fn from(secret: String) -> Self {
                Self(secret)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }
    };
}

secret!(
    /// The fulfillment API key.
    ApiKey
);

secret!(
    /// The glue hook's shared secret: the microservices send it, the monolith
    /// checks it (docs/contract.md, What each order does).
    HookSecret
);

secret!(
    /// The glue hook's secret setting as given: one secret, or during a
    /// rotation several, comma-separated; [`crate::settings::hook_secrets`]
    /// reads it into [`HookSecrets`].
    HookSecretSetting
);

impl HookSecret {
    /// Whether `presented` is this secret ([`same_secret`]).
    pub fn matches(&self, presented: &[u8]) -> bool {
        same_secret(self.0.as_bytes(), presented)
    }
}

/// Whether a credential a caller `presented` is the `expected` one, taking
/// the same time wherever they differ: both are hashed first, so not even
/// their lengths are compared directly. Every secret a caller presents is
/// checked here (the glue hook's, HQ's admin credential, a subscription's
/// confirmation token).
pub fn same_secret(expected: &[u8], presented: &[u8]) -> bool {
    use aws_lc_rs::digest::{SHA256, digest};
    let expected = digest(&SHA256, expected);
    let presented = digest(&SHA256, presented);
    expected.as_ref().ct_eq(presented.as_ref()).into()
}

/// The glue hook's secrets as its setting holds them: one, or during a
/// rotation two or more, comma-separated. The first is the one sent; a
/// caller presenting any of them is let in. So a secret is rotated in three
/// rolling deployments, none of which needs the services in any order:
/// `OLD,NEW`, then `NEW,OLD`, then `NEW` (docs/aws.md, "Rotating the glue
/// hook's secret").
#[derive(Debug, Clone)]
pub struct HookSecrets {
    /// The secret sent, and let in.
    sent: HookSecret,
    /// The others let in: a rotation's old or next secret.
    others: Vec<HookSecret>,
}

impl HookSecrets {
    /// `sent`, sent and let in, and `others`, let in too.
    pub fn new(sent: HookSecret, others: impl IntoIterator<Item = HookSecret>) -> Self {
        Self {
            sent,
            others: others.into_iter().collect(),
        }
    }

    /// The secret a microservice sends.
    pub fn sent(&self) -> &HookSecret {
        &self.sent
    }

    /// Whether `presented` is one of the secrets. Each is compared, in
    /// constant time, whichever matches: the time taken does not say which.
    pub fn matches(&self, presented: &[u8]) -> bool {
        self.others
            .iter()
            .fold(self.sent.matches(presented), |matched, secret| {
                matched | secret.matches(presented)
            })
    }
}

impl From<HookSecret> for HookSecrets {
    fn from(secret: HookSecret) -> Self {
        Self::new(secret, [])
    }
}

/// What stands in for a secret in a [`MaskedUrl`] as shown.
const MASK: &str = "***";

/// A URL that may carry a secret: a password in its userinfo, a token in
/// its query or fragment (an operator's API or glue-hook URL, a
/// subscription's endpoint, an SNS `SubscribeURL` with its `Token`).
/// `Display` and `Debug` show it masked, `http://***@host/path?token=***`,
/// so a log line or a settings `Debug` that formats one cannot leak it;
/// [`MaskedUrl::expose`] is the URL itself, for the call that uses it.
#[derive(Clone, PartialEq, Eq)]
pub struct MaskedUrl(Url);

impl MaskedUrl {
    /// Wraps a URL.
    pub fn new(url: Url) -> Self {
        Self(url)
    }

    /// The URL itself: for the request that goes to it and for checks on
    /// its parts, never for a log.
    pub fn expose(&self) -> &Url {
        &self.0
    }

    /// A URL given as text in a setting not yet parsed, shown as a
    /// [`MaskedUrl`] is: for a `Debug` of raw settings. Text with no scheme
    /// (a bare host, as `monolithUrl` may be) is read as `http://`; text
    /// that is no URL even so is not shown (a URL that does not parse
    /// read again after `http://` would show its password as a path).
    pub fn shown_from_text(text: &str) -> String {
        Url::parse(&crate::settings::with_http_scheme(text))
            .ok()
            .filter(Url::has_host)
            .map_or_else(|| "<not a URL>".to_owned(), |url| Self(url).shown())
    }

    /// The URL with userinfo, query values and the fragment masked.
    fn shown(&self) -> String {
        let mut shown = self.0.clone();
        if !shown.username().is_empty() || shown.password().is_some() {
            // Fails only for a URL without a host, which has no userinfo.
            let _ = shown.set_password(None);
            let _ = shown.set_username(MASK);
        }
        if let Some(query) = self.0.query() {
            let masked: Vec<String> = query
                .split('&')
                .filter(|part| !part.is_empty())
                .map(|part| match part.split_once('=') {
                    Some((name, _)) => format!("{name}={MASK}"),
                    // A bare word (`?s3cret`) is a value, not a name.
                    None => MASK.to_owned(),
                })
                .collect();
            shown.set_query(Some(&masked.join("&")));
        }
        if shown.fragment().is_some() {
            shown.set_fragment(Some(MASK));
        }
        shown.to_string()
    }
}

impl From<Url> for MaskedUrl {
    fn from(url: Url) -> Self {
        Self(url)
    }
}

impl fmt::Display for MaskedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown())
    }
}

impl fmt::Debug for MaskedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.shown(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_urls_secrets_are_masked_wherever_it_is_shown() {
        let masked = |url: &str| MaskedUrl::new(Url::parse(url).unwrap()).to_string();
        assert_eq!(masked("http://api/receiving/"), "http://api/receiving/");
        assert_eq!(
            masked("https://user:s3cret@api:8443/receiving/?key=s3cret#s3cret"),
            "https://***@api:8443/receiving/?key=***#***"
        );
        // A bare word is the secret itself, not a name to keep.
        assert_eq!(masked("http://team/order/?s3cr3tT0ken"), "http://team/order/?***");
        assert_eq!(
            masked("http://team/order/?a=1&s3cr3t&&b="),
            "http://team/order/?a=***&***&b=***"
        );
        let url = MaskedUrl::new(Url::parse("http://u:s3cret@api/?k=s3cret").unwrap());
        assert_eq!(format!("{url:?}"), "\"http://***@api/?k=***\"");
        assert_eq!(url.expose().as_str(), "http://u:s3cret@api/?k=s3cret");
    }

    #[test]
    fn a_url_setting_not_yet_parsed_is_shown_masked() {
        assert_eq!(
            MaskedUrl::shown_from_text("alb.example.com"),
            "http://alb.example.com/"
        );
        assert_eq!(
            MaskedUrl::shown_from_text("https://u:s3cret@alb/?t=s3cret"),
            "https://***@alb/?t=***"
        );
        for broken in ["http://[::1", "https://u:s3cret@[::1/?t=s3cret"] {
            assert_eq!(MaskedUrl::shown_from_text(broken), "<not a URL>");
        }
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = ApiKey::new("s3cr3t-key");
        assert!(!format!("{key:?}").contains("s3cr3t"));
        assert_eq!(key.expose(), "s3cr3t-key");
        let secret = HookSecret::new("s3cr3t-hook");
        assert_eq!(format!("{secret:?}"), "HookSecret(<redacted>)");
    }

    #[test]
    fn hook_secret_matches_only_itself() {
        let secret = HookSecret::new("0123456789abcdef");
        assert!(secret.matches(b"0123456789abcdef"));
        for wrong in [
            &b""[..],
            b"0123456789abcdeF",
            b"0123456789abcdef0",
            b"0123456789abcde",
        ] {
            assert!(!secret.matches(wrong));
        }
    }

    #[test]
    fn hook_secrets_send_the_first_and_let_in_any() {
        let secrets = HookSecrets::new(
            HookSecret::new("new-secret-0123456789"),
            [HookSecret::new("old-secret-0123456789")],
        );
        assert_eq!(secrets.sent().expose(), "new-secret-0123456789");
        assert!(secrets.matches(b"new-secret-0123456789"));
        assert!(secrets.matches(b"old-secret-0123456789"));
        assert!(!secrets.matches(b"another-secret-01234"));
        assert!(!secrets.matches(b""));
        assert!(!format!("{secrets:?}").contains("secret-0123456789"));
    }
}
