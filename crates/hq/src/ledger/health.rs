//! Whether the ledger can record now, for HQ's health check: the outcome of
//! the last write (a fulfillment, a published order, a delivery's outcome,
//! a key), and of a small probe write when nothing has written for a while
//! ([`Ledger::probe_if_idle`]). The health check itself never touches the
//! disk: it reads what the writes found.
//!
//! Only a failure of the storage counts (read-only, full, I/O error, locked,
//! corrupt, its files deleted or replaced): an idempotency conflict or a
//! bug in one query is no reason to take the task out of its load balancer.
//!
//! A probe that wrote its page also asks the file system for room for
//! orders ([`ROOM_TO_RECORD`]): an order writes several pages, and on a
//! disk with room for one page the probe answered 200 between orders that
//! all failed, so the health check flapped while every order was refused.

use super::{Ledger, LedgerError};
use rusqlite::ErrorCode;
use rusqlite::TransactionBehavior;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The free space a probe asks for where the ledger is, unless told
/// otherwise: an order's commit writes about five pages (about 20 KB of
/// WAL), so room for some fifty orders.
pub const ROOM_TO_RECORD: u64 = 1024 * 1024;

/// What the writes found, shared by every clone of the ledger.
#[derive(Debug)]
pub(super) struct Health {
    /// Set when a write failed for want of storage, cleared when one succeeds.
    failing: AtomicBool,
    /// Set by every write that succeeded, cleared by the prober: such a
    /// write since its last look made a probe needless, unless a failure
    /// came after it.
    wrote: AtomicBool,
    /// Why the last failing write failed.
    reason: Mutex<String>,
    /// The free space, in bytes, a probe asks for ([`ROOM_TO_RECORD`]).
    room_to_record: AtomicU64,
}

impl Default for Health {
    /// Recording, as far as anyone knows yet.
    fn default() -> Self {
        Self {
            failing: AtomicBool::new(false),
            wrote: AtomicBool::new(false),
            reason: Mutex::default(),
            room_to_record: AtomicU64::new(ROOM_TO_RECORD),
        }
    }
}

impl Health {
    /// Notes what came of a write (a probe's too), with the writer's
    /// connection still held (so in the order of the writes). On the order
    /// path this is two atomic operations (no lock, no I/O) unless the
    /// outcome changes the health.
    pub(super) fn note_write<T>(&self, outcome: &Result<T, LedgerError>) {
        if outcome.is_ok() {
            self.wrote.store(true, Ordering::Relaxed);
        }
        match outcome {
            Ok(_) => {
                if self.failing.load(Ordering::Relaxed) && self.failing.swap(false, Ordering::SeqCst) {
                    // A warning, as the failure was an error: where only
                    // warnings show (the launcher's console), the end of
                    // the failure shows too.
                    tracing::warn!("the ledger records again: HQ's health check answers 200");
                }
            }
            Err(error) if is_storage_failure(error) => {
                *crate::feed::lock_ignoring_poison(&self.reason) = error.to_string();
                if !self.failing.swap(true, Ordering::SeqCst) {
                    tracing::error!(%error, "the ledger cannot record: HQ's health check answers 503 until it can");
                }
            }
            Err(_) => {}
        }
    }
}

/// Whether `error` says the ledger's storage cannot take writes now (as
/// opposed to a write that was wrong, which the next one need not be).
pub(super) fn is_storage_failure(error: &LedgerError) -> bool {
    let error = match error {
        LedgerError::Sqlite(error) => error,
        LedgerError::NoRoom { .. } | LedgerError::Replaced { .. } => return true,
        _ => return false,
    };
    matches!(
        error.sqlite_error_code(),
        Some(
            ErrorCode::ReadOnly
                | ErrorCode::DiskFull
                | ErrorCode::SystemIoFailure
                | ErrorCode::CannotOpen
                | ErrorCode::PermissionDenied
                | ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::DatabaseCorrupt
                | ErrorCode::NotADatabase
                | ErrorCode::FileLockingProtocolFailed
                | ErrorCode::NoLargeFileSupport
        )
    )
}

impl Ledger {
    /// Why the ledger cannot record, if the last write (or probe) failed
    /// for want of storage; `None` while it records. Reads memory only.
    pub fn cannot_record(&self) -> Option<String> {
        if !self.health.failing.load(Ordering::SeqCst) {
            return None;
        }
        Some(crate::feed::lock_ignoring_poison(&self.health.reason).clone())
    }

