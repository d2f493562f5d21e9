//! Secrets that must never reach a log line.

use std::fmt;
use subtle::ConstantTimeEq as _;

/// Declares a secret string type: `Debug` prints a placeholder and there is
/// no `Display`, so formatting one into a log cannot leak it.
macro_rules! secret {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq)]
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

impl HookSecret {
    /// Whether `presented` is this secret, compared in constant time (a
    /// length mismatch returns early: the length is not the secret).
    pub fn matches(&self, presented: &[u8]) -> bool {
        bool::from(self.0.as_bytes().ct_eq(presented))
    }
}

/// The glue hook's secrets as its setting holds them: one, or during a
/// rotation two or more, comma-separated. The first is the one sent; a
/// caller presenting any of them is let in. So a secret is rotated in three
/// rolling deployments, none of which needs the services in any order:
/// `OLD,NEW`, then `NEW,OLD`, then `NEW` (docs/aws.md, "Rotating the glue
/// hook's secret").
#[derive(Debug, Clone, PartialEq, Eq)]
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

#[cfg(test)]
mod tests {
    use super::*;

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
