//! What our services send out and read back, over loopback: a 2xx from the
//! fulfillment API is the truth however its body behaves, certificate
//! fetches stay bounded under forged messages, and moto's real SNS drives
//! orders end to end.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

mod cert_fetching;
mod downstream_truth;
mod moto_sns;
