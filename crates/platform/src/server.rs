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
mod write_deadline;

use crate::telemetry::repeated::RepeatedFailures;
pub use limits::{
    DEFAULT_BODY_READ_TIMEOUT_MS, DEFAULT_DRAIN_TIMEOUT_MS, DEFAULT_HEADER_READ_TIMEOUT_MS,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_HEADER_BYTES, DEFAULT_REQUEST_TIMEOUT_MS, DEFAULT_WRITE_TIMEOUT_MS,
    LimitsError, MAX_HEADER_BYTES_LIMIT, MIN_HEADER_BYTES, ServerLimitArgs, ServerLimits, header_bytes,
};
use write_deadline::{WriteDeadline, Writing};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::{Body as _, Incoming};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt as _;
use tower_http::normalize_path::NormalizePath;
use tracing::Instrument as _;

/// The largest body accepted: twice the largest SNS message
/// ([`contracts::sns::MAX_MESSAGE_BYTES`], 256 KiB), since JSON escaping
/// inside the envelope can double it.
pub const BODY_LIMIT: usize = 2 * contracts::sns::MAX_MESSAGE_BYTES;

/// The `Content-Security-Policy` of every reply that sets none (each but
/// HQ's pages and their assets): nothing to load or run, and no page may
/// frame it. JSON, text and certificates are data, but a browser told to
/// open one as a document renders it.
pub const DATA_SECURITY_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// Bodies up to this size need no share of [`BODY_BUDGET`]: the connection
/// bound alone keeps them small (4,096 × 16 KiB = 64 MiB at most), and an
/// order (a few hundred bytes) is never refused for want of budget.
pub const SMALL_BODY: usize = 16 * 1024;

/// The most bytes of large request bodies (over [`SMALL_BODY`]) a service
/// holds at once, over all its connections. Without it `MAX_CONNECTIONS`
/// (1,024) bodies of up to [`BODY_LIMIT`] are 512 MiB, a 512 MiB task's
/// whole memory before any copy of them. A request whose body does not fit
/// is answered 503 (SNS sends it again) without its body being read (a
/// client already sending it may see a reset instead: hyper closes rather
/// than read a body nobody wants).
pub const BODY_BUDGET: usize = 64 * 1024 * 1024;

/// [`BODY_BUDGET`] is counted in units of this many bytes (a semaphore's
/// permits are a `u32`).
const BUDGET_UNIT: usize = 1024;

/// How long to wait before accepting again when accepting fails for want of
/// file descriptors or memory: the failure would repeat at once.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// The least time between two lines about failures to accept.
const ACCEPT_FAILURES_REPORTED_EVERY: Duration = Duration::from_secs(10);
/// How often a drain still waiting says so.
const DRAIN_PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// At the connection bound, with a connection waiting for a slot, how often
/// the connections that turned idle since the last call are asked to close.
const SHED_EVERY: Duration = Duration::from_millis(50);

/// At the bound, how long a connection taken from the queue waits for a slot
/// before it is served on the side lane instead (see [`serve_with`]): long
/// enough for a request finishing at the bound's usual pace to free one,
/// short against the 5 s a load balancer gives its health check.
const SIDE_LANE_AFTER: Duration = Duration::from_millis(250);

/// Connections served beyond the bound at once, one request each: about
/// 20 KB each at most beyond the bound's, and enough places that, turned
/// over every `SIDE_LANE_SHED_AFTER`, thousands of connections a second
/// pass through.
const SIDE_LANE_CONNECTIONS: usize = 64;

/// On a full side lane with a connection waiting, how old a side-lane
/// connection still without a whole head must be to be closed for it, and
/// how often that is asked (at first: see `serve_routes`). A health check's head comes in the packet after
/// the handshake; a connection silent this long once accepted holds a
/// place someone else wants. (At `SHED_EVERY`'s pace, a place turned over
/// every 100 ms: 160 connections a second, and 800 silent ones queued ahead
/// of a health check kept it waiting past the ALB's 5 s.)
const SIDE_LANE_SHED_AFTER: Duration = Duration::from_millis(10);

/// At the bound, how long a request's body may take to arrive: a body still
/// arriving this long after its head is cut (503, SNS sends it again) when
/// a new connection found no slot free within as long. An order's body
/// comes with its head or in the next packet, through the ALB too. Bodies
/// sent a byte at a time held a slot each for the whole body timeout
/// (5 s): every slot for about 20 KB/s of an attacker's traffic (1,024
/// connections every 5 s), or all but a few, through which a queue ahead
/// of a health check passed too slowly. Cut, they take five times that to
/// hold; orders still meet a full bound while it lasts (README,
/// "Lifecycle").
const SLOW_BODY_AT_THE_BOUND: Duration = Duration::from_secs(1);

/// How often a body still arriving after [`SLOW_BODY_AT_THE_BOUND`] looks
/// again whether the service is at the bound.
const SLOW_BODY_CHECK_EVERY: Duration = Duration::from_millis(250);

/// The longest a connection on the side lane may take to send its head: a
/// health check sends it in one packet, and a slow head must not hold one
/// of the few side-lane places for the whole header timeout.
const SIDE_LANE_HEAD_TIMEOUT: Duration = Duration::from_secs(1);

/// When the serve loop answers a request 503 for want of time: its head's
/// arrival plus the request timeout. Every request's route runs with it
/// ([`RequestDeadline::current`]), so that a route can refuse work it has
/// no time left to finish, rather than start it and be cut off midway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestDeadline(pub Instant);

tokio::task_local! {
    /// The deadline of the request whose route runs on this task.
    static ANSWERING_BY: RequestDeadline;
}

