//! The fulfillment ledger: an embedded SQLite database on disk holding the
//! API keys HQ issued, every fulfillment (time, key, quantities, idempotency
//! key), every order the feed published and how its deliveries ended.
//!
//! This is what the workshop kept in DynamoDB behind API Gateway, plus what
//! reconciliation needs: orders published against fulfillments recorded.

use contracts::FulfillmentRequest;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "hq-ledger.sqlite3";

/// Why the ledger could not do something.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// SQLite failed.
    #[error("ledger database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A thread holding the database panicked, or the blocking task died.
    #[error("ledger unavailable: {0}")]
    Unavailable(String),
    /// The idempotency key was used before with different quantities.
    #[error("idempotency key {0:?} was already used for a different fulfillment")]
    IdempotencyConflict(String),
}

/// A key as the ledger knows it; the key itself is never stored, only its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    /// A public name for the key: the first hex digits of its SHA-256.
    pub key_id: String,
    /// Who it was issued to.
    pub owner: String,
}

/// One recorded fulfillment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recorded {
    /// The ledger's id of the fulfillment.
    pub fulfillment_id: i64,
    /// Units of iridium.
    pub iridium: u32,
    /// Units of magnesite.
    pub magnesite: u32,
    /// True when the idempotency key was seen before: counted once, not again.
    pub replayed: bool,
}

/// What one key has had fulfilled (the workshop's aggregator).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KeyTotals {
    /// The key's public id.
    pub key_id: String,
    /// Who it was issued to.
    pub owner: String,
    /// Fulfillments counted.
    pub fulfillments: u64,
    /// Units of iridium fulfilled.
    pub iridium: u64,
    /// Units of magnesite fulfilled.
    pub magnesite: u64,
    /// Repeats absorbed by idempotency keys (not counted above).
    pub replays: u64,
}

/// How a delivery of one message to one subscription ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// 2xx or 3xx.
    Delivered,
    /// 4xx: the endpoint said it can never succeed; SNS does not retry it.
    Rejected,
    /// 5xx, timeouts or refused connections until the retries ran out.
    Failed,
}

impl DeliveryOutcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Rejected => "rejected",
            Self::Failed => "failed",
        }
    }
}

/// Orders published in one HQ run against fulfillments recorded for them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Reconciliation {
    /// All topics together (serialized at the top level, beside `topics`).
    #[serde(flatten)]
    pub total: OrderCounts,
    /// Per topic, the same counts.
    pub topics: BTreeMap<String, OrderCounts>,
}

/// How the orders of a run (or of one topic in it) ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OrderCounts {
    /// Orders published.
    pub published: u64,
    /// Orders with at least one fulfillment recorded under their MessageId.
    pub fulfilled: u64,
    /// Orders an endpoint refused with 4xx (bad orders; not lost).
    pub rejected: u64,
    /// Orders still being delivered or retried.
    pub pending: u64,
    /// Orders that reached no confirmed subscription.
    pub unrouted: u64,
    /// Orders delivered or failed, but with no fulfillment recorded.
    pub lost: u64,
    /// Extra fulfillments recorded for an order already fulfilled.
    pub duplicated: u64,
}

impl OrderCounts {
    /// Adds another set of counts to these.
    fn add(&mut self, other: &OrderCounts) {
        self.published += other.published;
        self.fulfilled += other.fulfilled;
        self.rejected += other.rejected;
        self.pending += other.pending;
        self.unrouted += other.unrouted;
        self.lost += other.lost;
        self.duplicated += other.duplicated;
    }
}

// The totals are what callers mostly read: `reconciliation.lost`.
impl std::ops::Deref for Reconciliation {
    type Target = OrderCounts;

    fn deref(&self) -> &OrderCounts {
        &self.total
    }
}

impl Reconciliation {
    /// Nothing lost, nothing counted twice, nothing left in flight.
    pub fn is_clean(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.pending == 0
    }
}

