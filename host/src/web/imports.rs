//! Imports as pages: upload a CSV or XLSX file into an object, map its columns to
//! fields, check it (a dry run listing every bad row with its reason), run it and
//! follow its progress. The same functions as `/api/v1/imports`, as the signed-in
//! user: their create and field rights decide the objects and fields offered, and
//! each user sees only their own imports.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Multipart, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};

use super::i18n::Tr;
use super::{Choice, FormData, Visitor, WebResult, render};
use crate::access::Action;
use crate::api::AppState;
use crate::api::error::ApiError;
use crate::imports::routes::{self as api, RunRequest};
use crate::imports::{Import, OnDuplicate};

/// Imports a page lists; older ones follow by cursor.
const PAGE: i64 = 30;
/// Refused rows shown on an import's page; the rest by cursor.
const ERRORS_SHOWN: i64 = 100;

pub struct ImportRow {
    pub href: String,
    pub name: String,
    pub object: String,
    pub status: String,
    pub progress: String,
    pub when: String,
}

pub struct ColumnRow {
    /// The form field naming this column's field: `column-<n>`.
    pub input: String,
    pub name: String,
    pub choices: Vec<Choice>,
}

pub struct Count {
    pub label: String,
    pub value: String,
}

pub struct ErrorRow {
    pub row: String,
    pub message: String,
}

#[derive(Template)]
#[template(path = "web/imports.html")]
struct ImportsPage<'a> {
    v: &'a Visitor,
    tr: &'a Tr,
    imports: Vec<ImportRow>,
    objects: Vec<Choice>,
    upload_action: String,
    next_href: Option<String>,
    error: String,
}

#[derive(Template)]
#[template(path = "web/import.html")]
struct ImportPage<'a> {
    v: &'a Visitor,
    tr: &'a Tr,
    id: String,
    name: String,
    object: String,
    status: String,
    /// A run or dry run is under way: the page refreshes itself.
    running: bool,
    rows_done: i64,
    rows_total: i64,
    progress: String,
    counts: Vec<Count>,
    columns: Vec<ColumnRow>,
    match_on: Vec<Choice>,
    skip_duplicates: bool,
    errors: Vec<ErrorRow>,
    more_errors: Option<String>,
    /// Why the last run failed, or why the settings were refused.
    error: String,
}

/// `GET /imports`: the visitor's imports, newest first, and the upload form.
pub async fn list(State(app): State<AppState>, v: Visitor, RawQuery(query): RawQuery) -> WebResult {
    imports_page(&app, &v, query.as_deref(), StatusCode::OK, String::new()).await
}

async fn imports_page(
    app: &AppState,
    v: &Visitor,
    query: Option<&str>,
    status: StatusCode,
    error: String,
) -> WebResult {
    let tr = &v.tr;
    let cursor = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "cursor")
        .map(|(_, c)| c.into_owned());
    let mut items = crate::imports::list(&app.db, &v.actor.user_id, cursor.as_deref(), PAGE + 1)
        .await
        .map_err(|e| v.fail(ApiError::from(e)))?;
    let next_href = (items.len() as i64 > PAGE).then(|| {
        items.truncate(PAGE as usize);
        let last = items.last().map(|i| i.id.as_str()).unwrap_or_default();
        format!("/imports?cursor={last}")
    });
    let schema = app.records.schema();
    let label = |object: &str| {
        schema
            .object(object)
            .map(|o| tr.object(&o.name, &o.label_plural))
            .unwrap_or_else(|| object.to_string())
    };
    let imports = items
        .iter()
        .map(|i| ImportRow {
            href: format!("/imports/{}", i.id),
            name: i.file_name.clone(),
            object: label(&i.object),
            status: status_text(tr, &i.status),
            progress: progress_text(tr, i),
            when: tr.date(&i.created_at),
        })
        .collect();
    // The objects the visitor may create records of.
    let mut objects: Vec<Choice> = schema
        .objects
        .values()
        .filter(|o| {
            app.records
                .view_of(&v.actor, &o.name)
                .is_ok_and(|(_, access)| !access.grants(Action::Create).is_empty())
        })
        .map(|o| Choice {
            value: o.name.clone(),
            label: tr.object(&o.name, &o.label_plural),
            selected: o.name == "contacts",
        })
        .collect();
    objects.sort_by(|a, b| a.label.cmp(&b.label));
    let page = ImportsPage {
        v,
        tr,
        imports,
        objects,
        upload_action: format!("/imports/upload?_csrf={}", v.csrf),
        next_href,
        error,
    };
    Ok((status, render(&page)).into_response())
}