impl RequestDeadline {
    /// The time left before the deadline (zero once passed).
    pub fn left(self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    /// The deadline of the request being answered on this task, while its
    /// route runs in this loop; `None` elsewhere. A downstream call ends
    /// before it ([`crate::Downstream`]): a call under way is then answered
    /// by its route (504, "may have taken it"), never cut off by this loop's
    /// 503, which tells the caller nothing was sent.
    pub fn current() -> Option<Self> {
        ANSWERING_BY.try_with(|deadline| *deadline).ok()
    }
}

/// A handler takes it as `Option<RequestDeadline>` ([`RequestDeadline::current`]):
/// none for a router served by something other than this loop.
impl<S: Send + Sync> axum::extract::OptionalFromRequestParts<S> for RequestDeadline {
    type Rejection = Infallible;

    async fn from_request_parts(
        _parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Option<Self>, Infallible> {
        Ok(Self::current())
    }
}

/// A response that carries it writes no access line (its request span is
/// kept): for what a page polls (HQ's dashboard every 2 s, its portal every
/// second), whose every answer would bury the orders' lines. The route
/// decides which answers carry it (HQ: a poll answered again for the same
/// client within minutes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unlogged;

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
/// `/order` and `/order/` are the same route (see `App`). Bodies over
/// [`BODY_LIMIT`] get 413, heads over the header limit 431, bodies slower
/// than the body timeout and requests slower than the request timeout 503
/// (SNS retries a 5xx; a 408 it would count as delivered); a client that
/// takes none of a response for the write timeout is disconnected.
///
/// At `limits.max_connections`, the next connection is taken from the
/// kernel's queue and waits for a slot while connections serving no request
/// (kept alive between requests, or still sending a head) are closed, every
/// `SHED_EVERY` until a slot is free: so a health check still gets in
/// while idle or slow clients hold every slot, and no request in progress is
/// cut, but for a body still arriving `SLOW_BODY_AT_THE_BOUND` after its
/// head while new connections find no slot free. Connections after it
/// wait in the kernel's queue.
///
/// When every slot is answering a request, none frees for a while: an order
/// may take up to the request timeout (14 s in the templates) and the load
/// balancer gives its health check 5 s. So a connection that waited
/// `SIDE_LANE_AFTER` in vain is served on a side lane, beyond the bound
/// (at most `SIDE_LANE_CONNECTIONS` at once), for one request: a `GET` or
/// `HEAD` without a body (the health check, a page) is answered as usual,
/// anything else 503 (SNS sends it again) without its body being read (a
/// body larger than hyper's first read may then meet a reset instead: a 5xx
/// to the load balancer all the same), and a head slower than
/// `SIDE_LANE_HEAD_TIMEOUT` is closed. While every slot is answering a
/// request, connections go to the side lane as they come, without waiting:
/// made to wait their turn one by one, each for a call to close idle
/// connections, they were taken at most twenty a second, and a health check
/// queued behind orders arriving faster timed out. When the side lane is
/// full with a connection waiting, its connections that have not sent a
/// whole head `SIDE_LANE_SHED_AFTER` after they were taken are closed, as
/// often (less often, up to `SHED_EVERY`, while that frees no place): so
/// connections that send nothing, or half a head, queued ahead of a health
/// check, pass through thousands a second rather than hold it past the
/// ALB's 5 s.
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_counting(listener, router, limits, None, shutdown).await
}

/// [`serve_with`], counting in `unserved` each request the loop answers
/// itself before any route runs (at the bound, a body too slow, too large
/// or over the budget, the request timeout while the body was arriving):
/// refusals the routes' own counts never see.
pub async fn serve_counting(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    unserved: Option<crate::metrics::Unserved>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut routes = Routes::new(router, &limits);
    routes.unserved = unserved;
    serve_routes(listener, routes, limits, shutdown).await
}

/// [`serve`], with no access log line and no span of its own per request:
/// for `GET /metrics`, whose every scrape (each 15 s, from each scraper)
/// would otherwise be a log line and a trace of its own, burying the orders'.
pub(crate) async fn serve_unlogged(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = ServerLimits::default();
    let mut routes = Routes::new(router, &limits);
    routes.logged = false;
    serve_routes(listener, routes, limits, shutdown).await
}

/// Serves `routes` as [`serve_with`] describes.
async fn serve_routes(
    listener: TcpListener,
    routes: Routes,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let http = http1_builder(&limits);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let side_lane = Routes {
        beyond_the_bound: true,
        ..routes.clone()
    };
    let side_lane_http = {
        let mut http = http.clone();
        http.keep_alive(false)
            .header_read_timeout(limits.header_read_timeout.min(SIDE_LANE_HEAD_TIMEOUT));
        http
    };
    let side_lane_slots = Arc::new(Semaphore::new(SIDE_LANE_CONNECTIONS));
    let (signal, signals) = watch::channel(Signal::Serve);
    // The side lane's own: it is shed on its own pace, when full.
    let (side_lane_signal, side_lane_signals) = watch::channel(Signal::Serve);
    // The span serving began in: none for a service run alone; where
    // several share a process and a console (the launcher), the service's
    // own, so that each line says whose it is.
    let serving = tracing::Span::current();
    let mut connections = JoinSet::new();
    let mut slot: Option<OwnedSemaphorePermit> = None;
    // At the bound: the one connection taken from the queue to wait for a
    // slot, and when idle connections are next asked to make room.
    let mut waiting: Option<TcpStream> = None;
    let mut next_shed = Instant::now();
    // When the waiting connection goes to the side lane, and, the side
    // lane full, how long until it is tried again: doubled up to SHED_EVERY
    // while no place frees (a side lane whose connections are all being
    // answered is not asked to shed every 10 ms for nothing).
    let mut side_lane_at = Instant::now();
    let mut side_lane_retry = SIDE_LANE_SHED_AFTER;
    let mut failures = RepeatedFailures::reported_every(ACCEPT_FAILURES_REPORTED_EVERY);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            permit = Arc::clone(&slots).acquire_owned(), if slot.is_none() => {
                slot = permit.ok();
                if let Some(stream) = waiting.take() {
                    connections.spawn(serve_connection(&http, &limits, stream, &routes, &signals, slot.take(), &serving));
                }
            }
            () = tokio::time::sleep_until(next_shed), if waiting.is_some() => {
                routes.occupancy.full();
                // Every send is news to the receivers, the same value again too.
                signal.send_replace(Signal::Shed);
                next_shed = Instant::now() + SHED_EVERY;
            }
            () = tokio::time::sleep_until(side_lane_at), if waiting.is_some() => {
                match Arc::clone(&side_lane_slots).try_acquire_owned() {
                    Ok(permit) => if let Some(stream) = waiting.take() {
                        side_lane_retry = SIDE_LANE_SHED_AFTER;
                        connections.spawn(serve_connection(&side_lane_http, &limits, stream, &side_lane, &side_lane_signals, Some(permit), &serving));
                    },
                    // The side lane is full too: the connection waits on,
                    // while side-lane connections without a whole head yet
                    // are closed.
                    Err(_) => {
                        side_lane_signal.send_replace(Signal::Shed);
                        side_lane_at = Instant::now() + side_lane_retry;
                        side_lane_retry = (side_lane_retry * 2).min(SHED_EVERY);
                    }
                }
            }
            accepted = listener.accept(), if slot.is_some() || waiting.is_none() => match accepted {
                Ok((stream, _peer)) if slot.is_some() => {
                    accepting_again(&mut failures);
                    connections.spawn(serve_connection(&http, &limits, stream, &routes, &signals, slot.take(), &serving));
                }
                // At the bound, with every slot answering a request: no
                // slot frees for a while, so the side lane at once.
                Ok((stream, _peer)) if routes.every_slot_answering(limits.max_connections) => {
                    accepting_again(&mut failures);
                    // Bodies still arriving are cut for it (`SLOW_BODY_AT_THE_BOUND`).
                    routes.occupancy.full();
                    match Arc::clone(&side_lane_slots).try_acquire_owned() {
                        Ok(permit) => {
                            connections.spawn(serve_connection(&side_lane_http, &limits, stream, &side_lane, &side_lane_signals, Some(permit), &serving));
                        }
                        // The side lane is full too: this one waits for a
                        // place there (side-lane connections without a whole
                        // head yet are closed for it), or a slot, whichever
                        // comes first.
                        Err(_) => {
                            waiting = Some(stream);
                            side_lane_signal.send_replace(Signal::Shed);
                            side_lane_at = Instant::now() + side_lane_retry;
                            next_shed = Instant::now() + SHED_EVERY;
                        }
                    }
                }
                // At the bound, some slot serving no request (kept alive,
                // or still sending a head): one waits here (the rest in the
                // kernel's queue, not in our memory) while those close.
                Ok((stream, _peer)) => {
                    accepting_again(&mut failures);
                    // Bodies still arriving are cut for it too: with a few
                    // slots left to turn over, a queue (a health check in
                    // it) passed through them a few hundred a second.
                    routes.occupancy.full();
                    waiting = Some(stream);
                    let now = Instant::now();
                    next_shed = now;
                    side_lane_at = now + SIDE_LANE_AFTER;
                }
                Err(error) => {
                    if out_of_descriptors(&error) {
                        // Idle connections hold descriptors: close them, as
                        // at the bound, so that the queue (a health check in
                        // it) is served again; the side lane's too.
                        signal.send_replace(Signal::Shed);
                        side_lane_signal.send_replace(Signal::Shed);
                    }
                    accept_failed(error, &mut failures).await;
                }
            },
        }
    }
    drop(listener);
    drop(waiting);
    signal.send_replace(Signal::Drain);
    side_lane_signal.send_replace(Signal::Drain);
    drain(connections, limits.drain_timeout).await;
    Ok(())
}

