//! CertificateKey::from_pem and ::from_der on whatever a certificate URL
//! answered: no panic; a key taken has at least 2048 bits; refusals are
//! bounded and escaped.
#![no_main]
use libfuzzer_sys::fuzz_target;
use platform::sns::{CertificateError, CertificateKey};

include!("common.rs");

fn check(result: Result<CertificateKey, CertificateError>) {
    match result {
        Ok(key) => assert!(key.bits() >= 2048, "{} bits", key.bits()),
        Err(e) => check_message("certificate refusal", &e.to_string(), 1024),
    }
}

fuzz_target!(|data: &[u8]| {
    check(CertificateKey::from_pem(data));
    check(CertificateKey::from_der(data));
});
