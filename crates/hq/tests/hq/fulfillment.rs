//! The fulfillment API, the key portal and the ledger over HTTP.

use crate::support::{KEY, config, start_hq, url};
use serde_json::{Value, json};
use std::time::Duration;

async fn fulfill(
    client: &reqwest::Client,
    hq: &hq::RunningHq,
    key: Option<&str>,
    idempotency_key: Option<&str>,
    body: &str,
) -> (u16, Value, bool) {
    let mut request = client
        .post(url(hq, "/receiving/"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    if let Some(idem) = idempotency_key {
        request = request.header("Idempotency-Key", idem);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let replayed = response.headers().get("idempotent-replayed").is_some();
    (status, response.json().await.unwrap_or(Value::Null), replayed)
}

async fn totals(client: &reqwest::Client, hq: &hq::RunningHq, key: &str) -> Value {
    let response = client
        .get(url(hq, "/receiving/"))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn keys_are_checked_and_the_portal_issues_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(config(dir.path())).await;
    let client = reqwest::Client::new();
    let order = r#"{"iridium": 1, "magnesite": 2}"#;

    let (status, body, _) = fulfill(&client, &hq, None, None, order).await;
    assert_eq!((status, body), (403, json!({"message": "Forbidden"})));
    assert_eq!(fulfill(&client, &hq, Some("not-a-key"), None, order).await.0, 403);
    assert_eq!(fulfill(&client, &hq, Some(""), None, order).await.0, 403);
    assert_eq!(fulfill(&client, &hq, Some(KEY), None, order).await.0, 200);

    let issued: Value = client
        .post(url(&hq, "/keys"))
        .json(&json!({"owner": "team rocket"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_key = issued["api_key"].as_str().unwrap();
    assert!(new_key.starts_with("isk_"));
    assert_eq!(issued["owner"], "team rocket");
    let (status, body, _) = fulfill(&client, &hq, Some(new_key), None, order).await;
    assert_eq!(status, 200);
    assert_eq!(
        (body["iridium"].clone(), body["magnesite"].clone()),
        (json!(1), json!(2))
    );

    // Totals per key, readable over HTTP; the list shows key ids, never keys.
    let mine = totals(&client, &hq, new_key).await;
    assert_eq!(
        (mine["fulfillments"].clone(), mine["magnesite"].clone()),
        (json!(1), json!(2))
    );
    let all = client
        .get(url(&hq, "/totals"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!all.contains(new_key) && !all.contains(KEY), "{all}");
    assert!(all.contains("team rocket"));

    let bad_owner = client
        .post(url(&hq, "/keys"))
        .body("{\"owner\": 3}")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_owner.status(), 400);
    hq.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn bad_bodies_are_400() {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(config(dir.path())).await;
    let client = reqwest::Client::new();
    for body in [
        "",
        "{",
        "[1]",
        r#"{"iridium": 1}"#,
        r#"{"iridium": -1, "magnesite": 1}"#,
        r#"{"iridium": "1", "magnesite": 1}"#,
        r#"{"iridium": 1, "magnesite": 1, "gold": 1}"#,
        r#"{"iridium": 1.5, "magnesite": 1}"#,
    ] {
        let (status, body_json, _) = fulfill(&client, &hq, Some(KEY), None, body).await;
        assert_eq!(status, 400, "{body}: {body_json}");
    }
    let (status, _, _) = fulfill(
        &client,
        &hq,
        Some(KEY),
        Some(&"x".repeat(300)),
        r#"{"iridium": 1, "magnesite": 1}"#,
    )
    .await;
    assert_eq!(status, 400);
    // The key is checked before the body: a stranger learns nothing.
    assert_eq!(fulfill(&client, &hq, Some("nope"), None, "{").await.0, 403);
    let totals = totals(&client, &hq, KEY).await;
    assert_eq!(totals["fulfillments"], 0);
    hq.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn an_idempotency_key_counts_once() {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(config(dir.path())).await;
    let client = reqwest::Client::new();
    let order = r#"{"iridium": 2, "magnesite": 0}"#;
    let (status, first, replayed) = fulfill(&client, &hq, Some(KEY), Some("msg-1"), order).await;
    assert_eq!((status, replayed), (200, false));
    let (status, again, replayed) = fulfill(&client, &hq, Some(KEY), Some("msg-1"), order).await;
    assert_eq!((status, replayed), (200, true));
    assert_eq!(first["fulfillment_id"], again["fulfillment_id"]);
    // The same key for a different fulfillment is a client bug, not a repeat.
    let other = r#"{"iridium": 3, "magnesite": 0}"#;
    assert_eq!(
        fulfill(&client, &hq, Some(KEY), Some("msg-1"), other).await.0,
        422
    );
    assert_eq!(
        fulfill(&client, &hq, Some(KEY), Some("msg-2"), order).await.0,
        200
    );
    assert_eq!(fulfill(&client, &hq, Some(KEY), None, order).await.0, 200);

    let totals = totals(&client, &hq, KEY).await;
    assert_eq!(totals["fulfillments"], 3);
    assert_eq!(totals["iridium"], 6);
    assert_eq!(totals["replays"], 1);
    hq.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn the_ledger_and_keys_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let order = r#"{"iridium": 1, "magnesite": 1}"#;

    let hq = start_hq(config(dir.path())).await;
    let issued: Value = client
        .post(url(&hq, "/keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_key = issued["api_key"].as_str().unwrap().to_owned();
    assert_eq!(
        fulfill(&client, &hq, Some(&new_key), Some("m-1"), order).await.0,
        200
    );
    let cert_url = hq.hq().feed().cert_url();
    hq.shutdown(Duration::from_secs(1)).await.unwrap();

    let mut config = config(dir.path());
    config.api_keys.clear();
    let hq = start_hq(config).await;
    // The issued key still works, the idempotency key is still remembered,
    // the totals are intact, and the signing certificate is the same.
    let (status, _, replayed) = fulfill(&client, &hq, Some(&new_key), Some("m-1"), order).await;
    assert_eq!((status, replayed), (200, true));
    let totals = totals(&client, &hq, &new_key).await;
    assert_eq!(
        (totals["fulfillments"].clone(), totals["iridium"].clone()),
        (json!(1), json!(1))
    );
    let cert_file = |u: &str| u.rsplit('/').next().unwrap().to_owned();
    assert_eq!(cert_file(&hq.hq().feed().cert_url()), cert_file(&cert_url));
    hq.shutdown(Duration::from_secs(1)).await.unwrap();
}
