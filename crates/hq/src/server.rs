//! HQ serving: [`start`] puts HQ on a listener with its generator and
//! start-up subscriptions; [`RunningHq`] is the handle that stops it and
//! reconciles; [`run`] serves on a bound listener until a stop, then drains
//! and returns the reconciliation (the `hq` binary adds the signals, the
//! listener and the output).

use crate::admin::{TOKEN_ENV, TOKEN_FILE};
use crate::api;
use crate::config::HqConfig;
use crate::feed::generator::{Generator, GeneratorConfig};
use crate::feed::{Endpoint, Topic};
use crate::ledger::Reconciliation;
use crate::publisher::{PublishTo, Publisher};
use crate::state::{Hq, StartError};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use url::Url;

/// HQ serving on a listener, with its generator.
#[derive(Debug)]
pub struct RunningHq {
    hq: Hq,
    addr: SocketAddr,
    stop: CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
    generator: Option<Generator>,
    subscribers: Vec<JoinHandle<()>>,
    /// Starts the generator once the start-up subscriptions have settled.
    generator_gate: JoinHandle<()>,
    prober: JoinHandle<()>,
    /// Reconciles the previous run at start (see [`report_previous_run`]).
    previous_run_report: Option<JoinHandle<()>>,
    metrics: platform::Metrics,
    metrics_addr: Option<SocketAddr>,
}

/// The URL a listener is reached at.
fn local_url(addr: SocketAddr) -> Result<Url, url::ParseError> {
    Url::parse(&format!("http://{}/", reachable(addr)))
}

/// The address a listener is reached at: an unspecified one becomes loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    let ip = if addr.ip().is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        addr.ip()
    };
    SocketAddr::new(ip, addr.port())
}

/// Starts HQ on `listener`: serves, and generates orders if configured.
pub async fn start(listener: TcpListener, config: HqConfig) -> Result<RunningHq, StartError> {
    let addr = listener.local_addr().map_err(|source| StartError::Io {
        what: "reading the listen address".into(),
        source,
    })?;
    let base_url = match config.public_url.clone() {
        Some(url) => url,
        None => local_url(addr)?,
    };
    let hq = Hq::open(&config, base_url).await?;
    let stop = CancellationToken::new();
    let metrics = platform::Metrics::new();
    // On HQ's own address: HQ on loopback (its default) keeps its metrics
    // there too, where the services' bind every interface as they do.
    let exporter = match config.metrics_port {
        None => None,
        Some(port) => Some(
            platform::startup::bind_addr(std::net::SocketAddr::new(addr.ip(), port))
                .await
                .map_err(|source| StartError::Io {
                    what: "binding METRICS_PORT".into(),
                    source,
                })?,
        ),
    };
    let metrics_addr = exporter
        .as_ref()
        .and_then(|exporter| exporter.local_addr().ok())
        .map(reachable);
    let router = api::router_with_metrics(hq.clone(), &metrics);
    let shutdown = stop.clone().cancelled_owned();
    let served = metrics.clone();
    // In the span HQ was started in (the launcher's, naming it), as the
    // services' lines are.
    let server = tokio::spawn(
        async move {
            platform::metrics::serve_with_metrics(
                listener,
                router,
                config.server,
                &served,
                exporter,
                shutdown,
            )
            .await
        }
        .in_current_span(),
    );
    // The generator waits for the start-up subscriptions: orders published
    // before their endpoints confirm reach nobody (unrouted, the dashboard
    // amber at every `docker compose up`).
    let ready = CancellationToken::new();
    let generator = Some(Generator::start_when(
        hq.publisher(),
        &config.generator,
        ready.clone(),
    ));
    let (settled_to, settled) = tokio::sync::mpsc::channel(config.subscriptions.len().max(1));
    let subscribers = config
        .subscriptions
        .iter()
        .map(|(topic, endpoint)| {
            subscribe_in_background(
                hq.publisher(),
                *topic,
                endpoint,
                config.subscribe_every,
                settled_to.clone(),
            )
        })
        .collect();
    let generator_gate = tokio::spawn(
        open_when_settled(
            settled,
            config.subscriptions.len(),
            GENERATOR_WAITS_FOR_SUBSCRIPTIONS,
            config.generator.generates(),
            ready,
        )
        .in_current_span(),
    );
    let prober =
        tokio::spawn(probe_while_idle(hq.ledger().clone(), config.ledger_probe_every).in_current_span());
    let previous_run_report = hq
        .previous_run()
        .map(|run| tokio::spawn(report_previous_run(hq.ledger().clone(), run.to_owned()).in_current_span()));
    Ok(RunningHq {
        hq,
        addr,
        stop,
        server,
        generator,
        subscribers,
        generator_gate,
        prober,
        previous_run_report,
        metrics,
        metrics_addr,
    })
}

