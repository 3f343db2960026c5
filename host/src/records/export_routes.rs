//! Exports of list views, streamed page by page as CSV or an Excel workbook: every
//! record, or a mailing list of a segment's emails and phones.

use std::collections::HashSet;

use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Record;
use super::metadata::FieldType;
use super::service::Page;
use crate::api::AppState;
use crate::api::error::{ApiError, ApiResult, Problem};
use crate::auth::Actor;
use crate::xlsx::{Cell, XlsxWriter};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(export_records))
        .routes(routes!(mailing_list))
}

/// Records per page an export reads at a time.
const EXPORT_PAGE: i64 = 200;

/// What an export writes, besides the list view's records.
#[derive(Default)]
struct Shape {
    /// The columns chosen (`None`: every column the caller may export).
    columns: Option<Vec<String>>,
    xlsx: bool,
    /// Leave out a record whose value of this field (compared in any case) came before.
    unique: Option<String>,
    /// Leave out a record without a value in any of these fields.
    require_any: Vec<String>,
}

/// Splits an export's query into the list view (`filter[...]`, `sort`, `q`) and the
/// export's own parameters.
fn parse(query: Option<&str>, own: &[&str]) -> ApiResult<(Vec<(String, String)>, Shape)> {
    let mut view = Vec::new();
    let mut shape = Shape::default();
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "cursor" | "limit" => {
                return Err(ApiError::bad_request(format!(
                    "an export takes every matching record; '{k}' does not apply"
                )));
            }
            "format" => {
                shape.xlsx = match v.as_ref() {
                    "csv" => false,
                    "xlsx" => true,
                    other => {
                        return Err(ApiError::bad_request(format!(
                            "format is csv or xlsx, not '{other}'"
                        )));
                    }
                }
            }
            "columns" if own.contains(&"columns") => {
                shape.columns = Some(
                    v.split(',')
                        .map(str::trim)
                        .filter(|c| !c.is_empty())
                        .map(String::from)
                        .collect(),
                )
            }
            "unique" if own.contains(&"unique") => shape.unique = Some(v.into_owned()),
            _ => view.push((k.into_owned(), v.into_owned())),
        }
    }
    Ok((view, shape))
}

/// Exports the records of a list view as CSV (UTF-8, header row) or, with
/// `format=xlsx`, as an Excel workbook, streamed page by page: the same `filter`,
/// `sort` and `q` as a list, every record the caller may export and read, with the
/// fields it may see (or the `columns` chosen). Needs the export right. CSV cells that
/// a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`) are
/// prefixed with `'`; a workbook's texts are never formulas. A workbook holds at most
/// 1,048,575 records (a sheet's limit); past that, use CSV.
#[utoipa::path(get, path = "/api/v1/records/{object}/export", tag = "records",
    security(("bearer" = [])),
    params(
        ("object" = String, Path, description = "Object name, e.g. contacts"),
        ("format" = Option<String>, Query, description = "`csv` (default) or `xlsx`"),
        ("columns" = Option<String>, Query, description = "The columns, in order, e.g. `first_name,last_name,email` (default: all)"),
        ("unique" = Option<String>, Query, description = "A field whose repeated values are exported once (the first record, in the view's order; records without a value are kept)"),
        ("filter[field]" = Option<String>, Query, description = "As for a list"),
        ("sort" = Option<String>, Query, description = "As for a list"),
        ("q" = Option<String>, Query, description = "As for a list"),
    ),
    responses(
        (status = 200, description = "CSV or XLSX", content_type = "text/csv"),
        (status = 400, description = "Bad filter, sort, format or column", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "No export right", body = Problem, content_type = "application/problem+json"),
    ))]
