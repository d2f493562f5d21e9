//! One order is one trace: with an OTLP endpoint set, HQ's publish, the
//! iridium service's order, the monolith's glue hook and HQ's fulfillment
//! API export spans of one trace id, linked by the `traceparent` in the SNS
//! message attributes and in each downstream call's headers; an order
//! that fails has an `order` span marked failed, linked to the delivery's
//! `request` span, where its error line is.
//!
//! The receiver is a real OTLP/HTTP endpoint: an axum route decoding
//! `ExportTraceServiceRequest` with prost. Alone in its binary: it installs
//! the process' global subscriber.

#![cfg(test)] // so that clippy.toml's allow-unwrap-in-tests covers the helpers too

#[path = "../common/mod.rs"]
mod common;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use common::{WAIT, all_fulfilled, one_iridium_order};
use hq::feed::Topic;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as SpanStatus;
use platform::settings::LogFormat;
use platform::traces::TraceExport;
use prost::Message as _;
use std::sync::{Arc, Mutex};
use testkit::wait::wait_until;

/// Every span received.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<Span>>>);

async fn receive(State(received): State<Received>, body: Bytes) -> StatusCode {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return StatusCode::BAD_REQUEST;
    };
    let spans = request
        .resource_spans
        .into_iter()
        .flat_map(|resource| resource.scope_spans)
        .flat_map(|scope| scope.spans);
    received.0.lock().unwrap().extend(spans);
    StatusCode::OK
}

/// The string attribute `key` of `span`.
fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    let value = span.attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?;
    match value.value.as_ref()? {
        Value::StringValue(text) => Some(text),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_order_is_one_trace_across_every_hop_and_a_failed_one_says_so() {
    let received = Received::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    let receiver = Router::new()
        .route("/v1/traces", post(receive))
        .with_state(received.clone());
    tokio::spawn(async move { axum::serve(listener, receiver).await });
    let export = TraceExport {
        endpoint: Some(endpoint),
        service: "interstella".into(),
    };
    let logs = platform::telemetry::init_with(LogFormat::Text, Some(export));

    let dir = tempfile::tempdir().unwrap();
    let (mut platform, message_id) = one_iridium_order(dir.path()).await;

    let (publish, order, hook, api) = wait_until("every hop's span exported", WAIT, async || {
        // Blocks this worker while the exporter sends on the other.
        tokio::task::block_in_place(|| logs.flush_traces());
        let spans = received.0.lock().unwrap().clone();
        let publish = spans
            .iter()
            .find(|s| s.name == "publish" && attribute(s, "order_id") == Some(&message_id))?
            .clone();
        let in_trace = |name: &str, uri: Option<&str>| {
            spans
                .iter()
                .find(|s| {
                    s.trace_id == publish.trace_id
                        && s.name == name
                        && uri.is_none_or(|uri| attribute(s, "uri").is_some_and(|u| u.starts_with(uri)))
                })
                .cloned()
        };
        Some((
            publish.clone(),
            in_trace("order", None)?,
            in_trace("request", Some("/fulfill"))?,
            in_trace("request", Some("/receiving"))?,
        ))
    })
    .await;
    assert_eq!(
        order.parent_span_id, publish.span_id,
        "iridium's order continues HQ's publish"
    );
    assert_eq!(attribute(&hook, "order_id"), Some(message_id.as_str()));
    assert_eq!(attribute(&api, "order_id"), Some(message_id.as_str()));
    assert_ne!(api.parent_span_id, Vec::<u8>::new(), "HQ's API span has a parent");

    // With the monolith stopped, iridium's glue hook call fails: the order
    // fails inside its `order` span, and its 5xx is the delivery's.
    platform.monolith.stop().await.unwrap();
    let failed = platform
        .hq()
        .publisher()
        .publish(Topic::Iridium, &Topic::Iridium.order(3), &Default::default())
        .await
        .unwrap()
        .message_id;
    let (order, delivery) = wait_until("a failed order's span exported", WAIT, async || {
        tokio::task::block_in_place(|| logs.flush_traces());
        let spans = received.0.lock().unwrap().clone();
        let order = spans.iter().find(|s| {
            s.name == "order"
                && attribute(s, "order_id") == Some(&failed)
                && s.status
                    .as_ref()
                    .is_some_and(|status| status.code == SpanStatus::Error as i32)
        })?;
        let link = order.links.first()?;
        let delivery = spans
            .iter()
            .find(|s| s.trace_id == link.trace_id && s.span_id == link.span_id)?;
        Some((order.clone(), delivery.clone()))
    })
    .await;
    assert_eq!(delivery.name, "request", "the failed order links to its delivery");
    assert_eq!(attribute(&delivery, "order_id"), Some(failed.as_str()));
    assert_ne!(
        delivery.trace_id, order.trace_id,
        "SNS' delivery carries no traceparent"
    );
    // Its own trace's root: not a child of the span iridium runs in under
    // the launcher, which would put every delivery in one trace.
    assert_eq!(
        delivery.parent_span_id,
        Vec::<u8>::new(),
        "a delivery without a traceparent starts its own trace"
    );
    let why = order
        .status
        .as_ref()
        .map(|status| status.message.as_str())
        .unwrap_or_default();
    assert!(
        why.contains("monolith at http://127.0.0.1:") && why.contains(" is unreachable"),
        "the failed order's status says why: {why:?}"
    );

    // Nothing is lost: HQ's retries reach the monolith once it is back.
    platform.monolith.restart().await.unwrap();
    wait_until(
        "the failed order fulfilled once the monolith is back",
        WAIT,
        async || all_fulfilled(&platform).await.then_some(()),
    )
    .await;
    platform.shutdown(WAIT).await.unwrap();
}
