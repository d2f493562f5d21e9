//! Logging to stdout, where ECS' awslogs driver collects it.
//!
//! Lines are formatted on the thread that logs and written to stdout by one
//! writer thread, in batches. An order logs about seven lines at INFO, and
//! writing each with its own write(2) under the stdout lock took a third of
//! the monolith's CPU under load (see crates/bench). No line is dropped: when
//! the queue is full, the logging thread waits, as it waited on a full pipe.
//!
//! Every request is served inside a `request` span with an `order_id` field,
//! filled in once the order's id is known ([`record_order_id`]): every line
//! logged for the order then carries it, in text and in JSON, on every
//! service the order passes through (the id travels with the order; see
//! [`contracts::order_id`]).

use crate::settings::LogFormat;
use crate::traces::TraceExport;
use axum::http::Request;
use contracts::OrderId;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::io::{BufWriter, IsTerminal};
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Registry;
use tracing_subscriber::layer::{Layer, Layered, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;

/// Lines queued for the writer thread at most; a line's slot is reserved
/// up front, so this bounds memory too (about 40 bytes a slot).
const QUEUED_LINES: usize = 1024;
/// Bytes the writer thread gathers before writing; it writes whatever it has
/// as soon as the queue runs dry, so an idle service holds nothing back.
const WRITE_BUFFER: usize = 64 * 1024;

/// Writes out the lines still queued, and the spans, when dropped: keep it
/// until `main` returns (and drop it before `std::process::exit`).
#[must_use = "dropping the guard stops log output; keep it until main returns"]
#[derive(Debug)]
pub struct LogGuard {
    traces: Option<SdkTracerProvider>,
    _worker: WorkerGuard,
}

impl LogGuard {
    /// Sends the spans ended so far, now (tests; the exporter otherwise
    /// sends in batches every few seconds).
    pub fn flush_traces(&self) {
        if let Some(provider) = &self.traces {
            let _ = provider.force_flush();
        }
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.traces.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Installs the global subscriber for service `service`: `RUST_LOG`
/// filters (default `info`), one line per event, text or JSON, and spans
/// exported over OTLP when the OpenTelemetry variables ask for it
/// ([`crate::traces`]). Call once, first thing in `main`, in the runtime.
pub fn init(service: &str, format: LogFormat) -> LogGuard {
    init_with(format, TraceExport::from_env(service))
}

/// [`init`], with traces exported as `traces` says (or not at all).
pub fn init_with(format: LogFormat, traces: Option<TraceExport>) -> LogGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, worker) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("log-writer")
        .finish(BufWriter::with_capacity(WRITE_BUFFER, std::io::stdout()));
    let lines = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_writer(writer)
        // Colour codes only for a person at a terminal, never into awslogs.
        .with_ansi(std::io::stdout().is_terminal());
    let mut layers: Vec<Box<dyn Layer<Layered<EnvFilter, Registry>> + Send + Sync>> = vec![match format {
        LogFormat::Text => lines.boxed(),
        LogFormat::Json => lines.json().flatten_event(true).boxed(),
    }];
    let provider = traces.as_ref().and_then(|export| match export.start() {
        Ok(provider) => Some((provider, export.service.clone())),
        Err(error) => {
            eprintln!("traces are not exported: {error}");
            None
        }
    });
    if let Some((provider, service)) = &provider {
        layers.push(crate::traces::layer(provider, service).boxed());
    }
    // A second init (tests starting several services) is harmless: keep the first.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(layers)
        .try_init();
    LogGuard {
        traces: provider.map(|(provider, _)| provider),
        _worker: worker,
    }
}

/// The span a request is served in (the serve loop's access log): method,
/// URI, and an `order_id` recorded once known.
pub fn request_span<B>(request: &Request<B>) -> tracing::Span {
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        uri = %request.uri(),
        order_id = tracing::field::Empty,
    );
    crate::traces::continue_from_headers(&span, request.headers());
    span
}

/// Marks the request being served as handling order `id`: every line
/// logged for it from here on, its access log line included, carries it.
pub fn record_order_id(id: &OrderId) {
    tracing::Span::current().record("order_id", tracing::field::display(id));
}

/// A fresh id for an order that came without one (a direct order, a curl
/// to the fulfillment API): a random UUID, like SNS' MessageIds.
pub fn request_id() -> OrderId {
    OrderId::from_uuid(uuid::Uuid::new_v4().as_u128())
}