/// Waits for `connections` to close (idle ones at once, the rest once
/// answered) for up to `drain_timeout`, saying how it goes: whoever stops
/// a task sees what it waits for, and how long the drain took.
async fn drain(mut connections: JoinSet<()>, drain_timeout: Duration) {
    let open = connections.len();
    if open == 0 {
        tracing::info!("drained: no connection was open");
        return;
    }
    let started = Instant::now();
    // Idle kept-alive connections among them close at once.
    tracing::info!(
        connections = open,
        "draining: waiting up to {drain_timeout:?} for the requests in flight"
    );
    let deadline = tokio::time::sleep(drain_timeout);
    tokio::pin!(deadline);
    let mut progress = tokio::time::interval_at(started + DRAIN_PROGRESS_EVERY, DRAIN_PROGRESS_EVERY);
    loop {
        tokio::select! {
            joined = connections.join_next() => if joined.is_none() {
                tracing::info!(
                    connections = open,
                    "drained in {} ms",
                    started.elapsed().as_millis()
                );
                return;
            },
            _ = progress.tick() => tracing::info!(
                left = connections.len(),
                of = open,
                "draining: still waiting after {} s",
                started.elapsed().as_secs()
            ),
            () = &mut deadline => {
                tracing::warn!(
                    left = connections.len(),
                    of = open,
                    "drain deadline ({drain_timeout:?}) passed: closing the connections left"
                );
                connections.shutdown().await;
                return;
            }
        }
    }
}

/// The router and the timeouts every connection's [`App`] answers with.
#[derive(Clone)]
struct Routes {
    /// `/order` and `/order/` are the same route: the path is normalised
    /// before routing, which is why this wraps the router rather than being
    /// a layer on it.
    router: NormalizePath<Router>,
    body_read_timeout: Duration,
    request_timeout: Duration,
    /// On the side lane, past the connection bound: only `GET` and `HEAD`
    /// are answered (see [`serve_with`]).
    beyond_the_bound: bool,
    /// What is left of [`BODY_BUDGET`], shared by every connection.
    body_budget: Arc<Semaphore>,
    /// How many connections within the bound are answering a request, and
    /// when the bound was last met.
    occupancy: Arc<Occupancy>,
    /// Where the requests answered here, before any route, are counted.
    unserved: Option<crate::metrics::Unserved>,
    /// Whether each request has its span and access log line.
    logged: bool,
}

