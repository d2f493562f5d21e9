//! HQ's SNS signing identity: an RSA key and a self-signed certificate, made
//! once and kept in the data directory. Signing itself is
//! [`SnsSigner`], the same code the services' tests sign with.
//!
//! The services fetch the certificate from `SigningCertURL` (served by HQ)
//! and check the signature exactly as they would a real SNS message; they
//! trust HQ's URLs because the launcher names HQ as `AWS_ENDPOINT_URL_SNS`.

use std::path::Path;
use std::time::{Duration, SystemTime};

use aws_lc_rs::signature::KeyPair as _;
use platform::sns::CertificateKey;
use rcgen::{CertificateParams, DistinguishedName, DnType, PKCS_RSA_SHA256, RsaKeySize};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use sha2::{Digest, Sha256};

use crate::secret_file;
use crate::sns_signer::{SnsSigner, rsa_key_pair};

/// File name of the private key inside the data directory.
pub const KEY_FILE: &str = "sns-signing-key.pem";
/// File name of the certificate inside the data directory.
pub const CERT_FILE: &str = "sns-signing-cert.pem";
/// RSA modulus size: what SNS uses, and what verifiers accept.
const KEY_SIZE: RsaKeySize = RsaKeySize::_2048;
/// The certificate's subject (and issuer: it is self-signed).
const SUBJECT: [(DnType, &str); 2] = [
    (DnType::CommonName, "sns.interstella-hq.local"),
    (DnType::OrganizationName, "Interstella HQ"),
];
/// How long the self-signed certificate is valid.
const CERT_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// How far back the certificate's validity starts: a subscriber whose clock
/// is a little behind HQ's still takes the first deliveries after HQ made
/// its certificate.
const CLOCK_SKEW: Duration = Duration::from_secs(60 * 60);

/// Why the signing identity could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// Reading or writing the key files failed.
    #[error("signing key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The key or certificate is malformed or could not be made.
    #[error("signing identity: {0}")]
    Crypto(String),
}

fn crypto(error: impl std::fmt::Display) -> SigningError {
    SigningError::Crypto(error.to_string())
}

/// HQ's signing key and certificate.
#[derive(Clone)]
pub struct SigningIdentity {
    key_pem: String,
    cert_pem: String,
    cert_file_name: String,
}

impl std::fmt::Debug for SigningIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningIdentity")
            .field("cert_file_name", &self.cert_file_name)
            .finish_non_exhaustive()
    }
}

impl SigningIdentity {
    /// Loads the identity from `dir`, or makes and saves one there. Making
    /// an RSA-2048 key takes a moment, hence the files: every later start
    /// reuses them. The key file is mode 0600,
    /// tightened to that if it was wider.
    pub fn load_or_create(dir: &Path) -> Result<Self, SigningError> {
        let key_path = dir.join(KEY_FILE);
        let cert_path = dir.join(CERT_FILE);
        if key_path.exists() && cert_path.exists() {
            let key_pem = io(&key_path, secret_file::read(&key_path))?;
            let cert_pem = io(&cert_path, std::fs::read_to_string(&cert_path))?;
            return Self::from_pem(&key_pem, &cert_pem);
        }
        tracing::info!("making HQ's SNS signing key (first start only)");
        let (key_pem, cert_pem) = generate()?;
        io(&key_path, secret_file::write(&key_path, &key_pem))?;
        // Written the same way, whole or not at all: a torn certificate
        // beside its key would stop every later start. (It is public, SNS
        // serves it to anyone; its file's narrow mode costs nothing.)
        io(&cert_path, secret_file::write(&cert_path, &cert_pem))?;
        Self::from_pem(&key_pem, &cert_pem)
    }

    /// An identity from a PKCS#8 (or PKCS#1) private key and its
    /// certificate, both PEM. The certificate must hold the key's public
    /// half and be one the services accept (valid now, RSA-2048 or more).
    pub fn from_pem(key_pem: &str, cert_pem: &str) -> Result<Self, SigningError> {
        let private = rsa_key_pair(key_pem).map_err(crypto)?;
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(crypto)?;
        let cert_key = CertificateKey::from_der(&cert_der).map_err(crypto)?;
        if cert_key.rsa_public_key_der() != private.public_key().as_ref() {
            return Err(SigningError::Crypto(
                "the certificate does not belong to the private key".into(),
            ));
        }
        // Like SNS: the file name carries a digest of the certificate, so a
        // new key gets a new URL and no verifier's cache goes stale.
        let digest = Sha256::digest(&cert_der);
        let cert_file_name = format!("SimpleNotificationService-{}.pem", hex::encode(&digest[..16]));
        Ok(Self {
            key_pem: key_pem.to_owned(),
            cert_pem: cert_pem.to_owned(),
            cert_file_name,
        })
    }

    /// The certificate, PEM, as served at `SigningCertURL`.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The certificate's file name: `SimpleNotificationService-<hex>.pem`.
    pub fn cert_file_name(&self) -> &str {
        &self.cert_file_name
    }

    /// A signer naming `cert_url` (where HQ serves the certificate) as
    /// every message's `SigningCertURL`.
    pub fn signer(&self, cert_url: &str) -> Result<SnsSigner, SigningError> {
        SnsSigner::from_pem(&self.key_pem, cert_url).map_err(crypto)
    }
}

/// Makes a fresh key and a self-signed certificate for it, both PEM: the
/// key PKCS#8, the certificate valid from `CLOCK_SKEW` ago for
/// `CERT_VALIDITY`, its
/// serial number derived from the key.
pub fn generate() -> Result<(String, String), SigningError> {
    let key = rcgen::KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, KEY_SIZE).map_err(crypto)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    for (kind, value) in SUBJECT {
        params.distinguished_name.push(kind, value);
    }
    let now = SystemTime::now();
    params.not_before = now.checked_sub(CLOCK_SKEW).unwrap_or(now).into();
    params.not_after = (now + CERT_VALIDITY).into();
    let cert = params.self_signed(&key).map_err(crypto)?;
    Ok((key.serialize_pem(), cert.pem()))
}

/// `result` of a file operation on `path`, its error naming the file.
fn io<T>(path: &Path, result: std::io::Result<T>) -> Result<T, SigningError> {
    result.map_err(|source| SigningError::Io {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_cert::der::Decode as _;

    #[test]
    fn the_certificate_is_valid_from_clock_skew_ago() {
        let (_, pem) = generate().unwrap();
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        let cert = x509_cert::Certificate::from_der(&der).unwrap();
        let not_before = cert.tbs_certificate().validity().not_before.to_system_time();
        let ago = SystemTime::now().duration_since(not_before).unwrap();
        // X.509 times are whole seconds; the test itself takes a few.
        assert!(
            ago >= CLOCK_SKEW && ago < CLOCK_SKEW + Duration::from_secs(30),
            "valid from {ago:?} ago"
        );
    }
}
