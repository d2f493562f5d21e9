//! The launcher: the whole Interstella platform on one machine, on loopback.
//!
//! Starts HQ, the monolith and a microservice for every resource
//! ([`Resource::ALL`]: iridium and magnesite) in-process (each service's own
//! library), subscribes them to HQ's topics the way the workshop's final lab
//! wires them (`orders` → monolith `/order/`, `iridium` → `/iridium/`,
//! `magnesite` → `/magnesite/`), feeds orders, shows progress, and on
//! shutdown drains deliveries and reconciles orders against fulfillments.

pub mod cli;
pub mod console;
mod keys;
mod service;
pub mod status;

pub use service::{Part, Service};

use contracts::Resource;
use hq::admin::AdminToken;
use hq::feed::generator::GeneratorConfig;
use hq::feed::{Backoff, Feed, FeedConfig, RetryPolicy, Topic};
use hq::ledger::Reconciliation;
use hq::{HqConfig, RunningHq};
use monolith::MonolithConfig;
use monolith::api::FulfillmentApi;
use platform::route::RouteSettings;
use platform::{ApiKey, HookSecret, TrustConfig};
use resource::ResourceConfig;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tracing::Instrument as _;
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
            Self::Both => Resource::ALL.iter().copied().collect(),
        }
    }

    /// The key that switches the running platform to this stage at the
    /// launcher's terminal: the first letter of its name.
    pub fn key(self) -> char {
        match self {
            Self::Monolith => 'm',
            Self::Iridium => 'i',
            Self::Both => 'b',
        }
    }

    /// The stage `key` switches to (either case), if any.
    pub fn for_key(key: char) -> Option<Self> {
        let key = key.to_ascii_lowercase();
        <Self as clap::ValueEnum>::value_variants()
            .iter()
            .copied()
            .find(|stage| stage.key() == key)
    }

    /// The stage as `--stage` spells it.
    pub fn name(self) -> String {
        clap::ValueEnum::to_possible_value(&self)
            .map(|value| value.get_name().to_owned())
            .unwrap_or_default()
    }

    /// Topics with orders at this stage: bundles always, and each resource
    /// once its microservice has been carved out.
    pub fn fed_topics(self) -> Vec<Topic> {
        let carved_out = self.strangled().into_iter().map(Topic::of_resource);
        std::iter::once(Topic::Orders).chain(carved_out).collect()
    }

    /// The rates the launcher generates at this stage when none are given:
    /// [`DEFAULT_RATE`] on every topic it feeds.
    pub fn default_rates(self) -> BTreeMap<Topic, f64> {
        self.fed_topics()
            .into_iter()
            .map(|topic| (topic, DEFAULT_RATE))
            .collect()
    }
}

/// Orders a second on each topic a stage feeds, when no rates are given.
pub const DEFAULT_RATE: f64 = 0.5;

/// Everything the launcher needs.
#[derive(Debug, Clone)]
pub struct LaunchConfig {
    /// The migration stage.
    pub stage: Stage,
    /// HQ's data directory (ledger and signing key).
    pub data_dir: PathBuf,
    /// HQ's listen address (port 0: any free port).
    pub hq_addr: SocketAddr,
    /// The monolith's listen address.
    pub monolith_addr: SocketAddr,
    /// Each resource's microservice's listen address; one not named here
    /// listens on any free loopback port.
    pub microservice_addrs: BTreeMap<Resource, SocketAddr>,
    /// Orders per second per topic; empty = nothing generated.
    pub rates: BTreeMap<Topic, f64>,
    /// Whether `rates` are the stage's ([`Stage::default_rates`], none
    /// given): a stage switch then feeds the new stage's topics. Given
    /// rates are kept through a switch.
    pub rates_follow_stage: bool,
    /// Largest quantity in a generated order.
    pub max_quantity: u32,
    /// How the feed retries.
    pub feed: FeedConfig,
    /// Simulated work per gathered resource in the services.
    pub gather_delay: Duration,
    /// HQ's admin credential when given (`HQ_ADMIN_TOKEN`, as `hq` takes
    /// it); otherwise HQ's own, kept in the data directory.
    pub admin_token: Option<AdminToken>,
    /// Names HQ answers to besides `localhost` and IP addresses
    /// (`HQ_ALLOWED_HOSTS`, as `hq` takes it): none by default.
    pub hq_allowed_hosts: Vec<hq::hosts::AllowedHost>,
}

