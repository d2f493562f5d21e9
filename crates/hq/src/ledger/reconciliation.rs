//! Reconciliation: the orders one HQ run published against the
//! fulfillments recorded for them (matched by the idempotency key the
//! services derive from the order's topic and MessageId).

use super::{Ledger, LedgerError, Produced, Source, timestamp};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::SystemTime;

/// Orders published in one HQ run against fulfillments recorded for them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Reconciliation {
    /// All topics together (serialized at the top level, beside `topics`).
    #[serde(flatten)]
    pub totals: OrderCounts,
    /// Per topic, the same counts.
    pub topics: BTreeMap<String, OrderCounts>,
    /// The first [`UNACCOUNTED_SHOWN`] orders lost, refused or fulfilled
    /// too often and the first [`UNACCOUNTED_SHOWN`] still pending, in the order
    /// the ledger reads them (by run and time published): the MessageIds
    /// to look for in the logs. Capped apart, so that orders still being
    /// retried never hide one lost after them.
    pub unaccounted: Vec<Unaccounted>,
    /// The units of every fulfillment recorded for these orders (a second
    /// team's, and a duplicate, included; a replay not), by who produced
    /// them: the monolith gathering, or a microservice through the glue
    /// hook. The strangling in numbers, for a run's end. Read for a whole
    /// run only (`None` for the dashboard's window, which charts it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub produced: Option<Produced>,
}

/// How many orders lost, refused or counted twice a reconciliation names,
/// and how many pending (the counts are whole; a run that lost thousands needs the
/// first few to start from).
pub const UNACCOUNTED_SHOWN: usize = 10;

/// How an order is unaccounted for: serialized, displayed and logged as
/// `lost`, `rejected`, `pending` or `duplicated`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaccountedOutcome {
    /// Delivered or failed to every subscription, with fewer fulfillments
    /// recorded than subscriptions that did not refuse it.
    Lost,
    /// Refused with a 4xx by a subscription that never fulfilled it.
    Rejected,
    /// Still being delivered or retried.
    Pending,
    /// Fulfilled more often than it has subscriptions.
    Duplicated,
}

impl UnaccountedOutcome {
    /// Its name: the one place the text is written.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lost => "lost",
            Self::Rejected => "rejected",
            Self::Pending => "pending",
            Self::Duplicated => "duplicated",
        }
    }
}

impl std::fmt::Display for UnaccountedOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, so that a width (`{:<10}`, the launcher's table) applies.
        f.pad(self.as_str())
    }
}

impl Serialize for UnaccountedOutcome {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// One order unaccounted for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unaccounted {
    /// Its SNS MessageId, the `order_id` of its log lines.
    pub message_id: String,
    /// The topic it was published on.
    pub topic: String,
    /// Lost, refused, pending or fulfilled too often.
    pub outcome: UnaccountedOutcome,
}

/// How the orders of a run (or of one topic in it) ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OrderCounts {
    /// Orders published.
    pub published: u64,
    /// Orders fulfilled once for each subscription they were sent to (at
    /// least once): each subscription is a team's service, fulfilling under
    /// its own API key.
    pub fulfilled: u64,
    /// Orders short of that because a subscription refused them with a 4xx.
    /// HQ publishes only orders the services' own parsers take, so a
    /// refusal is a wiring or trust fault (a topic not in `SNS_TOPIC_ARNS`,
    /// a subscription on the wrong path), and the order is not fulfilled.
    pub rejected: u64,
    /// Orders still being delivered or retried.
    pub pending: u64,
    /// Orders that reached no confirmed subscription.
    pub unrouted: u64,
    /// Orders delivered or failed, but short of a fulfillment for a
    /// subscription that did not refuse them.
    pub lost: u64,
    /// Fulfillments recorded beyond one for each subscription of an order
    /// (the same order recorded under a second API key of one team, say).
    pub duplicated: u64,
}