async fn export_records(
    State(app): State<AppState>,
    actor: Actor,
    Path(object): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<axum::response::Response> {
    let (view, shape) = parse(query.as_deref(), &["columns", "unique"])?;
    let exportable = app.records.export_columns(&actor, &object).await?;
    stream(app, actor, object.clone(), view, shape, exportable, &object).await
}

/// A mailing list of a segment: the names, emails and phones of the records of a list
/// view (`filter[...]`, `q`) that have an email or a phone, each email once. For
/// newsletters and call campaigns; needs the export right, like any export.
#[utoipa::path(get, path = "/api/v1/records/{object}/mailing-list", tag = "records",
    security(("bearer" = [])),
    params(
        ("object" = String, Path, description = "An object with email or phone fields: contacts, leads"),
        ("format" = Option<String>, Query, description = "`csv` (default) or `xlsx`"),
        ("filter[field]" = Option<String>, Query, description = "The segment, as for a list"),
        ("sort" = Option<String>, Query, description = "As for a list"),
        ("q" = Option<String>, Query, description = "As for a list"),
    ),
    responses(
        (status = 200, description = "CSV or XLSX", content_type = "text/csv"),
        (status = 400, description = "Bad filter, or an object without email or phone fields", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "No export right", body = Problem, content_type = "application/problem+json"),
    ))]
async fn mailing_list(
    State(app): State<AppState>,
    actor: Actor,
    Path(object): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<axum::response::Response> {
    let (view, mut shape) = parse(query.as_deref(), &[])?;
    let exportable = app.records.export_columns(&actor, &object).await?;
    let schema = app.records.schema();
    let meta = schema.object(&object);
    let kind_of = |name: &str| {
        meta.as_ref()
            .and_then(|o| o.field(name).map(|f| f.kind))
            .filter(|_| exportable.iter().any(|c| c == name))
    };
    let names: Vec<String> = ["first_name", "last_name", "name", "company_name"]
        .into_iter()
        .filter(|n| kind_of(n).is_some())
        .map(String::from)
        .collect();
    let reachable: Vec<String> = exportable
        .iter()
        .filter(|c| matches!(kind_of(c), Some(FieldType::Email | FieldType::Phone)))
        .cloned()
        .collect();
    if reachable.is_empty() {
        return Err(ApiError::bad_request(format!(
            "{object} has no email or phone field you may export"
        )));
    }
    shape.unique = reachable
        .iter()
        .find(|c| kind_of(c) == Some(FieldType::Email))
        .cloned();
    shape.require_any = reachable.clone();
    let mut columns = vec!["id".to_string()];
    columns.extend(names);
    columns.extend(reachable);
    shape.columns = Some(columns);
    let file = format!("{object}-mailing-list");
    stream(app, actor, object, view, shape, exportable, &file).await
}

/// Streams the view's records through `shape` as a file named `file`; `exportable`
/// are the columns the caller may export (from `export_columns`, which checked the
/// export right).
async fn stream(
    app: AppState,
    actor: Actor,
    object: String,
    view: Vec<(String, String)>,
    shape: Shape,
    exportable: Vec<String>,
    file: &str,
) -> ApiResult<axum::response::Response> {
    let page_query = move |cursor: Option<&str>| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.extend_pairs(&view)
            .append_pair("limit", &EXPORT_PAGE.to_string());
        if let Some(c) = cursor {
            q.append_pair("cursor", c);
        }
        q.finish()
    };
    let columns = match shape.columns {
        None => exportable,
        Some(chosen) => {
            if chosen.is_empty() {
                return Err(ApiError::bad_request("columns names no column"));
            }
            if let Some(c) = chosen.iter().find(|c| !exportable.contains(c)) {
                return Err(ApiError::bad_request(format!(
                    "cannot export '{c}': {object} has no such column you may see"
                )));
            }
            chosen
        }
    };
    if let Some(u) = shape.unique.as_ref().filter(|u| !columns.contains(u)) {
        return Err(ApiError::bad_request(format!(
            "unique names '{u}', which is not one of the exported columns"
        )));
    }
    // The first page before the 200: a bad filter is still a clear 400.
    let first = app
        .records
        .export_page(&actor, &object, &page_query(None))
        .await?;
    let mut sheet = if shape.xlsx {
        Sheet::Xlsx(Box::new(XlsxWriter::new(&object)))
    } else {
        Sheet::Csv
    };
    let out = sheet.head(&columns);
    let state = Export {
        page: Some(first),
        sheet: Some(sheet),
        out,
        columns,
        unique: shape.unique.map(|u| (u, HashSet::new())),
        require_any: shape.require_any,
    };
    let body = futures_util::stream::unfold(state, move |mut state| {
        let (app, actor, object, page_query) = (
            app.clone(),
            actor.clone(),
            object.clone(),
            page_query.clone(),
        );
        async move {
            let stopped = |why: &str| {
                tracing::error!(error = %why, "an export stopped half-way");
                Some((
                    Err(std::io::Error::other(format!(
                        "the export stopped half-way: {why}"
                    ))),
                    Export::ended(),
                ))
            };
            let mut sheet = state.sheet.take()?;
            let mut out = std::mem::take(&mut state.out);
            let Some(page) = state.page.take() else {
                // Every page sent: the end of the document, once.
                out.extend(sheet.finish());
                return Some((Ok(out), Export::ended()));
            };
            for record in &page.items {
                if !state.keeps(record) {
                    continue;
                }
                if sheet.record(&mut out, &state.columns, record).is_err() {
                    return stopped("a workbook holds at most 1,048,575 records; export as CSV");
                }
            }
            if let Some(cursor) = &page.next_cursor {
                match app
                    .records
                    .export_page(&actor, &object, &page_query(Some(cursor)))
                    .await
                {
                    Ok(next) => state.page = Some(next),
                    Err(e) => return stopped(&e.to_string()),
                }
            }
            state.sheet = Some(sheet);
            Some((Ok::<_, std::io::Error>(out), state))
        }
    });
    let (content_type, extension) = if shape.xlsx {
        (crate::xlsx::CONTENT_TYPE, "xlsx")
    } else {
        ("text/csv; charset=utf-8", "csv")
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}.{extension}\""),
            ),
        ],
        axum::body::Body::from_stream(body),
    )
        .into_response())
}

