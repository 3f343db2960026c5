//! HTTP routes of access administration: `/api/v1/departments`, `/api/v1/roles`,
//! `/api/v1/users/{id}/memberships`, `/api/v1/access/denials`. Record shares and
//! transfers are record operations and live with the record routes.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::departments::{Department, DepartmentInput, DepartmentPatch, Membership};
use super::roles::{Role, RoleInput};
use super::shares::Denial;
use crate::api::error::{ApiError, ApiResult, Problem};
use crate::api::extract::ApiJson;
use crate::api::{AppState, paging};
use crate::auth::Actor;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_departments, create_department))
        .routes(routes!(
            get_department,
            update_department,
            delete_department
        ))
        .routes(routes!(department_members))
        .routes(routes!(list_roles, create_role))
        .routes(routes!(get_role, update_role, delete_role))
        .routes(routes!(user_memberships))
        .routes(routes!(put_membership, delete_membership))
        .routes(routes!(list_denials))
}

/// Every department (the organisation is the root).
#[utoipa::path(get, path = "/api/v1/departments", tag = "access", security(("bearer" = [])),
    responses((status = 200, body = Vec<Department>)))]
async fn list_departments(
    State(app): State<AppState>,
    _actor: Actor,
) -> ApiResult<Json<Vec<Department>>> {
    Ok(Json(app.access.list_departments().await?))
}