/// What the ledger knows of one published order.
struct PublishedOrder {
    /// The topic it was published on.
    topic: String,
    /// Its MessageId: read only for an order unaccounted for.
    message_id: Option<String>,
    /// Confirmed subscriptions it was sent to.
    subscribers: i64,
    /// Fulfillments recorded under its key: at most one for each API key
    /// (the ledger keeps a repeat under the same key as a replay).
    fulfillments: i64,
    /// Calls for it that reached the ledger: its fulfillments and their
    /// repeats.
    answered: i64,
    /// Deliveries that ended, however.
    finished: i64,
    /// Deliveries that ended in a 4xx.
    rejected: i64,
    /// Deliveries given up on (5xx or no answer until the retries ran out).
    failed: i64,
    /// Whether HQ records how its deliveries end: on its own feed it does,
    /// on SNS it sees none; `None` for an order published before the ledger
    /// said which (version 5).
    deliveries_recorded: Option<bool>,
}

/// Where one published order ended.
enum Ended {
    Fulfilled,
    Unrouted,
    Pending,
    Rejected,
    Lost,
}

impl PublishedOrder {
    /// How many fulfillments it should have: one for each subscription it
    /// was sent to, since each team that shares HQ's topics fulfils it under
    /// its own API key; at least one (SNS' count of subscriptions, cached,
    /// may miss one confirmed just before).
    fn due(&self) -> i64 {
        self.subscribers.max(1)
    }

    /// Fulfillments beyond those due.
    fn extra(&self) -> i64 {
        (self.fulfillments - self.due()).max(0)
    }

    /// Whether every subscription fulfilled it: each under an API key of
    /// its own, or some under one they share (two stacks of one team side
    /// by side during a migration, or one service subscribed twice), whose
    /// later calls the ledger keeps as repeats. A repeat may also be SNS
    /// sending again after an answer was lost, so repeats stand in for a
    /// subscription only once every delivery has ended and none was given
    /// up on or refused (one refused was never fulfilled by that
    /// subscription, whatever repeats the others made). On SNS, where HQ
    /// sees no deliveries, that cannot be told apart.
    fn fulfilled(&self) -> bool {
        let deliveries_done = match self.deliveries_recorded {
            Some(true) => self.finished >= self.subscribers,
            Some(false) => true,
            // Before the ledger said where: none recorded, taken for SNS.
            None => self.finished == 0 || self.finished >= self.subscribers,
        };
        self.fulfillments >= self.due()
            || (self.answered >= self.due() && self.failed == 0 && self.rejected == 0 && deliveries_done)
    }

    /// Where it ended: fulfilled for every subscription, reaching none,
    /// still being delivered, short because a subscription refused it, or
    /// short with no refusal to say why: lost.
    fn ended(&self) -> Ended {
        if self.fulfilled() {
            Ended::Fulfilled
        } else if self.subscribers == 0 {
            Ended::Unrouted
        } else if self.finished < self.subscribers {
            Ended::Pending
        } else if self.fulfillments + self.rejected >= self.subscribers {
            // Every fulfillment missing is a refusal's.
            Ended::Rejected
        } else {
            Ended::Lost
        }
    }

    /// How it is unaccounted for, if it is.
    fn unaccounted(&self) -> Option<UnaccountedOutcome> {
        match self.ended() {
            _ if self.extra() > 0 => Some(UnaccountedOutcome::Duplicated),
            Ended::Pending => Some(UnaccountedOutcome::Pending),
            Ended::Lost => Some(UnaccountedOutcome::Lost),
            Ended::Rejected => Some(UnaccountedOutcome::Rejected),
            Ended::Fulfilled | Ended::Unrouted => None,
        }
    }
}

impl OrderCounts {
    /// Nothing lost, refused, counted twice or left in flight.
    pub fn is_clean(&self) -> bool {
        self.lost == 0 && self.rejected == 0 && self.duplicated == 0 && self.pending == 0
    }

