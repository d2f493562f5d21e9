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
use std::collections::HashMap;
use std::os::unix::fs::DirBuilderExt as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument as _;
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
    /// The data directory could not be made (a file stands there, a
    /// directory HQ may not write in).
    #[error(
        "cannot make the data directory {}: {source}; give --data-dir a directory HQ may write in",
        .dir.display()
    )]
    DataDir {
        /// The data directory.
        dir: std::path::PathBuf,
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
    /// The names HQ answers to.
    host_names: crate::hosts::HostNames,
    identity: SigningIdentity,
    admin_token: AdminToken,
    ledger: Ledger,
    feed: Feed,
    publisher: Publisher,
    faults: Faults,
    /// The last reconciliation [`Hq::recent_reconciliation`] made.
    recent: Reused<Reconciliation>,
    /// What the dashboard last read from the ledger, for each view.
    dashboards: [Reused<crate::dashboard::LedgerFigures>; 2],
    /// See [`Hq::previous_run`].
    previous_run: Option<String>,
    /// When each client's poll of each polled path last wrote its access
    /// line (see [`Hq::polled`]).
    polls_logged: std::sync::Mutex<HashMap<(String, &'static str), Instant>>,
}

/// How often a page's poll, answered, writes its access line for one client:
/// once at first, then once in this long, rather than every 1–2 s, so that
/// an open page does not bury the orders' lines while whoever reads with
/// the admin credential, and from where, still shows.
const POLL_LOGGED_EVERY: Duration = Duration::from_secs(600);

/// Clients' polls remembered at most (without a balancer in front, the
/// client is the caller's own text); past it, those older than
/// [`POLL_LOGGED_EVERY`] are forgotten, or else all.
const POLL_CLIENTS_REMEMBERED: usize = 1024;

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
            .map_err(|source| StartError::DataDir {
                dir: dir.clone(),
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
                host_names: crate::hosts::HostNames::new(&base_url, &config.allowed_hosts),
                base_url,
                identity,
                admin_token,
                ledger,
                feed,
                publisher,
                faults: Faults::default(),
                recent: Reused::default(),
                dashboards: Default::default(),
                previous_run,
                polls_logged: std::sync::Mutex::default(),
            }),
        })
    }

    /// Where HQ is reached; services use it as `AWS_ENDPOINT_URL_SNS`.
    pub fn base_url(&self) -> &Url {
        &self.inner.base_url
    }

    /// The names HQ answers to (its public URL's host among them).
    pub fn host_names(&self) -> &crate::hosts::HostNames {
        &self.inner.host_names
    }

    /// The fulfillment API's URL: `<base>/receiving/`.
    pub fn fulfillment_url(&self) -> Url {
        crate::feed::under_base_url(&self.inner.base_url, contracts::paths::RECEIVING)
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

    /// `response`, a page's poll of `path` answered, marked to write no
    /// access line ([`platform::server::Unlogged`]) unless this client's
    /// poll of it wrote none in the last ten minutes. The client is the last
    /// `X-Forwarded-For` entry, as the load balancer saw it: a credential
    /// used from somewhere new still shows, and where from, at once.
    pub fn polled(
        &self,
        headers: &axum::http::HeaderMap,
        path: &'static str,
        mut response: axum::response::Response,
    ) -> axum::response::Response {
        let client: String = platform::telemetry::forwarded_client(headers)
            .map(|client| client.trim().chars().take(64).collect())
            .unwrap_or_default();
        let now = Instant::now();
        let due = match self.inner.polls_logged.lock() {
            Ok(mut logged) => {
                let key = (client, path);
                let due = logged
                    .get(&key)
                    .is_none_or(|at| now.duration_since(*at) >= POLL_LOGGED_EVERY);
                if due {
                    if logged.len() >= POLL_CLIENTS_REMEMBERED {
                        logged.retain(|_, at| now.duration_since(*at) < POLL_LOGGED_EVERY);
                    }
                    if logged.len() >= POLL_CLIENTS_REMEMBERED {
                        logged.clear();
                    }
                    logged.insert(key, now);
                }
                due
            }
            // Poisoned: a line too many is better than one too few.
            Err(_) => true,
        };
        if !due {
            response.extensions_mut().insert(platform::server::Unlogged);
        }
        response
    }

    /// This run's orders against the ledger, now.
    pub async fn reconcile(&self) -> Result<Reconciliation, LedgerError> {
        self.inner.ledger.reconcile(self.inner.feed.run_id()).await
    }

    /// [`Hq::reconcile`] as of a moment ago: what `GET /reconciliation` and
    /// the launcher's status line show. The query reads the whole run, and
    /// the route is open: however many poll it, it runs once at a time, and
    /// its answer is reused for [`RECONCILIATION_REUSE`] or, on a run whose
    /// query takes longer, [`REUSE_PER_QUERY_TIME`] times the query's time,
    /// also by the next caller when the one who asked gave up. So pollers
    /// keep the ledger busy a fifth of the time at most: on the rollback
    /// journal (EFS) the query shares the one connection with the
    /// fulfillments, which a query reused for a mere second delayed.
    pub async fn recent_reconciliation(&self) -> Result<Reconciliation, LedgerError> {
        let hq = self.clone();
        self.inner.recent.get(async move || hq.reconcile().await).await
    }

    /// What the dashboard's `view` reads from the ledger, as of a moment
    /// ago (see [`Reused`]): each poll read this run's orders of the view
    /// again, seconds of queries on a run of millions.
    pub(crate) async fn dashboard_figures(
        &self,
        view: crate::dashboard::View,
    ) -> Result<crate::dashboard::LedgerFigures, LedgerError> {
        let hq = self.clone();
        let reused = match view {
            crate::dashboard::View::Hour => &self.inner.dashboards[0],
            crate::dashboard::View::Day => &self.inner.dashboards[1],
        };
        reused
            .get(async move || crate::dashboard::ledger_figures(&hq, view).await)
            .await
    }
}