/// An export under way: the next page, the document, what is ready to send.
struct Export {
    page: Option<Page>,
    sheet: Option<Sheet>,
    out: Vec<u8>,
    columns: Vec<String>,
    unique: Option<(String, HashSet<String>)>,
    require_any: Vec<String>,
}

impl Export {
    fn ended() -> Export {
        Export {
            page: None,
            sheet: None,
            out: Vec::new(),
            columns: Vec::new(),
            unique: None,
            require_any: Vec::new(),
        }
    }

    /// Whether `record` is written: it has one of the required values, and its unique
    /// value (if any) is new.
    fn keeps(&mut self, record: &Record) -> bool {
        let text = |field: &str| match record.fields.get(field) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_lowercase()),
            _ => None,
        };
        if !self.require_any.is_empty() && self.require_any.iter().all(|f| text(f).is_none()) {
            return false;
        }
        match &mut self.unique {
            Some((field, seen)) => match text(field) {
                Some(value) => seen.insert(value),
                None => true,
            },
            None => true,
        }
    }
}

/// The document an export writes rows into.
enum Sheet {
    Csv,
    Xlsx(Box<XlsxWriter>),
}

impl Sheet {
    fn head(&mut self, columns: &[String]) -> Vec<u8> {
        match self {
            Sheet::Csv => {
                let mut head = String::new();
                super::export::csv_row(&mut head, columns.iter().map(|c| c.as_str().into()));
                head.into_bytes()
            }
            Sheet::Xlsx(w) => {
                let mut out = w.start();
                let cells = columns.iter().map(|c| Cell::Text(c.into()));
                w.row(&mut out, cells).expect("the first row fits");
                out
            }
        }
    }

    fn record(
        &mut self,
        out: &mut Vec<u8>,
        columns: &[String],
        record: &Record,
    ) -> Result<(), crate::xlsx::TooLarge> {
        match self {
            Sheet::Csv => {
                let mut row = String::new();
                super::export::record_row(&mut row, columns, record);
                out.extend_from_slice(row.as_bytes());
                Ok(())
            }
            Sheet::Xlsx(w) => w.row(out, super::export::xlsx_cells(columns, record)),
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            Sheet::Csv => Vec::new(),
            Sheet::Xlsx(w) => w.finish(),
        }
    }
}
