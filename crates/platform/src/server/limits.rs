//! How long and how much a client may take of a service: the limits of the
//! serve loop, each a setting (environment variable and same-named flag)
//! that the monolith and resource command lines flatten.

use crate::settings::{max_connections, millis};
use std::time::Duration;

/// The limits [`serve_with`](super::serve_with) enforces, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Time a client has to send a request's head, counted from when the
    /// connection waits for one; so it also closes a keep-alive connection
    /// idle this long (`HEADER_READ_TIMEOUT_MS`).
    pub header_read_timeout: Duration,
    /// Time a client has to send a request's body once its head is in
    /// (`BODY_READ_TIMEOUT_MS`); a slower body is answered 503, which SNS
    /// retries (a 408 it would count as delivered).
    pub body_read_timeout: Duration,
    /// Time from a request's head to its response (`REQUEST_TIMEOUT_MS`),
    /// answered 503 (SNS retries it) when exceeded.
    pub request_timeout: Duration,
    /// Time a write to a client may wait for it to take more of a response
    /// (`WRITE_TIMEOUT_MS`); then the connection is closed. Counted between
    /// two writes that make progress, as nginx's `send_timeout`.
    pub write_timeout: Duration,
    /// Connections served at once (`MAX_CONNECTIONS`). At the bound, those
    /// serving no request are closed to make room for the next; more wait in
    /// the kernel's accept queue, and with every one busy a few more are
    /// served beside the bound, one `GET` each (see `serve_with`).
    pub max_connections: usize,
    /// The largest request head in bytes (`MAX_HEADER_BYTES`); a larger one
    /// is answered 431. Also the most hyper's read buffer grows to.
    pub max_header_bytes: usize,
    /// Time in-flight requests get to finish after SIGTERM (`DRAIN_TIMEOUT_MS`)
    /// before the connections left are closed.
    pub drain_timeout: Duration,
}

/// Default `HEADER_READ_TIMEOUT_MS`: a client on any real network sends a
/// head in well under a second; a connection held longer without one is
/// taking a slot (slow loris), which at the connection bound is closed to
/// make room.
pub const DEFAULT_HEADER_READ_TIMEOUT_MS: u64 = 5_000;
/// Default `BODY_READ_TIMEOUT_MS`: orders are a few hundred bytes, SNS
/// envelopes a few KiB.
pub const DEFAULT_BODY_READ_TIMEOUT_MS: u64 = 5_000;
/// Default `REQUEST_TIMEOUT_MS`: longer than the longest downstream timeout
/// and the gather ([`crate::route::HOOK_CALL_TIMEOUT_MS`], iridium and
/// magnesite calling the monolith) so their answer gets back, and shorter
/// than SNS' 15 s so SNS sees our 503, not its own timeout.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 14_000;
/// Default `WRITE_TIMEOUT_MS`: a client that reads its responses takes a
/// few KiB of ours within milliseconds; one that stops reading holds a
/// connection slot no longer than a slow head does.
pub const DEFAULT_WRITE_TIMEOUT_MS: u64 = 5_000;
/// Default `MAX_CONNECTIONS`: about 21 KB each while busy with an order
/// (docs/bench.md), so 1,024 stay near 30 MB with the binary's pages (large
/// bodies have a budget of their own, `BODY_BUDGET`), and inside the usual
/// 1,024 open-file limit's neighbourhood with the downstream pool on top.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default `MAX_HEADER_BYTES`: SNS sends about 1 KiB of headers, a browser a
/// few KiB.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;
/// The smallest `MAX_HEADER_BYTES` hyper accepts.
pub const MIN_HEADER_BYTES: usize = 8192;
/// The largest `MAX_HEADER_BYTES` accepted.
pub const MAX_HEADER_BYTES_LIMIT: usize = 1024 * 1024;
/// Default `DRAIN_TIMEOUT_MS`: longer than the request timeout, so every
/// request already in when SIGTERM arrives gets its answer (or its 503), and
/// well inside ECS' 30 s stop timeout, after which the task is killed.
pub const DEFAULT_DRAIN_TIMEOUT_MS: u64 = 20_000;

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: millis(DEFAULT_HEADER_READ_TIMEOUT_MS),
            body_read_timeout: millis(DEFAULT_BODY_READ_TIMEOUT_MS),
            request_timeout: millis(DEFAULT_REQUEST_TIMEOUT_MS),
            write_timeout: millis(DEFAULT_WRITE_TIMEOUT_MS),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            drain_timeout: millis(DEFAULT_DRAIN_TIMEOUT_MS),
        }
    }
}

