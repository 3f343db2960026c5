//! `/api/v1/processes` (definitions, versioned) and `/api/v1/process-instances`.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::definition::Definition;
use super::engine::{
    CompleteInput, Instance, InstanceView, Published, Resolution, StartInput, Task,
};
use crate::api::error::{ApiError, ApiResult, Problem};
use crate::api::extract::ApiJson;
use crate::api::{AppState, paging};
use crate::auth::Actor;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_processes))
        .routes(routes!(get_process, publish_process))
        .routes(routes!(get_bpmn, publish_bpmn))
        .routes(routes!(start_instance))
        .routes(routes!(list_instances))
        .routes(routes!(get_instance))
        .routes(routes!(resolve_instance))
        .routes(routes!(list_tasks))
        .routes(routes!(get_task))
        .routes(routes!(claim_task))
        .routes(routes!(complete_task))
}

/// The newest version of every process.
#[utoipa::path(get, path = "/api/v1/processes", tag = "processes", security(("bearer" = [])),
    responses((status = 200, body = Vec<Published>)))]
async fn list_processes(
    State(app): State<AppState>,
    _actor: Actor,
) -> ApiResult<Json<Vec<Published>>> {
    Ok(Json(app.processes.list().await?))
}

/// A process: its newest version, or `?version=N`.
#[utoipa::path(get, path = "/api/v1/processes/{key}", tag = "processes", security(("bearer" = [])),
    params(("key" = String, Path), ("version" = Option<i64>, Query)),
    responses((status = 200, body = Published), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_process(
    State(app): State<AppState>,
    _actor: Actor,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Published>> {
    let version = version_of(query.as_deref())?;
    Ok(Json(app.processes.get(&key, version).await?))
}

/// A list's `status` (one of `allowed`), `cursor` and `limit` (1 to 200, default 50).
fn status_and_page(
    query: Option<&str>,
    allowed: &[&str],
) -> Result<(Option<String>, Option<String>, i64), ApiError> {
    let mut status = None;
    let mut pairs = Vec::new();
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if k == "status" {
            if !allowed.contains(&v.as_ref()) {
                return Err(ApiError::bad_request(format!(
                    "status is {}",
                    allowed.join(", ")
                )));
            }
            status = Some(v.into_owned());
        } else {
            pairs.push((k.into_owned(), v.into_owned()));
        }
    }
    let rest = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let (cursor, limit) = paging(Some(&rest), "cursor", 200, 50)?;
    Ok((status, cursor, limit))
}

/// `?version=N`, or none for the newest.
fn version_of(query: Option<&str>) -> Result<Option<i64>, ApiError> {
    let mut version = None;
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "version" => {
                version = Some(
                    v.parse::<i64>()
                        .ok()
                        .filter(|v| *v > 0)
                        .ok_or_else(|| ApiError::bad_request("version is a whole number from 1"))?,
                )
            }
            _ => return Err(ApiError::bad_request(format!("unknown parameter '{k}'"))),
        }
    }
    Ok(version)
}

/// The process as BPMN 2.0 XML (its newest version, or `?version=N`), with a
/// diagram a modeler can show.
#[utoipa::path(get, path = "/api/v1/processes/{key}/bpmn", tag = "processes", security(("bearer" = [])),
    params(("key" = String, Path), ("version" = Option<i64>, Query)),
    responses((status = 200, body = String, content_type = "application/xml"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_bpmn(
    State(app): State<AppState>,
    _actor: Actor,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let published = app
        .processes
        .get(&key, version_of(query.as_deref())?)
        .await?;
    let xml = super::bpmn::export(&key, &published.definition);
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "application/xml; charset=utf-8",
        )],
        xml,
    )
        .into_response())
}

/// Imports BPMN 2.0 XML (as a modeler saves it) and publishes it as the next
/// version (organisation admins). Elements outside the executable subset are refused
/// by name; the definition is then checked as any other.
#[utoipa::path(put, path = "/api/v1/processes/{key}/bpmn", tag = "processes", security(("bearer" = [])),
    params(("key" = String, Path)),
    request_body(content = String, content_type = "application/xml"),
    responses((status = 201, body = Published),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unsupported elements or an invalid definition", body = Problem, content_type = "application/problem+json")))]
async fn publish_bpmn(
    State(app): State<AppState>,
    actor: Actor,
    Path(key): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Published>)> {
    app.access
        .require_admin(&actor, None, "publish processes")
        .await?;
    let text =
        std::str::from_utf8(&body).map_err(|_| ApiError::bad_request("BPMN XML is UTF-8 text"))?;
    let definition = super::bpmn::import(text)
        .map_err(|errors| ApiError::invalid("the BPMN document cannot be imported", errors))?;
    Ok((
        StatusCode::CREATED,
        Json(app.processes.publish(&actor, &key, definition).await?),
    ))
}

/// Checks a definition and publishes it as the next version of the process
/// (organisation admins). Running instances stay on the version they started on.
#[utoipa::path(put, path = "/api/v1/processes/{key}", tag = "processes", security(("bearer" = [])),
    params(("key" = String, Path, description = "Lower-case letters, digits and -")),
    request_body = Definition,
    responses((status = 201, body = Published),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Every problem of the definition", body = Problem, content_type = "application/problem+json")))]
async fn publish_process(
    State(app): State<AppState>,
    actor: Actor,
    Path(key): Path<String>,
    ApiJson(definition): ApiJson<Definition>,
) -> ApiResult<(StatusCode, Json<Published>)> {
    app.access
        .require_admin(&actor, None, "publish processes")
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(app.processes.publish(&actor, &key, definition).await?),
    ))
}

