//! Over-the-wire tests of the services: real HTTP on loopback to real
//! servers started in-process, against a fake fulfillment API.

// clippy.toml allows unwrap in #[test] functions only; the helpers here
// are test code too, where a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod monolith_orders;
mod resource_orders;
mod sns_deliveries;
