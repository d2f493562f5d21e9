//! What the dashboard charts from the ledger: per time bucket, how much of
//! each resource the monolith gathered itself and how much came from its
//! microservice through the glue hook; and how long orders took from being
//! published to being fulfilled.

use super::{Ledger, LedgerError, timestamp};
use contracts::{Producer, Resource};
use rusqlite::params;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How much of one resource each producer made: units in a bucket or a
/// run, or fulfillments in [`Recent::now`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Sources {
    /// Gathered by the monolith itself.
    pub monolith: u64,
    /// Produced by the resource's microservice, through the glue hook.
    pub microservice: u64,
    /// Recorded without `produced_by` (the workshop's clients).
    pub unattributed: u64,
}

/// Who made a fulfillment, as [`Sources`] counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Gathered by the monolith itself.
    Monolith,
    /// Produced by the resource's microservice, through the glue hook.
    Microservice,
    /// Recorded without `produced_by` (the workshop's clients).
    Unattributed,
}

impl Source {
    /// Who made a fulfillment whose `produced_by` the ledger holds as
    /// `produced_by` (`None`: not said).
    pub(super) fn named(produced_by: Option<&str>) -> Self {
        match produced_by.and_then(Producer::from_name) {
            Some(Producer::Monolith) => Self::Monolith,
            Some(_) => Self::Microservice,
            None => Self::Unattributed,
        }
    }
}

impl Sources {
    /// Adds `count` made by `source`.
    fn add(&mut self, source: Source, count: u64) {
        match source {
            Source::Monolith => self.monolith += count,
            Source::Microservice => self.microservice += count,
            Source::Unattributed => self.unattributed += count,
        }
    }
}

/// One `T` per resource, each under its resource's name in the JSON.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PerResource<T> {
    /// Iridium's.
    pub iridium: T,
    /// Magnesite's.
    pub magnesite: T,
}

impl<T> PerResource<T> {
    /// `resource`'s.
    pub fn resource(&self, resource: Resource) -> &T {
        match resource {
            Resource::Iridium => &self.iridium,
            Resource::Magnesite => &self.magnesite,
        }
    }

    /// `resource`'s, to change.
    fn resource_mut(&mut self, resource: Resource) -> &mut T {
        match resource {
            Resource::Iridium => &mut self.iridium,
            Resource::Magnesite => &mut self.magnesite,
        }
    }
}

/// Units of each resource fulfilled, by who produced them.
pub type Produced = PerResource<Sources>;

impl Produced {
    /// Adds a fulfillment's (or a group of them) `iridium` and `magnesite`,
    /// made by `source`.
    pub(super) fn add(&mut self, source: Source, iridium: u64, magnesite: u64) {
        self.iridium.add(source, iridium);
        self.magnesite.add(source, magnesite);
    }
}

/// How many of a resource's latest fulfillments [`Recent::now`] counts: at
/// the launcher's default rates (0.5 orders/s on each topic a stage feeds),
/// about its last 20 s.
pub const RECENT_FULFILLMENTS: u32 = 10;

/// How recent a fulfillment [`Recent::now`] counts is: no older than this
/// before the figures were read. Older ones say who produced a resource
/// before, not now (the platform stopped, or between stages).
pub const NOW_WINDOW: Duration = Duration::from_secs(60);

/// Who produces a resource now. The view's share, over an hour or a day,
/// lags a stage switch by as much.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Recent {
    /// Of its last [`RECENT_FULFILLMENTS`] fulfillments, those recorded in
    /// the last [`NOW_WINDOW`], how many each producer made (each counted
    /// once, whatever its units and repeats); all 0 with none that recent.
    pub now: Sources,
    /// Its newest fulfillment in the view, up to when the figures were read
    /// (one recorded later, after a clock stepped back, is left out, of the
    /// buckets too); `None` with none in the view.
    pub newest: Option<Newest>,
}

/// A resource's newest fulfillment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Newest {
    /// When it was recorded, as the ledger writes times.
    pub at: String,
    /// Who made it.
    pub source: Source,
}

/// One time bucket of the timeline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Bucket {
    /// Where the bucket starts, in seconds since the Unix epoch.
    pub start: u64,
    /// What was fulfilled in the bucket (`iridium` and `magnesite` beside
    /// `start` in the JSON).
    #[serde(flatten)]
    pub produced: Produced,
}

