//! HTTP routes of the document library: `/api/v1/folders`, `/api/v1/documents`.
//! Uploads are the raw request body (streamed, never buffered whole); downloads
//! stream and answer HTTP range requests.

use axum::Json;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{
    Document, DocumentPage, DocumentQuery, Folder, FolderInput, Link, Quota, UploadMeta, Version,
};
use crate::api::AppState;
use crate::api::error::{ApiError, ApiResult, Problem};
use crate::api::extract::ApiJson;
use crate::auth::Actor;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_folders, create_folder))
        .routes(routes!(upload_document))
        .routes(routes!(list_documents))
        .routes(routes!(get_document))
        .routes(routes!(download_current))
        .routes(routes!(list_versions, upload_version))
        .routes(routes!(download_version))
        .routes(routes!(document_history))
        .routes(routes!(restore_version))
        .routes(routes!(lock_document, unlock_document))
        .routes(routes!(delete_document))
        .routes(routes!(restore_document))
        .routes(routes!(list_links, add_link, remove_link))
        .routes(routes!(record_documents))
        .routes(routes!(get_quota, set_quota))
        .routes(routes!(list_shares, add_share))
        .routes(routes!(remove_share))
        // Files are limited by CRM_MAX_UPLOAD_BYTES as they stream, not here.
        .layer(DefaultBodyLimit::disable())
}

type QueryResult<T> = Result<Query<T>, axum::extract::rejection::QueryRejection>;

fn query<T>(q: QueryResult<T>) -> ApiResult<T> {
    q.map(|Query(t)| t)
        .map_err(|e| ApiError::bad_request(e.body_text()))
}

/// Folders the caller sees (the shared library and its departments').
#[utoipa::path(get, path = "/api/v1/folders", tag = "documents", security(("bearer" = [])),
    responses((status = 200, body = Vec<Folder>)))]
async fn list_folders(State(app): State<AppState>, actor: Actor) -> ApiResult<Json<Vec<Folder>>> {
    Ok(Json(app.documents.folders(&actor).await?))
}

/// Creates a folder: in a department (needs the create right on documents there),
/// below a parent (its department), or in the shared library (organisation admins).
#[utoipa::path(post, path = "/api/v1/folders", tag = "documents", security(("bearer" = [])),
    request_body = FolderInput,
    responses((status = 201, body = Folder), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A folder of that name is there", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn create_folder(
    State(app): State<AppState>,
    actor: Actor,
    ApiJson(input): ApiJson<FolderInput>,
) -> ApiResult<(StatusCode, Json<Folder>)> {
    Ok((
        StatusCode::CREATED,
        Json(app.documents.create_folder(&actor, input).await?),
    ))
}

/// Uploads a new document into a folder: the body is the file, as is (any content
/// type; the stored type is sniffed from the bytes), or a `multipart/form-data` form
/// whose text fields (`title`, `description`, `tags`, `name`) come before its
/// `file` part.
#[utoipa::path(post, path = "/api/v1/folders/{id}/documents", tag = "documents", security(("bearer" = [])),
    params(("id" = String, Path), UploadMeta),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file, or a multipart form with a `file` part"),
    responses((status = 201, body = Document), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn upload_document(
    State(app): State<AppState>,
    actor: Actor,
    Path(folder): Path<String>,
    meta: QueryResult<UploadMeta>,
    request: Request,
) -> ApiResult<(StatusCode, Json<Document>)> {
    let document = with_body(&app, &actor, Target::Folder(&folder), query(meta)?, request).await?;
    Ok((StatusCode::CREATED, Json(document)))
}

/// Where an upload goes.
#[derive(Clone, Copy)]
pub(crate) enum Target<'a> {
    /// A new document in this folder.
    Folder(&'a str),
    /// A new version of this document.
    Document(&'a str),
}

async fn upload<S, E>(
    app: &AppState,
    actor: &Actor,
    target: Target<'_>,
    meta: UploadMeta,
    body: S,
) -> ApiResult<Document>
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    match target {
        Target::Folder(folder) => app.documents.upload(actor, folder, meta, body).await,
        Target::Document(id) => app.documents.new_version(actor, id, meta, body).await,
    }
}

/// Uploads the file of a raw or multipart request body, streamed.
pub(crate) async fn with_body(
    app: &AppState,
    actor: &Actor,
    target: Target<'_>,
    mut meta: UploadMeta,
    request: Request,
) -> ApiResult<Document> {
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if !multipart {
        let body = request.into_body().into_data_stream();
        return upload(app, actor, target, meta, body).await;
    }
    let mut form = Multipart::from_request(request, app)
        .await
        .map_err(|e| ApiError::bad_request(e.body_text()))?;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| ApiError::bad_request(e.body_text()))?
    {
        let part = field.name().unwrap_or_default().to_string();
        if part == "file" {
            if meta.name.is_none() {
                meta.name = field.file_name().map(str::to_string);
            }
            // The form's later parts are not read: the file is the last one that counts.
            return upload(app, actor, target, meta, field).await;
        }
        let text = field
            .text()
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        let slot = match part.as_str() {
            "name" => &mut meta.name,
            "title" => &mut meta.title,
            "description" => &mut meta.description,
            "tags" => &mut meta.tags,
            "reason" => &mut meta.reason,
            other => {
                return Err(ApiError::invalid(
                    "the form is not valid",
                    vec![crate::api::error::FieldError::new(
                        other,
                        "is not a field of an upload",
                    )],
                ));
            }
        };
        *slot = Some(text);
    }
    Err(ApiError::invalid(
        "the form is not valid",
        vec![crate::api::error::FieldError::new(
            "file",
            "is missing: add a part named file",
        )],
    ))
}

