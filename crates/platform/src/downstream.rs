//! Calls to what comes after us: the fulfillment API, the monolith's glue
//! hook, SNS' SubscribeURL. One shared client per service, every call with a
//! timeout well inside SNS' 15 s, a bound on the calls in flight to each
//! target, and every failure typed so the caller can answer SNS with a
//! status that makes it retry.
//!
//! The status line is the answer: once a target said 2xx, the order went
//! through there, and nothing about the body after it (slow, huge, cut off)
//! may turn that into a 5xx, or SNS would redeliver an order already carried
//! out. The body is still read, within a size cap and a short time bound, so
//! the connection can go back to the pool.

use crate::metrics::{CallMetrics, CallOutcome, Metrics};
use crate::secret::MaskedUrl;
use axum::http::StatusCode;
use bytes::BytesMut;
use contracts::fulfillment::REPLAYED_HEADER;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use url::Url;

/// How long a connection attempt may take before the target counts as down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Idle keep-alive connections are kept this long for reuse: less than the
/// peers we call keep them (our services 5 s by default, the stacks' ALBs
/// 15 s). A connection kept longer than its server keeps it may be taken
/// from the pool just as the server closes it, and the order on it fails;
/// reqwest's default is 90 s.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);
const _: () = assert!(
    POOL_IDLE_TIMEOUT.as_millis() < crate::server::DEFAULT_HEADER_READ_TIMEOUT_MS as u128,
    "the pool must drop a connection before our services close it"
);
/// How much of an answer's body is read; our targets answer a few bytes of
/// JSON or XML, and reading more only lets a target fill our memory.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// How long reading an answer's body may take once its status line is in; a
/// trickling body must not hold the handler (the status already decided).
pub const BODY_TIMEOUT: Duration = Duration::from_secs(1);
/// Calls in flight to one target at most, unless configured otherwise
/// (`DOWNSTREAM_MAX_CONNECTIONS`).
///
/// Each call in flight holds a connection of its own, about 14 KB of buffers
/// (more with TLS). Unbounded, a burst of 1,000 orders opened 1,000
/// connections to the API at once; 64 kept-alive connections carry over
/// 20,000 calls/s to a fast API and bound what a burst costs us and it.
pub const DEFAULT_DOWNSTREAM_CONNECTIONS: usize = 64;

/// How long before its request's deadline a call made while answering the
/// request ends: room for the route to answer what became of it. The
/// serve loop polls the route before its own timer, so any room will do.
const CALL_ENDS_BEFORE_ANSWER: Duration = Duration::from_millis(10);

/// Builds the one HTTP client a service shares: keep-alive, no redirects
/// (nothing we call should redirect, and following one is how SSRF starts),
/// a connect timeout; per-call timeouts are set by [`Downstream`].
///
/// It keeps at most `max_connections` idle connections to each host, the
/// bound its [`Downstream`]s put on calls in flight. hyper's pool races a
/// new connection against one coming back, so a burst opens some beyond
/// the bound (up to 81 at once for 64 calls in flight, 1,000 orders at
/// once). Unbounded, the pool kept them all for [`POOL_IDLE_TIMEOUT`] (71
/// after that burst); bounded, those beyond close as they come back.
pub fn http_client(max_connections: usize) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_max_idle_per_host(max_connections)
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true)
        .user_agent(concat!("interstella/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// The innermost cause of `error` ("Connection refused", a DNS failure, a
/// TLS handshake refused), which says more to an operator than reqwest's
/// "error sending request".
pub fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}

/// Why a downstream call did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum DownstreamError {
    /// No answer within the timeout.
    #[error("{target} did not answer within {timeout:?}, so it may have taken the request")]
    Timeout {
        /// Who was called.
        target: &'static str,
        /// How long we waited.
        timeout: Duration,
    },
    /// Every connection to the target stayed busy until the timeout: the
    /// request was never sent.
    #[error("{target} was not called: its {connections} connection(s) stayed busy for {timeout:?}")]
    Busy {
        /// Who was to be called.
        target: &'static str,
        /// The most calls in flight to it.
        connections: usize,
        /// How long we waited for one of them.
        timeout: Duration,
    },
    /// The connection could not be made.
    #[error("{target} at {at} is unreachable: {reason}")]
    Unreachable {
        /// Who was called.
        target: &'static str,
        /// Where: the URL's scheme, host and port, so that a wrong setting
        /// (a `monolithUrl` naming the wrong load balancer) shows; never its
        /// path or query, which may carry a token.
        at: String,
        /// Why, for a person: the innermost cause ("Connection refused", a
        /// DNS failure), or how long the connection was waited for.
        reason: String,
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
    /// Anything else on the wire: the connection was made and failed
    /// midway, so the target may have acted on the request.
    #[error("{target} call failed midway, so it may have taken the request: {reason}")]
    Transport {
        /// Who was called.
        target: &'static str,
        /// Why, for a person: the innermost cause ("connection closed
        /// before message completed"), not reqwest's "error sending request".
        reason: String,
        /// The transport error.
        source: reqwest::Error,
    },
}

/// A target's 2xx answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// Its status.
    pub status: StatusCode,
    /// Whether it said it repeats an earlier answer ([`REPLAYED_HEADER`]
    /// `true`): the order was counted once, before.
    pub replayed: bool,
}

