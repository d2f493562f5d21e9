//! `parse_delivery`, for both order types, with and without SNS' header:
//! no panic; with the header (the one-pass read) it decides as without it
//! (the validating read) whenever the body names its `Type`; an envelope
//! written back reads back the same; refusals are escaped and bounded; the
//! string to sign, the MessageId check, the order inside and the signature
//! check (against the test certificate's key) run on whatever was read.
#![no_main]
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use contracts::{
    BundleOrder, Delivery, DeliveryError, Order, ResourceOrder, TypeHeader, message_order, parse_delivery,
};
use libfuzzer_sys::fuzz_target;
use platform::sns::CertificateKey;
use std::sync::OnceLock;

include!("common.rs");

/// A refusal is a parser message cut at 240 characters (each escaped in at
/// most 10 bytes) and fixed text.
const MAX_REFUSAL: usize = 4096;

fn key() -> &'static CertificateKey {
    static KEY: OnceLock<CertificateKey> = OnceLock::new();
    KEY.get_or_init(|| {
        CertificateKey::from_pem(include_bytes!("../../crates/testkit/fixtures/sns-test-cert.pem"))
            .expect("the test certificate")
    })
}

fn check<O: Order>(body: &[u8]) {
    // Without the header only a body naming its `Type` is an envelope, and
    // it is read the validating way: the oracle for the one-pass read.
    // The header's value does not matter: its presence claims SNS.
    let validated = parse_delivery::<O>(body, TypeHeader::NotSent);
    let one_pass = parse_delivery::<O>(body, TypeHeader::Sent);
    match (&validated, &one_pass) {
        (Ok(Delivery::Sns(expected)), Ok(Delivery::Sns(got))) => {
            assert_eq!(expected, got, "the two reads differ")
        }
        (Ok(Delivery::Sns(_)), Err(_)) | (_, Ok(_)) => {
            panic!("the two reads disagree:\n without: {validated:?}\n with: {one_pass:?}")
        }
        (_, Err(_)) => {}
    }
    let read = [one_pass, validated];
    for delivery in read {
        match delivery {
            Err(error) => check_refusal(&error),
            Ok(Delivery::Direct(message)) => {
                if let Err(error) = message_order::<O>(&message) {
                    check_message("the order in a direct Message", &error.to_string(), MAX_REFUSAL);
                }
            }
            Ok(Delivery::Sns(envelope)) => {
                let written = serde_json::to_vec(&envelope).expect("an envelope is written");
                for header in [TypeHeader::NotSent, TypeHeader::Sent] {
                    match parse_delivery::<O>(&written, header) {
                        Ok(Delivery::Sns(again)) => assert_eq!(again, envelope, "the round trip changed it"),
                        other => panic!("a written envelope reads back as {other:?}"),
                    }
                }
                let text = envelope.string_to_sign();
                assert!(text.ends_with(&format!("Type\n{}\n", envelope.message_type)));
                let _ = envelope.has_sns_message_id();
                let _ = envelope.traceparent();
                if let Err(error) = O::from_text(envelope.message.as_bytes()) {
                    check_message("the order in an SNS Message", &error.to_string(), MAX_REFUSAL);
                }
                if let Ok(signature) = STANDARD.decode(envelope.signature.as_bytes()) {
                    let _ = key().verify(&envelope.signature_version, text.as_bytes(), &signature);
                }
            }
        }
    }
}

fn check_refusal(error: &DeliveryError) {
    check_message("DeliveryError", &error.to_string(), MAX_REFUSAL);
}

fuzz_target!(|body: &[u8]| {
    check::<BundleOrder>(body);
    check::<ResourceOrder>(body);
});
