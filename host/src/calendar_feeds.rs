//! Calendar feeds: a user makes a private address (`/ics/<token>.ics`) that calendar
//! apps (Google Calendar, Outlook, Apple Calendar) subscribe to; it serves the user's
//! activities, or a department's, as iCalendar (RFC 5545). The feed reads as its user
//! through the records service, so it shows only what that user may read, and stops
//! when the feed is removed or the user deactivated. Only the token's SHA-256 is kept.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row as _;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::AppState;
use crate::api::error::{ApiError, ApiResult, FieldError, Problem};
use crate::api::extract::ApiJson;
use crate::auth::{Actor, token_hash};
use crate::db;
use crate::records::Record;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_feeds, create_feed))
        .routes(routes!(delete_feed))
        .routes(routes!(feed))
}

/// Most activities one feed serves.
const MAX_EVENTS: usize = 5_000;
/// The window a feed covers: this far back and ahead of today.
const DAYS_BACK: i64 = 90;
const DAYS_AHEAD: i64 = 365;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedInput {
    /// `me` (activities assigned to the caller) or `department:<id>`.
    pub scope: String,
    /// What calendar apps call it (default "CRM activities").
    pub name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Feed {
    pub id: String,
    pub scope: String,
    pub name: String,
    /// The private address to subscribe to: shown when the feed is made, `null` after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

fn feed_of(row: &sqlx::any::AnyRow) -> Result<Feed, sqlx::Error> {
    Ok(Feed {
        id: row.try_get("id")?,
        scope: row.try_get("scope")?,
        name: row.try_get("name")?,
        url: None,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

/// The caller's calendar feeds.
#[utoipa::path(get, path = "/api/v1/calendar-feeds", tag = "calendar", security(("bearer" = [])),
    responses((status = 200, body = Vec<Feed>)))]
async fn list_feeds(State(app): State<AppState>, actor: Actor) -> ApiResult<Json<Vec<Feed>>> {
    let rows = sqlx::query(
        "SELECT id, scope, name, created_at, last_used_at FROM calendar_feeds WHERE user_id = $1 ORDER BY id",
    )
    .bind(&actor.user_id)
    .fetch_all(&app.db.pool)
    .await?;
    Ok(Json(rows.iter().map(feed_of).collect::<Result<_, _>>()?))
}

/// Makes a private calendar feed; the answer's `url` (shown this once) is what a
/// calendar app subscribes to.
#[utoipa::path(post, path = "/api/v1/calendar-feeds", tag = "calendar", security(("bearer" = [])),
    request_body = FeedInput,
    responses((status = 201, body = Feed), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn create_feed(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(input): ApiJson<FeedInput>,
) -> ApiResult<(StatusCode, Json<Feed>)> {
    let mut errors = Vec::new();
    let scope_ok = match input.scope.split_once(':') {
        _ if input.scope == "me" => true,
        Some(("department", id)) => app.access.department_tree().departments.exists(id),
        _ => false,
    };
    if !scope_ok {
        errors.push(FieldError::new(
            "scope",
            "must be 'me' or 'department:<id>' of a department",
        ));
    }
    let name = input.name.unwrap_or_else(|| "CRM activities".into());
    if name.trim().is_empty() || name.chars().count() > 100 {
        errors.push(FieldError::new("name", "must be 1 to 100 characters"));
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(
            format!("{} field(s) invalid", errors.len()),
            errors,
        ));
    }
    let token = crate::random_hex(32);
    let id = db::new_id();
    let now = db::now();
    sqlx::query(
        "INSERT INTO calendar_feeds (id, user_id, token_hash, scope, name, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(&actor.user_id)
    .bind(token_hash(&token))
    .bind(&input.scope)
    .bind(&name)
    .bind(&now)
    .execute(&app.db.pool)
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(Feed {
            id,
            scope: input.scope,
            name,
            url: Some(format!("/ics/{token}.ics")),
            created_at: now,
            last_used_at: None,
        }),
    ))
}

/// Removes one of the caller's feeds: its address stops working at once.
#[utoipa::path(delete, path = "/api/v1/calendar-feeds/{id}", tag = "calendar", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn delete_feed(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let gone = sqlx::query("DELETE FROM calendar_feeds WHERE id = $1 AND user_id = $2")
        .bind(&id)
        .bind(&actor.user_id)
        .execute(&app.db.pool)
        .await?
        .rows_affected();
    if gone == 0 {
        return Err(ApiError::not_found("there is no such feed of yours"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The feed itself, for calendar apps: no sign-in, the token in the address is the
/// key. Activities from 90 days back to a year ahead, at most 5,000.
#[utoipa::path(get, path = "/ics/{token}", tag = "calendar",
    params(("token" = String, Path, description = "The feed's token and `.ics`")),
    responses(
        (status = 200, description = "iCalendar", content_type = "text/calendar"),
        (status = 404, description = "No such feed (removed, or its user deactivated)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn feed(State(app): State<AppState>, Path(token): Path<String>) -> ApiResult<Response> {
    let not_found = || ApiError::not_found("there is no such calendar feed");
    let token = token.strip_suffix(".ics").unwrap_or(&token);
    let row = sqlx::query(
        "SELECT f.id, f.user_id, f.scope, f.name FROM calendar_feeds f JOIN users u ON u.id = f.user_id \
         WHERE f.token_hash = $1 AND u.active = 1",
    )
    .bind(token_hash(token))
    .fetch_optional(&app.db.pool)
    .await?
    .ok_or_else(not_found)?;
    let (id, user, scope, name): (String, String, String, String) = (
        row.try_get("id")?,
        row.try_get("user_id")?,
        row.try_get("scope")?,
        row.try_get("name")?,
    );
    let actor = crate::plugins::delivery::actor_of(&app.db, &user)
        .await
        .map_err(|_| not_found())?;
    let today = Utc::now();
    let activities = activities_between(
        &app,
        &actor,
        &db::format_time(today - Duration::days(DAYS_BACK)),
        &db::format_time(today + Duration::days(DAYS_AHEAD)),
        &scope,
        MAX_EVENTS,
    )
    .await?;
    sqlx::query("UPDATE calendar_feeds SET last_used_at = $2 WHERE id = $1")
        .bind(&id)
        .bind(db::now())
        .execute(&app.db.pool)
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/calendar; charset=utf-8"),
            (header::CACHE_CONTROL, "private, max-age=300"),
        ],
        ics(&name, &activities),
    )
        .into_response())
}

/// The activities starting in `[from, to)` (RFC 3339) that `actor` may read, by
/// start: of `who` `me` (assigned to the actor), `user:<id>` (assigned to that user),
/// `department:<id>`, or anything else for all; at most `max`. The web calendar and
/// the feeds read them so.
pub async fn activities_between(
    app: &AppState,
    actor: &Actor,
    from: &str,
    to: &str,
    who: &str,
    max: usize,
) -> Result<Vec<Record>, crate::records::RecordError> {
    let mut filters = vec![
        ("filter[starts_at][gte]".to_string(), from.to_string()),
        ("filter[starts_at][lt]".to_string(), to.to_string()),
        ("sort".to_string(), "starts_at".to_string()),
    ];
    match who.split_once(':') {
        _ if who == "me" => filters.push(("filter[assigned_to]".into(), actor.user_id.clone())),
        Some(("user", id)) => filters.push(("filter[assigned_to]".into(), id.to_string())),
        Some(("department", id)) => filters.push(("filter[department]".into(), id.to_string())),
        _ => {}
    }
    app.records
        .list_up_to(actor, "activities", &filters, max)
        .await
}

/// The activities as an iCalendar document (CRLF lines, folded at 75 octets).
pub fn ics(name: &str, activities: &[Record]) -> String {
    let mut out = String::new();
    let mut line = |text: String| fold_into(&mut out, &text);
    line("BEGIN:VCALENDAR".into());
    line("VERSION:2.0".into());
    line("PRODID:-//CRM//Activities//EN".into());
    line("CALSCALE:GREGORIAN".into());
    line("METHOD:PUBLISH".into());
    line(format!("X-WR-CALNAME:{}", escape(name)));
    for a in activities {
        let field = |k: &str| a.fields.get(k).and_then(Value::as_str).unwrap_or("");
        let Some(starts) = ics_time(field("starts_at")) else {
            continue;
        };
        let ends = ics_time(field("ends_at")).unwrap_or_else(|| {
            chrono::DateTime::parse_from_rfc3339(field("starts_at"))
                .map(|t| {
                    (t + Duration::minutes(30))
                        .format("%Y%m%dT%H%M%SZ")
                        .to_string()
                })
                .unwrap_or_else(|_| starts.clone())
        });
        line("BEGIN:VEVENT".into());
        line(format!("UID:{}@crm", a.id));
        line(format!(
            "DTSTAMP:{}",
            ics_time(&a.updated_at).unwrap_or_else(|| starts.clone())
        ));
        line(format!("DTSTART:{starts}"));
        line(format!("DTEND:{ends}"));
        line(format!("SUMMARY:{}", escape(field("topic"))));
        if !field("result").is_empty() {
            line(format!("DESCRIPTION:{}", escape(field("result"))));
        }
        if !field("kind").is_empty() {
            line(format!("CATEGORIES:{}", escape(field("kind"))));
        }
        let status = if field("status") == "cancelled" {
            "CANCELLED"
        } else {
            "CONFIRMED"
        };
        line(format!("STATUS:{status}"));
        line(format!("SEQUENCE:{}", a.version));
        line("END:VEVENT".into());
    }
    line("END:VCALENDAR".into());
    out
}

/// `2026-11-24T09:30:00Z` (or with a fraction or offset) as `20261124T093000Z`.
fn ics_time(rfc3339: &str) -> Option<String> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .ok()
        .map(|t| t.with_timezone(&Utc).format("%Y%m%dT%H%M%SZ").to_string())
}

/// Text escaped as RFC 5545 asks: backslash, semicolon, comma, line breaks.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Appends `text` as a content line folded at 75 octets (never inside a character):
/// each continuation starts with a space.
fn fold_into(out: &mut String, text: &str) {
    let mut width = 0;
    for c in text.chars() {
        if width + c.len_utf8() > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += c.len_utf8();
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_folds_as_rfc_5545_asks() {
        assert_eq!(escape("a,b;c\\d\ne"), "a\\,b\\;c\\\\d\\ne");
        let mut out = String::new();
        let long = format!("SUMMARY:{}", "é".repeat(60));
        fold_into(&mut out, &long);
        let lines: Vec<&str> = out.split("\r\n").filter(|l| !l.is_empty()).collect();
        assert!(lines.iter().all(|l| l.len() <= 75), "{lines:?}");
        assert!(lines[1..].iter().all(|l| l.starts_with(' ')));
        let unfolded: String = out.replace("\r\n ", "").trim_end().to_string();
        assert_eq!(unfolded, long);
        assert_eq!(
            ics_time("2026-11-24T09:30:00+03:30").as_deref(),
            Some("20261124T060000Z")
        );
    }
}