/// `POST /imports/upload?_csrf=` (multipart: `object`, then `file`): the file is
/// streamed to the data dir; then the new import's page, to map and check it.
pub async fn upload(
    State(app): State<AppState>,
    v: Visitor,
    RawQuery(query): RawQuery,
    mut form: Multipart,
) -> WebResult {
    let csrf = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "_csrf")
        .map(|(_, c)| c.into_owned())
        .unwrap_or_default();
    v.check_csrf_token(&csrf)?;
    let mut object = String::new();
    let outcome = loop {
        let field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => {
                break Err((StatusCode::UNPROCESSABLE_ENTITY, v.tr.t("imports-no-file")));
            }
            Err(e) => break Err((e.status(), e.body_text())),
        };
        match field.name() {
            Some("object") => object = field.text().await.unwrap_or_default(),
            Some("file") => {
                let name = field
                    .file_name()
                    .map(str::to_string)
                    .filter(|n| !n.is_empty());
                if name.is_none() {
                    break Err((StatusCode::UNPROCESSABLE_ENTITY, v.tr.t("imports-no-file")));
                }
                break api::upload(&app, &v.actor, &object, name, Box::pin(field))
                    .await
                    .map_err(|e| {
                        let status = e.status;
                        (status, v.fail(e).message)
                    });
            }
            _ => {}
        }
    };
    match outcome {
        Ok(import) => Ok(Redirect::to(&format!("/imports/{}", import.id)).into_response()),
        Err((status, message)) => imports_page(&app, &v, None, status, message).await,
    }
}

/// `GET /imports/{id}`: the import's mapping, progress, counts and refused rows
/// (`?errors=<row>` pages through them).
pub async fn show(
    State(app): State<AppState>,
    v: Visitor,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> WebResult {
    let after = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "errors")
        .and_then(|(_, row)| row.parse().ok())
        .unwrap_or(0);
    import_page(&app, &v, &id, after, StatusCode::OK, String::new()).await
}

async fn import_page(
    app: &AppState,
    v: &Visitor,
    id: &str,
    errors_after: i64,
    status: StatusCode,
    refusal: String,
) -> WebResult {
    let tr = &v.tr;
    let import = api::owned(app, &v.actor, id).await.map_err(|e| v.fail(e))?;
    let (object, writable) = app
        .records
        .creatable(&v.actor, &import.object)
        .await
        .map_err(|e| v.fail(e))?;
    let field_label = |name: &str| {
        object
            .field(name)
            .map(|f| tr.field(&object.name, &f.name, &f.label))
            .unwrap_or_else(|| name.to_string())
    };
    let columns = import
        .columns
        .iter()
        .enumerate()
        .map(|(n, column)| {
            let mapped = import.settings.mapping.get(column);
            let mut choices = vec![Choice {
                value: String::new(),
                label: tr.t("imports-leave-out"),
                selected: mapped.is_none(),
            }];
            choices.extend(writable.iter().map(|f| Choice {
                value: f.clone(),
                label: field_label(f),
                selected: mapped == Some(f),
            }));
            ColumnRow {
                input: format!("column-{n}"),
                name: column.clone(),
                choices,
            }
        })
        .collect();
    let mut match_on = vec![Choice {
        value: String::new(),
        label: tr.t("imports-match-none"),
        selected: import.settings.match_on.is_empty(),
    }];
    match_on.extend(
        object
            .fields
            .iter()
            .filter(|f| writable.contains(&f.name) && crate::imports::matchable(f.kind))
            .map(|f| Choice {
                value: f.name.clone(),
                label: field_label(&f.name),
                selected: import.settings.match_on.first() == Some(&f.name),
            }),
    );
    let rows = crate::imports::errors(&app.db, &import.id, errors_after, ERRORS_SHOWN + 1)
        .await
        .map_err(|e| v.fail(ApiError::from(e)))?;
    let more_errors = (rows.len() as i64 > ERRORS_SHOWN).then(|| {
        let last = rows[ERRORS_SHOWN as usize - 1].row;
        format!("/imports/{}?errors={last}", import.id)
    });
    let errors = rows
        .into_iter()
        .take(ERRORS_SHOWN as usize)
        .map(|e| ErrorRow {
            row: tr.digits(&e.row.to_string()),
            message: e.message,
        })
        .collect();
    let counts = [
        ("imports-created", import.created),
        ("imports-updated", import.updated),
        ("imports-unchanged", import.unchanged),
        ("imports-failed", import.failed),
    ]
    .into_iter()
    .map(|(key, n)| Count {
        label: tr.t(key),
        value: tr.digits(&n.to_string()),
    })
    .collect();
    let error = if refusal.is_empty() {
        import.error.clone().unwrap_or_default()
    } else {
        refusal
    };
    let page = ImportPage {
        v,
        tr,
        id: import.id.clone(),
        name: import.file_name.clone(),
        object: tr.object(&object.name, &object.label_plural),
        status: status_text(tr, &import.status),
        running: matches!(import.status.as_str(), "running" | "checking"),
        rows_done: import.rows_done,
        rows_total: import.rows_total,
        progress: progress_text(tr, &import),
        counts,
        columns,
        match_on,
        skip_duplicates: import.settings.on_duplicate == OnDuplicate::Skip,
        errors,
        more_errors,
        error,
    };
    Ok((status, render(&page)).into_response())
}

