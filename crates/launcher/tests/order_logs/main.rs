//! One order's log lines carry its id on every service it passes through:
//! an iridium order from HQ's feed, through iridium, the monolith's glue
//! hook and HQ's fulfillment API, in text and in JSON.
//!
//! Logs are captured from the services running in-process: the test's
//! runtime has one thread, so every service's task logs to the subscriber
//! set on it.

#![cfg(test)] // so that clippy.toml's allow-unwrap-in-tests covers the helpers too

#[path = "../common/mod.rs"]
mod common;

use common::{WAIT, one_iridium_order};
use testkit::logs::CapturedLogs;

/// Runs one iridium order through the platform, logging into a buffer in
/// `json` or text; returns its MessageId and the lines.
async fn one_order(json: bool) -> (String, Vec<String>) {
    let captured = CapturedLogs::default();
    let writer = captured.clone();
    let builder = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone());
    // The test's runtime has one thread, so every service's task logs here.
    let _logs = if json {
        tracing::subscriber::set_default(builder.json().flatten_event(true).finish())
    } else {
        tracing::subscriber::set_default(builder.finish())
    };
    let dir = tempfile::tempdir().unwrap();
    let (platform, message_id) = one_iridium_order(dir.path()).await;
    platform.shutdown(WAIT).await.unwrap();
    (message_id, captured.lines())
}

/// Every line saying `what` carries `order_id` as the format writes it.
fn assert_carry(lines: &[String], id_field: &str, what: &[&str]) {
    for needle in what {
        let matching: Vec<&String> = lines.iter().filter(|line| line.contains(needle)).collect();
        assert!(
            !matching.is_empty(),
            "no line says {needle:?} in:\n{}",
            lines.join("\n")
        );
        for line in matching {
            assert!(line.contains(id_field), "{line:?} lacks {id_field}");
        }
    }
}

/// What iridium, the monolith's hook and HQ's API each log for the order.
const EVERY_HOP: [&str; 6] = [
    "Producing 2 iridium",
    "Monolith Status Code: 200",
    "Fulfilling 2 iridium from the iridium microservice",
    "API Status Code: 200",
    "fulfillment recorded",
    "uri=/receiving",
];

/// One test, alone in its binary: tracing caches which callsites are
/// enabled across threads, and a test logging nowhere beside it could turn
/// them off for this one.
#[tokio::test]
async fn one_id_on_every_hop_in_text_and_json() {
    let (message_id, lines) = one_order(false).await;
    assert_carry(&lines, &format!("order_id={message_id}"), &EVERY_HOP);
    // HQ's line names the microservice that produced the order.
    assert_carry(&lines, "produced_by=iridium", &["fulfillment recorded"]);
    // In the one console, each line names the service that wrote it.
    assert_carry(&lines, "service{name=iridium}:", &["Producing 2 iridium"]);
    assert_carry(&lines, "service{name=monolith}:", &["Fulfilling 2 iridium"]);
    assert_carry(&lines, "service{name=hq}:", &["fulfillment recorded"]);
    let (message_id, lines) = one_order(true).await;
    let hops = EVERY_HOP.map(|hop| hop.replace("uri=", r#""uri":""#));
    assert_carry(
        &lines,
        &format!(r#""order_id":"{message_id}""#),
        &hops.each_ref().map(String::as_str),
    );
    assert_carry(&lines, r#""produced_by":"iridium""#, &["fulfillment recorded"]);
}
