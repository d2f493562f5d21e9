//! Interstella HQ on one machine: the parts of the workshop that only ever
//! ran in AWS, so the platform runs with no AWS account.
//!
//! - the fulfillment API (`POST /receiving/`, API Gateway + DynamoDB in the
//!   workshop) recording into an SQLite [`ledger`], with idempotency keys;
//! - the key portal ([`keys`]);
//! - an SNS-compatible order [`feed`] with three topics, signed deliveries
//!   ([`signing`]) retried like SNS, and the order generator.
//!
//! [`start`] runs it on a listener (tests and the launcher, in-process);
//! [`run`] is the whole `hq` binary after argument parsing.

pub mod api;
pub mod cli;
pub mod faults;
pub mod feed;
pub mod keys;
pub mod ledger;
pub mod signing;
pub mod sns_signer;

use crate::feed::generator::{Generator, GeneratorConfig};
use crate::feed::{Feed, FeedConfig, Topic};
use crate::ledger::{Ledger, LedgerError, Reconciliation};
use crate::signing::{SigningError, SigningIdentity};
use platform::ApiKey;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use url::Url;

/// Everything HQ needs to run.
#[derive(Debug, Clone)]
pub struct HqConfig {
    /// Directory of the ledger database and the signing key; created if missing.
    pub data_dir: PathBuf,
    /// Keys accepted from the start, besides those the portal issues.
    pub api_keys: Vec<ApiKey>,
    /// The URL services reach HQ at; default `http://<listen address>`.
    pub public_url: Option<Url>,
    /// How the feed delivers.
    pub feed: FeedConfig,
    /// What the generator publishes (nothing by default).
    pub generator: GeneratorConfig,
    /// Endpoints to subscribe once HQ listens; each is sent its
    /// SubscriptionConfirmation again until it confirms (none by default).
    pub subscriptions: Vec<(Topic, Url)>,
    /// How often an unconfirmed start-up subscription is sent its confirmation again.
    pub subscribe_every: Duration,
}

impl HqConfig {
    /// A configuration with defaults for everything but the data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            api_keys: Vec::new(),
            public_url: None,
            feed: FeedConfig::default(),
            generator: GeneratorConfig::default(),
            subscriptions: Vec::new(),
            subscribe_every: DEFAULT_SUBSCRIBE_EVERY,
        }
    }
}

/// How often an unconfirmed start-up subscription is sent its confirmation
/// again, unless configured otherwise.
pub const DEFAULT_SUBSCRIBE_EVERY: Duration = Duration::from_secs(1);

/// Why HQ could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory or the listener failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The signing identity could not be loaded or made.
    #[error(transparent)]
    Signing(#[from] SigningError),
    /// The ledger could not be opened.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The feed could not be made.
    #[error(transparent)]
    Feed(#[from] crate::feed::FeedStartError),
    /// HQ's URL could not be made.
    #[error("HQ URL: {0}")]
    Url(#[from] url::ParseError),
    /// A background task died.
    #[error("start-up task failed: {0}")]
    Task(String),
}

/// HQ's state: ledger, feed and signing identity. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Hq {
    inner: Arc<HqInner>,
}

#[derive(Debug)]
struct HqInner {
    base_url: Url,
    identity: SigningIdentity,
    ledger: Ledger,
    feed: Feed,
    faults: faults::Faults,
}

impl Hq {
    /// Opens the data directory (making the signing key on first use) and
    /// registers the configured keys; `base_url` is where HQ is reached.
    pub async fn open(config: &HqConfig, base_url: Url) -> Result<Self, StartError> {
        let dir = config.data_dir.clone();
        std::fs::create_dir_all(&dir).map_err(|source| StartError::Io {
            what: format!("creating data directory {}", dir.display()),
            source,
        })?;
        let identity = tokio::task::spawn_blocking({
            let dir = dir.clone();
            move || SigningIdentity::load_or_create(&dir)
        })
        .await
        .map_err(|e| StartError::Task(e.to_string()))??;
        let ledger = Ledger::open(&dir)?;
        for key in &config.api_keys {
            ledger.add_key(key.expose(), "given at start").await?;
        }
        let run_id = uuid::Uuid::new_v4().to_string();
        let feed = Feed::new(
            base_url.clone(),
            run_id,
            identity.clone(),
            ledger.clone(),
            config.feed,
        )?;
        Ok(Self {
            inner: Arc::new(HqInner {
                base_url,
                identity,
                ledger,
                feed,
                faults: faults::Faults::default(),
            }),
        })
    }

    /// Where HQ is reached; services use it as `AWS_ENDPOINT_URL_SNS`.
    pub fn base_url(&self) -> &Url {
        &self.inner.base_url
    }

    /// The fulfillment API's URL: `<base>/receiving/`.
    pub fn fulfillment_url(&self) -> Url {
        let mut url = self.inner.base_url.clone();
        url.set_path("/receiving/");
        url
    }

    /// The ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.inner.ledger
    }

    /// The order feed.
    pub fn feed(&self) -> &Feed {
        &self.inner.feed
    }

    /// Faults to inject into the fulfillment API.
    pub fn faults(&self) -> &faults::Faults {
        &self.inner.faults
    }

    /// The signing identity.
    pub fn identity(&self) -> &SigningIdentity {
        &self.inner.identity
    }

    /// This run's orders against the ledger.
    pub async fn reconcile(&self) -> Result<Reconciliation, LedgerError> {
        self.inner.ledger.reconcile(self.inner.feed.run_id()).await
    }
}

