//! HQ's HTTP face: the fulfillment API (`/receiving/`), the key portal, the
//! SNS endpoints (SubscribeURL, UnsubscribeURL, signing certificate) and the
//! feed's own API for subscribing, publishing and watching; the browser pages
//! (key portal, dashboard) are [`crate::portal`]'s routes, merged in here.
//!
//! Errors become status codes in one place, `ApiError`'s `IntoResponse`.
//!
//! Who may do what: the fulfillment API takes an API key (`x-api-key`);
//! issuing and revoking keys, every key's totals, injecting and reading faults,
//! subscribing, unsubscribing, publishing and the dashboard's data take HQ's
//! admin credential (the `Admin` extractor); the
//! SubscribeURL (its token is the secret), the signing certificate and the
//! read-only pages are public, as SNS' are.

use crate::faults::{Fault, FaultPlan};
use crate::feed::{FeedError, SubscriptionState, Topic, TopicStats};
use crate::ledger::{KEY_ID_LEN, KeyInfo, LedgerError};
use crate::state::Hq;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use contracts::OrderId;
use contracts::Producer;
use contracts::fulfillment::{API_KEY_HEADER, IDEMPOTENCY_KEY_HEADER, PRODUCED_BY_HEADER};
use contracts::order_id::ORDER_ID_HEADER;
use contracts::paths;
use contracts::quote::{quoted, shortened_message};
use contracts::{ApiIdempotencyKey, FulfillmentRequest};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

/// The longest key owner name accepted.
const MAX_OWNER: usize = 100;
const FULFILLMENT_EXAMPLE: &str = r#"{"iridium": 1, "magnesite": 1}"#;

/// Why a fulfillment's API key was refused: for the log line, never the
/// reply (which tells a caller nothing about the keys HQ has).
#[derive(Debug, Clone)]
pub(crate) enum KeyRefused {
    /// No `x-api-key` header, or an empty one.
    Missing,
    /// An `x-api-key` of other than visible ASCII, which no key is.
    Unreadable,
    /// A key HQ never issued.
    Unknown,
    /// A key HQ's admin revoked (`DELETE /keys/<key_id>`), by its public id.
    Revoked(String),
}

impl KeyRefused {
    /// What the operator should look at.
    fn why(&self) -> std::borrow::Cow<'static, str> {
        match self {
            Self::Missing => "no x-api-key header".into(),
            Self::Unreadable => "an x-api-key that is not visible ASCII, as no key HQ takes is".into(),
            Self::Unknown => {
                "an x-api-key HQ did not issue: the caller's key (the monolith's INTERSTELLA_API_KEY or \
                 its SSM parameter) is not one of HQ's (HQ_API_KEYS or the portal's)"
                    .into()
            }
            Self::Revoked(key_id) => {
                format!("an x-api-key HQ's admin revoked (key id {key_id}): the caller needs a new key")
                    .into()
            }
        }
    }
}

/// Why an HQ request was not carried out.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// No `x-api-key`, or one HQ never issued: answered as API Gateway
    /// answers (`Forbidden`, nothing more); the log says which.
    #[error("Forbidden")]
    Forbidden(KeyRefused),
    /// An admin route without HQ's admin credential.
    #[error(
        "this needs HQ's admin credential: send Authorization: Bearer <token> \
         (the token is {}, or else the file {} in HQ's data directory)",
        crate::admin::TOKEN_ENV,
        crate::admin::TOKEN_FILE
    )]
    Unauthorized,
    /// The body or a header is not what the endpoint takes.
    #[error("{0}")]
    BadRequest(String),
    /// Nothing here.
    #[error("not found: {0}")]
    NotFound(String),
    /// A path HQ has, asked with a method it does not take there.
    #[error("this path does not take that method; GET / lists HQ's routes")]
    MethodNotAllowed,
    /// A fault injected on request (`POST /faults`).
    #[error("injected fault: {0}")]
    Injected(&'static str),
    /// The feed refused or failed.
    #[error(transparent)]
    Feed(FeedError),
    /// HQ's feed did not publish the order, its ledger refusing it
    /// ([`FeedError::NotRecorded`]): the caller may send it again.
    #[error("{0}: publish it again once HQ's ledger records (GET / answers 200)")]
    NotPublished(FeedError),
    /// The ledger refused or failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A name that is not HQ's ([`crate::hosts`]), quoted, without its port.
    #[error(
        "HQ answers to its own names only, and {0} is not one: give it in {env} (--allowed-host; \
         the HQ stack's AllowedHosts)",
        env = crate::hosts::ALLOWED_HOSTS_ENV
    )]
    NotOurName(String),
    /// The health check (`GET /`) while the ledger cannot record: a load
    /// balancer sends this task no orders it could only refuse.
    #[error("HQ's ledger cannot record ({0}); fulfillments are refused until it can")]
    CannotRecord(String),
}

