//! A service's order route: the settings the monolith and the resource
//! services share for it, its two ends (the intake of orders and the call
//! to the next service), made the same way for each, and serving it.

use crate::downstream::{DEFAULT_DOWNSTREAM_CONNECTIONS, Downstream, http_client};
use crate::error::ServiceError;
use crate::intake::OrderIntake;
use crate::metrics::Metrics;
use crate::server::{ServerLimitArgs, ServerLimits};
use crate::settings::{ConfigError, DownstreamLimitArgs, MetricsArgs, TrustConfig, millis};
use crate::startup::RunError;
use axum::Router;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use url::Url;

/// The monolith's default timeout on its call to the fulfillment API, in
/// milliseconds: well inside SNS' 15 s.
pub const API_CALL_TIMEOUT_MS: u64 = 5_000;

/// A resource service's default timeout on its call to the monolith's glue
/// hook, in milliseconds: the monolith's own call to the API and a margin,
/// so the monolith's answer gets back to it.
pub const HOOK_CALL_TIMEOUT_MS: u64 = API_CALL_TIMEOUT_MS + 5_000;

// The longest call's answer gets back within a request's time, and so
// before SNS' 15 s (the settings given, gather included, are checked at start).
const _: () = assert!(HOOK_CALL_TIMEOUT_MS < crate::server::DEFAULT_REQUEST_TIMEOUT_MS);

/// A service of one order route, as [`serve`] runs it: the monolith's or a
/// resource service's configuration.
pub trait RouteService: Send + 'static {
    /// The route's settings.
    fn route(&self) -> &RouteSettings;

    /// The service's router, counting in `metrics`. Fails only if the HTTP
    /// client cannot be built.
    fn router(self, metrics: &Metrics) -> Result<Router, reqwest::Error>;
}

/// Serves `service` on `listener` until `shutdown` resolves, then drains;
/// `GET /metrics` on `METRICS_PORT` when set.
pub async fn serve<S: RouteService>(
    listener: TcpListener,
    service: S,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let (limits, metrics_port) = (service.route().server, service.route().metrics_port);
    let metrics = Metrics::new();
    let exporter = match metrics_port {
        None => None,
        Some(port) => Some(
            crate::startup::bind(port)
                .await
                .map_err(|source| RunError::Listen {
                    what: format!("METRICS_PORT {port}"),
                    source,
                })?,
        ),
    };
    let router = service.router(&metrics).map_err(RunError::Client)?;
    crate::metrics::serve_with_metrics(listener, router, limits, &metrics, exporter, shutdown)
        .await
        .map_err(RunError::Serve)
}

/// `router` answering an unknown path (404) or a method its path does not
/// take (405, with its `Allow` header) with a line saying where orders go;
/// axum answers both with no text.
pub fn saying_where_orders_go(router: Router, order_path: &str) -> Router {
    let order_path: Arc<str> = order_path.into();
    let for_wrong_method = Arc::clone(&order_path);
    router
        .method_not_allowed_fallback(move || {
            std::future::ready(ServiceError::WrongMethod(Arc::clone(&for_wrong_method)))
        })
        .fallback(move || std::future::ready(ServiceError::NoSuchPath(Arc::clone(&order_path))))
}

/// The settings of a service's order route that the monolith and the
/// resource services share: its simulated work, its one call to the next
/// service, whom it believes, how it serves, where its metrics go.
/// `DOWNSTREAM_TIMEOUT_MS_DEFAULT` is the one default that differs: the
/// glue hook's call outlasts the monolith's own call to the API.
#[derive(Debug, Clone, clap::Args)]
pub struct RouteArgs<const DOWNSTREAM_TIMEOUT_MS_DEFAULT: u64> {
    /// Simulated work per order, in milliseconds: a microservice waits
    /// this long once per order; the monolith once per resource it still
    /// gathers, the resources gathered concurrently.
    #[arg(long, env = "GATHER_DELAY_MS", default_value_t = 0)]
    pub gather_delay_ms: u64,
    /// Timeout of each call to the next service, in milliseconds (the
    /// fulfillment API for the monolith, the glue hook for iridium and
    /// magnesite). At least 1: with 0, every call would time out.
    #[arg(
        long,
        env = "DOWNSTREAM_TIMEOUT_MS",
        default_value_t = DOWNSTREAM_TIMEOUT_MS_DEFAULT,
        value_parser = crate::settings::millis_at_least::<1>
    )]
    pub downstream_timeout_ms: u64,
    /// How many calls to it at once.
    #[command(flatten)]
    pub downstream_limit: DownstreamLimitArgs,
    /// Whom to believe.
    #[command(flatten)]
    pub trust: TrustConfig,
    /// How long and how much clients may take.
    #[command(flatten)]
    pub server: ServerLimitArgs,
    /// Where the metrics are served.
    #[command(flatten)]
    pub metrics: MetricsArgs,
}

