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
//!
//! One HQ per ledger: [`Ledger::open`] holds a lock on the data directory
//! for as long as the ledger is open, and a second HQ is refused. The schema
//! is versioned (`PRAGMA user_version`, `MIGRATIONS`); a ledger written by
//! a newer HQ is refused rather than written under rules it does not know.
//!
//! Whether the ledger can record now (HQ's health check) is what its last
//! write found, or a small probe write when none came for a while
//! (`health.rs`).

mod deliveries;
mod fulfillments;
mod health;
mod keys;
mod reconciliation;
mod timeline;

pub use deliveries::{DeliveryOutcome, PublishedOn};
pub use fulfillments::{KeyTotals, Recorded};
pub use health::ROOM_TO_RECORD;
pub use keys::{KEY_ID_LEN, KeyInfo};
pub use reconciliation::{OrderCounts, Reconciliation, UNACCOUNTED_SHOWN, Unaccounted, UnaccountedOutcome};
pub use timeline::{
    Bucket, Latency, NOW_WINDOW, Newest, PerResource, Produced, RECENT_FULFILLMENTS, Recent, Source, Sources,
    Timeline, Totals,
};

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::Mutex;

/// File name of the database inside the data directory.
const DB_FILE: &str = "hq-ledger.sqlite3";

/// Where the ledger of data directory `dir` is.
pub fn path_in(dir: &Path) -> PathBuf {
    dir.join(DB_FILE)
}

/// Where SQLite keeps the WAL of the database at `path`.
fn wal_of(path: &Path) -> PathBuf {
    sqlite_sibling(path, "-wal")
}

/// The file SQLite keeps beside the database at `path`, named with
/// `suffix` (`-wal`, `-shm`).
fn sqlite_sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut sibling = path.as_os_str().to_owned();
    sibling.push(suffix);
    PathBuf::from(sibling)
}

/// File in the data directory whose lock says an HQ has the ledger open.
const LOCK_FILE: &str = "hq.lock";
/// How long a connection waits for another's lock before it gives up.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Why the ledger could not do something.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// SQLite failed.
    #[error("ledger database: {}{}", .0, extended_code(.0))]
    Sqlite(#[from] rusqlite::Error),
    /// The probe's page was written, but the file system has too little
    /// room left for orders ([`ROOM_TO_RECORD`]).
    #[error(
        "only {} KiB free where the ledger is, too little to record orders (HQ asks for {} KiB)",
        .free / 1024, .wanted / 1024
    )]
    NoRoom {
        /// Bytes free for an unprivileged writer.
        free: u64,
        /// Bytes the probe asks for.
        wanted: u64,
    },
    /// A file the ledger has open was deleted or replaced on disk (an
    /// `rm -rf` of the data directory, a restore while HQ ran): SQLite
    /// writes on to the file it opened, which nothing will open again, so
    /// what it records now would be lost at the next start.
    #[error(
        "the ledger's file {} was deleted or replaced while HQ had it open: what HQ records now \
         would be lost with it, so nothing is recorded until HQ is restarted (and, if the \
         ledger was lost, restored from a backup first)",
        .path.display()
    )]
    Replaced {
        /// The file that is gone, or is another file now.
        path: PathBuf,
    },
    /// The blocking task running a query died, or a report's query failed
    /// while this call waited for its answer (`state::Reused`: the
    /// failure's text).
    #[error("ledger unavailable: {0}")]
    Unavailable(String),
    /// The ledger's file could not be made HQ's alone (mode 0600).
    #[error("making the ledger's file {} readable by HQ alone: {source}", .path.display())]
    Private {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// SQLite would not switch to the journal mode asked for.
    #[error("ledger database kept journal mode {kept:?} instead of {wanted:?}")]
    JournalMode {
        /// The mode asked for.
        wanted: &'static str,
        /// The mode SQLite answered with.
        kept: String,
    },
    /// Another HQ has this data directory's ledger open.
    #[error(
        "another HQ is using the ledger in {}: it holds the lock on {} (stop it, or give this HQ \
         its own --data-dir); on EFS, a task that was lost holds it until its NFS lease runs out",
        .dir.display(), .lock.display()
    )]
    InUse {
        /// The data directory.
        dir: PathBuf,
        /// The lock file.
        lock: PathBuf,
    },
    /// The lock file could not be made or locked.
    #[error(
        "locking the ledger ({}): {source}; HQ writes in its data directory: give --data-dir one it may write in",
        .lock.display()
    )]
    Lock {
        /// The lock file.
        lock: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The ledger was written by a newer HQ, under a schema this one does
    /// not know.
    #[error(
        "the ledger's schema is version {found}, written by a newer HQ; this HQ knows up to \
         version {known}: run the newer HQ, or restore a backup taken before it migrated the ledger"
    )]
    NewerSchema {
        /// The ledger's version.
        found: u32,
        /// The newest version this HQ can migrate to.
        known: u32,
    },
}

/// SQLite's extended result code, when it says more than the message: an
/// I/O error's message is "disk I/O error" whatever failed, and its code
/// says which call (1034, `SQLITE_IOERR_FSYNC`: a sync refused). Without a
/// message rusqlite shows the code itself.
fn extended_code(error: &rusqlite::Error) -> String {
    match error {
        // Extended codes are the primary code plus a reason above its low byte.
        rusqlite::Error::SqliteFailure(failure, Some(_)) if failure.extended_code > 0xff => {
            format!(" (SQLite code {})", failure.extended_code)
        }
        _ => String::new(),
    }
}

