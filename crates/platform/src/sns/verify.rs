//! Verifying SNS message signatures, with a cache of signing keys.
//!
//! The certificate URL is checked by [`TrustedHosts`] before anything is
//! fetched; the certificate is fetched without redirects, with a short
//! timeout and a bounded body, a few fetches at a time.
//!
//! `SigningCertURL` is not covered by the signature, so anyone can make us
//! fetch any trusted-looking URL. Two maps keep that from costing the
//! genuine keys: a key enters the verified cache (TTL, size bound) only once
//! it verified a signature; fetches in progress, keys that verified nothing
//! yet and failures live in a separate bounded map, which nothing verified
//! ever has to leave room for. A failure is not cached: the requests already
//! waiting on a fetch share its outcome, and the next one fetches afresh
//! (one fetch per URL at a time, so a flood of one URL costs one at a time).
//! Of the few fetches made at once, a freed slot goes first to a
//! certificate that verified before, then to the one most messages wait
//! for (`sns::fetch_slots`), not to the flood.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use aws_lc_rs::signature::{
    ParsedPublicKey, RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY, RSA_PKCS1_2048_8192_SHA256,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use contracts::quote::quoted;
use contracts::{Envelope, SignatureVersion};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use tokio::sync::OnceCell;
use x509_cert::Certificate;
use x509_cert::der::{Decode as _, Encode as _};

use super::fetch_slots::FetchSlots;
use super::trust::{TrustedHosts, TrustedUrl, UntrustedUrl};
use crate::downstream::{BodyError, read_body};
use crate::metrics::SnsMetrics;

/// How long a fetched signing key is trusted before it is fetched again.
const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(60 * 60);
/// How many signing keys are kept; SNS uses a handful at a time.
const DEFAULT_CACHE_CAPACITY: usize = 64;
/// Timeout for a certificate fetch, waiting for a fetch slot included; SNS
/// waits 15 s for our answer.
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// The least of its time a certificate fetch must have left, once it has a
/// slot, to be sent: slots freed by callers that gave up went to callers
/// whose own time was up too, and each sent its GET after its caller had
/// its answer.
const LEAST_TIME_FOR_A_FETCH: Duration = Duration::from_millis(500);
/// Certificate fetches in flight at most, whatever the number of distinct
/// URLs messages name; SNS itself uses a handful of certificates.
pub const MAX_FETCHES_IN_FLIGHT: usize = 4;
/// Fetches in progress and unverified keys kept at
/// most; beyond it the least wanted of them is forgotten (never a verified key).
const MAX_UNVERIFIED: usize = 256;
/// A certificate PEM is about 2 KiB; anything far larger is not one.
const MAX_CERT_BYTES: usize = 64 * 1024;
/// SNS keys are 2048-bit; smaller ones are not worth trusting.
const MIN_KEY_BITS: usize = 2048;

/// Why an envelope was not verified.
///
/// Only [`VerifyError::CertificateUnavailable`] and
/// [`VerifyError::CertificateNotYetValid`] are transient (answer 503 so SNS
/// retries); everything else means the message is not genuine (403).
#[derive(Debug, Clone, thiserror::Error)]
pub enum VerifyError {
    /// `SigningCertURL` is not a trusted certificate location.
    #[error("untrusted SigningCertURL: {0}")]
    UntrustedCertUrl(UntrustedUrl),
    /// `SignatureVersion` is neither "1" nor "2": the value as sent, shown
    /// quoted and cut short.
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
    /// The certificate's validity has not begun by this host's clock: a
    /// clock set behind (SNS serves only certificates in use), which every
    /// genuine message would meet until it is set right.
    #[error("signing certificate not yet valid by this host's clock: {0}")]
    CertificateNotYetValid(String),
}

impl VerifyError {
    /// True for what a retry may get past (the certificate could not be
    /// fetched, or a clock is wrong): worth a 503 and a retry by SNS, not a
    /// 403, after which SNS drops a genuine order.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::CertificateUnavailable(_) | Self::CertificateNotYetValid(_)
        )
    }
}