impl ApiError {
    /// The status this error is answered with.
    fn status(&self) -> StatusCode {
        match self {
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotOurName(_) => StatusCode::MISDIRECTED_REQUEST,
            Self::Injected(_) | Self::CannotRecord(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Feed(FeedError::UnknownTopic(_))
            | Self::Feed(FeedError::UnknownToken)
            | Self::Feed(FeedError::UnknownSubscription(_)) => StatusCode::NOT_FOUND,
            Self::Feed(FeedError::BadOrder(_) | FeedError::Enveloped(_) | FeedError::BadEndpoint) => {
                StatusCode::BAD_REQUEST
            }
            Self::Feed(FeedError::TooLarge(_)) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Feed(FeedError::Sns(_)) => StatusCode::BAD_GATEWAY,
            Self::Feed(FeedError::SnsOutcomeUnknown(_)) => StatusCode::GATEWAY_TIMEOUT,
            Self::Feed(FeedError::Stopping | FeedError::NotRecorded(_)) | Self::NotPublished(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Feed(
                FeedError::Ledger(_) | FeedError::PublishedNotRecorded { .. } | FeedError::Interrupted(_),
            )
            | Self::Ledger(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The feed's errors; an order its ledger refused is [`ApiError::NotPublished`].
impl From<FeedError> for ApiError {
    fn from(error: FeedError) -> Self {
        match error {
            FeedError::NotRecorded(_) => Self::NotPublished(error),
            error => Self::Feed(error),
        }
    }
}

/// A header of an order that cannot be read (quoted in the error): 400.
impl From<contracts::OrderError> for ApiError {
    fn from(error: contracts::OrderError) -> Self {
        Self::BadRequest(error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Self::CannotRecord(_) = self {
            // Said once by the ledger when it began; not again at every probe.
            tracing::debug!(status = status.as_u16(), error = %self, "health check failed");
        } else if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = %self, "request failed");
        } else if let Self::Forbidden(refused) = &self {
            tracing::warn!(status = status.as_u16(), error = %self, why = %refused.why(), "request refused");
        } else {
            tracing::warn!(status = status.as_u16(), error = %self, "request refused");
        }
        let mut response = (
            status,
            Json(Refusal {
                message: self.to_string(),
            }),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"interstella-hq\""),
            );
        }
        response
    }
}

/// The body of every answer HQ refuses or fails.
#[derive(Debug, Serialize)]
pub struct Refusal {
    /// What was wrong, in a sentence; caller text in it is quoted short.
    pub message: String,
}

/// `POST /keys`' answer: the new key, shown this once (HQ keeps its digest).
/// Its `Debug` leaves the key out.
#[derive(Serialize)]
pub struct IssuedKey<'a> {
    /// The key itself, for the `x-api-key` header.
    pub api_key: &'a str,
    /// Its public name in totals and logs: the first hex digits of its SHA-256.
    pub key_id: &'a str,
    /// Who it was issued to.
    pub owner: &'a str,
    /// The id of the key it succeeds, when it was issued to succeed one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub succeeds: Option<&'a str>,
}

impl std::fmt::Debug for IssuedKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedKey")
            .field("api_key", &"***")
            .field("key_id", &self.key_id)
            .field("owner", &self.owner)
            .field("succeeds", &self.succeeds)
            .finish()
    }
}

/// `GET /topics`' answer.
#[derive(Debug, Serialize)]
pub struct Topics<'a> {
    /// Every topic: orders (bundles), iridium and magnesite.
    pub topics: Vec<TopicView<'a>>,
}

/// One topic in `GET /topics`.
#[derive(Debug, Serialize)]
pub struct TopicView<'a> {
    /// The topic's name (`orders`, `iridium`, `magnesite`).
    pub name: &'static str,
    /// Its ARN, on SNS or the local feed.
    #[serde(rename = "topicArn")]
    pub topic_arn: String,
    /// Its subscriptions.
    pub subscriptions: Vec<SubscriptionView<'a>>,
    /// The local feed's delivery counters; `null` on SNS (SNS delivers).
    pub stats: Option<TopicStats>,
}

/// One subscription in `GET /topics`: its ARN for HQ's admin only.
#[derive(Debug, Serialize)]
pub struct SubscriptionView<'a> {
    /// The subscription's ARN, shown to HQ's admin alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_arn: Option<&'a str>,
    /// The topic.
    pub topic: Topic,
    /// Where deliveries go, masked.
    pub endpoint: &'a str,
    /// Whether it was confirmed.
    pub state: SubscriptionState,
}

