//! `/api/v1/webhooks`: org admins subscribe URLs to record events and read the
//! delivery log; a failed delivery can be replayed.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Delivery, TOPICS, Webhook};
use crate::api::error::{ApiError, ApiResult, FieldError, Problem};
use crate::api::extract::ApiJson;
use crate::api::{AppState, cut_page, paging, take_param};
use crate::auth::Actor;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(get_webhook, update_webhook, delete_webhook))
        .routes(routes!(list_deliveries))
        .routes(routes!(replay_delivery))
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// Where events are POSTed: http or https.
    pub url: String,
    /// Topics: `record.created`, `record.updated`, `record.deleted`.
    pub events: Vec<String>,
    /// Objects whose events are sent; empty or left out: every object.
    #[serde(default)]
    pub objects: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookChange {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub objects: Option<Vec<String>>,
    /// False pauses deliveries (events keep their place and are sent on resuming).
    pub active: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub items: Vec<Delivery>,
    /// Pass as `cursor` for older ones; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Refuses anyone but an org admin.
pub async fn admin(app: &AppState, actor: &Actor) -> ApiResult<()> {
    app.access
        .require_admin(actor, None, "manage webhooks")
        .await
        .map(|_| ())
}

pub async fn found(app: &AppState, id: &str) -> ApiResult<Webhook> {
    super::get(&app.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("there is no such webhook"))
}

/// Every problem with a webhook's settings, by field.
fn check(app: &AppState, url: &str, events: &[String], objects: &[String]) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
    if !scheme_ok || url.len() > 2000 || reqwest::Url::parse(url).is_err() {
        errors.push(FieldError::new(
            "url",
            "must be an http:// or https:// address of at most 2,000 characters",
        ));
    }
    if events.is_empty() {
        errors.push(FieldError::new("events", "name at least one event"));
    }
    for e in events.iter().filter(|e| !TOPICS.contains(&e.as_str())) {
        errors.push(FieldError::new(
            "events",
            format!("'{e}' is not one of {}", TOPICS.join(", ")),
        ));
    }
    let schema = app.records.schema();
    for o in objects.iter().filter(|o| schema.object(o).is_none()) {
        errors.push(FieldError::new(
            "objects",
            format!("there is no object named '{o}'"),
        ));
    }
    errors
}

fn refuse(errors: Vec<FieldError>) -> ApiResult<()> {
    if errors.is_empty() {
        return Ok(());
    }
    Err(ApiError::invalid(
        format!("{} field(s) invalid", errors.len()),
        errors,
    ))
}