/// Limits that cannot work together.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LimitsError {
    /// The drain would cut off requests the request timeout still allows.
    #[error(
        "DRAIN_TIMEOUT_MS ({drain_ms}) must exceed REQUEST_TIMEOUT_MS ({request_ms}): requests in flight at SIGTERM must get their answer"
    )]
    DrainShorterThanRequest {
        /// `DRAIN_TIMEOUT_MS`.
        drain_ms: u128,
        /// `REQUEST_TIMEOUT_MS`.
        request_ms: u128,
    },
    /// An order could still be on its way to the next service when the
    /// request timeout answers 503: one the API then fulfils would be
    /// reported as failed, and a curl order sent again counted twice.
    #[error(
        "REQUEST_TIMEOUT_MS ({request_ms}) must exceed DOWNSTREAM_TIMEOUT_MS plus GATHER_DELAY_MS ({work_ms}): an order the next service fulfils in time must get its 200"
    )]
    RequestShorterThanWork {
        /// `REQUEST_TIMEOUT_MS`.
        request_ms: u128,
        /// `DOWNSTREAM_TIMEOUT_MS` plus `GATHER_DELAY_MS`.
        work_ms: u128,
    },
}

impl ServerLimits {
    /// These limits, if the request timeout outlasts `work`: what carrying
    /// out one order may take (see [`LimitsError::RequestShorterThanWork`]).
    pub fn outlasting(self, work: Duration) -> Result<Self, LimitsError> {
        if self.request_timeout <= work {
            return Err(LimitsError::RequestShorterThanWork {
                request_ms: self.request_timeout.as_millis(),
                work_ms: work.as_millis(),
            });
        }
        Ok(self)
    }

    /// Checks that the limits work together: the drain outlasts any request.
    pub fn checked(self) -> Result<Self, LimitsError> {
        if self.drain_timeout <= self.request_timeout {
            return Err(LimitsError::DrainShorterThanRequest {
                drain_ms: self.drain_timeout.as_millis(),
                request_ms: self.request_timeout.as_millis(),
            });
        }
        Ok(self)
    }
}

/// The serve loop's limits on the command line and in the environment.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct ServerLimitArgs {
    /// Time a client has to send a request's head (and the longest a
    /// keep-alive connection stays idle), in milliseconds.
    #[arg(long, env = "HEADER_READ_TIMEOUT_MS", default_value_t = DEFAULT_HEADER_READ_TIMEOUT_MS, value_parser = crate::settings::millis_at_least::<1>)]
    pub header_read_timeout_ms: u64,
    /// Time a client has to send a request's body, in milliseconds; slower gets 503.
    #[arg(long, env = "BODY_READ_TIMEOUT_MS", default_value_t = DEFAULT_BODY_READ_TIMEOUT_MS, value_parser = crate::settings::millis_at_least::<1>)]
    pub body_read_timeout_ms: u64,
    /// Time from a request's head to its response, in milliseconds; longer gets 503.
    #[arg(long, env = "REQUEST_TIMEOUT_MS", default_value_t = DEFAULT_REQUEST_TIMEOUT_MS, value_parser = crate::settings::millis_at_least::<1>)]
    pub request_timeout_ms: u64,
    /// Time a write may wait for the client to take more of a response, in
    /// milliseconds; then the connection is closed.
    #[arg(long, env = "WRITE_TIMEOUT_MS", default_value_t = DEFAULT_WRITE_TIMEOUT_MS, value_parser = crate::settings::millis_at_least::<1>)]
    pub write_timeout_ms: u64,
    /// Connections served at once (1 to 4096, as `DOWNSTREAM_MAX_CONNECTIONS`);
    /// at the bound, those serving no request are closed to make room, and
    /// with every one busy the health check is served beside them.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS, value_parser = max_connections)]
    pub max_connections: usize,
    /// The largest request head in bytes (8192 to 1048576); larger gets 431.
    #[arg(long, env = "MAX_HEADER_BYTES", default_value_t = DEFAULT_MAX_HEADER_BYTES, value_parser = header_bytes)]
    pub max_header_bytes: usize,
    /// Time in-flight requests get to finish after SIGTERM, in milliseconds.
    #[arg(long, env = "DRAIN_TIMEOUT_MS", default_value_t = DEFAULT_DRAIN_TIMEOUT_MS, value_parser = crate::settings::millis_at_least::<1>)]
    pub drain_timeout_ms: u64,
}