/// The ledger; cheap to clone, every clone is the same database.
///
/// Each connection is used by one blocking thread at a time: a caller waits
/// for it asynchronously, not on a thread of its own (a burst of calls
/// would otherwise start a blocking thread each, up to tokio's 512, and keep
/// them alive while calls keep coming).
#[derive(Debug, Clone)]
pub struct Ledger {
    /// The reports (reconciliation, dashboard, totals), which read the whole
    /// run or more: with WAL a read-only connection of their own, so a slow
    /// report never holds up a fulfillment; with the rollback journal the
    /// writer's (a reader's lock would hold up the writer's commit anyway).
    ///
    /// Declared before the writer so that it closes first: the last
    /// connection to close checkpoints the WAL into the database file only
    /// if it can write.
    reader: Arc<Mutex<Connection>>,
    /// Every write, and the reads on a fulfillment's path (the API key).
    writer: Arc<Mutex<Connection>>,
    /// What the last writes found: whether the ledger can record now.
    health: Arc<health::Health>,
    /// The files the ledger opened, as the file system had them then.
    opened: Arc<OpenedFiles>,
    /// The data directory's lock, held while any clone lives.
    _lock: Arc<File>,
}

/// The ledger's files (the database, its WAL, the data directory's lock) as
/// the file system had them when the ledger opened them: device and inode.
/// A file deleted or replaced under a running HQ keeps taking SQLite's
/// writes, and its lock, where nothing will look again; every write checks
/// the files are still the ones open, so such a write is refused (500, the
/// health check 503) rather than answered 2xx and lost. Once one is found
/// gone, no write is attempted again until HQ restarts.
#[derive(Debug)]
struct OpenedFiles {
    /// Each file's path and its device and inode then; the database first.
    files: Vec<(PathBuf, (u64, u64))>,
    /// The file found gone or replaced, once one has been.
    gone: std::sync::OnceLock<PathBuf>,
}

impl OpenedFiles {
    /// Notes `paths` as they are now; a path with no file is left out (the
    /// WAL of a ledger whose journal is not WAL).
    fn note(paths: impl IntoIterator<Item = PathBuf>) -> Self {
        Self {
            files: paths
                .into_iter()
                .filter_map(|path| file_id(&path).ok().map(|id| (path, id)))
                .collect(),
            gone: std::sync::OnceLock::new(),
        }
    }

    /// Refuses a write once a file was found gone (no system call).
    fn none_gone(&self) -> Result<(), LedgerError> {
        match self.gone.get() {
            Some(path) => Err(LedgerError::Replaced { path: path.clone() }),
            None => Ok(()),
        }
    }

    /// Whether every file noted is still the one at its path; the first
    /// that is not is remembered.
    fn still_in_place(&self) -> Result<(), LedgerError> {
        match self
            .files
            .iter()
            .find(|(path, id)| file_id(path).ok() != Some(*id))
        {
            Some((path, _)) => Err(self.found_gone(path)),
            None => Ok(()),
        }
    }

    /// Remembers `path` as gone, and says so.
    fn found_gone(&self, path: &Path) -> LedgerError {
        let path = self.gone.get_or_init(|| path.to_owned());
        LedgerError::Replaced { path: path.clone() }
    }

    /// SQLite's own refusal for a database file moved or deleted under it
    /// (the rollback journal notices before the check after the write).
    fn said_moved(&self, error: LedgerError) -> LedgerError {
        let moved = matches!(
            &error,
            LedgerError::Sqlite(rusqlite::Error::SqliteFailure(failure, _))
                if failure.extended_code == rusqlite::ffi::SQLITE_READONLY_DBMOVED
        );
        match self.files.first() {
            Some((database, _)) if moved => self.found_gone(database),
            _ => error,
        }
    }
}

/// The device and inode of the file at `path`: another file, or none, at
/// the same path has others.
fn file_id(path: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(path)?;
    Ok((metadata.dev(), metadata.ino()))
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

    /// `PRAGMA synchronous` for this mode. WAL with NORMAL survives a crash
    /// of HQ but not of the host: a commit not yet synced is rolled back at
    /// the next start, after HQ answered 200 for it, and the order whose
    /// fulfillment it was is then counted nowhere; so FULL. The rollback
    /// journal needs EXTRA for the same: FULL deletes the journal at commit
    /// without syncing its directory, and a power cut can bring it back and
    /// roll the commit back.
    fn synchronous(self) -> &'static str {
        match self {
            Self::Wal => "FULL",
            Self::Delete => "EXTRA",
        }
    }
}

/// Version 1's tables and indexes (with [`ADDED_COLUMNS`]): part of
/// [`MIGRATIONS`]' first step, so frozen; a change goes in a new step.
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

/// Columns added after the first release and before versioning: (table,
/// column, type). A ledger made by such an older HQ gets them in the first
/// migration. Frozen with [`SCHEMA`]: add a column in a new migration step.
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

