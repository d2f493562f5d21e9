//! Without the `otlp` feature (the launcher's build, which installs its own
//! console's subscriber and no exporter): no span is exported, and no
//! `traceparent` is read or sent. The same functions as the exporter's,
//! each doing nothing.

use super::TraceExport;
use axum::http::HeaderMap;
use contracts::OrderId;

/// What would export spans: none can be built here.
#[derive(Debug)]
pub enum Provider {}

impl Provider {
    /// Never called: there is no provider to flush.
    pub fn force_flush(&self) -> Result<(), std::convert::Infallible> {
        match *self {}
    }

    /// Never called: there is no provider to shut down.
    pub fn shutdown(&self) -> Result<(), std::convert::Infallible> {
        match *self {}
    }
}

/// Why no provider can be built: this build has no exporter.
#[derive(Debug, thiserror::Error)]
#[error("this build has no OTLP exporter (the platform's `otlp` feature, which every service's binary has)")]
pub struct StartError;

impl TraceExport {
    /// Fails: this build has no exporter ([`StartError`]).
    pub fn start(&self) -> Result<Provider, StartError> {
        Err(StartError)
    }
}

/// Never called: there is no provider to make a layer for.
pub fn layer(provider: &Provider, _service: &str) -> tracing_subscriber::layer::Identity {
    match *provider {}
}

/// Does nothing: no trace is continued.
pub fn continue_from_headers(_span: &tracing::Span, _headers: &HeaderMap) {}

/// `None`: no order span is opened without an exporter.
pub fn order_span(_traceparent: Option<&str>, _order_id: &OrderId) -> Option<tracing::Span> {
    None
}

/// Does nothing: no span is exported to be marked.
pub fn fail(_span: &tracing::Span, _why: &impl std::fmt::Display) {}

/// `None`: no trace to send on.
pub fn traceparent(_span: &tracing::Span) -> Option<String> {
    None
}

/// Empty: no trace to carry to the next hop.
pub fn outgoing_headers() -> HeaderMap {
    HeaderMap::new()
}