/// Documents the caller may read, newest first.
#[utoipa::path(get, path = "/api/v1/documents", tag = "documents", security(("bearer" = [])),
    params(DocumentQuery), responses((status = 200, body = DocumentPage)))]
async fn list_documents(
    State(app): State<AppState>,
    actor: Actor,
    q: QueryResult<DocumentQuery>,
) -> ApiResult<Json<DocumentPage>> {
    Ok(Json(app.documents.list(&actor, &query(q)?).await?))
}

#[utoipa::path(get, path = "/api/v1/documents/{id}", tag = "documents", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Document), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_document(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Document>> {
    Ok(Json(app.documents.get(&actor, &id).await?))
}

/// Every version, newest first, with who uploaded it, when and why.
#[utoipa::path(get, path = "/api/v1/documents/{id}/versions", tag = "documents", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = Vec<Version>)))]
async fn list_versions(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Version>>> {
    Ok(Json(app.documents.versions(&actor, &id).await?))
}

/// Uploads a new current version (`name` and an optional `reason` in the query).
#[utoipa::path(post, path = "/api/v1/documents/{id}/versions", tag = "documents", security(("bearer" = [])),
    params(("id" = String, Path), UploadMeta),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file"),
    responses((status = 201, body = Document), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json")))]
async fn upload_version(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    meta: QueryResult<UploadMeta>,
    request: Request,
) -> ApiResult<(StatusCode, Json<Document>)> {
    let document = with_body(&app, &actor, Target::Document(&id), query(meta)?, request).await?;
    Ok((StatusCode::CREATED, Json(document)))
}

/// The current version's content (supports `Range: bytes=...`). Audited.
#[utoipa::path(get, path = "/api/v1/documents/{id}/content", tag = "documents", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "The file"), (status = 206, description = "A range of it"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 416, body = Problem, content_type = "application/problem+json")))]
async fn download_current(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    download(app, actor, id, None, headers).await
}

/// One version's content (supports `Range`). Audited.
#[utoipa::path(get, path = "/api/v1/documents/{id}/versions/{version}/content", tag = "documents", security(("bearer" = [])),
    params(("id" = String, Path), ("version" = i64, Path)),
    responses((status = 200, description = "The file"), (status = 206, description = "A range of it"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn download_version(
    State(app): State<AppState>,
    actor: Actor,
    Path((id, version)): Path<(String, i64)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    download(app, actor, id, Some(version), headers).await
}

pub(crate) async fn download(
    app: AppState,
    actor: Actor,
    id: String,
    version: Option<i64>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let size_of = |v: &Version| v.size as u64;
    let (_, v) = app.documents.open(&actor, &id, version).await?;
    let size = size_of(&v);
    let range = match headers.get(header::RANGE).and_then(|r| r.to_str().ok()) {
        None => None,
        Some(raw) => match parse_range(raw, size) {
            Some(r) => Some(r),
            None => {
                let mut e = ApiError::new(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    format!("the range '{raw}' is not within the {size} bytes of the file"),
                )
                .into_response();
                e.headers_mut().insert(
                    header::CONTENT_RANGE,
                    HeaderValue::from_str(&format!("bytes */{size}")).expect("ascii"),
                );
                return Ok(e);
            }
        },
    };
    let stream = app.documents.blobs().get(&v.sha256, range.clone()).await?;
    let mut response = Response::new(Body::from_stream(stream));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&v.content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!(
            "attachment; filename*=UTF-8''{}",
            percent_encode(&v.file_name)
        ))
        .expect("percent-encoded"),
    );
    h.insert(
        header::ETAG,
        HeaderValue::from_str(&format!("\"{}\"", v.sha256)).expect("hex"),
    );
    match range {
        Some(r) => {
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(r.end - r.start));
            h.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes {}-{}/{size}", r.start, r.end - 1))
                    .expect("ascii"),
            );
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        }
        None => {
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
        }
    }
    Ok(response)
}