/// The ledger; cheap to clone, every clone is the same database.
#[derive(Debug, Clone)]
pub struct Ledger {
    conn: Arc<Mutex<Connection>>,
}

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS api_keys (
    key_digest TEXT PRIMARY KEY,
    key_id     TEXT NOT NULL,
    owner      TEXT NOT NULL,
    issued_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS fulfillments (
    id              INTEGER PRIMARY KEY,
    recorded_at     TEXT NOT NULL,
    key_id          TEXT NOT NULL,
    idempotency_key TEXT,
    iridium         INTEGER NOT NULL,
    magnesite       INTEGER NOT NULL,
    replays         INTEGER NOT NULL DEFAULT 0,
    UNIQUE (key_id, idempotency_key)
);
CREATE INDEX IF NOT EXISTS fulfillments_by_idempotency_key ON fulfillments (idempotency_key);
CREATE TABLE IF NOT EXISTS published (
    message_id   TEXT PRIMARY KEY,
    run_id       TEXT NOT NULL,
    topic        TEXT NOT NULL,
    message      TEXT NOT NULL,
    published_at TEXT NOT NULL,
    subscribers  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS published_by_run ON published (run_id);
CREATE TABLE IF NOT EXISTS deliveries (
    message_id       TEXT NOT NULL,
    subscription_arn TEXT NOT NULL,
    outcome          TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    finished_at      TEXT NOT NULL,
    PRIMARY KEY (message_id, subscription_arn)
);
";

/// The digest under which a key is stored; the key itself never is.
fn digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Now, as SNS writes times: ISO-8601 UTC with milliseconds.
pub fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

impl Ledger {
    /// Opens (or creates) the ledger in `dir`.
    pub fn open(dir: &Path) -> Result<Self, LedgerError> {
        let conn = Connection::open(dir.join(DB_FILE))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `work` on the database off the async threads.
    async fn with<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, LedgerError> + Send + 'static,
    ) -> Result<T, LedgerError> {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut conn = conn
                .lock()
                .map_err(|_| LedgerError::Unavailable("a ledger thread panicked".into()))?;
            work(&mut conn)
        })
        .await
        .map_err(|e| LedgerError::Unavailable(e.to_string()))?
    }

    /// Stores `key` for `owner` (idempotent: a known key keeps its owner).
    pub async fn add_key(&self, key: &str, owner: &str) -> Result<KeyInfo, LedgerError> {
        let key_digest = digest(key);
        let key_id = key_digest[..12].to_owned();
        let owner = owner.to_owned();
        self.with(move |conn| {
            conn.execute(
                "INSERT OR IGNORE INTO api_keys (key_digest, key_id, owner, issued_at) VALUES (?1, ?2, ?3, ?4)",
                params![key_digest, key_id, owner, now()],
            )?;
            let owner: String = conn.query_row(
                "SELECT owner FROM api_keys WHERE key_digest = ?1",
                params![key_digest],
                |row| row.get(0),
            )?;
            Ok(KeyInfo { key_id, owner })
        })
        .await
    }

    /// The key's record, or `None` for a key HQ never issued.
    pub async fn find_key(&self, key: &str) -> Result<Option<KeyInfo>, LedgerError> {
        let key_digest = digest(key);
        self.with(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT key_id, owner FROM api_keys WHERE key_digest = ?1",
                    params![key_digest],
                    |row| {
                        Ok(KeyInfo {
                            key_id: row.get(0)?,
                            owner: row.get(1)?,
                        })
                    },
                )
                .optional()?)
        })
        .await
    }

    /// Records a fulfillment for `key_id`. With an idempotency key seen
    /// before (for this API key), nothing new is counted: the first record is
    /// returned as a replay, or a conflict if the quantities differ.
    pub async fn record(
        &self,
        key_id: &str,
        idempotency_key: Option<&str>,
        request: FulfillmentRequest,
    ) -> Result<Recorded, LedgerError> {
        let key_id = key_id.to_owned();
        let idempotency_key = idempotency_key.map(str::to_owned);
        self.with(move |conn| {
            let tx = conn.transaction()?;
            if let Some(idem) = &idempotency_key {
                let earlier: Option<(i64, u32, u32)> = tx
                    .query_row(
                        "SELECT id, iridium, magnesite FROM fulfillments WHERE key_id = ?1 AND idempotency_key = ?2",
                        params![key_id, idem],
                        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                    )
                    .optional()?;
                if let Some((id, iridium, magnesite)) = earlier {
                    if (iridium, magnesite) != (request.iridium, request.magnesite) {
                        return Err(LedgerError::IdempotencyConflict(idem.clone()));
                    }
                    tx.execute("UPDATE fulfillments SET replays = replays + 1 WHERE id = ?1", params![id])?;
                    tx.commit()?;
                    return Ok(Recorded {
                        fulfillment_id: id,
                        iridium,
                        magnesite,
                        replayed: true,
                    });
                }
            }
            tx.execute(
                "INSERT INTO fulfillments (recorded_at, key_id, idempotency_key, iridium, magnesite) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![now(), key_id, idempotency_key, request.iridium, request.magnesite],
            )?;
            let id = tx.last_insert_rowid();
            tx.commit()?;
            Ok(Recorded {
                fulfillment_id: id,
                iridium: request.iridium,
                magnesite: request.magnesite,
                replayed: false,
            })
        })
        .await
    }

    /// Totals of every key that has a fulfillment or was issued.
    pub async fn totals(&self) -> Result<Vec<KeyTotals>, LedgerError> {
        self.totals_where(None).await
    }

    /// Totals of one key.
    pub async fn totals_for(&self, key: &KeyInfo) -> Result<KeyTotals, LedgerError> {
        let mut totals = self.totals_where(Some(key.key_id.clone())).await?;
        Ok(totals.pop().unwrap_or_else(|| KeyTotals {
            key_id: key.key_id.clone(),
            owner: key.owner.clone(),
            ..KeyTotals::default()
        }))
    }

    async fn totals_where(&self, key_id: Option<String>) -> Result<Vec<KeyTotals>, LedgerError> {
        self.with(move |conn| {
            let mut statement = conn.prepare(
                "SELECT k.key_id, k.owner, COUNT(f.id), COALESCE(SUM(f.iridium), 0),
                        COALESCE(SUM(f.magnesite), 0), COALESCE(SUM(f.replays), 0)
                 FROM api_keys k LEFT JOIN fulfillments f ON f.key_id = k.key_id
                 WHERE ?1 IS NULL OR k.key_id = ?1
                 GROUP BY k.key_id, k.owner ORDER BY k.issued_at, k.key_id",
            )?;
            let rows = statement.query_map(params![key_id], |row| {
                Ok(KeyTotals {
                    key_id: row.get(0)?,
                    owner: row.get(1)?,
                    fulfillments: row.get(2)?,
                    iridium: row.get(3)?,
                    magnesite: row.get(4)?,
                    replays: row.get(5)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Notes an order the feed published in run `run_id`.
    pub async fn record_published(
        &self,
        run_id: &str,
        message_id: &str,
        topic: &str,
        message: &str,
        subscribers: usize,
    ) -> Result<(), LedgerError> {
        let values = (
            message_id.to_owned(),
            run_id.to_owned(),
            topic.to_owned(),
            message.to_owned(),
            i64::try_from(subscribers).unwrap_or(i64::MAX),
        );
        self.with(move |conn| {
            conn.execute(
                "INSERT INTO published (message_id, run_id, topic, message, published_at, subscribers)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![values.0, values.1, values.2, values.3, now(), values.4],
            )?;
            Ok(())
        })
        .await
    }

    /// Notes how the delivery of a message to a subscription ended.
    pub async fn record_delivery(
        &self,
        message_id: &str,
        subscription_arn: &str,
        outcome: DeliveryOutcome,
        attempts: u32,
    ) -> Result<(), LedgerError> {
        let (message_id, subscription_arn) = (message_id.to_owned(), subscription_arn.to_owned());
        self.with(move |conn| {
            conn.execute(
                "INSERT OR REPLACE INTO deliveries (message_id, subscription_arn, outcome, attempts, finished_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![message_id, subscription_arn, outcome.as_str(), attempts, now()],
            )?;
            Ok(())
        })
        .await
    }

    /// Orders published in run `run_id` against fulfillments recorded for them.
    pub async fn reconcile(&self, run_id: &str) -> Result<Reconciliation, LedgerError> {
        let run_id = run_id.to_owned();
        self.with(move |conn| {
            let mut statement = conn.prepare(
                "SELECT p.topic, p.subscribers,
                    (SELECT COUNT(*) FROM fulfillments f WHERE f.idempotency_key = p.message_id),
                    (SELECT COUNT(*) FROM deliveries d WHERE d.message_id = p.message_id),
                    (SELECT COUNT(*) FROM deliveries d WHERE d.message_id = p.message_id AND d.outcome = 'rejected')
                 FROM published p WHERE p.run_id = ?1",
            )?;
            let rows = statement.query_map(params![run_id], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, i64>(4)?,
                ))
            })?;
            let mut total = Reconciliation::default();
            for row in rows {
                let (topic, subscribers, fulfillments, finished, rejected) = row?;
                let entry = total.topics.entry(topic).or_default();
                entry.published += 1;
                let extra = u64::try_from(fulfillments.saturating_sub(1)).unwrap_or(0);
                entry.duplicated += extra;
                if fulfillments > 0 {
                    entry.fulfilled += 1;
                } else if subscribers == 0 {
                    entry.unrouted += 1;
                } else if finished < subscribers {
                    entry.pending += 1;
                } else if rejected > 0 {
                    entry.rejected += 1;
                } else {
                    entry.lost += 1;
                }
            }
            let mut sum = OrderCounts::default();
            for topic in total.topics.values() {
                sum.add(topic);
            }
            total.total = sum;
            Ok(total)
        })
        .await
    }
}
