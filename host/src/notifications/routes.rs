//! `/api/v1/notifications`: the caller's own notifications.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Notification;
use crate::api::error::{ApiError, ApiResult, Problem};
use crate::api::{AppState, cut_page, paging, take_param};
use crate::auth::Actor;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_notifications))
        .routes(routes!(read_notification))
        .routes(routes!(read_all_notifications))
        .routes(routes!(get_settings, put_settings))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Settings {
    /// The caller wants an email copy of what the CRM tells them (assignments, deals
    /// moved, mentions).
    pub email: bool,
    /// The server can send email (`CRM_SMTP_URL` is set); without it no copy is sent.
    pub email_available: bool,
}

#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsInput {
    pub email: bool,
}

async fn settings_of(app: &AppState, user: &str) -> ApiResult<Settings> {
    Ok(Settings {
        email: super::wants_email(&app.db, user).await?,
        email_available: app.config.smtp_url.is_some(),
    })
}

/// How the caller is told: whether by email too.
#[utoipa::path(get, path = "/api/v1/notifications/settings", tag = "notifications", security(("bearer" = [])),
    responses((status = 200, body = Settings)))]
async fn get_settings(State(app): State<AppState>, actor: Actor) -> ApiResult<Json<Settings>> {
    Ok(Json(settings_of(&app, &actor.user_id).await?))
}

/// Turns the caller's notification emails on or off (from the next notification on).
#[utoipa::path(put, path = "/api/v1/notifications/settings", tag = "notifications", security(("bearer" = [])),
    request_body = SettingsInput,
    responses((status = 200, body = Settings), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn put_settings(
    State(app): State<AppState>,
    actor: Actor,
    crate::api::extract::ApiJson(input): crate::api::extract::ApiJson<SettingsInput>,
) -> ApiResult<Json<Settings>> {
    super::set_wants_email(&app.db, &actor.user_id, input.email).await?;
    Ok(Json(settings_of(&app, &actor.user_id).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationPage {
    pub items: Vec<Notification>,
    /// Pass as `cursor` for older ones; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Marked {
    /// How many notifications changed from unread to read.
    pub marked: u64,
}

/// The caller's notifications, newest first.
#[utoipa::path(get, path = "/api/v1/notifications", tag = "notifications", security(("bearer" = [])),
    params(
        ("unread" = Option<bool>, Query, description = "Only unread ones"),
        ("cursor" = Option<String>, Query, description = "From a previous page's next_cursor"),
        ("limit" = Option<i64>, Query, description = "1 to 200, default 50"),
    ),
    responses((status = 200, body = NotificationPage), (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn list_notifications(
    State(app): State<AppState>,
    actor: Actor,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<NotificationPage>> {
    // `unread` is ours; the rest is the usual paging.
    let (unread, rest) = take_param(query.as_deref(), "unread");
    let unread = match unread.as_deref() {
        None | Some("false" | "0") => false,
        Some("true" | "1") => true,
        Some(_) => return Err(ApiError::bad_request("unread must be true or false")),
    };
    let (cursor, limit) = paging(Some(&rest), "cursor", 200, 50)?;
    let items = super::list(
        &app.db,
        &actor.user_id,
        unread,
        cursor.as_deref(),
        limit + 1,
    )
    .await?;
    let (items, next_cursor) = cut_page(items, limit, |n| n.id.clone());
    Ok(Json(NotificationPage { items, next_cursor }))
}

/// Marks one of the caller's notifications read.
#[utoipa::path(post, path = "/api/v1/notifications/{id}/read", tag = "notifications", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Marked), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn read_notification(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Marked>> {
    let marked = super::mark_read(&app.db, &actor.user_id, Some(&id)).await?;
    if marked == 0 {
        // Already read, or not the caller's: only the first is worth a 200.
        if !super::owns(&app.db, &actor.user_id, &id).await? {
            return Err(ApiError::not_found("there is no such notification"));
        }
    }
    Ok(Json(Marked { marked }))
}

/// Marks all of the caller's notifications read.
#[utoipa::path(post, path = "/api/v1/notifications/read-all", tag = "notifications", security(("bearer" = [])),
    responses((status = 200, body = Marked)))]
async fn read_all_notifications(
    State(app): State<AppState>,
    actor: Actor,
) -> ApiResult<Json<Marked>> {
    Ok(Json(Marked {
        marked: super::mark_read(&app.db, &actor.user_id, None).await?,
    }))
}