/// The status the target answered with, if it answered: the workshop's
/// `API Status Code: N` lines print it whatever it was.
pub fn answered(call: &Result<Answer, DownstreamError>) -> Option<StatusCode> {
    match call {
        Ok(Answer { status, .. }) | Err(DownstreamError::Status { status, .. }) => Some(*status),
        Err(_) => None,
    }
}

impl DownstreamError {
    /// The status we answer with: 504 for a timeout, the target's own 504
    /// included (the monolith's for the fulfillment API, so a
    /// microservice's caller sees the timeout behind it); 503 when the
    /// target is down or every connection to it stayed busy, so nothing
    /// was sent (not the target's own 503, which it may answer having
    /// recorded the order); 502 otherwise. All 5xx, so SNS retries.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::Status { status, .. } if *status == StatusCode::GATEWAY_TIMEOUT => *status,
            Self::Unreachable { .. } | Self::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Status { .. } | Self::Transport { .. } => StatusCode::BAD_GATEWAY,
        }
    }
}

/// Why an answer's body was not read to its end.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// It was larger than the cap; the rest was not read.
    #[error("the body is larger than {limit} bytes")]
    TooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
    /// It did not arrive in time.
    #[error("the body did not arrive within {0:?}")]
    Slow(Duration),
    /// The connection broke while reading it.
    #[error("the body was cut off: {0}")]
    Broken(reqwest::Error),
}

