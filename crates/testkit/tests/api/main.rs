//! Over-the-wire tests of the services: real HTTP on loopback to real
//! servers started in-process, against a fake fulfillment API.

// Marked as test code, so that clippy.toml's allow-unwrap-in-tests covers
// the helpers here too (a panic is a failed test).
#![cfg(test)]

mod metrics;
mod monolith_orders;
mod resource_orders;
mod sns_deliveries;
