//! The monolith's HTTP routes and what each order does.

use crate::config::MonolithConfig;
use crate::gather::gather;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::routing::get;
use axum::{Router, body::Bytes};
use contracts::fulfillment::{API_KEY_HEADER, HOOK_SECRET_HEADER, IDEMPOTENCY_KEY_HEADER};
use contracts::order_id::ORDER_ID_HEADER;
use contracts::paths;
use contracts::{
    BundleOrder, FulfillmentKind, FulfillmentRequest, HookRequest, IdempotencyKey, OrderId, ResourceOrder,
};
use platform::downstream::{Answer, answered};
use platform::intake::Reply;
use platform::reply::{Fulfilled, HOOK_DELIVERED, HOOK_FAILED, ORDER_FAILED, ORDER_FULFILLED};
use platform::route::{RouteService, RouteSettings, saying_where_orders_go};
use platform::telemetry::{record_order_id, request_id};
use platform::{Downstream, Metrics, OrderIntake, Received, RequestDeadline, ServiceError};
use std::sync::Arc;

/// Reply to the ALB health check.
pub const HEALTHY: &str = "Nothing here, used for health check. Try /order/ instead.";

/// State shared by the handlers, built once at start.
#[derive(Debug)]
struct Monolith {
    config: MonolithConfig,
    intake: OrderIntake,
    api: Downstream,
}

/// The monolith's router, counting in metrics of its own. Fails only if
/// the HTTP client cannot be built.
pub fn router(config: MonolithConfig) -> Result<Router, reqwest::Error> {
    router_with_metrics(config, &Metrics::new())
}

/// The monolith's router, counting in `metrics`.
pub fn router_with_metrics(config: MonolithConfig, metrics: &Metrics) -> Result<Router, reqwest::Error> {
    let (intake, api) =
        config
            .route
            .ends(config.api.endpoint.expose().clone(), "fulfillment API", metrics)?;
    tracing::info!(endpoint = %config.api.endpoint, "fulfillment API");
    if !config.strangled.is_empty() {
        let names: Vec<&str> = config.strangled.iter().map(|r| r.as_str()).collect();
        tracing::info!(strangled = %names.join(","), "no longer gathering strangled resources here");
    }
    let state = Arc::new(Monolith { config, intake, api });
    let router = Router::new()
        .route("/", get(health))
        .route(
            paths::route(paths::ORDER),
            metrics.order_route(paths::ORDER, order),
        )
        .route(
            paths::route(paths::FULFILL),
            metrics.order_route(paths::FULFILL, fulfill),
        )
        .with_state(state);
    Ok(saying_where_orders_go(router, paths::ORDER))
}

impl RouteService for MonolithConfig {
    fn route(&self) -> &RouteSettings {
        &self.route
    }

    fn router(self, metrics: &Metrics) -> Result<Router, reqwest::Error> {
        router_with_metrics(self, metrics)
    }
}

async fn health() -> &'static str {
    HEALTHY
}

/// `POST /order/`: a bundle order, from SNS or curl.
async fn order(
    State(monolith): State<Arc<Monolith>>,
    deadline: Option<RequestDeadline>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Reply, ServiceError> {
    let monolith = &*monolith;
    monolith
        .intake
        .take(&headers, &body, deadline, async |received| {
            monolith.fulfil_bundle(received).await
        })
        .await
}

/// `POST /fulfill/`: the glueFulfill hook; one resource from a microservice,
/// which proves it is one with the shared secret. Only then are its
/// `Idempotency-Key` and order id headers read (`/order/` ignores a caller's).
async fn fulfill(
    State(monolith): State<Arc<Monolith>>,
    deadline: Option<RequestDeadline>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Fulfilled, ServiceError> {
    let presented = headers
        .get(HOOK_SECRET_HEADER)
        .ok_or(ServiceError::HookSecretMissing)?;
    if !monolith.config.hook_secrets.matches(presented.as_bytes()) {
        return Err(ServiceError::HookSecretWrong);
    }
    let header = |name: &str| headers.get(name).map(HeaderValue::as_bytes);
    // The microservice's id for the order, so its lines here match its own:
    // recorded before the body is read, so that a refusal of the body (two
    // versions that disagree on it) is found under that id too. One not
    // well formed is refused here, under none.
    let sent_id = OrderId::from_header(header(ORDER_ID_HEADER))?;
    if let Some(sent_id) = &sent_id {
        record_order_id(sent_id);
    }
    let hook = HookRequest::from_parts(&body, header(IDEMPOTENCY_KEY_HEADER), sent_id)?;
    // Sent none (the workshop's own clients): one of ours, now the order is known.
    let order_id = hook.order_id.clone().unwrap_or_else(|| {
        let ours = request_id();
        record_order_id(&ours);
        ours
    });
    // As `/order/` does: a body read slowly must not leave the API call
    // running past the answer (a 503 says nothing was sent).
    // The glue hook gathers nothing: its one call is all its work.
    platform::intake::time_left_for(deadline, monolith.config.route.call_work())?;
    monolith.fulfil_hook(hook, &order_id).await
}

impl Monolith {
    /// Gathers what is still gathered here, then fulfils the bundle.
    async fn fulfil_bundle(&self, received: Received<BundleOrder>) -> Result<Fulfilled, ServiceError> {
        let idempotency_key = received.idempotency_key(FulfillmentKind::Bundle);
        let bundle = received.order.bundle;
        let request = gather(bundle, &self.config.strangled, self.config.route.gather_delay).await;
        // Boxed: inline, the API call's future (reqwest's included) would
        // size the order's future during the gather too (docs/bench.md).
        let answer = Box::pin(self.call_api(
            &request,
            idempotency_key.as_ref(),
            &received.order_id,
            ORDER_FAILED,
        ))
        .await?;
        tracing::info!("Bundle fulfilled");
        Ok(Fulfilled::after(ORDER_FULFILLED, answer))
    }

    /// Fulfils what a microservice produced.
    async fn fulfil_hook(&self, hook: HookRequest, order_id: &OrderId) -> Result<Fulfilled, ServiceError> {
        let ResourceOrder { resource, quantity } = hook.order;
        tracing::info!("Fulfilling {quantity} {resource} from the {resource} microservice");
        let request = FulfillmentRequest::single(resource, quantity);
        let answer = self
            .call_api(&request, hook.idempotency_key.as_ref(), order_id, HOOK_FAILED)
            .await?;
        Ok(Fulfilled::after(HOOK_DELIVERED, answer))
    }

    /// Calls the fulfillment API, telling it the order's id; `Ok` only when
    /// it answered 2xx (saying whether it had the order already).
    async fn call_api(
        &self,
        request: &FulfillmentRequest,
        idempotency_key: Option<&IdempotencyKey>,
        order_id: &OrderId,
        reply: &'static str,
    ) -> Result<Answer, ServiceError> {
        tracing::info!("Trying to send a request to the API");
        let mut headers = vec![
            (API_KEY_HEADER, self.config.api.api_key.expose()),
            (ORDER_ID_HEADER, order_id.as_str()),
        ];
        if let Some(key) = idempotency_key {
            headers.push((IDEMPOTENCY_KEY_HEADER, key.as_str()));
        }
        headers.extend(request.produced_by_header());
        let call = self.api.post_json(request, &headers).await;
        if let Some(status) = answered(&call) {
            tracing::info!("API Status Code: {}", status.as_u16());
        }
        call.map_err(|source| ServiceError::Downstream { reply, source })
    }
}