impl<const DOWNSTREAM_TIMEOUT_MS_DEFAULT: u64> RouteArgs<DOWNSTREAM_TIMEOUT_MS_DEFAULT> {
    /// The route's settings, checked, for a service listening on `port`.
    pub fn resolve(&self, port: u16) -> Result<RouteSettings, ConfigError> {
        let settings = RouteSettings {
            gather_delay: millis(self.gather_delay_ms),
            downstream_timeout: millis(self.downstream_timeout_ms),
            downstream_max_connections: self.downstream_limit.downstream_max_connections,
            trust: self.trust.clone().check()?,
            server: self.server.limits()?,
            metrics_port: self.metrics.port(port)?,
        };
        Ok(settings.checked()?)
    }
}

/// A service's order route settings, resolved ([`RouteArgs`]).
#[derive(Debug, Clone)]
pub struct RouteSettings {
    /// Simulated work per order (`GATHER_DELAY_MS`).
    pub gather_delay: Duration,
    /// Timeout of each call to the next service (`DOWNSTREAM_TIMEOUT_MS`).
    pub downstream_timeout: Duration,
    /// Calls in flight to the next service at most (`DOWNSTREAM_MAX_CONNECTIONS`).
    pub downstream_max_connections: usize,
    /// Whom to believe.
    pub trust: TrustConfig,
    /// The serve loop's limits.
    pub server: ServerLimits,
    /// Where `GET /metrics` is served (`METRICS_PORT`); `None`: nowhere.
    pub metrics_port: Option<u16>,
}

impl RouteSettings {
    /// What carrying out one order may take: its gather, then its one
    /// downstream call. The request timeout must outlast it, and an order
    /// read with less time left is not started.
    pub fn work(&self) -> Duration {
        self.gather_delay + self.downstream_timeout
    }

    /// [`RouteSettings::work`], with the settings it is made of, for the
    /// refusal of an order read with less time left.
    pub fn order_work(&self) -> crate::intake::Work {
        crate::intake::Work {
            time: self.work(),
            settings: "GATHER_DELAY_MS and DOWNSTREAM_TIMEOUT_MS",
        }
    }

    /// What one downstream call may take, for a route that gathers nothing
    /// (the monolith's glue hook), with the setting it is.
    pub fn call_work(&self) -> crate::intake::Work {
        crate::intake::Work {
            time: self.downstream_timeout,
            settings: "DOWNSTREAM_TIMEOUT_MS",
        }
    }

    /// These settings, if the request timeout outlasts [`RouteSettings::work`]:
    /// [`RouteArgs::resolve`] checks settings from the environment so, and
    /// settings changed in code (the launcher's gather delay) need it too.
    pub fn checked(self) -> Result<Self, crate::server::LimitsError> {
        self.server.outlasting(self.work())?;
        Ok(self)
    }

    /// The route's two ends, sharing one HTTP client: the intake that takes
    /// its orders, believing whom [`RouteSettings::trust`] says, and the call
    /// to the next service at `url`, named `target` in logs and metrics.
    /// Fails only if the HTTP client cannot be built.
    pub fn ends(
        &self,
        url: Url,
        target: &'static str,
        metrics: &Metrics,
    ) -> Result<(OrderIntake, Downstream), reqwest::Error> {
        let client = http_client(self.downstream_max_connections)?;
        let next = Downstream::new(client.clone(), url, target, self.downstream_timeout)
            .with_max_connections(self.downstream_max_connections)
            .with_metrics(metrics);
        let intake = OrderIntake::new(self.trust.clone(), client)
            .with_metrics(metrics)
            .with_work(self.order_work());
        Ok((intake, next))
    }

    /// The defaults of every setting, with calls to the next service timing
    /// out after `downstream_timeout`.
    pub fn with_downstream_timeout(downstream_timeout: Duration) -> Self {
        Self {
            gather_delay: Duration::ZERO,
            downstream_timeout,
            downstream_max_connections: DEFAULT_DOWNSTREAM_CONNECTIONS,
            trust: TrustConfig::default(),
            server: ServerLimits::default(),
            metrics_port: None,
        }
    }
}
