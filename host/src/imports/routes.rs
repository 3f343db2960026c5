//! `/api/v1/imports`: upload a CSV file, run it (or dry-run it), follow its progress,
//! read the rows it refused.

use std::collections::BTreeMap;
use std::path::Path as FsPath;

use axum::Json;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::StatusCode;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Import, OnDuplicate, RowError, Settings};
use crate::api::error::{ApiError, ApiResult, FieldError, Problem};
use crate::api::extract::ApiJson;
use crate::api::{AppState, cut_page, paging};
use crate::auth::Actor;

pub fn router() -> OpenApiRouter<AppState> {
    // The upload streams to a file up to CRM_MAX_UPLOAD_BYTES, not the JSON limit.
    let upload = OpenApiRouter::new()
        .routes(routes!(upload_import, list_imports))
        .layer(DefaultBodyLimit::disable());
    OpenApiRouter::new()
        .merge(upload)
        .routes(routes!(get_import, delete_import))
        .routes(routes!(run_import))
        .routes(routes!(cancel_import))
        .routes(routes!(import_errors))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportPage {
    pub items: Vec<Import>,
    /// Pass as `cursor` for older ones; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RowErrorPage {
    pub items: Vec<RowError>,
    /// Pass as `cursor` for the next rows; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// How to run an uploaded file; what is left out keeps the import's settings (after
/// the upload, the suggested ones).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// CSV column -> field name.
    pub mapping: Option<BTreeMap<String, String>>,
    /// Fields that identify an existing record.
    pub match_on: Option<Vec<String>>,
    pub on_duplicate: Option<OnDuplicate>,
    /// Check every row and count what would happen, writing nothing.
    #[serde(default)]
    pub dry_run: bool,
}

fn invalid_file(message: impl Into<String>) -> ApiError {
    let message = message.into();
    ApiError::invalid(message.clone(), vec![FieldError::new("file", message)])
}

/// Uploads a CSV file (UTF-8, header row first, comma separated) for an import into
/// `object`. Answers the file's columns, row count and the suggested mapping; nothing
/// is imported until the import is run.
#[utoipa::path(post, path = "/api/v1/imports", tag = "imports", security(("bearer" = [])),
    params(
        ("object" = String, Query, description = "The object to import into, e.g. contacts"),
        ("name" = Option<String>, Query, description = "The file's name, for the list"),
    ),
    request_body(content = String, content_type = "text/csv"),
    responses(
        (status = 201, body = Import),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "No create right on the object", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such object", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Over CRM_MAX_UPLOAD_BYTES", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not UTF-8, empty, or a bad header row", body = Problem, content_type = "application/problem+json"),
    ))]
async fn upload_import(
    State(app): State<AppState>,
    actor: Actor,
    RawQuery(query): RawQuery,
    body: Body,
) -> ApiResult<(StatusCode, Json<Import>)> {
    let (mut object, mut name) = (None, None);
    for (k, v) in form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "object" => object = Some(v.into_owned()),
            "name" => name = Some(v.into_owned()),
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter '{other}'"
                )));
            }
        }
    }
    let object =
        object.ok_or_else(|| ApiError::bad_request("say which object: ?object=contacts"))?;
    let import = upload(&app, &actor, &object, name, body.into_data_stream()).await?;
    Ok((StatusCode::CREATED, Json(import)))
}

