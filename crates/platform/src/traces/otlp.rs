//! Spans exported over OTLP through OpenTelemetry's SDK, and the W3C
//! `traceparent` carried from hop to hop (the `otlp` feature).

use super::{TRACEPARENT, TraceExport};
use crate::telemetry::repeated::RepeatedFailures;
use axum::http::HeaderMap;
use contracts::OrderId;
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{Status, TraceContextExt as _, TracerProvider as _};
use opentelemetry_http::{Bytes, HeaderExtractor, HeaderInjector, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::sync::OnceLock;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// What exports spans: the SDK's provider, shut down at the end.
pub type Provider = SdkTracerProvider;

/// Why no provider could be built.
pub type StartError = opentelemetry_otlp::ExporterBuildError;

/// Set once tracing is on: the propagator every hop uses.
static PROPAGATOR: OnceLock<TraceContextPropagator> = OnceLock::new();

impl TraceExport {
    /// Builds the provider (a batch exporter on its own thread) and turns
    /// propagation on. Call inside the Tokio runtime: exports are sent on it.
    pub fn start(&self) -> Result<Provider, StartError> {
        let client = OnTokio {
            client: reqwest::Client::new(),
            runtime: tokio::runtime::Handle::current(),
            export_timeout: export_timeout(),
            failures: std::sync::Mutex::new(RepeatedFailures::reported_every(EXPORT_FAILURES_REPORTED_EVERY)),
        };
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_http_client(client);
        if let Some(endpoint) = &self.endpoint {
            exporter = exporter.with_endpoint(endpoint.clone());
        }
        let mut resource = Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name(self.service.clone());
        }
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter.build()?)
            .with_resource(resource.build())
            .build();
        let _ = PROPAGATOR.set(TraceContextPropagator::new());
        Ok(provider)
    }
}

/// The tracing layer that turns spans into OpenTelemetry spans. It does
/// not see a [`crate::telemetry::SERVICE_SPAN`]: that span lasts the
/// service's whole life, and under it every request without a
/// `traceparent` would share its one trace instead of starting its own.
pub fn layer<S>(provider: &SdkTracerProvider, service: &str) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::filter::FilterExt as _;
    // Its own filter, not `RUST_LOG`'s, which is the lines' alone: spans and
    // their events at INFO and above, as the default log filter has them.
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(service.to_owned()))
        .with_filter(
            tracing_subscriber::filter::filter_fn(|metadata| {
                !(metadata.is_span() && metadata.name() == crate::telemetry::SERVICE_SPAN)
            })
            .and(tracing_subscriber::filter::LevelFilter::INFO),
        )
}

/// Makes `span` a child of the trace `headers` carry, if any.
pub fn continue_from_headers(span: &tracing::Span, headers: &HeaderMap) {
    if let Some(propagator) = PROPAGATOR.get()
        && headers.contains_key(TRACEPARENT)
    {
        let _ = span.set_parent(propagator.extract(&HeaderExtractor(headers)));
    }
}

/// A span named `order`, child of the trace `traceparent` names (an SNS
/// message attribute); `None` when tracing is off or there is none. It
/// carries `order_id` too: JSON lines name their innermost span as `span`,
/// and a query on `span.order_id` must find the order's lines.
///
/// SNS' delivery itself carries no `traceparent`, so the `request` span
/// that brought the order (its access line, the 4xx/5xx it answered) is in
/// a trace of its own: the order span links to it, and a collector shows
/// the way from one to the other.
pub fn order_span(traceparent: Option<&str>, order_id: &OrderId) -> Option<tracing::Span> {
    let (propagator, traceparent) = (PROPAGATOR.get()?, traceparent?);
    let mut carrier = HeaderMap::new();
    carrier.insert(TRACEPARENT, traceparent.parse().ok()?);
    // At ERROR level, as the request span is (`telemetry::request_span`):
    // a quiet filter keeps the trace whole, and its lines their order id.
    let span = tracing::error_span!("order", order_id = %order_id);
    let _ = span.set_parent(propagator.extract(&HeaderExtractor(&carrier)));
    let delivery = tracing::Span::current().context().span().span_context().clone();
    if delivery.is_valid() {
        span.add_link(delivery);
    }
    Some(span)
}

/// Marks `span` failed, with `why` as its status' text: an order's error
/// line is written by the delivery's `request` span, so without this the
/// `order` span of a failed order would look clean.
pub fn fail(span: &tracing::Span, why: &impl std::fmt::Display) {
    span.set_status(Status::error(why.to_string()));
}