/// Proof that a request carries HQ's admin credential: a handler that takes
/// it answers 401 to anyone else, before reading the body.
pub(crate) struct Admin;

impl FromRequestParts<Hq> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, hq: &Hq) -> Result<Self, ApiError> {
        require_admin(hq, &parts.headers).map(|()| Admin)
    }
}

/// Ok when `headers` carry `Authorization: Bearer <HQ's admin credential>`.
fn require_admin(hq: &Hq, headers: &HeaderMap) -> Result<(), ApiError> {
    // Where the call came from, on its lines, granted or not.
    platform::telemetry::record_client(headers);
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| hq.admin_token().authorizes(value));
    if authorized {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// What a path HQ does not have is answered with.
const NO_SUCH_PATH: &str = "no such path; GET / lists HQ's routes";

/// A route's one path parameter, as text. A segment whose percent escapes
/// are not UTF-8 names nothing HQ has: 404 in HQ's JSON, where axum's own
/// rejection would answer a plain-text 400 that no refusal line logs.
pub(crate) struct Segment(pub(crate) String);

impl<S: Send + Sync> FromRequestParts<S> for Segment {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(segment)| Segment(segment))
            .map_err(|_| ApiError::NotFound(NO_SUCH_PATH.into()))
    }
}

/// HQ's router.
pub fn router(hq: Hq) -> Router {
    router_with_metrics(hq, &platform::Metrics::new())
}

/// HQ's routes, counting fulfillments in `metrics`.
pub fn router_with_metrics(hq: Hq, metrics: &platform::Metrics) -> Router {
    Router::new()
        .route("/", get(index_or_action))
        .route(
            "/{file}",
            get(certificate).fallback(certificate_by_another_method),
        )
        .route(
            paths::route(paths::RECEIVING),
            metrics.order_route(paths::RECEIVING, fulfill).get(my_totals),
        )
        .route("/keys", post(issue_key))
        .route("/keys/{key_id}", delete(revoke_key))
        .route("/totals", get(all_totals))
        .route(TOPICS_PATH, get(topics))
        .route("/topics/{topic}/subscriptions", post(subscribe))
        .route("/subscriptions/{subscription_arn}", delete(unsubscribe))
        .route("/topics/{topic}/publish", post(publish))
        .route("/reconciliation", get(reconciliation))
        .route("/faults", post(add_faults).get(faults).delete(clear_faults))
        .merge(crate::portal::router())
        // axum answers both with no body; HQ's refusals are JSON that says why.
        .method_not_allowed_fallback(|| std::future::ready(ApiError::MethodNotAllowed))
        .fallback(|| std::future::ready(ApiError::NotFound(NO_SUCH_PATH.into())))
        // Before any route: a name not HQ's learns nothing, credentials included.
        .layer(axum::middleware::from_fn_with_state(
            hq.clone(),
            answers_to_its_names,
        ))
        .layer(axum::middleware::map_response(kept_by_no_one))
        .with_state(hq)
}

/// Refuses a request whose `Host` (or absolute-form target) is not one of
/// HQ's names ([`crate::hosts`]), before any route reads it.
async fn answers_to_its_names(
    State(hq): State<Hq>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    // Text that is not UTF-8 names no host of HQ's: refused, quoted lossily.
    let host = request
        .headers()
        .get(header::HOST)
        .map(|host| String::from_utf8_lossy(host.as_bytes()));
    let authority = request
        .uri()
        .authority()
        .map(|authority| authority.as_str())
        .or(host.as_deref());
    match hq.host_names().not_ours(authority) {
        None => next.run(request).await,
        Some(name) => ApiError::NotOurName(quoted(name).owned()).into_response(),
    }
}

