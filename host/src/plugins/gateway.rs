//! Plugin routes: the host side of `crm:plugin/routes`.
//!
//! - `/api/v1/x/{plugin}/...`: for signed-in users of a department where the plugin
//!   is enabled (or above one); the plugin acts as the caller, within its grants.
//!   Needs the `routes` capability.
//! - `/public/{plugin}/...`: only the path prefixes the manifest declares in
//!   `public_routes`; no sign-in; the plugin acts as its own identity.
//!
//! The host checks the caller, the rate limit ([`RateLimits`]) and the body size
//! before the plugin runs, passes no credentials (`authorization`, `cookie`) to it,
//! and keeps what it answers from reaching the CRM's own origin: no `set-cookie`, and
//! a sandboxing Content-Security-Policy on every answer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::runtime::v0_1::crm::plugin::types::HttpRequest;
use super::{Installed, PluginService};
use crate::api::AppState;
use crate::api::error::{ApiError, Problem};
use crate::auth::Actor;

/// Requests per second and burst of one caller on one plugin.
#[derive(Clone, Copy, Debug)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

/// Signed-in callers, per user and plugin.
pub const SIGNED_IN_RATE: Rate = Rate {
    per_second: 20.0,
    burst: 100.0,
};
/// Public callers, per client address and plugin.
pub const PUBLIC_RATE: Rate = Rate {
    per_second: 2.0,
    burst: 30.0,
};
/// Buckets kept before full ones are forgotten.
const MAX_BUCKETS: usize = 10_000;

/// Token buckets per (plugin, caller), in this process.
#[derive(Default)]
pub struct RateLimits {
    buckets: Mutex<HashMap<(String, String), (f64, Instant)>>,
}

impl RateLimits {
    /// Takes a token, or answers how long until one is free.
    pub fn take(&self, plugin: &str, caller: &str, rate: Rate) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("lock");
        if buckets.len() >= MAX_BUCKETS {
            // A full bucket is the same as none.
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate.per_second < rate.burst
            });
        }
        let (tokens, at) = buckets
            .entry((plugin.to_string(), caller.to_string()))
            .or_insert((rate.burst, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * rate.per_second).min(rate.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / rate.per_second))
        }
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(signed_in_root))
        .routes(routes!(signed_in))
        .routes(routes!(public))
        // Deeper paths (OpenAPI has no template for several segments; the routes
        // above document them).
        .route("/api/v1/x/{plugin}/{path}/{*rest}", any(signed_in))
        .route("/public/{plugin}/{path}/{*rest}", any(public))
}

/// The plugin id and the path below it (as sent, percent-encoded), from the URI.
fn plugin_and_path<'a>(request: &'a Request, prefix: &str) -> (&'a str, String) {
    let rest = request.uri().path().strip_prefix(prefix).unwrap_or("");
    match rest.split_once('/') {
        Some((plugin, path)) => (plugin, format!("/{path}")),
        None => (rest, "/".into()),
    }
}

/// A route of a plugin, for signed-in users (any method; the plugin answers).
#[utoipa::path(method(get, post, put, patch, delete), path = "/api/v1/x/{plugin}/{path}", tag = "plugins",
    security(("bearer" = [])),
    params(("plugin" = String, Path), ("path" = String, Path, description = "The rest of the path, passed to the plugin")),
    responses(
        (status = 200, description = "What the plugin answers"),
        (status = 403, description = "The plugin is not enabled in the caller's departments", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such plugin, or it has no routes", body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests; see Retry-After", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The plugin failed (trap, time limit, oversized answer)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn signed_in(
    State(app): State<AppState>,
    actor: Actor,
    request: Request,
) -> Result<Response, ApiError> {
    let (plugin, path) = plugin_and_path(&request, "/api/v1/x/");
    let plugin = plugin.to_string();
    serve_signed_in(app, actor, plugin, path, request).await
}

/// The root path of a plugin's routes, for signed-in users.
#[utoipa::path(method(get, post, put, patch, delete), path = "/api/v1/x/{plugin}", tag = "plugins",
    security(("bearer" = [])),
    params(("plugin" = String, Path)),
    responses((status = 200, description = "What the plugin answers")))]