/// Saves an uploaded file (CSV or XLSX, streamed) as a new import of `object` with
/// suggested settings: the upload of the API and of the web page.
pub async fn upload<S, E>(
    app: &AppState,
    actor: &Actor,
    object: &str,
    name: Option<String>,
    body: S,
) -> ApiResult<Import>
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    if name.as_ref().is_some_and(|n| n.chars().count() > 200) {
        return Err(ApiError::bad_request(
            "a file name is at most 200 characters",
        ));
    }
    let (meta, writable) = app.records.creatable(actor, object).await?;
    let id = crate::db::new_id();
    let path = super::file_path(&app.config.data_dir, &id);
    let workbook = path.with_extension("xlsx");
    let saved = save(&path, &workbook, body, app.config.max_upload_bytes).await;
    let read = match saved {
        Ok((bytes, is_workbook)) => {
            let (at, from) = (path.clone(), workbook.clone());
            tokio::task::spawn_blocking(move || {
                if is_workbook {
                    workbook_to_csv(&from, &at)?;
                }
                read_header(&at)
            })
            .await
            .map_err(ApiError::internal)?
            .map(|(columns, rows)| (bytes, is_workbook, columns, rows))
        }
        Err(e) => Err(e),
    };
    let _ = tokio::fs::remove_file(&workbook).await;
    let (bytes, is_workbook, columns, rows_total) = match read {
        Ok(read) => read,
        Err(e) => {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(e);
        }
    };
    let extension = if is_workbook { "xlsx" } else { "csv" };
    let name = name.unwrap_or_else(|| format!("{object}.{extension}"));
    let settings = super::suggest(&meta, &writable, &columns);
    super::insert(
        &app.db,
        super::NewImport {
            id: &id,
            object: &meta.name,
            user: &actor.user_id,
            file_name: &name,
            bytes: bytes as i64,
            columns: &columns,
            rows_total,
            settings: &settings,
        },
    )
    .await?;
    super::get(&app.db, &actor.user_id, &id)
        .await?
        .ok_or_else(|| ApiError::internal("an import vanished after its upload"))
}

/// Streams the body to `csv`, or to `workbook` when it is an XLSX workbook (a ZIP:
/// it starts `PK\x03\x04`, which no CSV file does); answers its size and which it was.
/// Refuses what is over `max` bytes, and CSV that is not UTF-8 (with the line of the
/// first bad byte, as a spreadsheet saving in another encoding makes).
async fn save<S, E>(
    csv: &FsPath,
    workbook: &FsPath,
    mut stream: S,
    max: u64,
) -> Result<(u64, bool), ApiError>
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    if let Some(dir) = csv.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(ApiError::internal)?;
    }
    let (mut bytes, mut line, mut carry) = (0u64, 1u64, Vec::new());
    // The first bytes, until there are enough to tell a workbook from CSV.
    let mut head = Vec::new();
    let mut sink: Option<(tokio::fs::File, bool)> = None;
    loop {
        // Only the stream's end ends the file: an empty piece may come before it.
        let (chunk, last) = match stream.next().await {
            Some(chunk) => (
                chunk.map_err(|e| {
                    ApiError::bad_request(format!("the upload did not arrive whole: {e}"))
                })?,
                false,
            ),
            None => (bytes::Bytes::new(), true),
        };
        if chunk.is_empty() && !last {
            continue;
        }
        bytes += chunk.len() as u64;
        if bytes > max {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("a file is at most {max} bytes"),
            ));
        }
        let data = if sink.is_none() {
            head.extend_from_slice(&chunk);
            if head.len() < 4 && !last {
                continue;
            }
            let is_workbook = head.starts_with(b"PK\x03\x04");
            let path = if is_workbook { workbook } else { csv };
            let file = tokio::fs::File::create(path)
                .await
                .map_err(ApiError::internal)?;
            sink = Some((file, is_workbook));
            std::mem::take(&mut head)
        } else {
            chunk.to_vec()
        };
        let (file, is_workbook) = sink.as_mut().expect("made above");
        if !*is_workbook && let Err(at) = check_utf8(&mut carry, &data, &mut line) {
            return Err(not_utf8(at));
        }
        file.write_all(&data).await.map_err(ApiError::internal)?;
        if last {
            break;
        }
    }
    if !carry.is_empty() {
        return Err(not_utf8(line));
    }
    let (mut file, is_workbook) = sink.expect("the loop ends after making it");
    file.flush().await.map_err(ApiError::internal)?;
    Ok((bytes, is_workbook))
}

/// The first worksheet of an uploaded workbook as the import's CSV file.
fn workbook_to_csv(workbook: &FsPath, csv: &FsPath) -> Result<(), ApiError> {
    let out = std::fs::File::create(csv).map_err(ApiError::internal)?;
    crate::xlsx::to_csv(workbook, std::io::BufWriter::new(out))
        .map(|_| ())
        .map_err(|e| invalid_file(format!("the workbook cannot be read: {}", e.0)))
}

