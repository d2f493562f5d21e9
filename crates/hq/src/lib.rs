//! Interstella HQ on one machine: the parts of the workshop that only ever
//! ran in AWS, so the platform runs with no AWS account.
//!
//! - the fulfillment API (`POST /receiving/`, API Gateway + DynamoDB in the
//!   workshop) recording into an SQLite [`ledger`], with idempotency keys;
//! - the key portal ([`keys`]) and, for browsers, its web page and the live
//!   [`dashboard`] ([`portal`]);
//! - an [`admin`] credential guarding everything but the fulfillment API,
//!   the SNS links and the read-only pages, and HQ's own [`hosts`] names,
//!   so that a page elsewhere cannot take HQ for its own site;
//! - an SNS-compatible order [`feed`] with three topics, signed deliveries
//!   ([`signing`]) retried like SNS, and the order generator, which
//!   publishes there or, on AWS, to real SNS topics ([`publisher`]).
//!
//! [`start`] runs it on a listener (tests and the launcher, in-process);
//! [`run`] serves until a stop, then drains and returns the reconciliation
//! (the `hq` binary adds the signals, the listener and the output).
//!
//! Dependencies flow one way: [`server`] starts [`api`]'s router over the
//! shared [`state`], which holds the [`ledger`] and the [`feed`].

pub mod admin;
pub mod api;
pub mod binary;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod faults;
pub mod feed;
pub mod hosts;
pub mod keys;
pub mod ledger;
pub mod portal;
pub mod publisher;
mod secret_file;
pub mod server;
pub mod signing;
pub mod sns_signer;
pub mod state;

pub use config::HqConfig;
pub use server::{RunningHq, run, start};
pub use state::{Hq, StartError};