    /// Counts one published order where it ended.
    fn count(&mut self, order: &PublishedOrder) {
        self.published += 1;
        self.duplicated += u64::try_from(order.extra()).unwrap_or(0);
        *match order.ended() {
            Ended::Fulfilled => &mut self.fulfilled,
            Ended::Unrouted => &mut self.unrouted,
            Ended::Pending => &mut self.pending,
            Ended::Rejected => &mut self.rejected,
            Ended::Lost => &mut self.lost,
        } += 1;
    }

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

impl Reconciliation {
    /// Nothing lost, refused, counted twice or left in flight.
    pub fn is_clean(&self) -> bool {
        self.totals.is_clean()
    }

    /// Logs it as events, one for all topics and one per topic, each count
    /// a field of its own: what `hq` says at its stop under JSON logs, where
    /// the printed JSON would be dozens of events without a level (awslogs
    /// takes each line as one). Each a warning unless its counts are clean;
    /// then a warning for each order named as unaccounted for.
    pub fn log(&self) {
        let log = |topic: &str, counts: &OrderCounts| {
            let OrderCounts {
                published,
                fulfilled,
                rejected,
                pending,
                unrouted,
                lost,
                duplicated,
            } = *counts;
            // One list of fields for both levels (tracing's level is a
            // constant per call site).
            macro_rules! counts {
                ($level:expr, $message:literal) => {
                    tracing::event!(
                        $level, topic, published, fulfilled, rejected, pending, unrouted, lost, duplicated,
                        $message
                    )
                };
            }
            if counts.is_clean() {
                counts!(tracing::Level::INFO, "reconciliation of this run");
            } else {
                counts!(
                    tracing::Level::WARN,
                    "reconciliation of this run: orders unaccounted for"
                );
            }
        };
        log("all", &self.totals);
        for (topic, counts) in &self.topics {
            log(topic, counts);
        }
        for order in &self.unaccounted {
            // In an `order` span, as the services' lines for an order are:
            // a query on `span.order_id` finds this line too.
            tracing::error_span!("order", order_id = %order.message_id).in_scope(|| {
                tracing::warn!(topic = %order.topic, outcome = order.outcome.as_str(), "order unaccounted for");
            });
        }
    }

    /// Counts `orders` per topic and in total as they come (a run's orders
    /// are never held all at once: a run of millions would take hundreds
    /// of MB), or stops at the first that could not be read.
    fn try_of<E>(orders: impl IntoIterator<Item = Result<PublishedOrder, E>>) -> Result<Self, E> {
        let mut topics: BTreeMap<String, OrderCounts> = BTreeMap::new();
        let mut unaccounted = Vec::new();
        // Named so far: lost, refused or fulfilled too often; and pending.
        let (mut ended, mut pending) = (0, 0);
        for order in orders {
            let order = order?;
            match topics.get_mut(&order.topic) {
                Some(counts) => counts.count(&order),
                None => topics.entry(order.topic.clone()).or_default().count(&order),
            }
            if let (Some(outcome), Some(message_id)) = (order.unaccounted(), &order.message_id) {
                let named = if outcome == UnaccountedOutcome::Pending {
                    &mut pending
                } else {
                    &mut ended
                };
                if *named == UNACCOUNTED_SHOWN {
                    continue;
                }
                *named += 1;
                unaccounted.push(Unaccounted {
                    message_id: message_id.clone(),
                    topic: order.topic.clone(),
                    outcome,
                });
            }
        }
        let mut totals = OrderCounts::default();
        for counts in topics.values() {
            totals.add(counts);
        }
        Ok(Self {
            totals,
            topics,
            unaccounted,
            produced: None,
        })
    }
}

impl Ledger {
    /// The run that published last, if any run has: at start, the run
    /// before this one. `published` keeps the order rows were written in
    /// its rowid, so this reads one row, however long the ledger.
    pub async fn last_run(&self) -> Result<Option<String>, LedgerError> {
        self.read(|conn| {
            Ok(conn
                .query_row(
                    "SELECT run_id FROM published ORDER BY rowid DESC LIMIT 1",
                    [],
                    |row| row.get(0),
                )
                .optional()?)
        })
        .await
    }

