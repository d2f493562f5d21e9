//! Calls to what comes after us: the fulfillment API, the monolith's glue
//! hook, SNS' SubscribeURL. One shared client per service, every call with a
//! timeout well inside SNS' 15 s, a bound on the calls in flight to each
//! target, and every failure typed so the caller can answer SNS with a
//! status that makes it retry.

use axum::http::StatusCode;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use url::Url;

/// How long a connection attempt may take before the target counts as down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Idle keep-alive connections are kept this long for reuse.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Calls in flight to one target at most, unless configured otherwise
/// (`DOWNSTREAM_MAX_CONNECTIONS`).
///
/// Each call in flight holds a connection of its own, about 14 KB of buffers
/// (more with TLS). Unbounded, a burst of 1,000 orders opened 1,000
/// connections to the API at once; 64 kept-alive connections carry over
/// 20,000 calls/s to a fast API and bound what a burst costs us and it.
pub const DEFAULT_MAX_CONNECTIONS: usize = 64;

/// Builds the one HTTP client a service shares: keep-alive, no redirects
/// (nothing we call should redirect, and following one is how SSRF starts),
/// a connect timeout; per-call timeouts are set by [`Downstream`].
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true)
        .user_agent(concat!("interstella/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Why a downstream call did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum DownstreamError {
    /// No answer within the timeout.
    #[error("{target} did not answer within {timeout:?}")]
    Timeout {
        /// Who was called.
        target: &'static str,
        /// How long we waited.
        timeout: Duration,
    },
    /// The connection could not be made.
    #[error("{target} is unreachable: {source}")]
    Unreachable {
        /// Who was called.
        target: &'static str,
        /// The connection error.
        source: reqwest::Error,
    },
    /// It answered, but not with 2xx.
    #[error("{target} answered {status}")]
    Status {
        /// Who was called.
        target: &'static str,
        /// What it answered.
        status: StatusCode,
    },
    /// Anything else on the wire.
    #[error("{target} call failed: {source}")]
    Transport {
        /// Who was called.
        target: &'static str,
        /// The transport error.
        source: reqwest::Error,
    },
}

impl DownstreamError {
    /// The status we answer with: 504 for a timeout, 503 when the target is
    /// down, 502 otherwise. All 5xx, so SNS retries.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::Unreachable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Status { .. } | Self::Transport { .. } => StatusCode::BAD_GATEWAY,
        }
    }
}

/// One downstream target: a URL, a name for logs, a timeout, the shared
/// client and a bound on the calls in flight to it.
#[derive(Debug, Clone)]
pub struct Downstream {
    client: reqwest::Client,
    url: Url,
    target: &'static str,
    timeout: Duration,
    in_flight: Arc<Semaphore>,
}

impl Downstream {
    /// A target called `target` in logs and errors, with at most
    /// [`DEFAULT_MAX_CONNECTIONS`] calls in flight.
    pub fn new(client: reqwest::Client, url: Url, target: &'static str, timeout: Duration) -> Self {
        Self {
            client,
            url,
            target,
            timeout,
            in_flight: Arc::new(Semaphore::new(DEFAULT_MAX_CONNECTIONS)),
        }
    }

    /// At most `calls` in flight (at least one); the others wait their turn
    /// within their timeout.
    pub fn with_max_connections(mut self, calls: usize) -> Self {
        self.in_flight = Arc::new(Semaphore::new(calls.clamp(1, Semaphore::MAX_PERMITS)));
        self
    }

    /// The target's URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// POSTs `body` as JSON with extra `headers`; Ok with the status only for 2xx.
    pub async fn post_json(
        &self,
        body: &impl Serialize,
        headers: &[(&'static str, &str)],
    ) -> Result<StatusCode, DownstreamError> {
        let mut request = self.client.post(self.url.clone()).json(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.finish(request).await
    }

    /// GETs the target's URL; Ok with the status only for 2xx.
    pub async fn get(&self) -> Result<StatusCode, DownstreamError> {
        self.finish(self.client.get(self.url.clone())).await
    }

    /// Sends `request` once a call slot is free; the timeout covers the wait
    /// for the slot too, so a caller never waits longer than it.
    async fn finish(&self, request: reqwest::RequestBuilder) -> Result<StatusCode, DownstreamError> {
        let target = self.target;
        let call = async {
            // The semaphore is never closed, so this cannot fail.
            let _slot = self.in_flight.acquire().await.ok();
            let response = request.send().await.map_err(|source| self.classify(source))?;
            let status = response.status();
            // Drain the body so the connection goes back to the pool.
            let _ = response.bytes().await;
            if status.is_success() {
                Ok(status)
            } else {
                Err(DownstreamError::Status { target, status })
            }
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .unwrap_or(Err(DownstreamError::Timeout {
                target,
                timeout: self.timeout,
            }))
    }

    fn classify(&self, source: reqwest::Error) -> DownstreamError {
        let target = self.target;
        if source.is_timeout() {
            DownstreamError::Timeout {
                target,
                timeout: self.timeout,
            }
        } else if source.is_connect() {
            DownstreamError::Unreachable { target, source }
        } else {
            DownstreamError::Transport { target, source }
        }
    }
}