impl Routes {
    fn new(router: Router, limits: &ServerLimits) -> Self {
        Self {
            router: NormalizePath::trim_trailing_slash(router),
            body_read_timeout: limits.body_read_timeout,
            request_timeout: limits.request_timeout,
            beyond_the_bound: false,
            body_budget: Arc::new(Semaphore::new(BODY_BUDGET / BUDGET_UNIT)),
            occupancy: Arc::new(Occupancy {
                answering: AtomicUsize::new(0),
                full_at_ms: AtomicU64::new(0),
                since: Instant::now(),
            }),
            unserved: None,
            logged: true,
        }
    }

    /// Whether each of `max_connections` slots is answering a request, so
    /// that closing idle connections would free none.
    fn every_slot_answering(&self, max_connections: usize) -> bool {
        self.occupancy.answering.load(Ordering::Acquire) >= max_connections
    }
}

/// What the connections within the bound tell the accept loop, and it them.
struct Occupancy {
    /// How many connections within the bound are answering a request now
    /// (the side lane's are not counted: they hold no slot).
    answering: AtomicUsize,
    /// When a new connection last found no slot free, in ms after `since`,
    /// plus one (0: never).
    full_at_ms: AtomicU64,
    /// When the loop began.
    since: Instant,
}

impl Occupancy {
    /// Notes that a new connection finds no slot free now.
    fn full(&self) {
        let ms = u64::try_from(self.since.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.full_at_ms.store(ms + 1, Ordering::Relaxed);
    }

    /// Whether a new connection found no slot free within `within` before
    /// `now`.
    fn full_within(&self, now: Instant, within: Duration) -> bool {
        match self.full_at_ms.load(Ordering::Relaxed) {
            0 => false,
            at => now.saturating_duration_since(self.since + Duration::from_millis(at - 1)) <= within,
        }
    }
}

/// What hyper serves: the router with everything every service answers the
/// same way (path normalisation, access log, body limit, body and request
/// timeouts), in one service of our own.
///
/// It replaces a stack of tower-http and axum layers (trace, timeout, a
/// `from_fn` middleware for the body) that cost a boxed future, a span
/// wrapper and a timer each per request; here one timer serves both
/// timeouts (see docs/bench.md, "Where the time goes").
///
/// Each connection has its own, with its own flag saying whether a request
/// is being answered on it (so the loop can shed the connection when idle).
#[derive(Clone)]
struct App {
    routes: Routes,
    busy: Arc<AtomicBool>,
}

/// Marks its connection busy while a request is answered, and counts it
/// among the connections answering (unless on the side lane), until dropped
/// (the answer done, or dropped with its connection).
struct Answering<'a> {
    busy: &'a AtomicBool,
    counted: Option<&'a AtomicUsize>,
}

impl<'a> Answering<'a> {
    /// Counted in `answering` unless `beyond_the_bound`.
    fn new(busy: &'a AtomicBool, answering: &'a AtomicUsize, beyond_the_bound: bool) -> Self {
        busy.store(true, Ordering::Release);
        let counted = (!beyond_the_bound).then_some(answering);
        if let Some(answering) = counted {
            answering.fetch_add(1, Ordering::AcqRel);
        }
        Self { busy, counted }
    }
}

