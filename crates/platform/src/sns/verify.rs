//! Verifying SNS message signatures, with a cache of signing keys.
//!
//! The certificate URL is checked by [`TrustedHosts`] before anything is
//! fetched; the certificate is fetched without redirects, with a short
//! timeout and a bounded body, and its RSA key is cached per URL with a TTL
//! and a size bound. Failures are never cached, so SNS's retry can succeed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use contracts::quote::quoted;
use contracts::{Envelope, SignatureVersion};
use rsa::RsaPublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey as _;
use rsa::signature::Verifier as _;
use rsa::traits::PublicKeyParts as _;
use sha1::Sha1;
use sha2::Sha256;
use tokio::sync::OnceCell;
use url::Url;
use x509_cert::Certificate;
use x509_cert::der::{DecodePem as _, Encode as _};

use super::trust::{TrustedHosts, UntrustedUrl};

/// How long a fetched signing key is trusted before it is fetched again.
const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(60 * 60);
/// How many signing keys are kept; SNS uses a handful at a time.
const DEFAULT_CACHE_CAPACITY: usize = 64;
/// Per-request timeout for certificate fetches; SNS waits 15 s for our answer.
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// A certificate PEM is about 2 KiB; anything far larger is not one.
const MAX_CERT_BYTES: usize = 64 * 1024;
/// SNS keys are 2048-bit; smaller ones are not worth trusting.
const MIN_KEY_BITS: usize = 2048;

/// Why an envelope was not verified.
///
/// Only [`VerifyError::CertificateUnavailable`] is transient (answer 503 so
/// SNS retries); everything else means the message is not genuine (403).
#[derive(Debug, Clone, thiserror::Error)]
pub enum VerifyError {
    /// `SigningCertURL` is not a trusted certificate location.
    #[error("untrusted SigningCertURL: {0}")]
    UntrustedCertUrl(UntrustedUrl),
    /// `SignatureVersion` is neither "1" nor "2".
    #[error("unsupported SignatureVersion {}", quoted(.0))]
    UnsupportedSignatureVersion(String),
    /// `Signature` is not standard base64 of a non-empty value.
    #[error("Signature is not valid base64")]
    MalformedSignature,
    /// The signature does not match the signed fields.
    #[error("signature does not match the message")]
    BadSignature,
    /// The certificate is not a usable X.509 PEM with an RSA key.
    #[error("bad signing certificate: {0}")]
    BadCertificate(String),
    /// Fetching the certificate failed (network, timeout, non-200).
    #[error("signing certificate unavailable: {0}")]
    CertificateUnavailable(String),
}

impl VerifyError {
    /// True only for [`VerifyError::CertificateUnavailable`]: worth a 503 and
    /// a retry by SNS, not a 403.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::CertificateUnavailable(_))
    }
}

/// Verifies SNS envelopes against certificates from trusted hosts.
///
/// One per service, shared across requests; cheap to use concurrently.
pub struct SnsVerifier {
    hosts: TrustedHosts,
    client: reqwest::Client,
    cache: Mutex<HashMap<String, Arc<Slot>>>,
    ttl: Duration,
    capacity: usize,
}

/// One URL's key: fetched once, the outcome shared by everyone waiting on it.
///
/// A failed slot leaves the map as soon as its fetch ends, so only requests
/// that were already waiting share a failure; later ones fetch afresh.
struct Slot {
    created: Instant,
    key: OnceCell<Result<CachedKey, VerifyError>>,
}

struct CachedKey {
    key: RsaPublicKey,
    fetched: Instant,
}

impl SnsVerifier {
    /// `client` is the service's one shared reqwest client; certificate
    /// fetches on it get a short per-request timeout, and any answer but
    /// 200 (a redirect included) is refused. Build the client with
    /// `redirect::Policy::none()`: a client that follows redirects still has
    /// the result refused, but only after the redirect target was requested.
    pub fn new(hosts: TrustedHosts, client: reqwest::Client) -> Self {
        Self {
            hosts,
            client,
            cache: Mutex::new(HashMap::new()),
            ttl: DEFAULT_CACHE_TTL,
            capacity: DEFAULT_CACHE_CAPACITY,
        }
    }

