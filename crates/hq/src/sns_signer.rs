//! Signing SNS envelopes the way Amazon SNS does.
//!
//! HQ, our local SNS stand-in, signs what it delivers with this, so its
//! messages verify exactly like real ones; tests sign with it too. The
//! services only verify (platform::sns).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use contracts::{Envelope, SignatureVersion};
use rsa::RsaPrivateKey;
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::signature::{SignatureEncoding as _, Signer as _};
use sha1::Sha1;
use sha2::Sha256;

/// Why a signer could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The PEM is neither a PKCS#8 nor a PKCS#1 RSA private key.
    #[error("not a PKCS#8 or PKCS#1 RSA private key PEM")]
    InvalidKey,
    /// The key parsed but cannot make SNS signatures (e.g. too small for SHA-256).
    #[error("the key cannot sign: {0}")]
    UnusableKey(String),
}

/// Signs envelopes with one RSA key, naming the URL its certificate is served at.
#[derive(Clone)]
pub struct SnsSigner {
    v1: SigningKey<Sha1>,
    v2: SigningKey<Sha256>,
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
        let key = RsaPrivateKey::from_pkcs8_pem(private_key_pem)
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(private_key_pem))
            .map_err(|_| SigningError::InvalidKey)?;
        let signer = Self {
            v1: SigningKey::<Sha1>::new(key.clone()),
            v2: SigningKey::<Sha256>::new(key),
            cert_url: cert_url.into(),
        };
        // Sign once now so that `sign` cannot fail later.
        signer
            .v1
            .try_sign(b"probe")
            .and(signer.v2.try_sign(b"probe"))
            .map_err(|e| SigningError::UnusableKey(e.to_string()))?;
        Ok(signer)
    }

    /// The URL put in `SigningCertURL`.
    pub fn cert_url(&self) -> &str {
        &self.cert_url
    }

    /// Sets `envelope.signing_cert_url` and `signature_version`, then
    /// `envelope.signature` = base64(sign(string_to_sign)). An unsupported
    /// version gets an empty signature, which never verifies.
    pub fn sign(&self, envelope: &mut Envelope, version: SignatureVersion) {
        envelope.signing_cert_url.clone_from(&self.cert_url);
        let text = envelope.string_to_sign();
        let signature = match &version {
            SignatureVersion::V1 => self.v1.try_sign(text.as_bytes()).map(|s| s.to_vec()),
            SignatureVersion::V2 => self.v2.try_sign(text.as_bytes()).map(|s| s.to_vec()),
            SignatureVersion::Unsupported(_) => Ok(Vec::new()),
        };
        envelope.signature_version = version;
        envelope.signature = match signature {
            Ok(bytes) => STANDARD.encode(bytes),
            Err(error) => {
                // Unreachable after the probe in `from_pem`; an empty
                // signature fails verification rather than taking the service down.
                tracing::error!(%error, "signing an SNS envelope failed");
                String::new()
            }
        };
    }
}
