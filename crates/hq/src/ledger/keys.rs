//! API keys in the ledger: stored as digests, never as themselves, and
//! revoked by key id (a revoked key stays, so its totals and its
//! fulfillments in the reconciliation stay too). A key issued to succeed
//! another shares its idempotency keys (`scope_key_id`).

use super::{Ledger, LedgerError, now};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// A key as the ledger knows it; the key itself is never stored, only its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    /// A public name for the key: the first hex digits of its SHA-256.
    pub key_id: String,
    /// Who it was issued to.
    pub owner: String,
    /// When HQ's admin revoked it (as the ledger writes times); `None` while
    /// it is accepted.
    pub revoked_at: Option<String>,
}

/// The digest under which a key is stored; the key itself never is.
fn digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// How many hex digits of the digest a key id has.
pub const KEY_ID_LEN: usize = 12;

/// The columns [`key_info`] reads, in its order.
const KEY_INFO_COLUMNS: &str = "key_id, owner, revoked_at";

/// A row of [`KEY_INFO_COLUMNS`].
fn key_info(row: &rusqlite::Row<'_>) -> rusqlite::Result<KeyInfo> {
    Ok(KeyInfo {
        key_id: row.get(0)?,
        owner: row.get(1)?,
        revoked_at: row.get(2)?,
    })
}

impl Ledger {
    /// Stores `key` for `owner` (idempotent: a known key keeps its owner,
    /// and a revoked one stays revoked).
    pub async fn add_key(&self, key: &str, owner: &str) -> Result<KeyInfo, LedgerError> {
        // With no predecessor to find, the key is always there after.
        self.store_key(key, owner, None)
            .await?
            .ok_or(LedgerError::Sqlite(rusqlite::Error::QueryReturnedNoRows))
    }

    /// Stores `key` for `owner` as the successor of the key with id
    /// `predecessor` (for a rotation): a repeat of an order fulfilled under
    /// either, or under any key in their line, is recognised under the
    /// other. `None` when no key has that id.
    pub async fn add_successor_key(
        &self,
        key: &str,
        owner: &str,
        predecessor: &str,
    ) -> Result<Option<KeyInfo>, LedgerError> {
        self.store_key(key, owner, Some(predecessor.to_owned())).await
    }

    /// Stores `key` for `owner`, in the line of the key with id
    /// `predecessor` when one is named, and reads it back; `None` when the
    /// predecessor named is no key's.
    async fn store_key(
        &self,
        key: &str,
        owner: &str,
        predecessor: Option<String>,
    ) -> Result<Option<KeyInfo>, LedgerError> {
        let key_digest = digest(key);
        let key_id = key_digest[..KEY_ID_LEN].to_owned();
        let owner = owner.to_owned();
        self.write(move |conn| {
            conn.execute(
                "INSERT OR IGNORE INTO api_keys (key_digest, key_id, owner, issued_at, scope_key_id)
                 SELECT ?1, ?2, ?3, ?4,
                        (SELECT COALESCE(scope_key_id, key_id) FROM api_keys WHERE key_id = ?5 LIMIT 1)
                 WHERE ?5 IS NULL OR EXISTS (SELECT 1 FROM api_keys WHERE key_id = ?5)",
                params![key_digest, key_id, owner, now(), predecessor],
            )?;
            key_by_digest(conn, &key_digest)
        })
        .await
    }

    /// The key's record, revoked or not, or `None` for a key HQ never issued.
    pub async fn find_key(&self, key: &str) -> Result<Option<KeyInfo>, LedgerError> {
        let key_digest = digest(key);
        self.with(move |conn| key_by_digest(conn, &key_digest)).await
    }

    /// Revokes the key with `key_id` from now on (a key revoked before keeps
    /// its time), or `None` when no key has that id. Says whether this call
    /// revoked it (`false`: it was already).
    pub async fn revoke_key(&self, key_id: &str) -> Result<Option<(KeyInfo, bool)>, LedgerError> {
        let key_id = key_id.to_owned();
        self.write(move |conn| {
            let revoked_now = conn.execute(
                "UPDATE api_keys SET revoked_at = ?2 WHERE key_id = ?1 AND revoked_at IS NULL",
                params![key_id, now()],
            )? > 0;
            Ok(conn
                .query_row(
                    &format!("SELECT {KEY_INFO_COLUMNS} FROM api_keys WHERE key_id = ?1 LIMIT 1"),
                    params![key_id],
                    key_info,
                )
                .optional()?
                .map(|info| (info, revoked_now)))
        })
        .await
    }
}

/// The record of the key whose digest is `key_digest`, if any.
fn key_by_digest(conn: &rusqlite::Connection, key_digest: &str) -> Result<Option<KeyInfo>, LedgerError> {
    Ok(conn
        .query_row(
            &format!("SELECT {KEY_INFO_COLUMNS} FROM api_keys WHERE key_digest = ?1"),
            params![key_digest],
            key_info,
        )
        .optional()?)
}