/// Starts an instance of the newest version, as the caller (its steps act with the
/// caller's rights); with a `record`, the caller must be able to read it.
#[utoipa::path(post, path = "/api/v1/processes/{key}/instances", tag = "processes", security(("bearer" = [])),
    params(("key" = String, Path)), request_body = StartInput,
    responses((status = 201, body = Instance),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn start_instance(
    State(app): State<AppState>,
    actor: Actor,
    Path(key): Path<String>,
    ApiJson(input): ApiJson<StartInput>,
) -> ApiResult<(StatusCode, Json<Instance>)> {
    Ok((
        StatusCode::CREATED,
        Json(app.processes.start(&actor, &key, input).await?),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InstancePage {
    pub items: Vec<Instance>,
    pub next_cursor: Option<String>,
}

/// Instances, newest first: every one for organisation admins, else those the
/// caller started.
#[utoipa::path(get, path = "/api/v1/process-instances", tag = "processes", security(("bearer" = [])),
    params(
        ("status" = Option<String>, Query, description = "running, completed, incident or cancelled"),
        ("cursor" = Option<String>, Query), ("limit" = Option<i64>, Query, description = "1 to 200, default 50"),
    ),
    responses((status = 200, body = InstancePage), (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn list_instances(
    State(app): State<AppState>,
    actor: Actor,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<InstancePage>> {
    let (status, cursor, limit) = status_and_page(
        query.as_deref(),
        &["running", "completed", "incident", "cancelled"],
    )?;
    let (items, next_cursor) = app
        .processes
        .instances(&actor, status.as_deref(), cursor.as_deref(), limit)
        .await?;
    Ok(Json(InstancePage { items, next_cursor }))
}

/// An instance with where its paths stand and its history (whoever started it and
/// admins of its department).
#[utoipa::path(get, path = "/api/v1/process-instances/{id}", tag = "processes", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = InstanceView), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_instance(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<InstanceView>> {
    Ok(Json(app.processes.instance(&actor, &id).await?))
}

/// Resolves an instance as an admin of its department: `retry` runs the failed
/// steps again, `skip` leaves them by their default way out, `cancel` stops it.
#[utoipa::path(post, path = "/api/v1/process-instances/{id}/{action}", tag = "processes", security(("bearer" = [])),
    params(("id" = String, Path), ("action" = String, Path, description = "retry, skip or cancel")),
    responses((status = 200, body = InstanceView),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Nothing to resolve", body = Problem, content_type = "application/problem+json")))]
async fn resolve_instance(
    State(app): State<AppState>,
    actor: Actor,
    Path((id, action)): Path<(String, String)>,
) -> ApiResult<Json<InstanceView>> {
    let resolution = match action.as_str() {
        "retry" => Resolution::Retry,
        "skip" => Resolution::Skip,
        "cancel" => Resolution::Cancel,
        _ => {
            return Err(ApiError::not_found(
                "an instance is resolved by retry, skip or cancel",
            ));
        }
    };
    Ok(Json(app.processes.resolve(&actor, &id, resolution).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TaskPage {
    pub items: Vec<Task>,
    pub next_cursor: Option<String>,
}

/// The caller's task inbox: open tasks it may do (its own, its role's and its
/// department's, and those it claimed), oldest first; `status=completed` for those
/// it completed.
#[utoipa::path(get, path = "/api/v1/tasks", tag = "processes", security(("bearer" = [])),
    params(
        ("status" = Option<String>, Query, description = "open (default) or completed"),
        ("cursor" = Option<String>, Query), ("limit" = Option<i64>, Query, description = "1 to 200, default 50"),
    ),
    responses((status = 200, body = TaskPage), (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn list_tasks(
    State(app): State<AppState>,
    actor: Actor,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<TaskPage>> {
    let (status, cursor, limit) = status_and_page(query.as_deref(), &["open", "completed"])?;
    let status = status.unwrap_or_else(|| "open".into());
    let (items, next_cursor) = app
        .processes
        .tasks(&actor, &status, cursor.as_deref(), limit)
        .await?;
    Ok(Json(TaskPage { items, next_cursor }))
}

/// One task (for whoever may do it or did it, and admins of its department).
#[utoipa::path(get, path = "/api/v1/tasks/{id}", tag = "processes", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Task), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_task(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Task>> {
    Ok(Json(app.processes.task(&actor, &id).await?))
}

/// Claims an open task: from then on only the claimer (and admins) may complete it.
#[utoipa::path(post, path = "/api/v1/tasks/{id}/claim", tag = "processes", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Task), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Claimed by someone else, or no longer open", body = Problem, content_type = "application/problem+json")))]
async fn claim_task(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Task>> {
    Ok(Json(app.processes.claim(&actor, &id).await?))
}

/// Completes a task with an outcome and its fields; the process moves on.
#[utoipa::path(post, path = "/api/v1/tasks/{id}/complete", tag = "processes", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = CompleteInput,
    responses((status = 200, body = Task), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An outcome or field that the task does not take", body = Problem, content_type = "application/problem+json")))]
async fn complete_task(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<CompleteInput>,
) -> ApiResult<Json<Task>> {
    Ok(Json(app.processes.complete(&actor, &id, input).await?))
}