/// Fulfilled resources per time bucket, oldest first, every bucket present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Timeline {
    /// The width of a bucket, in seconds.
    pub bucket_secs: u64,
    /// The buckets; the last one is the current, partial one.
    pub buckets: Vec<Bucket>,
    /// Per resource, who produces it now.
    pub recent: PerResource<Recent>,
    /// The most fulfillments a resource's [`Recent::now`] counts
    /// ([`RECENT_FULFILLMENTS`]): fewer are all of the last minute's.
    pub recent_at_most: u32,
}

/// Publish-to-fulfilment latency of the orders of one topic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Latency {
    /// Orders measured (published in the window, fulfilled).
    pub orders: u64,
    /// Median, in milliseconds.
    pub p50_ms: u64,
    /// 95th percentile, in milliseconds.
    pub p95_ms: u64,
    /// Slowest, in milliseconds.
    pub max_ms: u64,
}

impl Latency {
    /// The figures of `millis` (any order).
    fn of(mut millis: Vec<u64>) -> Self {
        millis.sort_unstable();
        let at = |fraction: f64| {
            let last = millis.len().saturating_sub(1);
            // Nearest rank.
            let index = ((last as f64) * fraction).round() as usize;
            millis.get(index).copied().unwrap_or(0)
        };
        Self {
            orders: millis.len() as u64,
            p50_ms: at(0.5),
            p95_ms: at(0.95),
            max_ms: millis.last().copied().unwrap_or(0),
        }
    }
}

