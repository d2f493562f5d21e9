//! HQ's pages for browsers: the key portal at `/` (what the workshop called
//! the "Interstella API Key Portal") and the live dashboard at `/dashboard`.
//!
//! The pages and their scripts are embedded in the binary and fetch nothing
//! from elsewhere; a strict Content-Security-Policy keeps it so. They hold
//! no data: their scripts call HQ's JSON routes with the admin credential
//! the person types once, kept in the tab's `sessionStorage` and sent as
//! `Authorization: Bearer`. HQ sets no cookie, so a request another site
//! makes the browser send carries no credential: there is no CSRF to close.

use crate::api::{Admin, ApiError, Segment};
use crate::dashboard::{self, View};
use crate::state::Hq;
use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

/// What the pages may load: only HQ's own scripts, styles and JSON; no
/// inline script or style, no frames, no forms posted anywhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// An embedded file: name under `/portal/`, content type, content.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

/// The files the pages load from `/portal/`.
const ASSETS: [Asset; 5] = [
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_str!("assets/favicon.svg"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("assets/app.css"),
    },
    Asset {
        name: "common.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/common.js"),
    },
    Asset {
        name: "portal.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/portal.js"),
    },
    Asset {
        name: "dashboard.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/dashboard.js"),
    },
];

/// The key portal's page.
const PORTAL_HTML: &str = include_str!("assets/portal.html");
/// The dashboard's page.
const DASHBOARD_HTML: &str = include_str!("assets/dashboard.html");

/// Where the dashboard is (the launcher's banner points there).
pub const DASHBOARD_PATH: &str = "/dashboard";

/// What the dashboard polls, every 2 s.
const DASHBOARD_DATA_PATH: &str = "/dashboard/data";

/// The pages' routes (`/` is [`crate::api`]'s, which calls [`page`] for browsers).
pub fn router() -> Router<Hq> {
    Router::new()
        .route(DASHBOARD_PATH, get(dashboard_page))
        .route(DASHBOARD_DATA_PATH, get(dashboard_data))
        .route("/portal/{asset}", get(asset))
}

/// Whether the request prefers a page to the text list: its `Accept`
/// names `text/html` (browsers do; curl sends `*/*`).
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let is_html = parts.next().is_some_and(|t| t.eq_ignore_ascii_case("text/html"));
            let refused = parts.any(|p| p.replace(' ', "").eq_ignore_ascii_case("q=0"));
            is_html && !refused
        })
}

/// `body` as `content_type`, with the headers every page and asset gets.
fn secured(content_type: &'static str, body: &'static str) -> Response {
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        // A new HQ build may change the scripts: check, don't keep.
        (header::CACHE_CONTROL, "no-cache"),
        (header::VARY, "Accept"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// `GET /` from a browser: the key portal.
pub fn page() -> Response {
    secured("text/html; charset=utf-8", PORTAL_HTML)
}

/// `GET /dashboard`: the dashboard's page (its data needs the credential).
async fn dashboard_page() -> Response {
    secured("text/html; charset=utf-8", DASHBOARD_HTML)
}

/// `GET /portal/<file>`: a script or the style sheet.
async fn asset(Segment(name): Segment) -> Result<Response, ApiError> {
    ASSETS
        .iter()
        .find(|asset| asset.name == name)
        .map(|asset| secured(asset.content_type, asset.body))
        .ok_or(ApiError::NotFound(format!(
            "/portal/{}",
            contracts::quote::quoted(&name)
        )))
}

/// The dashboard data's query.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DataQuery {
    /// `hour` (default) or `day`.
    #[serde(default)]
    view: View,
}

/// `GET /dashboard/data?view=hour|day`: the dashboard's figures (admin).
async fn dashboard_data(
    _: Admin,
    State(hq): State<Hq>,
    headers: HeaderMap,
    query: Result<Query<DataQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| {
        ApiError::BadRequest(format!(
            "expected ?view=hour or ?view=day: {}",
            contracts::quote::shortened_message(e)
        ))
    })?;
    // `no-store`, as every JSON answer of HQ's (`api::router`).
    let response = Json(dashboard::read(&hq, query.view).await?).into_response();
    Ok(hq.polled(&headers, DASHBOARD_DATA_PATH, response))
}
