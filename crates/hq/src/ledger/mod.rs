//! The fulfillment ledger: an embedded SQLite database on disk holding the
//! API keys HQ issued, every fulfillment (time, key, quantities, idempotency
//! key), every order the feed published and how its deliveries ended.
//!
//! This is what the workshop kept in DynamoDB behind API Gateway, plus what
//! reconciliation needs: orders published against fulfillments recorded.
//! This module holds the connection and the schema; each concern's queries
//! live in their own file.
//!
//! The [`JournalMode`] is a setting: WAL on a local disk (the default), the
//! rollback journal (`DELETE`) on a network file system such as EFS, where
//! WAL's shared-memory index cannot work.

mod deliveries;
mod fulfillments;
mod keys;
mod reconciliation;
mod timeline;

pub use deliveries::DeliveryOutcome;
pub use fulfillments::{KeyTotals, Recorded};
pub use keys::KeyInfo;
pub use reconciliation::{OrderCounts, Reconciliation};
pub use timeline::{Bucket, Latency, Sources, Timeline, Totals};

use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::Mutex;

/// File name of the database inside the data directory.
const DB_FILE: &str = "hq-ledger.sqlite3";
/// How long a connection waits for another's lock before it gives up.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Why the ledger could not do something.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// SQLite failed.
    #[error("ledger database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The blocking task running a query died.
    #[error("ledger unavailable: {0}")]
    Unavailable(String),
    /// SQLite would not switch to the journal mode asked for.
    #[error("ledger database kept journal mode {kept:?} instead of {wanted:?}")]
    JournalMode {
        /// The mode asked for.
        wanted: &'static str,
        /// The mode SQLite answered with.
        kept: String,
    },
    /// The idempotency key was used before with different quantities.
    #[error("idempotency key {} was already used for a different fulfillment", contracts::quote::quoted(.0))]
    IdempotencyConflict(String),
}

/// The ledger; cheap to clone, every clone is the same database.
///
/// Each connection is used by one blocking thread at a time: a caller waits
/// for it asynchronously, not on a thread of its own (a burst of calls
/// would otherwise start a blocking thread each, up to tokio's 512, and keep
/// them alive while calls keep coming).
#[derive(Debug, Clone)]
pub struct Ledger {
    /// Every write, and the reads on a fulfillment's path (the API key).
    writer: Arc<Mutex<Connection>>,
    /// The reports (reconciliation, dashboard, totals), which read the whole
    /// run or more: with WAL a read-only connection of their own, so a slow
    /// report never holds up a fulfillment; with the rollback journal the
    /// writer's (a reader's lock would hold up the writer's commit anyway).
    reader: Arc<Mutex<Connection>>,
}

/// How SQLite keeps the ledger consistent across a crash (`HQ_JOURNAL_MODE`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum JournalMode {
    /// Write-ahead log: readers never wait for the writer. Needs shared
    /// memory between the processes opening the file, so a local disk only.
    #[default]
    Wal,
    /// The rollback journal: only file locks, which NFS (EFS) provides,
    /// so the mode for a ledger on a network file system.
    Delete,
}

impl JournalMode {
    /// The name SQLite's `PRAGMA journal_mode` takes and answers.
    fn pragma(self) -> &'static str {
        match self {
            Self::Wal => "wal",
            Self::Delete => "delete",
        }
    }

    /// `PRAGMA synchronous` for this mode: FULL for both. WAL with NORMAL
    /// survives a crash of HQ but not of the host: a commit not yet synced
    /// is rolled back at the next start, after HQ answered 200 for it, and
    /// the order whose fulfillment it was is then counted nowhere.
    fn synchronous(self) -> &'static str {
        match self {
            Self::Wal | Self::Delete => "FULL",
        }
    }
}

const SCHEMA: &str = "
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
    -- The key the services fulfil this order under (derived from the
    -- topic, the MessageId and the kind); reconciliation pairs on it.
    idempotency_key TEXT,
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

/// Columns added after the first release: (table, column, type). A ledger
/// made by an older HQ gets them at open.
const ADDED_COLUMNS: [(&str, &str, &str); 2] = [
    ("published", "idempotency_key", "TEXT"),
    // Which part of the platform produced a fulfillment (contracts::Producer);
    // NULL for the workshop's clients, which do not say.
    ("fulfillments", "produced_by", "TEXT"),
];

/// Indexes on added columns, made once the columns exist. The dashboard's
/// timeline reads only this index (time range, then the summed columns).
const INDEXES_ON_ADDED_COLUMNS: &str = "
CREATE INDEX IF NOT EXISTS fulfillments_by_time
    ON fulfillments (recorded_at, produced_by, iridium, magnesite);
CREATE INDEX IF NOT EXISTS published_by_run_and_time ON published (run_id, published_at);
";