/// Every answer of HQ's is kept by no cache unless it says otherwise (the
/// pages and their scripts are checked anew, `no-cache`): a new key, one
/// key's totals, the admin's figures are for whoever asked, once. (That none
/// is framed or runs anything but a page with a policy of its own, the serve
/// loop sees to: [`platform::server::DATA_SECURITY_POLICY`].)
async fn kept_by_no_one(mut response: Response) -> Response {
    response
        .headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// `GET /`: SNS' query API for the links in messages (`Action=ConfirmSubscription`,
/// `Action=Unsubscribe`, the latter for the admin only), else a page saying
/// what is where. Without an `Action` it is also HQ's health check: 503
/// while the ledger cannot record (as its last write or probe found; no
/// disk is touched here), 200 otherwise.
async fn index_or_action(
    State(hq): State<Hq>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let param = |name: &str| query.get(name).map(String::as_str).unwrap_or_default();
    match query.get("Action").map(String::as_str) {
        Some("ConfirmSubscription") => {
            let arn = hq.feed().confirm(param("TopicArn"), param("Token"))?;
            Ok(sns_xml(
                "ConfirmSubscription",
                &format!("<SubscriptionArn>{}</SubscriptionArn>", xml_escape(&arn)),
            ))
        }
        Some("Unsubscribe") => {
            // The subscription ARNs are listed on /topics: knowing one is no proof.
            require_admin(&hq, &headers)?;
            hq.feed().unsubscribe(param("SubscriptionArn"))?;
            Ok(sns_xml("Unsubscribe", ""))
        }
        Some(other) => Err(ApiError::BadRequest(format!(
            "unsupported Action {}: HQ answers ConfirmSubscription and Unsubscribe here",
            quoted(other)
        ))),
        None => {
            if let Some(reason) = hq.ledger().cannot_record() {
                return Err(ApiError::CannotRecord(reason));
            }
            if crate::portal::wants_html(&headers) {
                Ok(crate::portal::page())
            } else {
                // The same URL answers a page to browsers: caches must tell them apart.
                Ok(([(header::VARY, "Accept")], index(&hq)).into_response())
            }
        }
    }
}

fn index(hq: &Hq) -> String {
    // Every route is listed as services reach it, by the links' own rule.
    let root = crate::feed::under_base_url(hq.base_url(), "/");
    let base = root.as_str().trim_end_matches('/');
    format!(
        "Interstella HQ\n\n\
         POST {base}/receiving/                     fulfillment API (x-api-key, {FULFILLMENT_EXAMPLE})\n\
         GET  {base}/receiving/                     your key's totals (x-api-key)\n\
         POST {base}/keys                           key portal: issue a key ({{\"owner\": \"you\"}}) [admin]\n\
         DELETE {base}/keys/<key_id>                revoke a key: refused from then on [admin]\n\
         GET  {base}/totals                         totals per key [admin]\n\
         GET  {base}/topics                         topics, subscriptions, delivery counters\n\
         POST {base}/topics/<topic>/subscriptions   subscribe {{\"endpoint\": \"http://...\"}} [admin]\n\
         DELETE {base}/subscriptions/<arn>          remove a subscription (its ARN on /topics) [admin]\n\
         POST {base}/topics/<topic>/publish         publish an order, e.g. {{\"bundle\": 1}} [admin]\n\
         GET  {base}/reconciliation                 orders published against fulfillments recorded\n\
         GET  {base}/dashboard                      live dashboard, in a browser (its data [admin])\n\
         POST {base}/faults                         make fulfillments fail ({{\"fail_fulfillments\": 3, \"lose_responses\": 3}}), added to those armed [admin]\n\
         GET  {base}/faults                         the faults still armed [admin]\n\
         DELETE {base}/faults                       disarm every fault still armed [admin]\n\
         GET  {cert_url}   signing certificate\n\n\
         [admin]: send Authorization: Bearer <HQ's admin credential>\n\
         In a browser, {base}/ is the key portal.\n",
        cert_url = hq.feed().cert_url(),
    )
}

fn sns_xml(action: &str, result: &str) -> Response {
    let body = format!(
        "<{action}Response xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">\n  \
         <{action}Result>{result}</{action}Result>\n  \
         <ResponseMetadata><RequestId>{id}</RequestId></ResponseMetadata>\n\
         </{action}Response>\n",
        id = uuid::Uuid::new_v4()
    );
    ([(header::CONTENT_TYPE, "text/xml")], body).into_response()
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `GET /SimpleNotificationService-<hex>.pem`: the signing certificate.
async fn certificate(State(hq): State<Hq>, Segment(file): Segment) -> Result<Response, ApiError> {
    // Any other one-segment path is a path HQ does not have.
    if file != hq.identity().cert_file_name() {
        return Err(ApiError::NotFound(NO_SUCH_PATH.into()));
    }
    Ok((
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        hq.identity().cert_pem().to_owned(),
    )
        .into_response())
}

/// Another method on a one-segment path: 405 for the certificate, which
/// only GET takes, and 404 for any other (`POST /nonexistent` is a path HQ
/// does not have, as `GET /nonexistent` is).
async fn certificate_by_another_method(State(hq): State<Hq>, Segment(file): Segment) -> ApiError {
    if file == hq.identity().cert_file_name() {
        ApiError::MethodNotAllowed
    } else {
        ApiError::NotFound(NO_SUCH_PATH.into())
    }
}

/// The caller's key, checked against the ledger.
async fn caller(hq: &Hq, headers: &HeaderMap) -> Result<KeyInfo, ApiError> {
    let key = headers
        .get(API_KEY_HEADER)
        .map(|value| value.to_str().map(str::trim))
        .transpose()
        .map_err(|_| ApiError::Forbidden(KeyRefused::Unreadable))?
        .filter(|key| !key.is_empty())
        .ok_or(ApiError::Forbidden(KeyRefused::Missing))?;
    let info = hq
        .ledger()
        .find_key(key)
        .await?
        .ok_or(ApiError::Forbidden(KeyRefused::Unknown))?;
    match info.revoked_at {
        None => Ok(info),
        Some(_) => Err(ApiError::Forbidden(KeyRefused::Revoked(info.key_id))),
    }
}

/// `body` as the JSON object `T` (whatever the Content-Type, a byte order
/// mark first ignored), or 400 saying `expected` and why not. An object
/// only: serde reads a struct from an array of its fields in order too, so
/// `[3, 4]` would have been a fulfillment.
fn json_object<T: serde::de::DeserializeOwned>(body: &[u8], expected: &str) -> Result<T, ApiError> {
    let text = contracts::json_text(body);
    let why = if text.trim_ascii_start().starts_with(b"{") {
        match serde_json::from_slice(text) {
            Ok(read) => return Ok(read),
            Err(error) => shortened_message(error),
        }
    } else {
        match serde_json::from_slice::<serde::de::IgnoredAny>(text) {
            Ok(_) => "a JSON object, not an array or a single value".to_owned(),
            Err(error) => shortened_message(error),
        }
    };
    Err(ApiError::BadRequest(format!("expected {expected}: {why}")))
}

/// The caller whose key checks out, its request marked with the order id it
/// sent (the monolith sends the order's), or a fresh one, so HQ's lines for
/// an order carry the same id as the services'. A caller refused names the
/// order only as claimed: anyone may send a real order's id without a key.
async fn trusted_caller(hq: &Hq, headers: &HeaderMap) -> Result<KeyInfo, ApiError> {
    let sent = OrderId::from_header(headers.get(ORDER_ID_HEADER).map(HeaderValue::as_bytes));
    let key = match caller(hq, headers).await {
        Ok(key) => key,
        Err(refused) => {
            if let Ok(Some(claimed)) = &sent {
                platform::telemetry::record_claimed_order_id(claimed);
            }
            return Err(refused);
        }
    };
    platform::telemetry::record_order_id(&sent?.unwrap_or_else(platform::telemetry::request_id));
    Ok(key)
}

/// `POST /receiving/`: record a fulfillment.
async fn fulfill(State(hq): State<Hq>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let key = trusted_caller(&hq, &headers).await?;
    let idempotency_key = match headers.get(IDEMPOTENCY_KEY_HEADER) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(ApiIdempotencyKey::parse)
                .ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "Idempotency-Key must be 1 to {} visible ASCII characters",
                        ApiIdempotencyKey::MAX_LEN
                    ))
                })?,
        ),
    };
    // JSON whatever the Content-Type, like the services.
    let mut request: FulfillmentRequest = json_object(&body, &format!("exactly {FULFILLMENT_EXAMPLE}"))?;
    request.produced_by = Producer::from_header(headers.get(PRODUCED_BY_HEADER).map(HeaderValue::as_bytes))?;
    if let (Some(producer), Some(resource)) = (request.produced_by, request.misattributed()) {
        return Err(ApiError::BadRequest(format!(
            "{PRODUCED_BY_HEADER} {producer} cannot have produced {resource}: a microservice sends only its own resource"
        )));
    }
    let fault = hq.faults().take();
    if fault == Some(Fault::Fail) {
        return Err(ApiError::Injected("fulfillment refused before recording"));
    }
    let recorded = hq
        .ledger()
        .record(
            &key.key_id,
            idempotency_key.as_ref().map(ApiIdempotencyKey::as_str),
            request,
        )
        .await?;
    if recorded.replayed && !recorded.quantities().same_quantities(&request) {
        // The same order gathered again under another configuration (a
        // STRANGLED changed between SNS' attempts): the first stands.
        tracing::warn!(
            key = %key.key_id,
            fulfillment_id = recorded.fulfillment_id,
            iridium = request.iridium,
            magnesite = request.magnesite,
            recorded_iridium = recorded.iridium,
            recorded_magnesite = recorded.magnesite,
            "repeated fulfillment asked for other quantities; the first stands, counted once"
        );
    } else if recorded.replayed {
        tracing::info!(key = %key.key_id, "repeated fulfillment counted once");
    } else {
        // Which part produced it, so that HQ's log shows the migration as
        // the dashboard does (left out when the client did not say).
        let produced_by = request
            .produced_by
            .map(|producer| tracing::field::display(producer.as_str()));
        tracing::info!(key = %key.key_id, produced_by, iridium = request.iridium,
            magnesite = request.magnesite, "fulfillment recorded");
    }
    // Said above as any other: the log's fulfillments add up to the totals.
    if fault == Some(Fault::LoseResponse) {
        return Err(ApiError::Injected("fulfillment recorded, answer lost"));
    }
    let mut response = Json(&recorded).into_response();
    if recorded.replayed {
        platform::reply::mark_replayed(&mut response);
    }
    Ok(response)
}

