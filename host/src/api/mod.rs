//! Shared HTTP plumbing: application state, authentication extractor, the router with
//! its layers (request ids, tracing, body limit, panics), health checks and OpenAPI.

pub mod error;
pub mod extract;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use self::error::ApiError;
use crate::access::AccessControl;
use crate::auth::{Actor, AuthError, AuthService};
use crate::config::Config;
use crate::db::Db;
use crate::plugins::PluginService;
use crate::records::objects::MetadataService;
use crate::records::service::RecordService;

/// Everything a request handler may use.
pub struct App {
    pub config: Config,
    pub db: Db,
    pub auth: AuthService,
    pub records: RecordService,
    pub metadata: MetadataService,
    pub access: AccessControl,
    pub plugins: PluginService,
    pub deliverer: crate::plugins::delivery::Deliverer,
    pub documents: crate::documents::DocumentService,
    pub processes: crate::process::ProcessService,
}

pub type AppState = Arc<App>;

impl FromRequestParts<AppState> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let token = header
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::MissingToken)?;
        Ok(app.auth.authenticate(token).await?)
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "CRM API", description = "Core records, metadata, audit and auth of the CRM host."),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Login, logout, API tokens and users"),
        (name = "objects", description = "Object types and their fields"),
        (name = "records", description = "Records of any object, with history, shares and transfer"),
        (name = "access", description = "Departments, roles, memberships and denied accesses"),
        (name = "plugins", description = "Plugin packages, approval and per-department enablement"),
        (name = "events", description = "The event outbox"),
        (name = "notifications", description = "The caller's notifications"),
        (name = "imports", description = "CSV imports into any object: upload, dry run, run, progress, refused rows"),
        (name = "calls", description = "Call logging for telephony systems: a call becomes an activity on the matching contact or lead"),
        (name = "calendar", description = "Private iCalendar feeds of activities for calendar apps, and importing .ics files as activities"),
        (name = "webhooks", description = "Outgoing webhooks: subscriptions to record events, signed deliveries, the delivery log and replay"),
        (name = "reports", description = "Saved reports with grouping and measures, SVG charts, and the KPI dashboard"),
        (name = "processes", description = "Process definitions (versioned) and their instances"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The whole HTTP API; the OpenAPI document is generated from the same route list,
/// so it cannot miss a route.
pub fn router(app: AppState) -> Router {
    let max_body = app.config.max_body_bytes;
    let (api, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(openapi_json))
        .merge(crate::auth::routes::router())
        .merge(crate::records::metadata_routes::router())
        .merge(crate::records::routes::router())
        .merge(crate::access::routes::router())
        .merge(crate::plugins::routes::router())
        .merge(crate::plugins::gateway::router())
        .merge(crate::documents::routes::router())
        .merge(crate::events::routes::router())
        .merge(crate::imports::routes::router())
        .merge(crate::calls::router())
        .merge(crate::calendar_feeds::router())
        .merge(crate::calendar_import::router())
        .merge(crate::webhooks::routes::router())
        .merge(crate::notifications::routes::router())
        .merge(crate::reports::routes::router())
        .merge(crate::feed::router())
        .merge(crate::process::routes::router())
        .split_for_parts();
    let mut doc = doc;
    doc.openapi = utoipa::openapi::OpenApiVersion::Version31;
    let doc = Arc::new(doc);
    let request_id = HeaderName::from_static("x-request-id");
    api.merge(crate::web::router())
        .layer(axum::Extension(doc))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .method_not_allowed_fallback(|| async { ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "this endpoint does not take that method") })
        .with_state(app)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(CatchPanicLayer::custom(|_| ApiError::internal("a request handler panicked").into_response()))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
                // A calendar feed's address is its secret: kept out of the logs.
                let path = if req.uri().path().starts_with("/ics/") { "/ics/…" } else { req.uri().path() };
                tracing::info_span!("request", method = %req.method(), path = %path, request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

/// The server is alive.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "Alive")))]
async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// The database answers and every migration has run.
#[utoipa::path(get, path = "/readyz", tag = "health", responses(
    (status = 200, description = "Ready"),
    (status = 503, description = "Not ready", body = error::Problem, content_type = "application/problem+json")
))]
async fn readyz(State(app): State<AppState>) -> Response {
    if app.db.ready().await {
        Json(serde_json::json!({"status": "ready"})).into_response()
    } else {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the database is not reachable or not migrated",
        )
        .into_response()
    }
}

/// This document: the OpenAPI 3.1 description of the whole API.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "health", responses((status = 200, description = "The OpenAPI document")))]
async fn openapi_json(
    axum::Extension(doc): axum::Extension<Arc<utoipa::openapi::OpenApi>>,
) -> Json<utoipa::openapi::OpenApi> {
    Json(doc.as_ref().clone())
}

/// Takes the parameter `key` out of a raw query string: its value (the last, if
/// repeated) and the rest of the query, for [`paging`].
pub fn take_param(query: Option<&str>, key: &str) -> (Option<String>, String) {
    let mut value = None;
    let mut rest = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if k == key {
            value = Some(v.into_owned());
        } else {
            rest.append_pair(&k, &v);
        }
    }
    (value, rest.finish())
}

/// Cuts a page read with one item more than `limit`: the items to answer and, when
/// there were more, the cursor (of the last one answered) that continues after them.
pub fn cut_page<T>(
    mut items: Vec<T>,
    limit: i64,
    cursor: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    if items.len() as i64 <= limit {
        return (items, None);
    }
    items.truncate(limit as usize);
    let next = items.last().map(cursor);
    (items, next)
}

/// Reads `limit` and `after`-style paging parameters out of a raw query string,
/// refusing anything else.
pub fn paging(
    query: Option<&str>,
    cursor_key: &str,
    max: i64,
    default: i64,
) -> Result<(Option<String>, i64), ApiError> {
    let mut after = None;
    let mut limit = default;
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "limit" => {
                limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=max).contains(n))
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "limit must be a whole number from 1 to {max}"
                        ))
                    })?
            }
            k if k == cursor_key => after = Some(v.into_owned()),
            k => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter '{k}'"
                )));
            }
        }
    }
    Ok((after, limit))
}