/// Creates a department under `parent` (default the organisation).
#[utoipa::path(post, path = "/api/v1/departments", tag = "access", security(("bearer" = [])),
    request_body = DepartmentInput,
    responses(
        (status = 201, body = Department),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_department(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(body): ApiJson<DepartmentInput>,
) -> ApiResult<(StatusCode, Json<Department>)> {
    let parent = body
        .parent
        .clone()
        .unwrap_or_else(|| super::ROOT_DEPARTMENT.into());
    app.access
        .require_admin(&actor, Some(&parent), "create departments there")
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(app.access.create_department(body).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/departments/{id}", tag = "access", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Department), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_department(
    State(app): State<AppState>,
    _actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Department>> {
    Ok(Json(app.access.get_department(&id).await?))
}

/// Renames a department or moves it under another parent (organisation admins).
#[utoipa::path(patch, path = "/api/v1/departments/{id}", tag = "access", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = DepartmentPatch,
    responses(
        (status = 200, body = Department),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn update_department(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<DepartmentPatch>,
) -> ApiResult<Json<Department>> {
    app.access
        .require_admin(&actor, None, "change departments")
        .await?;
    Ok(Json(app.access.update_department(&id, body).await?))
}

/// Deletes an empty department (organisation admins).
#[utoipa::path(delete, path = "/api/v1/departments/{id}", tag = "access", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not empty", body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_department(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    app.access
        .require_admin(&actor, None, "delete departments")
        .await?;
    app.access.delete_department(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The members of a department and their roles.
#[utoipa::path(get, path = "/api/v1/departments/{id}/members", tag = "access", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Vec<Membership>), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn department_members(
    State(app): State<AppState>,
    _actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Membership>>> {
    Ok(Json(app.access.members_of_department(&id).await?))
}

/// Every role, built-in first.
#[utoipa::path(get, path = "/api/v1/roles", tag = "access", security(("bearer" = [])),
    responses((status = 200, body = Vec<Role>)))]
async fn list_roles(State(app): State<AppState>, _actor: Actor) -> ApiResult<Json<Vec<Role>>> {
    Ok(Json(app.access.list_roles().await?))
}

/// Defines a role (organisation admins).
#[utoipa::path(post, path = "/api/v1/roles", tag = "access", security(("bearer" = [])),
    request_body = RoleInput,
    responses(
        (status = 201, body = Role),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_role(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(body): ApiJson<RoleInput>,
) -> ApiResult<(StatusCode, Json<Role>)> {
    Ok((
        StatusCode::CREATED,
        Json(define_role(&app, &actor, body).await?),
    ))
}

/// Defines a role, for the API and the admin console's role editor.
pub async fn define_role(app: &AppState, actor: &Actor, input: RoleInput) -> ApiResult<Role> {
    app.access
        .require_admin(actor, None, "define roles")
        .await?;
    let schema = app.metadata.schema();
    app.access.create_role(&schema, input).await
}

/// Replaces a role's rules, for the API and the admin console's role editor.
pub async fn change_role(
    app: &AppState,
    actor: &Actor,
    name: &str,
    input: RoleInput,
) -> ApiResult<Role> {
    app.access
        .require_admin(actor, None, "change roles")
        .await?;
    let schema = app.metadata.schema();
    app.access.update_role(&schema, name, input).await
}

/// Deletes a role nobody holds, for the API and the admin console's role editor.
pub async fn remove_role(app: &AppState, actor: &Actor, name: &str) -> ApiResult<()> {
    app.access
        .require_admin(actor, None, "delete roles")
        .await?;
    app.access.delete_role(name).await
}

#[utoipa::path(get, path = "/api/v1/roles/{name}", tag = "access", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses((status = 200, body = Role), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_role(
    State(app): State<AppState>,
    _actor: Actor,
    Path(name): Path<String>,
) -> ApiResult<Json<Role>> {
    Ok(Json(app.access.get_role(&name).await?))
}

/// Replaces a role's label, description and rules (organisation admins; not
/// built-in roles). Applies at once to everyone holding it.
#[utoipa::path(put, path = "/api/v1/roles/{name}", tag = "access", security(("bearer" = [])),
    params(("name" = String, Path)), request_body = RoleInput,
    responses(
        (status = 200, body = Role),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A built-in role", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn update_role(
    State(app): State<AppState>,
    actor: Actor,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<RoleInput>,
) -> ApiResult<Json<Role>> {
    Ok(Json(change_role(&app, &actor, &name, body).await?))
}

/// Deletes a role nobody holds (organisation admins; not built-in roles).
#[utoipa::path(delete, path = "/api/v1/roles/{name}", tag = "access", security(("bearer" = [])),
    params(("name" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_role(
    State(app): State<AppState>,
    actor: Actor,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    remove_role(&app, &actor, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A user's departments and roles, home department first.
#[utoipa::path(get, path = "/api/v1/users/{id}/memberships", tag = "access", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Vec<Membership>)))]
async fn user_memberships(
    State(app): State<AppState>,
    _actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Membership>>> {
    Ok(Json(app.access.memberships_of_user(&id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MembershipInput {
    pub role: String,
}

/// Gives a user a role in a department (or changes it). Admins of the department
/// may; nobody but an organisation admin changes its own memberships.
#[utoipa::path(put, path = "/api/v1/users/{id}/memberships/{department}", tag = "access", security(("bearer" = [])),
    params(("id" = String, Path), ("department" = String, Path)), request_body = MembershipInput,
    responses(
        (status = 200, body = Membership),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn put_membership(
    State(app): State<AppState>,
    actor: Actor,
    Path((id, department)): Path<(String, String)>,
    ApiJson(body): ApiJson<MembershipInput>,
) -> ApiResult<Json<Membership>> {
    require_not_self(&app, &actor, &id).await?;
    app.access
        .require_grant_right(&actor, &department, &body.role)
        .await?;
    Ok(Json(
        app.access
            .set_membership(&id, &department, &body.role)
            .await?,
    ))
}

/// Takes a user out of a department.
#[utoipa::path(delete, path = "/api/v1/users/{id}/memberships/{department}", tag = "access", security(("bearer" = [])),
    params(("id" = String, Path), ("department" = String, Path)),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_membership(
    State(app): State<AppState>,
    actor: Actor,
    Path((id, department)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    require_not_self(&app, &actor, &id).await?;
    app.access
        .require_admin(
            &actor,
            Some(&department),
            "remove members of this department",
        )
        .await?;
    app.access.remove_membership(&id, &department).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A department admin may not raise or move itself; only an organisation admin
/// changes its own memberships.
async fn require_not_self(app: &AppState, actor: &Actor, user_id: &str) -> Result<(), ApiError> {
    if actor.user_id == user_id && !app.access.user(actor).is_org_admin() {
        app.access
            .deny(
                &actor.user_id,
                "admin",
                None,
                None,
                "change own memberships",
            )
            .await;
        return Err(ApiError::forbidden(
            "you may not change your own memberships; ask an organisation admin",
        ));
    }
    Ok(())
}

/// Refused accesses, newest first (organisation admins).
#[utoipa::path(get, path = "/api/v1/access/denials", tag = "access", security(("bearer" = [])),
    params(
        ("limit" = Option<i64>, Query, description = "1 to 500, default 100"),
        ("before" = Option<String>, Query, description = "Id of the last denial already seen"),
    ),
    responses((status = 200, body = Vec<Denial>), (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn list_denials(
    State(app): State<AppState>,
    actor: Actor,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Vec<Denial>>> {
    app.access
        .require_admin(&actor, None, "read denied accesses")
        .await?;
    let (before, limit) = paging(query.as_deref(), "before", 500, 100)?;
    Ok(Json(
        app.access.list_denials(before.as_deref(), limit).await?,
    ))
}
