//! API keys in the ledger: stored as digests, never as themselves.

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
}

/// The digest under which a key is stored; the key itself never is.
fn digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl Ledger {
    /// Stores `key` for `owner` (idempotent: a known key keeps its owner).
    pub async fn add_key(&self, key: &str, owner: &str) -> Result<KeyInfo, LedgerError> {
        let key_digest = digest(key);
        let key_id = key_digest[..12].to_owned();
        let owner = owner.to_owned();
        self.write(move |conn| {
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
}
