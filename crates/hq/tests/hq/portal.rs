//! The key portal's page, the dashboard and what it counts, over HTTP.

use crate::support::{
    KEY, Subscriber, admin_client, config, get_json, publish, refusal, start_hq, subscribe_confirmed, url,
};
use contracts::IdempotencyKey;
use hq::feed::Topic;
use hq::portal::CONTENT_SECURITY_POLICY;
use serde_json::{Value, json};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The ledger's file in HQ's data directory.
const DB_FILE: &str = "hq-ledger.sqlite3";

async fn get(accept: &str, hq: &hq::RunningHq, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(url(hq, path))
        .header("accept", accept)
        .send()
        .await
        .unwrap()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// The paths a page loads (`src="..."`, `href="..."`).
fn loaded_paths(page: &str) -> Vec<String> {
    page.split(['"', '\''])
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|pair| pair[0].ends_with("src=") || pair[0].ends_with("href="))
        .map(|pair| pair[1].to_owned())
        .collect()
}

#[tokio::test]
async fn browsers_get_the_portal_and_curl_keeps_the_list() {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(config(dir.path())).await;
    let browser_accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

    let text = get("*/*", &hq, "/").await;
    assert!(header(&text, "content-type").starts_with("text/plain"));
    assert_eq!(header(&text, "vary"), "Accept");
    let list = text.text().await.unwrap();
    assert!(list.contains("/dashboard") && list.contains("POST"), "{list}");
    let refused_html = get("text/html;q=0, */*", &hq, "/").await;
    assert!(header(&refused_html, "content-type").starts_with("text/plain"));

    for (path, title) in [
        ("/", "Interstella API Key Portal"),
        ("/dashboard", "Interstella HQ dashboard"),
    ] {
        let page = get(browser_accept, &hq, path).await;
        assert_eq!(page.status(), 200, "{path}");
        assert!(header(&page, "content-type").starts_with("text/html"), "{path}");
        assert_eq!(header(&page, "content-security-policy"), CONTENT_SECURITY_POLICY);
        assert_eq!(header(&page, "x-frame-options"), "DENY");
        assert!(header(&page, "set-cookie").is_empty(), "the pages set no cookie");
        let body = page.text().await.unwrap();
        assert!(body.contains(title), "{path}");
        // The CSP allows no inline script or style: the page must need none.
        assert!(!body.contains("style=") && !body.contains("<style"), "{path}");
        assert_eq!(
            body.matches("<script").count(),
            body.matches("<script src=\"/portal/").count()
        );
        let loaded = loaded_paths(&body);
        assert!(loaded.len() >= 3, "{path}: {loaded:?}");
        for asset in loaded.iter().filter(|p| p.starts_with("/portal/")) {
            let response = get("*/*", &hq, asset).await;
            assert_eq!(response.status(), 200, "{asset}");
            assert_eq!(header(&response, "x-content-type-options"), "nosniff");
            assert!(!response.text().await.unwrap().contains("innerHTML"), "{asset}");
        }
        // Nothing is fetched from anywhere but HQ.
        assert!(loaded.iter().all(|p| p.starts_with('/')), "{path}: {loaded:?}");
    }
    let portal = get(browser_accept, &hq, "/").await.text().await.unwrap();
    for button in [
        "Subscribe to Orders topic",
        "Subscribe to Iridium topic",
        "Subscribe to Magnesite topic",
    ] {
        assert!(portal.contains(button), "{button}");
    }
    assert_eq!(get("*/*", &hq, "/portal/nothing.js").await.status(), 404);
    // SNS' links still work for a browser.
    let action = get(browser_accept, &hq, "/?Action=Unsubscribe&SubscriptionArn=x").await;
    assert_eq!(action.status(), 401);
}

