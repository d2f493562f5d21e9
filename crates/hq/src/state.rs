//! HQ's shared state, [`Hq`]: the ledger, the feed, the signing identity and
//! the faults to inject, opened from the data directory. Every handler and
//! background task holds a clone.

use crate::admin::{AdminToken, AdminTokenError};
use crate::config::HqConfig;
use crate::faults::Faults;
use crate::feed::{Feed, FeedStartError};
use crate::ledger::{Ledger, LedgerError, Reconciliation};
use crate::publisher::{PublishTo, Publisher, SnsStartError, check_topic_arns};
use crate::signing::{SigningError, SigningIdentity};
use std::os::unix::fs::DirBuilderExt as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use url::Url;

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
    /// The admin credential is malformed or could not be loaded or made.
    #[error(transparent)]
    Admin(#[from] AdminTokenError),
    /// The ledger could not be opened.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The feed could not be made.
    #[error(transparent)]
    Feed(#[from] FeedStartError),
    /// Publishing to SNS is not configured right.
    #[error(transparent)]
    Sns(#[from] SnsStartError),
    /// HQ's URL could not be made.
    #[error("HQ URL: {0}")]
    Url(#[from] url::ParseError),
    /// A background task died.
    #[error("start-up task failed: {0}")]
    Task(String),
}

/// HQ's state: ledger, feed, signing identity and admin credential. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Hq {
    inner: Arc<HqInner>,
}

#[derive(Debug)]
struct HqInner {
    base_url: Url,
    identity: SigningIdentity,
    admin_token: AdminToken,
    ledger: Ledger,
    feed: Feed,
    publisher: Publisher,
    faults: Faults,
    /// The last reconciliation [`Hq::recent_reconciliation`] made, when,
    /// and how long it took.
    recent: tokio::sync::Mutex<Option<RecentReconciliation>>,
    /// See [`Hq::previous_run`].
    previous_run: Option<String>,
}

impl Hq {
    /// Opens the data directory (making the signing key and the admin
    /// credential on first use) and registers the configured keys;
    /// `base_url` is where HQ is reached.
    pub async fn open(config: &HqConfig, base_url: Url) -> Result<Self, StartError> {
        if config.publish_to == PublishTo::Aws {
            // Before anything is made on disk: a configuration error is told at once.
            check_topic_arns(&config.sns_topic_arns)?;
        }
        let dir = config.data_dir.clone();
        // Made for HQ alone: the ledger holds the API keys' digests (a weak
        // key given at start is easily guessed from its digest).
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|source| StartError::Io {
                what: format!("creating data directory {}", dir.display()),
                source,
            })?;
        // First: a second HQ on this directory is refused before it
        // touches anything in it.
        let ledger = Ledger::open(&dir, config.journal_mode)?;
        let identity = tokio::task::spawn_blocking({
            let dir = dir.clone();
            move || SigningIdentity::load_or_create(&dir)
        })
        .await
        .map_err(|e| StartError::Task(e.to_string()))??;
        let admin_token = match &config.admin_token {
            Some(given) => given.clone(),
            None => AdminToken::load_or_create(&dir)?,
        };
        for key in &config.api_keys {
            let info = ledger.add_key(key.expose(), &config.api_keys_owner).await?;
            if let Some(revoked_at) = info.revoked_at {
                // Revoking is for good: a key given again is still refused.
                tracing::warn!(
                    key_id = %info.key_id,
                    %revoked_at,
                    "an HQ_API_KEYS key was revoked and stays refused: give its callers a new key"
                );
            }
        }
        // Read before this run publishes anything. On SNS none: SNS, not HQ,
        // retries what a stopped HQ published, across HQ's restarts.
        let previous_run = match config.publish_to {
            PublishTo::Local => ledger.last_run().await.unwrap_or_else(|error| {
                tracing::warn!(%error, "cannot find the last run that published");
                None
            }),
            PublishTo::Aws => None,
        };
        let run_id = uuid::Uuid::new_v4().to_string();
        let feed = Feed::new(
            base_url.clone(),
            run_id,
            identity.clone(),
            ledger.clone(),
            config.feed,
        )?;
        let publisher = match config.publish_to {
            PublishTo::Local => Publisher::Local(feed.clone()),
            PublishTo::Aws => {
                Publisher::sns(
                    config.sns_topic_arns.clone(),
                    ledger.clone(),
                    feed.run_id().to_owned(),
                )
                .await?
            }
        };
        Ok(Self {
            inner: Arc::new(HqInner {
                base_url,
                identity,
                admin_token,
                ledger,
                feed,
                publisher,
                faults: Faults::default(),
                recent: tokio::sync::Mutex::new(None),
                previous_run,
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
        url.set_path(contracts::paths::RECEIVING);
        url
    }

    /// The ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.inner.ledger
    }

    /// HQ's own SNS-compatible feed (its links and certificate are served
    /// whatever the publisher).
    pub fn feed(&self) -> &Feed {
        &self.inner.feed
    }

    /// Where orders are published: the feed, or AWS SNS.
    pub fn publisher(&self) -> &Publisher {
        &self.inner.publisher
    }

    /// Faults to inject into the fulfillment API.
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    /// The signing identity.
    pub fn identity(&self) -> &SigningIdentity {
        &self.inner.identity
    }

    /// The admin credential that HQ's protected routes require.
    pub fn admin_token(&self) -> &AdminToken {
        &self.inner.admin_token
    }

    /// The run that published last before this one, on HQ's own feed: its
    /// deliveries under retry ended with it (reported at start by `hq::start`).
    pub fn previous_run(&self) -> Option<&str> {
        self.inner.previous_run.as_deref()
    }

    /// This run's orders against the ledger, now.
    pub async fn reconcile(&self) -> Result<Reconciliation, LedgerError> {
        self.inner.ledger.reconcile(self.inner.feed.run_id()).await
    }

    /// [`Hq::reconcile`] as of a moment ago: what `GET /reconciliation` and
    /// the launcher's status line show. The query reads the whole run, and
    /// the route is open: however many poll it, it runs once at a time, and
    /// its answer is reused for [`RECONCILIATION_REUSE`] or, on a run whose
    /// query takes longer, [`REUSE_PER_QUERY_TIME`] times the query's time.
    /// So pollers keep the ledger busy a fifth of the time at most: on the
    /// rollback journal (EFS) the query shares the one connection with the
    /// fulfillments, which a query reused for a mere second delayed.
    pub async fn recent_reconciliation(&self) -> Result<Reconciliation, LedgerError> {
        let mut recent = self.inner.recent.lock().await;
        if let Some(recent) = recent.as_ref()
            && recent.at.elapsed() < reused_for(recent.took)
        {
            return Ok(recent.reconciliation.clone());
        }
        let started = Instant::now();
        let reconciliation = self.reconcile().await?;
        *recent = Some(RecentReconciliation {
            at: Instant::now(),
            took: started.elapsed(),
            reconciliation: reconciliation.clone(),
        });
        Ok(reconciliation)
    }
}

/// A reconciliation shown again instead of a new one.
#[derive(Debug)]
struct RecentReconciliation {
    /// When it was made.
    at: Instant,
    /// How long its query took.
    took: Duration,
    /// What it found.
    reconciliation: Reconciliation,
}

/// How long a reconciliation whose query took `took` is shown again.
fn reused_for(took: Duration) -> Duration {
    RECONCILIATION_REUSE.max(took * REUSE_PER_QUERY_TIME)
}

/// How long a reconciliation is shown again instead of a new one, at least.
pub const RECONCILIATION_REUSE: Duration = Duration::from_secs(1);

/// A reconciliation is reused for this many times its query's time, when
/// that is longer than [`RECONCILIATION_REUSE`].
pub const REUSE_PER_QUERY_TIME: u32 = 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_reconciliation_is_reused_longer() {
        assert_eq!(reused_for(Duration::from_millis(5)), RECONCILIATION_REUSE);
        // 0.6 s a query: polled without end, the ledger busy a fifth of the time.
        assert_eq!(
            reused_for(Duration::from_millis(600)),
            Duration::from_millis(2400)
        );
    }
}
