//! Over-the-wire tests of HQ: real servers on loopback, real HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

mod edge;
mod feed;
mod fulfillment;
mod support;
