//! The monolith's HTTP routes and what each order does.

use crate::config::MonolithConfig;
use crate::gather::gather;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Router, body::Bytes};
use contracts::fulfillment::{API_KEY_HEADER, IDEMPOTENCY_KEY_HEADER};
use contracts::order::{OrderKind, parse_any_resource_order, parse_bundle, parse_json};
use contracts::{BundleOrder, FulfillmentRequest};
use platform::downstream::http_client;
use platform::{Downstream, Intake, OrderIntake, ServiceError};
use std::sync::Arc;

/// Reply to a fulfilled bundle order.
pub const ORDER_FULFILLED: &str = "Your order has been fulfilled";
/// Reply to a bundle order whose fulfillment failed.
pub const ORDER_FAILED: &str = "Your order has NOT been fulfilled";
/// Reply to a delivered glue-hook fulfillment.
pub const HOOK_DELIVERED: &str = "Your fulfillment request has been delivered";
/// Reply to a glue-hook fulfillment that failed.
pub const HOOK_FAILED: &str = "Your fulfillment request has failed";
/// Reply to the ALB health check.
pub const HEALTHY: &str = "Nothing here, used for health check. Try /order/ instead.";

/// State shared by the handlers, built once at start.
#[derive(Debug)]
struct Monolith {
    config: MonolithConfig,
    intake: OrderIntake,
    api: Downstream,
}

/// The monolith's router. Fails only if the HTTP client cannot be built.
pub fn router(config: MonolithConfig) -> Result<Router, reqwest::Error> {
    let client = http_client()?;
    tracing::info!(endpoint = %config.api.endpoint, "fulfillment API");
    if !config.strangled.is_empty() {
        let names: Vec<&str> = config.strangled.iter().map(|r| r.as_str()).collect();
        tracing::info!(strangled = %names.join(","), "no longer gathering strangled resources here");
    }
    let api = Downstream::new(
        client.clone(),
        config.api.endpoint.clone(),
        "fulfillment API",
        config.downstream_timeout,
    )
    .with_max_connections(config.downstream_max_connections);
    let intake = OrderIntake::new(config.trust.clone(), client);
    let state = Arc::new(Monolith { config, intake, api });
    Ok(Router::new()
        .route("/", get(health))
        .route("/order", post(order))
        .route("/fulfill", post(fulfill))
        .with_state(state))
}

async fn health() -> &'static str {
    HEALTHY
}

/// `POST /order/`: a bundle order, from SNS or curl.
async fn order(
    State(monolith): State<Arc<Monolith>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<&'static str, ServiceError> {
    let (order, message_id) = match monolith
        .intake
        .receive(&headers, &body, OrderKind::Bundle)
        .await?
    {
        Intake::Done(reply) => return Ok(reply),
        Intake::Order { order, message_id } => (order, message_id),
    };
    let BundleOrder { bundle } = parse_bundle(&order)?;
    let config = &monolith.config;
    let request = gather(bundle, &config.strangled, config.gather_delay).await;
    monolith
        .fulfill(&request, message_id.as_deref(), ORDER_FAILED)
        .await?;
    tracing::info!("Bundle fulfilled");
    Ok(ORDER_FULFILLED)
}

/// `POST /fulfill/`: the glueFulfill hook; one resource from a microservice.
async fn fulfill(
    State(monolith): State<Arc<Monolith>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<&'static str, ServiceError> {
    let order = parse_any_resource_order(&parse_json(&body, OrderKind::AnyResource)?)?;
    tracing::info!(
        "Fulfilling {} {} from the {} microservice",
        order.quantity,
        order.resource,
        order.resource
    );
    let idempotency_key = headers.get(IDEMPOTENCY_KEY_HEADER).and_then(|v| v.to_str().ok());
    let request = FulfillmentRequest::single(order.resource, order.quantity);
    monolith.fulfill(&request, idempotency_key, HOOK_FAILED).await?;
    Ok(HOOK_DELIVERED)
}

impl Monolith {
    /// Calls the fulfillment API; `Ok` only when it answered 2xx.
    async fn fulfill(
        &self,
        request: &FulfillmentRequest,
        idempotency_key: Option<&str>,
        reply: &'static str,
    ) -> Result<(), ServiceError> {
        tracing::info!("Trying to send a request to the API");
        let mut headers = vec![(API_KEY_HEADER, self.config.api.api_key.expose())];
        if let Some(key) = idempotency_key {
            headers.push((IDEMPOTENCY_KEY_HEADER, key));
        }
        match self.api.post_json(request, &headers).await {
            Ok(status) => {
                tracing::info!("API Status Code: {}", status.as_u16());
                Ok(())
            }
            Err(source) => Err(ServiceError::Downstream { reply, source }),
        }
    }
}