impl LaunchConfig {
    /// A config for `stage` in `data_dir`, every port free, nothing generated,
    /// and the demo retry policy: failed deliveries retried with exponential
    /// backoff for about 3½ minutes, so a service restarted in that time
    /// loses nothing.
    pub fn new(stage: Stage, data_dir: impl Into<PathBuf>) -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            stage,
            data_dir: data_dir.into(),
            hq_addr: any,
            monolith_addr: any,
            microservice_addrs: BTreeMap::new(),
            rates: BTreeMap::new(),
            rates_follow_stage: false,
            max_quantity: hq::cli::DEFAULT_MAX_QUANTITY,
            feed: FeedConfig {
                retry: demo_retry_policy(),
                ..FeedConfig::default()
            },
            gather_delay: Duration::ZERO,
            admin_token: None,
            hq_allowed_hosts: Vec::new(),
        }
    }
}

/// The launcher's retry policy: 14 retries, 1 s doubling to 20 s (about 3½ minutes).
fn demo_retry_policy() -> RetryPolicy {
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
    #[error("cannot listen on {addr} for {}: {source}; give it another port with {} (0: any free port)", part.name(), part.port_flag())]
    Bind {
        /// The part it was for.
        part: service::Part,
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
    Url(#[from] platform::settings::NotHttpUrl),
    /// Subscribing failed.
    #[error("subscribing: {0}")]
    Feed(#[from] hq::feed::FeedError),
    /// A subscription was not confirmed in time.
    #[error("{0} did not confirm its subscription within {1:?}")]
    NotConfirmed(String, Duration),
    /// A service failed.
    #[error("{0}: {1}")]
    Service(&'static str, String),
    /// Two parts were given the same port.
    #[error(
        "{} ({}) and {} ({}) are both given port {port}; give each its own (or 0 for any free port)",
        first.name(), first.port_flag(), second.name(), second.port_flag()
    )]
    SamePort {
        /// The port.
        port: u16,
        /// The first part given it.
        first: service::Part,
        /// The second.
        second: service::Part,
    },
}

impl LaunchConfig {
    /// Where each service listens, in the order they start: the monolith,
    /// then each resource's microservice (any free port for one not named).
    fn service_addrs(&self) -> impl Iterator<Item = (Part, SocketAddr)> + '_ {
        let microservices = Resource::ALL.iter().map(|&resource| {
            let addr = self.microservice_addrs.get(&resource).copied();
            (
                Part::Microservice(resource),
                addr.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0))),
            )
        });
        std::iter::once((Part::Monolith, self.monolith_addr)).chain(microservices)
    }

    /// Refuses two parts on one port (0, any free port, excepted): the
    /// second would only say "Address already in use", as if something
    /// else held it.
    fn check_ports(&self) -> Result<(), LaunchError> {
        let parts = std::iter::once((Part::Hq, self.hq_addr)).chain(self.service_addrs());
        let mut taken: BTreeMap<u16, Part> = BTreeMap::new();
        for (part, addr) in parts {
            let port = addr.port();
            if port == 0 {
                continue;
            }
            if let Some(first) = taken.insert(port, part) {
                return Err(LaunchError::SamePort {
                    port,
                    first,
                    second: part,
                });
            }
        }
        Ok(())
    }
}

/// `route`, checked ([`RouteSettings::checked`]), for the service `name`.
fn checked(name: &'static str, route: RouteSettings) -> Result<RouteSettings, LaunchError> {
    route
        .checked()
        .map_err(|error| LaunchError::Service(name, format!("{error} (--gather-delay-ms)")))
}

