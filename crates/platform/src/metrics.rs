//! Prometheus metrics: what a service counts, and `GET /metrics` on a port
//! of its own (`METRICS_PORT`), never the one the load balancer routes to.
//!
//! One [`Metrics`] per service (the launcher runs four in one process, each
//! with its own). Every label set is resolved once, when a route, target or
//! verifier is built, into handles whose updates on the hot path are atomic
//! adds: no lock, no lookup, no label string per request. The text format
//! is `prometheus-client`'s; the latency histograms are a lock-free metric
//! type of ours that it encodes (its own histogram takes a mutex per
//! observation).

use axum::Router;
use axum::extract::{Request, State};
use axum::handler::Handler;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::{Registry, Unit};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What `/metrics` is: OpenMetrics text, as prometheus-client writes it
/// (`# UNIT` lines, counters typed by their name without `_total`). Served
/// as Prometheus' older `text/plain; version=0.0.4`, a scraper that takes it
/// at its word leaves the counters untyped.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the latency buckets, in seconds: 1 ms to SNS' 15 s, with
/// 5 s and 10 s, where the calls to the monolith and to the API time out,
/// so that those show apart.
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0,
];

/// A service's metrics and the registry `/metrics` renders. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

struct Inner {
    registry: Registry,
    orders: Family<RouteOutcome, Counter>,
    order_seconds: Family<RouteLabel, LatencyHistogram>,
    calls: Family<TargetOutcome, Counter>,
    call_seconds: Family<TargetLabel, LatencyHistogram>,
    calls_in_flight: Family<TargetLabel, Gauge>,
    verifications: Family<ResultLabel, Counter>,
    cert_cache_hits: Counter,
    cert_fetches: Counter,
    drains: Counter,
    draining: Gauge,
    unserved: Family<ReasonLabel, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteOutcome {
    route: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetOutcome {
    target: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabel {
    target: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// Where the serve loop counts the requests it answers itself, before any
/// route runs ([`crate::server::serve_counting`]), by reason.
#[derive(Clone)]
pub struct Unserved(Family<ReasonLabel, Counter>);

impl Unserved {
    /// Counts one request not served, for `reason`.
    pub(crate) fn count(&self, reason: &'static str) {
        self.0.get_or_create(&ReasonLabel { reason }).inc();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric, registered at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("interstella");
        let inner = Inner {
            orders: Family::default(),
            order_seconds: Family::default(),
            calls: Family::default(),
            call_seconds: Family::default(),
            calls_in_flight: Family::default(),
            verifications: Family::default(),
            cert_cache_hits: Counter::default(),
            cert_fetches: Counter::default(),
            drains: Counter::default(),
            draining: Gauge::default(),
            unserved: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "orders",
            "Orders taken, by route and outcome (fulfilled: 2xx, replayed: 2xx repeating an earlier answer, refused: 4xx, failed: 5xx)",
            inner.orders.clone(),
        );
        registry.register_with_unit(
            "order_duration",
            "Time to answer an order, by route",
            Unit::Seconds,
            inner.order_seconds.clone(),
        );
        registry.register(
            "downstream_calls",
            "Calls to the next service, by target and outcome",
            inner.calls.clone(),
        );
        registry.register_with_unit(
            "downstream_duration",
            "Time a call to the next service took, its wait for a slot included, by target",
            Unit::Seconds,
            inner.call_seconds.clone(),
        );
        registry.register(
            "downstream_in_flight",
            "Calls to the next service under way, by target",
            inner.calls_in_flight.clone(),
        );
        registry.register(
            "sns_verifications",
            "SNS signatures checked, by result (verified, refused, unavailable: certificate not fetched or not yet valid by this host's clock)",
            inner.verifications.clone(),
        );
        registry.register(
            "sns_certificate_cache_hits",
            "SNS signatures checked with a cached signing certificate",
            inner.cert_cache_hits.clone(),
        );
        registry.register(
            "sns_certificate_fetches",
            "SNS signing certificates fetched",
            inner.cert_fetches.clone(),
        );
        for reason in crate::server::UNSERVED_REASONS {
            inner.unserved.get_or_create_owned(&ReasonLabel { reason });
        }
        registry.register(
            "requests_unserved",
            "Requests the serve loop answered itself before any route ran, by reason (at_the_bound, slow_body, slow_body_at_the_bound, late, over_budget, too_large, broken, no_such_path, head_too_large, bad_head): an order among them reached no route and is in no other count",
            inner.unserved.clone(),
        );
        registry.register(
            "drains",
            "Graceful drains started (SIGTERM)",
            inner.drains.clone(),
        );
        registry.register(
            "draining",
            "1 while the service drains: orders in flight finishing, no new connections (HQ: from its deliveries' drain, while still serving)",
            inner.draining.clone(),
        );
        Self {
            inner: Arc::new(Inner { registry, ..inner }),
        }
    }

    /// The metrics in the OpenMetrics text format, `# EOF` last.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.inner.registry);
        text
    }

    /// `GET /metrics`, for a listener of its own.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/metrics", get(render))
            .with_state(self.clone())
    }

    /// Counts and times the orders `handler` answers as route `route`, and
    /// names each one's order in its reply
    /// ([`crate::telemetry::answer_naming_the_order`]).
    ///
    /// `POST` only (a wrong method's 405 is not an order). The handler is
    /// wrapped, not layered: a `from_fn` route layer cost a boxed future of
    /// its own and two more (`Next`, the layered route), about 1.6 KB per
    /// order in flight (docs/bench.md).
    pub fn order_route<H, T, S>(&self, route: &str, handler: H) -> MethodRouter<S>
    where
        H: Handler<T, S>,
        T: 'static,
        S: Clone + Send + Sync + 'static,
    {
        let outcome = |outcome| {
            self.inner.orders.get_or_create_owned(&RouteOutcome {
                route: route.to_owned(),
                outcome,
            })
        };
        let route_metrics = Arc::new(RouteMetrics {
            fulfilled: outcome("fulfilled"),
            replayed: outcome("replayed"),
            refused: outcome("refused"),
            failed: outcome("failed"),
            seconds: self.inner.order_seconds.get_or_create_owned(&RouteLabel {
                route: route.to_owned(),
            }),
        });
        post(Timed {
            handler,
            route: route_metrics,
        })
    }

    /// The handles of downstream target `target`.
    pub fn downstream(&self, target: &'static str) -> CallMetrics {
        let outcome = |outcome| {
            self.inner
                .calls
                .get_or_create_owned(&TargetOutcome { target, outcome })
        };
        CallMetrics {
            ok: outcome("ok"),
            timeout: outcome("timeout"),
            busy: outcome("busy"),
            unreachable: outcome("unreachable"),
            status: outcome("status"),
            transport: outcome("transport"),
            seconds: self
                .inner
                .call_seconds
                .get_or_create_owned(&TargetLabel { target }),
            in_flight: self
                .inner
                .calls_in_flight
                .get_or_create_owned(&TargetLabel { target }),
        }
    }

    /// The handles of SNS verification.
    pub fn sns(&self) -> SnsMetrics {
        let result = |result| {
            self.inner
                .verifications
                .get_or_create_owned(&ResultLabel { result })
        };
        SnsMetrics {
            verified: result("verified"),
            refused: result("refused"),
            unavailable: result("unavailable"),
            cert_cache_hits: self.inner.cert_cache_hits.clone(),
            cert_fetches: self.inner.cert_fetches.clone(),
        }
    }

    /// `shutdown`, counting the drain it starts and marking it under way
    /// until [`Metrics::drained`].
    pub fn counting_drain(
        &self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        let metrics = self.clone();
        async move {
            shutdown.await;
            metrics.drain_started();
        }
    }

    /// A drain has begun: counted, and under way until [`Metrics::drained`].
    /// Counted once however often it is said, so that a service with work of
    /// its own to finish first (HQ's deliveries) can say it early.
    pub fn drain_started(&self) {
        if self.inner.draining.set(1) == 0 {
            self.inner.drains.inc();
        }
    }

    /// The drain is over.
    pub fn drained(&self) {
        self.inner.draining.set(0);
    }
}

async fn render(State(metrics): State<Metrics>) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.render()).into_response()
}