fn not_utf8(line: u64) -> ApiError {
    invalid_file(format!(
        "the file is not UTF-8 text: line {line} has a byte that is not; save it as \"CSV UTF-8\""
    ))
}

/// Checks the next piece of a UTF-8 stream; a character cut between pieces waits in
/// `carry`. `line` counts the lines passed; the error is the line of a bad byte.
fn check_utf8(carry: &mut Vec<u8>, chunk: &[u8], line: &mut u64) -> Result<(), u64> {
    let joined;
    let data: &[u8] = if carry.is_empty() {
        chunk
    } else {
        joined = [std::mem::take(carry).as_slice(), chunk].concat();
        &joined
    };
    let newlines = |bytes: &[u8]| bytes.iter().filter(|b| **b == b'\n').count() as u64;
    match std::str::from_utf8(data) {
        Ok(_) => {
            *line += newlines(data);
            Ok(())
        }
        Err(e) => {
            *line += newlines(&data[..e.valid_up_to()]);
            if e.error_len().is_some() {
                return Err(*line);
            }
            *carry = data[e.valid_up_to()..].to_vec();
            Ok(())
        }
    }
}

/// The header row's column names and the number of data rows.
fn read_header(path: &FsPath) -> Result<(Vec<String>, i64), ApiError> {
    let unreadable = |e: csv::Error| invalid_file(format!("the file cannot be read as CSV: {e}"));
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(unreadable)?;
    let header = reader.headers().map_err(unreadable)?.clone();
    let columns: Vec<String> = header
        .iter()
        .map(|c| c.trim_start_matches('\u{feff}').trim().to_string())
        .collect();
    if columns.iter().all(String::is_empty) {
        return Err(invalid_file(
            "the file is empty: its first row must name the columns",
        ));
    }
    for (i, c) in columns.iter().enumerate() {
        if c.is_empty() {
            return Err(invalid_file(format!(
                "column {} has no name in the first row",
                i + 1
            )));
        }
        if columns[..i].contains(c) {
            return Err(invalid_file(format!("two columns are named '{c}'")));
        }
    }
    let mut rows = 0i64;
    let mut record = csv::ByteRecord::new();
    while reader.read_byte_record(&mut record).map_err(unreadable)? {
        rows += 1;
    }
    Ok((columns, rows))
}

/// The caller's imports, newest first.
#[utoipa::path(get, path = "/api/v1/imports", tag = "imports", security(("bearer" = [])),
    params(
        ("cursor" = Option<String>, Query, description = "From a previous page's next_cursor"),
        ("limit" = Option<i64>, Query, description = "1 to 200, default 50"),
    ),
    responses((status = 200, body = ImportPage), (status = 400, body = Problem, content_type = "application/problem+json")))]
async fn list_imports(
    State(app): State<AppState>,
    actor: Actor,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<ImportPage>> {
    let (cursor, limit) = paging(query.as_deref(), "cursor", 200, 50)?;
    let items = super::list(&app.db, &actor.user_id, cursor.as_deref(), limit + 1).await?;
    let (items, next_cursor) = cut_page(items, limit, |i| i.id.clone());
    Ok(Json(ImportPage { items, next_cursor }))
}

/// One of the caller's imports.
pub async fn owned(app: &AppState, actor: &Actor, id: &str) -> ApiResult<Import> {
    super::get(&app.db, &actor.user_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("there is no such import of yours"))
}

/// An import with its progress: `rows_done` of `rows_total`, and what they came to.
#[utoipa::path(get, path = "/api/v1/imports/{id}", tag = "imports", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Import), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn get_import(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Import>> {
    Ok(Json(owned(&app, &actor, &id).await?))
}