/// Every webhook (org admins only).
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks", security(("bearer" = [])),
    responses((status = 200, body = Vec<Webhook>), (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn list_webhooks(State(app): State<AppState>, actor: Actor) -> ApiResult<Json<Vec<Webhook>>> {
    admin(&app, &actor).await?;
    Ok(Json(super::list(&app.db).await?))
}

/// Subscribes a URL to record events from now on. The answer holds the signing secret,
/// shown this once. Events are sent as the creating admin may read them.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", security(("bearer" = [])),
    request_body = WebhookInput,
    responses(
        (status = 201, body = Webhook),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_webhook(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(input): ApiJson<WebhookInput>,
) -> ApiResult<(StatusCode, Json<Webhook>)> {
    Ok((
        StatusCode::CREATED,
        Json(subscribe(&app, &actor, input).await?),
    ))
}

/// A new webhook owned by `actor` (an org admin), its settings checked; answered
/// with its secret, shown this once. The API's create and the admin page's.
pub async fn subscribe(app: &AppState, actor: &Actor, input: WebhookInput) -> ApiResult<Webhook> {
    admin(app, actor).await?;
    refuse(check(app, &input.url, &input.events, &input.objects))?;
    Ok(super::create(
        &app.db,
        &actor.user_id,
        &input.url,
        &input.events,
        &input.objects,
    )
    .await?)
}

#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Webhook), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_webhook(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Webhook>> {
    admin(&app, &actor).await?;
    Ok(Json(found(&app, &id).await?))
}

/// Changes a webhook's URL, events, objects, or pauses and resumes it.
#[utoipa::path(patch, path = "/api/v1/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path)),
    request_body = WebhookChange,
    responses(
        (status = 200, body = Webhook),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn update_webhook(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(change): ApiJson<WebhookChange>,
) -> ApiResult<Json<Webhook>> {
    Ok(Json(amend(&app, &actor, &id, change).await?))
}

/// Applies a change to a webhook (org admins), its settings checked as a whole.
pub async fn amend(
    app: &AppState,
    actor: &Actor,
    id: &str,
    change: WebhookChange,
) -> ApiResult<Webhook> {
    admin(app, actor).await?;
    let mut hook = found(app, id).await?;
    if let Some(url) = change.url {
        hook.url = url;
    }
    if let Some(events) = change.events {
        hook.events = events;
    }
    if let Some(objects) = change.objects {
        hook.objects = objects;
    }
    if let Some(active) = change.active {
        hook.active = active;
    }
    refuse(check(app, &hook.url, &hook.events, &hook.objects))?;
    super::update(&app.db, &hook).await?;
    found(app, id).await
}

/// Removes a webhook and its delivery log.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn delete_webhook(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    unsubscribe(&app, &actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a webhook and its delivery log (org admins).
pub async fn unsubscribe(app: &AppState, actor: &Actor, id: &str) -> ApiResult<()> {
    admin(app, actor).await?;
    if !super::delete(&app.db, id).await? {
        return Err(ApiError::not_found("there is no such webhook"));
    }
    Ok(())
}

/// The delivery log, newest first: each delivery's body, attempts, last answer or
/// error.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks", security(("bearer" = [])),
    params(
        ("id" = String, Path),
        ("status" = Option<String>, Query, description = "pending, delivered or failed"),
        ("cursor" = Option<String>, Query, description = "From a previous page's next_cursor"),
        ("limit" = Option<i64>, Query, description = "1 to 200, default 50"),
    ),
    responses((status = 200, body = DeliveryPage), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn list_deliveries(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<DeliveryPage>> {
    admin(&app, &actor).await?;
    found(&app, &id).await?;
    let (status, rest) = take_param(query.as_deref(), "status");
    if status
        .as_deref()
        .is_some_and(|s| !["pending", "delivered", "failed"].contains(&s))
    {
        return Err(ApiError::bad_request(
            "status must be pending, delivered or failed",
        ));
    }
    let (cursor, limit) = paging(Some(&rest), "cursor", 200, 50)?;
    let items = super::deliveries(
        &app.db,
        &id,
        status.as_deref(),
        cursor.as_deref(),
        limit + 1,
    )
    .await?;
    let (items, next_cursor) = cut_page(items, limit, |d| d.id.clone());
    Ok(Json(DeliveryPage { items, next_cursor }))
}

/// Sends a delivery again (a failed one, or one the receiver lost), from its first
/// attempt with the same body.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/deliveries/{delivery}/replay", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path), ("delivery" = String, Path)),
    responses((status = 202, body = Delivery), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn replay_delivery(
    State(app): State<AppState>,
    actor: Actor,
    Path((id, delivery)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<Delivery>)> {
    Ok((
        StatusCode::ACCEPTED,
        Json(replay(&app, &actor, &id, &delivery).await?),
    ))
}

/// Sends a delivery again from its first attempt (org admins).
pub async fn replay(
    app: &AppState,
    actor: &Actor,
    id: &str,
    delivery: &str,
) -> ApiResult<Delivery> {
    admin(app, actor).await?;
    if !super::replay(&app.db, id, delivery).await? {
        return Err(ApiError::not_found("there is no such delivery"));
    }
    super::delivery(&app.db, id, delivery)
        .await?
        .ok_or_else(|| ApiError::not_found("there is no such delivery"))
}