/// HQ serving on a listener, with its generator.
#[derive(Debug)]
pub struct RunningHq {
    hq: Hq,
    addr: SocketAddr,
    stop: CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
    generator: Option<Generator>,
    subscribers: Vec<JoinHandle<()>>,
}

/// The URL a listener is reached at: an unspecified address becomes loopback.
pub fn local_url(addr: SocketAddr) -> Result<Url, url::ParseError> {
    let ip = if addr.ip().is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        addr.ip()
    };
    Url::parse(&format!("http://{}/", SocketAddr::new(ip, addr.port())))
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
    let server = tokio::spawn(platform::serve(
        listener,
        api::router(hq.clone()),
        stop.clone().cancelled_owned(),
    ));
    let generator = Some(Generator::start(hq.feed(), &config.generator));
    let subscribers = config
        .subscriptions
        .iter()
        .map(|(topic, endpoint)| {
            let (feed, topic, endpoint) = (hq.feed().clone(), *topic, endpoint.to_string());
            let every = config.subscribe_every;
            tokio::spawn(async move {
                match feed.subscribe_until_confirmed(topic, &endpoint, every).await {
                    Ok(_) => {}
                    Err(error) => {
                        tracing::error!(%topic, %endpoint, %error, "start-up subscription abandoned");
                    }
                }
            })
        })
        .collect();
    Ok(RunningHq {
        hq,
        addr,
        stop,
        server,
        generator,
        subscribers,
    })
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

    /// Starts (or restarts) the generator with `config`.
    pub async fn generate(&mut self, config: &GeneratorConfig) {
        if let Some(generator) = self.generator.take() {
            generator.stop().await;
        }
        self.generator = Some(Generator::start(self.hq.feed(), config));
    }

    /// Stops generating orders; deliveries under way go on.
    pub async fn stop_generator(&mut self) {
        if let Some(generator) = self.generator.take() {
            generator.stop().await;
        }
    }

    /// Stops generating, lets deliveries and their retries finish for up to
    /// `drain`, reconciles, then stops serving.
    pub async fn shutdown(mut self, drain: Duration) -> Result<Reconciliation, StartError> {
        for subscriber in self.subscribers.drain(..) {
            subscriber.abort();
        }
        self.stop_generator().await;
        if !self.hq.feed().drain(drain).await {
            tracing::warn!(
                in_flight = self.hq.feed().in_flight(),
                "deliveries still under way after {drain:?}; reconciling without them"
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
        Ok(reconciliation?)
    }
}

/// Runs HQ on `listener` until `shutdown` resolves, then drains deliveries
/// for up to `drain` and logs the reconciliation.
pub async fn run(
    listener: TcpListener,
    config: HqConfig,
    drain: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Reconciliation> {
    let running = start(listener, config).await?;
    tracing::info!(
        "HQ listening on {}: fulfillment API {}, SNS stand-in (AWS_ENDPOINT_URL_SNS) {}",
        running.addr(),
        running.hq().fulfillment_url(),
        running.hq().base_url()
    );
    shutdown.await;
    let reconciliation = running.shutdown(drain).await?;
    Ok(reconciliation)
}
