//! Test-only RSA keys and self-signed certificates, for signing and verifying
//! SNS envelopes in tests and local runs.
//!
//! These keys are public (they are committed to the repository): never trust
//! them anywhere real. The certificate URL decides trust, not these keys.

/// PKCS#8 PEM of the RSA-2048 test key that signs like SNS in tests.
pub const TEST_KEY_PEM: &str = include_str!("../fixtures/sns-test-key.pem");
/// [`TEST_KEY_PEM`] as PKCS#1 (`RSA PRIVATE KEY`), made with
/// `openssl rsa -traditional`.
pub const TEST_KEY_PKCS1_PEM: &str = include_str!("../fixtures/sns-test-key-pkcs1.pem");
/// Self-signed certificate (CN `sns.us-east-1.amazonaws.com`, 100 years) for [`TEST_KEY_PEM`].
pub const TEST_CERT_PEM: &str = include_str!("../fixtures/sns-test-cert.pem");
/// PKCS#8 PEM of an unrelated RSA-2048 key, for "signed with the wrong key" tests.
pub const OTHER_KEY_PEM: &str = include_str!("../fixtures/other-key.pem");
/// Self-signed certificate for [`OTHER_KEY_PEM`].
pub const OTHER_CERT_PEM: &str = include_str!("../fixtures/other-cert.pem");
/// Self-signed certificate valid only from 2099 to 2100 (its key was thrown
/// away), for "this host's clock is behind" tests; made with Python's
/// `cryptography`, as `sns-cert-expired.pem` (2000 to 2001) was.
pub const NOT_YET_VALID_CERT_PEM: &str = include_str!("../fixtures/sns-cert-not-yet-valid.pem");
