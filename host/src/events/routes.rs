//! `GET /api/v1/events`: read the outbox in order (admin), for integrations and checks.

use axum::Json;
use axum::extract::{RawQuery, State};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Event;
use crate::api::error::{ApiError, ApiResult, Problem};
use crate::api::{AppState, paging};
use crate::auth::Actor;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_events))
}

/// Events after `after` (a `seq`), oldest first.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", security(("bearer" = [])),
    params(
        ("after" = Option<i64>, Query, description = "Only events with a larger seq"),
        ("limit" = Option<i64>, Query, description = "1 to 1000, default 100"),
    ),
    responses((status = 200, body = Vec<Event>), (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn list_events(
    State(app): State<AppState>,
    actor: Actor,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Vec<Event>>> {
    app.access
        .require_admin(&actor, None, "read the event outbox")
        .await?;
    let (after, limit) = paging(query.as_deref(), "after", 1000, 100)?;
    let after = match after {
        Some(a) => a
            .parse()
            .map_err(|_| ApiError::bad_request("after must be a whole number (an event seq)"))?,
        None => 0,
    };
    Ok(Json(super::list(&app.db, after, limit).await?))
}