    /// Orders published in run `run_id` against fulfillments recorded for them.
    pub async fn reconcile(&self, run_id: &str) -> Result<Reconciliation, LedgerError> {
        self.reconcile_since(run_id, None).await
    }

    /// As [`Ledger::reconcile`], for the orders published at or after
    /// `since` only (the dashboard's window; `None`: all of them).
    pub async fn reconcile_since(
        &self,
        run_id: &str,
        since: Option<SystemTime>,
    ) -> Result<Reconciliation, LedgerError> {
        let run_id = run_id.to_owned();
        // Every stored time sorts after "": the same query, and index, for all.
        let since = since.map(timestamp).unwrap_or_default();
        self.read(move |conn| {
            // One snapshot for the counts and the units, read in two
            // statements (dropped unchanged at the end: it only read).
            let snapshot = conn.transaction()?;
            let conn: &rusqlite::Connection = &snapshot;
            // The counts each order's row keeps (schema version 5), or for
            // an order from before them (NULL), counted from the rows:
            // COALESCE runs a subquery only when the count before it is NULL.
            let mut statement = conn.prepare(
                "SELECT p.topic, p.subscribers,
                COALESCE(p.fulfilled, (SELECT COUNT(*) FROM fulfillments f WHERE f.idempotency_key = p.idempotency_key)),
                COALESCE(p.answered, (SELECT COUNT(*) + COALESCE(SUM(f.replays), 0) FROM fulfillments f
                                      WHERE f.idempotency_key = p.idempotency_key)),
                COALESCE(p.finished, (SELECT COUNT(*) FROM deliveries d WHERE d.message_id = p.message_id)),
                COALESCE(p.rejected, (SELECT COUNT(*) FROM deliveries d
                                      WHERE d.message_id = p.message_id AND d.outcome = 'rejected')),
                COALESCE(p.failed, (SELECT COUNT(*) FROM deliveries d
                                    WHERE d.message_id = p.message_id AND d.outcome = 'failed')),
                p.message_id, p.publisher
             FROM published p WHERE p.run_id = ?1 AND p.published_at >= ?2",
            )?;
            let rows = statement.query_map(params![run_id, since], |row| {
                let mut order = PublishedOrder {
                    topic: row.get(0)?,
                    message_id: None,
                    subscribers: row.get(1)?,
                    fulfillments: row.get(2)?,
                    answered: row.get(3)?,
                    finished: row.get(4)?,
                    rejected: row.get(5)?,
                    failed: row.get(6)?,
                    deliveries_recorded: row
                        .get::<_, Option<String>>(8)?
                        .map(|publisher| publisher == super::deliveries::FEED),
                };
                // Read for the few that are named, not for every order.
                if order.unaccounted().is_some() {
                    order.message_id = Some(row.get(7)?);
                }
                Ok(order)
            })?;
            let mut reconciliation = Reconciliation::try_of(rows)?;
            if !since.is_empty() {
                return Ok(reconciliation);
            }
            let mut produced = Produced::default();
            let mut statement = conn.prepare_cached(
                "SELECT f.produced_by, SUM(f.iridium), SUM(f.magnesite)
                 FROM published p JOIN fulfillments f ON f.idempotency_key = p.idempotency_key
                 WHERE p.run_id = ?1 AND p.published_at >= ?2
                 GROUP BY f.produced_by",
            )?;
            let mut rows = statement.query(params![run_id, since])?;
            while let Some(row) = rows.next()? {
                let producer = row.get::<_, Option<String>>(0)?;
                produced.add(Source::named(producer.as_deref()), row.get(1)?, row.get(2)?);
            }
            reconciliation.produced = Some(produced);
            Ok(reconciliation)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(subscribers: i64, rejected: i64) -> OrderCounts {
        let mut counts = OrderCounts::default();
        counts.count(&PublishedOrder {
            topic: "magnesite".to_owned(),
            message_id: None,
            subscribers,
            fulfillments: 0,
            answered: 0,
            finished: subscribers,
            rejected,
            failed: 0,
            deliveries_recorded: Some(true),
        });
        counts
    }

    #[test]
    fn an_order_is_rejected_only_when_refusals_explain_every_fulfillment_missing() {
        assert_eq!((ended(1, 1).rejected, ended(1, 1).lost), (1, 0));
        assert_eq!((ended(2, 2).rejected, ended(2, 2).lost), (1, 0));
        // The service's delivery failed; another endpoint answered 404.
        assert_eq!((ended(2, 1).rejected, ended(2, 1).lost), (0, 1));
        assert_eq!((ended(1, 0).rejected, ended(1, 0).lost), (0, 1));
        // A refusal is not clean: HQ publishes only orders the services take.
        assert!(!ended(1, 1).is_clean());
    }

    /// Two subscriptions under one API key (a team's two stacks during a
    /// migration, a service subscribed twice): the second call is a repeat,
    /// and the order is fulfilled, unless a delivery was given up on or
    /// refused, or has not ended.
    #[test]
    fn subscriptions_sharing_an_api_key_fulfil_an_order_once_between_them() {
        let on = |deliveries_recorded, answered, finished, rejected, failed| {
            let mut counts = OrderCounts::default();
            counts.count(&PublishedOrder {
                topic: "orders".to_owned(),
                message_id: None,
                subscribers: 2,
                fulfillments: 1,
                answered,
                finished,
                rejected,
                failed,
                deliveries_recorded,
            });
            counts
        };
        let feed =
            |answered, finished, rejected, failed| on(Some(true), answered, finished, rejected, failed);
        // On SNS, where HQ sees no deliveries (also before the ledger said
        // where), and on HQ's own feed.
        for shared in [
            on(Some(false), 2, 0, 0, 0),
            on(None, 2, 0, 0, 0),
            feed(2, 2, 0, 0),
        ] {
            assert_eq!(
                (shared.fulfilled, shared.pending, shared.lost),
                (1, 0, 0),
                "{shared:?}"
            );
            assert!(shared.is_clean(), "{shared:?}");
        }
        // A repeat after a lost answer, while the other delivery was given
        // up on: not the other subscription's fulfillment.
        let lost = feed(2, 2, 0, 1);
        assert_eq!((lost.fulfilled, lost.lost), (0, 1), "{lost:?}");
        // ... or refused: that subscription never fulfilled it.
        let refused = feed(2, 2, 1, 0);
        assert_eq!((refused.fulfilled, refused.rejected), (0, 1), "{refused:?}");
        // The other delivery is still being retried.
        assert_eq!(feed(2, 1, 0, 0).pending, 1);
        // On the feed, no delivery has ended yet: pending, whatever the
        // repeats (on SNS that is every order, and it counts as delivered).
        let under_way = feed(2, 0, 0, 0);
        assert_eq!((under_way.fulfilled, under_way.pending), (0, 1), "{under_way:?}");
        // Only one call arrived.
        assert_eq!(feed(1, 2, 0, 0).lost, 1);
    }

    /// Teams that share HQ's topics each fulfil every order under their
    /// own API key: one fulfillment per subscription is due.
    #[test]
    fn each_subscription_is_due_one_fulfillment() {
        let order = |subscribers, fulfillments, finished, rejected| {
            let mut counts = OrderCounts::default();
            counts.count(&PublishedOrder {
                topic: "orders".to_owned(),
                message_id: None,
                subscribers,
                fulfillments,
                answered: fulfillments,
                finished,
                rejected,
                failed: 0,
                deliveries_recorded: Some(true),
            });
            counts
        };
        let both_teams = order(2, 2, 2, 0);
        assert_eq!((both_teams.fulfilled, both_teams.duplicated), (1, 0));
        assert!(both_teams.is_clean(), "{both_teams:?}");
        // One team's service took it or gave up on it, and never fulfilled.
        let one_team = order(2, 1, 2, 0);
        assert_eq!((one_team.fulfilled, one_team.lost), (0, 1));
        // The other team's endpoint refused it: named as such, not clean.
        let refused = order(2, 1, 2, 1);
        assert_eq!((refused.rejected, refused.lost), (1, 0));
        assert!(!refused.is_clean());
        // Still being delivered to one of them.
        assert_eq!(order(2, 1, 1, 0).pending, 1);
        // Recorded under a second key of one team: fulfilled, and doubled.
        let rotated = order(1, 2, 1, 0);
        assert_eq!((rotated.fulfilled, rotated.duplicated), (1, 1));
        // SNS' cached count missed a subscription: one fulfillment is due.
        let uncounted = order(0, 1, 0, 0);
        assert_eq!((uncounted.fulfilled, uncounted.duplicated), (1, 0));
    }

    /// Each event's level is its own counts': one topic with an order lost
    /// does not make the clean topics' lines warnings.
    #[test]
    fn each_logged_count_is_a_warning_only_when_it_is_not_clean() {
        let order = |topic: &str, fulfillments| PublishedOrder {
            topic: topic.to_owned(),
            message_id: None,
            subscribers: 1,
            fulfillments,
            answered: fulfillments,
            finished: 1,
            rejected: 0,
            failed: 0,
            deliveries_recorded: Some(true),
        };
        let reconciliation =
            Reconciliation::try_of([Ok::<_, ()>(order("orders", 1)), Ok(order("iridium", 0))]).unwrap();
        let logs = testkit::logs::CapturedLogs::default();
        {
            let _logging = logs.capture();
            reconciliation.log();
        }
        let line = |topic: &str| {
            logs.lines()
                .into_iter()
                .find(|line| line.contains(&format!("topic=\"{topic}\"")))
                .unwrap_or_else(|| panic!("no line for {topic}: {}", logs.text()))
        };
        assert!(line("orders").contains(" INFO "), "{}", logs.text());
        assert!(line("iridium").contains(" WARN "), "{}", logs.text());
        assert!(line("iridium").contains("lost=1"), "{}", logs.text());
        assert!(line("all").contains(" WARN "), "{}", logs.text());
    }

    /// The orders unaccounted for are named, the first few of them, each
    /// with how; the fulfilled and unrouted ones are not.
    #[test]
    fn the_first_orders_unaccounted_for_are_named() {
        let order = |id: usize, subscribers, fulfillments, finished, rejected| PublishedOrder {
            topic: "orders".to_owned(),
            message_id: Some(format!("m-{id}")),
            subscribers,
            fulfillments,
            answered: fulfillments,
            finished,
            rejected,
            failed: 0,
            deliveries_recorded: Some(true),
        };
        let orders = [
            order(0, 1, 1, 1, 0), // fulfilled
            order(1, 1, 0, 1, 0), // lost
            order(2, 1, 0, 0, 0), // pending
            order(3, 1, 2, 1, 0), // fulfilled twice
            order(4, 0, 0, 0, 0), // unrouted
            order(5, 1, 0, 1, 1), // rejected
        ];
        let reconciliation = Reconciliation::try_of(orders.map(Ok::<_, ()>)).unwrap();
        let named: Vec<(&str, &str)> = reconciliation
            .unaccounted
            .iter()
            .map(|u| (u.message_id.as_str(), u.outcome.as_str()))
            .collect();
        assert_eq!(
            named,
            [
                ("m-1", "lost"),
                ("m-2", "pending"),
                ("m-3", "duplicated"),
                ("m-5", "rejected")
            ]
        );
        // The JSON says it by the same name.
        let json = serde_json::to_value(&reconciliation.unaccounted[0]).unwrap();
        assert_eq!(json["outcome"], "lost", "{json}");
        // And the log, each in its order's span, as the services' lines.
        let logs = testkit::logs::CapturedLogs::default();
        {
            let _logging = logs.capture();
            reconciliation.log();
        }
        let lost = logs
            .lines()
            .into_iter()
            .find(|line| line.contains("order{order_id=m-1}: "));
        assert!(
            lost.is_some_and(
                |line| line.contains("order unaccounted for") && line.contains("outcome=\"lost\"")
            ),
            "{}",
            logs.text()
        );

        let many = (0..3 * UNACCOUNTED_SHOWN).map(|id| Ok::<_, ()>(order(id, 1, 0, 1, 0)));
        let reconciliation = Reconciliation::try_of(many).unwrap();
        assert_eq!(reconciliation.totals.lost, 3 * UNACCOUNTED_SHOWN as u64);
        assert_eq!(reconciliation.unaccounted.len(), UNACCOUNTED_SHOWN);
        assert_eq!(reconciliation.unaccounted[0].message_id, "m-0");

        // Orders still being retried, however many, do not hide one lost
        // after them; they are named up to the same bound.
        let retried = (0..3 * UNACCOUNTED_SHOWN).map(|id| order(id, 1, 0, 0, 0));
        let lost = order(3 * UNACCOUNTED_SHOWN, 1, 0, 1, 0);
        let reconciliation = Reconciliation::try_of(retried.chain([lost]).map(Ok::<_, ()>)).unwrap();
        let outcomes = |outcome| {
            reconciliation
                .unaccounted
                .iter()
                .filter(|u| u.outcome == outcome)
                .count()
        };
        assert_eq!(
            (
                outcomes(UnaccountedOutcome::Pending),
                outcomes(UnaccountedOutcome::Lost)
            ),
            (UNACCOUNTED_SHOWN, 1)
        );
        assert_eq!(
            reconciliation.unaccounted.last().map(|u| u.message_id.as_str()),
            Some(format!("m-{}", 3 * UNACCOUNTED_SHOWN).as_str())
        );
    }

    #[test]
    fn an_order_fulfilled_twice_is_counted_as_a_duplicate() {
        let twice = PublishedOrder {
            topic: "iridium".to_owned(),
            message_id: None,
            subscribers: 1,
            fulfillments: 2,
            answered: 2,
            finished: 1,
            rejected: 0,
            failed: 0,
            deliveries_recorded: Some(true),
        };
        let reconciliation = Reconciliation::try_of([Ok::<_, ()>(twice)]).unwrap();
        assert_eq!(
            (reconciliation.totals.fulfilled, reconciliation.totals.duplicated),
            (1, 1)
        );
        assert!(!reconciliation.is_clean());
    }

    #[test]
    fn a_run_is_clean_only_with_nothing_lost_doubled_or_pending() {
        let order = |fulfillments, finished| PublishedOrder {
            topic: "orders".to_owned(),
            message_id: None,
            subscribers: 1,
            fulfillments,
            answered: fulfillments,
            finished,
            rejected: 0,
            failed: 0,
            deliveries_recorded: Some(true),
        };
        let of = |orders: Vec<PublishedOrder>| {
            Reconciliation::try_of(orders.into_iter().map(Ok::<_, ()>)).unwrap()
        };
        assert!(of(vec![order(1, 1), order(1, 1)]).is_clean());
        // Delivered, never fulfilled: lost, and nothing else wrong.
        let lost = of(vec![order(1, 1), order(0, 1)]);
        assert_eq!(
            (lost.totals.lost, lost.totals.pending, lost.totals.duplicated),
            (1, 0, 0)
        );
        assert!(!lost.is_clean(), "{lost:?}");
        let pending = of(vec![order(1, 1), order(0, 0)]);
        assert_eq!(pending.totals.pending, 1);
        assert!(!pending.is_clean(), "{pending:?}");
    }
}
