//! The launcher: the whole Interstella platform on one machine, on loopback.
//!
//! Starts HQ, the monolith, iridium and magnesite in-process (each service's
//! own library), subscribes them to HQ's topics the way the workshop's final
//! lab wires them (`orders` → monolith `/order/`, `iridium` → `/iridium/`,
//! `magnesite` → `/magnesite/`), feeds orders, shows progress, and on
//! shutdown drains deliveries and reconciles orders against fulfillments.

pub mod cli;
pub mod console;

use contracts::Resource;
use hq::feed::generator::GeneratorConfig;
use hq::feed::{Backoff, FeedConfig, RetryPolicy, SubscriptionState, Topic};
use hq::ledger::Reconciliation;
use hq::{HqConfig, RunningHq};
use monolith::MonolithConfig;
use monolith::api::FulfillmentApi;
use platform::{HookSecret, TrustConfig};
use resource::ResourceConfig;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use url::Url;

/// How far the strangler pattern has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Stage {
    /// Everything in the monolith (the workshop before lab 4).
    Monolith,
    /// Iridium carved out: the monolith no longer gathers it ("noiridium").
    Iridium,
    /// Both resources carved out: the monolith is down to fulfillment.
    Both,
}

impl Stage {
    /// Resources the monolith no longer gathers at this stage.
    pub fn strangled(self) -> BTreeSet<Resource> {
        match self {
            Self::Monolith => BTreeSet::new(),
            Self::Iridium => BTreeSet::from([Resource::Iridium]),
            Self::Both => BTreeSet::from(Resource::ALL),
        }
    }

    /// Topics with orders at this stage: bundles always, and each resource
    /// once its microservice has been carved out.
    pub fn fed_topics(self) -> Vec<Topic> {
        match self {
            Self::Monolith => vec![Topic::Orders],
            Self::Iridium => vec![Topic::Orders, Topic::Iridium],
            Self::Both => Topic::ALL.to_vec(),
        }
    }
}

/// Everything the launcher needs.
#[derive(Debug, Clone)]
pub struct LaunchConfig {
    /// The migration stage.
    pub stage: Stage,
    /// HQ's data directory (ledger and signing key).
    pub data_dir: PathBuf,
    /// HQ's listen address (port 0: any free port).
    pub hq_addr: SocketAddr,
    /// Listen addresses of the monolith, iridium and magnesite.
    pub monolith_addr: SocketAddr,
    /// Iridium's listen address.
    pub iridium_addr: SocketAddr,
    /// Magnesite's listen address.
    pub magnesite_addr: SocketAddr,
    /// Orders per second per topic; empty = nothing generated.
    pub rates: BTreeMap<Topic, f64>,
    /// Largest quantity in a generated order.
    pub max_quantity: u32,
    /// How the feed retries.
    pub feed: FeedConfig,
    /// Simulated work per gathered resource in the services.
    pub gather_delay: Duration,
}

impl LaunchConfig {
    /// A config for `stage` in `data_dir`, every port free, nothing generated,
    /// and the demo retry policy: failed deliveries retried with exponential
    /// backoff for about three minutes, so a service restarted in that time
    /// loses nothing.
    pub fn new(stage: Stage, data_dir: impl Into<PathBuf>) -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            stage,
            data_dir: data_dir.into(),
            hq_addr: any,
            monolith_addr: any,
            iridium_addr: any,
            magnesite_addr: any,
            rates: BTreeMap::new(),
            max_quantity: 5,
            feed: FeedConfig {
                retry: demo_retry_policy(),
                ..FeedConfig::default()
            },
            gather_delay: Duration::ZERO,
        }
    }
}

/// The launcher's retry policy: 14 retries, 1 s doubling to 20 s (about 3½ minutes).
pub fn demo_retry_policy() -> RetryPolicy {
    RetryPolicy {
        num_retries: 14,
        min_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(20),
        backoff: Backoff::Exponential,
    }
}

