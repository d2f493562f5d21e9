//! Signing test envelopes with either SignatureVersion.
//!
//! Version 2 goes through HQ's own signer (aws-lc-rs, what HQ ships).
//! Version 1 (PKCS#1 v1.5 with SHA-1, what real SNS sends unless a topic
//! asks for 2) goes through RustCrypto's `rsa`: aws-lc-rs verifies SHA-1
//! signatures but will not make them. `rsa` (RUSTSEC-2023-0071, a timing
//! side channel on the private key) only ever holds the public test keys
//! here; no shipped binary links it (`scripts/check-deps.sh`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use contracts::{Envelope, SignatureVersion};
use hq::sns_signer::{SigningError, SnsSigner};
use rsa::PrivateKey;
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::signature::{SignatureEncoding as _, Signer as _};
use sha1::Sha1;

/// Signs envelopes with one RSA key in any SignatureVersion, naming the
/// URL its certificate is served at.
#[derive(Clone)]
pub struct TestSigner {
    v2: SnsSigner,
    v1: SigningKey<Sha1>,
}

impl std::fmt::Debug for TestSigner {
    // Like HQ's signer: never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestSigner")
            .field("cert_url", &self.v2.cert_url())
            .finish_non_exhaustive()
    }
}

impl TestSigner {
    /// From a PKCS#8 or PKCS#1 PEM private key and the URL where its
    /// certificate is served.
    pub fn from_pem(private_key_pem: &str, cert_url: impl Into<String>) -> Result<Self, SigningError> {
        let v2 = SnsSigner::from_pem(private_key_pem, cert_url)?;
        let key = PrivateKey::from_pkcs8_pem(private_key_pem)
            .or_else(|_| PrivateKey::from_pkcs1_pem(private_key_pem))
            .map_err(|_| SigningError::InvalidKey)?;
        Ok(Self {
            v2,
            v1: SigningKey::<Sha1>::new(key),
        })
    }

    /// The URL put in `SigningCertURL`.
    pub fn cert_url(&self) -> &str {
        self.v2.cert_url()
    }

    /// Sets `envelope.signing_cert_url` and `signature_version`, then
    /// `envelope.signature` = base64(sign(string_to_sign)). An unsupported
    /// version gets an empty signature, which never verifies.
    pub fn sign(&self, envelope: &mut Envelope, version: SignatureVersion) {
        // HQ's signer sets the URL and signs version 2; the signed text does
        // not include the version, so the other versions only re-sign.
        self.v2.sign(envelope);
        envelope.signature = match &version {
            SignatureVersion::V2 => return,
            SignatureVersion::V1 => STANDARD.encode(
                self.v1
                    .try_sign(envelope.string_to_sign().as_bytes())
                    .unwrap()
                    .to_vec(),
            ),
            SignatureVersion::Unsupported(_) => String::new(),
        };
        envelope.signature_version = version;
    }
}
