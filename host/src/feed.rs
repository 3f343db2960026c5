//! The activity feed: what changed lately, across objects, from the audit trail,
//! read through the records service with the caller's rights (records the caller
//! may not read never appear, hidden fields are left out of each change). By default
//! a user's own feed: changes to the records they own; `about=all` widens it to
//! everything they may read, `by` narrows it to one colleague's doing.

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::extract::{RawQuery, State};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::AppState;
use crate::api::error::{ApiError, ApiResult, Problem};
use crate::audit::AuditAction;
use crate::auth::Actor;
use crate::records::service::FeedQuery;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(feed))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FeedItem {
    /// The audit entry's id (time ordered).
    pub id: String,
    pub at: String,
    pub action: AuditAction,
    pub object: String,
    pub record_id: String,
    /// The record's name as pages show it.
    pub record_title: String,
    /// The record's page.
    pub link: String,
    /// Who changed it, and their name.
    pub actor: Option<String>,
    pub actor_name: Option<String>,
    /// The record's version after the change.
    pub version: i64,
    /// Field -> `{"old": ..., "new": ...}`, the fields the caller may see.
    #[schema(value_type = Object)]
    pub changes: Map<String, Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FeedPage {
    pub items: Vec<FeedItem>,
    /// Pass as `cursor` for older changes; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// What changed lately, newest first: in the records the caller owns (`about=mine`,
/// the default) or may read (`about=all`), optionally by one user (`by=<id>` or
/// `by=me`) or in one object (`object=deals`).
#[utoipa::path(get, path = "/api/v1/feed", tag = "records", security(("bearer" = [])),
    params(
        ("about" = Option<String>, Query, description = "`mine` (default): records the caller owns; `all`: every record the caller may read"),
        ("by" = Option<String>, Query, description = "Only changes made by this user id, or `me`"),
        ("object" = Option<String>, Query, description = "Only records of this object"),
        ("limit" = Option<i64>, Query, description = "1 to 100, default 50"),
        ("cursor" = Option<String>, Query, description = "From a previous page's next_cursor"),
    ),
    responses(
        (status = 200, body = FeedPage),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown object", body = Problem, content_type = "application/problem+json"),
    ))]
async fn feed(
    State(app): State<AppState>,
    actor: Actor,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<FeedPage>> {
    let (mut mine, mut by, mut object, mut limit, mut cursor) = (true, None, None, 50i64, None);
    for (k, v) in form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "about" => {
                mine = match v.as_ref() {
                    "mine" => true,
                    "all" => false,
                    other => {
                        return Err(ApiError::bad_request(format!(
                            "about is mine or all, not '{other}'"
                        )));
                    }
                }
            }
            "by" if v == "me" => by = Some(actor.user_id.clone()),
            "by" => by = Some(v.into_owned()),
            "object" => object = Some(v.into_owned()),
            "cursor" => cursor = Some(v.into_owned()),
            "limit" => {
                limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=100).contains(n))
                    .ok_or_else(|| {
                        ApiError::bad_request("limit must be a whole number from 1 to 100")
                    })?
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter '{other}'; a feed takes about, by, object, limit and cursor"
                )));
            }
        }
    }
    let (items, next_cursor) = items(
        &app,
        &actor,
        &FeedQuery {
            mine,
            by: by.as_deref(),
            object: object.as_deref(),
            before: cursor.as_deref(),
            limit,
        },
    )
    .await?;
    Ok(Json(FeedPage { items, next_cursor }))
}

/// A page of the feed as `wanted` asks (its `limit` the page size): the items with
/// titles and names read with the caller's rights, and the cursor of the next page.
pub async fn items(
    app: &AppState,
    actor: &Actor,
    wanted: &FeedQuery<'_>,
) -> Result<(Vec<FeedItem>, Option<String>), ApiError> {
    let limit = wanted.limit;
    let entries = app
        .records
        .feed(
            actor,
            &FeedQuery {
                limit: limit + 1,
                ..*wanted
            },
        )
        .await?;
    let (entries, next_cursor) = crate::api::cut_page(entries, limit, |e| e.id.clone());
    // Titles with the caller's rights, once per object; users' names once.
    let mut ids: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for e in &entries {
        ids.entry(e.object.as_str())
            .or_default()
            .insert(e.record_id.as_str());
    }
    let mut titles = std::collections::HashMap::new();
    for (object, ids) in ids {
        let ids: Vec<&str> = ids.into_iter().collect();
        titles.extend(app.records.titles(actor, object, &ids).await);
    }
    let names = crate::web::view::user_names(app).await;
    let items = entries
        .into_iter()
        .map(|e| FeedItem {
            record_title: titles
                .get(&e.record_id)
                .cloned()
                .unwrap_or_else(|| e.record_id.clone()),
            link: format!("/records/{}/{}", e.object, e.record_id),
            actor_name: e.actor.as_ref().and_then(|a| names.get(a).cloned()),
            id: e.id,
            at: e.at,
            action: e.action,
            object: e.object,
            record_id: e.record_id,
            actor: e.actor,
            version: e.version,
            changes: e.changes,
        })
        .collect();
    Ok((items, next_cursor))
}
