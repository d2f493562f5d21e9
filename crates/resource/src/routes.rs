//! A resource service's HTTP routes and what an order does.

use crate::config::ResourceConfig;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use contracts::fulfillment::IDEMPOTENCY_KEY_HEADER;
use contracts::order::{OrderKind, parse_resource_order};
use platform::downstream::http_client;
use platform::{Downstream, Intake, OrderIntake, ServiceError};
use serde_json::json;
use std::sync::Arc;

/// Reply to a fulfilled resource order.
pub const ORDER_FULFILLED: &str = "Your order has been fulfilled";
/// Reply to a resource order whose fulfillment failed.
pub const ORDER_FAILED: &str = "Your order has NOT been fulfilled";

/// State shared by the handlers, built once at start.
#[derive(Debug)]
struct ResourceService {
    config: ResourceConfig,
    intake: OrderIntake,
    monolith: Downstream,
    health: String,
}

/// The service's router: `GET` and `POST` on `/<resource>/`.
pub fn router(config: ResourceConfig) -> Result<Router, reqwest::Error> {
    let client = http_client()?;
    tracing::info!(glue_hook = %config.glue_hook, "sending fulfillments to the monolith");
    let monolith = Downstream::new(
        client.clone(),
        config.glue_hook.clone(),
        "monolith",
        config.downstream_timeout,
    )
    .with_max_connections(config.downstream_max_connections);
    let intake = OrderIntake::new(config.trust.clone(), client);
    let resource = config.resource;
    let health = format!(
        "{} microservice is healthy. POST {{\"{resource}\": 1}} here.",
        resource.title()
    );
    let state = Arc::new(ResourceService {
        config,
        intake,
        monolith,
        health,
    });
    Ok(Router::new()
        .route(&format!("/{resource}"), get(health_check).post(order))
        .with_state(state))
}

async fn health_check(State(service): State<Arc<ResourceService>>) -> String {
    service.health.clone()
}

/// `POST /<resource>/`: produce the resource, then hand it to the monolith.
async fn order(
    State(service): State<Arc<ResourceService>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<&'static str, ServiceError> {
    let resource = service.config.resource;
    let (order, message_id) = match service
        .intake
        .receive(&headers, &body, OrderKind::Resource(resource))
        .await?
    {
        Intake::Done(reply) => return Ok(reply),
        Intake::Order { order, message_id } => (order, message_id),
    };
    let order = parse_resource_order(&order, resource)?;
    tracing::info!("Producing {} {}", order.quantity, resource);
    if !service.config.gather_delay.is_zero() {
        tokio::time::sleep(service.config.gather_delay).await;
    }
    tracing::info!(
        "Sending {} {} to the monolith for fulfillment",
        order.quantity,
        resource
    );
    let body = json!({ resource.as_str(): order.quantity });
    let headers: Vec<(&'static str, &str)> = message_id
        .as_deref()
        .map(|id| (IDEMPOTENCY_KEY_HEADER, id))
        .into_iter()
        .collect();
    match service.monolith.post_json(&body, &headers).await {
        Ok(status) => {
            tracing::info!("Monolith Status Code: {}", status.as_u16());
            Ok(ORDER_FULFILLED)
        }
        Err(source) => Err(ServiceError::Downstream {
            reply: ORDER_FAILED,
            source,
        }),
    }
}