/// `POST /imports/{id}/run`: the mapping, duplicate rule and `dry_run` of the form;
/// refused settings come back on the page with every reason.
pub async fn run(
    State(app): State<AppState>,
    v: Visitor,
    Path(id): Path<String>,
    form: FormData,
) -> WebResult {
    v.check_csrf(&form)?;
    let import = api::owned(&app, &v.actor, &id)
        .await
        .map_err(|e| v.fail(e))?;
    let mapping: BTreeMap<String, String> = import
        .columns
        .iter()
        .enumerate()
        .filter_map(|(n, column)| {
            form.get(&format!("column-{n}"))
                .filter(|f| !f.is_empty())
                .map(|f| (column.clone(), f.to_string()))
        })
        .collect();
    let match_on = form
        .get("match_on")
        .filter(|f| !f.is_empty())
        .map(|f| vec![f.to_string()])
        .unwrap_or_default();
    let request = RunRequest {
        mapping: Some(mapping),
        match_on: Some(match_on),
        on_duplicate: Some(match form.get("on_duplicate") {
            Some("skip") => OnDuplicate::Skip,
            _ => OnDuplicate::Update,
        }),
        dry_run: form.get("dry_run") == Some("1"),
    };
    match api::begin(&app, v.actor.clone(), &id, request).await {
        Ok(_) => Ok(Redirect::to(&format!("/imports/{id}")).into_response()),
        Err(e) if e.status != StatusCode::NOT_FOUND => {
            let status = e.status;
            let message = v.fail(e).message;
            import_page(&app, &v, &id, 0, status, message).await
        }
        Err(e) => Err(v.fail(e)),
    }
}

/// `POST /imports/{id}/cancel` and `/imports/{id}/delete`.
pub async fn act(
    State(app): State<AppState>,
    v: Visitor,
    Path((id, action)): Path<(String, String)>,
    form: FormData,
) -> WebResult {
    v.check_csrf(&form)?;
    let done = match action.as_str() {
        "cancel" => cancel(&app, &v, &id).await,
        "delete" => api::remove(&app, &v.actor, &id).await,
        _ => return Err(v.error(StatusCode::NOT_FOUND, v.tr.t("error-not-found"))),
    };
    match (done, action.as_str()) {
        (Ok(()), "delete") => Ok(Redirect::to("/imports").into_response()),
        (Ok(()), _) => Ok(Redirect::to(&format!("/imports/{id}")).into_response()),
        (Err(e), _) if e.status != StatusCode::NOT_FOUND => {
            let status = e.status;
            let message = v.fail(e).message;
            import_page(&app, &v, &id, 0, status, message).await
        }
        (Err(e), _) => Err(v.fail(e)),
    }
}

async fn cancel(app: &AppState, v: &Visitor, id: &str) -> Result<(), ApiError> {
    api::owned(app, &v.actor, id).await?;
    if !crate::imports::cancel(&app.db, id).await? {
        return Err(ApiError::conflict(v.tr.t("imports-not-running")));
    }
    Ok(())
}

/// An import's status in the visitor's language.
fn status_text(tr: &Tr, status: &str) -> String {
    tr.t(&format!("imports-status-{status}"))
}

/// "1,000 of 7,000 rows".
fn progress_text(tr: &Tr, import: &Import) -> String {
    tr.digits(&format!("{} / {}", import.rows_done, import.rows_total))
}
