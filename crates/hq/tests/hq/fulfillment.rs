//! The fulfillment API, the key portal and the ledger over HTTP.

use crate::support::{
    KEY, admin_client, binary_env, config, get_json, hq_binary, post_json, publish, refusal, start_hq, url,
};
use hq::RunningHq;
use hq::ledger::JournalMode;
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
    let logs = testkit::logs::CapturedLogs::default();
    let _logging = logs.capture();
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(config(dir.path())).await;
    let client = reqwest::Client::new();
    let order = r#"{"iridium": 1, "magnesite": 2}"#;

    let (status, body, _) = fulfill(&client, &hq, None, None, order).await;
    assert_eq!((status, body), (403, json!({"message": "Forbidden"})));
    assert_eq!(fulfill(&client, &hq, Some("not-a-key"), None, order).await.0, 403);
    assert_eq!(fulfill(&client, &hq, Some(""), None, order).await.0, 403);
    assert_eq!(fulfill(&client, &hq, Some(KEY), None, order).await.0, 200);
    let not_text = client
        .post(url(&hq, "/receiving/"))
        .header(
            "x-api-key",
            reqwest::header::HeaderValue::from_bytes(b"k\xfcy").unwrap(),
        )
        .body(order.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(not_text.status(), 403);
    // The reply says only "Forbidden"; the log says which, never the key.
    let refusals: Vec<String> = logs
        .lines()
        .into_iter()
        .filter(|line| line.contains("request refused") && line.contains("status=403"))
        .collect();
    let said = |why: &str| refusals.iter().filter(|line| line.contains(why)).count();
    assert_eq!(said("why=no x-api-key header"), 2, "{refusals:#?}");
    assert_eq!(said("why=an x-api-key HQ did not issue"), 1, "{refusals:#?}");
    assert_eq!(
        said("why=an x-api-key that is not visible ASCII"),
        1,
        "{refusals:#?}"
    );
    assert!(!logs.text().contains("not-a-key"), "{refusals:#?}");

    let admin = admin_client(&hq);
    let issuing = admin
        .post(url(&hq, "/keys"))
        .json(&json!({"owner": "team rocket"}))
        .send()
        .await
        .unwrap();
    // A new key is for whoever asked, once: no cache keeps it, and no page
    // frames it or runs anything in it.
    assert_eq!(issuing.headers()["cache-control"], "no-store");
    assert_eq!(
        issuing.headers()["content-security-policy"],
        platform::server::DATA_SECURITY_POLICY
    );
    assert_eq!(issuing.headers()["x-frame-options"], "DENY");
    // So is a refusal of the serve loop's own, before HQ's routes.
    let unknown_method = admin
        .request(reqwest::Method::from_bytes(b"FETCH").unwrap(), url(&hq, "/keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_method.status(), 501);
    assert_eq!(
        unknown_method.headers()["content-security-policy"],
        platform::server::DATA_SECURITY_POLICY
    );
    assert_eq!(unknown_method.headers()["x-frame-options"], "DENY");
    let issued: Value = issuing.json().await.unwrap();
    let new_key = issued["api_key"].as_str().unwrap();
    let own_totals = client
        .get(url(&hq, "/receiving/"))
        .header("x-api-key", new_key)
        .send()
        .await
        .unwrap();
    assert_eq!(own_totals.headers()["cache-control"], "no-store");
    // The pages are checked anew rather than never kept.
    let page = client.get(url(&hq, "/dashboard")).send().await.unwrap();
    assert_eq!(page.headers()["cache-control"], "no-cache");
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
    let all = admin
        .get(url(&hq, "/totals"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!all.contains(new_key) && !all.contains(KEY), "{all}");
    assert!(all.contains("team rocket"));

    // An array of a body's fields is not the body (serde would read it so).
    for (path, array) in [
        ("/keys", r#"["arr-owner"]"#),
        ("/keys", "[]"),
        ("/faults", "[1, 1]"),
        ("/topics/orders/subscriptions", r#"["http://127.0.0.1:9/arr/"]"#),
    ] {
        let refused = admin.post(url(&hq, path)).body(array).send().await.unwrap();
        let message = refusal(refused, 400).await;
        assert!(
            message.contains("a JSON object, not an array"),
            "{path} {array}: {message}"
        );
    }
    let bad_owner = admin
        .post(url(&hq, "/keys"))
        .body("{\"owner\": 3}")
        .send()
        .await
        .unwrap();
    let message = refusal(bad_owner, 400).await;
    assert!(
        message
            .starts_with(r#"expected {"owner": "name", "succeeds": "<key_id>"} (each optional) or no body"#),
        "{message}"
    );
    // A control character, a direction override (it turned the portal's
    // sentence after the name around), a line separator, nothing visible
    // (a blank in every sentence that names the owner).
    for owner in [
        "a\u{7}b",
        "Bob\u{202e} evil",
        "Bob\u{2067}",
        "a\u{2028}b",
        "\u{200b}\u{3164}",
        " \u{feff} ",
    ] {
        let refused = post_json(&hq, "/keys", &json!({ "owner": owner })).await;
        let message = refusal(refused, 400).await;
        assert!(
            message.contains("owner must be 1 to 100 printable characters"),
            "{owner:?}: {message}"
        );
    }
    // Any script is a name.
    let arabic = post_json(&hq, "/keys", &json!({"owner": "سلمى"})).await;
    assert_eq!(arabic.status(), 201);
    hq.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn a_revoked_key_is_refused_from_then_on_and_after_a_restart_though_given_again() {
    let logs = testkit::logs::CapturedLogs::default();
    let _logging = logs.capture();
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(config(dir.path())).await;
    let client = reqwest::Client::new();
    let admin = admin_client(&hq);
    let order = r#"{"iridium": 1, "magnesite": 2}"#;
    let issued = post_json(&hq, "/keys", &json!({"owner": "leaky team"})).await;
    let issued: Value = issued.json().await.unwrap();
    let (leaked, key_id) = (
        issued["api_key"].as_str().unwrap(),
        issued["key_id"].as_str().unwrap(),
    );
    assert_eq!(fulfill(&client, &hq, Some(leaked), None, order).await.0, 200);
    assert_eq!(dashboard_keys(&hq).await, (2, 0));
    let revoke =
        |key_id: &str, client: &reqwest::Client| client.delete(url(&hq, &format!("/keys/{key_id}"))).send();

    // Only the admin revokes, and only a key id HQ has.
    assert_eq!(revoke(key_id, &client).await.unwrap().status(), 401);
    for unknown in ["000000000000", "not-a-key-id", "ABCDEF012345"] {
        let message = refusal(revoke(unknown, &admin).await.unwrap(), 404).await;
        assert!(message.contains("no API key has that key id"), "{message}");
        assert!(!message.contains(unknown), "{message}");
    }
    assert_eq!(fulfill(&client, &hq, Some(leaked), None, order).await.0, 200);

    let revoked: Value = revoke(key_id, &admin).await.unwrap().json().await.unwrap();
    assert_eq!(
        (revoked["key_id"].as_str(), revoked["owner"].as_str()),
        (Some(key_id), Some("leaky team"))
    );
    let revoked_at = revoked["revoked_at"].as_str().unwrap().to_owned();
    // Refused from the next call on, as an unknown key is; the log says why.
    let (status, body, _) = fulfill(&client, &hq, Some(leaked), None, order).await;
    assert_eq!((status, body), (403, json!({"message": "Forbidden"})));
    let own_totals = client
        .get(url(&hq, "/receiving/"))
        .header("x-api-key", leaked)
        .send()
        .await
        .unwrap();
    assert_eq!(own_totals.status(), 403);
    let said = logs.text();
    assert!(
        said.contains(&format!("why=an x-api-key HQ's admin revoked (key id {key_id})")),
        "{said}"
    );
    assert!(
        said.contains(&format!("key_id={key_id}"))
            && said.contains("API key revoked")
            && said.contains(r#"owner="leaky team""#),
        "{said}"
    );
    assert!(!said.contains(leaked));
    // Other keys are untouched; revoking again changes nothing.
    assert_eq!(fulfill(&client, &hq, Some(KEY), None, order).await.0, 200);
    let again: Value = revoke(key_id, &admin).await.unwrap().json().await.unwrap();
    assert_eq!(again, revoked);
    let revocations = logs
        .lines()
        .iter()
        .filter(|line| line.contains("API key revoked"))
        .count();
    assert_eq!(revocations, 1, "logged again for a key already revoked");
    // Its totals stay, marked revoked.
    let all = get_json(&hq, "/totals").await;
    let row = |all: &Value, id: &str| {
        all.as_array()
            .unwrap()
            .iter()
            .find(|k| k["key_id"] == id)
            .unwrap()
            .clone()
    };
    let leaked_row = row(&all, key_id);
    assert_eq!(
        (
            leaked_row["fulfillments"].clone(),
            leaked_row["revoked_at"].as_str()
        ),
        (json!(2), Some(revoked_at.as_str()))
    );
    // The dashboard counts it among the keys, and says it was revoked, once
    // the figures it read before the revocation are no longer reused.
    testkit::wait_until(
        "the dashboard's count of revoked keys",
        Duration::from_secs(10),
        async || (dashboard_keys(&hq).await == (2, 1)).then_some(()),
    )
    .await;

    // A key given at start, revoked, stays refused when HQ starts with it again.
    let start_key_id = all
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["owner"] == "given at start")
        .unwrap()["key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(row(&all, &start_key_id)["revoked_at"], Value::Null);
    assert_eq!(revoke(&start_key_id, &admin).await.unwrap().status(), 200);
    hq.shutdown(Duration::from_secs(1)).await.unwrap();
    let hq = start_hq(config(dir.path())).await;
    assert_eq!(fulfill(&client, &hq, Some(KEY), None, order).await.0, 403);
    assert_eq!(fulfill(&client, &hq, Some(leaked), None, order).await.0, 403);
    let said = logs.text();
    assert!(
        said.contains("an HQ_API_KEYS key was revoked and stays refused"),
        "{said}"
    );
    hq.shutdown(Duration::from_secs(1)).await.unwrap();
}

/// A repeat is recognised under the same key only (teams sharing HQ's
/// topics fulfil the same orders), so rotating a service's key counted
/// again every order SNS retried across the change or that was re-sent
/// from its dead-letter queue after it. A key issued to succeed another
/// shares the line's repeats, both ways, and no other team's.
#[tokio::test]
async fn a_key_issued_to_succeed_another_recognises_its_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(config(dir.path())).await;
    let client = reqwest::Client::new();
    let order = ONE_EACH;
    let issue = async |body: Value| -> (u16, Value) {
        let response = post_json(&hq, "/keys", &body).await;
        (response.status().as_u16(), response.json().await.unwrap())
    };
    let (_, first) = issue(json!({"owner": "team a"})).await;
    let first_key = first["api_key"].as_str().unwrap();
    let first_id = first["key_id"].as_str().unwrap();
    assert!(
        !fulfill(&client, &hq, Some(first_key), Some("order-1"), order)
            .await
            .2
    );

    let (status, second) = issue(json!({"owner": "team a", "succeeds": first_id})).await;
    assert_eq!((status, second["succeeds"].as_str()), (201, Some(first_id)));
    let second_key = second["api_key"].as_str().unwrap();
    // The first key's order, delivered again under the second: a repeat.
    let (status, body, replayed) = fulfill(&client, &hq, Some(second_key), Some("order-1"), order).await;
    assert_eq!((status, replayed), (200, true), "{body}");
    // And the other way: the second key's order, again under the first.
    assert!(
        !fulfill(&client, &hq, Some(second_key), Some("order-2"), order)
            .await
            .2
    );
    assert!(
        fulfill(&client, &hq, Some(first_key), Some("order-2"), order)
            .await
            .2
    );
    // A third in the line shares the first's repeats.
    let (_, third) = issue(json!({"owner": "team a", "succeeds": second["key_id"]})).await;
    let third_key = third["api_key"].as_str().unwrap();
    assert!(
        fulfill(&client, &hq, Some(third_key), Some("order-1"), order)
            .await
            .2
    );
    // Another team's key fulfils the same order as its own.
    let (_, other) = issue(json!({"owner": "team b"})).await;
    let other_key = other["api_key"].as_str().unwrap();
    assert!(
        !fulfill(&client, &hq, Some(other_key), Some("order-1"), order)
            .await
            .2
    );
    // Each order counted once for team a, each key its own totals.
    let mut line = Vec::new();
    for key in [first_key, second_key, third_key] {
        line.push(totals(&client, &hq, key).await["fulfillments"].as_u64().unwrap());
    }
    assert_eq!(line, [1, 1, 0]);
    // A key id nobody has, or no key id at all, is refused.
    let (status, refusal) = issue(json!({"owner": "team c", "succeeds": "0123456789ab"})).await;
    assert_eq!(status, 404, "{refusal}");
    let (status, refusal) = issue(json!({"owner": "team c", "succeeds": "team a"})).await;
    assert_eq!(status, 400, "{refusal}");
    hq.shutdown(Duration::from_secs(1)).await.unwrap();
}

/// The dashboard's count of keys, and of those revoked.
async fn dashboard_keys(hq: &hq::RunningHq) -> (u64, u64) {
    let dashboard = get_json(hq, "/dashboard/data?view=hour").await;
    let count = |field: &str| dashboard["totals"][field].as_u64().unwrap();
    (count("keys"), count("revoked_keys"))
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
        // A struct's fields in order, which serde reads as the struct.
        "[3, 4]",
        r#"{"iridium": 1}"#,
        r#"{"iridium": -1, "magnesite": 1}"#,
        r#"{"iridium": "1", "magnesite": 1}"#,
        r#"{"iridium": 1, "magnesite": 1, "gold": 1}"#,
        r#"{"iridium": 1.5, "magnesite": 1}"#,
        // More than any order asks for.
        r#"{"iridium": 1000001, "magnesite": 0}"#,
        r#"{"iridium": 0, "magnesite": 4294967295}"#,
    ] {
        let (status, answer, _) = fulfill(&client, &hq, Some(KEY), None, body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with(r#"expected exactly {"iridium": 1, "magnesite": 1}"#),
            "{body}: {message}"
        );
    }
    // Too long, or with a space or a tab inside: not the key a sender meant.
    for idempotency_key in ["x".repeat(300), "a b".into(), "a\tb".into()] {
        let (status, answer, _) = fulfill(
            &client,
            &hq,
            Some(KEY),
            Some(&idempotency_key),
            r#"{"iridium": 1, "magnesite": 1}"#,
        )
        .await;
        assert_eq!(status, 400, "{idempotency_key:?}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains("Idempotency-Key must be 1 to 255"), "{message}");
    }
    // An order id that could not be logged as it is: refused, quoted escaped.
    let answer = client
        .post(url(&hq, "/receiving/"))
        .header("x-api-key", KEY)
        .header("x-interstella-order-id", r#"id" forged="1"#)
        .body(r#"{"iridium": 1, "magnesite": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    let message = answer.json::<serde_json::Value>().await.unwrap()["message"].clone();
    let message = message.as_str().unwrap_or_default();
    assert!(
        message.contains("x-interstella-order-id header must be 1 to 64")
            && message.ends_with(r#"got "id\" forged=\"1""#),
        "{message}"
    );
    // The key is checked before the body: a stranger learns nothing.
    assert_eq!(fulfill(&client, &hq, Some("nope"), None, "{").await.0, 403);
    let totals = totals(&client, &hq, KEY).await;
    assert_eq!(totals["fulfillments"], 0);
    hq.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn an_idempotency_key_counts_once() {
    let logs = testkit::logs::CapturedLogs::default();
    let _logging = logs.capture();
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(config(dir.path())).await;
    let client = reqwest::Client::new();
    let order = r#"{"iridium": 2, "magnesite": 0}"#;
    let (status, first, replayed) = fulfill(&client, &hq, Some(KEY), Some("msg-1"), order).await;
    assert_eq!((status, replayed), (200, false));
    let (status, again, replayed) = fulfill(&client, &hq, Some(KEY), Some("msg-1"), order).await;
    assert_eq!((status, replayed), (200, true));
    assert_eq!(first["fulfillment_id"], again["fulfillment_id"]);
    // The same key with other quantities is the same order gathered again
    // (a STRANGLED changed between SNS' attempts): the first stands.
    let other = r#"{"iridium": 0, "magnesite": 0}"#;
    let (status, differing, replayed) = fulfill(&client, &hq, Some(KEY), Some("msg-1"), other).await;
    assert_eq!((status, replayed), (200, true));
    for field in ["fulfillment_id", "iridium", "magnesite"] {
        assert_eq!(differing[field], first[field], "the first fulfillment's {field}");
    }
    // Said apart in the log: a plain repeat, and one asking for other quantities.
    let said = |what: &str| logs.lines().iter().filter(|line| line.contains(what)).count();
    assert_eq!(said("repeated fulfillment counted once"), 1, "{}", logs.text());
    assert_eq!(
        said("repeated fulfillment asked for other quantities"),
        1,
        "{}",
        logs.text()
    );
    assert_eq!(
        fulfill(&client, &hq, Some(KEY), Some("msg-2"), order).await.0,
        200
    );
    assert_eq!(fulfill(&client, &hq, Some(KEY), None, order).await.0, 200);

    let totals = totals(&client, &hq, KEY).await;
    assert_eq!(totals["fulfillments"], 3);
    assert_eq!(totals["iridium"], 6);
    assert_eq!(totals["replays"], 2);
    hq.shutdown(Duration::from_secs(1)).await.unwrap();
}

/// SNS may deliver one message to two tasks at once (a retry racing a slow
/// first attempt): the same key arriving together still counts once, and
/// every answer names the one fulfillment.
#[tokio::test]
async fn an_idempotency_key_arriving_many_times_at_once_counts_once() {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(config(dir.path())).await;
    let client = reqwest::Client::new();
    let order = r#"{"iridium": 1, "magnesite": 1}"#;
    let answers = futures_util::future::join_all(
        (0..12).map(|_| fulfill(&client, &hq, Some(KEY), Some("msg-together"), order)),
    )
    .await;
    assert!(answers.iter().all(|(status, _, _)| *status == 200), "{answers:?}");
    let firsts = answers.iter().filter(|(_, _, replayed)| !replayed).count();
    assert_eq!(firsts, 1, "{answers:?}");
    let id = &answers[0].1["fulfillment_id"];
    assert!(
        answers.iter().all(|(_, body, _)| &body["fulfillment_id"] == id),
        "{answers:?}"
    );
    let totals = totals(&client, &hq, KEY).await;
    assert_eq!(
        (totals["fulfillments"].as_u64(), totals["replays"].as_u64()),
        (Some(1), Some(11))
    );
    hq.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn the_ledger_and_keys_survive_a_restart() {
    survive_a_restart(JournalMode::Wal).await;
}

#[tokio::test]
async fn in_rollback_journal_mode_as_on_efs_too() {
    survive_a_restart(JournalMode::Delete).await;
}

/// The journal mode recorded in the ledger file's header (bytes 18 and 19:
/// 2 for WAL, 1 for the rollback journal).
fn journal_mode_in_header(dir: &std::path::Path) -> JournalMode {
    let header = std::fs::read(dir.join("hq-ledger.sqlite3")).unwrap();
    match (header[18], header[19]) {
        (2, 2) => JournalMode::Wal,
        (1, 1) => JournalMode::Delete,
        other => panic!("not a journal mode: {other:?}"),
    }
}

/// Keys, fulfillments, idempotency keys, the signing key and the admin
/// credential kept across a restart, in journal mode `mode`.
async fn survive_a_restart(mode: JournalMode) {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let order = r#"{"iridium": 1, "magnesite": 1}"#;
    let config = |dir: &std::path::Path| {
        let mut config = config(dir);
        config.journal_mode = mode;
        config
    };
    let wal = dir.path().join("hq-ledger.sqlite3-wal");

    let hq = start_hq(config(dir.path())).await;
    let admin_token = hq.hq().admin_token().expose().to_owned();
    let issued: Value = admin_client(&hq)
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
    // A write-ahead log beside the database in WAL mode only (NFS could not share its index).
    assert_eq!(wal.exists(), mode == JournalMode::Wal, "{mode:?}");
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
    // The admin credential made at first start is kept too.
    assert_eq!(hq.hq().admin_token().expose(), admin_token);
    hq.shutdown(Duration::from_secs(1)).await.unwrap();
    assert_eq!(journal_mode_in_header(dir.path()), mode);
}

#[tokio::test]
async fn injected_faults_refuse_or_lose_the_answer_and_are_used_up() {
    let logs = testkit::logs::CapturedLogs::default();
    let _logging = logs.capture();
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(config(dir.path())).await;
    let client = reqwest::Client::new();
    let order = r#"{"iridium": 1, "magnesite": 0}"#;
    let plan = json!({"fail_fulfillments": 1, "lose_responses": 1});
    let planned = post_json(&hq, "/faults", &plan).await;
    assert_eq!(planned.status(), 200);
    assert_eq!(planned.json::<Value>().await.unwrap(), plan);
    // Said once, with what was asked for: why the next orders fail.
    let armed: Vec<String> = logs
        .lines()
        .into_iter()
        .filter(|line| line.contains("faults armed"))
        .collect();
    assert_eq!(armed.len(), 1, "{armed:#?}");
    assert!(
        armed[0].contains("fail_fulfillments=1") && armed[0].contains("lose_responses=1"),
        "{armed:#?}"
    );

    // Refused before recording, then recorded with the answer lost: the
    // retry of the lost one is a replay, counted once.
    let (status, body, _) = fulfill(&client, &hq, Some(KEY), Some("f-1"), order).await;
    assert_eq!(status, 503);
    assert_eq!(
        body["message"],
        "injected fault: fulfillment refused before recording"
    );
    let (status, body, _) = fulfill(&client, &hq, Some(KEY), Some("f-1"), order).await;
    assert_eq!(status, 503);
    assert_eq!(
        body["message"],
        "injected fault: fulfillment recorded, answer lost"
    );
    let (status, _, replayed) = fulfill(&client, &hq, Some(KEY), Some("f-1"), order).await;
    assert_eq!((status, replayed), (200, true));
    // The fulfillment whose answer was lost is in the log as any other,
    // with its quantities: the log's fulfillments add up to the totals.
    let recorded: Vec<String> = logs
        .lines()
        .into_iter()
        .filter(|line| line.contains("fulfillment recorded") && !line.contains("injected fault"))
        .collect();
    assert_eq!(recorded.len(), 1, "{recorded:#?}");
    assert!(recorded[0].contains("iridium="), "{recorded:#?}");

    assert_eq!(
        get_json(&hq, "/faults").await,
        json!({"fail_fulfillments": 0, "lose_responses": 0})
    );
    let totals = totals(&client, &hq, KEY).await;
    assert_eq!(
        (totals["fulfillments"].clone(), totals["replays"].clone()),
        (json!(1), json!(1))
    );
    let message = refusal(post_json(&hq, "/faults", &json!({"fail": 1})).await, 400).await;
    assert!(
        message.starts_with("expected {\"fail_fulfillments\": n"),
        "{message}"
    );
    // A second plan adds to the first; DELETE disarms them all.
    post_json(&hq, "/faults", &json!({"fail_fulfillments": 2})).await;
    let added = post_json(
        &hq,
        "/faults",
        &json!({"fail_fulfillments": 3, "lose_responses": 1}),
    )
    .await;
    assert_eq!(
        added.json::<Value>().await.unwrap(),
        json!({"fail_fulfillments": 5, "lose_responses": 1})
    );
    let cleared = admin_client(&hq)
        .delete(url(&hq, "/faults"))
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), 200);
    assert_eq!(
        cleared.json::<Value>().await.unwrap(),
        json!({"fail_fulfillments": 0, "lose_responses": 0})
    );
    // Added up past what a counter holds, faults stay armed: they wrapped
    // to a few once.
    post_json(&hq, "/faults", &json!({"fail_fulfillments": u32::MAX})).await;
    let added = post_json(&hq, "/faults", &json!({"fail_fulfillments": 2})).await;
    assert_eq!(
        added.json::<Value>().await.unwrap(),
        json!({"fail_fulfillments": u32::MAX, "lose_responses": 0})
    );
    admin_client(&hq)
        .delete(url(&hq, "/faults"))
        .send()
        .await
        .unwrap();
    let (status, _, _) = fulfill(&client, &hq, Some(KEY), Some("f-2"), order).await;
    assert_eq!(status, 200, "a fault disarmed still failed an order");
    hq.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test]
async fn reconciliation_and_topics_keep_their_json() {
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(config(dir.path())).await;
    publish(&hq, "iridium", r#"{"iridium": 2}"#).await;

    // The totals sit at the top level beside `topics`, every count named.
    let counts = |published: u64, unrouted: u64| {
        json!({
            "published": published, "fulfilled": 0, "rejected": 0, "pending": 0,
            "unrouted": unrouted, "lost": 0, "duplicated": 0,
        })
    };
    let mut expected = counts(1, 1);
    expected["topics"] = json!({ "iridium": counts(1, 1) });
    // No order unaccounted for (an unrouted one is not): none named.
    expected["unaccounted"] = json!([]);
    // Nothing fulfilled, so nothing produced, by anyone.
    let none = json!({"monolith": 0, "microservice": 0, "unattributed": 0});
    expected["produced"] = json!({"iridium": none, "magnesite": none});
    assert_eq!(get_json(&hq, "/reconciliation").await, expected);

    let topics = get_json(&hq, "/topics").await;
    let iridium = &topics["topics"][1];
    assert_eq!(iridium["name"], "iridium");
    assert_eq!(iridium["topicArn"], "arn:aws:sns:us-east-1:000000000000:iridium");
    assert_eq!(iridium["subscriptions"], json!([]));
    assert_eq!(
        iridium["stats"],
        json!({"published": 1, "delivered": 0, "rejected": 0, "failed": 0, "retried": 0, "in_flight": 0, "unrouted": 1})
    );
    hq.shutdown(Duration::from_secs(1)).await.unwrap();
}

/// Two HQs on one ledger would each run a generator and fail each other's
/// writes: the second exits at once (1: no setting is wrong), saying which
/// directory is taken.
#[tokio::test]
async fn a_second_hq_on_a_data_directory_in_use_exits_with_one_line_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let first = start_hq(config(dir.path())).await;
    let env = binary_env(dir.path());
    let taken = dir.path().display().to_string();
    testkit::process::exits_with_code_and_one_line_naming(
        hq_binary(),
        &env,
        1,
        &["another HQ is using the ledger", &taken],
    )
    .await;
    first.shutdown(Duration::from_secs(1)).await.unwrap();
}

/// Where HQ keeps its ledger, set blank, is refused rather than left to its
/// default: a new ledger in `./.interstella-hq`, or WAL on EFS, unnoticed;
/// so is the admin credential (the data directory's would be used).
#[tokio::test]
async fn a_blank_data_directory_or_journal_mode_is_refused_not_defaulted() {
    let dir = tempfile::tempdir().unwrap();
    for variable in hq::cli::BLANK_REFUSED {
        let mut env = binary_env(dir.path());
        env.insert(variable.into(), " ".into());
        testkit::process::exits_with_one_line_naming(hq_binary(), &env, &[variable]).await;
    }
}

/// `GET /` as the load balancer's health checker asks it: its User-Agent,
/// no Accept.
async fn health_check(hq: &hq::RunningHq) -> (u16, String) {
    let response = reqwest::Client::new()
        .get(url(hq, "/"))
        .header("user-agent", "ELB-HealthChecker/2.0")
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

// The ledger is made unwritable with SQLite's own `PRAGMA query_only` on
// HQ's writing connection: the engine then refuses every write with
// SQLITE_READONLY, the code it gives for a database it cannot write, and the
// refusal takes the path a read-only or full disk's does (the fulfillment's
// transaction, the ledger's error, the API's 5xx, the health the ledger
// notes). The tests may run as root, where a chmod stops no write, and have
// no file system to fill; the fault seam of `POST /faults` refuses before
// the ledger is touched, so it would not show that the ledger's own failure
// is seen.

/// An order for one of each resource.
const ONE_EACH: &str = r#"{"iridium": 1, "magnesite": 1}"#;

/// HQ on a fresh data directory (kept while the first value lives) whose
/// ledger is probed only when the test asks: the prober's own ticks are out
/// of the way, and the test takes its steps.
async fn start_hq_probed_by_hand() -> (tempfile::TempDir, RunningHq) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.ledger_probe_every = Duration::from_secs(3600);
    let hq = start_hq(config).await;
    (dir, hq)
}

#[tokio::test]
async fn the_health_check_answers_503_once_a_write_fails_and_200_once_one_succeeds() {
    // No probe during the test: what the health check says comes from the orders' writes.
    let (_dir, hq) = start_hq_probed_by_hand().await;
    let client = reqwest::Client::new();
    let order = ONE_EACH;
    assert_eq!(health_check(&hq).await.0, 200);
    assert_eq!(fulfill(&client, &hq, Some(KEY), None, order).await.0, 200);

    hq.hq().ledger().set_query_only(true).await.unwrap();
    // Refused, not recorded, and the health check says so at once.
    let (status, body, _) = fulfill(&client, &hq, Some(KEY), Some("order-2"), order).await;
    assert_eq!(status, 500, "{body}");
    let (status, body) = health_check(&hq).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("HQ's ledger cannot record") && body.contains("readonly"),
        "{body}"
    );
    // A browser asking for the portal is told the same.
    let page = client
        .get(url(&hq, "/"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 503);
    // The health check itself writes nothing: still 503 once the disk is
    // fine, until a write finds it so.
    hq.hq().ledger().set_query_only(false).await.unwrap();
    assert_eq!(health_check(&hq).await.0, 503);
    let (status, body, replayed) = fulfill(&client, &hq, Some(KEY), Some("order-2"), order).await;
    assert_eq!((status, replayed), (200, false), "{body}");
    assert_eq!(health_check(&hq).await.0, 200);
    assert_eq!(totals(&client, &hq, KEY).await["fulfillments"], 2);
    hq.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// SQLite writes on to a file deleted or replaced under it, which the next
/// start never opens: HQ answered 200 for orders it then lost, and its lock
/// let a second HQ take the directory.
#[tokio::test]
async fn a_ledger_file_deleted_or_replaced_while_hq_runs_refuses_orders_instead_of_losing_them() {
    let client = reqwest::Client::new();
    let order = ONE_EACH;
    use hq::ledger::JournalMode::{Delete, Wal};
    for (file, replace, journal) in [
        ("hq-ledger.sqlite3", false, Wal),
        ("hq-ledger.sqlite3-wal", false, Wal),
        ("hq.lock", true, Wal),
        // As on EFS, where SQLite finds a database moved before HQ does.
        ("hq-ledger.sqlite3", false, Delete),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dir.path());
        config.ledger_probe_every = Duration::from_secs(3600);
        config.journal_mode = journal;
        let hq = start_hq(config).await;
        let path = dir.path().join(file);
        assert_eq!(fulfill(&client, &hq, Some(KEY), None, order).await.0, 200);
        std::fs::remove_file(&path).unwrap();
        if replace {
            std::fs::write(&path, "").unwrap();
        }
        let (status, body, _) = fulfill(&client, &hq, Some(KEY), Some("order-2"), order).await;
        assert_eq!(status, 500, "{file}: {body}");
        let (status, body) = health_check(&hq).await;
        assert_eq!(status, 503, "{file}: {body}");
        assert!(
            body.contains(file) && body.contains("deleted or replaced"),
            "{body}"
        );
        // Nothing more is tried: the next order is refused the same way.
        let (status, body, _) = fulfill(&client, &hq, Some(KEY), Some("order-3"), order).await;
        assert_eq!(status, 500, "{file}: {body}");
        // The stop says so too: its checkpoint is a write like any other.
        let stopped = hq.shutdown(Duration::from_secs(5)).await;
        assert!(stopped.is_err_and(|e| e.to_string().contains("deleted or replaced")));
    }
}

#[tokio::test]
async fn after_a_failed_write_the_next_probe_runs_and_sees_the_ledger_record_again() {
    let (_dir, hq) = start_hq_probed_by_hand().await;
    let ledger = hq.hq().ledger();
    let client = reqwest::Client::new();
    let order = ONE_EACH;
    // A write that succeeded, then one that failed, both since the last probe.
    assert_eq!(fulfill(&client, &hq, Some(KEY), None, order).await.0, 200);
    ledger.set_query_only(true).await.unwrap();
    assert_eq!(fulfill(&client, &hq, Some(KEY), None, order).await.0, 500);
    assert_eq!(health_check(&hq).await.0, 503);
    ledger.set_query_only(false).await.unwrap();
    // The writes since the last look do not stand in for a probe while the
    // ledger is failing: this one runs, and the recovery shows at once.
    ledger.probe_if_idle().await;
    let (status, body) = health_check(&hq).await;
    assert_eq!(status, 200, "{body}");
    hq.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// A disk with room for the probe's one page but not for an order's five:
/// the probe wrote its page and answered 200 between orders that all
/// failed, so the health check flapped while every order was refused. It
/// now asks the file system for room for orders too.
#[tokio::test]
async fn a_probe_asks_for_room_for_orders_not_only_for_its_own_page() {
    let (_dir, hq) = start_hq_probed_by_hand().await;
    let ledger = hq.hq().ledger();
    let client = reqwest::Client::new();
    let order = ONE_EACH;
    assert_eq!(health_check(&hq).await.0, 200);

    // A disk always too full for orders.
    ledger.set_room_to_record(u64::MAX);
    let probed = ledger.probe().await;
    assert!(probed.is_err(), "{probed:?}");
    let (status, body) = health_check(&hq).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("KiB free where the ledger is"), "{body}");
    // While failing it probes at every call, and still finds too little room.
    ledger.probe_if_idle().await;
    assert_eq!(health_check(&hq).await.0, 503);
    // An order that is recorded says the ledger records after all.
    assert_eq!(fulfill(&client, &hq, Some(KEY), None, order).await.0, 200);
    assert_eq!(health_check(&hq).await.0, 200);

    // Room again: the probe after a failure finds it.
    assert!(ledger.probe().await.is_err());
    ledger.set_room_to_record(hq::ledger::ROOM_TO_RECORD);
    ledger.probe_if_idle().await;
    let (status, body) = health_check(&hq).await;
    assert_eq!(status, 200, "{body}");
    hq.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn with_no_orders_coming_a_probe_finds_whether_the_ledger_can_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.ledger_probe_every = Duration::from_millis(50);
    let hq = start_hq(config).await;
    let wait = Duration::from_secs(5);
    assert_eq!(health_check(&hq).await.0, 200);

    // As a task its load balancer sends nothing: no write but the probe's.
    hq.hq().ledger().set_query_only(true).await.unwrap();
    testkit::wait_until("the health check to answer 503", wait, async || {
        (health_check(&hq).await.0 == 503).then_some(())
    })
    .await;
    hq.hq().ledger().set_query_only(false).await.unwrap();
    testkit::wait_until("the health check to answer 200 again", wait, async || {
        (health_check(&hq).await.0 == 200).then_some(())
    })
    .await;
    let client = reqwest::Client::new();
    let order = r#"{"iridium": 1, "magnesite": 0}"#;
    assert_eq!(fulfill(&client, &hq, Some(KEY), None, order).await.0, 200);
    hq.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// Anyone may send a real order's id without a key: HQ's lines for the
/// refused call name it only as claimed, never as the order's own id.
#[tokio::test]
async fn a_caller_refused_names_its_order_only_as_claimed() {
    let logs = testkit::logs::CapturedLogs::default();
    let _logging = logs.capture();
    let dir = tempfile::tempdir().unwrap();
    let hq = start_hq(config(dir.path())).await;
    let order_id = "6e0f1c2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b";
    let client = reqwest::Client::new();
    let refused = client
        .post(url(&hq, "/receiving/"))
        .header(contracts::order_id::ORDER_ID_HEADER, order_id)
        .header("x-api-key", "not-a-key")
        .body(r#"{"iridium": 1, "magnesite": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let (status, _, _) = fulfill(&client, &hq, Some(KEY), None, r#"{"iridium": 1, "magnesite": 0}"#).await;
    assert_eq!(status, 200);
    hq.shutdown(Duration::from_secs(10)).await.unwrap();
    let about = logs
        .lines()
        .into_iter()
        .filter(|line| line.contains(order_id))
        .collect::<Vec<_>>();
    assert!(!about.is_empty(), "{}", logs.text());
    assert!(
        about
            .iter()
            .all(|line| line.contains(&format!("claimed_order_id={order_id}"))
                && !line.contains(&format!(" order_id={order_id}"))),
        "{about:#?}"
    );
}
