//! Signing SNS envelopes the way Amazon SNS does, with aws-lc-rs (the
//! crypto library rustls and the services' verification use).
//!
//! HQ, our local SNS stand-in, signs what it delivers with this, so its
//! messages verify exactly like real ones; tests sign with it too. The
//! services only verify (platform::sns).
//!
//! HQ signs SignatureVersion 2 (PKCS#1 v1.5 with SHA-256), which a topic
//! asks SNS for with its `SignatureVersion` attribute. aws-lc-rs verifies
//! SignatureVersion 1 (SHA-1) but refuses to make SHA-1 signatures, so HQ
//! never publishes them; the tests' version-1 signer lives in testkit.

use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use contracts::{Envelope, SignatureVersion};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject as _;

/// Why a signer could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The PEM holds no PKCS#8 or PKCS#1 private key.
    #[error("not a PKCS#8 or PKCS#1 RSA private key PEM")]
    InvalidKey,
    /// The key is not an RSA key aws-lc-rs signs with (another algorithm,
    /// smaller than 2048 bits, inconsistent).
    #[error("the key cannot sign: {0}")]
    UnusableKey(String),
}

/// Signs envelopes with one RSA key, naming the URL its certificate is served at.
#[derive(Clone)]
pub struct SnsSigner {
    key: Arc<RsaKeyPair>,
    cert_url: String,
}

impl std::fmt::Debug for SnsSigner {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnsSigner")
            .field("cert_url", &self.cert_url)
            .finish_non_exhaustive()
    }
}

impl SnsSigner {
    /// From a PKCS#8 or PKCS#1 PEM private key and the URL where its
    /// certificate is served.
    pub fn from_pem(private_key_pem: &str, cert_url: impl Into<String>) -> Result<Self, SigningError> {
        let key = rsa_key_pair(private_key_pem)?;
        let signer = Self {
            key: Arc::new(key),
            cert_url: cert_url.into(),
        };
        // Sign once now so that `sign` cannot fail later.
        signer
            .signature(b"probe")
            .map_err(|e| SigningError::UnusableKey(e.to_string()))?;
        Ok(signer)
    }

    /// The URL put in `SigningCertURL`.
    pub fn cert_url(&self) -> &str {
        &self.cert_url
    }

    /// Signs like SNS with SignatureVersion 2: sets `signing_cert_url`,
    /// `signature_version` and `signature` = base64(sign(string_to_sign)).
    pub fn sign(&self, envelope: &mut Envelope) {
        envelope.signing_cert_url.clone_from(&self.cert_url);
        envelope.signature_version = SignatureVersion::V2;
        envelope.signature = match self.signature(envelope.string_to_sign().as_bytes()) {
            Ok(bytes) => STANDARD.encode(bytes),
            Err(error) => {
                // Unreachable after the probe in `from_pem`; an empty
                // signature fails verification rather than taking the service down.
                tracing::error!(%error, "signing an SNS envelope failed");
                String::new()
            }
        };
    }

    /// RSA PKCS#1 v1.5 with SHA-256 over `text`.
    fn signature(&self, text: &[u8]) -> Result<Vec<u8>, aws_lc_rs::error::Unspecified> {
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), text, &mut signature)?;
        Ok(signature)
    }
}

/// An RSA private key from a PKCS#8 (`PRIVATE KEY`) or PKCS#1
/// (`RSA PRIVATE KEY`) PEM.
pub fn rsa_key_pair(private_key_pem: &str) -> Result<RsaKeyPair, SigningError> {
    let der =
        PrivateKeyDer::from_pem_slice(private_key_pem.as_bytes()).map_err(|_| SigningError::InvalidKey)?;
    let parsed = match &der {
        PrivateKeyDer::Pkcs8(pkcs8) => RsaKeyPair::from_pkcs8(pkcs8.secret_pkcs8_der()),
        PrivateKeyDer::Pkcs1(pkcs1) => RsaKeyPair::from_der(pkcs1.secret_pkcs1_der()),
        _ => return Err(SigningError::InvalidKey),
    };
    // A private key aws-lc-rs will not sign with: not RSA, too small, broken.
    parsed.map_err(|error| SigningError::UnusableKey(error.to_string()))
}