async fn signed_in_root(
    State(app): State<AppState>,
    actor: Actor,
    request: Request,
) -> Result<Response, ApiError> {
    signed_in(State(app), actor, request).await
}

async fn serve_signed_in(
    app: AppState,
    actor: Actor,
    plugin: String,
    path: String,
    request: Request,
) -> Result<Response, ApiError> {
    let installed = app
        .plugins
        .installed(&plugin)
        .filter(|p| p.grants.routes)
        .ok_or_else(|| ApiError::not_found(format!("there is no plugin '{plugin}' with routes")))?;
    let home = department_for(&app, &installed, &actor).ok_or_else(|| {
        ApiError::forbidden(format!(
            "the plugin {plugin} is not enabled in your departments"
        ))
    })?;
    app.plugins
        .rates()
        .take(&plugin, &actor.user_id, SIGNED_IN_RATE)
        .map_err(too_many)?;
    // What the host vouches for about the caller, as headers no client can set.
    let admin = app.access.user(&actor).is_admin_of(Some(&home));
    let vouched = vec![
        ("x-crm-department".to_string(), home.clone()),
        ("x-crm-admin".to_string(), admin.to_string()),
    ];
    let host = installed.host_context(&app.records, &actor, Some(home), true);
    call(
        &app.plugins,
        &installed,
        host,
        path,
        Some(actor.user_id.clone()),
        vouched,
        request,
    )
    .await
}

/// Calls a plugin's route as `actor`, for the web pages' plugin views: GET to
/// show a view, POST with a view's form values as a JSON object (`json`). The
/// same checks, department, headers and rate limit as `/api/v1/x/{plugin}{path}`.
/// Answers the status and body.
pub(crate) async fn call_as(
    app: &AppState,
    actor: &Actor,
    plugin: &str,
    path: &str,
    query: &str,
    json: Option<Vec<u8>>,
) -> Result<(StatusCode, axum::body::Bytes), ApiError> {
    let uri = match query {
        "" => format!("/api/v1/x/{plugin}{path}"),
        q => format!("/api/v1/x/{plugin}{path}?{q}"),
    };
    let builder = Request::builder()
        .uri(uri)
        .header("accept", "application/json");
    let request = match json {
        None => builder.method("GET").body(Body::empty()),
        Some(body) => builder
            .method("POST")
            .header("content-type", "application/json")
            .body(Body::from(body)),
    }
    .map_err(|e| ApiError::bad_request(format!("not a path of a view: {e}")))?;
    let response = serve_signed_in(
        app.clone(),
        actor.clone(),
        plugin.to_string(),
        path.to_string(),
        request,
    )
    .await?;
    let status = response.status();
    let max = app.plugins.runtime().limits.max_payload_bytes;
    let body = to_bytes(response.into_body(), max)
        .await
        .map_err(|e| ApiError::internal(format!("reading a plugin's answer: {e}")))?;
    Ok((status, body))
}

/// Where a signed-in caller meets the plugin: the caller's first department where
/// the plugin runs, or one below a department of the caller. `None`: nowhere.
pub(crate) fn department_for(app: &AppState, plugin: &Installed, actor: &Actor) -> Option<String> {
    if !plugin.is_running() {
        return None;
    }
    let user = app.access.user(actor);
    let tree = app.access.department_tree();
    user.departments().find_map(|mine| {
        plugin
            .info
            .departments
            .iter()
            .find(|enabled| *enabled == mine || tree.departments.is_within(enabled, mine))
            .cloned()
    })
}

/// A public route of a plugin, as its manifest declares (any method).
#[utoipa::path(method(get, post, put, patch, delete), path = "/public/{plugin}/{path}", tag = "plugins",
    params(("plugin" = String, Path), ("path" = String, Path)),
    responses(
        (status = 200, description = "What the plugin answers"),
        (status = 404, description = "No such plugin or public path", body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests; see Retry-After", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The plugin failed", body = Problem, content_type = "application/problem+json"),
    ))]