/// The whole platform, running.
#[derive(Debug)]
pub struct Platform {
    hq: RunningHq,
    /// The span HQ's work is done in, naming it on its lines as each
    /// service's span names the service.
    hq_span: tracing::Span,
    /// The monolith.
    pub monolith: Service,
    /// Every resource's microservice, one for each of [`Resource::ALL`].
    pub microservices: BTreeMap<Resource, Service>,
    stage: Stage,
    /// The monolith's settings, to deploy it again at a stage switch.
    monolith_config: MonolithConfig,
    generator: GeneratorConfig,
    /// See [`LaunchConfig::rates_follow_stage`].
    rates_follow_stage: bool,
    /// Whether [`Platform::feed`] has started the generator.
    feeding: bool,
}

/// How long services get to confirm their subscriptions at start.
const CONFIRM_DEADLINE: Duration = Duration::from_secs(20);
/// The first wait before an unconfirmed service is sent its
/// SubscriptionConfirmation again; each later wait doubles (up to HQ's
/// limit). The services are up by then: the first one normally confirms.
const CONFIRM_EVERY: Duration = Duration::from_millis(100);

/// Starts HQ and the services, subscribes them and waits for every
/// subscription to be confirmed. Nothing is generated until [`Platform::feed`].
pub async fn launch(config: LaunchConfig) -> Result<Platform, LaunchError> {
    config.check_ports()?;
    // Every port bound before HQ makes anything: a port taken stops the
    // launch before a data directory, a signing key or an API key is made.
    let hq_listener = service::listen(Part::Hq, config.hq_addr).await?;
    let mut listeners = Vec::new();
    for (part, addr) in config.service_addrs() {
        listeners.push((part, addr, service::listen(part, addr).await?));
    }
    let api_key = hq::keys::generate();
    let hq_span = platform::telemetry::service_span(Part::Hq.name());
    let running_hq = start_hq(&config, hq_listener, api_key.clone())
        .instrument(hq_span.clone())
        .await?;
    let services = start_services(&config, running_hq.hq(), api_key, listeners).await?;
    subscribe_and_confirm(running_hq.hq().feed(), &services)
        .instrument(hq_span.clone())
        .await?;
    let Services {
        monolith,
        monolith_config,
        microservices,
    } = services;
    Ok(Platform {
        hq: running_hq,
        hq_span,
        monolith,
        microservices,
        stage: config.stage,
        monolith_config,
        generator: GeneratorConfig {
            rates: config.rates,
            max_quantity: config.max_quantity,
            ..GeneratorConfig::default()
        },
        rates_follow_stage: config.rates_follow_stage,
        feeding: false,
    })
}

/// Phase 1: HQ on `listener`, accepting `api_key`, its generator idle.
async fn start_hq(
    config: &LaunchConfig,
    listener: tokio::net::TcpListener,
    api_key: ApiKey,
) -> Result<RunningHq, LaunchError> {
    let mut hq_config = HqConfig::new(&config.data_dir);
    hq_config.api_keys = vec![api_key];
    // Each run issues a key: named for the run, so that HQ's totals tell
    // one run's from another's.
    hq_config.api_keys_owner = format!(
        "the launcher, --stage {}, {}",
        config.stage.name(),
        hq::ledger::now()
    );
    hq_config.feed = config.feed;
    hq_config.admin_token = config.admin_token.clone();
    hq_config.allowed_hosts = config.hq_allowed_hosts.clone();
    Ok(hq::start(listener, hq_config).await?)
}

/// The services, before they are subscribed.
struct Services {
    monolith: Service,
    /// The settings `monolith` runs with.
    monolith_config: MonolithConfig,
    microservices: BTreeMap<Resource, Service>,
}

