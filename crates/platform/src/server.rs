//! The serve loop: HTTP/1.1 straight on hyper, with the limits that keep a
//! service answering when clients are slow, many or hostile, and a drain on
//! SIGTERM that ends within a deadline.
//!
//! `axum::serve` gives hyper no timer, which silently turns off its header
//! timeout: connections that never finish their headers, or send a body a
//! byte at a time, stayed open forever, and SIGTERM waited for them until
//! ECS killed the task. Here every way a client can hold a connection has a
//! bound (see [`ServerLimits`]), and so does the drain.

mod limits;

pub use limits::{
    DEFAULT_BODY_READ_TIMEOUT_MS, DEFAULT_DRAIN_TIMEOUT_MS, DEFAULT_HEADER_READ_TIMEOUT_MS,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_HEADER_BYTES, DEFAULT_REQUEST_TIMEOUT_MS, LimitsError,
    MAX_HEADER_BYTES_LIMIT, MIN_HEADER_BYTES, ServerLimitArgs, ServerLimits, header_bytes,
};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tower::Layer;
use tower_http::normalize_path::{NormalizePath, NormalizePathLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

/// The largest body accepted: SNS messages are at most 256 KiB, and JSON
/// escaping inside the envelope can double that.
pub const BODY_LIMIT: usize = 512 * 1024;

/// How long to wait before accepting again when accepting fails for want of
/// file descriptors or memory: the failure would repeat at once.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Serves `router` on `listener` with the default [`ServerLimits`] until
/// `shutdown` resolves, then drains (see [`serve_with`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, router, ServerLimits::default(), shutdown).await
}

/// Serves `router` on `listener` within `limits` until `shutdown` resolves,
/// then drains: stops accepting, closes idle connections, lets requests in
/// flight finish for up to `limits.drain_timeout`, closes whatever is left
/// and returns.
///
/// `/order` and `/order/` are the same route: the path is normalised before
/// routing, which is why the layer wraps the router rather than being added
/// to it. Bodies over [`BODY_LIMIT`] get 413, bodies slower than the body
/// timeout 408, heads over the header limit 431, requests slower than the
/// request timeout 503. Beyond `limits.max_connections`, connections wait
/// in the kernel's accept queue.
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app(router, &limits);
    let http = http1_builder(&limits);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (drain, draining) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut slot: Option<OwnedSemaphorePermit> = None;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            // At the bound, stop accepting: new connections wait in the
            // kernel's queue, not in our memory.
            permit = Arc::clone(&slots).acquire_owned(), if slot.is_none() => slot = permit.ok(),
            accepted = listener.accept(), if slot.is_some() => match accepted {
                Ok((stream, _peer)) => {
                    let connection = serve_connection(http.clone(), stream, app.clone(), draining.clone());
                    let permit = slot.take();
                    connections.spawn(async move {
                        connection.await;
                        drop(permit);
                    });
                }
                Err(error) => accept_failed(error).await,
            },
        }
    }
    drop(listener);
    let _ = drain.send(true);
    let in_flight = connections.len();
    let drained = tokio::time::timeout(limits.drain_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            left = connections.len(),
            of = in_flight,
            "drain deadline ({:?}) passed: closing the connections left",
            limits.drain_timeout
        );
        connections.shutdown().await;
    }
    Ok(())
}

/// What hyper serves: the router with everything every service answers the
/// same way (path normalisation, access log, request timeout, body timeout
/// and limit).
type App = TowerToHyperService<NormalizePath<Router>>;

/// Wraps `router` into the [`App`] served within `limits`.
fn app(router: Router, limits: &ServerLimits) -> App {
    let router = router
        .layer(middleware::from_fn_with_state(
            limits.body_read_timeout,
            read_body_in_time,
        ))
        // 503, not 408: the client was not slow, we were; SNS retries a 5xx.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            limits.request_timeout,
        ))
        .layer(
            TraceLayer::new_for_http()
                // With an `order_id` field, filled in once the order is known.
                .make_span_with(crate::telemetry::request_span::<Body>)
                .on_request(())
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        );
    TowerToHyperService::new(NormalizePathLayer::trim_trailing_slash().layer(router))
}

/// hyper's HTTP/1.1 connection settings for `limits` (the ALB speaks
/// HTTP/1.1 to its targets).
fn http1_builder(limits: &ServerLimits) -> http1::Builder {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // Also caps the read buffer, which otherwise grows to ~400 KiB on
        // a large body; it starts at 8 KiB either way.
        .max_buf_size(limits.max_header_bytes)
        // Without it hyper keeps reading a busy connection to notice the
        // client leaving, which takes a second 8 KiB read buffer per request
        // in flight; with it an order whose client went away still finishes.
        .half_close(true);
    http
}

/// Serves one connection until it ends, or until the drain starts: then
/// hyper closes it if idle, or after the response in flight.
async fn serve_connection(
    http: http1::Builder,
    stream: TcpStream,
    app: App,
    mut draining: watch::Receiver<bool>,
) {
    let connection = http.serve_connection(TokioIo::new(stream), app);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        // Ends also if the sender is gone: the loop has returned.
        () = async { _ = draining.wait_for(|draining| *draining).await; } => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        // Timeouts, resets and oversized heads: the client's doing, and
        // hyper has already answered what could be answered.
        tracing::debug!(%error, "connection ended");
    }
}

/// Waits a little after an accept error that would repeat at once (out of
/// file descriptors or memory); a connection that failed while queued is
/// just skipped.
async fn accept_failed(error: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "cannot accept a connection; retrying in {ACCEPT_RETRY:?}");
    tokio::time::sleep(ACCEPT_RETRY).await;
}

/// Why a request's body was not read.
#[derive(Debug, thiserror::Error)]
enum BodyReadError {
    /// The client took longer than the body timeout.
    #[error("the request body took longer than {0:?} to arrive")]
    Slow(Duration),
    /// Over [`BODY_LIMIT`].
    #[error("the request body is over {BODY_LIMIT} bytes")]
    TooLarge,
    /// The connection failed mid-body.
    #[error("the request body could not be read")]
    Broken,
}

impl BodyReadError {
    /// The status this error is answered with.
    fn status(&self) -> StatusCode {
        match self {
            Self::Slow(_) => StatusCode::REQUEST_TIMEOUT,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Broken => StatusCode::BAD_REQUEST,
        }
    }
}

impl IntoResponse for BodyReadError {
    fn into_response(self) -> Response {
        let status = self.status();
        tracing::warn!(%status, error = %self, "request refused");
        (status, self.to_string()).into_response()
    }
}

/// Reads the whole body (at most [`BODY_LIMIT`]) within `timeout` before
/// the handler runs, so a body sent a byte at a time gets 408 instead of
/// holding the connection and the handler.
async fn read_body_in_time(
    State(timeout): State<Duration>,
    request: Request,
    next: Next,
) -> Result<Response, BodyReadError> {
    let (parts, body) = request.into_parts();
    let read = Limited::new(body, BODY_LIMIT).collect();
    let body = match tokio::time::timeout(timeout, read).await {
        Err(_elapsed) => return Err(BodyReadError::Slow(timeout)),
        Ok(Err(error)) if error.is::<LengthLimitError>() => return Err(BodyReadError::TooLarge),
        Ok(Err(_)) => return Err(BodyReadError::Broken),
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    Ok(next.run(Request::from_parts(parts, Body::from(body))).await)
}