#[tokio::test]
async fn the_dashboard_data_needs_the_admin_credential() {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(config(dir.path())).await;
    let anonymous = reqwest::Client::new();
    for path in ["/dashboard/data", "/dashboard/data?view=day"] {
        let response = anonymous.get(url(&hq, path)).send().await.unwrap();
        refusal(response, 401).await;
        let wrong = anonymous
            .get(url(&hq, path))
            .bearer_auth("not-the-admin-credential")
            .send()
            .await
            .unwrap();
        refusal(wrong, 401).await;
        let admin = admin_client(&hq).get(url(&hq, path)).send().await.unwrap();
        assert_eq!(admin.status(), 200, "{path}");
    }
    let bad = admin_client(&hq)
        .get(url(&hq, "/dashboard/data?view=week"))
        .send()
        .await
        .unwrap();
    assert!(refusal(bad, 400).await.contains("view=hour"));
}

/// POSTs a fulfillment under the test key; a `"produced_by"` in `body` is
/// sent in its header instead, as the monolith sends it.
async fn fulfill(hq: &hq::RunningHq, idempotency_key: Option<&str>, mut body: Value) -> u16 {
    let produced_by = body
        .as_object_mut()
        .and_then(|fields| fields.remove("produced_by"));
    let mut request = reqwest::Client::new()
        .post(url(hq, "/receiving/"))
        .header("x-api-key", KEY)
        .json(&body);
    if let Some(key) = idempotency_key {
        request = request.header("idempotency-key", key);
    }
    if let Some(Value::String(producer)) = produced_by {
        request = request.header(contracts::fulfillment::PRODUCED_BY_HEADER, producer);
    }
    request.send().await.unwrap().status().as_u16()
}

async fn dashboard(hq: &hq::RunningHq, view: &str) -> Value {
    get_json(hq, &format!("/dashboard/data?view={view}")).await
}

