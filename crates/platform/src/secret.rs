//! Secrets that must never reach a log line.

use std::fmt;

/// The fulfillment API key. `Debug` prints a placeholder, and there is no
/// `Display`, so formatting it into a log cannot leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key itself, for the one place that sends it: the request header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
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
    }
}