/// `GET /receiving/`: the caller's totals.
async fn my_totals(State(hq): State<Hq>, headers: HeaderMap) -> Result<Response, ApiError> {
    let key = caller(&hq, &headers).await?;
    Ok(Json(hq.ledger().totals_for(&key).await?).into_response())
}

/// `POST /keys`' body, all of it optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyRequest {
    /// Who the key is for (a team's name), shown with its totals.
    #[serde(default)]
    owner: Option<String>,
    /// The id of a key this one succeeds (a rotation): repeats of an order
    /// fulfilled under either are recognised under the other.
    #[serde(default)]
    succeeds: Option<String>,
}

/// `POST /keys`: the key portal; issues a new key.
async fn issue_key(_: Admin, State(hq): State<Hq>, body: Bytes) -> Result<Response, ApiError> {
    let request: KeyRequest = if body.iter().all(u8::is_ascii_whitespace) {
        KeyRequest::default()
    } else {
        json_object(
            &body,
            r#"{"owner": "name", "succeeds": "<key_id>"} (each optional) or no body"#,
        )?
    };
    let owner = request.owner.unwrap_or_else(|| "anonymous".into());
    let owner = owner.trim();
    if owner.chars().count() > MAX_OWNER
        || !owner.chars().all(prints_in_line)
        || !owner.chars().any(is_visible)
    {
        return Err(ApiError::BadRequest(format!(
            "owner must be 1 to {MAX_OWNER} printable characters, some of them visible, with no direction controls or line separators"
        )));
    }
    let succeeds = request.succeeds.as_deref();
    if succeeds.is_some_and(|id| !is_key_id(id)) {
        return Err(ApiError::BadRequest(format!(
            "succeeds must be a key id, {KEY_ID_LEN} hex digits (GET /totals lists them)"
        )));
    }
    let (key, info) = crate::keys::issue(hq.ledger(), owner, succeeds)
        .await?
        .ok_or_else(no_such_key)?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedKey {
            api_key: key.expose(),
            key_id: &info.key_id,
            owner: &info.owner,
            succeeds,
        }),
    )
        .into_response())
}