impl Drop for Answering<'_> {
    fn drop(&mut self) {
        self.busy.store(false, Ordering::Release);
        if let Some(answering) = self.counted {
            answering.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl App {
    /// The app for a new connection, with a busy flag of its own.
    fn for_connection(routes: &Routes) -> Self {
        Self {
            routes: routes.clone(),
            busy: Arc::default(),
        }
    }

    /// Answers one request, started at `started`, and writes the access
    /// log line (the line tower-http's trace layer wrote; the span is the
    /// caller's).
    ///
    /// Reads the whole body (at most [`BODY_LIMIT`]) within the body
    /// timeout, so a body sent a byte at a time is refused instead of
    /// holding the handler, then runs the router within what is left of the
    /// request timeout. Both are answered 503: SNS counts a 4xx such as 408
    /// as delivered and would drop an order whose body merely stalled on
    /// the way, while it retries a 5xx. One timer serves both deadlines.
    /// One function rather than one awaiting another, for the reason in
    /// `serve_connection`.
    async fn answer(self, request: Request<Incoming>, started: Instant) -> Result<Response, Infallible> {
        // The response is written after this returns; while that write
        // waits for the client, the connection is not idle (`Writing`), so a
        // drain still lets it finish (hyper's graceful shutdown) and a call
        // to shed leaves it alone. By field: the router is used up answering, while the flag and the
        // count stay borrowed until the answer is done.
        let Self {
            routes:
                Routes {
                    router,
                    body_read_timeout,
                    request_timeout,
                    beyond_the_bound,
                    body_budget,
                    occupancy,
                    unserved,
                    logged,
                },
            busy,
        } = self;
        let _answering = Answering::new(&busy, &occupancy.answering, beyond_the_bound);
        let deadline = started + request_timeout;
        let body_deadline = deadline.min(started + body_read_timeout);
        // A body in by then (nearly every one) never wakes it.
        let timer = tokio::time::sleep_until(body_deadline.min(started + SLOW_BODY_AT_THE_BOUND));
        tokio::pin!(timer);
        let (parts, body) = request.into_parts();
        // What hyper knows of the body before it is read: its length, if announced.
        let budget_units = budget_units(&body);
        let no_body = body.is_end_stream();
        let body_size = body.size_hint().exact();
        let read = Limited::new(body, BODY_LIMIT).collect();
        tokio::pin!(read);
        let answered = 'answer: {
            if !one_host(&parts) {
                break 'answer Err(Unanswered::NotOneHost);
            }
            // A body of a known length was sent whole: no coding to look at.
            if body_size.is_none() && !chunked_alone(&parts) {
                break 'answer Err(Unanswered::UnknownCoding);
            }
            if !METHODS.contains(&parts.method) {
                break 'answer Err(Unanswered::NoSuchMethod);
            }
            // tower-http's normalisation trims leading slashes too, so
            // `//fulfill/` would reach the glue hook past a load balancer
            // rule written for `/fulfill*`. No route starts with two.
            if parts.uri.path().starts_with("//") {
                break 'answer Err(Unanswered::NoSuchPath);
            }
            // A GET with a body would hold a side-lane place while it trickled in.
            if beyond_the_bound && (!matches!(parts.method, Method::GET | Method::HEAD) || !no_body) {
                break 'answer Err(Unanswered::AtTheBound);
            }
            // Held until the route has answered: routes keep the body that long.
            let _budget = match budget_units {
                Ok(0) => None,
                Ok(units) => match Arc::clone(&body_budget).try_acquire_many_owned(units) {
                    Ok(permit) => Some(permit),
                    Err(_) => break 'answer Err(Unanswered::OverBudget),
                },
                Err(refused) => break 'answer Err(refused),
            };
            let body = loop {
                tokio::select! {
                    biased;
                    read = &mut read => match read {
                        Ok(collected) => break collected.to_bytes(),
                        Err(error) if error.is::<LengthLimitError>() => break 'answer Err(Unanswered::TooLarge),
                        Err(_) => break 'answer Err(Unanswered::Broken),
                    },
                    () = &mut timer => {
                        let now = Instant::now();
                        if now >= body_deadline {
                            break 'answer Err(if body_deadline < deadline {
                                Unanswered::SlowBody(body_read_timeout)
                            } else {
                                Unanswered::Late(request_timeout)
                            });
                        }
                        if occupancy.full_within(now, SLOW_BODY_AT_THE_BOUND) {
                            break 'answer Err(Unanswered::SlowBodyAtTheBound(SLOW_BODY_AT_THE_BOUND));
                        }
                        timer.as_mut().reset(body_deadline.min(now + SLOW_BODY_CHECK_EVERY));
                    }
                }
            };
            timer.as_mut().reset(deadline);
            let request = Request::from_parts(parts, Body::from(body));
            tokio::select! {
                biased;
                response = ANSWERING_BY.scope(RequestDeadline(deadline), router.oneshot(request)) => match response {
                    Ok(response) => Ok(response),
                    Err(infallible) => match infallible {},
                },
                // A route ran: an order route's count has it (an order
                // dropped unanswered counts as failed); another route's
                // shows in its access line. Not counted as unserved.
                () = &mut timer => Ok(Unanswered::Late(request_timeout).into_response()),
            }
        };
        let mut response = answered.unwrap_or_else(|unanswered| {
            if let Some(unserved) = &unserved {
                unserved.count(unanswered.reason());
            }
            unanswered.into_response()
        });
        // Replies quote what a client sent (a path, a field); a browser must
        // read them as the type they name, never sniff them into HTML, and
        // one told to open a reply as a document runs nothing in it and lets
        // no page frame it. A page (HQ's) sets its own policy.
        let headers = response.headers_mut();
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers
            .entry(header::CONTENT_SECURITY_POLICY)
            .or_insert(HeaderValue::from_static(DATA_SECURITY_POLICY));
        headers
            .entry(header::X_FRAME_OPTIONS)
            .or_insert(HeaderValue::from_static("DENY"));
        if logged && response.extensions().get::<Unlogged>().is_none() {
            // A number, to the microsecond: log queries sort and add it
            // (`stats pct(latency_ms, 99)`), which a "3 ms" string defeats.
            let latency_ms = started.elapsed().as_micros() as f64 / 1000.0;
            tracing::info!(
                latency_ms,
                status = response.status().as_u16(),
                "finished processing request"
            );
        }
        Ok(response)
    }
}

impl hyper::service::Service<Request<Incoming>> for App {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        // With an `order_id` field, filled in once the order is known.
        let span = if self.routes.logged {
            crate::telemetry::request_span(&request)
        } else {
            tracing::Span::none()
        };
        // The answer's own future, boxed as it is: wrapping it in another
        // async block would keep the request twice (see `serve_connection`).
        Box::pin(self.clone().answer(request, Instant::now()).instrument(span))
    }
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

/// What the serve loop asks of its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    /// Serve as usual.
    Serve,
    /// At the bound: close if serving no request.
    Shed,
    /// Close once the request in flight, if any, is answered.
    Drain,
}