/// Marks an answer on an order route that was no order (an SNS
/// subscription confirmation): not counted as one.
#[derive(Debug, Clone, Copy)]
pub struct NotAnOrder;

/// Marks a 2xx answer that repeats an earlier one (the same idempotency
/// key): counted as `replayed`, not as one more fulfillment.
#[derive(Debug, Clone, Copy)]
pub struct Replayed;

/// One order route's handles.
struct RouteMetrics {
    fulfilled: Counter,
    replayed: Counter,
    refused: Counter,
    failed: Counter,
    seconds: LatencyHistogram,
}

/// A handler whose orders are counted and timed (see `Metrics::order_route`).
#[derive(Clone)]
struct Timed<H> {
    handler: H,
    route: Arc<RouteMetrics>,
}

impl<H, T, S> Handler<T, S> for Timed<H>
where
    H: Handler<T, S>,
    T: 'static,
    S: Send + 'static,
{
    type Future = Pin<Box<dyn Future<Output = Response> + Send>>;

    fn call(self, request: Request, state: S) -> Self::Future {
        let Self { handler, route } = self;
        // The handler's own future (boxed by axum): called here, so that
        // ours holds only it, not the request too. A function handler runs
        // nothing until polled, so the order it marks is marked inside
        // `answer_naming_the_order`'s scope.
        let answer = handler.call(request, state);
        Box::pin(async move {
            let mut timing = OrderTiming {
                route: &route,
                started: Instant::now(),
                answered: false,
            };
            let response = crate::telemetry::answer_naming_the_order(answer).await;
            timing.answered = true;
            count_order(&route, response, timing.started)
        })
    }
}

