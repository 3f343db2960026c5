//! HTTP routes of records: `/api/v1/records/{object}[/{id}[/history]]`, and the
//! caller's saved list views, `/api/v1/records/{object}/views[/{id}]`.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Record;
use super::service::{Aggregated, Page, ShareChange};
use super::views::{self, NewView, SavedView};
use crate::access::shares::{Share, ShareInput};
use crate::api::error::{ApiError, ApiResult, Problem};
use crate::api::extract::ApiJson;
use crate::api::{AppState, paging};
use crate::audit::AuditEntry;
use crate::auth::Actor;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_records, create_record))
        .merge(super::export_routes::router())
        .routes(routes!(aggregate_records))
        .routes(routes!(list_views, save_view))
        .routes(routes!(delete_view))
        .routes(routes!(get_record, update_record, delete_record))
        .routes(routes!(record_history))
        .routes(routes!(list_shares, put_share))
        .routes(routes!(delete_share))
        .routes(routes!(transfer_record))
}

/// Lists records: `filter[field]=v`, `filter[field][op]=v` (eq, ne, lt, lte, gt, gte,
/// contains, in), `sort=-field`, `limit` (max 200), `cursor`, `q` (quick search).
#[utoipa::path(get, path = "/api/v1/records/{object}", tag = "records",
    security(("bearer" = [])),
    params(
        ("object" = String, Path, description = "Object name, e.g. contacts"),
        ("filter[field]" = Option<String>, Query, description = "Filter on a field; `filter[field][op]` for other operators"),
        ("sort" = Option<String>, Query, description = "Field to sort by, `-` for descending; default `-created_at`"),
        ("limit" = Option<i64>, Query, description = "Page size, 1 to 200, default 50"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ("q" = Option<String>, Query, description = "Quick search over searchable fields"),
    ),
    responses(
        (status = 200, body = Page),
        (status = 400, description = "Bad filter, sort or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown object", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_records(
    State(app): State<AppState>,
    actor: Actor,
    Path(object): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Page>> {
    Ok(Json(
        app.records
            .list(&actor, &object, query.as_deref().unwrap_or(""))
            .await?,
    ))
}

/// Counts, sums, averages, minimums and maximums by group over the records the
/// caller may read: `group_by` (up to two fields or `owner`/`department`,
/// comma-separated; dates and instants by a period, as `created_at:month`), `sum`,
/// `avg`, `min`, `max` (number fields, up to eight in all), with a list's
/// `filter[...]` and `q`. Boards, reports and the KPI dashboard read this.
#[utoipa::path(get, path = "/api/v1/records/{object}/aggregate", tag = "records",
    security(("bearer" = [])),
    params(
        ("object" = String, Path, description = "Object name, e.g. deals"),
        ("group_by" = Option<String>, Query, description = "Up to two keys, e.g. `stage,owner` or `created_at:month` (dates and instants by `:day`, `:month` or `:year`); none: one group of everything"),
        ("sum" = Option<String>, Query, description = "Number fields to sum, e.g. `amount`"),
        ("avg" = Option<String>, Query, description = "Number fields to average over the records that have a value"),
        ("min" = Option<String>, Query, description = "Number fields whose least value to give"),
        ("max" = Option<String>, Query, description = "Number fields whose greatest value to give"),
        ("filter[field]" = Option<String>, Query, description = "As for a list"),
        ("q" = Option<String>, Query, description = "As for a list"),
    ),
    responses(
        (status = 200, body = Aggregated),
        (status = 400, description = "Bad group, sum or filter", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown object", body = Problem, content_type = "application/problem+json"),
    ))]
async fn aggregate_records(
    State(app): State<AppState>,
    actor: Actor,
    Path(object): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Aggregated>> {
    Ok(Json(
        app.records
            .aggregate(&actor, &object, query.as_deref().unwrap_or(""))
            .await?,
    ))
}

/// The caller's saved views of an object (private to each user), by name.
#[utoipa::path(get, path = "/api/v1/records/{object}/views", tag = "records",
    security(("bearer" = [])),
    params(("object" = String, Path, description = "Object name, e.g. contacts")),
    responses(
        (status = 200, body = Vec<SavedView>),
        (status = 404, description = "Unknown object", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_views(
    State(app): State<AppState>,
    actor: Actor,
    Path(object): Path<String>,
) -> ApiResult<Json<Vec<SavedView>>> {
    Ok(Json(views::list(&app, &actor, &object).await?))
}

/// Saves a list view under a name: its `query` as a list takes it (`q`,
/// `filter[...]`, `sort`, `columns`; a cursor or page size is dropped), checked as
/// the list would run it. A view of the same name is replaced (200); a new one is
/// 201. At most 50 views of one object per user.
#[utoipa::path(post, path = "/api/v1/records/{object}/views", tag = "records",
    security(("bearer" = [])),
    params(("object" = String, Path, description = "Object name, e.g. contacts")),
    request_body = NewView,
    responses(
        (status = 201, body = SavedView),
        (status = 200, description = "A view of that name replaced", body = SavedView),
        (status = 404, description = "Unknown object", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Too many views of the object", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No name, or a query the list refuses", body = Problem, content_type = "application/problem+json"),
    ))]
async fn save_view(
    State(app): State<AppState>,
    actor: Actor,
    Path(object): Path<String>,
    ApiJson(body): ApiJson<NewView>,
) -> ApiResult<(StatusCode, Json<SavedView>)> {
    let (view, new) = views::save(&app, &actor, &object, body).await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)))
}

/// Removes one of the caller's saved views.
#[utoipa::path(delete, path = "/api/v1/records/{object}/views/{id}", tag = "records",
    security(("bearer" = [])),
    params(("object" = String, Path), ("id" = String, Path)),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such view of the caller's", body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_view(
    State(app): State<AppState>,
    actor: Actor,
    Path((object, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    views::remove(&app, &actor, &object, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Creates a record; answers with the record, its `Location` and its `ETag`.
#[utoipa::path(post, path = "/api/v1/records/{object}", tag = "records",
    security(("bearer" = [])),
    params(("object" = String, Path, description = "Object name")),
    request_body(content = Object, description = "Field values, plus `owner` (a user id) if not the caller"),
    responses(
        (status = 201, body = Record),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, all listed", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_record(
    State(app): State<AppState>,
    actor: Actor,
    Path(object): Path<String>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> ApiResult<Response> {
    let record = app.records.create(&actor, &object, &body).await?;
    let location = format!("/api/v1/records/{}/{}", record.object, record.id);
    let mut response = (StatusCode::CREATED, record_headers(&record), Json(record)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

#[utoipa::path(get, path = "/api/v1/records/{object}/{id}", tag = "records",
    security(("bearer" = [])),
    params(("object" = String, Path), ("id" = String, Path)),
    responses(
        (status = 200, body = Record, headers(("ETag" = String, description = "The record's version"))),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_record(
    State(app): State<AppState>,
    actor: Actor,
    Path((object, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let record = app.records.get(&actor, &object, &id).await?;
    Ok((record_headers(&record), Json(record)).into_response())
}

/// Changes the fields sent (`null` clears one). With `If-Match: <version>` the change
/// is refused with 409 when the record has moved on.
#[utoipa::path(patch, path = "/api/v1/records/{object}/{id}", tag = "records",
    security(("bearer" = [])),
    params(("object" = String, Path), ("id" = String, Path),
        ("If-Match" = Option<String>, Header, description = "The version the change is based on")),
    request_body(content = Object, description = "Fields to change"),
    responses(
        (status = 200, body = Record),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Stale version", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn update_record(
    State(app): State<AppState>,
    actor: Actor,
    Path((object, id)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> ApiResult<Response> {
    let if_match = if_match(&headers)?;
    let record = app
        .records
        .update(&actor, &object, &id, &body, if_match)
        .await?;
    Ok((record_headers(&record), Json(record)).into_response())
}

#[utoipa::path(delete, path = "/api/v1/records/{object}/{id}", tag = "records",
    security(("bearer" = [])),
    params(("object" = String, Path), ("id" = String, Path),
        ("If-Match" = Option<String>, Header, description = "The version being deleted")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_record(
    State(app): State<AppState>,
    actor: Actor,
    Path((object, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    app.records
        .delete(&actor, &object, &id, if_match(&headers)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The record's audit trail, oldest first: who changed which field from what to what.
#[utoipa::path(get, path = "/api/v1/records/{object}/{id}/history", tag = "records",
    security(("bearer" = [])),
    params(("object" = String, Path), ("id" = String, Path),
        ("limit" = Option<i64>, Query, description = "1 to 200, default 100"),
        ("after" = Option<String>, Query, description = "Id of the last entry already seen")),
    responses(
        (status = 200, body = Vec<AuditEntry>),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn record_history(
    State(app): State<AppState>,
    actor: Actor,
    Path((object, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    let (after, limit) = paging(query.as_deref(), "after", 200, 100)?;
    Ok(Json(
        app.records
            .history(&actor, &object, &id, after.as_deref(), limit)
            .await?,
    ))
}

/// Who the record is shared with, for whoever may read it.
#[utoipa::path(get, path = "/api/v1/records/{object}/{id}/shares", tag = "records",
    security(("bearer" = [])),
    params(("object" = String, Path), ("id" = String, Path)),
    responses(
        (status = 200, body = Vec<Share>),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_shares(
    State(app): State<AppState>,
    actor: Actor,
    Path((object, id)): Path<(String, String)>,
) -> ApiResult<Json<Vec<Share>>> {
    Ok(Json(app.records.shares(&actor, &object, &id).await?))
}

/// Shares the record with a user or a department for reading or writing (the
/// record's owner, or someone with the admin right over it). Sharing again with the
/// same user or department changes the access.
#[utoipa::path(post, path = "/api/v1/records/{object}/{id}/shares", tag = "records",
    security(("bearer" = [])),
    params(("object" = String, Path), ("id" = String, Path)),
    request_body = ShareInput,
    responses(
        (status = 201, body = Share),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn put_share(
    State(app): State<AppState>,
    actor: Actor,
    Path((object, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<ShareInput>,
) -> ApiResult<(StatusCode, Json<Share>)> {
    let share = app
        .records
        .share(&actor, &object, &id, ShareChange::Put(&body))
        .await?
        .expect("a put answers with the share");
    Ok((StatusCode::CREATED, Json(share)))
}

#[utoipa::path(delete, path = "/api/v1/records/{object}/{id}/shares/{share}", tag = "records",
    security(("bearer" = [])),
    params(("object" = String, Path), ("id" = String, Path), ("share" = String, Path)),
    responses(
        (status = 204, description = "No longer shared"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_share(
    State(app): State<AppState>,
    actor: Actor,
    Path((object, id, share)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    app.records
        .share(&actor, &object, &id, ShareChange::Remove(&share))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    /// The new owner (a user id).
    #[serde(default)]
    pub owner: Option<String>,
    /// The new department.
    #[serde(default)]
    pub department: Option<String>,
}

/// Gives the record a new owner and/or department; needs the admin right on the
/// object over the record's old and new place. Audited like any change.
#[utoipa::path(post, path = "/api/v1/records/{object}/{id}/transfer", tag = "records",
    security(("bearer" = [])),
    params(("object" = String, Path), ("id" = String, Path)),
    request_body = Transfer,
    responses(
        (status = 200, body = Record),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn transfer_record(
    State(app): State<AppState>,
    actor: Actor,
    Path((object, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<Transfer>,
) -> ApiResult<Response> {
    let record = app
        .records
        .transfer(&actor, &object, &id, body.owner, body.department)
        .await?;
    Ok((record_headers(&record), Json(record)).into_response())
}

fn record_headers(record: &Record) -> [(header::HeaderName, HeaderValue); 1] {
    [(
        header::ETAG,
        HeaderValue::from_str(&format!("\"{}\"", record.version))
            .expect("a number is a valid header"),
    )]
}

/// `If-Match: "3"`, `3` or `W/"3"`; `*` means any version.
fn if_match(headers: &HeaderMap) -> ApiResult<Option<i64>> {
    let Some(raw) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = raw.to_str().unwrap_or("").trim();
    if text == "*" {
        return Ok(None);
    }
    let bare = text.trim_start_matches("W/").trim_matches('"');
    bare.parse().map(Some).map_err(|_| {
        ApiError::bad_request(format!(
            "If-Match must be a record version such as \"3\", not '{text}'"
        ))
    })
}