/// Subscribes `endpoint` to `topic`, sending the confirmation again until
/// it confirms (`first` after the first, the waits doubling up to
/// [`crate::config::MAX_SUBSCRIBE_EVERY`]), in a task of its own.
/// Says on `settled` whether it was confirmed (`true`) or abandoned.
fn subscribe_in_background(
    publisher: &Publisher,
    topic: Topic,
    endpoint: &Endpoint,
    first: Duration,
    settled: tokio::sync::mpsc::Sender<bool>,
) -> JoinHandle<()> {
    let (publisher, endpoint) = (publisher.clone(), endpoint.clone());
    tokio::spawn(
        async move {
            let confirmed = match publisher
                .subscribe_until_confirmed(topic, endpoint.clone(), first)
                .await
            {
                Ok(_) => true,
                Err(error) => {
                    // Shown masked, as everywhere: `Endpoint`'s Display.
                    tracing::error!(%topic, %endpoint, %error, "start-up subscription abandoned");
                    false
                }
            };
            let _ = settled.send(confirmed).await;
        }
        .in_current_span(),
    )
}

/// How long the generator waits for the start-up subscriptions to be
/// confirmed before it publishes anyway (the endpoints may be down for good).
pub const GENERATOR_WAITS_FOR_SUBSCRIPTIONS: Duration = Duration::from_secs(60);

/// Cancels `ready` once `expected` start-up subscriptions have settled
/// (confirmed or abandoned) on `settled`, or `within` has passed; the line
/// that says so names the generator only when it is `generating`.
async fn open_when_settled(
    mut settled: tokio::sync::mpsc::Receiver<bool>,
    expected: usize,
    within: Duration,
    generating: bool,
    ready: CancellationToken,
) {
    let (mut confirmed, mut abandoned) = (0, 0);
    let all = async {
        for _ in 0..expected {
            match settled.recv().await {
                Some(true) => confirmed += 1,
                Some(false) => abandoned += 1,
                None => break,
            }
        }
    };
    // Timed out or not, what the counts say is what matters.
    let _ = tokio::time::timeout(within, all).await;
    let then = if generating { ": the generator starts" } else { "" };
    if confirmed < expected {
        let unconfirmed = expected - confirmed - abandoned;
        tracing::warn!(
            confirmed,
            abandoned,
            unconfirmed,
            "start-up subscriptions not all confirmed ({abandoned} abandoned, {unconfirmed} still \
             unconfirmed after at most {within:?}){then}; orders on a topic nobody confirmed reach \
             nobody (unrouted)"
        );
    } else if expected > 0 {
        tracing::info!(confirmed, "every start-up subscription is confirmed{then}");
    }
    ready.cancel();
}

