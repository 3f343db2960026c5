//! HTTP routes of plugins: `/api/v1/plugins[/{id}[/approve|/enable|/disable|/resume]]`
//! and their after-save dead letters.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::delivery::{DeadLetter, Replay};
use super::jobs::{Job, JobQuery};
use super::runtime::v0_1::crm::plugin::types::StepInput;
use super::{Installed, MAX_PACKAGE_BYTES, PluginInfo};
use crate::api::AppState;
use crate::api::error::{ApiError, ApiResult, Problem};
use crate::api::extract::ApiJson;
use crate::auth::Actor;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_plugins, install_plugin))
        .routes(routes!(get_plugin, uninstall_plugin))
        .routes(routes!(approve_plugin))
        .routes(routes!(enable_plugin))
        .routes(routes!(disable_plugin))
        .routes(routes!(resume_plugin))
        .routes(routes!(list_dead_letters))
        .routes(routes!(replay_dead_letter))
        .routes(routes!(list_jobs))
        .routes(routes!(retry_job))
        .routes(routes!(delete_job))
        .routes(routes!(list_steps))
        .routes(routes!(try_step))
        // A package is larger than an ordinary request body.
        .layer(DefaultBodyLimit::max(MAX_PACKAGE_BYTES + 1))
}

/// Installed plugins.
#[utoipa::path(get, path = "/api/v1/plugins", tag = "plugins", security(("bearer" = [])),
    responses((status = 200, body = Vec<PluginInfo>)))]
async fn list_plugins(
    State(app): State<AppState>,
    _actor: Actor,
) -> ApiResult<Json<Vec<PluginInfo>>> {
    Ok(Json(app.plugins.list()))
}

/// Uploads a plugin package (a tar file with `plugin.toml` and `plugin.wasm`, as
/// `crm plugin pack` makes it). A new id is installed waiting for approval; a known
/// id is upgraded in place.
#[utoipa::path(post, path = "/api/v1/plugins", tag = "plugins", security(("bearer" = [])),
    request_body(content = Vec<u8>, content_type = "application/x-tar", description = "The package"),
    responses(
        (status = 201, body = PluginInfo),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The package, manifest or component is not valid", body = Problem, content_type = "application/problem+json"),
    ))]