    /// Probes the ledger with a write if nothing has written since the last
    /// call, so that its health is known when no orders come: at start,
    /// when idle, and once the load balancer, seeing the health check fail,
    /// sends it no more orders. While the ledger is failing it always
    /// probes, so that a recovery shows at the next call, not the one after.
    pub async fn probe_if_idle(&self) {
        let wrote = self.health.wrote.swap(false, Ordering::Relaxed);
        if !wrote || self.health.failing.load(Ordering::SeqCst) {
            // Noted in the health; nothing else to do with it here.
            let _ = self.probe().await;
            // The probe's own write is not one since this look.
            self.health.wrote.store(false, Ordering::Relaxed);
        }
    }

    /// One small write through the same connection, journal and sync as a
    /// fulfillment's commit: the schema version is written back unchanged.
    /// SQLite still writes the header page (a page in the WAL and its sync),
    /// so a read-only or failing disk fails it as it fails an order; no
    /// table is added for it (a new table is a schema version, which an
    /// older HQ would refuse to open). Then the file system must have room
    /// for orders, not only for that page ([`ROOM_TO_RECORD`]).
    /// Its outcome is noted as every write's is.
    pub async fn probe(&self) -> Result<(), LedgerError> {
        let room_to_record = self.health.room_to_record.load(Ordering::Relaxed);
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let version: u32 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
            tx.pragma_update(None, "user_version", version)?;
            tx.commit()?;
            has_room(conn, room_to_record)
        })
        .await
    }

    /// For tests: the free space a probe asks for, in bytes, instead of
    /// [`ROOM_TO_RECORD`] (`u64::MAX`: a disk that is always too full).
    #[doc(hidden)]
    pub fn set_room_to_record(&self, bytes: u64) {
        self.health.room_to_record.store(bytes, Ordering::Relaxed);
    }

    /// For tests: makes the writer's connection refuse every write as
    /// SQLite refuses one on a read-only database (`PRAGMA query_only`,
    /// SQLITE_READONLY from the engine itself, through the same error path
    /// as a disk that cannot be written), or write again with `false`.
    #[doc(hidden)]
    pub async fn set_query_only(&self, refuse_writes: bool) -> Result<(), LedgerError> {
        self.with(move |conn| {
            conn.pragma_update(None, "query_only", refuse_writes)?;
            Ok(())
        })
        .await
    }
}

/// Whether the file system under `conn`'s database has `wanted` bytes free
/// for an unprivileged writer. When it cannot say (no file, no `statvfs`),
/// the write that just succeeded is taken as the answer.
fn has_room(conn: &rusqlite::Connection, wanted: u64) -> Result<(), LedgerError> {
    let Some(stats) = conn.path().and_then(|path| rustix::fs::statvfs(path).ok()) else {
        return Ok(());
    };
    let free = stats.f_bavail.saturating_mul(stats.f_frsize);
    if free < wanted {
        return Err(LedgerError::NoRoom { free, wanted });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{LedgerError, is_storage_failure};
    use rusqlite::ffi;

    fn sqlite(code: i32) -> LedgerError {
        LedgerError::Sqlite(rusqlite::Error::SqliteFailure(ffi::Error::new(code), None))
    }

    #[test]
    fn a_full_read_only_or_failing_disk_is_a_storage_failure_a_wrong_write_is_not() {
        for code in [
            ffi::SQLITE_FULL,
            ffi::SQLITE_READONLY,
            ffi::SQLITE_IOERR_WRITE,
            ffi::SQLITE_IOERR_FSYNC,
            ffi::SQLITE_CANTOPEN,
            ffi::SQLITE_BUSY,
            ffi::SQLITE_CORRUPT,
        ] {
            assert!(is_storage_failure(&sqlite(code)), "{code}");
        }
        let no_room = LedgerError::NoRoom {
            free: 8192,
            wanted: super::ROOM_TO_RECORD,
        };
        assert!(is_storage_failure(&no_room));
        for error in [
            sqlite(ffi::SQLITE_CONSTRAINT_UNIQUE),
            sqlite(ffi::SQLITE_MISMATCH),
            LedgerError::Unavailable("panicked".into()),
        ] {
            assert!(!is_storage_failure(&error), "{error}");
        }
    }
}
