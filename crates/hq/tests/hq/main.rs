//! Over-the-wire tests of HQ: real servers on loopback, real HTTP.

// Marked as test code, so that clippy.toml's allow-unwrap-in-tests covers
// the helpers here too (a panic is a failed test).
#![cfg(test)]

mod aws;
mod edge;
mod feed;
mod fulfillment;
mod portal;
mod support;