/// Removes an import and its file (the records it made stay).
#[utoipa::path(delete, path = "/api/v1/imports/{id}", tag = "imports", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A run is under way", body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_import(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    remove(&app, &actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes one of the caller's imports that is not running, with its file.
pub async fn remove(app: &AppState, actor: &Actor, id: &str) -> ApiResult<()> {
    let import = owned(app, actor, id).await?;
    if matches!(import.status.as_str(), "running" | "checking") {
        return Err(ApiError::conflict("cancel the run first"));
    }
    let mut tx = app.db.pool.begin().await?;
    for sql in [
        "DELETE FROM import_errors WHERE import_id = $1",
        "DELETE FROM imports WHERE id = $1 AND status NOT IN ('running', 'checking')",
    ] {
        sqlx::query(sql).bind(id).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    let _ = tokio::fs::remove_file(super::file_path(&app.config.data_dir, &import.id)).await;
    Ok(())
}

/// Runs an uploaded import in the background (again, after a dry run or an earlier
/// run: duplicates are matched, not made twice). Follow it with `GET
/// /api/v1/imports/{id}`.
#[utoipa::path(post, path = "/api/v1/imports/{id}/run", tag = "imports", security(("bearer" = [])),
    params(("id" = String, Path)),
    request_body = RunRequest,
    responses(
        (status = 202, description = "Started", body = Import),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A run is under way", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Mapping or match fields that do not fit the file or the object", body = Problem, content_type = "application/problem+json"),
    ))]
async fn run_import(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<RunRequest>,
) -> ApiResult<(StatusCode, Json<Import>)> {
    let started = begin(&app, actor, &id, request).await?;
    Ok((StatusCode::ACCEPTED, Json(started)))
}

/// Starts a run (or dry run) of one of the caller's imports with the request's
/// settings over the stored ones; answers the import as it starts.
pub async fn begin(
    app: &AppState,
    actor: Actor,
    id: &str,
    request: RunRequest,
) -> ApiResult<Import> {
    let import = owned(app, &actor, id).await?;
    let mut settings: Settings = import.settings.clone();
    if let Some(mapping) = request.mapping {
        settings.mapping = mapping;
    }
    if let Some(match_on) = request.match_on {
        settings.match_on = match_on;
    }
    if let Some(on_duplicate) = request.on_duplicate {
        settings.on_duplicate = on_duplicate;
    }
    let (meta, writable) = app.records.creatable(&actor, &import.object).await?;
    let errors = super::run::plan_errors(meta, &writable, &import.columns, &settings);
    if !errors.is_empty() {
        return Err(ApiError::invalid(
            format!("the import cannot run: {}", errors.join("; ")),
            errors
                .into_iter()
                .map(|e| FieldError::new("mapping", e))
                .collect(),
        ));
    }
    let Some(run) = super::start(&app.db, id, &settings, request.dry_run).await? else {
        return Err(ApiError::conflict("the import is already running"));
    };
    let started = owned(app, &actor, id).await?;
    super::spawn(app.clone(), started.clone(), actor, run);
    Ok(started)
}

/// Stops a run under way after the rows it is writing; what it wrote stays.
#[utoipa::path(post, path = "/api/v1/imports/{id}/cancel", tag = "imports", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 200, body = Import),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No run under way", body = Problem, content_type = "application/problem+json"),
    ))]
async fn cancel_import(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Import>> {
    owned(&app, &actor, &id).await?;
    if !super::cancel(&app.db, &id).await? {
        return Err(ApiError::conflict("the import is not running"));
    }
    Ok(Json(owned(&app, &actor, &id).await?))
}

/// The rows the last run refused, in file order, each with its reason.
#[utoipa::path(get, path = "/api/v1/imports/{id}/errors", tag = "imports", security(("bearer" = [])),
    params(
        ("id" = String, Path),
        ("cursor" = Option<String>, Query, description = "From a previous page's next_cursor"),
        ("limit" = Option<i64>, Query, description = "1 to 1000, default 100"),
    ),
    responses((status = 200, body = RowErrorPage), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn import_errors(
    State(app): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<RowErrorPage>> {
    owned(&app, &actor, &id).await?;
    let (cursor, limit) = paging(query.as_deref(), "cursor", 1000, 100)?;
    let after = match cursor {
        None => 0,
        Some(c) => c
            .parse()
            .map_err(|_| ApiError::bad_request("cursor must come from next_cursor"))?,
    };
    let items = super::errors(&app.db, &id, after, limit + 1).await?;
    let (items, next_cursor) = cut_page(items, limit, |e| e.row.to_string());
    Ok(Json(RowErrorPage { items, next_cursor }))
}
