//! TEMPORARY stub, replaced by the real SNS trust module on merge.
#![allow(dead_code, missing_docs)]
use contracts::Envelope;
use url::Url;

#[derive(Clone, Debug)]
pub struct TrustedHosts(Option<Url>);
impl TrustedHosts {
    pub fn new(stand_in: Option<Url>) -> Self {
        Self(stand_in)
    }
    pub fn check_subscribe_url(&self, url: &str) -> Result<Url, UntrustedUrl> {
        Url::parse(url).map_err(|_| UntrustedUrl)
    }
}
#[derive(Debug, thiserror::Error)]
#[error("untrusted")]
pub struct UntrustedUrl;
#[derive(Debug)]
pub struct SnsVerifier(TrustedHosts);
impl SnsVerifier {
    pub fn new(hosts: TrustedHosts, _client: reqwest::Client) -> Self {
        Self(hosts)
    }
    pub fn hosts(&self) -> &TrustedHosts {
        &self.0
    }
    pub async fn verify(&self, _e: &Envelope) -> Result<(), VerifyError> {
        Ok(())
    }
}
#[derive(Debug, thiserror::Error)]
#[error("bad")]
pub struct VerifyError;
impl VerifyError {
    pub fn is_transient(&self) -> bool {
        false
    }
}
