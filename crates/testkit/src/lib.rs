//! Test doubles and helpers for over-the-wire tests of the services.
//!
//! Everything listens on `127.0.0.1:0`: a fake fulfillment API that records
//! what it receives and can be told to fail or hang, a fake SNS that serves
//! a signing certificate and counts confirmations, and helpers that start
//! the real services in-process.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a panic is a failed test

pub mod fake_api;
pub mod fake_sns;
pub mod keys;
pub mod logs;
pub mod moto;
pub mod process;
pub mod signer;
pub mod spawn;
pub mod wait;

pub use fake_api::{ApiBehaviour, FakeApi, Received};
pub use process::ServiceProcess;
pub use signer::TestSigner;
pub use spawn::{TestApp, spawn_monolith, spawn_resource};
pub use wait::wait_until;

/// A TCP endpoint that takes every connection and never answers (a peer
/// behind a partition, a stuck proxy, a collector that hangs); its address.
/// The connections are held, unread, on a thread of its own, for as long
/// as the test process runs.
pub fn black_hole() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for connection in listener.incoming() {
            held.push(connection);
        }
    });
    addr
}