/// Phase 2: the monolith, calling HQ's fulfillment API with `api_key`, then
/// every resource's microservice, calling the monolith's glue hook, each
/// on its listener in `listeners` (bound for it, at its address).
async fn start_services(
    config: &LaunchConfig,
    hq: &hq::Hq,
    api_key: ApiKey,
    mut listeners: Vec<(Part, SocketAddr, tokio::net::TcpListener)>,
) -> Result<Services, LaunchError> {
    let mut next_listener = |part: Part| {
        let at = listeners
            .iter()
            .position(|(bound_for, ..)| *bound_for == part)
            .ok_or(LaunchError::Service(
                part.name(),
                "no port bound for it".to_owned(),
            ))?;
        let (_, addr, listener) = listeners.swap_remove(at);
        Ok::<_, LaunchError>((addr, listener))
    };
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
            endpoint: hq.fulfillment_url().into(),
            api_key,
        },
        hook_secret.clone(),
    );
    monolith_config.strangled = config.stage.strangled();
    monolith_config.route.gather_delay = config.gather_delay;
    monolith_config.route.trust = trust(Topic::Orders);
    // A gather the request timeout cannot outlast would have every order
    // refused (503) for want of time: refused here instead, in one line.
    monolith_config.route = checked("monolith", monolith_config.route)?;
    let monolith = Service::launch(
        Part::Monolith,
        next_listener(Part::Monolith)?,
        monolith_config.clone(),
        monolith::run,
    )
    .await?;

    let glue_hook = resource::config::glue_hook_url(&monolith.url("/"))?;
    let mut microservices = BTreeMap::new();
    for &resource in Resource::ALL {
        let mut resource_config = ResourceConfig::new(resource, glue_hook.clone(), hook_secret.clone());
        resource_config.route.gather_delay = config.gather_delay;
        resource_config.route.trust = trust(Topic::of_resource(resource));
        resource_config.route = checked(resource.as_str(), resource_config.route)?;
        let part = Part::Microservice(resource);
        let service = Service::launch(part, next_listener(part)?, resource_config, resource::run).await?;
        microservices.insert(resource, service);
    }
    Ok(Services {
        monolith,
        monolith_config,
        microservices,
    })
}

/// Phase 3: wires the topics as the workshop's final lab does and waits
/// until every service has confirmed its subscription.
async fn subscribe_and_confirm(feed: &Feed, services: &Services) -> Result<(), LaunchError> {
    let microservices = services.microservices.iter().map(|(&resource, service)| {
        (
            Topic::of_resource(resource),
            service.url(&contracts::paths::resource(resource)),
        )
    });
    let wiring: Vec<(Topic, String)> =
        std::iter::once((Topic::Orders, services.monolith.url(contracts::paths::ORDER)))
            .chain(microservices)
            .collect();
    let give_up = tokio::time::Instant::now() + CONFIRM_DEADLINE;
    for (topic, endpoint) in &wiring {
        let subscriber = hq::feed::Endpoint::parse(endpoint)?;
        tokio::time::timeout_at(
            give_up,
            feed.subscribe_until_confirmed(*topic, subscriber, CONFIRM_EVERY),
        )
        .await
        .map_err(|_| LaunchError::NotConfirmed(endpoint.clone(), CONFIRM_DEADLINE))??;
    }
    Ok(())
}

impl Platform {
    /// `resource`'s microservice (every resource has one).
    pub fn microservice(&mut self, resource: Resource) -> Result<&mut Service, LaunchError> {
        self.microservices.get_mut(&resource).ok_or(LaunchError::Service(
            resource.as_str(),
            "not running here".to_owned(),
        ))
    }

    /// HQ's state (feed, ledger, faults).
    pub fn hq(&self) -> &hq::Hq {
        self.hq.hq()
    }

    /// HQ's base URL (the services' `AWS_ENDPOINT_URL_SNS`).
    pub fn hq_url(&self) -> &Url {
        self.hq.hq().base_url()
    }

    /// The migration stage.
    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// Orders a second per topic generated, once [`Platform::feed`]ing.
    pub fn rates(&self) -> &BTreeMap<Topic, f64> {
        &self.generator.rates
    }

    /// Whether the rates are the stage's and follow a switch (see
    /// [`LaunchConfig::rates_follow_stage`]).
    pub fn rates_follow_stage(&self) -> bool {
        self.rates_follow_stage
    }

    /// Starts generating orders at the configured rates.
    pub async fn feed(&mut self) {
        let generator = self.generator.clone();
        let hq_span = self.hq_span.clone();
        self.hq.generate(&generator).instrument(hq_span).await;
        self.feeding = true;
    }