/// Counts `response` among `route`'s outcomes, with the time since `started`.
fn count_order(route: &RouteMetrics, response: Response, started: Instant) -> Response {
    if response.extensions().get::<NotAnOrder>().is_some() {
        return response;
    }
    let status = response.status();
    let outcome = if status.is_server_error() {
        &route.failed
    } else if status.is_client_error() {
        &route.refused
    } else if response.extensions().get::<Replayed>().is_some() {
        &route.replayed
    } else {
        &route.fulfilled
    };
    outcome.inc();
    route.seconds.observe(started.elapsed());
    response
}

/// An order being answered. Dropped unanswered, the serve loop gave up on
/// it (the request timeout's 503, or the end of a drain cut it short; a
/// client that leaves does not stop its order, see the serve loop's
/// `half_close`): counted as failed,
/// with the time it took, so a retry storm shows in the failures and the
/// slowest orders in the latency.
struct OrderTiming<'a> {
    route: &'a RouteMetrics,
    started: Instant,
    answered: bool,
}

impl Drop for OrderTiming<'_> {
    fn drop(&mut self) {
        if !self.answered {
            self.route.failed.inc();
            self.route.seconds.observe(self.started.elapsed());
        }
    }
}

/// One downstream target's handles (detached, counting nowhere, by default).
#[derive(Debug, Clone, Default)]
pub struct CallMetrics {
    ok: Counter,
    timeout: Counter,
    busy: Counter,
    unreachable: Counter,
    status: Counter,
    transport: Counter,
    seconds: LatencyHistogram,
    in_flight: Gauge,
}

/// How a downstream call ended, for `CallMetrics::finished`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// 2xx.
    Ok,
    /// No answer in time.
    Timeout,
    /// Not sent: every connection stayed busy until the timeout.
    Busy,
    /// No connection.
    Unreachable,
    /// Answered, not 2xx.
    Status,
    /// Broke on the wire.
    Transport,
}

impl CallMetrics {
    /// A call starts (it may still wait for a slot): timed, and counted by
    /// its outcome when [`InFlight::finished`], or when dropped unfinished
    /// (the request's own deadline cut it short) as a timeout once
    /// [`InFlight::under_way`], else as busy: it never got a connection.
    pub fn start(&self) -> InFlight<'_> {
        InFlight {
            metrics: self,
            started: Instant::now(),
            finished: false,
            sent: AtomicBool::new(false),
        }
    }
}

/// A call started (see [`CallMetrics::start`]).
#[derive(Debug)]
pub struct InFlight<'a> {
    metrics: &'a CallMetrics,
    started: Instant,
    finished: bool,
    /// Whether the call got its connection and went out.
    sent: AtomicBool,
}

impl<'a> InFlight<'a> {
    /// The call has its slot and goes out: counted in flight until the
    /// guard drops (calls waiting for a slot are not), and from here an
    /// unanswered call may have been taken.
    pub fn under_way(&self) -> UnderWay<'a> {
        self.sent.store(true, Ordering::Relaxed);
        self.metrics.in_flight.inc();
        UnderWay(self.metrics)
    }

    /// Whether the call got [`InFlight::under_way`].
    pub fn sent(&self) -> bool {
        self.sent.load(Ordering::Relaxed)
    }

    /// The call ended with `outcome`.
    pub fn finished(mut self, outcome: CallOutcome) {
        self.count(outcome);
    }

    fn count(&mut self, outcome: CallOutcome) {
        self.finished = true;
        let m = self.metrics;
        match outcome {
            CallOutcome::Ok => &m.ok,
            CallOutcome::Timeout => &m.timeout,
            CallOutcome::Busy => &m.busy,
            CallOutcome::Unreachable => &m.unreachable,
            CallOutcome::Status => &m.status,
            CallOutcome::Transport => &m.transport,
        }
        .inc();
        m.seconds.observe(self.started.elapsed());
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.count(if self.sent() {
                CallOutcome::Timeout
            } else {
                CallOutcome::Busy
            });
        }
    }
}

/// A call under way (see [`InFlight::under_way`]).
#[derive(Debug)]
pub struct UnderWay<'a>(&'a CallMetrics);

