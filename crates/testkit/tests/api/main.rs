//! Over-the-wire tests of the services: real HTTP on loopback to real
//! servers started in-process, against a fake fulfillment API.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

mod monolith_orders;
mod resource_orders;
mod sns_deliveries;