    /// Whether the platform is at `stage`, its monolith running: a switch
    /// that failed midway (see [`Platform::switch_stage`]) is not there yet.
    pub fn is_at(&self, stage: Stage) -> bool {
        self.stage == stage && self.monolith.is_running()
    }

    /// Moves the running platform to `stage`, as the workshop's labs move
    /// theirs on ECS, while HQ, its ledger and its subscriptions carry on:
    /// the monolith is deployed again with the stage's strangled set (the
    /// new one takes connections on its port, on the same socket, before the
    /// old one drains, as an ECS deployment starts the new task first), and,
    /// where the rates are the stage's, the generator feeds the topics the
    /// stage carves out. A switch that fails leaves the stage as it was;
    /// asked again, even for the stage it was at, it tries again.
    pub async fn switch_stage(&mut self, stage: Stage) -> Result<(), LaunchError> {
        if self.is_at(stage) {
            return Ok(());
        }
        let mut monolith_config = self.monolith_config.clone();
        monolith_config.strangled = stage.strangled();
        let config = monolith_config.clone();
        self.monolith
            .replace_with(|bound| Service::launch(Part::Monolith, bound, config, monolith::run))
            .await?;
        self.monolith_config = monolith_config;
        self.stage = stage;
        if self.rates_follow_stage {
            self.generator.rates = stage.default_rates();
            if self.feeding {
                self.feed().await;
            }
        }
        Ok(())
    }

    /// Stops generating and publishing, waits up to `drain` for publishes
    /// and deliveries under way and their retries to finish (the services
    /// still up), stops everything and returns the reconciliation.
    pub async fn shutdown(mut self, drain: Duration) -> Result<Reconciliation, LaunchError> {
        self.hq.stop_generator().await;
        self.hq.hq().feed().stop_publishing();
        if !self.hq.hq().feed().drain(drain).await {
            tracing::warn!(
                "{} deliveries still under way after {drain:?}",
                self.hq.hq().feed().in_flight()
            );
        }
        // A service that stopped with an error is reported, and the
        // reconciliation still made: it is what says whether orders were lost.
        for service in self.microservices.values_mut().chain([&mut self.monolith]) {
            if let Err(error) = service.stop().await {
                tracing::warn!("{error}");
            }
        }
        Ok(self.hq.shutdown(Duration::ZERO).instrument(self.hq_span).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_parts_on_one_port_are_refused_naming_both() {
        let at = |port| SocketAddr::from(([127, 0, 0, 1], port));
        let mut config = LaunchConfig::new(Stage::Both, "unused");
        assert!(config.check_ports().is_ok(), "any free port, for every part");
        config.monolith_addr = at(5400);
        config.microservice_addrs.insert(Resource::Iridium, at(5401));
        assert!(config.check_ports().is_ok());
        config.microservice_addrs.insert(Resource::Magnesite, at(5400));
        assert_eq!(
            config.check_ports().map_err(|e| e.to_string()),
            Err("monolith (--monolith-port) and magnesite (--microservice-port magnesite=<port>) are both given port 5400; give each its own (or 0 for any free port)".to_owned())
        );
    }

    #[test]
    fn each_stage_has_the_first_letter_of_its_name_for_key() {
        for &stage in <Stage as clap::ValueEnum>::value_variants() {
            assert!(stage.name().starts_with(stage.key()), "{stage:?}");
            assert_eq!(Stage::for_key(stage.key()), Some(stage));
            assert_eq!(Stage::for_key(stage.key().to_ascii_uppercase()), Some(stage));
        }
        assert_eq!(Stage::for_key('x'), None);
    }

    #[test]
    fn each_stage_feeds_bundles_and_the_topics_of_what_it_carved_out() {
        assert_eq!(Stage::Monolith.fed_topics(), [Topic::Orders]);
        assert_eq!(Stage::Iridium.fed_topics(), [Topic::Orders, Topic::Iridium]);
        assert_eq!(Stage::Both.fed_topics(), Topic::ALL);
    }
}
