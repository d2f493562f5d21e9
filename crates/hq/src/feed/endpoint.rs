//! A subscription's endpoint: the URL deliveries go to, which may carry
//! secrets (`http://user:password@host/`, `?token=...`). Only delivery sees
//! the URL itself; everywhere else (listings, logs, errors, `Debug`) it is
//! shown masked: `http://***@host/path?token=***`.

use super::FeedError;
use platform::MaskedUrl;
use serde::{Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use url::Url;

/// An http(s) URL with a host that HQ delivers to. `Display`, `Debug` and
/// `Serialize` show it masked; [`Endpoint::url`] is the URL itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint(MaskedUrl);

impl Endpoint {
    /// `text` as an endpoint; the error quotes nothing of `text`, which
    /// may hold a password.
    pub fn parse(text: &str) -> Result<Self, FeedError> {
        platform::settings::http_url(text)
            .map(|url| Self(url.into()))
            .map_err(|_| FeedError::BadEndpoint)
    }

    /// The URL itself, for the one place that uses it: the delivery.
    pub fn url(&self) -> &Url {
        self.0.expose()
    }

    /// The URL with its userinfo, query values and fragment masked.
    pub fn shown(&self) -> String {
        self.0.to_string()
    }
}

impl FromStr for Endpoint {
    type Err = FeedError;

    fn from_str(text: &str) -> Result<Self, FeedError> {
        Self::parse(text)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Serialize for Endpoint {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.shown())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a panic is a failed test
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_wherever_the_endpoint_is_shown() {
        let cases = [
            ("http://proxy/order/", "http://proxy/order/"),
            (
                "http://user:s3cret@proxy:8080/order/",
                "http://***@proxy:8080/order/",
            ),
            ("https://s3cret@proxy/order/", "https://***@proxy/order/"),
            ("http://:s3cret@proxy/order/", "http://***@proxy/order/"),
            (
                "http://proxy/order/?token=s3cret&x=s3cret#s3cret",
                "http://proxy/order/?token=***&x=***#***",
            ),
        ];
        for (given, shown) in cases {
            let endpoint = Endpoint::parse(given).unwrap();
            assert_eq!(endpoint.url().as_str(), given);
            assert_eq!(endpoint.to_string(), shown);
            assert_eq!(format!("{endpoint:?}"), format!("Endpoint({shown:?})"));
            assert_eq!(serde_json::to_value(&endpoint).unwrap(), shown);
        }
    }

    #[test]
    fn only_http_urls_with_a_host_and_the_error_quotes_no_secret() {
        for bad in [
            "proxy/order/",
            "ftp://user:s3cret@proxy/",
            "user:s3cret@proxy",
            "mailto:ops@s3cret",
        ] {
            let error = Endpoint::parse(bad).err().unwrap().to_string();
            assert!(!error.contains("s3cret"), "{error}");
            assert!(
                error.starts_with("endpoint must be an http:// or https:// URL"),
                "{error}"
            );
        }
    }
}