/// Whether `text` has a key id's shape ([`KEY_ID_LEN`] lowercase hex digits).
fn is_key_id(text: &str) -> bool {
    text.len() == KEY_ID_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The refusal for a key id no key has.
fn no_such_key() -> ApiError {
    ApiError::NotFound("no API key has that key id (GET /totals lists them)".into())
}

/// `DELETE /keys/<key_id>`: revokes a key (admin). Every call with it is
/// refused from the next on; its totals and its fulfillments stay. Revoking
/// it again answers the same, with the first revocation's time.
async fn revoke_key(_: Admin, State(hq): State<Hq>, Segment(key_id): Segment) -> Result<Response, ApiError> {
    if !is_key_id(&key_id) {
        return Err(no_such_key());
    }
    let (info, revoked_now) = hq.ledger().revoke_key(&key_id).await?.ok_or_else(no_such_key)?;
    if revoked_now {
        tracing::warn!(key_id = %info.key_id, owner = %contracts::quote::quoted(&info.owner), "API key revoked");
    }
    Ok(Json(info).into_response())
}

/// Whether `c` shows as something: not white space, nor one of Unicode's
/// Default_Ignorable_Code_Point characters or the blank Braille pattern,
/// which render as nothing (an owner of only U+200B or U+3164 was a blank
/// in the pages' sentences).
fn is_visible(c: char) -> bool {
    !c.is_whitespace()
        && !matches!(
            c,
            '\u{00ad}'
                | '\u{034f}'
                | '\u{061c}'
                | '\u{115f}'..='\u{1160}'
                | '\u{17b4}'..='\u{17b5}'
                | '\u{180b}'..='\u{180f}'
                | '\u{200b}'..='\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{fe00}'..='\u{fe0f}'
                | '\u{feff}'
                | '\u{ffa0}'
                | '\u{fff0}'..='\u{fff8}'
                | '\u{1bca0}'..='\u{1bca3}'
                | '\u{1d173}'..='\u{1d17a}'
                | '\u{e0000}'..='\u{e0fff}'
        )
}

/// Whether `c` may be in a name shown in a line of text: not a control
/// character, nor one that turns the text around it (Unicode's
/// Bidi_Control: an owner "Bob\u{202e}..." reversed the portal's sentence
/// after it) or breaks its line.
fn prints_in_line(c: char) -> bool {
    !c.is_control()
        && !matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}'
        )
}