/// Serves one connection until it ends, or until the drain starts: then it
/// closes at once if idle (kept alive, or still sending its head), or after
/// the response in flight. While the loop sheds, it closes too if no
/// request is being answered on it. `permit` is the connection's slot,
/// given back when it ends.
///
/// Idle means no request being answered and no response waiting to be
/// written: such a connection is dropped, not asked to close. hyper's
/// graceful shutdown closes a kept-alive connection at once, but one that
/// has sent part of a head only at the header timeout (20 s in the
/// templates): three bytes, and a connection held its slot past every call
/// to shed, and SIGTERM waited for it.
///
/// Not an `async fn`, nor awaited inside another future: rustc keeps an
/// async function's arguments and a future it awaits side by side, so each
/// such layer held hyper's connection twice (1.2 KB more per connection,
/// docs/bench.md). Built here, the connection is the future's only copy.
fn serve_connection(
    http: &http1::Builder,
    limits: &ServerLimits,
    stream: TcpStream,
    routes: &Routes,
    signals: &watch::Receiver<Signal>,
    permit: Option<OwnedSemaphorePermit>,
    serving: &tracing::Span,
) -> impl Future<Output = ()> + Send + 'static {
    let app = App::for_connection(routes);
    let unserved = routes.unserved.clone();
    // How long a connection serving no request is spared from a call to
    // shed once accepted: time to send its head.
    let shed_after = if routes.beyond_the_bound {
        SIDE_LANE_SHED_AFTER
    } else {
        SHED_EVERY
    };
    let busy = Arc::clone(&app.busy);
    let writing = Writing::default();
    let stream = WriteDeadline::new(stream, limits.write_timeout, writing.clone());
    let connection = http.serve_connection(TokioIo::new(stream), app);
    let mut signals = signals.clone();
    // Only calls made from now on concern this connection.
    signals.borrow_and_update();
    let accepted = Instant::now();
    async move {
        tokio::pin!(connection);
        // Polled just before (the connection arm comes first) and pending,
        // so waiting for a head, for a request's answer, or to write one.
        let idle = || !busy.load(Ordering::Acquire) && !writing.now();
        let result = loop {
            tokio::select! {
                // The connection first: a request already on the wire makes
                // it busy before a call to shed is looked at.
                biased;
                result = connection.as_mut() => break result,
                changed = signals.changed() => match changed.map(|()| *signals.borrow_and_update()) {
                    // A connection just accepted has had no time to send
                    // its head yet.
                    Ok(Signal::Shed) if idle() && accepted.elapsed() >= shed_after => break Ok(()),
                    Ok(Signal::Serve | Signal::Shed) => {}
                    // Draining, or the loop has returned.
                    Ok(Signal::Drain) | Err(_) if idle() => break Ok(()),
                    Ok(Signal::Drain) | Err(_) => {
                        // Answers the request in flight, then closes.
                        connection.as_mut().graceful_shutdown();
                        break connection.as_mut().await;
                    }
                },
            }
        };
        if let Err(error) = result {
            match refused_head(&error) {
                // Refused by hyper before any route ran: counted and said as
                // the loop's own refusals are (hyper's words are its own,
                // never the client's; they say what it answered).
                Some(reason) => {
                    if let Some(unserved) = &unserved {
                        unserved.count(reason);
                    }
                    tracing::warn!(%error, "request not served: its head was refused");
                }
                // Timeouts and resets: the client's doing, and no request.
                None => tracing::debug!(%error, "connection ended"),
            }
        }
        drop(permit);
    }
    .instrument(serving.clone())
}

/// Descriptors a service needs beyond its connections: the listener, the
/// downstream pool, certificate fetches, the metrics port, logs.
const SPARE_DESCRIPTORS: u64 = 256;

/// Raises this process' open-file limit to its hard limit, once (every
/// connection is a descriptor, and the usual soft limit, 1,024, is below
/// `MAX_CONNECTIONS`' default plus the downstream pool), and warns, once,
/// when even that leaves too few for a service's `max_connections`. Called
/// for a service's own port (not for a metrics port, whose limits are no
/// setting of the operator's).
pub(crate) fn open_files_for(max_connections: usize) {
    static LIMIT: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    static WARNED: AtomicBool = AtomicBool::new(false);
    let limit = *LIMIT.get_or_init(|| match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(error) => {
            tracing::warn!(%error, "cannot read or raise the open-file limit");
            None
        }
    });
    let wanted = u64::try_from(max_connections)
        .unwrap_or(u64::MAX)
        .saturating_add(SPARE_DESCRIPTORS);
    if let Some(limit) = limit
        && limit < wanted
        && !WARNED.swap(true, Ordering::Relaxed)
    {
        tracing::warn!(
            "the open-file limit is {limit}, and MAX_CONNECTIONS ({max_connections}) with the calls \
             to other services needs about {wanted}: out of descriptors, idle connections are \
             closed to make room (raise it: `ulimit -n`, Docker's --ulimit nofile, or the task \
             definition's ulimits)"
        );
    }
}

/// Whether an accept failed for want of file descriptors (the process' or
/// the system's), which closing idle connections gives back.
fn out_of_descriptors(error: &std::io::Error) -> bool {
    // EMFILE and ENFILE (the same numbers on Linux and macOS).
    const EMFILE: i32 = 24;
    const ENFILE: i32 = 23;
    matches!(error.raw_os_error(), Some(EMFILE | ENFILE))
}

/// Waits a little after an accept error that would repeat at once (out of
/// file descriptors or memory), logging it as `failures` allows; a
/// connection that failed while queued is just skipped.
async fn accept_failed(error: std::io::Error, failures: &mut RepeatedFailures) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    let every = failures.every();
    if let Some(failures) = failures.failed(Instant::now()) {
        tracing::error!(
            %error,
            failures,
            "cannot accept connections ({failures} failed since the last such line); retrying every \
             {ACCEPT_RETRY:?}, and reporting at most every {every:?}"
        );
    }
    tokio::time::sleep(ACCEPT_RETRY).await;
}

/// Reports the accept failures held back, once `failures` allows, when a
/// connection is accepted again.
fn accepting_again(failures: &mut RepeatedFailures) {
    if let Some(failures) = failures.succeeded(Instant::now()) {
        tracing::warn!(
            failures,
            "accepting connections again ({failures} failed since the last such line)"
        );
    }
}

/// The methods RFC 9110 (section 9) defines, and PATCH (RFC 5789): any
/// other (WebDAV's, `FETCH`) is answered 501 before routing, as one no
/// route here could take.
static METHODS: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::CONNECT,
    Method::OPTIONS,
    Method::TRACE,
    Method::PATCH,
];

/// Whether a request names its host as RFC 9112 (3.2) requires, which hyper
/// leaves to the server: one `Host` line (HTTP/1.0 may send none) holding a
/// host and maybe a port, or nothing. Two proxies that read different
/// lines of two `Host` lines (one routing or caching on the first, the
/// next on the last) are how requests slip past rules; the RFC's answer is
/// 400, whatever stands in front.
fn one_host(parts: &axum::http::request::Parts) -> bool {
    let mut hosts = parts.headers.get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (None, _) => parts.version < axum::http::Version::HTTP_11,
        (Some(host), None) => host.is_empty() || names_a_host(host.as_bytes()),
        (Some(_), Some(_)) => false,
    }
}

