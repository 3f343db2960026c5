//! HTTP routes of object metadata: `/api/v1/objects[/{object}[/fields[/{field}]]]`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Map, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::metadata::{Field, ObjectType};
use super::objects::{NewObjectType, ObjectTypeChange};
use crate::api::AppState;
use crate::api::error::{ApiResult, Problem};
use crate::api::extract::ApiJson;
use crate::auth::Actor;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_objects, create_object))
        .routes(routes!(get_object, update_object, delete_object))
        .routes(routes!(add_field))
        .routes(routes!(update_field, delete_field))
}

/// Every object type with its fields.
#[utoipa::path(get, path = "/api/v1/objects", tag = "objects", security(("bearer" = [])),
    responses((status = 200, body = Vec<ObjectType>)))]
async fn list_objects(State(app): State<AppState>, _actor: Actor) -> Json<Vec<ObjectType>> {
    let names: Vec<String> = app.metadata.object_names();
    Json(
        names
            .iter()
            .filter_map(|n| app.metadata.object(n).ok())
            .map(|o| o.as_ref().clone())
            .collect(),
    )
}

/// Creates a custom object type (admin).
#[utoipa::path(post, path = "/api/v1/objects", tag = "objects", security(("bearer" = [])),
    request_body = NewObjectType,
    responses(
        (status = 201, body = ObjectType),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_object(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(body): ApiJson<NewObjectType>,
) -> ApiResult<(StatusCode, Json<ObjectType>)> {
    let created = new_object(&app, &actor, body).await?;
    Ok((StatusCode::CREATED, Json(created.as_ref().clone())))
}

/// Makes an object type (admin), for the API and the admin console's object editor.
pub async fn new_object(
    app: &AppState,
    actor: &Actor,
    body: NewObjectType,
) -> ApiResult<Arc<ObjectType>> {
    app.access
        .require_admin(actor, None, "change object metadata")
        .await?;
    Ok(app.metadata.create_object(body).await?)
}

/// Adds a field to an object type (admin), for the API and the admin console.
pub async fn new_field(
    app: &AppState,
    actor: &Actor,
    object: &str,
    field: Field,
) -> ApiResult<Arc<ObjectType>> {
    app.access
        .require_admin(actor, None, "change object metadata")
        .await?;
    Ok(app.metadata.add_field(object, field).await?)
}

#[utoipa::path(get, path = "/api/v1/objects/{object}", tag = "objects", security(("bearer" = [])),
    params(("object" = String, Path)),
    responses((status = 200, body = ObjectType), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_object(
    State(app): State<AppState>,
    _actor: Actor,
    Path(object): Path<String>,
) -> ApiResult<Json<ObjectType>> {
    Ok(Json(app.metadata.object(&object)?.as_ref().clone()))
}

/// Changes labels or the description of an object type (admin).
#[utoipa::path(patch, path = "/api/v1/objects/{object}", tag = "objects", security(("bearer" = [])),
    params(("object" = String, Path)), request_body = ObjectTypeChange,
    responses((status = 200, body = ObjectType), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn update_object(
    State(app): State<AppState>,
    actor: Actor,
    Path(object): Path<String>,
    ApiJson(body): ApiJson<ObjectTypeChange>,
) -> ApiResult<Json<ObjectType>> {
    app.access
        .require_admin(&actor, None, "change object metadata")
        .await?;
    Ok(Json(
        app.metadata
            .update_object(&object, body)
            .await?
            .as_ref()
            .clone(),
    ))
}

/// Removes a custom object type without records (admin).
#[utoipa::path(delete, path = "/api/v1/objects/{object}", tag = "objects", security(("bearer" = [])),
    params(("object" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 409, description = "Standard, referenced or not empty", body = Problem, content_type = "application/problem+json")))]
async fn delete_object(
    State(app): State<AppState>,
    actor: Actor,
    Path(object): Path<String>,
) -> ApiResult<StatusCode> {
    app.access
        .require_admin(&actor, None, "change object metadata")
        .await?;
    app.metadata.delete_object(&object).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds a field to an object type (admin).
#[utoipa::path(post, path = "/api/v1/objects/{object}/fields", tag = "objects", security(("bearer" = [])),
    params(("object" = String, Path)), request_body = Field,
    responses((status = 201, body = ObjectType), (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn add_field(
    State(app): State<AppState>,
    actor: Actor,
    Path(object): Path<String>,
    ApiJson(field): ApiJson<Field>,
) -> ApiResult<(StatusCode, Json<ObjectType>)> {
    let changed = new_field(&app, &actor, &object, field).await?;
    Ok((StatusCode::CREATED, Json(changed.as_ref().clone())))
}

/// Changes a field's options (admin). Changes existing values may not fit are checked
/// against the data and refused with 409 and the reason.
#[utoipa::path(patch, path = "/api/v1/objects/{object}/fields/{field}", tag = "objects", security(("bearer" = [])),
    params(("object" = String, Path), ("field" = String, Path)),
    request_body(content = Object, description = "Options to change, as in a field definition; null resets one"),
    responses((status = 200, body = ObjectType), (status = 409, body = Problem, content_type = "application/problem+json")))]
async fn update_field(
    State(app): State<AppState>,
    actor: Actor,
    Path((object, field)): Path<(String, String)>,
    ApiJson(patch): ApiJson<Map<String, Value>>,
) -> ApiResult<Json<ObjectType>> {
    let changed = change_field(&app, &actor, &object, &field, patch).await?;
    Ok(Json(changed.as_ref().clone()))
}

/// Changes a field's options (admin), for the API and the admin console.
pub async fn change_field(
    app: &AppState,
    actor: &Actor,
    object: &str,
    field: &str,
    patch: Map<String, Value>,
) -> ApiResult<Arc<ObjectType>> {
    app.access
        .require_admin(actor, None, "change object metadata")
        .await?;
    Ok(app.metadata.update_field(object, field, patch).await?)
}

/// Removes a field no record holds a value for (admin), for the API and the admin
/// console.
pub async fn remove_field(
    app: &AppState,
    actor: &Actor,
    object: &str,
    field: &str,
) -> ApiResult<Arc<ObjectType>> {
    app.access
        .require_admin(actor, None, "change object metadata")
        .await?;
    Ok(app.metadata.delete_field(object, field).await?)
}

/// Removes a field no record holds a value for (admin).
#[utoipa::path(delete, path = "/api/v1/objects/{object}/fields/{field}", tag = "objects", security(("bearer" = [])),
    params(("object" = String, Path), ("field" = String, Path)),
    responses((status = 200, body = ObjectType), (status = 409, body = Problem, content_type = "application/problem+json")))]
async fn delete_field(
    State(app): State<AppState>,
    actor: Actor,
    Path((object, field)): Path<(String, String)>,
) -> ApiResult<Json<ObjectType>> {
    let changed = remove_field(&app, &actor, &object, &field).await?;
    Ok(Json(changed.as_ref().clone()))
}