/// `GET /totals`: totals per key (key ids, never keys).
async fn all_totals(_: Admin, State(hq): State<Hq>) -> Result<Response, ApiError> {
    Ok(Json(hq.ledger().totals().await?).into_response())
}

/// `GET /topics`: topics, their subscriptions and delivery counters.
/// On SNS the subscriptions are SNS' own and `stats` is null (SNS delivers).
async fn topics(State(hq): State<Hq>, headers: HeaderMap) -> Result<Response, ApiError> {
    // On SNS a subscription's ARN is all its UnsubscribeURL needs (an
    // endpoint that confirmed by GET may be unsubscribed by anyone): only
    // HQ's admin sees them. Without a credential the rest is public; with a
    // wrong one it is refused as anywhere else (logged, and no quiet oracle
    // for guesses), which also tells a page holding an old one to sign in.
    let admin = headers.contains_key(header::AUTHORIZATION);
    if admin {
        require_admin(&hq, &headers)?;
    }
    let publisher = hq.publisher();
    let stats = publisher.stats();
    let subscriptions = publisher.subscriptions().await.map_err(|error| match error {
        FeedError::Sns(_) if !admin => {
            tracing::warn!(%error, "GET /topics: SNS did not list the subscriptions");
            ApiError::Feed(FeedError::Sns(
                "the subscriptions could not be listed (HQ's log says why)".into(),
            ))
        }
        other => ApiError::Feed(other),
    })?;
    let topics = Topic::ALL
        .iter()
        .copied()
        .map(|topic| TopicView {
            name: topic.as_str(),
            topic_arn: publisher.topic_arn(topic),
            subscriptions: subscriptions
                .iter()
                .filter(|s| s.topic == topic)
                .map(|s| SubscriptionView {
                    subscription_arn: admin.then_some(s.subscription_arn.as_str()),
                    topic: s.topic,
                    endpoint: &s.endpoint,
                    state: s.state,
                })
                .collect(),
            stats: stats
                .as_ref()
                .map(|stats| stats.get(&topic).copied().unwrap_or_default()),
        })
        .collect();
    Ok(hq.polled(&headers, TOPICS_PATH, Json(Topics { topics }).into_response()))
}

/// HQ's topics and their subscriptions; the portal polls it every second.
const TOPICS_PATH: &str = "/topics";

fn topic(name: &str) -> Result<Topic, ApiError> {
    name.parse::<Topic>().map_err(|e| ApiError::Feed(e.into()))
}

/// `POST /topics/<topic>/subscriptions`' body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscribeRequest {
    /// The http(s) URL the topic's orders are delivered to.
    endpoint: String,
}