/// Whether a request's `Transfer-Encoding`, if any, is `chunked` alone: the
/// one coding the services read. hyper refuses a list that does not end in
/// `chunked`, and takes `gzip, chunked` or `chunked` twice as plain
/// chunked, handing on a body still coded (or one a front read another
/// way); RFC 9112 (6.1) answers a coding not understood 501.
fn chunked_alone(parts: &axum::http::request::Parts) -> bool {
    let mut codings = parts.headers.get_all(header::TRANSFER_ENCODING).iter();
    match (codings.next(), codings.next()) {
        (None, _) => true,
        (Some(coding), None) => coding.as_bytes().eq_ignore_ascii_case(b"chunked"),
        (Some(_), Some(_)) => false,
    }
}

/// Whether `host` is RFC 3986's `host [":" port]`: a bracketed IP literal
/// (an IPv6 address, or `v` and a version as IPvFuture has it) or a
/// registered name (an IPv4 address is one) whose `%` each start an escape
/// of two hex digits, then maybe a port of digits; no user name. Checked
/// byte by byte: `http`'s `Authority` copies the text to parse it, and lets
/// a user name and a port of letters through; about 500 instructions a
/// request (docs/bench.md, "One Host, one coding").
fn names_a_host(host: &[u8]) -> bool {
    let (name_ok, port) = match host.split_first() {
        Some((b'[', literal)) => match literal.iter().position(|&b| b == b']') {
            Some(end) => (ip_literal(&literal[..end]), &literal[end + 1..]),
            None => return false,
        },
        _ => {
            let end = host.iter().position(|&b| b == b':').unwrap_or(host.len());
            (end > 0 && reg_name(&host[..end]), &host[end..])
        }
    };
    name_ok
        && match port.split_first() {
            None => true,
            Some((b':', digits)) => digits.iter().all(u8::is_ascii_digit),
            Some(_) => false,
        }
}

/// RFC 3986's unreserved and sub-delims, by byte: what a registered name
/// and an IPvFuture address are made of, besides `%` escapes.
const NAME_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = (byte as u8).is_ascii_alphanumeric();
        byte += 1;
    }
    let others = b"-._~!$&'()*+,;=";
    let mut i = 0;
    while i < others.len() {
        table[others[i] as usize] = true;
        i += 1;
    }
    table
};

/// Whether `name` is RFC 3986's reg-name: unreserved and sub-delims bytes,
/// and `%` followed by two hex digits.
fn reg_name(name: &[u8]) -> bool {
    let mut rest = name;
    while let Some((&first, after)) = rest.split_first() {
        rest = match (first, after) {
            (b'%', [high, low, after @ ..]) if high.is_ascii_hexdigit() && low.is_ascii_hexdigit() => after,
            _ if NAME_BYTES[usize::from(first)] => after,
            _ => return false,
        };
    }
    true
}

/// Whether `literal` (inside the brackets) is RFC 3986's IP-literal: an
/// IPv6 address (no zone), or IPvFuture, `v`, hex digits, `.` and
/// unreserved, sub-delims or `:` bytes.
fn ip_literal(literal: &[u8]) -> bool {
    match literal.split_first() {
        Some((b'v' | b'V', future)) => match future.iter().position(|&b| b == b'.') {
            Some(dot) if dot > 0 && future[..dot].iter().all(u8::is_ascii_hexdigit) => {
                let address = &future[dot + 1..];
                !address.is_empty() && address.iter().all(|&b| NAME_BYTES[usize::from(b)] || b == b':')
            }
            _ => false,
        },
        _ => std::str::from_utf8(literal).is_ok_and(|text| text.parse::<std::net::Ipv6Addr>().is_ok()),
    }
}

/// The units of [`BODY_BUDGET`] a request's body takes, by what hyper knows
/// of it before it is read: none for no body (a `GET`, the health check) or
/// one announced at up to [`SMALL_BODY`]; a body of unknown length (chunked)
/// may be as large as [`BODY_LIMIT`]. One announced over [`BODY_LIMIT`] is
/// refused (413) before it is read.
fn budget_units(body: &Incoming) -> Result<u32, Unanswered> {
    if body.is_end_stream() {
        return Ok(0);
    }
    // usize to u64 widens on every target we build for.
    let announced = body.size_hint();
    if announced.lower() > BODY_LIMIT as u64 {
        return Err(Unanswered::TooLarge);
    }
    let length = announced
        .exact()
        .map_or(BODY_LIMIT as u64, |exact| exact.min(BODY_LIMIT as u64));
    if length <= SMALL_BODY as u64 {
        return Ok(0);
    }
    Ok(u32::try_from(length.div_ceil(BUDGET_UNIT as u64)).unwrap_or(u32::MAX))
}

/// Why a request got no answer from its route: the serve loop's own replies.
#[derive(Debug, thiserror::Error)]
enum Unanswered {
    /// The client took longer than the body timeout. A 5xx, so that SNS
    /// sends the message again (it drops one answered 4xx).
    #[error("the request body took longer than {0:?} to arrive; send it again")]
    SlowBody(Duration),
    /// At the bound, the body still arriving [`SLOW_BODY_AT_THE_BOUND`] after
    /// the head. A 5xx, so that SNS sends the message again.
    #[error(
        "every connection this service takes (MAX_CONNECTIONS) is taken, and the request body took longer than {0:?} to arrive; send it again"
    )]
    SlowBodyAtTheBound(Duration),
    /// The route took longer than what was left of the request timeout; it
    /// is dropped. A 5xx, so that SNS sends the message again.
    #[error("no answer within {0:?}; send it again")]
    Late(Duration),
    /// Over [`BODY_LIMIT`].
    #[error("the request body is over {BODY_LIMIT} bytes")]
    TooLarge,
    /// On the side lane, a request other than a `GET` or `HEAD`. A 5xx, so
    /// that SNS sends the message again.
    #[error("every connection this service takes (MAX_CONNECTIONS) is answering a request; send it again")]
    AtTheBound,
    /// Not exactly one valid `Host` line (see [`one_host`]).
    #[error("a request must name its host in exactly one Host header (RFC 9112, section 3.2)")]
    NotOneHost,
    /// A `Transfer-Encoding` other than `chunked` alone (see [`chunked_alone`]).
    #[error("no Transfer-Encoding but chunked alone is implemented here")]
    UnknownCoding,
    /// A path starting `//`, which path rules see as no route of ours.
    #[error("no such path")]
    NoSuchPath,
    /// A method outside [`METHODS`]: RFC 9110 (9.1)
    /// answers one not recognised 501, where the router would say 405, as
    /// if another method of its own might do on that path.
    #[error("no such method is implemented here (RFC 9110, section 9.1)")]
    NoSuchMethod,
    /// The connection failed mid-body.
    #[error("the request body could not be read")]
    Broken,
    /// Large bodies already held fill [`BODY_BUDGET`]. A 5xx, so that SNS
    /// sends the message again.
    #[error("too many large request bodies in flight; send it again")]
    OverBudget,
}