/// Who downloaded which version, when (admins of the document's department).
#[utoipa::path(get, path = "/api/v1/documents/{id}/history", tag = "documents", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Vec<crate::audit::AuditEntry>), (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn document_history(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<crate::audit::AuditEntry>>> {
    Ok(Json(app.documents.history(&actor, &id).await?))
}

#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReasonQuery {
    /// Why (kept in the version history).
    pub reason: Option<String>,
}

/// Makes an old version current again, as a new version.
#[utoipa::path(post, path = "/api/v1/documents/{id}/versions/{version}/restore", tag = "documents", security(("bearer" = [])),
    params(("id" = String, Path), ("version" = i64, Path), ReasonQuery),
    responses((status = 201, body = Document), (status = 409, description = "Checked out by someone else", body = Problem, content_type = "application/problem+json")))]
async fn restore_version(
    State(app): State<AppState>,
    actor: Actor,
    Path((id, version)): Path<(String, i64)>,
    q: QueryResult<ReasonQuery>,
) -> ApiResult<(StatusCode, Json<Document>)> {
    let q = query(q)?;
    Ok((
        StatusCode::CREATED,
        Json(
            app.documents
                .restore_version(&actor, &id, version, q.reason.as_deref())
                .await?,
        ),
    ))
}

#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LockQuery {
    /// How long, 1 to 1,440; default 60.
    pub minutes: Option<i64>,
}

/// Checks the document out: until released or expired, only the caller uploads
/// versions (others get 409).
#[utoipa::path(post, path = "/api/v1/documents/{id}/lock", tag = "documents", security(("bearer" = [])),
    params(("id" = String, Path), LockQuery),
    responses((status = 200, body = Document), (status = 409, body = Problem, content_type = "application/problem+json")))]
async fn lock_document(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    q: QueryResult<LockQuery>,
) -> ApiResult<Json<Document>> {
    Ok(Json(
        app.documents.lock(&actor, &id, query(q)?.minutes).await?,
    ))
}

/// Releases the check-out (its holder, or an admin of the document's department).
#[utoipa::path(delete, path = "/api/v1/documents/{id}/lock", tag = "documents", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Document), (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn unlock_document(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Document>> {
    Ok(Json(app.documents.unlock(&actor, &id).await?))
}

#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    /// Delete a document that is in the trash for good (admins of its department).
    #[serde(default)]
    pub purge: bool,
}