/// Version 2: each key's totals kept in a row of their own, by triggers on
/// every write to `fulfillments` (made up from the fulfillments there are
/// once, when a ledger takes this step). The totals, a key's page and the
/// dashboard's grand totals then read a row per key instead of every
/// fulfillment ever recorded: at a million fulfillments a read of them all
/// took seconds, and with the rollback journal (EFS) a fulfillment waited
/// for it. `published_by_run` goes: `published_by_run_and_time` starts with
/// the same column, and each publish wrote both.
const KEY_TOTALS: &str = "
CREATE TABLE key_totals (
    key_id       TEXT PRIMARY KEY,
    fulfillments INTEGER NOT NULL,
    iridium      INTEGER NOT NULL,
    magnesite    INTEGER NOT NULL,
    replays      INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO key_totals (key_id, fulfillments, iridium, magnesite, replays)
    SELECT key_id, COUNT(*), SUM(iridium), SUM(magnesite), SUM(replays)
    FROM fulfillments GROUP BY key_id;
CREATE TRIGGER key_totals_add AFTER INSERT ON fulfillments BEGIN
    INSERT INTO key_totals (key_id, fulfillments, iridium, magnesite, replays)
        VALUES (NEW.key_id, 1, NEW.iridium, NEW.magnesite, NEW.replays)
        ON CONFLICT (key_id) DO UPDATE SET
            fulfillments = fulfillments + 1,
            iridium = iridium + excluded.iridium,
            magnesite = magnesite + excluded.magnesite,
            replays = replays + excluded.replays;
END;
CREATE TRIGGER key_totals_change AFTER UPDATE OF key_id, iridium, magnesite, replays ON fulfillments BEGIN
    UPDATE key_totals SET
        fulfillments = fulfillments - 1,
        iridium = iridium - OLD.iridium,
        magnesite = magnesite - OLD.magnesite,
        replays = replays - OLD.replays
    WHERE key_id = OLD.key_id;
    INSERT INTO key_totals (key_id, fulfillments, iridium, magnesite, replays)
        VALUES (NEW.key_id, 1, NEW.iridium, NEW.magnesite, NEW.replays)
        ON CONFLICT (key_id) DO UPDATE SET
            fulfillments = fulfillments + 1,
            iridium = iridium + excluded.iridium,
            magnesite = magnesite + excluded.magnesite,
            replays = replays + excluded.replays;
END;
CREATE TRIGGER key_totals_remove AFTER DELETE ON fulfillments BEGIN
    UPDATE key_totals SET
        fulfillments = fulfillments - 1,
        iridium = iridium - OLD.iridium,
        magnesite = magnesite - OLD.magnesite,
        replays = replays - OLD.replays
    WHERE key_id = OLD.key_id;
END;
DROP INDEX IF EXISTS published_by_run;
";

/// Version 3: a key can be revoked (`DELETE /keys/<key_id>`). The row stays,
/// so the key's totals and its fulfillments in the reconciliation stay too,
/// and the key, given again in `HQ_API_KEYS`, is not accepted again.
const KEY_REVOCATION: &str = "ALTER TABLE api_keys ADD COLUMN revoked_at TEXT;";

/// Version 4: a key can be issued to succeed another (`POST /keys` with
/// `succeeds`), for a rotation: a repeat of an order fulfilled under the
/// one is recognised under the other, so an order SNS retries across the
/// change, or re-sent from the dead-letter queue after it, counts once.
/// `scope_key_id` is the first key's id of such a line; NULL for a key of
/// its own.
const KEY_SUCCESSION: &str = "ALTER TABLE api_keys ADD COLUMN scope_key_id TEXT;";

/// Version 5: where each order was published (`publisher`, a
/// `PublishedOn`), so that reconciliation tells an order on HQ's own feed
/// whose deliveries have not ended (pending) from one on SNS, whose
/// deliveries HQ never sees (NULL for the orders before it); and what the
/// reconciliation reads of each order, kept in its row by triggers on every
/// write to `fulfillments` and `deliveries`: its fulfillments, those and
/// their repeats, its deliveries ended, refused and given up on. The
/// reconciliation then reads the run's rows instead of five lookups for
/// each of its orders (4 s at 500,000 orders, 26 s at 2.5 million: at start,
/// at a stop within ECS' 30 s, and under the rollback journal with the
/// fulfillments waiting, that was too long). A row made after a fulfillment
/// of its order (SNS, or an emulator, may deliver before Publish answers)
/// counts what is already there. The orders before this step keep NULL
/// counts (NULL plus one stays NULL), which the reconciliation counts from
/// the rows as before: made up here, they would hold HQ's start for as long
/// as a reconciliation of every run takes.
const PUBLISHED_COUNTS: &str = "
ALTER TABLE published ADD COLUMN publisher TEXT;
ALTER TABLE published ADD COLUMN fulfilled INTEGER;
ALTER TABLE published ADD COLUMN answered INTEGER;
ALTER TABLE published ADD COLUMN finished INTEGER;
ALTER TABLE published ADD COLUMN rejected INTEGER;
ALTER TABLE published ADD COLUMN failed INTEGER;
CREATE INDEX published_by_idempotency_key ON published (idempotency_key);
CREATE TRIGGER published_counts_start AFTER INSERT ON published BEGIN
    UPDATE published SET
        fulfilled = (SELECT COUNT(*) FROM fulfillments f WHERE f.idempotency_key = NEW.idempotency_key),
        answered = (SELECT COUNT(*) + COALESCE(SUM(f.replays), 0) FROM fulfillments f
                    WHERE f.idempotency_key = NEW.idempotency_key),
        finished = (SELECT COUNT(*) FROM deliveries d WHERE d.message_id = NEW.message_id),
        rejected = (SELECT COUNT(*) FROM deliveries d WHERE d.message_id = NEW.message_id AND d.outcome = 'rejected'),
        failed = (SELECT COUNT(*) FROM deliveries d WHERE d.message_id = NEW.message_id AND d.outcome = 'failed')
    WHERE message_id = NEW.message_id;
END;
CREATE TRIGGER published_counts_fulfilled AFTER INSERT ON fulfillments BEGIN
    UPDATE published SET fulfilled = fulfilled + 1, answered = answered + 1 + NEW.replays
        WHERE idempotency_key = NEW.idempotency_key;
END;
CREATE TRIGGER published_counts_refulfilled AFTER UPDATE OF idempotency_key, replays ON fulfillments BEGIN
    UPDATE published SET fulfilled = fulfilled - 1, answered = answered - 1 - OLD.replays
        WHERE idempotency_key = OLD.idempotency_key;
    UPDATE published SET fulfilled = fulfilled + 1, answered = answered + 1 + NEW.replays
        WHERE idempotency_key = NEW.idempotency_key;
END;
CREATE TRIGGER published_counts_unfulfilled AFTER DELETE ON fulfillments BEGIN
    UPDATE published SET fulfilled = fulfilled - 1, answered = answered - 1 - OLD.replays
        WHERE idempotency_key = OLD.idempotency_key;
END;
CREATE TRIGGER published_counts_delivered AFTER INSERT ON deliveries BEGIN
    UPDATE published SET finished = finished + 1,
        rejected = rejected + (NEW.outcome = 'rejected'), failed = failed + (NEW.outcome = 'failed')
        WHERE message_id = NEW.message_id;
END;
CREATE TRIGGER published_counts_redelivered AFTER UPDATE OF message_id, outcome ON deliveries BEGIN
    UPDATE published SET finished = finished - 1,
        rejected = rejected - (OLD.outcome = 'rejected'), failed = failed - (OLD.outcome = 'failed')
        WHERE message_id = OLD.message_id;
    UPDATE published SET finished = finished + 1,
        rejected = rejected + (NEW.outcome = 'rejected'), failed = failed + (NEW.outcome = 'failed')
        WHERE message_id = NEW.message_id;
END;
CREATE TRIGGER published_counts_undelivered AFTER DELETE ON deliveries BEGIN
    UPDATE published SET finished = finished - 1,
        rejected = rejected - (OLD.outcome = 'rejected'), failed = failed - (OLD.outcome = 'failed')
        WHERE message_id = OLD.message_id;
END;
";

/// One step of the schema, from the version before it to its own (its
/// place in [`MIGRATIONS`] plus one), run in the transaction that records
/// the new version.
type Migration = fn(&Transaction<'_>) -> Result<(), LedgerError>;

/// The schema's history, oldest first; `PRAGMA user_version` is how many of
/// them a ledger has had. To change the schema, append a step: never edit
/// one, since ledgers in use have already run it. Each step runs once, in
/// one transaction with the new version, so a failed step changes nothing.
/// A test compares a ledger brought up from the oldest schema with a new
/// one.
const MIGRATIONS: [Migration; 5] = [
    // 1: everything before versioning, on a new ledger or on one made by
    // any earlier HQ (all of which are version 0).
    |tx| {
        tx.execute_batch(SCHEMA)?;
        add_missing_columns(tx)
    },
    // 2: each key's totals in a row of their own (`KEY_TOTALS`).
    |tx| Ok(tx.execute_batch(KEY_TOTALS)?),
    // 3: keys can be revoked (`KEY_REVOCATION`).
    |tx| Ok(tx.execute_batch(KEY_REVOCATION)?),
    // 4: a key can succeed another (`KEY_SUCCESSION`).
    |tx| Ok(tx.execute_batch(KEY_SUCCESSION)?),
    // 5: each order says where it was published, and keeps the counts the
    // reconciliation reads (`PUBLISHED_COUNTS`).
    |tx| Ok(tx.execute_batch(PUBLISHED_COUNTS)?),
];

/// A ledger in use brought to a newer schema when HQ opened it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Upgrade {
    /// The version it had (0: made before versioning).
    from: u32,
    /// The version it has now ([`MIGRATIONS`]' length).
    to: u32,
}

/// Brings the ledger to the newest version in [`MIGRATIONS`], or refuses
/// one a newer HQ wrote. The transaction takes the write lock at once, so
/// two HQs starting together cannot both migrate. Says which versions an
/// existing ledger went from and to (`None` for a new ledger, or one
/// already at the newest).
fn migrate(conn: &mut Connection) -> Result<Option<Upgrade>, LedgerError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: u32 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let known = MIGRATIONS.len() as u32;
    if found > known {
        return Err(LedgerError::NewerSchema { found, known });
    }
    // A ledger made before versioning is at 0 too, with its tables.
    let is_new: bool = tx.query_row("SELECT NOT EXISTS (SELECT 1 FROM sqlite_schema)", [], |row| {
        row.get(0)
    })?;
    for (version, step) in (1..).zip(MIGRATIONS).skip(found as usize) {
        step(&tx)?;
        tx.pragma_update(None, "user_version", version)?;
    }
    tx.commit()?;
    Ok((found < known && !is_new).then_some(Upgrade {
        from: found,
        to: known,
    }))
}