/// Every reason [`Unanswered::reason`] and [`refused_head`] give, for the
/// metric to show each at 0 from the start (a series born at its first
/// count is missed by `increase()`).
pub(crate) const UNSERVED_REASONS: [&str; 10] = [
    "slow_body",
    "slow_body_at_the_bound",
    "late",
    "too_large",
    "at_the_bound",
    "no_such_path",
    "broken",
    "over_budget",
    "head_too_large",
    "bad_head",
];

/// A request head hyper refused itself, its reason for
/// `interstella_requests_unserved_total`: too large (over
/// `MAX_HEADER_BYTES` or hyper's 100 fields: 431; a URI over 64 KiB: 414),
/// or malformed (400; HTTP/2 spoken unasked gets no answer at all).
fn refused_head(error: &hyper::Error) -> Option<&'static str> {
    if error.is_parse_too_large() {
        Some("head_too_large")
    } else if error.is_parse() {
        Some("bad_head")
    } else {
        None
    }
}

impl Unanswered {
    /// Its reason, as `interstella_requests_unserved_total` names it (one
    /// of [`UNSERVED_REASONS`]).
    fn reason(&self) -> &'static str {
        match self {
            Self::SlowBody(_) => "slow_body",
            // Its own: many of these are clients holding the bound, which an
            // operator wants told apart from a slow network.
            Self::SlowBodyAtTheBound(_) => "slow_body_at_the_bound",
            Self::Late(_) => "late",
            Self::TooLarge => "too_large",
            Self::AtTheBound => "at_the_bound",
            Self::NotOneHost | Self::UnknownCoding | Self::NoSuchMethod => "bad_head",
            Self::NoSuchPath => "no_such_path",
            Self::Broken => "broken",
            Self::OverBudget => "over_budget",
        }
    }

    /// The status this error is answered with.
    fn status(&self) -> StatusCode {
        match self {
            Self::SlowBody(_)
            | Self::SlowBodyAtTheBound(_)
            | Self::Late(_)
            | Self::AtTheBound
            | Self::OverBudget => StatusCode::SERVICE_UNAVAILABLE,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Broken | Self::NotOneHost => StatusCode::BAD_REQUEST,
            Self::NoSuchPath => StatusCode::NOT_FOUND,
            Self::UnknownCoding | Self::NoSuchMethod => StatusCode::NOT_IMPLEMENTED,
        }
    }
}

impl IntoResponse for Unanswered {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Self::Late(_) = self {
            // Ours or downstream's: at the level of the downstream timeout
            // that would have said so had it fired first.
            tracing::error!(status = status.as_u16(), error = %self, "request not served");
        } else if let Self::NoSuchPath | Self::NoSuchMethod = self {
            // The access line says so, as for any other path not ours: a
            // scan of paths or methods would otherwise be a warning per probe.
        } else {
            // The client's doing.
            tracing::warn!(status = status.as_u16(), error = %self, "request not served");
        }
        let mut response = (status, self.to_string()).into_response();
        if let Self::NotOneHost | Self::UnknownCoding = self {
            // A client that reads framing or hosts otherwise than we do (or
            // a front that did) may send its next request askew: none is
            // read after this one.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body bounds are the figures docs/contract.md and README give.
    #[test]
    fn the_body_bounds_are_the_docs_figures() {
        let contract = include_str!("../../../docs/contract.md");
        let readme = include_str!("../../../README.md");
        let limit = format!("body over the limit ({} KiB)", BODY_LIMIT / 1024);
        let small = format!("bodies over {} KiB", SMALL_BODY / 1024);
        let budget = format!("share {} MiB per service", BODY_BUDGET / (1024 * 1024));
        for said in [&limit, &small, &budget] {
            assert!(
                contract.contains(said.as_str()),
                "docs/contract.md lacks {said:?}"
            );
        }
        let limit = format!("| body over {} KiB | 413 |", BODY_LIMIT / 1024);
        assert!(readme.contains(&limit), "README lacks {limit:?}");
    }

    /// Each refusal's reason is one the metric shows from the start, and
    /// every one it shows is some refusal's.
    #[test]
    fn every_reason_of_a_refusal_is_shown_from_the_start() {
        let refusals = [
            Unanswered::SlowBody(Duration::ZERO),
            Unanswered::SlowBodyAtTheBound(Duration::ZERO),
            Unanswered::Late(Duration::ZERO),
            Unanswered::TooLarge,
            Unanswered::AtTheBound,
            Unanswered::NotOneHost,
            Unanswered::UnknownCoding,
            Unanswered::NoSuchPath,
            Unanswered::NoSuchMethod,
            Unanswered::Broken,
            Unanswered::OverBudget,
        ];
        let reasons: std::collections::BTreeSet<_> = refusals
            .iter()
            .map(Unanswered::reason)
            .chain(["head_too_large", "bad_head"])
            .collect();
        assert_eq!(reasons, UNSERVED_REASONS.into_iter().collect());
        let shown = crate::Metrics::new().render();
        for reason in UNSERVED_REASONS {
            let line = format!(r#"interstella_requests_unserved_total{{reason="{reason}"}} 0"#);
            assert!(shown.lines().any(|shown| shown == line), "{line} in:\n{shown}");
        }
    }
}