impl ServerLimitArgs {
    /// The limits these settings give, checked ([`ServerLimits::checked`];
    /// a route's work is checked against them by [`ServerLimits::outlasting`]).
    pub fn limits(&self) -> Result<ServerLimits, LimitsError> {
        ServerLimits {
            header_read_timeout: millis(self.header_read_timeout_ms),
            body_read_timeout: millis(self.body_read_timeout_ms),
            request_timeout: millis(self.request_timeout_ms),
            write_timeout: millis(self.write_timeout_ms),
            max_connections: self.max_connections,
            max_header_bytes: self.max_header_bytes,
            drain_timeout: millis(self.drain_timeout_ms),
        }
        .checked()
    }
}

/// Parses `MAX_HEADER_BYTES`: a whole number from [`MIN_HEADER_BYTES`] to
/// [`MAX_HEADER_BYTES_LIMIT`].
pub fn header_bytes(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if (MIN_HEADER_BYTES..=MAX_HEADER_BYTES_LIMIT).contains(&n) => Ok(n),
        _ => Err(format!(
            "expected a whole number from {MIN_HEADER_BYTES} to {MAX_HEADER_BYTES_LIMIT}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        limits: ServerLimitArgs,
    }

    #[test]
    fn the_settings_default_to_the_default_limits() {
        let cli = Cli::try_parse_from(["test"]).map_err(|e| e.to_string());
        let limits = cli.map(|cli| cli.limits.limits());
        assert_eq!(limits, Ok(Ok(ServerLimits::default())));
    }

    #[test]
    fn a_drain_shorter_than_a_request_is_refused() {
        let cli = Cli::try_parse_from(["test", "--drain-timeout-ms", "14000"]).map_err(|e| e.to_string());
        let refused = cli.map(|cli| cli.limits.limits().is_err());
        assert_eq!(refused, Ok(true));
    }

    #[test]
    fn a_request_timeout_within_the_routes_work_is_refused() {
        let cli = Cli::try_parse_from(["test", "--request-timeout-ms", "6000"]).map_err(|e| e.to_string());
        let answer = |work_ms| {
            cli.as_ref().map(|cli| {
                cli.limits
                    .limits()
                    .and_then(|l| l.outlasting(millis(work_ms)))
                    .map(|l| l.request_timeout)
            })
        };
        assert_eq!(answer(5_999), Ok(Ok(millis(6_000))));
        assert_eq!(
            answer(6_000),
            Ok(Err(LimitsError::RequestShorterThanWork {
                request_ms: 6_000,
                work_ms: 6_000
            }))
        );
    }

    #[test]
    fn header_bytes_stay_within_what_hyper_takes() {
        assert!(header_bytes("8191").is_err());
        assert_eq!(header_bytes("8192"), Ok(8192));
        assert_eq!(header_bytes(" 16384 "), Ok(16384));
        assert!(header_bytes("1048577").is_err());
        assert!(Cli::try_parse_from(["test", "--max-connections", "4097"]).is_err());
    }
}