/// Why the platform could not start.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// HQ failed to start.
    #[error("HQ: {0}")]
    Hq(#[from] hq::StartError),
    /// A URL could not be made.
    #[error("URL: {0}")]
    Url(#[from] url::ParseError),
    /// Subscribing failed.
    #[error("subscribing: {0}")]
    Feed(#[from] hq::feed::FeedError),
    /// A subscription was not confirmed in time.
    #[error("{0} did not confirm its subscription within {1:?}")]
    NotConfirmed(String, Duration),
    /// A service failed.
    #[error("{0}: {1}")]
    Service(&'static str, String),
}

/// One of the services, running in this process.
pub struct Service {
    name: &'static str,
    addr: SocketAddr,
    start: StartFn,
    running: Option<(CancellationToken, JoinHandle<anyhow::Result<()>>)>,
}

type StartFn =
    std::sync::Arc<dyn Fn(TcpListener, CancellationToken) -> JoinHandle<anyhow::Result<()>> + Send + Sync>;

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("name", &self.name)
            .field("addr", &self.addr)
            .field("running", &self.running.is_some())
            .finish_non_exhaustive()
    }
}

impl Service {
    async fn launch(name: &'static str, addr: SocketAddr, start: StartFn) -> Result<Self, LaunchError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| LaunchError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| LaunchError::Bind { addr, source })?;
        let mut service = Self {
            name,
            addr,
            start,
            running: None,
        };
        service.run_on(listener);
        Ok(service)
    }

    fn run_on(&mut self, listener: TcpListener) {
        let stop = CancellationToken::new();
        let task = (self.start)(listener, stop.clone());
        self.running = Some((stop, task));
    }

    /// The service's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Is it running?
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Stops it gracefully (in-flight requests finish); its port then refuses.
    pub async fn stop(&mut self) -> Result<(), LaunchError> {
        if let Some((stop, task)) = self.running.take() {
            stop.cancel();
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => return Err(LaunchError::Service(self.name, error.to_string())),
                Err(error) => return Err(LaunchError::Service(self.name, error.to_string())),
            }
        }
        Ok(())
    }

    /// Starts it again on the same address.
    pub async fn restart(&mut self) -> Result<(), LaunchError> {
        self.stop().await?;
        let listener = TcpListener::bind(self.addr)
            .await
            .map_err(|source| LaunchError::Bind {
                addr: self.addr,
                source,
            })?;
        self.run_on(listener);
        Ok(())
    }
}

/// The whole platform, running.
#[derive(Debug)]
pub struct Platform {
    hq: RunningHq,
    /// The monolith.
    pub monolith: Service,
    /// The iridium microservice.
    pub iridium: Service,
    /// The magnesite microservice.
    pub magnesite: Service,
    stage: Stage,
    generator: GeneratorConfig,
}

/// How long services get to confirm their subscriptions at start.
const CONFIRM_DEADLINE: Duration = Duration::from_secs(20);