/// Sums `resource`'s units from `source` over every bucket.
fn summed(data: &Value, resource: &str, source: &str) -> u64 {
    data["timeline"]["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b[resource][source].as_u64().unwrap())
        .sum()
}

#[tokio::test]
async fn the_dashboard_counts_who_produced_what() {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(config(dir.path())).await;
    let subscriber = Subscriber::happy().await;
    subscribe_confirmed(&hq, "iridium", &subscriber.endpoint()).await;

    assert_eq!(
        fulfill(
            &hq,
            None,
            json!({"iridium": 2, "magnesite": 3, "produced_by": "monolith"})
        )
        .await,
        200
    );
    assert_eq!(
        fulfill(
            &hq,
            None,
            json!({"iridium": 0, "magnesite": 4, "produced_by": "magnesite"})
        )
        .await,
        200
    );
    assert_eq!(
        fulfill(&hq, None, json!({"iridium": 7, "magnesite": 1})).await,
        200
    );
    // The body is exactly the two quantities; the producer is a header.
    let in_the_body = reqwest::Client::new()
        .post(url(&hq, "/receiving/"))
        .header("x-api-key", KEY)
        .json(&json!({"iridium": 1, "magnesite": 1, "produced_by": "monolith"}))
        .send()
        .await
        .unwrap();
    assert_eq!(in_the_body.status(), 400);
    // A microservice only produces its own resource.
    let claims_other = json!({"iridium": 1, "magnesite": 1, "produced_by": "iridium"});
    assert_eq!(fulfill(&hq, None, claims_other).await, 400);
    assert_eq!(
        fulfill(
            &hq,
            None,
            json!({"iridium": 1, "magnesite": 0, "produced_by": "hq"})
        )
        .await,
        400
    );
    // An order through the feed, fulfilled by the iridium microservice under its key.
    let message_id = publish(&hq, "iridium", r#"{"iridium": 5}"#).await;
    let key = IdempotencyKey::derive(
        &Topic::Iridium.arn(),
        &message_id,
        Topic::Iridium.fulfillment_kind(),
    );
    let from_iridium = json!({"iridium": 5, "magnesite": 0, "produced_by": "iridium"});
    assert_eq!(fulfill(&hq, Some(key.as_str()), from_iridium.clone()).await, 200);
    assert_eq!(fulfill(&hq, Some(key.as_str()), from_iridium).await, 200); // a repeat, counted once

    let data = dashboard(&hq, "hour").await;
    assert_eq!(data["timeline"]["bucket_secs"], 60);
    assert_eq!(data["timeline"]["buckets"].as_array().unwrap().len(), 60);
    assert_eq!(
        ["monolith", "microservice", "unattributed"].map(|s| summed(&data, "iridium", s)),
        [2, 5, 7]
    );
    assert_eq!(
        ["monolith", "microservice", "unattributed"].map(|s| summed(&data, "magnesite", s)),
        [3, 4, 1]
    );
    assert_eq!(
        data["totals"],
        json!({"keys": 1, "revoked_keys": 0, "fulfillments": 4, "iridium": 14, "magnesite": 8, "replays": 1})
    );
    let iridium = &data["topics"][1];
    assert_eq!(iridium["name"], "iridium");
    assert_eq!(iridium["feed"]["published"], 1);
    assert_eq!(iridium["orders"]["fulfilled"], 1);
    assert_eq!(iridium["latency"]["orders"], 1);
    let mut reconciliation: Value = reqwest::get(url(&hq, "/reconciliation"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The whole run's says who produced its orders' units; the view's
    // leaves that to the chart.
    let produced = reconciliation.as_object_mut().unwrap().remove("produced");
    assert!(produced.is_some(), "{reconciliation}");
    assert_eq!(data["reconciliation"], reconciliation);
    let day = dashboard(&hq, "day").await;
    assert_eq!(day["timeline"]["bucket_secs"], 900);
    assert_eq!(summed(&day, "iridium", "microservice"), 5);
}

/// Who produces `resource` now, as `/dashboard/data` says: its last
/// fulfillments of the last minute by (monolith, microservice, not said),
/// and who made its newest.
fn recent(data: &Value, resource: &str) -> ([u64; 3], Option<String>) {
    let recent = &data["timeline"]["recent"][resource];
    let made =
        ["monolith", "microservice", "unattributed"].map(|source| recent["now"][source].as_u64().unwrap());
    (made, recent["newest"]["source"].as_str().map(str::to_owned))
}

#[tokio::test]
async fn the_dashboard_says_who_produces_each_resource_now() {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(config(dir.path())).await;
    let nothing_yet = dashboard(&hq, "hour").await;
    assert_eq!(recent(&nothing_yet, "iridium"), ([0, 0, 0], None));

    // Before the switch, the monolith gathers both; after it, iridium comes
    // from its microservice and the monolith still gathers magnesite.
    let before = json!({"iridium": 1, "magnesite": 2, "produced_by": "monolith"});
    for _ in 0..12 {
        assert_eq!(fulfill(&hq, None, before.clone()).await, 200);
    }
    // The ledger's times are to the millisecond: the switch's own
    // millisecond holds no fulfillment after it.
    let switched_at = SystemTime::now();
    testkit::wait_until(
        "the clock past the switch's millisecond",
        Duration::from_secs(1),
        async || (SystemTime::now() >= switched_at + Duration::from_millis(2)).then_some(()),
    )
    .await;
    let after_iridium = json!({"iridium": 3, "magnesite": 0, "produced_by": "iridium"});
    for _ in 0..3 {
        assert_eq!(fulfill(&hq, None, after_iridium.clone()).await, 200);
    }
    let after_magnesite = json!({"iridium": 0, "magnesite": 2, "produced_by": "monolith"});
    assert_eq!(fulfill(&hq, None, after_magnesite).await, 200);

    // Once the figures read before these are no longer reused.
    let data = testkit::wait_until(
        "the dashboard to read the 16 fulfillments",
        Duration::from_secs(10),
        async || {
            let data = dashboard(&hq, "hour").await;
            (data["totals"]["fulfillments"] == 16).then_some(data)
        },
    )
    .await;
    // The last ten with any iridium: three from the microservice, the
    // newest, and seven before them from the monolith; the view's share is
    // mostly the monolith's.
    assert_eq!(recent(&data, "iridium"), ([7, 3, 0], Some("microservice".into())));
    assert_eq!(
        [
            summed(&data, "iridium", "monolith"),
            summed(&data, "iridium", "microservice")
        ],
        [12, 9]
    );
    // The microservice's fulfillments carry no magnesite, so magnesite's
    // last ten are all the monolith's.
    assert_eq!(recent(&data, "magnesite"), ([10, 0, 0], Some("monolith".into())));
    let newest = |data: &Value, resource: &str| {
        data["timeline"]["recent"][resource]["newest"]["at"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(newest(&data, "iridium") <= newest(&data, "magnesite"));
    let day = dashboard(&hq, "day").await;
    assert_eq!(day["timeline"]["recent"], data["timeline"]["recent"]);

    // A minute on, none is that recent: who made the newest, and when, is
    // all there is to say.
    let ledger = hq.hq().ledger();
    let (minute, hour) = (Duration::from_secs(60), 60);
    let later = ledger
        .timeline(
            SystemTime::now() + hq::ledger::NOW_WINDOW + Duration::from_secs(1),
            minute,
            hour,
        )
        .await
        .unwrap();
    let iridium = &later.recent.iridium;
    assert_eq!(iridium.now, hq::ledger::Sources::default());
    assert_eq!(
        iridium
            .newest
            .as_ref()
            .map(|newest| (newest.source, newest.at.clone())),
        Some((hq::ledger::Source::Microservice, newest(&data, "iridium")))
    );
    // Read as of before the switch (a clock stepped back), the fulfillments
    // recorded after it are left out, of the buckets too.
    let before_the_switch = ledger.timeline(switched_at, minute, hour).await.unwrap();
    let iridium = &before_the_switch.recent.iridium;
    assert_eq!((iridium.now.monolith, iridium.now.microservice), (10, 0));
    let microservices: u64 = before_the_switch
        .buckets
        .iter()
        .map(|bucket| bucket.produced.iridium.microservice)
        .sum();
    assert_eq!(microservices, 0);
    assert_eq!(
        iridium.newest.as_ref().map(|newest| newest.source),
        Some(hq::ledger::Source::Monolith)
    );
}

#[tokio::test]
async fn a_ledger_from_before_produced_by_is_brought_up_to_date() {
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.execute_batch(
            "CREATE TABLE fulfillments (id INTEGER PRIMARY KEY, recorded_at TEXT NOT NULL, key_id TEXT NOT NULL,
                 idempotency_key TEXT, iridium INTEGER NOT NULL, magnesite INTEGER NOT NULL,
                 replays INTEGER NOT NULL DEFAULT 0, UNIQUE (key_id, idempotency_key));
             INSERT INTO fulfillments (recorded_at, key_id, iridium, magnesite)
                 VALUES (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 'old', 1, 1);",
        )
        .unwrap();
    }
    let hq = start_hq(config(dir.path())).await;
    assert_eq!(
        fulfill(
            &hq,
            None,
            json!({"iridium": 3, "magnesite": 0, "produced_by": "iridium"})
        )
        .await,
        200
    );
    let data = dashboard(&hq, "hour").await;
    assert_eq!(summed(&data, "iridium", "unattributed"), 1);
    assert_eq!(summed(&data, "iridium", "microservice"), 3);
}

/// Milliseconds since the Unix epoch: the ledger's resolution.
fn millis(at: SystemTime) -> u64 {
    u64::try_from(at.duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

/// How many of `orders` orders, one a second back from `newest_ms`, were at
/// or after `since_ms`.
fn orders_since(orders: u64, newest_ms: u64, since_ms: u64) -> u64 {
    newest_ms
        .checked_sub(since_ms)
        .map_or(0, |back| (back / 1000 + 1).min(orders))
}

/// A day of orders, one a second: how long the dashboard's data takes.
/// Printed, not asserted (`cargo test -p hq a_day -- --nocapture`).
#[tokio::test]
async fn a_day_of_orders_on_the_dashboard() {
    const ORDERS: u64 = 86_400;
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(config(dir.path())).await;
    let run_id = hq.hq().feed().run_id().to_owned();
    // In whole milliseconds, as the ledger writes times, so that what falls
    // in a view is known exactly.
    let now = UNIX_EPOCH + Duration::from_millis(millis(SystemTime::now()));
    let filled = Instant::now();
    {
        let mut conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        let tx = conn.transaction().unwrap();
        let key_id: String = tx
            .query_row("SELECT key_id FROM api_keys", [], |row| row.get(0))
            .unwrap();
        let producers = ["monolith", "iridium", "magnesite"];
        for i in 0..ORDERS {
            let at = humantime::format_rfc3339_millis(now - Duration::from_secs(i)).to_string();
            let (topic, key) = (
                ["orders", "iridium", "magnesite"][(i % 3) as usize],
                format!("key-{i}"),
            );
            let producer = producers[(i % 3) as usize];
            let (iridium, magnesite) = match producer {
                "monolith" => (1, 1),
                "iridium" => (1, 0),
                _ => (0, 1),
            };
            tx.execute(
                "INSERT INTO published (message_id, idempotency_key, run_id, topic, message, published_at, subscribers)
                 VALUES (?1, ?2, ?3, ?4, '{}', ?5, 1)",
                rusqlite::params![format!("m-{i}"), key, run_id, topic, at],
            )
            .unwrap();
            tx.execute(
                "INSERT INTO deliveries (message_id, subscription_arn, outcome, attempts, finished_at)
                 VALUES (?1, 'arn', 'delivered', 1, ?2)",
                rusqlite::params![format!("m-{i}"), at],
            )
            .unwrap();
            tx.execute(
                "INSERT INTO fulfillments (recorded_at, key_id, idempotency_key, iridium, magnesite, produced_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                rusqlite::params![at, key_id, key, iridium, magnesite, producer],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    println!(
        "a day of orders: {ORDERS} published, delivered and fulfilled, written in {:?}",
        filled.elapsed()
    );
    let mut first_reads = std::collections::HashMap::new();
    for view in ["hour", "day", "hour"] {
        let (asked, started) = (SystemTime::now(), Instant::now());
        let data = dashboard(&hq, view).await;
        println!("GET /dashboard/data?view={view}: {:?}", started.elapsed());
        // The view ends when the ledger was read, which the answer says
        // (and which falls within the first request for the view; a second
        // may show the same figures again): the expectations are taken from
        // then, however long the fill before it took.
        let read_at = humantime::parse_rfc3339(data["generated_at"].as_str().unwrap()).unwrap();
        let read_ms = millis(read_at);
        let reused = first_reads.get(view) == Some(&read_ms);
        assert!(
            (reused || millis(asked) <= read_ms) && read_ms <= millis(SystemTime::now()),
            "{view}: read at {read_at:?}, asked at {asked:?}"
        );
        first_reads.entry(view).or_insert(read_ms);
        let (bucket_secs, buckets) = if view == "day" { (900, 96) } else { (60, 60) };
        assert_eq!(data["timeline"]["bucket_secs"], bucket_secs);
        // The view's orders: those published in its span, up to when it was read.
        let published = data["reconciliation"]["published"].as_u64().unwrap();
        let since_ms = read_ms - bucket_secs * buckets * 1000;
        assert_eq!(published, orders_since(ORDERS, millis(now), since_ms), "{view}");
        assert_eq!(data["reconciliation"]["fulfilled"].as_u64().unwrap(), published);
        assert_eq!(data["totals"]["fulfillments"], ORDERS);
        // The chart starts on a bucket boundary, its last bucket holding
        // when it was read; two orders in three carry an iridium.
        let first_bucket_ms = (read_ms / 1000 / bucket_secs - (buckets - 1)) * bucket_secs * 1000;
        let charted_orders = orders_since(ORDERS, millis(now), first_bucket_ms);
        let charted = summed(&data, "iridium", "monolith") + summed(&data, "iridium", "microservice");
        assert_eq!(charted, charted_orders - charted_orders / 3, "{view}");
    }
}