/// Moves a document to the trash; `?purge=true` deletes one in the trash for good.
#[utoipa::path(delete, path = "/api/v1/documents/{id}", tag = "documents", security(("bearer" = [])),
    params(("id" = String, Path), DeleteQuery),
    responses((status = 204, description = "In the trash, or purged"), (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn delete_document(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    q: QueryResult<DeleteQuery>,
) -> ApiResult<StatusCode> {
    if query(q)?.purge {
        app.documents.purge(&actor, &id).await?;
    } else {
        app.documents.trash(&actor, &id, true).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Takes a document out of the trash.
#[utoipa::path(post, path = "/api/v1/documents/{id}/restore", tag = "documents", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = Document)))]
async fn restore_document(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Document>> {
    Ok(Json(app.documents.trash(&actor, &id, false).await?))
}

/// The records the document is attached to (those the caller may read).
#[utoipa::path(get, path = "/api/v1/documents/{id}/links", tag = "documents", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = Vec<Link>)))]
async fn list_links(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Link>>> {
    Ok(Json(app.documents.links(&actor, &id).await?))
}

/// Attaches the document to a record the caller may read.
#[utoipa::path(post, path = "/api/v1/documents/{id}/links", tag = "documents", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = Link,
    responses((status = 200, body = Vec<Link>), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn add_link(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(link): ApiJson<Link>,
) -> ApiResult<Json<Vec<Link>>> {
    Ok(Json(app.documents.link(&actor, &id, &link).await?))
}

/// Detaches the document from a record.
#[utoipa::path(delete, path = "/api/v1/documents/{id}/links", tag = "documents", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = Link,
    responses((status = 204, description = "Detached")))]
async fn remove_link(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(link): ApiJson<Link>,
) -> ApiResult<StatusCode> {
    app.documents.unlink(&actor, &id, &link).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The documents attached to a record (those the caller may read).
#[utoipa::path(get, path = "/api/v1/records/{object}/{id}/documents", tag = "documents", security(("bearer" = [])),
    params(("object" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Vec<Document>), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn record_documents(
    State(app): State<AppState>,
    actor: Actor,
    Path((object, id)): Path<(String, String)>,
) -> ApiResult<Json<Vec<Document>>> {
    Ok(Json(app.documents.of_record(&actor, &object, &id).await?))
}

/// A department's document quota and use (its admins, and organisation admins).
#[utoipa::path(get, path = "/api/v1/departments/{id}/document-quota", tag = "documents", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Quota), (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn get_quota(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Quota>> {
    app.access
        .require_admin(&actor, Some(&id), "read this department's document quota")
        .await?;
    Ok(Json(app.documents.quota(&id).await?))
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaInput {
    /// Bytes of document versions the department may hold; `null` for no limit.
    pub max_bytes: Option<i64>,
}

/// Sets a department's document quota (organisation admins); uploads past it get 413.
#[utoipa::path(put, path = "/api/v1/departments/{id}/document-quota", tag = "documents", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = QuotaInput,
    responses((status = 200, body = Quota), (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn set_quota(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<QuotaInput>,
) -> ApiResult<Json<Quota>> {
    Ok(Json(
        app.documents
            .set_quota(&actor, &id, input.max_bytes)
            .await?,
    ))
}

/// Who the document is shared with.
#[utoipa::path(get, path = "/api/v1/documents/{id}/shares", tag = "documents", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = Vec<crate::access::shares::Share>)))]
async fn list_shares(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<crate::access::shares::Share>>> {
    Ok(Json(app.documents.shares(&actor, &id).await?))
}

/// Shares the document with a user or a department, to read or also to upload
/// versions (its owner, or an admin of its department).
#[utoipa::path(post, path = "/api/v1/documents/{id}/shares", tag = "documents", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = crate::access::shares::ShareInput,
    responses((status = 201, body = crate::access::shares::Share), (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn add_share(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<crate::access::shares::ShareInput>,
) -> ApiResult<(StatusCode, Json<crate::access::shares::Share>)> {
    let share = app
        .documents
        .share(&actor, &id, Ok(&input))
        .await?
        .ok_or_else(|| ApiError::internal("a share was not returned"))?;
    Ok((StatusCode::CREATED, Json(share)))
}

/// Takes a share back.
#[utoipa::path(delete, path = "/api/v1/documents/{id}/shares/{share}", tag = "documents", security(("bearer" = [])),
    params(("id" = String, Path), ("share" = String, Path)),
    responses((status = 204, description = "Removed")))]
async fn remove_share(
    State(app): State<AppState>,
    actor: Actor,
    Path((id, share)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    app.documents.share(&actor, &id, Err(&share)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One range of `bytes=a-b`, `bytes=a-` or `bytes=-n` within `size`, as a
/// half-open range; `None` when it is malformed, several, or outside the file.
fn parse_range(raw: &str, size: u64) -> Option<std::ops::Range<u64>> {
    let spec = raw.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || size == 0 {
        return None;
    }
    let (start, end) = spec.split_once('-')?;
    let (start, end) = match (start.trim(), end.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (size.checked_sub(n.min(size))?, size - 1)
        }
        (a, "") => (a.parse().ok()?, size - 1),
        (a, b) => (a.parse().ok()?, b.parse::<u64>().ok()?.min(size - 1)),
    };
    (start <= end && start < size).then_some(start..end + 1)
}

/// RFC 5987 encoding of a file name for Content-Disposition.
fn percent_encode(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some(0..10));
        assert_eq!(parse_range("bytes=90-", 100), Some(90..100));
        assert_eq!(parse_range("bytes=-10", 100), Some(90..100));
        assert_eq!(parse_range("bytes=95-200", 100), Some(95..100));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=5-1", 100), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
    }
}
