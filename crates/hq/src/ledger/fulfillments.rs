//! Fulfillments in the ledger: recording one (idempotency keys counted once)
//! and the totals per key (the workshop's aggregator).

use super::keys::KeyInfo;
use super::{Ledger, LedgerError, now};
use contracts::{FulfillmentRequest, Producer};
use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};
use serde::Serialize;

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

impl Recorded {
    /// Its quantities, as a request for them (written out field by field,
    /// so that a new resource's field is named here by the compiler).
    pub fn quantities(&self) -> FulfillmentRequest {
        FulfillmentRequest {
            iridium: self.iridium,
            magnesite: self.magnesite,
            produced_by: None,
        }
    }
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
    /// When HQ's admin revoked the key; `null` while it is accepted.
    pub revoked_at: Option<String>,
}

impl Ledger {
    /// Records a fulfillment for `key_id`. With an idempotency key seen
    /// before (for this API key, or one of its line), nothing new is counted: the first record is
    /// returned as a replay, with its own quantities even where the repeat
    /// asked for others: the same order, gathered under another
    /// configuration (docs/hq.md, "How to reach each part").
    pub async fn record(
        &self,
        key_id: &str,
        idempotency_key: Option<&str>,
        request: FulfillmentRequest,
    ) -> Result<Recorded, LedgerError> {
        let key_id = key_id.to_owned();
        let idempotency_key = idempotency_key.map(str::to_owned);
        // Every field by name: a resource added to the request does not
        // build here until the ledger stores it (its column, the totals,
        // the timeline), rather than being answered 200 and dropped.
        let FulfillmentRequest {
            iridium,
            magnesite,
            produced_by,
        } = request;
        self.write(move |conn| {
            // The write lock from the start: a deferred transaction reads
            // first, and its upgrade to writing fails at once, without the
            // busy timeout, if another connection wrote in between.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Some(idem) = &idempotency_key
                && let Some(replay) = replay(&tx, &key_id, idem)?
            {
                tx.commit()?;
                return Ok(replay);
            }
            tx.execute(
                "INSERT INTO fulfillments (recorded_at, key_id, idempotency_key, iridium, magnesite, produced_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    now(),
                    key_id,
                    idempotency_key,
                    iridium,
                    magnesite,
                    produced_by.map(Producer::as_str)
                ],
            )?;
            let id = tx.last_insert_rowid();
            tx.commit()?;
            Ok(Recorded {
                fulfillment_id: id,
                iridium,
                magnesite,
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
            revoked_at: key.revoked_at.clone(),
            ..KeyTotals::default()
        }))
    }

    async fn totals_where(&self, key_id: Option<String>) -> Result<Vec<KeyTotals>, LedgerError> {
        self.read(move |conn| {
            let mut statement = conn.prepare(
                // A row per key, kept by the ledger's triggers (`KEY_TOTALS`).
                "SELECT k.key_id, k.owner, COALESCE(t.fulfillments, 0), COALESCE(t.iridium, 0),
                        COALESCE(t.magnesite, 0), COALESCE(t.replays, 0), k.revoked_at
                 FROM api_keys k LEFT JOIN key_totals t ON t.key_id = k.key_id
                 WHERE ?1 IS NULL OR k.key_id = ?1
                 ORDER BY k.issued_at, k.key_id",
            )?;
            let rows = statement.query_map(params![key_id], |row| {
                Ok(KeyTotals {
                    key_id: row.get(0)?,
                    owner: row.get(1)?,
                    fulfillments: row.get(2)?,
                    iridium: row.get(3)?,
                    magnesite: row.get(4)?,
                    replays: row.get(5)?,
                    revoked_at: row.get(6)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }
}

/// The earlier fulfillment under `idem` for `key_id` (or a key of its
/// line), counted as a replay, or `None` when the key is new. A repeat that asks for other quantities
/// is a replay too: the services derive the key from the SNS message, so it
/// is the same order, gathered again under another configuration (a
/// monolith whose `STRANGLED` changed between SNS' attempts gathers no
/// iridium the second time). The first fulfillment stands. Refusing the
/// repeat would have SNS retry an order already fulfilled until it gave up,
/// and counting it would fulfil the order twice.
fn replay(tx: &Transaction<'_>, key_id: &str, idem: &str) -> Result<Option<Recorded>, LedgerError> {
    // Under this key, or under any key of its line: one it succeeds, or
    // one that succeeds it (`scope_key_id`), so a rotation counts no order
    // twice. By the idempotency key's index first: a handful of rows.
    let earlier: Option<(i64, u32, u32)> = tx
        .query_row(
            "SELECT f.id, f.iridium, f.magnesite FROM fulfillments f
             WHERE f.idempotency_key = ?2
               AND (f.key_id = ?1 OR f.key_id IN (
                   SELECT k.key_id FROM api_keys k, api_keys me
                   WHERE me.key_id = ?1
                     AND COALESCE(k.scope_key_id, k.key_id) = COALESCE(me.scope_key_id, me.key_id)))
             ORDER BY f.id LIMIT 1",
            params![key_id, idem],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()?;
    let Some((id, iridium, magnesite)) = earlier else {
        return Ok(None);
    };
    tx.execute(
        "UPDATE fulfillments SET replays = replays + 1 WHERE id = ?1",
        params![id],
    )?;
    Ok(Some(Recorded {
        fulfillment_id: id,
        iridium,
        magnesite,
        replayed: true,
    }))
}
