//! Trusting Amazon SNS HTTP deliveries (docs/contract.md, Trust).
//!
//! A body that claims to come from SNS is acted on only once its signature
//! verifies against a certificate fetched from a genuine SNS location
//! ([`verify`]); the URLs a message names are checked before anything is
//! fetched ([`trust`]). Signing lives with HQ, the only signer.

mod fetch_slots;
pub mod trust;
pub mod verify;

pub use trust::{TrustedHosts, TrustedUrl, UntrustedUrl};
pub use verify::{CertificateError, CertificateKey, SnsVerifier, VerifyError};