async fn install_plugin(
    State(app): State<AppState>,
    actor: Actor,
    package: Bytes,
) -> ApiResult<(StatusCode, Json<PluginInfo>)> {
    app.access
        .require_admin(&actor, None, "install plugins")
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(app.plugins.install(&package).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/plugins/{id}", tag = "plugins", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = PluginInfo), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_plugin(
    State(app): State<AppState>,
    _actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<PluginInfo>> {
    Ok(Json(app.plugins.get(&id)?))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UninstallQuery {
    /// Also delete the plugin's kv entries, delivery cursor and dead letters.
    #[serde(default)]
    pub purge: bool,
}

/// Uninstalls a plugin: its hooks stop at once. Its data stays for a reinstall
/// unless `purge=true`.
#[utoipa::path(delete, path = "/api/v1/plugins/{id}", tag = "plugins", security(("bearer" = [])),
    params(("id" = String, Path), UninstallQuery),
    responses((status = 204, description = "Uninstalled"), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn uninstall_plugin(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    query: Result<Query<UninstallQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<StatusCode> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    app.access
        .require_admin(&actor, None, "uninstall plugins")
        .await?;
    app.plugins.uninstall(&id, query.purge).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Turns a plugin the host suspended (after it kept failing) back on.
#[utoipa::path(post, path = "/api/v1/plugins/{id}/resume", tag = "plugins", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = PluginInfo), (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn resume_plugin(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<PluginInfo>> {
    app.access
        .require_admin(&actor, None, "resume plugins")
        .await?;
    Ok(Json(app.plugins.resume(&id).await?))
}

/// After-save deliveries that failed every attempt, oldest first.
#[utoipa::path(get, path = "/api/v1/plugins/{id}/dead-letters", tag = "plugins", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Vec<DeadLetter>), (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn list_dead_letters(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<DeadLetter>>> {
    app.access
        .require_admin(&actor, None, "read plugin dead letters")
        .await?;
    app.plugins.get(&id)?;
    Ok(Json(app.deliverer.dead_letters(&id).await?))
}

/// Delivers a dead letter to the plugin's after-save hook once more.
#[utoipa::path(post, path = "/api/v1/plugins/{id}/dead-letters/{letter}/replay", tag = "plugins", security(("bearer" = [])),
    params(("id" = String, Path), ("letter" = String, Path)),
    responses((status = 200, body = Replay), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn replay_dead_letter(
    State(app): State<AppState>,
    actor: Actor,
    Path((id, letter)): Path<(String, String)>,
) -> ApiResult<Json<Replay>> {
    app.access
        .require_admin(&actor, None, "replay plugin dead letters")
        .await?;
    Ok(Json(app.deliverer.replay(&id, &letter).await?))
}

/// Approves the capabilities and hooks the plugin's manifest asks for.
#[utoipa::path(post, path = "/api/v1/plugins/{id}/approve", tag = "plugins", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = PluginInfo), (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn approve_plugin(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<PluginInfo>> {
    app.access
        .require_admin(&actor, None, "approve plugins")
        .await?;
    Ok(Json(app.plugins.approve(&id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DepartmentRef {
    pub department: String,
}

/// Turns an approved plugin on for one department (its admins may).
#[utoipa::path(post, path = "/api/v1/plugins/{id}/enable", tag = "plugins", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = DepartmentRef,
    responses(
        (status = 200, body = PluginInfo),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not approved yet", body = Problem, content_type = "application/problem+json"),
    ))]
async fn enable_plugin(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<DepartmentRef>,
) -> ApiResult<Json<PluginInfo>> {
    app.access
        .require_admin(
            &actor,
            Some(&body.department),
            "enable plugins in this department",
        )
        .await?;
    Ok(Json(app.plugins.enable(&id, &body.department).await?))
}

/// Turns a plugin off for one department.
#[utoipa::path(post, path = "/api/v1/plugins/{id}/disable", tag = "plugins", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = DepartmentRef,
    responses((status = 200, body = PluginInfo), (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn disable_plugin(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<DepartmentRef>,
) -> ApiResult<Json<PluginInfo>> {
    app.access
        .require_admin(
            &actor,
            Some(&body.department),
            "disable plugins in this department",
        )
        .await?;
    Ok(Json(app.plugins.disable(&id, &body.department).await?))
}

/// A plugin's scheduled jobs and the ones that failed every attempt, soonest first.
#[utoipa::path(get, path = "/api/v1/plugins/{id}/jobs", tag = "plugins", security(("bearer" = [])),
    params(("id" = String, Path), JobQuery),
    responses((status = 200, body = Vec<Job>), (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn list_jobs(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    query: Result<Query<JobQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Vec<Job>>> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    app.access
        .require_admin(&actor, None, "read plugin jobs")
        .await?;
    Ok(Json(app.plugins.jobs(&id, &query).await?))
}

/// Schedules a failed job again, now.
#[utoipa::path(post, path = "/api/v1/plugins/{id}/jobs/{job}/retry", tag = "plugins", security(("bearer" = [])),
    params(("id" = String, Path), ("job" = String, Path)),
    responses((status = 200, body = Job), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn retry_job(
    State(app): State<AppState>,
    actor: Actor,
    Path((id, job)): Path<(String, String)>,
) -> ApiResult<Json<Job>> {
    app.access
        .require_admin(&actor, None, "retry plugin jobs")
        .await?;
    Ok(Json(app.plugins.retry_job(&id, &job).await?))
}

/// Removes a scheduled or failed job.
#[utoipa::path(delete, path = "/api/v1/plugins/{id}/jobs/{job}", tag = "plugins", security(("bearer" = [])),
    params(("id" = String, Path), ("job" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn delete_job(
    State(app): State<AppState>,
    actor: Actor,
    Path((id, job)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    app.access
        .require_admin(&actor, None, "delete plugin jobs")
        .await?;
    app.plugins.delete_job(&id, &job).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A process step type a plugin offers.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct StepTypeInfo {
    pub name: String,
    pub title: String,
    pub description: String,
    /// JSON Schema of the step's configuration.
    #[schema(value_type = Object)]
    pub config_schema: serde_json::Value,
}

/// A running plugin, or 404 (code of a plugin that is not approved never runs).
fn running(app: &AppState, id: &str) -> ApiResult<std::sync::Arc<Installed>> {
    app.plugins
        .installed(id)
        .filter(|p| p.is_running())
        .ok_or_else(|| ApiError::not_found(format!("there is no running plugin '{id}'")))
}

fn plugin_failed(id: &str, e: String) -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        format!("the plugin {id} failed: {e}"),
    )
}

/// The process step types a running plugin offers, for the process designer.
#[utoipa::path(get, path = "/api/v1/plugins/{id}/steps", tag = "plugins", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Vec<StepTypeInfo>), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 502, body = Problem, content_type = "application/problem+json")))]
async fn list_steps(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<StepTypeInfo>>> {
    let plugin = running(&app, &id)?;
    // Only for callers the plugin serves (its code runs as them).
    let home = super::gateway::department_for(&app, &plugin, &actor).ok_or_else(|| {
        ApiError::forbidden(format!(
            "the plugin {id} is not enabled in your departments"
        ))
    })?;
    let host = plugin.host_context(&app.records, &actor, Some(home), false);
    let steps = app
        .plugins
        .runtime()
        .describe_steps(&plugin.loaded, host)
        .await
        .map_err(|e| plugin_failed(&id, e))?;
    Ok(Json(
        steps
            .into_iter()
            .map(|s| StepTypeInfo {
                config_schema: serde_json::from_str(&s.config_schema)
                    .unwrap_or_else(|_| serde_json::json!({})),
                name: s.name,
                title: s.title,
                description: s.description,
            })
            .collect(),
    ))
}

/// Input of a trial run of a step.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepTrial {
    /// The step's configuration.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    /// Process variables (an object).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub variables: serde_json::Map<String, serde_json::Value>,
    /// The record the process runs for.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub record: Option<serde_json::Value>,
}

/// What a step answered.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct StepResult {
    /// Variables the step sets.
    #[schema(value_type = Object)]
    pub variables: serde_json::Value,
    /// The outgoing path it chose, if it branches.
    pub next: Option<String>,
}

/// Runs one step of a plugin as the calling admin, outside any process: how a
/// plugin author or admin tries a step before using it (the process engine runs
/// steps the same way).
#[utoipa::path(post, path = "/api/v1/plugins/{id}/steps/{step}/run", tag = "plugins", security(("bearer" = [])),
    params(("id" = String, Path), ("step" = String, Path)), request_body = StepTrial,
    responses((status = 200, body = StepResult), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The step refused its input", body = Problem, content_type = "application/problem+json"),
        (status = 502, body = Problem, content_type = "application/problem+json")))]
async fn try_step(
    State(app): State<AppState>,
    actor: Actor,
    Path((id, step)): Path<(String, String)>,
    ApiJson(trial): ApiJson<StepTrial>,
) -> ApiResult<Json<StepResult>> {
    app.access
        .require_admin(&actor, None, "try process steps")
        .await?;
    let plugin = running(&app, &id)?;
    let home = plugin.info.departments.first().cloned();
    let host = plugin.host_context(&app.records, &actor, home, true);
    let input = StepInput {
        step,
        config: trial.config.to_string(),
        variables: serde_json::Value::Object(trial.variables).to_string(),
        record: trial.record.map(|r| r.to_string()),
    };
    let outcome = app
        .plugins
        .runtime()
        .run_step(&plugin.loaded, host, &input)
        .await
        .map_err(|e| plugin_failed(&id, e))?
        .map_err(|e| ApiError::invalid(format!("the step did not run: {e}"), Vec::new()))?;
    let variables = serde_json::from_str(&outcome.variables)
        .map_err(|_| plugin_failed(&id, "its step answered variables that are not JSON".into()))?;
    Ok(Json(StepResult {
        variables,
        next: outcome.next,
    }))
}