/// Starts HQ and the services, subscribes them and waits for every
/// subscription to be confirmed. Nothing is generated until [`Platform::feed`].
pub async fn launch(config: LaunchConfig) -> Result<Platform, LaunchError> {
    let api_key = hq::keys::generate();
    let mut hq_config = HqConfig::new(&config.data_dir);
    hq_config.api_keys = vec![api_key.clone()];
    hq_config.feed = config.feed;
    let listener = TcpListener::bind(config.hq_addr)
        .await
        .map_err(|source| LaunchError::Bind {
            addr: config.hq_addr,
            source,
        })?;
    let running_hq = hq::start(listener, hq_config).await?;
    let hq = running_hq.hq().clone();

    let trust = |topic: Topic| TrustConfig {
        verify_signatures: true,
        // Direct orders too, so the workshop's curl works against each service.
        accept_unsigned_orders: true,
        topic_arns: vec![topic.arn()],
        sns_stand_in: Some(hq.base_url().clone()),
    };

    // One glue hook secret per run, shared by the monolith and the microservices.
    let hook_secret = HookSecret::new(hex::encode(rand::random::<[u8; 32]>()));
    let mut monolith_config = MonolithConfig::new(
        FulfillmentApi {
            endpoint: hq.fulfillment_url(),
            api_key: api_key.clone(),
        },
        hook_secret.clone(),
    );
    monolith_config.strangled = config.stage.strangled();
    monolith_config.gather_delay = config.gather_delay;
    monolith_config.trust = trust(Topic::Orders);
    let monolith = Service::launch(
        "monolith",
        config.monolith_addr,
        std::sync::Arc::new(move |listener, stop: CancellationToken| {
            tokio::spawn(monolith::run(
                listener,
                monolith_config.clone(),
                stop.cancelled_owned(),
            ))
        }),
    )
    .await?;

    let glue_hook = resource::config::glue_hook_url(&monolith.url("/"))?;
    let resource_service = |resource: Resource, topic: Topic, addr: SocketAddr| {
        let mut config_for = ResourceConfig::new(resource, glue_hook.clone(), hook_secret.clone());
        config_for.gather_delay = config.gather_delay;
        config_for.trust = trust(topic);
        Service::launch(
            resource.as_str(),
            addr,
            std::sync::Arc::new(move |listener, stop: CancellationToken| {
                tokio::spawn(resource::run(
                    listener,
                    config_for.clone(),
                    stop.cancelled_owned(),
                ))
            }),
        )
    };
    let iridium = resource_service(Resource::Iridium, Topic::Iridium, config.iridium_addr).await?;
    let magnesite = resource_service(Resource::Magnesite, Topic::Magnesite, config.magnesite_addr).await?;

    let wiring = [
        (Topic::Orders, monolith.url("/order/")),
        (Topic::Iridium, iridium.url("/iridium/")),
        (Topic::Magnesite, magnesite.url("/magnesite/")),
    ];
    for (topic, endpoint) in &wiring {
        hq.feed().subscribe(*topic, endpoint)?;
    }
    let give_up = tokio::time::Instant::now() + CONFIRM_DEADLINE;
    loop {
        let subscriptions = hq.feed().subscriptions();
        let pending: Vec<_> = subscriptions
            .iter()
            .filter(|s| s.state != SubscriptionState::Confirmed)
            .collect();
        match pending.first() {
            None => break,
            Some(first) if tokio::time::Instant::now() >= give_up => {
                return Err(LaunchError::NotConfirmed(
                    first.endpoint.clone(),
                    CONFIRM_DEADLINE,
                ));
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }

    let generator = GeneratorConfig {
        rates: config.rates.clone(),
        max_quantity: config.max_quantity,
    };
    Ok(Platform {
        hq: running_hq,
        monolith,
        iridium,
        magnesite,
        stage: config.stage,
        generator,
    })
}

impl Platform {
    /// HQ's state (feed, ledger, faults).
    pub fn hq(&self) -> &hq::Hq {
        self.hq.hq()
    }

    /// Where HQ listens.
    pub fn hq_addr(&self) -> SocketAddr {
        self.hq.addr()
    }

    /// HQ's base URL (the services' `AWS_ENDPOINT_URL_SNS`).
    pub fn hq_url(&self) -> &Url {
        self.hq.hq().base_url()
    }

    /// The migration stage.
    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// Starts generating orders at the configured rates.
    pub async fn feed(&mut self) {
        let generator = self.generator.clone();
        self.hq.generate(&generator).await;
    }

    /// Stops generating, waits up to `drain` for deliveries and their
    /// retries to finish (the services still up), stops everything and
    /// returns the reconciliation.
    pub async fn shutdown(mut self, drain: Duration) -> Result<Reconciliation, LaunchError> {
        self.hq.stop_generator().await;
        if !self.hq.hq().feed().drain(drain).await {
            tracing::warn!(
                "{} deliveries still under way after {drain:?}",
                self.hq.hq().feed().in_flight()
            );
        }
        for service in [&mut self.iridium, &mut self.magnesite, &mut self.monolith] {
            service.stop().await?;
        }
        Ok(self.hq.shutdown(Duration::ZERO).await?)
    }
}