/// Verifies SNS envelopes against certificates from trusted hosts.
///
/// One per service, shared across requests; cheap to use concurrently.
pub struct SnsVerifier {
    hosts: TrustedHosts,
    client: reqwest::Client,
    keys: Mutex<Keys>,
    fetches: Arc<FetchSlots>,
    ttl: Duration,
    capacity: usize,
    metrics: SnsMetrics,
}

/// The two maps, by fetch URL.
#[derive(Default)]
struct Keys {
    /// Keys that verified a signature; only these are reused for the TTL.
    verified: HashMap<String, VerifiedKey>,
    /// Everything else: fetches in progress, fetched keys that verified
    /// nothing yet. Bounded by [`MAX_UNVERIFIED`].
    unverified: HashMap<String, Arc<Slot>>,
}

struct VerifiedKey {
    key: Arc<CertificateKey>,
    fetched: Instant,
    /// The `SigningCertURL`, as a message spelled it, that first verified
    /// with this key: the same text is checked the same way, so a message
    /// naming it again skips the URL check (a URL parse per message).
    named: String,
}

/// One URL's fetch: done once, the outcome shared by everyone waiting on it.
struct Slot {
    created: Instant,
    outcome: OnceCell<Fetched>,
    /// Held by each message waiting for the outcome: how many hold it is
    /// how much the fetch is wanted.
    waiters: Arc<()>,
}

struct Fetched {
    key: Result<Arc<CertificateKey>, VerifyError>,
    at: Instant,
}

impl SnsVerifier {
    /// `client` is the service's one shared reqwest client; certificate
    /// fetches on it get a short timeout, and any answer but 200 (a
    /// redirect included) is refused. Build the client with
    /// `redirect::Policy::none()`: a client that follows redirects still has
    /// the result refused, but only after the redirect target was requested.
    pub fn new(hosts: TrustedHosts, client: reqwest::Client) -> Self {
        Self {
            hosts,
            client,
            keys: Mutex::default(),
            fetches: FetchSlots::new(MAX_FETCHES_IN_FLIGHT),
            ttl: DEFAULT_CACHE_TTL,
            capacity: DEFAULT_CACHE_CAPACITY,
            metrics: SnsMetrics::default(),
        }
    }

    /// Counts cache hits and certificate fetches in `metrics`.
    pub fn with_metrics(mut self, metrics: SnsMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Changes how long verified keys are cached and how many are kept (at
    /// least one).
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
            return Err(VerifyError::UnsupportedSignatureVersion(version.clone()));
        }
        let signature = STANDARD
            .decode(envelope.signature.as_bytes())
            .ok()
            .filter(|bytes| !bytes.is_empty())
            .ok_or(VerifyError::MalformedSignature)?;
        let text = envelope.string_to_sign();
        let checks =
            |key: &CertificateKey| key.verify(&envelope.signature_version, text.as_bytes(), &signature);
        let named = envelope.signing_cert_url.as_str();
        if let Some(key) = self.verified_key_named(named) {
            self.metrics.cert_cache_hits.inc();
            return checks(&key);
        }
        let location = self
            .hosts
            .check_cert_url(named)
            .map_err(VerifyError::UntrustedCertUrl)?;
        let url = location.url().as_str();
        if let Some(key) = self.verified_key(url) {
            self.metrics.cert_cache_hits.inc();
            return checks(&key);
        }
        let slot = self.unverified_slot(url);
        let waiting = Arc::clone(&slot.waiters);
        let fetched = slot
            .outcome
            // Waiters share a failure too: retrying one after another would
            // stack timeouts beyond the 15 s SNS waits for our answer.
            .get_or_init(|| async {
                self.metrics.cert_fetches.inc();
                Fetched {
                    key: self.fetch_key(&location, &slot.waiters).await,
                    at: Instant::now(),
                }
            })
            .await;
        drop(waiting);
        let key = fetched.key.clone()?;
        checks(&key)?;
        self.promote(url, named, &slot, key, fetched.at);
        Ok(())
    }

