//! HTTP routes of auth and users: `/api/v1/auth/...`, `/api/v1/users`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Actor, TokenInfo, User};
use crate::api::AppState;
use crate::api::error::{ApiError, ApiResult, Problem};
use crate::api::extract::ApiJson;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user, deactivate_user))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    pub expires_at: String,
}

/// Exchanges an email and password for a bearer token.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, body = LoginResponse),
        (status = 401, description = "Wrong email or password", body = Problem, content_type = "application/problem+json"),
    ))]
async fn login(
    State(app): State<AppState>,
    ApiJson(body): ApiJson<LoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    let (token, expires_at) = app.auth.login(&body.email, &body.password).await?;
    Ok(Json(LoginResponse { token, expires_at }))
}

/// Revokes the token this request is made with.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204, description = "Logged out")))]
async fn logout(State(app): State<AppState>, actor: Actor) -> ApiResult<StatusCode> {
    app.auth.logout(&actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The user behind the token.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = User), (status = 401, body = Problem, content_type = "application/problem+json")))]
async fn me(State(app): State<AppState>, actor: Actor) -> ApiResult<Json<User>> {
    let user = app
        .auth
        .get_user(&actor.user_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the user no longer exists"))?;
    Ok(Json(user))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiToken {
    /// What the token is for, e.g. "mail integration".
    pub name: String,
    /// Days until it expires; never, when absent.
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedApiToken {
    /// The secret; shown this once.
    pub token: String,
    #[serde(flatten)]
    pub info: TokenInfo,
}

/// The caller's API tokens (without their secrets).
#[utoipa::path(get, path = "/api/v1/auth/tokens", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Vec<TokenInfo>)))]
async fn list_tokens(State(app): State<AppState>, actor: Actor) -> ApiResult<Json<Vec<TokenInfo>>> {
    Ok(Json(app.auth.list_api_tokens(&actor).await?))
}

/// Creates an API token for integrations, acting as the caller.
#[utoipa::path(post, path = "/api/v1/auth/tokens", tag = "auth", security(("bearer" = [])),
    request_body = NewApiToken,
    responses((status = 201, body = CreatedApiToken), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn create_token(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(body): ApiJson<NewApiToken>,
) -> ApiResult<(StatusCode, Json<CreatedApiToken>)> {
    let (token, info) = app
        .auth
        .create_api_token(&actor, &body.name, body.expires_in_days)
        .await?;
    Ok((StatusCode::CREATED, Json(CreatedApiToken { token, info })))
}

/// Revokes one of the caller's API tokens.
#[utoipa::path(delete, path = "/api/v1/auth/tokens/{id}", tag = "auth", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204, description = "Revoked"), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn revoke_token(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    app.auth.revoke_api_token(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub email: String,
    pub name: String,
    pub password: String,
    /// Make the user an organisation admin (a shortcut for role `org_admin` in the
    /// organisation).
    #[serde(default)]
    pub is_admin: bool,
    /// The department the user joins; default the organisation (the root).
    #[serde(default)]
    pub department: Option<String>,
    /// The user's role there; default `member`.
    #[serde(default)]
    pub role: Option<String>,
}

/// All users (for owner and user-reference pickers).
#[utoipa::path(get, path = "/api/v1/users", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Vec<User>)))]
async fn list_users(State(app): State<AppState>, _actor: Actor) -> ApiResult<Json<Vec<User>>> {
    Ok(Json(app.auth.list_users().await?))
}

/// Creates a user (admin).
#[utoipa::path(post, path = "/api/v1/users", tag = "auth", security(("bearer" = [])),
    request_body = NewUser,
    responses(
        (status = 201, body = User),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_user(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(body): ApiJson<NewUser>,
) -> ApiResult<(StatusCode, Json<User>)> {
    Ok((
        StatusCode::CREATED,
        Json(add_user(&app, &actor, &body).await?),
    ))
}

/// Creates a user with its first membership, if `actor` may give that role there
/// (the API and the admin console both come here).
pub(crate) async fn add_user(app: &AppState, actor: &Actor, body: &NewUser) -> ApiResult<User> {
    let department = body
        .department
        .clone()
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| crate::access::ROOT_DEPARTMENT.to_string());
    let role = match (&body.role, body.is_admin) {
        (Some(_), true) => {
            return Err(ApiError::invalid(
                "the user is not valid",
                vec![crate::api::error::FieldError::new(
                    "role",
                    "give either role or is_admin, not both",
                )],
            ));
        }
        (Some(role), false) => role.clone(),
        (None, true) => "org_admin".to_string(),
        (None, false) => "member".to_string(),
    };
    app.access
        .require_grant_right(actor, &department, &role)
        .await?;
    let user = app
        .auth
        .create_user(
            &body.email,
            &body.name,
            &body.password,
            (&department, &role),
        )
        .await?;
    app.access.reload().await?;
    Ok(user)
}

#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "auth", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = User), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_user(
    State(app): State<AppState>,
    _actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<User>> {
    app.auth
        .get_user(&id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("no such user"))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    #[serde(default)]
    pub name: Option<String>,
    /// `false` signs the user out everywhere and suspends its roles.
    #[serde(default)]
    pub active: Option<bool>,
}

/// Renames, deactivates or reactivates a user (organisation admins).
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "auth", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = UserPatch,
    responses(
        (status = 200, body = User),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn update_user(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UserPatch>,
) -> ApiResult<Json<User>> {
    app.access
        .require_admin(&actor, None, "change users")
        .await?;
    let user = app
        .auth
        .update_user(&id, body.name.as_deref(), body.active)
        .await?
        .ok_or_else(|| ApiError::not_found("no such user"))?;
    app.access.reload().await?;
    Ok(Json(user))
}

/// Deletes a user: it is deactivated (its tokens revoked, its roles suspended) and
/// kept, because records and the audit trail refer to it.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "auth", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 204, description = "Deactivated"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn deactivate_user(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    set_active(&app, &actor, &id, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deactivates (signed out everywhere, roles suspended) or reactivates a user;
/// organisation admins only, and not themselves (the API's delete, the admin page).
pub async fn set_active(app: &AppState, actor: &Actor, id: &str, active: bool) -> ApiResult<User> {
    app.access
        .require_admin(actor, None, "deactivate or reactivate users")
        .await?;
    if id == actor.user_id {
        return Err(ApiError::conflict("you cannot deactivate yourself"));
    }
    let user = app
        .auth
        .update_user(id, None, Some(active))
        .await?
        .ok_or_else(|| ApiError::not_found("no such user"))?;
    app.access.reload().await?;
    Ok(user)
}
