//! The live dashboard's data (`GET /dashboard/data`, admin): per topic what
//! the feed did and how its orders ended, publish-to-fulfilment latency, the
//! totals over every key, and the strangling over time (per resource, units
//! the monolith gathered against units its microservice produced).
//!
//! The page (`/dashboard`, [`crate::portal`]) polls it and draws the charts.

use crate::feed::{Topic, TopicStats};
use crate::ledger::{Latency, LedgerError, OrderCounts, Reconciliation, Timeline, Totals};
use crate::state::Hq;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// Latency is of the orders published this recently: what it is now.
const LATENCY_WINDOW: Duration = Duration::from_secs(10 * 60);

/// The span the dashboard shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum View {
    /// The last hour, per minute.
    #[default]
    Hour,
    /// The last day, per 15 minutes.
    Day,
}

impl View {
    /// The width of a bucket and how many buckets the view has.
    fn buckets(self) -> (Duration, u64) {
        match self {
            Self::Hour => (Duration::from_secs(60), 60),
            Self::Day => (Duration::from_secs(15 * 60), 96),
        }
    }

    /// The span the view covers.
    fn span(self) -> Duration {
        let (width, count) = self.buckets();
        width * u32::try_from(count).unwrap_or(u32::MAX)
    }
}

/// One topic on the dashboard.
#[derive(Debug, Clone, Serialize)]
pub struct TopicRow {
    /// The topic's name.
    pub name: &'static str,
    /// The local feed's delivery counters since HQ started (published,
    /// delivered, failed, retried, in flight, ...); `None` when HQ
    /// publishes to SNS, which delivers and retries out of HQ's sight.
    pub feed: Option<TopicStats>,
    /// How this run's orders on the topic published in the view ended
    /// (fulfilled, lost, duplicated, ...).
    pub orders: OrderCounts,
    /// Publish-to-fulfilment latency of the orders published in the last 10 minutes.
    pub latency: Latency,
}

/// Everything the dashboard shows, at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct Dashboard {
    /// The span shown.
    pub view: View,
    /// When the ledger's figures were read (reused for a moment, as
    /// `GET /reconciliation`'s are), as the ledger writes times.
    pub generated_at: String,
    /// Per topic, in [`Topic::ALL`] order.
    pub topics: Vec<TopicRow>,
    /// This run's reconciliation (as `GET /reconciliation`) of the orders
    /// published in the view (all of them, in a run younger than the view).
    pub reconciliation: Reconciliation,
    /// Totals over every key (as `GET /totals`, summed).
    pub totals: Totals,
    /// Fulfilled resources per bucket, by producer.
    pub timeline: Timeline,
}

/// What the dashboard reads from the ledger for a view, at one moment: the
/// costly part, which every poll shares for a while (`Hq::dashboard_figures`).
#[derive(Debug, Clone)]
pub(crate) struct LedgerFigures {
    /// When they were read.
    at: SystemTime,
    /// This run's orders published in the view, reconciled.
    reconciliation: Reconciliation,
    /// Per topic, the latency of the orders published in the last 10 minutes.
    latency: BTreeMap<String, Latency>,
    /// Fulfilled resources per bucket, by producer.
    timeline: Timeline,
    /// Totals over every key.
    totals: Totals,
}

/// Reads the ledger's figures for `view` now.
pub(crate) async fn ledger_figures(hq: &Hq, view: View) -> Result<LedgerFigures, LedgerError> {
    let now = SystemTime::now();
    let (width, count) = view.buckets();
    let ledger = hq.ledger();
    let run_id = hq.feed().run_id();
    let since = now.checked_sub(view.span()).unwrap_or(SystemTime::UNIX_EPOCH);
    // One connection serves the ledger, so these run one after another anyway.
    let reconciliation = ledger.reconcile_since(run_id, Some(since)).await?;
    let latency_since = now.checked_sub(LATENCY_WINDOW).unwrap_or(SystemTime::UNIX_EPOCH);
    let latency = ledger.latency(run_id, latency_since).await?;
    let timeline = ledger.timeline(now, width, count).await?;
    let totals = ledger.grand_totals().await?;
    Ok(LedgerFigures {
        at: now,
        reconciliation,
        latency,
        timeline,
        totals,
    })
}

/// Reads the dashboard for `view`: the ledger's figures as of a moment ago,
/// the feed's counters now.
pub async fn read(hq: &Hq, view: View) -> Result<Dashboard, LedgerError> {
    let LedgerFigures {
        at,
        reconciliation,
        mut latency,
        timeline,
        totals,
    } = hq.dashboard_figures(view).await?;
    let mut stats: Option<BTreeMap<Topic, TopicStats>> = hq.publisher().stats();
    let topics = Topic::ALL
        .iter()
        .copied()
        .map(|topic| TopicRow {
            name: topic.as_str(),
            feed: stats
                .as_mut()
                .map(|stats| stats.remove(&topic).unwrap_or_default()),
            orders: reconciliation
                .topics
                .get(topic.as_str())
                .copied()
                .unwrap_or_default(),
            latency: latency.remove(topic.as_str()).unwrap_or_default(),
        })
        .collect();
    Ok(Dashboard {
        view,
        generated_at: crate::ledger::timestamp(at),
        topics,
        reconciliation,
        totals,
        timeline,
    })
}