/// The `traceparent` of `span`, to send on; `None` when tracing is off.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    let propagator = PROPAGATOR.get()?;
    let mut carrier = HeaderMap::new();
    propagator.inject_context(&span.context(), &mut HeaderInjector(&mut carrier));
    carrier.get(TRACEPARENT)?.to_str().ok().map(str::to_owned)
}

/// The headers that carry the current span's trace to the next hop (empty
/// when tracing is off).
pub fn outgoing_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(propagator) = PROPAGATOR.get() {
        propagator.inject_context(
            &tracing::Span::current().context(),
            &mut HeaderInjector(&mut headers),
        );
    }
    headers
}

/// The least time between two lines saying spans could not be exported.
const EXPORT_FAILURES_REPORTED_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// How long one export may take: `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`, else
/// `OTEL_EXPORTER_OTLP_TIMEOUT` (milliseconds), else OTLP's default of 10 s,
/// read as the exporter reads them for the clients it makes itself. With
/// ours it reads them only as its retries' deadline and waits on each
/// export with no timeout, so a collector that takes the connection and
/// never answers held the exporter, and every span after.
fn export_timeout() -> std::time::Duration {
    for name in [
        opentelemetry_otlp::OTEL_EXPORTER_OTLP_TRACES_TIMEOUT,
        opentelemetry_otlp::OTEL_EXPORTER_OTLP_TIMEOUT,
    ] {
        let Ok(value) = std::env::var(name) else {
            continue;
        };
        match value.parse() {
            Ok(milliseconds) => return std::time::Duration::from_millis(milliseconds),
            // The exporter passes over it unsaid, to the next.
            Err(_) => crate::terminal::say_on_stderr(format_args!(
                "traces: {name} is not a whole number of milliseconds, and is passed over"
            )),
        }
    }
    opentelemetry_otlp::OTEL_EXPORTER_OTLP_TIMEOUT_DEFAULT
}

/// The exporter's HTTP client: our reqwest client, run on the service's
/// Tokio runtime (the batch exporter calls from a thread of its own, which
/// has no runtime). It says when exports fail: the SDK's own word on it is
/// compiled out with its `internal-logs` feature, and a collector down or a
/// mistyped endpoint otherwise lost every trace unsaid.
#[derive(Debug)]
struct OnTokio {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
    /// How long one export may take ([`export_timeout`]).
    export_timeout: std::time::Duration,
    /// Failed exports, said at most once a minute.
    failures: std::sync::Mutex<RepeatedFailures>,
}

impl OnTokio {
    /// Says an export failed (`why`), or that exports work again, as
    /// [`RepeatedFailures`] allows.
    fn note(&self, outcome: Result<(), String>) {
        let now = tokio::time::Instant::now();
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match outcome {
            Err(why) => {
                if let Some(failed) = failures.failed(now) {
                    tracing::warn!(
                        failed,
                        "spans not exported over OTLP: {why} ({failed} export attempt(s) failed since the last such line; \
                         check OTEL_EXPORTER_OTLP_ENDPOINT and the collector)"
                    );
                }
            }
            Ok(()) => {
                // At the failure's level, so that a console showing the
                // failure (RUST_LOG=warn) shows its end too.
                if let Some(failed) = failures.succeeded(now) {
                    tracing::warn!(
                        failed,
                        "spans exported over OTLP again ({failed} more export attempt(s) failed before)"
                    );
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl HttpClient for OnTokio {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let exported = async move {
            // Without the URL, as every error of ours: it may hold a token.
            let response = client
                .execute(request.try_into()?)
                .await
                .map_err(reqwest::Error::without_url)?;
            let status = response.status();
            let body = crate::downstream::read_body(
                response,
                crate::downstream::MAX_BODY_BYTES,
                crate::downstream::BODY_TIMEOUT,
            )
            .await?;
            let mut answer = Response::new(body.freeze());
            *answer.status_mut() = status;
            Ok::<_, HttpError>(answer)
        };
        let limit = self.export_timeout;
        let sent = self.runtime.spawn(async move {
            tokio::time::timeout(limit, exported)
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {limit:?}").into()))
        });
        let answer = sent.await?;
        self.note(match &answer {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => Err(format!("the collector answered {}", response.status())),
            Err(error) => Err(crate::error::Causes(error.as_ref()).to_string()),
        });
        answer
    }
}