/// Locks `dir`'s lock file for this process, or says who holds it.
fn lock_data_dir(dir: &Path) -> Result<File, LedgerError> {
    let lock = dir.join(LOCK_FILE);
    let failed = |source| LedgerError::Lock {
        lock: lock.clone(),
        source,
    };
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .map_err(failed)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(LedgerError::InUse {
            dir: dir.to_owned(),
            lock,
        }),
        Err(TryLockError::Error(source)) => Err(failed(source)),
    }
}

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

/// Has SQLite sort and keep temporary tables in memory instead of files in
/// a temporary directory: HQ's image has none (`FROM scratch`, a read-only
/// root on ECS), and a sort larger than SQLite's few MB in memory (a
/// schema step's index over a long-lived ledger's orders) failed there
/// with "disk I/O error", HQ restarting into it again.
fn keep_temporaries_in_memory(conn: &Connection) -> Result<(), LedgerError> {
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(())
}

impl Ledger {
    /// Opens (or creates) the ledger in `dir`, in journal mode `mode`,
    /// brought to the newest schema; refused while another HQ has it open.
    pub fn open(dir: &Path, mode: JournalMode) -> Result<Self, LedgerError> {
        let lock = Arc::new(lock_data_dir(dir)?);
        let path = dir.join(DB_FILE);
        // The database made or kept HQ's alone, and the files beside it if
        // they are there (SQLite makes them with the database's mode).
        for file in [path.clone(), wal_of(&path), sqlite_sibling(&path, "-shm")] {
            if file == path || file.exists() {
                crate::secret_file::keep_private(&file).map_err(|source| LedgerError::Private {
                    path: file.clone(),
                    source,
                })?;
            }
        }
        let mut conn = Connection::open(&path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        keep_temporaries_in_memory(&conn)?;
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
        let started = std::time::Instant::now();
        if let Some(Upgrade { from, to }) = migrate(&mut conn)? {
            // Said once, where an operator looks when an older HQ is refused
            // later or a start took longer (a step may rewrite every row).
            tracing::info!(
                from,
                to,
                took_ms = started.elapsed().as_millis() as u64,
                "the ledger's schema was upgraded: an older HQ now refuses it (roll back with the backup taken before)"
            );
        }
        // The WAL exists from the first transaction on (migrate's) until
        // the last connection closes; the rollback journal comes and goes
        // with each transaction, so only the database itself is noted then.
        let opened = OpenedFiles::note([path.clone(), wal_of(&path), dir.join(LOCK_FILE)]);
        let writer = Arc::new(Mutex::new(conn));
        let reader = match mode {
            JournalMode::Wal => {
                let reader = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
                reader.busy_timeout(BUSY_TIMEOUT)?;
                keep_temporaries_in_memory(&reader)?;
                Arc::new(Mutex::new(reader))
            }
            JournalMode::Delete => Arc::clone(&writer),
        };
        Ok(Self {
            reader,
            writer,
            health: Arc::default(),
            opened: Arc::new(opened),
            _lock: lock,
        })
    }

    /// Copies the WAL's commits into the database file and empties the
    /// WAL, so that the file alone is the whole ledger (a copy of it is a
    /// backup). HQ does this when it stops; with the rollback journal the
    /// file is always whole between transactions, and this does nothing.
    pub async fn checkpoint(&self) -> Result<(), LedgerError> {
        self.write(|conn| {
            // (busy, frames in the WAL, frames copied): busy means a reader
            // kept part of the WAL, which the next checkpoint copies.
            let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))?;
            if busy != 0 {
                tracing::warn!("the ledger's WAL was not emptied: a reader was still reading");
            }
            Ok(())
        })
        .await
    }

    /// Runs `work` on the writer's connection off the async threads.
    async fn with<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, LedgerError> + Send + 'static,
    ) -> Result<T, LedgerError> {
        on(&self.writer, work).await
    }

    /// Runs `work`, which writes, on the writer's connection, and notes
    /// whether the ledger could take it (HQ's health check). The note is
    /// taken while the connection is still held, so notes land in the order
    /// of the writes: a failure noted after a later success would say 503
    /// about a ledger that records.
    async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, LedgerError> + Send + 'static,
    ) -> Result<T, LedgerError> {
        let health = Arc::clone(&self.health);
        let opened = Arc::clone(&self.opened);
        self.with(move |conn| {
            // Checked after the write, so that one made into a file removed
            // meanwhile is refused too: a few stat calls beside its sync.
            // Once a file is gone, nothing more is written (SQLite's own
            // checkpoint when HQ stops still copies the WAL it had open into
            // the database file, if only the WAL went).
            let outcome = opened
                .none_gone()
                .and_then(|()| work(conn).map_err(|error| opened.said_moved(error)))
                .and_then(|done| opened.still_in_place().map(|()| done));
            health.note_write(&outcome);
            outcome
        })
        .await
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
    // In the caller's span, which a blocking thread does not inherit: the
    // ledger's own lines (it cannot record, it records again) say whose
    // request, and under the launcher that they are HQ's.
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(|| work(&mut conn)))
        .await
        .map_err(|e| LedgerError::Unavailable(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::{DB_FILE, JournalMode, Ledger, LedgerError, MIGRATIONS, Upgrade, migrate, timestamp};
    use contracts::FulfillmentRequest;
    use rusqlite::Connection;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn an_error_names_sqlites_extended_code_when_it_says_more_than_the_message() {
        // As SQLite reports them: the code and sqlite3_errmsg's text.
        let failure = |code, message: &str| {
            LedgerError::Sqlite(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(code),
                Some(message.into()),
            ))
            .to_string()
        };
        let sync_refused = failure(rusqlite::ffi::SQLITE_IOERR_FSYNC, "disk I/O error");
        assert_eq!(sync_refused, "ledger database: disk I/O error (SQLite code 1034)");
        let full = failure(rusqlite::ffi::SQLITE_FULL, "database or disk is full");
        assert_eq!(full, "ledger database: database or disk is full");
    }

    /// Every table's and index's shape, as SQLite describes it: what a
    /// query can rely on, whatever text made it. A table's columns in name
    /// order (an added column comes last, and the ledger's SQL names every
    /// column it reads or writes); its indexes with their columns, whether
    /// they are unique, and whether a constraint made them.
    fn shape(path: &std::path::Path) -> Vec<String> {
        let conn = Connection::open(path).unwrap();
        let strings = |sql: &str, name: &str| -> Vec<String> {
            conn.prepare(sql)
                .unwrap()
                .query_map([name], |row| row.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let mut shape = Vec::new();
        let tables = strings(
            "SELECT name FROM sqlite_schema WHERE type = ?1 AND name NOT LIKE 'sqlite_%' ORDER BY name",
            "table",
        );
        for table in tables {
            let mut columns = strings(
                "SELECT name || ' ' || type || ' ' || \"notnull\" || ' ' || \
                 coalesce(dflt_value, '-') || ' ' || pk FROM pragma_table_info(?1)",
                &table,
            );
            columns.sort();
            shape.push(format!("table {table}: {}", columns.join(", ")));
            let indexes = strings(
                "SELECT name || ' unique ' || \"unique\" || ' from ' || origin FROM pragma_index_list(?1) ORDER BY name",
                &table,
            );
            for index in indexes {
                let name = index.split(' ').next().unwrap_or_default();
                let columns = strings("SELECT name FROM pragma_index_info(?1) ORDER BY seqno", name);
                shape.push(format!("  index {index}: {}", columns.join(", ")));
            }
        }
        // Triggers by name and table: what each does is KEY_TOTALS' text,
        // which a past schema cannot have otherwise.
        let triggers = strings(
            "SELECT name || ' on ' || tbl_name FROM sqlite_schema WHERE type = ?1 ORDER BY name",
            "trigger",
        );
        shape.extend(triggers.into_iter().map(|trigger| format!("trigger {trigger}")));
        let version: u32 = conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        shape.push(format!("user_version {version}"));
        shape
    }

    /// The counts each published order keeps (schema version 5) are what
    /// counting its fulfillments and deliveries finds: through each write
    /// HQ makes (a fulfillment recorded before its order, one under a
    /// second key, a repeat, a delivery recorded again with another
    /// outcome), and through repairs by hand with `sqlite3`.
    #[tokio::test]
    async fn each_orders_kept_counts_are_what_its_rows_say() {
        use super::{DeliveryOutcome, PublishedOn};
        use crate::feed::Topic;
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path(), JournalMode::Wal).unwrap();
        let (first, second) = (
            ledger.add_key("first-key", "a team").await.unwrap().key_id,
            ledger.add_key("second-key", "another team").await.unwrap().key_id,
        );
        let key = |id: &str| {
            contracts::IdempotencyKey::derive(&Topic::Orders.arn(), id, Topic::Orders.fulfillment_kind())
                .as_str()
                .to_owned()
        };
        let one = || FulfillmentRequest {
            iridium: 1.try_into().unwrap(),
            magnesite: 1.try_into().unwrap(),
            produced_by: None,
        };
        // Fulfilled before its order is recorded (an emulator delivers
        // before Publish answers).
        ledger.record(&first, Some(&key("m-0")), one()).await.unwrap();
        for n in 0..4 {
            let id = format!("m-{n}");
            ledger
                .record_published("run", &id, Topic::Orders, PublishedOn::Feed, "{}", 2)
                .await
                .unwrap();
        }
        // Under both teams' keys, and repeated under one.
        for caller in [&first, &second, &first] {
            ledger.record(caller, Some(&key("m-1")), one()).await.unwrap();
        }
        let outcomes = [
            ("m-1", "a", DeliveryOutcome::Delivered),
            ("m-1", "b", DeliveryOutcome::Delivered),
            ("m-2", "a", DeliveryOutcome::Rejected),
            // Recorded again with another outcome.
            ("m-2", "a", DeliveryOutcome::Failed),
            ("m-2", "b", DeliveryOutcome::Rejected),
            ("m-3", "a", DeliveryOutcome::Delivered),
        ];
        for (id, subscription, outcome) in outcomes {
            ledger
                .record_delivery(id, subscription, outcome, 1)
                .await
                .unwrap();
        }
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        let counts = |sql: &str| -> Vec<(String, [i64; 5])> {
            let mut statement = conn.prepare(sql).unwrap();
            statement
                .query_map([], |row| {
                    Ok((
                        row.get(0)?,
                        [row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?],
                    ))
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let kept = || {
            counts(
                "SELECT message_id, fulfilled, answered, finished, rejected, failed FROM published ORDER BY message_id",
            )
        };
        // What the reconciliation counted before the counts were kept.
        let counted = || {
            counts(
                "SELECT p.message_id,
                    (SELECT COUNT(*) FROM fulfillments f WHERE f.idempotency_key = p.idempotency_key),
                    (SELECT COUNT(*) + COALESCE(SUM(f.replays), 0) FROM fulfillments f
                     WHERE f.idempotency_key = p.idempotency_key),
                    (SELECT COUNT(*) FROM deliveries d WHERE d.message_id = p.message_id),
                    (SELECT COUNT(*) FROM deliveries d WHERE d.message_id = p.message_id AND d.outcome = 'rejected'),
                    (SELECT COUNT(*) FROM deliveries d WHERE d.message_id = p.message_id AND d.outcome = 'failed')
                 FROM published p ORDER BY p.message_id",
            )
        };
        let as_written = kept();
        assert_eq!(as_written, counted());
        assert_eq!(
            as_written,
            [
                ("m-0".to_owned(), [1, 1, 0, 0, 0]),
                ("m-1".to_owned(), [2, 3, 2, 0, 0]),
                ("m-2".to_owned(), [0, 0, 2, 1, 1]),
                ("m-3".to_owned(), [0, 0, 1, 0, 0]),
            ]
        );
        // Repairs by hand: a fulfillment removed, one moved to another
        // order, a delivery removed and one changed.
        conn.execute_batch(&format!(
            "DELETE FROM fulfillments WHERE key_id = '{second}';
             UPDATE fulfillments SET idempotency_key = '{}' WHERE idempotency_key = '{}';
             DELETE FROM deliveries WHERE message_id = 'm-3';
             UPDATE deliveries SET outcome = 'delivered' WHERE message_id = 'm-2' AND subscription_arn = 'b';",
            key("m-3"),
            key("m-0"),
        ))
        .unwrap();
        let repaired = kept();
        assert_eq!(repaired, counted());
        assert_eq!(repaired[1], ("m-1".to_owned(), [1, 2, 2, 0, 0]));
        assert_eq!(repaired[3], ("m-3".to_owned(), [1, 1, 0, 0, 0]));

        // Orders from before the counts were kept (NULL, as the upgrade
        // leaves them) are counted from their rows: the same reconciliation,
        // and a write to their rows leaves them NULL.
        let before = ledger.reconcile("run").await.unwrap();
        let totals = before.totals;
        assert_eq!(
            (totals.fulfilled, totals.pending, totals.lost),
            (1, 2, 1),
            "{before:?}"
        );
        conn.execute_batch(
            "UPDATE published SET fulfilled = NULL, answered = NULL, finished = NULL, rejected = NULL, failed = NULL
             WHERE message_id IN ('m-1', 'm-2')",
        )
        .unwrap();
        assert_eq!(ledger.reconcile("run").await.unwrap(), before);
        ledger
            .record_delivery("m-1", "c", DeliveryOutcome::Delivered, 1)
            .await
            .unwrap();
        let finished: Option<i64> = conn
            .query_row(
                "SELECT finished FROM published WHERE message_id = 'm-1'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(finished, None);
    }

    /// Every schema a ledger in use may have, as its HQ made it (frozen),
    /// with its version.
    const PAST_SCHEMAS: [(&str, u32, &str); 6] = [
        (
            "the first release",
            0,
            include_str!("schemas/0-first-release.sql"),
        ),
        ("version 1", 1, include_str!("schemas/1.sql")),
        ("version 2", 2, include_str!("schemas/2.sql")),
        ("version 3", 3, include_str!("schemas/3.sql")),
        ("version 4", 4, include_str!("schemas/4.sql")),
        ("version 5", 5, include_str!("schemas/5.sql")),
    ];

    #[tokio::test]
    async fn a_ledger_of_any_past_schema_is_brought_to_a_new_ledgers_schema() {
        let new = tempfile::tempdir().unwrap();
        // A new ledger is made, not upgraded: nothing to say.
        let mut conn = Connection::open(new.path().join(DB_FILE)).unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), None);
        drop(conn);
        drop(Ledger::open(new.path(), JournalMode::Wal).unwrap());
        let fresh = shape(&new.path().join(DB_FILE));
        assert_eq!(
            fresh.last().unwrap(),
            &format!("user_version {}", MIGRATIONS.len())
        );
        let newest = MIGRATIONS.len() as u32;
        for (name, version, schema) in PAST_SCHEMAS {
            let old = tempfile::tempdir().unwrap();
            {
                let mut conn = Connection::open(old.path().join(DB_FILE)).unwrap();
                conn.execute_batch(schema).unwrap();
                conn.execute(
                    "INSERT INTO fulfillments (recorded_at, key_id, idempotency_key, iridium, magnesite)
                     VALUES ('2024-01-01T00:00:00.000Z', 'k', 'order-1', 2, 1)",
                    [],
                )
                .unwrap();
                let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"old-key"));
                conn.execute(
                    "INSERT INTO api_keys (key_digest, key_id, owner, issued_at)
                     VALUES (?1, 'k', 'a team', '2024-01-01T00:00:00.000Z')",
                    [digest],
                )
                .unwrap();
                // What HQ logs: the versions an older ledger went between,
                // once (nothing for one already at the newest).
                let upgrade = (version < newest).then_some(Upgrade {
                    from: version,
                    to: newest,
                });
                assert_eq!(migrate(&mut conn).unwrap(), upgrade, "a ledger of {name}");
                assert_eq!(migrate(&mut conn).unwrap(), None, "a ledger of {name}");
            }
            let upgraded = Ledger::open(old.path(), JournalMode::Wal).unwrap();
            assert_eq!(shape(&old.path().join(DB_FILE)), fresh, "a ledger of {name}");
            // Its keys still accepted: none was revoked before revoking was.
            let key = upgraded.find_key("old-key").await.unwrap().unwrap();
            assert_eq!(
                (key.owner.as_str(), key.revoked_at),
                ("a team", None),
                "a ledger of {name}"
            );
            // Its totals made up from the fulfillments there were.
            let totals = upgraded.grand_totals().await.unwrap();
            assert_eq!(
                (
                    totals.fulfillments,
                    totals.iridium,
                    totals.magnesite,
                    totals.replays
                ),
                (1, 2, 1, 0),
                "a ledger of {name}"
            );
            // The old row is still there, and still a replay of its order.
            let request = FulfillmentRequest {
                iridium: 2.try_into().unwrap(),
                magnesite: 1.try_into().unwrap(),
                produced_by: None,
            };
            let again = upgraded.record("k", Some("order-1"), request).await.unwrap();
            assert!(again.replayed, "a ledger of {name}");
            // And kept since: the old row, its replay, and a new one.
            let request = FulfillmentRequest {
                iridium: 3.try_into().unwrap(),
                magnesite: 0.try_into().unwrap(),
                produced_by: None,
            };
            upgraded.record("k", Some("order-2"), request).await.unwrap();
            let totals = upgraded.grand_totals().await.unwrap();
            assert_eq!(
                (
                    totals.fulfillments,
                    totals.iridium,
                    totals.magnesite,
                    totals.replays
                ),
                (2, 5, 1, 1),
                "a ledger of {name}"
            );
        }
    }

    #[tokio::test]
    async fn each_keys_totals_are_a_count_of_its_fulfillments_whatever_writes_them() {
        let dir = tempfile::tempdir().unwrap();
        let order = |iridium, magnesite| FulfillmentRequest {
            iridium,
            magnesite,
            produced_by: None,
        };
        {
            let ledger = Ledger::open(dir.path(), JournalMode::Wal).unwrap();
            ledger.record("k1", Some("order-1"), order(2, 1)).await.unwrap();
            assert!(
                ledger
                    .record("k1", Some("order-1"), order(2, 1))
                    .await
                    .unwrap()
                    .replayed
            );
            ledger.record("k2", None, order(1, 4)).await.unwrap();
            ledger.record("k2", None, order(0, 3)).await.unwrap();
        }
        // And by hand, as an operator mending the ledger with sqlite3 would:
        // a fulfillment moved to another key, one changed, one removed.
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.execute_batch(
            "UPDATE fulfillments SET key_id = 'k3' WHERE key_id = 'k2' AND magnesite = 4;
             UPDATE fulfillments SET iridium = 7 WHERE idempotency_key = 'order-1';
             DELETE FROM fulfillments WHERE key_id = 'k2' AND magnesite = 3;",
        )
        .unwrap();
        let rows = |sql: &str| -> Vec<(String, i64, i64, i64, i64)> {
            conn.prepare(sql)
                .unwrap()
                .query_map([], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let kept = rows(
            "SELECT key_id, fulfillments, iridium, magnesite, replays FROM key_totals
             WHERE fulfillments > 0 ORDER BY key_id",
        );
        let counted = rows(
            "SELECT key_id, COUNT(*), SUM(iridium), SUM(magnesite), SUM(replays) FROM fulfillments
             GROUP BY key_id ORDER BY key_id",
        );
        assert_eq!(kept, counted);
        assert_eq!(
            kept,
            [("k1".into(), 1, 7, 1, 1), ("k3".into(), 1, 1, 4, 0)],
            "{kept:?}"
        );
    }

    /// Both connections, in either journal mode, sort in memory: HQ's
    /// image has no temporary directory.
    #[tokio::test]
    async fn temporaries_are_kept_in_memory_on_every_connection() {
        const MEMORY: i64 = 2;
        for mode in [JournalMode::Wal, JournalMode::Delete] {
            let dir = tempfile::tempdir().unwrap();
            let ledger = Ledger::open(dir.path(), mode).unwrap();
            let temp_store = |conn: &mut Connection| {
                conn.query_row("PRAGMA temp_store", [], |row| row.get::<_, i64>(0))
                    .map_err(LedgerError::from)
            };
            assert_eq!(ledger.write(temp_store).await.unwrap(), MEMORY, "{mode:?}");
            assert_eq!(ledger.read(temp_store).await.unwrap(), MEMORY, "{mode:?}");
        }
    }

    #[test]
    fn a_ledger_written_by_a_newer_hq_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Ledger::open(dir.path(), JournalMode::Wal).unwrap());
        let newer = MIGRATIONS.len() as u32 + 1;
        Connection::open(dir.path().join(DB_FILE))
            .unwrap()
            .pragma_update(None, "user_version", newer)
            .unwrap();
        match Ledger::open(dir.path(), JournalMode::Wal) {
            Err(LedgerError::NewerSchema { found, known }) => {
                assert_eq!((found, known), (newer, newer - 1));
            }
            other => panic!("opened a newer ledger: {other:?}"),
        }
    }

    #[test]
    fn a_second_hq_on_the_same_data_directory_is_refused_until_the_first_closes() {
        let dir = tempfile::tempdir().unwrap();
        let first = Ledger::open(dir.path(), JournalMode::Wal).unwrap();
        let second = Ledger::open(dir.path(), JournalMode::Delete);
        let said = second.as_ref().map(|_| ()).unwrap_err().to_string();
        assert!(
            matches!(second, Err(LedgerError::InUse { .. })) && said.contains("another HQ"),
            "{said}"
        );
        drop(first);
        assert!(Ledger::open(dir.path(), JournalMode::Wal).is_ok());
    }

    #[tokio::test]
    async fn a_closed_ledger_is_whole_in_its_one_file() {
        for checkpoint in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let ledger = Ledger::open(dir.path(), JournalMode::Wal).unwrap();
            for i in 0..3 {
                ledger.add_key(&format!("key-{i}"), "owner").await.unwrap();
            }
            // A report has used the reports' connection.
            assert_eq!(ledger.totals().await.unwrap().len(), 3);
            if checkpoint {
                ledger.checkpoint().await.unwrap();
            } else {
                drop(ledger);
            }
            // The database file alone, as a copy of it would be.
            let copy = tempfile::tempdir().unwrap();
            std::fs::copy(dir.path().join(DB_FILE), copy.path().join(DB_FILE)).unwrap();
            let conn = Connection::open(copy.path().join(DB_FILE)).unwrap();
            let keys: u32 = conn
                .query_row("SELECT COUNT(*) FROM api_keys", [], |row| row.get(0))
                .unwrap();
            assert_eq!(keys, 3, "checkpointed first: {checkpoint}");
        }
    }

    #[test]
    fn a_burst_of_calls_waits_for_the_connection_not_on_a_thread_each() {
        // The threads this test's own runtime starts, not the process's:
        // the tests running beside it start threads of their own, and on a
        // busy machine more of them overlap this one.
        let started = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&started);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .on_thread_start(move || {
                counted.fetch_add(1, Ordering::SeqCst);
            })
            .build()
            .unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let ledger = Ledger::open(dir.path(), JournalMode::Wal).unwrap();
            let mut calls = tokio::task::JoinSet::new();
            for i in 0..200 {
                let ledger = ledger.clone();
                calls.spawn(async move {
                    ledger.add_key(&format!("key-{i}"), "owner").await.unwrap();
                    ledger.totals().await.unwrap();
                });
            }
            calls.join_all().await;
        });
        // One a connection, and a few more: a thread that has let its
        // connection go may not be idle yet when the next call starts, and
        // then the pool starts another (3 to 8 on a busy 2-core machine). A
        // thread a call would be hundreds (over 200 when tried).
        let started = started.load(Ordering::SeqCst);
        assert!(started < 32, "{started} threads started for 400 calls");
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