    /// A verified key for the URL, if one is cached and fresh.
    fn verified_key(&self, url: &str) -> Option<Arc<CertificateKey>> {
        let keys = self.lock();
        keys.verified
            .get(url)
            .filter(|verified| verified.fetched.elapsed() < self.ttl)
            .map(|verified| Arc::clone(&verified.key))
    }

    /// A verified key, cached and fresh, that a message naming exactly this
    /// `SigningCertURL` verified with. A scan: the cache holds a handful of
    /// keys (SNS uses few; at most its capacity).
    fn verified_key_named(&self, named: &str) -> Option<Arc<CertificateKey>> {
        let keys = self.lock();
        keys.verified
            .values()
            .find(|verified| verified.named == named && verified.fetched.elapsed() < self.ttl)
            .map(|verified| Arc::clone(&verified.key))
    }

    /// The URL's slot among the unverified: the current one, or a new one in
    /// place of a stale one, making room by forgetting the least wanted.
    fn unverified_slot(&self, url: &str) -> Arc<Slot> {
        let mut keys = self.lock();
        let now = Instant::now();
        if let Some(slot) = keys.unverified.get(url)
            && !slot.stale(now, self.ttl)
        {
            return Arc::clone(slot);
        }
        keys.unverified.remove(url);
        if keys.unverified.len() >= MAX_UNVERIFIED {
            keys.unverified.retain(|_, slot| !slot.stale(now, self.ttl));
        }
        // Whoever waits on a forgotten slot still holds it and gets its
        // outcome; only later requests no longer share it. The least wanted
        // goes first, then the oldest: a flood of URLs named once each must
        // not push out the fetch several genuine messages wait on, whose
        // demand would split between it and a new one (`fetch_slots`).
        while keys.unverified.len() >= MAX_UNVERIFIED {
            remove_lowest(&mut keys.unverified, |slot| {
                (Arc::strong_count(&slot.waiters), slot.created)
            });
        }
        let slot = Arc::new(Slot {
            created: now,
            outcome: OnceCell::new(),
            waiters: Arc::new(()),
        });
        keys.unverified.insert(url.to_owned(), Arc::clone(&slot));
        slot
    }