    /// Changes how long keys are cached and how many are kept (at least one).
    pub fn with_cache(mut self, ttl: Duration, capacity: usize) -> Self {
        self.ttl = ttl;
        self.capacity = capacity.max(1);
        self
    }

    /// The hosts whose URLs this verifier trusts.
    pub fn hosts(&self) -> &TrustedHosts {
        &self.hosts
    }

    /// Verifies an envelope's signature.
    ///
    /// SignatureVersion "1" is RSA PKCS#1 v1.5 with SHA-1, "2" with SHA-256;
    /// anything else is refused. The certificate URL is checked before any
    /// fetch.
    pub async fn verify(&self, envelope: &Envelope) -> Result<(), VerifyError> {
        if let SignatureVersion::Unsupported(version) = &envelope.signature_version {
            return Err(VerifyError::UnsupportedSignatureVersion(shorten(version)));
        }
        let signature = STANDARD
            .decode(envelope.signature.as_bytes())
            .ok()
            .filter(|bytes| !bytes.is_empty())
            .ok_or(VerifyError::MalformedSignature)?;
        let signature =
            Signature::try_from(signature.as_slice()).map_err(|_| VerifyError::MalformedSignature)?;
        let url = self
            .hosts
            .check_cert_url(&envelope.signing_cert_url)
            .map_err(VerifyError::UntrustedCertUrl)?;
        let key = self.key_for(&url).await?;
        let text = envelope.string_to_sign();
        let checked = match &envelope.signature_version {
            SignatureVersion::V1 => VerifyingKey::<Sha1>::new(key).verify(text.as_bytes(), &signature),
            SignatureVersion::V2 => VerifyingKey::<Sha256>::new(key).verify(text.as_bytes(), &signature),
            // Refused above, before anything was fetched.
            SignatureVersion::Unsupported(_) => return Err(VerifyError::BadSignature),
        };
        checked.map_err(|_| VerifyError::BadSignature)
    }

    /// The key for a checked URL: from the cache, or fetched once.
    async fn key_for(&self, url: &Url) -> Result<RsaPublicKey, VerifyError> {
        let slot = self.slot(url.as_str());
        // Waiters share a failure too: retrying one after another would
        // stack timeouts beyond the 15 s SNS waits for our answer.
        let result = slot
            .key
            .get_or_init(|| async {
                let key = fetch_key(&self.client, url).await?;
                Ok(CachedKey {
                    key,
                    fetched: Instant::now(),
                })
            })
            .await;
        match result {
            Ok(cached) => Ok(cached.key.clone()),
            Err(error) => {
                self.forget_failed(url.as_str(), &slot);
                Err(error.clone())
            }
        }
    }

    /// The cache slot for a URL, replacing an expired one and making room
    /// for a new one.
    fn slot(&self, url: &str) -> Arc<Slot> {
        // A panic elsewhere while holding the lock leaves the map consistent.
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if let Some(slot) = cache.get(url)
            && !slot.expired(now, self.ttl)
        {
            return Arc::clone(slot);
        }
        cache.remove(url);
        if cache.len() >= self.capacity {
            cache.retain(|_, slot| !slot.expired(now, self.ttl));
        }
        while cache.len() >= self.capacity {
            let oldest = cache
                .iter()
                .min_by_key(|(_, slot)| slot.created)
                .map(|(url, _)| url.clone());
            match oldest {
                Some(oldest) => cache.remove(&oldest),
                None => break,
            };
        }
        let slot = Arc::new(Slot {
            created: now,
            key: OnceCell::new(),
        });
        cache.insert(url.to_owned(), Arc::clone(&slot));
        slot
    }

    /// Drops a slot whose fetch failed, so failures are not cached and do not
    /// take room from good keys.
    fn forget_failed(&self, url: &str, slot: &Arc<Slot>) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.get(url).is_some_and(|current| Arc::ptr_eq(current, slot)) {
            cache.remove(url);
        }
    }
}

impl std::fmt::Debug for SnsVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnsVerifier")
            .field("hosts", &self.hosts)
            .field("ttl", &self.ttl)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl Slot {
    /// Past its TTL, or failed (a failed slot is never reused).
    fn expired(&self, now: Instant, ttl: Duration) -> bool {
        match self.key.get() {
            None => false,
            Some(Ok(cached)) => now.duration_since(cached.fetched) >= ttl,
            Some(Err(_)) => true,
        }
    }
}

