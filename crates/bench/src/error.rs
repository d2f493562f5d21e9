//! What can stop a benchmark run.

use std::path::PathBuf;
use std::time::Duration;

/// Why the benchmark could not run (a missed target is not an error: it is
/// printed as "missed").
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A service binary is not where it was looked for.
    #[error(
        "{0} not found; build the services first: scripts/bench does (static musl, the dist profile), \
         or give --bin-dir a directory holding monolith and iridium"
    )]
    MissingBinary(PathBuf),
    /// The load generator is not installed.
    #[error("wrk is not installed (scripts/bench installs it: apt-get install wrk): {0}")]
    NoWrk(std::io::Error),
    /// The load generator ran but gave no figures.
    #[error("wrk failed: {0}")]
    Wrk(String),
    /// A local I/O operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// A service did not answer its health check in time.
    #[error("{service} did not answer 200 on {path} within {deadline:?}; its output began:\n{output}")]
    NotHealthy {
        /// Which service.
        service: String,
        /// The health path polled.
        path: &'static str,
        /// How long we waited.
        deadline: Duration,
        /// The first lines it printed.
        output: String,
    },
    /// Reading a process' figures from /proc failed.
    #[error("reading /proc for {what}: {source}")]
    Proc {
        /// Whose figures.
        what: String,
        /// The error.
        source: procfs::ProcError,
    },
    /// The in-process SNS verification of the bench's own body failed.
    #[error("verifying the bench's signed SNS body: {0}")]
    Verify(#[from] platform::sns::VerifyError),
    /// An HTTP client error (health checks, the in-process verifier).
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    /// A URL the bench built is not one.
    #[error("bad URL: {0}")]
    Url(#[from] url::ParseError),
    /// The floor was started without a setting it needs.
    #[error("the floor needs {0} in its environment")]
    FloorEnv(&'static str),
    /// The previous figures given to `--compare` could not be read.
    #[error("reading {path} to compare with: {reason}")]
    Compare {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Serialising the figures failed.
    #[error("writing the figures as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl BenchError {
    /// An I/O error saying what was being done.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }

    /// A /proc error saying whose figures were read.
    pub fn proc(what: impl Into<String>) -> impl FnOnce(procfs::ProcError) -> Self {
        let what = what.into();
        move |source| Self::Proc { what, source }
    }
}
