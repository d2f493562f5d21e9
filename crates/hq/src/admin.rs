//! HQ's admin credential: the bearer token that issuing keys, reading every
//! key's totals, injecting and reading faults, subscribing, unsubscribing,
//! publishing and the dashboard's data require (`Authorization: Bearer <token>`).
//!
//! It is given by `HQ_ADMIN_TOKEN` (compose, ECS), or else made at first
//! start as 32 random bytes in hex and kept in the data directory's
//! [`TOKEN_FILE`], mode 0600. It is compared in constant time, never logged,
//! and its `Debug` is redacted.

use crate::secret_file;
use std::fmt;
use std::path::Path;

/// File name of the admin credential inside the data directory.
pub const TOKEN_FILE: &str = "admin-token";
/// The environment variable that gives the credential instead of the file.
pub const TOKEN_ENV: &str = "HQ_ADMIN_TOKEN";
/// The shortest credential accepted: a guessable one protects nothing.
pub const MIN_LEN: usize = 16;
/// The longest credential accepted (it travels in a header).
pub const MAX_LEN: usize = 512;

/// Why a credential was refused or could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum AdminTokenError {
    /// The text is no usable credential (what is wrong, never the text);
    /// where it came from, its setting or its file, is said around it.
    #[error("an admin credential is {MIN_LEN} to {MAX_LEN} visible ASCII characters, without spaces")]
    Malformed,
    /// The credential file holds no usable credential.
    #[error("admin credential file {path}: {source}")]
    MalformedFile {
        /// The file.
        path: String,
        /// What is wrong.
        source: Box<AdminTokenError>,
    },
    /// The credential file could not be read or written.
    #[error("admin credential file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
}

/// The admin credential. `Debug` prints a placeholder and there is no
/// `Display`, so formatting it into a log cannot leak it.
#[derive(Clone)]
pub struct AdminToken(String);

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

impl AdminToken {
    /// `text` (trimmed) as a credential, if it is one.
    pub fn parse(text: &str) -> Result<Self, AdminTokenError> {
        let text = text.trim();
        if (MIN_LEN..=MAX_LEN).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(Self(text.to_owned()))
        } else {
            Err(AdminTokenError::Malformed)
        }
    }

    /// A fresh credential: 32 random bytes in hex.
    pub fn generate() -> Self {
        Self(hex::encode(rand::random::<[u8; 32]>()))
    }

    /// The credential in `dir`'s [`TOKEN_FILE`], made there first if missing.
    pub fn load_or_create(dir: &Path) -> Result<Self, AdminTokenError> {
        let path = dir.join(TOKEN_FILE);
        let io = |source| AdminTokenError::Io {
            path: path.display().to_string(),
            source,
        };
        if path.exists() {
            return Self::parse(&secret_file::read(&path).map_err(io)?).map_err(|malformed| {
                AdminTokenError::MalformedFile {
                    path: path.display().to_string(),
                    source: Box::new(malformed),
                }
            });
        }
        let token = Self::generate();
        secret_file::write(&path, &token.0).map_err(io)?;
        tracing::info!(path = %path.display(), "made HQ's admin credential (first start only)");
        Ok(token)
    }

    /// The credential itself, for the places that hand it to a person or
    /// send it: the launcher's banner, a client's header.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether an `Authorization` header value is `Bearer <this credential>`.
    /// Compared as every credential is ([`platform::secret::same_secret`]).
    pub fn authorizes(&self, authorization: &str) -> bool {
        let Some((scheme, presented)) = authorization.trim().split_once(' ') else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case("bearer") {
            return false;
        }
        platform::secret::same_secret(self.0.as_bytes(), presented.trim().as_bytes())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a panic is a failed test
mod tests {
    use super::*;

    #[test]
    fn only_the_bearer_of_this_token_is_authorized() {
        let token = AdminToken::parse("  0123456789abcdef-admin ").unwrap();
        assert!(token.authorizes("Bearer 0123456789abcdef-admin"));
        assert!(token.authorizes("bearer  0123456789abcdef-admin "));
        for refused in [
            "",
            "Bearer",
            "Bearer ",
            "0123456789abcdef-admin",
            "Basic 0123456789abcdef-admin",
            "Bearer 0123456789abcdef-admiN",
            "Bearer 0123456789abcdef-admin2",
            "Bearer 0123456789abcdef-admi",
        ] {
            assert!(!token.authorizes(refused), "{refused:?}");
        }
        assert!(!format!("{token:?}").contains("0123"));
    }

    #[test]
    fn short_or_spaced_tokens_are_refused() {
        for bad in ["", "short", "has a space in it here", "tab\tinside-0123456789"] {
            assert!(AdminToken::parse(bad).is_err(), "{bad:?}");
        }
        let generated = AdminToken::generate();
        assert_eq!(generated.expose().len(), 64);
        assert!(AdminToken::parse(generated.expose()).is_ok());
    }

    #[test]
    fn made_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = AdminToken::load_or_create(dir.path()).unwrap();
        let again = AdminToken::load_or_create(dir.path()).unwrap();
        assert_eq!(first.expose(), again.expose());
    }
}
