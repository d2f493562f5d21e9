//! What every Interstella service shares.
//!
//! The monolith and the resource microservices differ only in what an order
//! does; receiving it (SNS or curl, verified, with honest status codes),
//! replying, calling downstream with timeouts, reading shared settings,
//! logging and serving with a graceful drain are the same, and live here once.

#[cfg(feature = "jemalloc")]
pub mod allocator;
pub mod downstream;
pub mod error;
pub mod intake;
pub mod metrics;
pub mod reply;
pub mod route;
pub mod secret;
pub mod server;
pub mod settings;
pub mod sns;
pub mod startup;
// One quoting helper for every service: it lives with the error types.
pub use contracts::quote;
pub mod telemetry;
pub mod terminal;
pub mod traces;

pub use downstream::{Downstream, DownstreamError};
pub use error::ServiceError;
pub use intake::{OrderIntake, Received, SnsOrigin};
pub use metrics::Metrics;
pub use secret::{ApiKey, HookSecret, HookSecretSetting, HookSecrets, MaskedUrl};
pub use server::{RequestDeadline, ServerLimits, serve, serve_with};
pub use settings::{ConfigError, LogFormat, TrustConfig};