    /// Moves a key that just verified a signature into the verified cache,
    /// making room by dropping expired keys, then the oldest.
    fn promote(&self, url: &str, named: &str, slot: &Arc<Slot>, key: Arc<CertificateKey>, fetched: Instant) {
        let mut keys = self.lock();
        if keys
            .unverified
            .get(url)
            .is_some_and(|current| Arc::ptr_eq(current, slot))
        {
            keys.unverified.remove(url);
        }
        if keys
            .verified
            .get(url)
            .is_some_and(|verified| verified.fetched.elapsed() < self.ttl)
        {
            // A concurrent waiter on the same fetch got here first.
            return;
        }
        // An expired key for the URL is replaced, not counted against room.
        keys.verified.remove(url);
        if keys.verified.len() >= self.capacity {
            keys.verified
                .retain(|_, verified| verified.fetched.elapsed() < self.ttl);
        }
        while keys.verified.len() >= self.capacity {
            remove_lowest(&mut keys.verified, |verified| verified.fetched);
        }
        keys.verified.insert(
            url.to_owned(),
            VerifiedKey {
                key,
                fetched,
                named: named.to_owned(),
            },
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Keys> {
        // A panic elsewhere while holding the lock leaves the maps consistent.
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Fetches a certificate once a fetch slot is this one's (`waiters` is
    /// held by each message waiting for it); the wait for the slot counts
    /// against the timeout.
    async fn fetch_key(
        &self,
        location: &TrustedUrl,
        waiters: &Arc<()>,
    ) -> Result<Arc<CertificateKey>, VerifyError> {
        let url = contracts::quote::shortened(location.url().as_str());
        let unavailable = || {
            Err(VerifyError::CertificateUnavailable(format!(
                "{url}: no answer within {FETCH_TIMEOUT:?}"
            )))
        };
        let until = tokio::time::Instant::now() + FETCH_TIMEOUT;
        let fetch = async {
            // A key that verified before and expired stays in the map until
            // room is needed: its refetch goes ahead of every other.
            let known_good = self.lock().verified.contains_key(location.url().as_str());
            let _slot = self.fetches.acquire(waiters, known_good).await;
            if until.saturating_duration_since(tokio::time::Instant::now()) < LEAST_TIME_FOR_A_FETCH {
                return Err(VerifyError::CertificateUnavailable(format!(
                    "{url}: not fetched: other fetches held every slot for most of {FETCH_TIMEOUT:?}"
                )));
            }
            fetch_key(&self.client, location).await
        };
        tokio::time::timeout_at(until, fetch)
            .await
            .unwrap_or_else(|_| unavailable())
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
    /// Done, and past its use: a key past the TTL, or a failure (never
    /// cached: whoever comes after it fetches again).
    fn stale(&self, now: Instant, ttl: Duration) -> bool {
        match self.outcome.get() {
            None => false,
            Some(Fetched { key: Ok(_), at }) => now.duration_since(*at) >= ttl,
            Some(Fetched { key: Err(_), .. }) => true,
        }
    }
}

/// Removes the entry `rank` ranks lowest (none from an empty map).
fn remove_lowest<V, R: Ord>(map: &mut HashMap<String, V>, rank: impl Fn(&V) -> R) {
    let lowest = map
        .iter()
        .min_by_key(|(_, value)| rank(value))
        .map(|(key, _)| key.clone());
    if let Some(lowest) = lowest {
        map.remove(&lowest);
    }
}

/// Fetches a certificate and extracts its RSA key.
async fn fetch_key(
    client: &reqwest::Client,
    location: &TrustedUrl,
) -> Result<Arc<CertificateKey>, VerifyError> {
    let url = location.url();
    // Chosen by the sender: under a stand-in its path has no fixed shape.
    let shown = contracts::quote::shortened(url.as_str());
    tracing::debug!(url = %shown, "fetching SNS signing certificate");
    let unavailable = |why: String| VerifyError::CertificateUnavailable(format!("{shown}: {why}"));
    let mut request = client.get(url.clone());
    for (name, value) in location.headers() {
        request = request.header(name, value);
    }
    // Without the URL, which the message already names.
    let response = request
        .send()
        .await
        .map_err(|error| unavailable(error.without_url().to_string()))?;
    // Exactly 200: a redirect must not take us to a host nobody checked.
    if response.status() != reqwest::StatusCode::OK {
        return Err(unavailable(format!("HTTP {}", response.status())));
    }
    // A client that follows redirects ends up elsewhere with a 200; the
    // certificate from there is not one we checked the URL of.
    if response.url() != url {
        let location = contracts::quote::shortened(response.url().as_str());
        return Err(unavailable(format!("redirected to {location}")));
    }
    let body = read_body(response, MAX_CERT_BYTES, FETCH_TIMEOUT)
        .await
        .map_err(|error| match error {
            BodyError::TooLarge { .. } => VerifyError::BadCertificate(format!("{shown}: {error}")),
            BodyError::Slow(_) | BodyError::Broken(_) => unavailable(error.to_string()),
        })?;
    CertificateKey::from_pem(&body)
        .map(Arc::new)
        .map_err(|why| match why {
            CertificateError::NotYetValid { .. } => {
                VerifyError::CertificateNotYetValid(format!("{shown}: {why}"))
            }
            CertificateError::Unusable(_) => VerifyError::BadCertificate(format!("{shown}: {why}")),
        })
}

/// Why a certificate's key cannot verify SNS signatures.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CertificateError {
    /// Not a usable certificate: what was wrong.
    #[error("{0}")]
    Unusable(String),
    /// A certificate whose validity has not begun by this host's clock: the
    /// clock is behind (ours, or the signer's), not the certificate at fault.
    /// One that has expired is [`CertificateError::Unusable`]: an old
    /// message replayed names one.
    #[error("valid from {not_before}, but this host's clock says {now}: check the clock")]
    NotYetValid {
        /// The start of its validity.
        not_before: String,
        /// This host's time.
        now: String,
    },
}

/// What was wrong, and the parser's own words.
fn why(what: &str, error: impl std::fmt::Display) -> CertificateError {
    // Cut and escaped: a parser may quote what it refused whole (the PEM
    // reader prints an unterminated line as a list of bytes, some 300 KB
    // for a 64 KiB body), and this text is both the answer and a log line.
    CertificateError::Unusable(format!("{what}: {}", contracts::quote::shortened_message(error)))
}

/// The RSA public key of an SNS signing certificate, parsed once for both
/// signature versions (aws-lc-rs, constant time).
pub struct CertificateKey {
    /// SignatureVersion 1: PKCS#1 v1.5 with SHA-1.
    v1: ParsedPublicKey,
    /// SignatureVersion 2: PKCS#1 v1.5 with SHA-256.
    v2: ParsedPublicKey,
    /// The modulus size.
    bits: usize,
}

impl CertificateKey {
    /// The RSA key of the first certificate in a PEM, if the certificate is
    /// valid now and the key has at least 2048 bits.
    pub fn from_pem(pem: &[u8]) -> Result<Self, CertificateError> {
        let der = CertificateDer::from_pem_slice(pem).map_err(|e| why("no PEM certificate", e))?;
        Self::from_der(&der)
    }

    /// The RSA key of a DER certificate, on the terms of [`Self::from_pem`].
    pub fn from_der(der: &[u8]) -> Result<Self, CertificateError> {
        let cert = Certificate::from_der(der).map_err(|e| why("not an X.509 certificate", e))?;
        let validity = cert.tbs_certificate().validity();
        let now = SystemTime::now();
        let shown = |time: SystemTime| {
            x509_cert::der::DateTime::from_system_time(time)
                .map_or_else(|_| format!("{time:?}"), |t| t.to_string())
        };
        if now < validity.not_before.to_system_time() {
            return Err(CertificateError::NotYetValid {
                not_before: validity.not_before.to_string(),
                now: shown(now),
            });
        }
        if now > validity.not_after.to_system_time() {
            return Err(CertificateError::Unusable(format!(
                "expired on {}, and this host's clock says {}",
                validity.not_after,
                shown(now)
            )));
        }
        let spki = cert
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .map_err(|e| why("unreadable public key", e))?;
        let rsa = aws_lc_rs::rsa::PublicKey::from_der(&spki).map_err(|e| why("not an RSA public key", e))?;
        let bits = rsa.modulus_len() * 8;
        if bits < MIN_KEY_BITS {
            return Err(CertificateError::Unusable(format!(
                "RSA key smaller than {MIN_KEY_BITS} bits"
            )));
        }
        let parse = |algorithm| {
            ParsedPublicKey::new(algorithm, rsa.as_ref()).map_err(|e| why("unusable RSA public key", e))
        };
        Ok(Self {
            v1: parse(&RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY)?,
            v2: parse(&RSA_PKCS1_2048_8192_SHA256)?,
            bits,
        })
    }

    /// Checks `signature` over `message` as `version` says: "1" is RSA
    /// PKCS#1 v1.5 with SHA-1, "2" with SHA-256; anything else never verifies.
    pub fn verify(
        &self,
        version: &SignatureVersion,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), VerifyError> {
        let key = match version {
            SignatureVersion::V1 => &self.v1,
            SignatureVersion::V2 => &self.v2,
            SignatureVersion::Unsupported(_) => return Err(VerifyError::BadSignature),
        };
        key.verify_sig(message, signature)
            .map_err(|_| VerifyError::BadSignature)
    }

    /// The key as a DER `RSAPublicKey` (RFC 8017), to compare with the
    /// public half of a private key.
    pub fn rsa_public_key_der(&self) -> &[u8] {
        self.v2.as_ref()
    }

    /// The modulus size in bits.
    pub fn bits(&self) -> usize {
        self.bits
    }
}

impl std::fmt::Debug for CertificateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateKey")
            .field("bits", &self.bits)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The test keys live with the test doubles, in crates/testkit.
    const TEST_CERT_PEM: &str = include_str!("../../../testkit/fixtures/sns-test-cert.pem");
    const TEST_KEY_PEM: &str = include_str!("../../../testkit/fixtures/sns-test-key.pem");

    #[test]
    fn test_certificate_yields_its_rsa_key() {
        let key = CertificateKey::from_pem(TEST_CERT_PEM.as_bytes()).unwrap();
        assert_eq!(key.bits(), 2048);
    }

    #[test]
    fn non_certificates_are_refused() {
        for pem in [
            &b""[..],
            b"hello",
            b"\n\r\n",
            TEST_KEY_PEM.as_bytes(),
            b"-----END CERTIFICATE-----",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        ] {
            assert!(CertificateKey::from_pem(pem).is_err(), "{pem:?}");
        }
    }

    #[test]
    fn a_refused_certificate_is_quoted_short_whatever_the_parser_says() {
        // The PEM reader quotes an unterminated line whole, byte by byte.
        let mut unterminated = b"-----BEGIN CERTIFICATE".to_vec();
        unterminated.resize(64 * 1024, 0xe3);
        let mut no_end = b"-----BEGIN ".to_vec();
        no_end.resize(64 * 1024 - 6, b'A');
        no_end.extend_from_slice(b"-----\n");
        for pem in [unterminated, no_end] {
            let Err(error) = CertificateKey::from_pem(&pem) else {
                panic!("a broken PEM was read");
            };
            let said = error.to_string();
            assert!(
                said.starts_with("no PEM certificate: ") && said.len() < 400,
                "{} bytes: {said:.300}",
                said.len()
            );
        }
    }

    #[test]
    fn a_certificate_not_yet_valid_says_the_clock_is_wrong() {
        let pem = include_str!("../../../testkit/fixtures/sns-cert-not-yet-valid.pem");
        let Err(error) = CertificateKey::from_pem(pem.as_bytes()) else {
            panic!("a certificate valid from 2099 was taken");
        };
        assert!(matches!(error, CertificateError::NotYetValid { .. }), "{error}");
        let text = error.to_string();
        assert!(
            text.starts_with("valid from 2099-01-01T00:00:00Z, but this host's clock says 20"),
            "{text}"
        );
    }

    #[test]
    fn an_expired_certificate_is_unusable() {
        let pem = include_str!("../../../testkit/fixtures/sns-cert-expired.pem");
        let Err(error) = CertificateKey::from_pem(pem.as_bytes()) else {
            panic!("a certificate that expired in 2001 was taken");
        };
        assert!(matches!(error, CertificateError::Unusable(_)), "{error}");
        assert!(
            error
                .to_string()
                .starts_with("expired on 2001-01-01T00:00:00Z, and this host's clock says 20"),
            "{error}"
        );
    }

    #[test]
    fn keys_under_2048_bits_are_refused_and_larger_ones_taken() {
        // Self-signed, 2000 to 2100, their keys thrown away; made with
        // Python's `cryptography`, as the other fixtures were.
        let small = include_str!("../../../testkit/fixtures/sns-cert-1024-bit.pem");
        let Err(error) = CertificateKey::from_pem(small.as_bytes()) else {
            panic!("a certificate with a 1024-bit key was taken");
        };
        assert!(matches!(error, CertificateError::Unusable(_)), "{error}");
        assert_eq!(error.to_string(), "RSA key smaller than 2048 bits");
        let large = include_str!("../../../testkit/fixtures/sns-cert-4096-bit.pem");
        let key = CertificateKey::from_pem(large.as_bytes()).unwrap();
        assert_eq!(key.bits(), 4096);
    }

    #[test]
    fn only_certificate_unavailable_or_not_yet_valid_is_transient() {
        assert!(VerifyError::CertificateUnavailable("x".into()).is_transient());
        assert!(VerifyError::CertificateNotYetValid("x".into()).is_transient());
        assert!(!VerifyError::BadCertificate("x".into()).is_transient());
        assert!(!VerifyError::BadSignature.is_transient());
        assert!(!VerifyError::MalformedSignature.is_transient());
        assert!(!VerifyError::UnsupportedSignatureVersion("3".into()).is_transient());
    }
}