/// Probes `ledger` every `every` unless something wrote to it meanwhile, so
/// that the health check knows whether it can record when no orders come.
async fn probe_while_idle(ledger: crate::ledger::Ledger, every: Duration) {
    // An interval of zero would panic (and stop the probes): at least 1 ms.
    let mut ticks = tokio::time::interval(every.max(Duration::from_millis(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        ledger.probe_if_idle().await;
    }
}

/// Warns when `run`, the last run that published on HQ's own feed before
/// this one, left orders unaccounted for. Its deliveries under retry ended
/// with it, and nothing else would say so: a run killed without its drain
/// printed no reconciliation, and `/reconciliation` and the dashboard show
/// only the current run. Said at each start until another run publishes,
/// and after a drained stop too (its own reconciliation said the same). In
/// a task of its own: it reads that whole run.
async fn report_previous_run(ledger: crate::ledger::Ledger, run_id: String) {
    match ledger.reconcile(&run_id).await {
        Ok(previous) if !previous.is_clean() => {
            let crate::ledger::OrderCounts {
                published,
                fulfilled,
                pending,
                rejected,
                lost,
                duplicated,
                ..
            } = previous.totals;
            tracing::warn!(
                run_id,
                published,
                fulfilled,
                pending,
                rejected,
                lost,
                duplicated,
                "the last run that published here left orders unaccounted for, as of this start: \
                 {pending} never finished delivering (HQ does not retry them after a restart; \
                 fulfillments under way may still be recorded), {lost} lost, {rejected} refused \
                 by a subscription, {duplicated} fulfilled too often"
            );
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(run_id, %error, "cannot reconcile the last run that published"),
    }
}

impl RunningHq {
    /// HQ's state.
    pub fn hq(&self) -> &Hq {
        &self.hq
    }

    /// Where HQ listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where `GET /metrics` is reached (`METRICS_PORT`; loopback when it
    /// listens on every address), if anywhere.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Starts (or restarts) the generator with `config`.
    pub async fn generate(&mut self, config: &GeneratorConfig) {
        self.stop_generator().await;
        self.generator = Some(Generator::start(self.hq.publisher(), config));
    }

    /// Stops generating orders; deliveries under way go on.
    pub async fn stop_generator(&mut self) {
        if let Some(generator) = self.generator.take() {
            generator.stop().await;
        }
    }

    /// Stops generating and publishing, lets publishes and deliveries under
    /// way and their retries finish for up to `drain`, reconciles, then
    /// stops serving.
    pub async fn shutdown(mut self, drain: Duration) -> Result<Reconciliation, StartError> {
        // The drain begins with the deliveries', not when serving stops.
        self.metrics.drain_started();
        // HQ keeps serving while deliveries finish (the services call its
        // API and fetch its certificate), but an order published now would
        // be cut off by the stop and missed by the reconciliation.
        self.hq.publisher().stop_publishing();
        for subscriber in self.subscribers.drain(..) {
            subscriber.abort();
        }
        self.generator_gate.abort();
        // No probe may write after the checkpoint below.
        self.prober.abort();
        if let Some(report) = self.previous_run_report.take() {
            report.abort();
        }
        self.stop_generator().await;
        if !self.hq.publisher().drain(drain).await {
            // A stop that waits for nothing (the launcher's, which waited
            // itself, or a second Ctrl-C) says no "after 0ns".
            let waited = if drain.is_zero() {
                String::new()
            } else {
                format!(" after {drain:?}")
            };
            tracing::warn!(
                in_flight = self.hq.publisher().in_flight(),
                "publishes or deliveries still under way{waited}; reconciling without them"
            );
        }
        let reconciliation = self.hq.reconcile().await;
        self.stop.cancel();
        match self.server.await {
            Ok(Ok(())) => {}
            Ok(Err(source)) => {
                return Err(StartError::Io {
                    what: "serving".into(),
                    source,
                });
            }
            Err(e) => return Err(StartError::Task(e.to_string())),
        }
        // Nothing writes any more: leave the database file whole, so that a
        // copy of it alone is a backup.
        self.hq.ledger().checkpoint().await?;
        Ok(reconciliation?)
    }
}

/// Runs HQ on `listener` until `shutdown` resolves, then drains the
/// publishes and deliveries under way for up to `drain` and returns the
/// reconciliation (the `hq` binary prints or logs it).
pub async fn run(
    listener: TcpListener,
    config: HqConfig,
    drain: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Reconciliation, StartError> {
    // Where the credential is, never what it is.
    let admin_token_source = match config.admin_token {
        Some(_) => TOKEN_ENV.to_owned(),
        None => config.data_dir.join(TOKEN_FILE).display().to_string(),
    };
    // The data directory's default is relative: an HQ started from another
    // directory begins a new ledger, with no idempotency keys of the old
    // one. Said where, in full, and whether it is new.
    let ledger = crate::ledger::path_in(&config.data_dir);
    let ledger_is = if ledger.exists() {
        "kept from an earlier run"
    } else {
        "new"
    };
    let ledger = std::path::absolute(&ledger).unwrap_or(ledger);
    let publish_to = config.publish_to;
    let running = start(listener, config).await?;
    // On AWS the services trust SNS itself: HQ's stand-in is not named
    // there, lest it be taken for their AWS_ENDPOINT_URL_SNS.
    let orders_go_to = match publish_to {
        PublishTo::Local => format!("SNS stand-in (AWS_ENDPOINT_URL_SNS) {}", running.hq().base_url()),
        PublishTo::Aws => format!("orders published to SNS ({}=aws)", crate::cli::PUBLISH_TO_SETTING),
    };
    tracing::info!(
        "HQ listening on {}: fulfillment API {}, {orders_go_to}, \
         admin credential (Authorization: Bearer) in {admin_token_source}, ledger {} ({ledger_is}); \
         answering to {} ({} adds names)",
        running.addr(),
        running.hq().fulfillment_url(),
        ledger.display(),
        running.hq().host_names(),
        crate::hosts::ALLOWED_HOSTS_ENV
    );
    shutdown.await;
    running.shutdown(drain).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a panic is a failed test
mod tests {
    use super::*;

    /// What the line says once the start-up subscriptions have settled:
    /// the generator only when there is one.
    async fn settled_line(generating: bool) -> String {
        let logs = testkit::logs::CapturedLogs::default();
        let _logging = logs.capture();
        let (confirmed, settled) = tokio::sync::mpsc::channel(1);
        confirmed.send(true).await.unwrap();
        let ready = CancellationToken::new();
        open_when_settled(settled, 1, Duration::from_secs(5), generating, ready.clone()).await;
        assert!(ready.is_cancelled());
        logs.text()
    }

    #[tokio::test]
    async fn the_generator_is_named_only_when_there_is_one() {
        let said = settled_line(true).await;
        assert!(
            said.contains("every start-up subscription is confirmed: the generator starts"),
            "{said}"
        );
        let said = settled_line(false).await;
        assert!(
            said.contains("every start-up subscription is confirmed"),
            "{said}"
        );
        assert!(!said.contains("generator"), "{said}");
    }
}