/// An answer that a query over the ledger makes, which the ledger's size
/// may make slow: made once at a time, and shown again for
/// [`RECONCILIATION_REUSE`] or, when it took longer, [`REUSE_PER_QUERY_TIME`]
/// times as long as it took. Made in a task of its own: a caller that gives
/// up (its request's time ran out) leaves the answer for the next, where
/// the query ran on unseen while the next caller started another behind it
/// (past the request timeout, no call was ever answered).
#[derive(Debug)]
pub(crate) struct Reused<T> {
    last: Arc<tokio::sync::Mutex<Option<Made<T>>>>,
}

impl<T> Default for Reused<T> {
    fn default() -> Self {
        Self {
            last: Arc::new(tokio::sync::Mutex::new(None)),
        }
    }
}

impl<T: Clone + Send + 'static> Reused<T> {
    /// The last answer while it is recent enough, or one `make` makes now.
    /// A call that waited while another made its answer takes that answer,
    /// a failure too: behind a query that failed slowly, each caller queued
    /// would run it again, those long gone included.
    pub(crate) async fn get<Making>(
        &self,
        make: impl FnOnce() -> Making + Send + 'static,
    ) -> Result<T, LedgerError>
    where
        Making: Future<Output = Result<T, LedgerError>> + Send + 'static,
    {
        let last = Arc::clone(&self.last);
        let asked = Instant::now();
        tokio::spawn(
            async move {
                let mut last = last.lock().await;
                if let Some(made) = last.as_ref() {
                    let made_while_waiting = made.at >= asked;
                    let recent = made.answer.is_ok() && made.at.elapsed() < reused_for(made.took);
                    if made_while_waiting || recent {
                        return made.answer.clone().map_err(LedgerError::Unavailable);
                    }
                }
                let started = Instant::now();
                let answer = make().await;
                *last = Some(Made {
                    at: Instant::now(),
                    took: started.elapsed(),
                    answer: answer.as_ref().map(T::clone).map_err(ToString::to_string),
                });
                answer
            }
            .in_current_span(),
        )
        .await
        .map_err(|error| LedgerError::Unavailable(error.to_string()))?
    }
}

/// An answer shown again instead of a new one, or a failure told to the
/// calls that waited for it.
#[derive(Debug)]
struct Made<T> {
    /// When it was made.
    at: Instant,
    /// How long its query took.
    took: Duration,
    /// The answer, or why there is none.
    answer: Result<T, String>,
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

    /// A caller that gives up (its request ran out of time) leaves the
    /// answer its call started for the next caller, who waits for it rather
    /// than starting another query behind it.
    #[tokio::test]
    async fn an_answer_a_caller_gave_up_on_is_the_next_callers() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let reused: Reused<u32> = Reused::default();
        let made = Arc::new(AtomicUsize::new(0));
        let slowly = |answer: u32| {
            let made = Arc::clone(&made);
            async move || {
                made.fetch_add(1, Ordering::SeqCst);
                // A slow query's stand-in.
                tokio::time::sleep(Duration::from_millis(300)).await;
                Ok(answer)
            }
        };
        let gave_up = tokio::time::timeout(Duration::from_millis(50), reused.get(slowly(7))).await;
        assert!(gave_up.is_err());
        assert_eq!(reused.get(slowly(8)).await.unwrap(), 7);
        assert_eq!(made.load(Ordering::SeqCst), 1);
    }

    /// Calls that waited behind a query that failed are told its failure,
    /// instead of each running it again; a call after them tries anew.
    #[tokio::test]
    async fn calls_that_waited_for_a_failed_answer_share_its_failure() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let reused: Arc<Reused<u32>> = Arc::default();
        let tried = Arc::new(AtomicUsize::new(0));
        let failing = || {
            let tried = Arc::clone(&tried);
            async move || {
                tried.fetch_add(1, Ordering::SeqCst);
                // A slow query's stand-in.
                tokio::time::sleep(Duration::from_millis(200)).await;
                Err(LedgerError::Unavailable("disk I/O error".into()))
            }
        };
        let first = tokio::spawn({
            let (reused, failing) = (Arc::clone(&reused), failing());
            async move { reused.get(failing).await }
        });
        // Asked while the first call's query runs.
        testkit::wait_until("the first query", Duration::from_secs(5), async || {
            (tried.load(Ordering::SeqCst) == 1).then_some(())
        })
        .await;
        let waited = futures_util::future::join_all((0..3).map(|_| reused.get(failing()))).await;
        assert!(first.await.unwrap().is_err());
        for answer in waited {
            assert!(answer.unwrap_err().to_string().contains("disk I/O error"));
        }
        assert_eq!(tried.load(Ordering::SeqCst), 1);
        assert!(reused.get(failing()).await.is_err());
        assert_eq!(tried.load(Ordering::SeqCst), 2);
    }

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
