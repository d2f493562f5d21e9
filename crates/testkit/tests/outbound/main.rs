//! What our services send out and read back, over loopback: a 2xx from the
//! fulfillment API is the truth however its body behaves, certificate
//! fetches stay bounded under forged messages, and moto's real SNS drives
//! orders end to end.

// Marked as test code, so that clippy.toml's allow-unwrap-in-tests covers
// the helpers here too (a panic is a failed test).
#![cfg(test)]

mod cert_fetching;
mod downstream_truth;
mod moto_sns;
mod pool_bound;