/// Brings a ledger made by an older HQ up to [`SCHEMA`]: `CREATE TABLE IF
/// NOT EXISTS` leaves an existing table as it was.
fn add_missing_columns(conn: &Connection) -> Result<(), LedgerError> {
    for (table, column, kind) in ADDED_COLUMNS {
        let present: bool = conn.query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2",
            [table, column],
            |row| row.get(0),
        )?;
        if !present {
            // Names from the constant above, never from input.
            conn.execute(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"), [])?;
        }
    }
    conn.execute_batch(INDEXES_ON_ADDED_COLUMNS)?;
    Ok(())
}

/// Now, as SNS writes times: ISO-8601 UTC with milliseconds.
pub fn now() -> String {
    timestamp(std::time::SystemTime::now())
}

/// `at` as the ledger writes times (ISO-8601 UTC with milliseconds), which
/// sort as text in time order.
///
/// A time before 1970 is written as 1970's first instant: humantime panics on
/// one, and a host without a battery-backed clock boots in 1970 until NTP
/// sets it (every publish and every dashboard poll would abort HQ).
pub fn timestamp(at: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(at.max(std::time::UNIX_EPOCH)).to_string()
}

impl Ledger {
    /// Opens (or creates) the ledger in `dir`, in journal mode `mode`.
    pub fn open(dir: &Path, mode: JournalMode) -> Result<Self, LedgerError> {
        let path = dir.join(DB_FILE);
        let conn = Connection::open(&path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // SQLite answers with the mode it is in: a mode it cannot use
        // (WAL without shared memory) is kept silently otherwise.
        let kept: String =
            conn.query_row(&format!("PRAGMA journal_mode = {}", mode.pragma()), [], |row| {
                row.get(0)
            })?;
        if !kept.eq_ignore_ascii_case(mode.pragma()) {
            return Err(LedgerError::JournalMode {
                wanted: mode.pragma(),
                kept,
            });
        }
        conn.execute_batch(&format!("PRAGMA synchronous = {};", mode.synchronous()))?;
        conn.execute_batch(SCHEMA)?;
        add_missing_columns(&conn)?;
        let writer = Arc::new(Mutex::new(conn));
        let reader = match mode {
            JournalMode::Wal => {
                let reader = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
                reader.busy_timeout(BUSY_TIMEOUT)?;
                Arc::new(Mutex::new(reader))
            }
            JournalMode::Delete => Arc::clone(&writer),
        };
        Ok(Self { writer, reader })
    }

    /// Runs `work` on the writer's connection off the async threads.
    async fn with<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, LedgerError> + Send + 'static,
    ) -> Result<T, LedgerError> {
        on(&self.writer, work).await
    }

    /// Runs `work`, a report that only reads, on the reports' connection.
    async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, LedgerError> + Send + 'static,
    ) -> Result<T, LedgerError> {
        on(&self.reader, work).await
    }
}

/// Runs `work` on `conn` on a blocking thread, once it is free.
async fn on<T: Send + 'static>(
    conn: &Arc<Mutex<Connection>>,
    work: impl FnOnce(&mut Connection) -> Result<T, LedgerError> + Send + 'static,
) -> Result<T, LedgerError> {
    let mut conn = Arc::clone(conn).lock_owned().await;
    tokio::task::spawn_blocking(move || work(&mut conn))
        .await
        .map_err(|e| LedgerError::Unavailable(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::{JournalMode, Ledger, timestamp};
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    /// This process's threads, as the kernel counts them.
    fn threads() -> usize {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|line| line.starts_with("Threads:")).unwrap();
        line["Threads:".len()..].trim().parse().unwrap()
    }

    #[tokio::test]
    async fn a_burst_of_calls_waits_for_the_connection_not_on_a_thread_each() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path(), JournalMode::Wal).unwrap();
        let before = threads();
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..200 {
            let ledger = ledger.clone();
            calls.spawn(async move {
                ledger.add_key(&format!("key-{i}"), "owner").await.unwrap();
                ledger.totals().await.unwrap();
            });
        }
        calls.join_all().await;
        // Idle blocking threads live on for 10 s, so they are still counted:
        // one a connection, and a few for other tests running beside this.
        let started = threads().saturating_sub(before);
        assert!(started < 12, "{started} threads started for 400 calls");
    }

    #[tokio::test]
    async fn a_report_under_way_does_not_hold_up_a_write() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path(), JournalMode::Wal).unwrap();
        // A report that takes its time holds the reports' connection.
        let report = Arc::clone(&ledger.reader).lock_owned().await;
        let write = ledger.add_key("k3y", "owner");
        let written = tokio::time::timeout(Duration::from_secs(5), write).await;
        assert!(written.expect("the write waited for the report").is_ok());
        drop(report);
        assert_eq!(ledger.totals().await.unwrap().len(), 1);
    }

    #[test]
    fn a_clock_before_1970_is_written_as_1970_not_a_panic() {
        let before = UNIX_EPOCH - Duration::from_secs(1800);
        assert_eq!(timestamp(before), "1970-01-01T00:00:00.000Z");
        let after = UNIX_EPOCH + Duration::from_millis(1_800_250);
        assert_eq!(timestamp(after), "1970-01-01T00:30:00.250Z");
    }
}
