//! A resource service's HTTP routes and what an order does.

use crate::config::ResourceConfig;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use contracts::fulfillment::HOOK_SECRET_HEADER;
use contracts::{FulfillmentKind, HookRequest, Resource, ResourceOrder};
use platform::downstream::answered;
use platform::intake::Reply;
use platform::reply::{Fulfilled, ORDER_FAILED, ORDER_FULFILLED};
use platform::route::{RouteService, RouteSettings, saying_where_orders_go};
use platform::{Downstream, Metrics, OrderIntake, Received, RequestDeadline, ServiceError};
use std::sync::Arc;

/// State shared by the handlers, built once at start.
#[derive(Debug)]
struct ResourceService {
    config: ResourceConfig,
    intake: OrderIntake,
    monolith: Downstream,
    health: String,
}

/// The service's router: `GET` and `POST` on `/<resource>/`, counting in
/// metrics of its own.
pub fn router(config: ResourceConfig) -> Result<Router, reqwest::Error> {
    router_with_metrics(config, &Metrics::new())
}

/// What the health check on `/<resource>/` answers. It names the body
/// the 400 asks for, not the bare order: that is SNS' Message.
pub fn health_text(resource: Resource) -> String {
    format!(
        "{} microservice is healthy. POST an SNS message or {{\"Message\": {}}} here.",
        resource.title(),
        resource.example()
    )
}

/// The service's router, counting in `metrics`.
pub fn router_with_metrics(config: ResourceConfig, metrics: &Metrics) -> Result<Router, reqwest::Error> {
    let (intake, monolith) = config
        .route
        .ends(config.glue_hook.expose().clone(), "monolith", metrics)?;
    tracing::info!(glue_hook = %config.glue_hook, "sending fulfillments to the monolith");
    let resource = config.resource;
    let health = health_text(resource);
    let state = Arc::new(ResourceService {
        config,
        intake,
        monolith,
        health,
    });
    let order_path = contracts::paths::resource(resource);
    let router = Router::new()
        .route(
            contracts::paths::route(&order_path),
            get(health_check).merge(metrics.order_route(&order_path, order)),
        )
        .with_state(state);
    Ok(saying_where_orders_go(router, &order_path))
}

impl RouteService for ResourceConfig {
    fn route(&self) -> &RouteSettings {
        &self.route
    }

    fn router(self, metrics: &Metrics) -> Result<Router, reqwest::Error> {
        router_with_metrics(self, metrics)
    }
}

async fn health_check(State(service): State<Arc<ResourceService>>) -> String {
    service.health.clone()
}

/// `POST /<resource>/`: produce the resource, then hand it to the monolith.
async fn order(
    State(service): State<Arc<ResourceService>>,
    deadline: Option<RequestDeadline>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Reply, ServiceError> {
    let service = &*service;
    let resource = service.config.resource;
    service
        .intake
        .take(
            &headers,
            &body,
            deadline,
            async |received: Received<ResourceOrder>| {
                let order = received.order.only(resource)?;
                let idempotency_key = received.idempotency_key(FulfillmentKind::Resource(resource));
                service
                    .produce(HookRequest {
                        order,
                        idempotency_key,
                        order_id: Some(received.order_id),
                    })
                    .await
            },
        )
        .await
        // This service takes its own resource only: say so in every refusal.
        .map_err(|error| error.expecting(resource.example()))
}

impl ResourceService {
    /// Produces the order, then sends it to the monolith's glue hook with
    /// the shared secret.
    async fn produce(&self, hook: HookRequest) -> Result<Fulfilled, ServiceError> {
        let ResourceOrder { resource, quantity } = &hook.order;
        tracing::info!("Producing {quantity} {resource}");
        if !self.config.route.gather_delay.is_zero() {
            tokio::time::sleep(self.config.route.gather_delay).await;
        }
        tracing::info!("Sending {quantity} {resource} to the monolith for fulfillment");
        let mut headers = hook.headers();
        headers.push((HOOK_SECRET_HEADER, self.config.hook_secret.expose()));
        let call = self.monolith.post_json(&hook.order, &headers).await;
        if let Some(status) = answered(&call) {
            tracing::info!("Monolith Status Code: {}", status.as_u16());
        }
        call.map(|answer| Fulfilled::after(ORDER_FULFILLED, answer))
            .map_err(|source| ServiceError::Downstream {
                reply: ORDER_FAILED,
                source,
            })
    }
}
