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
use axum::http::Request;
use contracts::OrderId;
use std::io::{BufWriter, IsTerminal};
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// Lines queued for the writer thread at most; a line's slot is reserved
/// up front, so this bounds memory too (about 40 bytes a slot).
const QUEUED_LINES: usize = 1024;
/// Bytes the writer thread gathers before writing; it writes whatever it has
/// as soon as the queue runs dry, so an idle service holds nothing back.
const WRITE_BUFFER: usize = 64 * 1024;

/// Writes out the lines still queued when dropped: keep it until `main`
/// returns (and drop it before `std::process::exit`).
#[must_use = "dropping the guard stops log output; keep it until main returns"]
#[derive(Debug)]
pub struct LogGuard {
    _worker: WorkerGuard,
}

/// Installs the global subscriber: `RUST_LOG` filters (default `info`), one
/// line per event, text or JSON. Call once, first thing in `main`.
pub fn init(format: LogFormat) -> LogGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, worker) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("log-writer")
        .finish(BufWriter::with_capacity(WRITE_BUFFER, std::io::stdout()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(writer)
        // Colour codes only for a person at a terminal, never into awslogs.
        .with_ansi(std::io::stdout().is_terminal());
    // A second init (tests starting several services) is harmless: keep the first.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    LogGuard { _worker: worker }
}

/// The span a request is served in (the serve loop's access log): method,
/// URI, and an `order_id` recorded once known.
pub fn request_span<B>(request: &Request<B>) -> tracing::Span {
    tracing::info_span!(
        "request",
        method = %request.method(),
        uri = %request.uri(),
        order_id = tracing::field::Empty,
    )
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