/// Seconds since the Unix epoch of `at` (0 before it).
fn epoch_secs(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Ledger {
    /// The `buckets` buckets of `bucket` each up to `now`, the last one holding `now`.
    pub async fn timeline(
        &self,
        now: SystemTime,
        bucket: Duration,
        buckets: u64,
    ) -> Result<Timeline, LedgerError> {
        let width = bucket.as_secs().max(1);
        let first = (epoch_secs(now) / width).saturating_sub(buckets.saturating_sub(1)) * width;
        let since = timestamp(UNIX_EPOCH + Duration::from_secs(first));
        let until = timestamp(now);
        let now_since = timestamp(now.checked_sub(NOW_WINDOW).unwrap_or(UNIX_EPOCH));
        let (rows, latest) = self
            .read(move |conn| {
                // The range uses the index on recorded_at; the bucket is
                // computed per row. Up to `now`: one recorded later (a
                // clock stepped back) is no bar of this view, nor "now".
                let mut statement = conn.prepare_cached(
                    "SELECT CAST(strftime('%s', recorded_at) AS INTEGER) / ?2 AS bucket, produced_by,
                            SUM(iridium), SUM(magnesite)
                     FROM fulfillments WHERE recorded_at >= ?1 AND recorded_at <= ?3
                     GROUP BY bucket, produced_by",
                )?;
                let rows = statement.query_map(params![since, width, until], |row| {
                    Ok((
                        row.get::<_, u64>(0)?,
                        row.get::<_, Option<String>>(1)?,
                        row.get::<_, u64>(2)?,
                        row.get::<_, u64>(3)?,
                    ))
                })?;
                let rows = rows.collect::<Result<Vec<_>, _>>()?;
                // In the same read, so the two agree. Newest first down the
                // index on recorded_at, reading at most the view's rows, as
                // the buckets' query does.
                let mut latest = Vec::new();
                for &resource in Resource::ALL {
                    let mut statement = conn.prepare_cached(match resource {
                        Resource::Iridium => {
                            "SELECT produced_by, recorded_at FROM fulfillments
                             WHERE recorded_at >= ?1 AND recorded_at <= ?3 AND iridium > 0
                             ORDER BY recorded_at DESC LIMIT ?2"
                        }
                        Resource::Magnesite => {
                            "SELECT produced_by, recorded_at FROM fulfillments
                             WHERE recorded_at >= ?1 AND recorded_at <= ?3 AND magnesite > 0
                             ORDER BY recorded_at DESC LIMIT ?2"
                        }
                    })?;
                    let params = params![since, RECENT_FULFILLMENTS, until];
                    let found = statement.query_map(params, |row| {
                        Ok((row.get::<_, Option<String>>(0)?, row.get::<_, String>(1)?))
                    })?;
                    latest.push((resource, found.collect::<Result<Vec<_>, _>>()?));
                }
                Ok((rows, latest))
            })
            .await?;
        let mut recent = PerResource::<Recent>::default();
        for (resource, found) in latest {
            let recent = recent.resource_mut(resource);
            for (produced_by, at) in &found {
                // The ledger's times sort as text (one format, to the millisecond).
                if *at >= now_since {
                    recent.now.add(Source::named(produced_by.as_deref()), 1);
                }
            }
            recent.newest = found.into_iter().next().map(|(produced_by, at)| Newest {
                at,
                source: Source::named(produced_by.as_deref()),
            });
        }
        let mut by_start: BTreeMap<u64, Bucket> = (0..buckets)
            .map(|i| first + i * width)
            .map(|start| {
                (
                    start,
                    Bucket {
                        start,
                        ..Bucket::default()
                    },
                )
            })
            .collect();
        for (index, producer, iridium, magnesite) in rows {
            // The query's range is the buckets' own: none should miss.
            let Some(bucket) = by_start.get_mut(&(index * width)) else {
                continue;
            };
            let source = Source::named(producer.as_deref());
            bucket.produced.add(source, iridium, magnesite);
        }
        Ok(Timeline {
            bucket_secs: width,
            buckets: by_start.into_values().collect(),
            recent,
            recent_at_most: RECENT_FULFILLMENTS,
        })
    }

    /// Per topic, how long the orders of run `run_id` published since
    /// `since` took from publication to their first fulfillment.
    pub async fn latency(
        &self,
        run_id: &str,
        since: SystemTime,
    ) -> Result<BTreeMap<String, Latency>, LedgerError> {
        let (run_id, since) = (run_id.to_owned(), timestamp(since));
        let rows = self
            .read(move |conn| {
                let mut statement = conn.prepare_cached(
                    "SELECT p.topic,
                            CAST(ROUND((julianday(MIN(f.recorded_at)) - julianday(p.published_at)) * 86400000) AS INTEGER)
                     FROM published p JOIN fulfillments f ON f.idempotency_key = p.idempotency_key
                     WHERE p.run_id = ?1 AND p.published_at >= ?2
                     GROUP BY p.message_id",
                )?;
                let rows = statement.query_map(params![run_id, since], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
                })?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await?;
        let mut millis: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for (topic, ms) in rows {
            millis
                .entry(topic)
                .or_default()
                .push(u64::try_from(ms).unwrap_or(0));
        }
        Ok(millis
            .into_iter()
            .map(|(topic, ms)| (topic, Latency::of(ms)))
            .collect())
    }
}

/// Resources fulfilled over every key (what `GET /totals` sums to).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Keys issued or given, revoked ones included.
    pub keys: u64,
    /// Of those, the keys HQ's admin revoked.
    pub revoked_keys: u64,
    /// Fulfillments counted.
    pub fulfillments: u64,
    /// Units of iridium.
    pub iridium: u64,
    /// Units of magnesite.
    pub magnesite: u64,
    /// Repeats absorbed by idempotency keys.
    pub replays: u64,
}

impl Ledger {
    /// Totals over every key: the sum of the keys' totals, which the
    /// ledger's triggers keep (`KEY_TOTALS`), so a row per key is read,
    /// not every fulfillment.
    pub async fn grand_totals(&self) -> Result<Totals, LedgerError> {
        self.read(|conn| {
            Ok(conn.query_row(
                "SELECT (SELECT COUNT(*) FROM api_keys),
                        (SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NOT NULL),
                        COALESCE(SUM(fulfillments), 0), COALESCE(SUM(iridium), 0),
                        COALESCE(SUM(magnesite), 0), COALESCE(SUM(replays), 0)
                 FROM key_totals",
                [],
                |row| {
                    Ok(Totals {
                        keys: row.get(0)?,
                        revoked_keys: row.get(1)?,
                        fulfillments: row.get(2)?,
                        iridium: row.get(3)?,
                        magnesite: row.get(4)?,
                        replays: row.get(5)?,
                    })
                },
            )?)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        assert_eq!(Latency::of(vec![]), Latency::default());
        let latency = Latency::of((1..=100).rev().collect());
        assert_eq!(
            (latency.orders, latency.p50_ms, latency.p95_ms, latency.max_ms),
            (100, 51, 95, 100)
        );
    }
}