/// Fetches a certificate and extracts its RSA key.
async fn fetch_key(client: &reqwest::Client, url: &Url) -> Result<RsaPublicKey, VerifyError> {
    tracing::debug!(%url, "fetching SNS signing certificate");
    let unavailable = |why: String| VerifyError::CertificateUnavailable(format!("{url}: {why}"));
    let mut response = client
        .get(url.clone())
        .timeout(FETCH_TIMEOUT)
        .send()
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    // Exactly 200: a redirect must not take us to a host nobody checked.
    if response.status() != reqwest::StatusCode::OK {
        return Err(unavailable(format!("HTTP {}", response.status())));
    }
    // A client that follows redirects ends up elsewhere with a 200; the
    // certificate from there is not one we checked the URL of.
    if response.url() != url {
        return Err(unavailable(format!("redirected to {}", response.url())));
    }
    if response
        .content_length()
        .is_some_and(|len| len > MAX_CERT_BYTES as u64)
    {
        return Err(VerifyError::BadCertificate(format!(
            "{url}: larger than {MAX_CERT_BYTES} bytes"
        )));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| unavailable(e.to_string()))? {
        if body.len() + chunk.len() > MAX_CERT_BYTES {
            return Err(VerifyError::BadCertificate(format!(
                "{url}: larger than {MAX_CERT_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    key_from_pem(&body).map_err(|why| VerifyError::BadCertificate(format!("{url}: {why}")))
}

/// The RSA key of the first certificate in a PEM, if it is currently valid.
fn key_from_pem(pem: &[u8]) -> Result<RsaPublicKey, String> {
    // Only the first certificate matters. `Certificate::load_pem_chain`
    // (x509-cert 0.2.5) underflows on an empty body, so cut the block here.
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let end = pem
        .windows(END.len())
        .position(|window| window == END)
        .ok_or("no PEM certificate")?;
    let cert =
        Certificate::from_pem(&pem[..end + END.len()]).map_err(|e| format!("not an X.509 PEM: {e}"))?;
    let validity = &cert.tbs_certificate.validity;
    let now = SystemTime::now();
    if now < validity.not_before.to_system_time() || now > validity.not_after.to_system_time() {
        return Err("the certificate is not valid now".to_owned());
    }
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| format!("unreadable public key: {e}"))?;
    let key = RsaPublicKey::from_public_key_der(&spki).map_err(|e| format!("not an RSA public key: {e}"))?;
    if key.size() * 8 < MIN_KEY_BITS {
        return Err(format!("RSA key smaller than {MIN_KEY_BITS} bits"));
    }
    Ok(key)
}

/// An attacker-chosen value, cut short for an error message.
fn shorten(value: &str) -> String {
    value.chars().take(32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // The test keys live with the test doubles, in crates/testkit.
    const TEST_CERT_PEM: &str = include_str!("../../../testkit/fixtures/sns-test-cert.pem");
    const TEST_KEY_PEM: &str = include_str!("../../../testkit/fixtures/sns-test-key.pem");

    #[test]
    fn test_certificate_yields_its_rsa_key() {
        let key = key_from_pem(TEST_CERT_PEM.as_bytes()).unwrap();
        assert_eq!(key.size() * 8, 2048);
    }

    #[test]
    fn non_certificates_are_refused() {
        assert!(key_from_pem(b"").is_err());
        assert!(key_from_pem(b"hello").is_err());
        assert!(key_from_pem(b"\n\r\n").is_err());
        assert!(key_from_pem(TEST_KEY_PEM.as_bytes()).is_err());
        assert!(key_from_pem(b"-----END CERTIFICATE-----").is_err());
    }

    #[test]
    fn only_certificate_unavailable_is_transient() {
        assert!(VerifyError::CertificateUnavailable("x".into()).is_transient());
        assert!(!VerifyError::BadCertificate("x".into()).is_transient());
        assert!(!VerifyError::BadSignature.is_transient());
        assert!(!VerifyError::MalformedSignature.is_transient());
        assert!(!VerifyError::UnsupportedSignatureVersion("3".into()).is_transient());
    }
}
