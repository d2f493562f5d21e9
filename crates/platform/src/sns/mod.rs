//! Trusting Amazon SNS HTTP deliveries.
//!
//! A body that claims to come from SNS is acted on only once its signature
//! verifies against a certificate fetched from a genuine SNS location
//! ([`verify`]); the URLs a message names are checked before anything is
//! fetched ([`trust`]); and [`signing`] signs envelopes the way SNS does, for
//! tests and for HQ, our local SNS stand-in.

pub mod signing;
pub mod test_fixtures;
pub mod trust;
pub mod verify;

pub use signing::{SignatureVersion, SigningError, SnsSigner};
pub use trust::{TrustedHosts, TrustedUrl, UntrustedUrl};
pub use verify::{SnsVerifier, VerifyError};