async fn public(State(app): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let (plugin, path) = plugin_and_path(&request, "/public/");
    let plugin = plugin.to_string();
    let installed = app
        .plugins
        .installed(&plugin)
        .filter(|p| p.is_running() && !has_dot_segments(&path) && p.grants.is_public(&path))
        .ok_or_else(|| ApiError::not_found("no such public page"))?;
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default();
    app.plugins
        .rates()
        .take(&plugin, &client, PUBLIC_RATE)
        .map_err(too_many)?;
    let host = installed.own_context(&app.records);
    call(
        &app.plugins,
        &installed,
        host,
        path,
        None,
        Vec::new(),
        request,
    )
    .await
}

/// `.` or `..` segments, or encoded separators and dots, which a plugin decoding
/// the path could resolve to a path that is not public.
fn has_dot_segments(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.contains("%2e")
        || lower.contains("%2f")
        || lower.contains("%5c")
        || path.contains('\\')
        || path.split('/').any(|s| s == "." || s == "..")
}

fn too_many(wait: Duration) -> ApiError {
    let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many requests to this plugin; try again in {seconds} s"),
    )
    .with_retry_after(seconds)
}

/// Headers a plugin never sees.
const WITHHELD: &[&str] = &["authorization", "cookie", "proxy-authorization"];
/// Headers only the host sets (a client's are dropped): `x-crm-department`, where
/// the signed-in caller meets the plugin, and `x-crm-admin`, whether the caller
/// administers that department.
const VOUCHED_PREFIX: &str = "x-crm-";
/// Headers a plugin may set (and any `x-` header): describing its content and its
/// caching, nothing that acts on the CRM's origin (cookies, site data, security
/// policies, authentication, framing).
const ALLOWED: &[&str] = &[
    "content-type",
    "content-disposition",
    "content-language",
    "cache-control",
    "etag",
    "last-modified",
    "expires",
    "vary",
    "location",
    "retry-after",
];

async fn call(
    plugins: &PluginService,
    installed: &Installed,
    host: super::runtime::HostContext,
    path: String,
    user: Option<String>,
    vouched: Vec<(String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let max = plugins.runtime().limits.max_payload_bytes;
    let body = to_bytes(body, max).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a request to a plugin is at most {} KiB", max >> 10),
        )
    })?;
    let headers = parts
        .headers
        .iter()
        .filter(|(name, _)| {
            !WITHHELD.contains(&name.as_str()) && !name.as_str().starts_with(VOUCHED_PREFIX)
        })
        .filter_map(|(name, value)| {
            Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
        })
        .chain(vouched)
        .collect();
    let request = HttpRequest {
        method: parts.method.to_string(),
        path,
        query: parts.uri.query().unwrap_or("").to_string(),
        headers,
        body: body.to_vec(),
        user,
    };
    let id = &installed.info.id;
    let answer = plugins
        .runtime()
        .handle_route(&installed.loaded, host, &request)
        .await;
    // Route failures do not count toward suspension: anyone who can reach a route
    // (the public, for public ones) could otherwise switch the plugin off for all.
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => {
            tracing::warn!(plugin = %id, error = %e, "a plugin route failed");
            return Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                format!("the plugin {id} {} failed: {e}", installed.info.version),
            ));
        }
    };
    let status = StatusCode::from_u16(answer.status)
        .ok()
        .filter(|s| !s.is_informational())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                format!("the plugin {id} answered with status {}", answer.status),
            )
        })?;
    let mut response = (status, Body::from(answer.body)).into_response();
    let headers = response.headers_mut();
    for (name, value) in answer.headers {
        let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.to_ascii_lowercase()),
            HeaderValue::try_from(value),
        ) else {
            continue;
        };
        let allowed = ALLOWED.contains(&name.as_str()) || name.as_str().starts_with("x-");
        if allowed {
            headers.append(name, value);
        }
    }
    // Pages a plugin serves run in an opaque origin: they cannot read the CRM's
    // storage or call its API with a user's credentials.
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static("sandbox allow-scripts allow-forms allow-popups"),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}