/// `request` with `headers` added.
fn with_headers(
    mut request: reqwest::RequestBuilder,
    headers: &[(&'static str, &str)],
) -> reqwest::RequestBuilder {
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request
}

/// Reads `response`'s body, at most `limit` bytes and within `timeout`.
///
/// A `Content-Length` over the limit is refused before any of the body is
/// read; a body that turns out larger is refused at the first chunk past it.
pub async fn read_body(
    mut response: reqwest::Response,
    limit: usize,
    timeout: Duration,
) -> Result<BytesMut, BodyError> {
    let read = async {
        if response.content_length().is_some_and(|len| len > limit as u64) {
            return Err(BodyError::TooLarge { limit });
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| BodyError::Broken(error.without_url()))?
        {
            if body.len() + chunk.len() > limit {
                return Err(BodyError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or(Err(BodyError::Slow(timeout)))
}

/// One downstream target: a URL, a name for logs, a timeout, the shared
/// client and a bound on the calls in flight to it. Its `Debug` shows the
/// URL masked, as logs do: it may carry a password or a token.
#[derive(Clone)]
pub struct Downstream {
    client: reqwest::Client,
    url: MaskedUrl,
    target: &'static str,
    timeout: Duration,
    in_flight: Arc<Semaphore>,
    /// The most calls in flight, `in_flight`'s permits when none is taken.
    connections: usize,
    metrics: CallMetrics,
}

impl std::fmt::Debug for Downstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Downstream")
            .field("url", &self.url)
            .field("target", &self.target)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Downstream {
    /// A target called `target` in logs and errors, with at most
    /// [`DEFAULT_DOWNSTREAM_CONNECTIONS`] calls in flight.
    pub fn new(client: reqwest::Client, url: Url, target: &'static str, timeout: Duration) -> Self {
        Self {
            client,
            url: url.into(),
            target,
            timeout,
            in_flight: Arc::new(Semaphore::new(DEFAULT_DOWNSTREAM_CONNECTIONS)),
            connections: DEFAULT_DOWNSTREAM_CONNECTIONS,
            metrics: CallMetrics::default(),
        }
    }

    /// Counts and times the calls to this target in `metrics`.
    pub fn with_metrics(mut self, metrics: &Metrics) -> Self {
        self.metrics = metrics.downstream(self.target);
        self
    }

    /// At most `calls` in flight (at least one); the others wait their turn
    /// within their timeout.
    pub fn with_max_connections(mut self, calls: usize) -> Self {
        self.connections = calls.clamp(1, Semaphore::MAX_PERMITS);
        self.in_flight = Arc::new(Semaphore::new(self.connections));
        self
    }

    /// The target's URL.
    pub fn url(&self) -> &Url {
        self.url.expose()
    }

    /// POSTs `body` as JSON with extra `headers`; Ok only for 2xx.
    pub async fn post_json(
        &self,
        body: &impl Serialize,
        headers: &[(&'static str, &str)],
    ) -> Result<Answer, DownstreamError> {
        self.finish(|| with_headers(self.client.post(self.url().clone()).json(body), headers))
            .await
    }

    /// GETs the target's URL with extra `headers`; Ok only for 2xx.
    pub async fn get(&self, headers: &[(&'static str, &str)]) -> Result<Answer, DownstreamError> {
        self.finish(|| with_headers(self.client.get(self.url().clone()), headers))
            .await
    }

    /// Sends the request `build` makes once a call slot is free. The
    /// timeout covers the wait for the slot, the call, and reading the
    /// answer's body (for at most [`BODY_TIMEOUT`] of what is left), so a
    /// caller never waits longer than it: the serve loop's start-up check
    /// that the request timeout outlasts a route's work counts on that.
    ///
    /// The request is built only once the slot is ours: a burst of orders
    /// queued for the slots (1,000 at once after a gather) then holds no
    /// headers, URLs or bodies yet. And this is one function, not one
    /// awaiting another: rustc keeps an async function's arguments beside
    /// the future it awaits (see docs/bench.md).
    async fn finish(
        &self,
        build: impl FnOnce() -> reqwest::RequestBuilder,
    ) -> Result<Answer, DownstreamError> {
        let target = self.target;
        let counted = self.metrics.start();
        let started = tokio::time::Instant::now();
        // Within a request's answer, the call ends before the request's
        // deadline (a gather that overran, a slow body): the route answers
        // what became of it, not the serve loop's 503 "nothing was sent".
        let deadline = match crate::server::RequestDeadline::current() {
            Some(answer_by) => {
                let ends_by = answer_by
                    .0
                    .checked_sub(CALL_ENDS_BEFORE_ANSWER)
                    .unwrap_or(answer_by.0);
                (started + self.timeout).min(ends_by)
            }
            None => started + self.timeout,
        };
        let allowed = deadline.saturating_duration_since(started);
        let call = async {
            // The semaphore is never closed, so this cannot fail.
            let slot = self.in_flight.acquire().await.ok();
            // From here the timeout, if it comes, finds the request sent.
            let under_way = counted.under_way();
            // The trace goes on with the call (nothing is added when tracing is off).
            let request = build().headers(crate::traces::outgoing_headers());
            let response = request.send().await.map_err(|source| self.classify(source))?;
            Ok((slot, under_way, response))
        };
        let result = match tokio::time::timeout_at(deadline, call).await {
            Ok(Ok((_slot, _under_way, response))) => {
                let status = response.status();
                let replayed = response
                    .headers()
                    .get(REPLAYED_HEADER)
                    .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"true"));
                // Read (and drop) the body so the connection goes back to the
                // pool; the slot stays held meanwhile, as the connection is
                // still busy.
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                let drained = read_body(response, MAX_BODY_BYTES, BODY_TIMEOUT.min(left)).await;
                if !status.is_success() {
                    Err(DownstreamError::Status { target, status })
                } else {
                    if let Err(error) = drained {
                        // The answer is the status line: 2xx means it went through.
                        tracing::warn!(target, status = status.as_u16(), %error, "answered 2xx, but its body was not read");
                    }
                    if replayed {
                        tracing::info!(target, "a repeat: the order was counted once, before");
                    }
                    Ok(Answer { status, replayed })
                }
            }
            Ok(Err(error)) => Err(error),
            Err(_) if !counted.sent() => Err(DownstreamError::Busy {
                target,
                connections: self.connections,
                timeout: allowed,
            }),
            Err(_) => Err(DownstreamError::Timeout {
                target,
                timeout: allowed,
            }),
        };
        counted.finished(match &result {
            Ok(_) => CallOutcome::Ok,
            Err(DownstreamError::Timeout { .. }) => CallOutcome::Timeout,
            Err(DownstreamError::Busy { .. }) => CallOutcome::Busy,
            Err(DownstreamError::Unreachable { .. }) => CallOutcome::Unreachable,
            Err(DownstreamError::Status { .. }) => CallOutcome::Status,
            Err(DownstreamError::Transport { .. }) => CallOutcome::Transport,
        });
        result
    }

    fn classify(&self, source: reqwest::Error) -> DownstreamError {
        let target = self.target;
        // The error's text would name the URL, query and all: a SubscribeURL
        // carries its subscription's token there. `target` says who it was.
        let source = source.without_url();
        // A connection never made (refused, no route, a name that does not
        // resolve, or CONNECT_TIMEOUT passed) sent nothing: unreachable,
        // whatever timed out, not a target slow to answer.
        if source.is_connect() {
            let reason = if source.is_timeout() {
                format!("no connection within {CONNECT_TIMEOUT:?}")
            } else {
                root_cause(&source)
            };
            DownstreamError::Unreachable {
                target,
                at: self.url().origin().ascii_serialization(),
                reason,
                source,
            }
        } else if source.is_timeout() {
            DownstreamError::Timeout {
                target,
                timeout: self.timeout,
            }
        } else {
            DownstreamError::Transport {
                target,
                reason: root_cause(&source),
                source,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The URL may carry a password or a token, as logs show it masked;
    /// `Debug` too.
    #[test]
    fn a_downstreams_debug_masks_its_url() {
        let url =
            Url::parse("https://user:s3cret-password@api.example.com/receiving/?token=s3cret-token").unwrap();
        let target = Downstream::new(reqwest::Client::new(), url, "api", Duration::from_secs(1));
        let shown = format!("{target:?}");
        assert!(
            shown.contains("api.example.com") && !shown.contains("s3cret"),
            "{shown}"
        );
    }

    /// A call that times out waiting for a connection was never sent: not
    /// "may have taken the request" (504), but nothing sent (503), and said
    /// so, so that DOWNSTREAM_MAX_CONNECTIONS is the setting looked at.
    #[tokio::test]
    async fn a_call_that_never_got_a_connection_was_not_sent() {
        // Nothing listens there: the call must not get as far as trying.
        let url = Url::parse("http://127.0.0.1:9/receiving/").unwrap();
        let metrics = crate::Metrics::new();
        let target = Downstream::new(
            reqwest::Client::new(),
            url,
            "fulfillment API",
            Duration::from_millis(200),
        )
        .with_max_connections(2)
        .with_metrics(&metrics);
        let _both = Arc::clone(&target.in_flight).acquire_many_owned(2).await.unwrap();
        let error = target.get(&[]).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "fulfillment API was not called: its 2 connection(s) stayed busy for 200ms"
        );
        assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
        // Cut short by its request's own deadline while still waiting: busy
        // too, not a timeout (which may have been taken).
        let cut = tokio::time::timeout(Duration::from_millis(50), target.get(&[])).await;
        assert!(cut.is_err(), "{cut:?}");
        let scraped = metrics.render();
        for (outcome, count) in [("busy", 2), ("timeout", 0)] {
            let line = format!(
                r#"interstella_downstream_calls_total{{target="fulfillment API",outcome="{outcome}"}} {count}"#
            );
            assert!(scraped.contains(&line), "{line} in {scraped}");
        }
    }
}
