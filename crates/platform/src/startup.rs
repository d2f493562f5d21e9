//! Serving a router: path normalisation, body limit, access log and a
//! graceful drain on SIGTERM.

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use tokio::net::TcpListener;
use tower::Layer;
use tower_http::normalize_path::NormalizePathLayer;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;

/// The largest body accepted: SNS messages are at most 256 KiB, and JSON
/// escaping inside the envelope can double that.
pub const BODY_LIMIT: usize = 512 * 1024;

/// Binds `0.0.0.0:port` (containers must listen on every interface).
pub async fn bind(port: u16) -> std::io::Result<TcpListener> {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))).await
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops
/// accepting and lets in-flight requests finish.
///
/// `/order` and `/order/` are the same route: the path is normalised before
/// routing, which is why the layer wraps the router rather than being added
/// to it. Bodies over [`BODY_LIMIT`] get 413.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = router.layer(DefaultBodyLimit::max(BODY_LIMIT)).layer(
        TraceLayer::new_for_http()
            .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
            .on_request(())
            .on_response(DefaultOnResponse::new().level(Level::INFO)),
    );
    let app = NormalizePathLayer::trim_trailing_slash().layer(router);
    axum::serve(listener, axum::ServiceExt::<Request>::into_make_service(app))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Resolves on SIGTERM (ECS, `docker stop`) or Ctrl-C. Installing the
/// handler matters most as PID 1, where the default action is to ignore it.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: no new connections, finishing in-flight orders");
}