impl Drop for UnderWay<'_> {
    fn drop(&mut self) {
        self.0.in_flight.dec();
    }
}

/// SNS verification's handles (detached by default).
#[derive(Debug, Clone, Default)]
pub struct SnsMetrics {
    /// Signatures that verified.
    pub verified: Counter,
    /// Messages refused as not genuine.
    pub refused: Counter,
    /// Signatures not checked: the certificate could not be fetched, or is
    /// not yet valid by this host's clock.
    pub unavailable: Counter,
    /// Checks made with a cached certificate.
    pub cert_cache_hits: Counter,
    /// Certificates fetched.
    pub cert_fetches: Counter,
}

/// A latency histogram whose observations are atomic adds: a bucket count,
/// the count and the sum (in microseconds).
#[derive(Debug, Clone, Default)]
pub struct LatencyHistogram {
    inner: Arc<Buckets>,
}

#[derive(Debug, Default)]
struct Buckets {
    /// Observations at most each bound of [`LATENCY_BUCKETS`] and above it,
    /// not cumulative (the encoder accumulates them).
    counts: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl LatencyHistogram {
    /// Records one duration.
    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.inner.counts[bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.inner.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

impl TypedMetric for LatencyHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for LatencyHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        // Per bucket, as stored: prometheus-client's encoder accumulates them.
        let buckets: Vec<(f64, u64)> = LATENCY_BUCKETS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(&self.inner.counts)
            .map(|(bound, count)| (bound, count.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, count)| count).sum();
        let sum = self.inner.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// Serves `GET /metrics` on `listener` until the task is aborted.
pub async fn serve(listener: tokio::net::TcpListener, metrics: Metrics) -> std::io::Result<()> {
    crate::server::serve_unlogged(listener, metrics.router(), std::future::pending()).await
}

/// Serves `router` as [`crate::serve_with`] does, counting in `metrics`
/// the drain `shutdown` starts, and `GET /metrics` on `exporter` (when
/// given) for as long.
pub async fn serve_with_metrics(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: crate::ServerLimits,
    metrics: &Metrics,
    exporter: Option<tokio::net::TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let _exporter = match exporter {
        None => None,
        Some(exporter) => {
            tracing::info!("metrics on http://{}/metrics", exporter.local_addr()?);
            Some(AbortOnDrop(tokio::spawn(serve(exporter, metrics.clone()))))
        }
    };
    crate::server::open_files_for(limits.max_connections);
    let unserved = Unserved(metrics.inner.unserved.clone());
    let served = crate::server::serve_counting(
        listener,
        router,
        limits,
        Some(unserved),
        metrics.counting_drain(shutdown),
    )
    .await;
    metrics.drained();
    served
}

/// Stops a task when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_are_cumulative() {
        let metrics = Metrics::new();
        // Durations given, so that the buckets do not depend on how fast
        // this machine runs the test.
        let api = metrics.downstream("api");
        for millis in [0, 20, 20_000] {
            api.seconds.observe(Duration::from_millis(millis));
        }
        // Calls timed as they run: counted by outcome.
        let hook = metrics.downstream("hook");
        for _ in 0..3 {
            hook.start().finished(CallOutcome::Ok);
        }
        let text = metrics.render();
        for expected in [
            r#"interstella_downstream_duration_seconds_bucket{le="0.001",target="api"} 1"#,
            r#"interstella_downstream_duration_seconds_bucket{le="0.025",target="api"} 2"#,
            r#"interstella_downstream_duration_seconds_bucket{le="15.0",target="api"} 2"#,
            r#"interstella_downstream_duration_seconds_bucket{le="+Inf",target="api"} 3"#,
            r#"interstella_downstream_duration_seconds_count{target="api"} 3"#,
            r#"interstella_downstream_duration_seconds_count{target="hook"} 3"#,
            r#"interstella_downstream_calls_total{target="hook",outcome="ok"} 3"#,
            r#"interstella_downstream_in_flight{target="api"} 0"#,
        ] {
            assert!(
                text.lines().any(|line| line == expected),
                "no line {expected:?} in:\n{text}"
            );
        }
    }

    #[tokio::test]
    async fn a_drain_is_counted_once_and_over() {
        let metrics = Metrics::new();
        // Said early (as HQ does), then again when serving stops: one drain.
        metrics.drain_started();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let limits = crate::ServerLimits::default();
        serve_with_metrics(listener, Router::new(), limits, &metrics, None, async {})
            .await
            .unwrap();
        let text = metrics.render();
        assert!(text.contains("interstella_drains_total 1"), "{text}");
        assert!(text.contains("interstella_draining 0"), "{text}");
    }
}