/// `POST /topics/<topic>/subscriptions`: subscribe an HTTP endpoint.
async fn subscribe(
    _: Admin,
    State(hq): State<Hq>,
    Segment(name): Segment,
    body: Bytes,
) -> Result<Response, ApiError> {
    let topic = topic(&name)?;
    let request: SubscribeRequest = json_object(&body, r#"{"endpoint": "http://host/path/"}"#)?;
    let subscription = hq.publisher().subscribe(topic, &request.endpoint).await?;
    Ok((StatusCode::CREATED, Json(subscription)).into_response())
}

/// `DELETE /subscriptions/<subscription_arn>`: removes a subscription (the
/// portal's Remove button), on the feed or on SNS: 204, or 404 for one HQ's
/// topics do not have.
async fn unsubscribe(_: Admin, State(hq): State<Hq>, Segment(arn): Segment) -> Result<Response, ApiError> {
    hq.publisher().unsubscribe(&arn).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Request headers published with an order as MessageAttributes (W3C trace
/// context), so a trace can follow the order through SNS.
const ATTRIBUTE_HEADERS: [&str; 2] = [contracts::sns::TRACEPARENT, "tracestate"];

/// How long before its request's deadline a publish still under way is
/// answered 202 instead of waited for (half the time left, if less).
const PUBLISH_ANSWER_MARGIN: Duration = Duration::from_secs(1);

/// `POST /topics/<topic>/publish`'s answer for a publish still under way at
/// [`PUBLISH_ANSWER_MARGIN`] before the deadline (202).
#[derive(Debug, Serialize)]
struct PublishUnderWay {
    /// Always `publishing`.
    status: &'static str,
    /// What happens next, and what not to do.
    detail: &'static str,
}

/// `POST /topics/<topic>/publish`: publish one order; the body is the order.
/// 201 with its MessageId once published and recorded. A publish that
/// outlasts the request is answered 202 shortly before the deadline rather
/// than with the serve loop's "send it again": it runs on to its end, and
/// sending it again would make a second order.
async fn publish(
    _: Admin,
    State(hq): State<Hq>,
    Segment(name): Segment,
    deadline: Option<platform::RequestDeadline>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let topic = topic(&name)?;
    let message = std::str::from_utf8(&body)
        .map_err(|_| ApiError::BadRequest("the order must be UTF-8 JSON".into()))?
        .trim();
    let attributes = ATTRIBUTE_HEADERS
        .into_iter()
        .filter_map(|name| {
            let value = headers.get(name)?.to_str().ok()?;
            Some((name.to_owned(), value.to_owned()))
        })
        .collect();
    let publisher = hq.publisher().clone();
    let message = message.to_owned();
    let mut publishing = Box::pin(async move { publisher.publish(topic, &message, &attributes).await });
    let published = match deadline {
        Some(deadline) => {
            let left = deadline.left();
            let wait = left.saturating_sub(PUBLISH_ANSWER_MARGIN.min(left / 2));
            tokio::select! {
                published = &mut publishing => published?,
                () = tokio::time::sleep(wait) => {
                    // The rest of the wait, and the word on how it ended,
                    // go on without the caller.
                    let rest = async move {
                        match publishing.await {
                            Ok(published) => tracing::info!(order_id = %published.message_id,
                                "a publish answered 202 was published and recorded"),
                            Err(error) => tracing::error!(%error, "a publish answered 202 failed"),
                        }
                    };
                    tokio::spawn(tracing::Instrument::in_current_span(rest));
                    let under_way = PublishUnderWay {
                        status: "publishing",
                        detail: "the publish is still under way and will finish (HQ logs how it ended); \
                                 do not publish it again: that would make a second order",
                    };
                    return Ok((StatusCode::ACCEPTED, Json(under_way)).into_response());
                }
            }
        }
        None => publishing.await?,
    };
    // The access line names the order it made, as a service's names the
    // order it took: an order that reached nobody has this line at least.
    if let Some(order_id) = OrderId::parse(&published.message_id) {
        platform::telemetry::record_order_id(&order_id);
    }
    Ok((StatusCode::CREATED, Json(published)).into_response())
}

/// `GET /reconciliation`: this run's orders against the ledger (as of at
/// most a second ago).
async fn reconciliation(State(hq): State<Hq>) -> Result<Response, ApiError> {
    Ok(Json(hq.recent_reconciliation().await?).into_response())
}

/// `POST /faults`: inject faults into the next fulfillments.
async fn add_faults(_: Admin, State(hq): State<Hq>, body: Bytes) -> Result<Response, ApiError> {
    let plan: FaultPlan = json_object(&body, r#"{"fail_fulfillments": n, "lose_responses": n}"#)?;
    hq.faults().add(plan);
    let remaining = hq.faults().remaining();
    // A warning, as the failures it causes are: whoever reads why orders
    // failed finds that they were asked for.
    tracing::warn!(
        fail_fulfillments = remaining.fail_fulfillments,
        lose_responses = remaining.lose_responses,
        "faults armed by the admin: the next fulfillments fail on purpose"
    );
    Ok(Json(remaining).into_response())
}

/// `DELETE /faults`: disarm the faults still to inject; answers with none
/// left (faults armed by mistake otherwise fail orders until used up).
async fn clear_faults(_: Admin, State(hq): State<Hq>) -> Response {
    let cleared = hq.faults().clear();
    if cleared != FaultPlan::default() {
        tracing::warn!(
            fail_fulfillments = cleared.fail_fulfillments,
            lose_responses = cleared.lose_responses,
            "faults disarmed by the admin"
        );
    }
    Json(hq.faults().remaining()).into_response()
}

/// `GET /faults`: faults still to inject.
async fn faults(_: Admin, State(hq): State<Hq>) -> Response {
    Json(hq.faults().remaining()).into_response()
}

#[cfg(test)]
mod tests {
    use super::IssuedKey;

    #[test]
    fn an_issued_keys_debug_leaves_the_key_out() {
        let issued = IssuedKey {
            api_key: "k3y-s3cret",
            key_id: "0123abcd",
            owner: "team",
            succeeds: None,
        };
        let shown = format!("{issued:?}");
        assert!(!shown.contains("s3cret") && shown.contains("0123abcd"), "{shown}");
    }
}
