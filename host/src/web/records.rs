//! Pages of any object, driven by its metadata: the list (columns, filters, sort,
//! pages, quick search, one-click status), the record (fields, related records,
//! activities, documents, history) and the create and edit forms.
//!
//! Everything goes through the records service as the signed-in user: hidden fields
//! never reach the page, read-only ones are shown but not editable.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use serde_json::{Map, Value};

use super::i18n::{Calendar, Tr};
use super::sharing::{Sharing, share_input, sharing};
use super::view::{self, Names, Shown};
use super::{Choice, FormData, Visitor, WebResult, local_path, render, wants_fragment};
use crate::access::{Action, FieldAccess, ObjectAccess};
use crate::api::AppState;
use crate::audit::AuditAction;
use crate::records::metadata::{Field, FieldType, ObjectType};
use crate::records::service::ShareChange;
use crate::records::{Record, RecordError};

/// Records per list page unless the query says otherwise.
const PAGE_SIZE: &str = "50";
/// Columns a list shows when none are chosen.
const DEFAULT_COLUMNS: usize = 6;
/// Records of a related object shown on a record page.
const RELATED: &str = "10";
/// Choices offered for a reference field in a form.
const REFERENCE_CHOICES: &str = "200";

/// One choice of a select or a group of checkboxes.
/// The one-click change of a record's `status` from a list or record page.
pub struct QuickStatus {
    pub object: String,
    pub id: String,
    pub field: String,
    pub label: String,
    pub choices: Vec<Choice>,
    pub back: String,
}

/// The picklist a list page changes in one click: `status`, when the caller may
/// write it.
fn quick_field<'a>(object: &'a ObjectType, access: &ObjectAccess) -> Option<&'a Field> {
    object
        .field("status")
        .filter(|f| f.kind == FieldType::Picklist && access.field(&f.name) == FieldAccess::Write)
        .filter(|_| !access.grants(Action::Update).is_empty())
}

fn quick_status(
    tr: &Tr,
    object: &ObjectType,
    field: &Field,
    record: &Record,
    back: &str,
) -> QuickStatus {
    let current = record
        .fields
        .get(&field.name)
        .and_then(Value::as_str)
        .unwrap_or_default();
    QuickStatus {
        object: object.name.clone(),
        id: record.id.clone(),
        field: field.name.clone(),
        label: tr.field(&object.name, &field.name, &field.label),
        choices: field
            .values
            .iter()
            .map(|v| Choice {
                value: v.clone(),
                label: tr.value(v),
                selected: v == current,
            })
            .collect(),
        back: back.to_string(),
    }
}

pub struct ColumnHead {
    pub label: String,
    pub href: String,
    /// `ascending`, `descending` or `none` (for `aria-sort`).
    pub sorted: &'static str,
}

pub struct Row {
    pub href: String,
    pub title: String,
    pub cells: Vec<Shown>,
    pub quick: Option<QuickStatus>,
}

pub struct FilterSelect {
    pub param: String,
    pub label: String,
    pub choices: Vec<Choice>,
}

#[derive(Template)]
#[template(path = "web/list.html")]
struct ListPage<'a> {
    v: &'a Visitor,
    tr: &'a Tr,
    object: &'a str,
    heading: String,
    new_label: String,
    can_create: bool,
    columns: Vec<ColumnHead>,
    rows: Vec<Row>,
    filters: Vec<FilterSelect>,
    search: String,
    sort: String,
    columns_param: String,
    quick_label: String,
    next_href: Option<String>,
    first_href: Option<String>,
    /// Every field the visitor may read, checked when shown: the column picker.
    column_choices: Vec<Choice>,
    /// The view's other parameters, kept by the column picker.
    keep: Vec<(String, String)>,
    saved: Vec<ViewLink>,
    /// This list's query as a view keeps it (the "save this view" form).
    here_query: String,
    view_name: String,
    view_error: Option<String>,
}

/// A saved view of the visitor's, as a link on the list page.
pub struct ViewLink {
    pub id: String,
    pub name: String,
    pub href: String,
    /// The list shown is this view.
    pub current: bool,
}

/// The "save this view" form as typed, with why it was refused.
struct ViewDraft {
    name: String,
    error: String,
    status: StatusCode,
}

fn encode(pairs: &[(String, String)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    s.extend_pairs(pairs);
    s.finish()
}

/// The list of an object's records.
pub async fn list(
    State(app): State<AppState>,
    v: Visitor,
    Path(object): Path<String>,
    RawQuery(query): RawQuery,
) -> WebResult {
    list_page(&app, &v, &object, query.as_deref().unwrap_or(""), None).await
}

async fn list_page(
    app: &AppState,
    v: &Visitor,
    object: &str,
    query: &str,
    draft: Option<ViewDraft>,
) -> WebResult {
    let (meta, access) = app
        .records
        .view_of(&v.actor, object)
        .map_err(|e| v.fail(e))?;
    let mut columns_param = String::new();
    let mut view: Vec<(String, String)> = Vec::new();
    for (k, val) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            // The column picker sends one `columns` per box ticked; links send one
            // list.
            "columns" if val.is_empty() => {}
            "columns" => {
                if !columns_param.is_empty() {
                    columns_param.push(',');
                }
                columns_param.push_str(&val);
            }
            // Empty boxes of the filter form mean "any".
            _ if val.is_empty() => {}
            _ => view.push((k.into_owned(), val.into_owned())),
        }
    }
    let mut service_query = view.clone();
    if !view.iter().any(|(k, _)| k == "limit") {
        service_query.push(("limit".into(), PAGE_SIZE.into()));
    }
    let page = app
        .records
        .list(&v.actor, object, &encode(&service_query))
        .await
        .map_err(|e| v.fail(e))?;
    let chosen: Vec<&Field> = columns_param
        .split(',')
        .filter_map(|name| meta.field(name.trim()))
        .collect();
    let columns: Vec<&Field> = if chosen.is_empty() {
        meta.fields
            .iter()
            .filter(|f| !matches!(f.kind, FieldType::LongText | FieldType::MultiPicklist))
            .take(DEFAULT_COLUMNS)
            .collect()
    } else {
        chosen
    };
    let get = |key: &str| view.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let sort = get("sort").unwrap_or_default();
    // Links of this list keep its view (filters, search, columns) and start at page one.
    let link = |replace: &[(&str, &str)], drop: &[&str]| {
        let mut pairs: Vec<(String, String)> = view
            .iter()
            .filter(|(k, _)| k != "cursor" && !drop.contains(&k.as_str()))
            .filter(|(k, _)| !replace.iter().any(|(r, _)| r == k))
            .cloned()
            .collect();
        pairs.extend(replace.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        if !columns_param.is_empty() {
            pairs.push(("columns".into(), columns_param.clone()));
        }
        format!("/records/{object}?{}", encode(&pairs))
    };
    let heads = columns
        .iter()
        .map(|f| {
            let (sorted, next) = if sort == f.name {
                ("ascending", format!("-{}", f.name))
            } else if sort.strip_prefix('-') == Some(f.name.as_str()) {
                ("descending", f.name.clone())
            } else {
                ("none", f.name.clone())
            };
            ColumnHead {
                label: v.tr.field(object, &f.name, &f.label),
                href: link(&[("sort", &next)], &[]),
                sorted,
            }
        })
        .collect();
    let here = link(&[], &[]);
    let names = Names::of(app, &v.actor, &meta, &page.items).await;
    let quick = quick_field(&meta, &access);
    let rows = page
        .items
        .iter()
        .map(|r| Row {
            href: format!("/records/{object}/{}", r.id),
            title: view::title(&meta, r),
            cells: columns
                .iter()
                .map(|f| view::show(&v.tr, f, r.fields.get(&f.name), &names))
                .collect(),
            quick: quick.map(|f| quick_status(&v.tr, &meta, f, r, &here)),
        })
        .collect();
    let filters = meta
        .fields
        .iter()
        .filter(|f| f.kind == FieldType::Picklist)
        .take(3)
        .map(|f| {
            let param = format!("filter[{}]", f.name);
            let current = get(&param).unwrap_or_default();
            FilterSelect {
                label: v.tr.field(object, &f.name, &f.label),
                choices: f
                    .values
                    .iter()
                    .map(|val| Choice {
                        value: val.clone(),
                        label: v.tr.value(val),
                        selected: val == current,
                    })
                    .collect(),
                param,
            }
        })
        .collect();
    let next_href = page
        .next_cursor
        .as_deref()
        .map(|c| link(&[("cursor", c)], &[]));
    let first_href = get("cursor").map(|_| link(&[], &[]));
    let column_choices = meta
        .fields
        .iter()
        .map(|f| Choice {
            value: f.name.clone(),
            label: v.tr.field(object, &f.name, &f.label),
            selected: columns.iter().any(|c| c.name == f.name),
        })
        .collect();
    let keep: Vec<(String, String)> = view
        .iter()
        .filter(|(k, _)| k != "cursor")
        .cloned()
        .collect();
    let here_query = crate::records::views::kept(here.split_once('?').map_or("", |(_, q)| q));
    let saved = crate::records::views::list(app, &v.actor, object)
        .await
        .map_err(|e| v.fail(e))?
        .into_iter()
        .map(|sv| ViewLink {
            href: format!("/records/{object}?{}", sv.query),
            current: sv.query == here_query,
            id: sv.id,
            name: sv.name,
        })
        .collect();
    let status = draft.as_ref().map_or(StatusCode::OK, |d| d.status);
    let (view_name, view_error) = match draft {
        Some(d) => (d.name, Some(d.error)),
        None => (String::new(), None),
    };
    let html = render(&ListPage {
        v,
        tr: &v.tr,
        object,
        heading: v.tr.object(object, &meta.label_plural),
        new_label: v.tr.t1("list-new", "object", &meta.label),
        can_create: !access.grants(Action::Create).is_empty(),
        columns: heads,
        rows,
        filters,
        search: get("q").unwrap_or_default().to_string(),
        sort: sort.to_string(),
        columns_param: columns_param.clone(),
        quick_label: quick
            .map(|f| v.tr.field(object, &f.name, &f.label))
            .unwrap_or_default(),
        next_href,
        first_href,
        column_choices,
        keep,
        saved,
        here_query,
        view_name,
        view_error,
    });
    Ok((status, html).into_response())
}

/// `POST /records/{object}/views`: saves the list shown (the form carries its
/// query) under a name, then opens it; a refusal comes back on the list, beside the
/// name.
pub async fn save_view(
    State(app): State<AppState>,
    v: Visitor,
    Path(object): Path<String>,
    form: FormData,
) -> WebResult {
    v.check_csrf(&form)?;
    let name = form.get("name").unwrap_or_default().to_string();
    let query = form.get("query").unwrap_or_default().to_string();
    let input = crate::records::views::NewView {
        name: name.clone(),
        query: query.clone(),
    };
    match crate::records::views::save(&app, &v.actor, &object, input).await {
        Ok((saved, _)) => {
            Ok(Redirect::to(&format!("/records/{object}?{}", saved.query)).into_response())
        }
        Err(e)
            if matches!(
                e.status,
                StatusCode::UNPROCESSABLE_ENTITY | StatusCode::CONFLICT
            ) =>
        {
            // A query the list refuses cannot be shown either: the plain list then.
            let shown = if e.errors.iter().any(|f| f.field == "query") {
                ""
            } else {
                query.as_str()
            };
            let draft = ViewDraft {
                name,
                error: e.described(),
                status: e.status,
            };
            list_page(&app, &v, &object, shown, Some(draft)).await
        }
        Err(e) => Err(v.fail(e)),
    }
}

/// `POST /records/{object}/views/{id}/delete`: removes one of the visitor's views.
pub async fn remove_view(
    State(app): State<AppState>,
    v: Visitor,
    Path((object, id)): Path<(String, String)>,
    form: FormData,
) -> WebResult {
    v.check_csrf(&form)?;
    crate::records::views::remove(&app, &v.actor, &object, &id)
        .await
        .map_err(|e| v.fail(e))?;
    Ok(Redirect::to(&format!("/records/{object}")).into_response())
}

#[derive(Template)]
#[template(path = "web/quick.html")]
struct QuickFragment<'a> {
    v: &'a Visitor,
    q: &'a QuickStatus,
}

/// Sets one picklist field from a list or record page (no version check: the
/// newest record gets the chosen value). The page script receives the new form
/// back; without it the browser returns to the page it came from.
pub async fn set_field(
    State(app): State<AppState>,
    v: Visitor,
    Path((object, id)): Path<(String, String)>,
    headers: HeaderMap,
    form: FormData,
) -> WebResult {
    v.check_csrf(&form)?;
    let field = form.get("field").unwrap_or_default();
    let value = form.get("value").unwrap_or_default();
    let mut patch = Map::new();
    patch.insert(field.to_string(), Value::String(value.to_string()));
    let record = app
        .records
        .update(&v.actor, &object, &id, &patch, None)
        .await
        .map_err(|e| v.fail(e))?;
    let back = local_path(form.get("back"));
    if !wants_fragment(&headers) {
        return Ok(Redirect::to(&back).into_response());
    }
    let (meta, access) = app
        .records
        .view_of(&v.actor, &object)
        .map_err(|e| v.fail(e))?;
    let Some(f) = quick_field(&meta, &access) else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let q = quick_status(&v.tr, &meta, f, &record, &back);
    Ok(render(&QuickFragment { v: &v, q: &q }))
}

pub struct RelatedList {
    pub heading: String,
    pub more_href: String,
    pub items: Vec<(String, String)>,
}

pub struct HistoryItem {
    pub at: String,
    pub who: String,
    pub what: String,
    pub changes: Vec<(String, String, String)>,
}

pub struct ActivityItem {
    pub href: String,
    pub when: String,
    pub kind: String,
    pub topic: String,
    pub status: String,
}

#[derive(Template)]
#[template(path = "web/record.html")]
struct RecordPage<'a> {
    v: &'a Visitor,
    tr: &'a Tr,
    object: &'a str,
    object_heading: String,
    id: &'a str,
    title: String,
    version: String,
    owner: String,
    created: String,
    updated: String,
    fields: Vec<(String, Shown)>,
    can_edit: bool,
    quick: Option<QuickStatus>,
    related: Vec<RelatedList>,
    activities: Vec<ActivityItem>,
    documents: Vec<(String, String)>,
    history: Vec<HistoryItem>,
    sharing: Sharing,
}

/// A record the caller may read, with its view of the record's object.
async fn read(
    app: &AppState,
    v: &Visitor,
    object: &str,
    id: &str,
) -> Result<(Arc<ObjectType>, Arc<ObjectAccess>, Record), super::WebError> {
    let (meta, access) = app
        .records
        .view_of(&v.actor, object)
        .map_err(|e| v.fail(e))?;
    let record = app
        .records
        .get(&v.actor, object, id)
        .await
        .map_err(|e| v.fail(e))?;
    Ok((meta, access, record))
}

/// A record with what relates to it.
pub async fn show(
    State(app): State<AppState>,
    v: Visitor,
    Path((object, id)): Path<(String, String)>,
) -> WebResult {
    let (meta, access, record) = read(&app, &v, &object, &id).await?;
    let names = Names::of(&app, &v.actor, &meta, std::slice::from_ref(&record)).await;
    let tr = &v.tr;
    let fields = meta
        .fields
        .iter()
        .map(|f| {
            (
                tr.field(&object, &f.name, &f.label),
                view::show(tr, f, record.fields.get(&f.name), &names),
            )
        })
        .collect();
    let here = format!("/records/{object}/{id}");
    let quick = quick_field(&meta, &access).map(|f| quick_status(tr, &meta, f, &record, &here));
    let (related, activities) = related(&app, &v, &object, &id).await;
    let documents = app
        .documents
        .of_record(&v.actor, &object, &id)
        .await
        .map(|docs| {
            docs.into_iter()
                .map(|d| {
                    (
                        d.title,
                        tr.t1("record-version", "version", &d.version.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let history = history(&app, &v, &meta, &record, &names).await;
    let shares = app
        .access
        .list_shares(&object, &record.id)
        .await
        .map_err(|e| v.fail(e))?;
    let can_share = app.records.may_share(&v.actor, &object, &record);
    let action = format!("/records/{object}/{id}/shares");
    let sharing = sharing(&app, &v, shares, can_share, action)
        .await
        .map_err(|e| v.fail(e))?;
    Ok(render(&RecordPage {
        v: &v,
        tr,
        object: &object,
        object_heading: tr.object(&object, &meta.label_plural),
        id: &id,
        title: view::title(&meta, &record),
        version: tr.t1("record-version", "version", &record.version.to_string()),
        owner: record
            .owner
            .as_deref()
            .map(|o| names.user(o))
            .unwrap_or_default(),
        created: tr.date(&record.created_at),
        updated: tr.date(&record.updated_at),
        fields,
        can_edit: !access.grants(Action::Update).is_empty(),
        quick,
        related,
        activities,
        documents,
        history,
        sharing,
    }))
}

/// `POST /records/{object}/{id}/shares`: shares the record with `with`
/// (`user:{id}` or `department:{id}`) to `access` it (read or write); sharing again
/// with the same one changes the access.
pub async fn share(
    State(app): State<AppState>,
    v: Visitor,
    Path((object, id)): Path<(String, String)>,
    form: FormData,
) -> WebResult {
    v.check_csrf(&form)?;
    let input = share_input(&form);
    app.records
        .share(&v.actor, &object, &id, ShareChange::Put(&input))
        .await
        .map_err(|e| v.fail(e))?;
    Ok(Redirect::to(&format!("/records/{object}/{id}#sharing")).into_response())
}

/// `POST /records/{object}/{id}/shares/{share}/delete`: stops sharing.
pub async fn unshare(
    State(app): State<AppState>,
    v: Visitor,
    Path((object, id, share)): Path<(String, String, String)>,
    form: FormData,
) -> WebResult {
    v.check_csrf(&form)?;
    app.records
        .share(&v.actor, &object, &id, ShareChange::Remove(&share))
        .await
        .map_err(|e| v.fail(e))?;
    Ok(Redirect::to(&format!("/records/{object}/{id}#sharing")).into_response())
}

/// The records of other objects that point at this one (the caller's rights
/// apply); activities come apart, as a timeline, newest first.
async fn related(
    app: &AppState,
    v: &Visitor,
    object: &str,
    id: &str,
) -> (Vec<RelatedList>, Vec<ActivityItem>) {
    let schema = app.records.schema();
    let (mut lists, mut activities) = (Vec::new(), Vec::new());
    for other in schema.objects.values() {
        let Ok((visible, access)) = app.records.view_of(&v.actor, &other.name) else {
            continue;
        };
        if access.grants(Action::Read).is_empty() {
            continue;
        }
        for field in visible
            .fields
            .iter()
            .filter(|f| f.kind == FieldType::Reference && f.target.as_deref() == Some(object))
        {
            let filter = format!("filter[{}]", field.name);
            let is_activity = other.name == "activities" && visible.field("starts_at").is_some();
            let sort = if is_activity {
                "-starts_at"
            } else {
                "-created_at"
            };
            let query = form_urlencoded::Serializer::new(String::new())
                .append_pair(&filter, id)
                .append_pair("sort", sort)
                .append_pair("limit", RELATED)
                .finish();
            let Ok(page) = app.records.list(&v.actor, &other.name, &query).await else {
                continue;
            };
            if is_activity {
                let text = |r: &Record, f: &str| {
                    r.fields
                        .get(f)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                activities.extend(page.items.iter().map(|r| ActivityItem {
                    href: format!("/records/activities/{}", r.id),
                    when: v.tr.date(&text(r, "starts_at")),
                    kind: v.tr.value(&text(r, "kind")),
                    topic: view::title(&visible, r),
                    status: v.tr.value(&text(r, "status")),
                }));
                continue;
            }
            if page.items.is_empty() {
                continue;
            }
            lists.push(RelatedList {
                heading: v.tr.t1(
                    "record-related",
                    "object",
                    &v.tr.object(&other.name, &other.label_plural),
                ),
                more_href: format!("/records/{}?{}", other.name, {
                    form_urlencoded::Serializer::new(String::new())
                        .append_pair(&filter, id)
                        .finish()
                }),
                items: page
                    .items
                    .iter()
                    .map(|r| {
                        (
                            view::title(&visible, r),
                            format!("/records/{}/{}", other.name, r.id),
                        )
                    })
                    .collect(),
            });
        }
    }
    (lists, activities)
}

/// The newest changes of a record, with field names and values as the page shows
/// them.
async fn history(
    app: &AppState,
    v: &Visitor,
    meta: &ObjectType,
    record: &Record,
    names: &Names,
) -> Vec<HistoryItem> {
    let Ok(entries) = app
        .records
        .history(&v.actor, &meta.name, &record.id, None, 20)
        .await
    else {
        return Vec::new();
    };
    // Changed values show as stored (a reference as its id, linked).
    let stored = Names::default();
    entries
        .into_iter()
        .rev()
        .map(|e| HistoryItem {
            at: v.tr.date(&e.at),
            who: e
                .actor
                .as_deref()
                .map(|a| names.user(a))
                .unwrap_or_default(),
            what: v.tr.t(match e.action {
                AuditAction::Created => "history-created",
                AuditAction::Deleted => "history-deleted",
                _ => "history-updated",
            }),
            changes: e
                .changes
                .iter()
                .filter_map(|(name, change)| {
                    let field = meta.field(name)?;
                    let shown = |key| view::show(&v.tr, field, change.get(key), &stored).text;
                    Some((
                        v.tr.field(&meta.name, name, &field.label),
                        shown("old"),
                        shown("new"),
                    ))
                })
                .collect(),
        })
        .collect()
}

/// One input of a form.
pub struct Input {
    pub name: String,
    pub label: String,
    /// `text`, `email`, `tel`, `url`, `number`, `date`, `datetime-local`,
    /// `textarea`, `select`, `checkbox` or `checkboxes`.
    pub kind: &'static str,
    pub value: String,
    pub step: &'static str,
    pub choices: Vec<Choice>,
    pub required: bool,
    pub read_only: bool,
    pub help: String,
    pub error: Option<String>,
    /// For a reference: where the page script finds more records by name
    /// (`/records/{target}/choices`), since the select holds the first 200 only.
    pub search: String,
}

#[derive(Template)]
#[template(path = "web/form.html")]
struct FormPage<'a> {
    v: &'a Visitor,
    tr: &'a Tr,
    heading: String,
    action: String,
    cancel: String,
    version: String,
    inputs: Vec<Input>,
    has_errors: bool,
    stale: bool,
}

/// The value of `field` as an input holds it.
fn input_value(field: &Field, value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        // A stored instant (`2024-03-20T14:30:00Z`) as a date-time input holds it;
        // anything else (what was typed and refused) as it is.
        Some(Value::String(s))
            if field.kind == FieldType::Datetime && s.len() > 16 && s.as_bytes()[10] == b'T' =>
        {
            s.get(..16).unwrap_or(s).to_string()
        }
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The inputs of a form for `values` (a record's or what was submitted).
async fn inputs(
    app: &AppState,
    v: &Visitor,
    meta: &ObjectType,
    access: &ObjectAccess,
    values: &Map<String, Value>,
    errors: &HashMap<String, String>,
) -> Vec<Input> {
    let mut users = None;
    let mut out = Vec::new();
    for f in &meta.fields {
        let read_only = access.field(&f.name) != FieldAccess::Write;
        let value = values.get(&f.name);
        let mut current = input_value(f, value);
        // The browser's date pickers know only the Gregorian calendar: a user of the
        // Solar Hijri one types the date, as `1403/01/01` (and `14:30` after it for
        // a date and time).
        let dated = matches!(f.kind, FieldType::Date | FieldType::Datetime);
        let hijri = dated && v.tr.prefs.calendar == Calendar::SolarHijri;
        if hijri {
            current = v.tr.date_input(&current);
        }
        let (kind, step) = match f.kind {
            FieldType::Text => ("text", ""),
            FieldType::LongText => ("textarea", ""),
            FieldType::Email => ("email", ""),
            FieldType::Phone => ("tel", ""),
            FieldType::Url => ("url", ""),
            FieldType::Integer => ("number", "1"),
            FieldType::Decimal => ("number", "any"),
            FieldType::Currency => ("number", "0.01"),
            FieldType::Date | FieldType::Datetime if hijri => ("text", ""),
            FieldType::Date => ("date", ""),
            FieldType::Datetime => ("datetime-local", ""),
            FieldType::Boolean => ("checkbox", ""),
            FieldType::Picklist | FieldType::Reference | FieldType::User => ("select", ""),
            FieldType::MultiPicklist => ("checkboxes", ""),
        };
        let choices = match f.kind {
            FieldType::Picklist => f
                .values
                .iter()
                .map(|val| Choice {
                    value: val.clone(),
                    label: v.tr.value(val),
                    selected: *val == current,
                })
                .collect(),
            FieldType::MultiPicklist => {
                let chosen: Vec<&str> = value
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                f.values
                    .iter()
                    .map(|val| Choice {
                        value: val.clone(),
                        label: v.tr.value(val),
                        selected: chosen.contains(&val.as_str()),
                    })
                    .collect()
            }
            FieldType::Reference if !read_only => reference_choices(app, v, f, &current).await,
            FieldType::User if !read_only => {
                if users.is_none() {
                    users = Some(app.auth.list_users().await.unwrap_or_default());
                }
                users
                    .iter()
                    .flatten()
                    .filter(|u| u.active || u.id == current)
                    .map(|u| Choice {
                        value: u.id.clone(),
                        label: u.name.clone(),
                        selected: u.id == current,
                    })
                    .collect()
            }
            _ => Vec::new(),
        };
        let shown = if read_only {
            view::show(&v.tr, f, value, &Names::default()).text
        } else {
            current
        };
        out.push(Input {
            name: f.name.clone(),
            label: v.tr.field(&meta.name, &f.name, &f.label),
            kind,
            value: if f.kind == FieldType::Boolean {
                (value == Some(&Value::Bool(true))).to_string()
            } else {
                shown
            },
            step,
            choices,
            required: f.required,
            read_only,
            // The form a typed Solar Hijri date takes, before the field's own help.
            help: if hijri && !read_only {
                let form = match f.kind {
                    FieldType::Datetime => "form-datetime-hijri",
                    _ => "form-date-hijri",
                };
                [v.tr.t(form), f.help_text.clone()]
                    .join(" ")
                    .trim()
                    .to_string()
            } else {
                f.help_text.clone()
            },
            error: errors.get(&f.name).cloned(),
            search: match (f.kind, f.target.as_deref()) {
                (FieldType::Reference, Some(target)) if !read_only => {
                    format!("/records/{target}/choices")
                }
                _ => String::new(),
            },
        });
    }
    out
}

/// The records a reference field may point at (the first ones the caller may
/// read, and always the current one).
async fn reference_choices(app: &AppState, v: &Visitor, f: &Field, current: &str) -> Vec<Choice> {
    let Some(target) = f.target.as_deref() else {
        return Vec::new();
    };
    let schema = app.records.schema();
    let Some(target_meta) = schema.object(target) else {
        return Vec::new();
    };
    let query = format!("limit={REFERENCE_CHOICES}");
    let mut items = app
        .records
        .list(&v.actor, target, &query)
        .await
        .map(|p| p.items)
        .unwrap_or_default();
    if !current.is_empty()
        && !items.iter().any(|r| r.id == current)
        && let Ok(r) = app.records.get(&v.actor, target, current).await
    {
        items.push(r);
    }
    let mut choices: Vec<Choice> = items
        .iter()
        .map(|r| Choice {
            value: r.id.clone(),
            label: view::title(target_meta, r),
            selected: r.id == current,
        })
        .collect();
    choices.sort_by_key(|c| c.label.to_lowercase());
    choices
}

/// The submitted form as field values: what the caller may write, numbers as
/// numbers where they parse (else as typed, for the service to refuse by name).
/// On an edit, only what differs from `current` is sent; an emptied field is
/// cleared.
fn submitted(
    tr: &Tr,
    meta: &ObjectType,
    access: &ObjectAccess,
    form: &FormData,
    current: Option<&Record>,
) -> Map<String, Value> {
    let mut values = Map::new();
    for f in meta
        .fields
        .iter()
        .filter(|f| access.field(&f.name) == FieldAccess::Write)
    {
        let value = match f.kind {
            FieldType::Boolean => Value::Bool(matches!(form.get(&f.name), Some("on" | "true"))),
            FieldType::MultiPicklist => {
                let chosen: Vec<Value> =
                    form.all(&f.name).map(|s| Value::String(s.into())).collect();
                if chosen.is_empty() && current.is_none() {
                    continue;
                }
                Value::Array(chosen)
            }
            _ => {
                let raw = form.get(&f.name).unwrap_or_default().trim();
                if raw.is_empty() {
                    if current.is_none() {
                        continue;
                    }
                    Value::Null
                } else if matches!(f.kind, FieldType::Date | FieldType::Datetime) {
                    crate::records::validate::from_text(f, &tr.typed_date(raw))
                } else {
                    crate::records::validate::from_text(f, raw)
                }
            }
        };
        if let Some(record) = current {
            let before = record.fields.get(&f.name).unwrap_or(&Value::Null);
            let same = before == &value
                || (f.kind == FieldType::Datetime
                    && before.as_str().map(|s| s.get(..16))
                        == Some(value.as_str().and_then(|s| s.get(..16))));
            if same {
                continue;
            }
        }
        values.insert(f.name.clone(), value);
    }
    values
}

/// Field name -> message, for the form to show each beside its field; errors of
/// fields the form does not show go to the top.
fn field_errors(e: RecordError) -> Result<HashMap<String, String>, RecordError> {
    match e {
        RecordError::Invalid(errors) | RecordError::FieldsForbidden(errors) => {
            Ok(errors.into_iter().map(|e| (e.field, e.message)).collect())
        }
        other => Err(other),
    }
}

pub async fn new_form(
    State(app): State<AppState>,
    v: Visitor,
    Path(object): Path<String>,
) -> WebResult {
    let (meta, access) = app
        .records
        .view_of(&v.actor, &object)
        .map_err(|e| v.fail(e))?;
    let defaults: Map<String, Value> = meta
        .fields
        .iter()
        .filter_map(|f| f.default.clone().map(|d| (f.name.clone(), d)))
        .collect();
    new_page(&app, &v, &meta, &access, &defaults, HashMap::new()).await
}

/// The form for a new record with `values`; with errors, each beside its field
/// (422).
async fn new_page(
    app: &AppState,
    v: &Visitor,
    meta: &ObjectType,
    access: &ObjectAccess,
    values: &Map<String, Value>,
    errors: HashMap<String, String>,
) -> WebResult {
    let inputs = inputs(app, v, meta, access, values, &errors).await;
    let page = render(&FormPage {
        v,
        tr: &v.tr,
        heading: v.tr.t1("form-new-title", "object", &meta.label),
        action: format!("/records/{}", meta.name),
        cancel: format!("/records/{}", meta.name),
        version: String::new(),
        inputs,
        has_errors: !errors.is_empty(),
        stale: false,
    });
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((status, page).into_response())
}

pub async fn create(
    State(app): State<AppState>,
    v: Visitor,
    Path(object): Path<String>,
    form: FormData,
) -> WebResult {
    v.check_csrf(&form)?;
    let (meta, access) = app
        .records
        .view_of(&v.actor, &object)
        .map_err(|e| v.fail(e))?;
    let values = submitted(&v.tr, &meta, &access, &form, None);
    match app.records.create(&v.actor, &object, &values).await {
        Ok(record) => Ok(Redirect::to(&format!("/records/{object}/{}", record.id)).into_response()),
        Err(e) => {
            let errors = field_errors(e).map_err(|e| v.fail(e))?;
            let shown = form_values(&meta, &form);
            new_page(&app, &v, &meta, &access, &shown, errors).await
        }
    }
}

/// What was typed, to show again beside the errors (as text, as typed).
fn form_values(meta: &ObjectType, form: &FormData) -> Map<String, Value> {
    meta.fields
        .iter()
        .filter_map(|f| match f.kind {
            FieldType::Boolean => Some((
                f.name.clone(),
                Value::Bool(matches!(form.get(&f.name), Some("on" | "true"))),
            )),
            FieldType::MultiPicklist => Some((
                f.name.clone(),
                Value::Array(form.all(&f.name).map(|s| Value::String(s.into())).collect()),
            )),
            _ => form
                .get(&f.name)
                .map(|s| (f.name.clone(), Value::String(s.to_string()))),
        })
        .collect()
}

pub async fn edit_form(
    State(app): State<AppState>,
    v: Visitor,
    Path((object, id)): Path<(String, String)>,
) -> WebResult {
    let (meta, access, record) = read(&app, &v, &object, &id).await?;
    edit_page(
        &app,
        &v,
        &meta,
        &access,
        &record,
        &record.fields,
        HashMap::new(),
        false,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn edit_page(
    app: &AppState,
    v: &Visitor,
    meta: &ObjectType,
    access: &ObjectAccess,
    record: &Record,
    values: &Map<String, Value>,
    errors: HashMap<String, String>,
    stale: bool,
) -> WebResult {
    let inputs = inputs(app, v, meta, access, values, &errors).await;
    let page = render(&FormPage {
        v,
        tr: &v.tr,
        heading: v
            .tr
            .t1("form-edit-title", "object", &view::title(meta, record)),
        action: format!("/records/{}/{}", meta.name, record.id),
        cancel: format!("/records/{}/{}", meta.name, record.id),
        version: record.version.to_string(),
        inputs,
        has_errors: !errors.is_empty(),
        stale,
    });
    let status = if stale {
        StatusCode::CONFLICT
    } else if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((status, page).into_response())
}

/// Saves an edit, guarded by the version the form was made from: if someone saved
/// meanwhile, the form comes back with the newest record and says so.
pub async fn update(
    State(app): State<AppState>,
    v: Visitor,
    Path((object, id)): Path<(String, String)>,
    form: FormData,
) -> WebResult {
    v.check_csrf(&form)?;
    let (meta, access) = app
        .records
        .view_of(&v.actor, &object)
        .map_err(|e| v.fail(e))?;
    let current = app
        .records
        .get(&v.actor, &object, &id)
        .await
        .map_err(|e| v.fail(e))?;
    let seen: Option<i64> = form.get("_version").and_then(|s| s.parse().ok());
    if seen.is_some_and(|seen| seen != current.version) {
        return edit_page(
            &app,
            &v,
            &meta,
            &access,
            &current,
            &current.fields,
            HashMap::new(),
            true,
        )
        .await;
    }
    let patch = submitted(&v.tr, &meta, &access, &form, Some(&current));
    let here = format!("/records/{object}/{id}");
    if patch.is_empty() {
        return Ok(Redirect::to(&here).into_response());
    }
    match app
        .records
        .update(&v.actor, &object, &id, &patch, Some(current.version))
        .await
    {
        Ok(_) => Ok(Redirect::to(&here).into_response()),
        Err(RecordError::Conflict { .. }) => {
            let newest = app
                .records
                .get(&v.actor, &object, &id)
                .await
                .map_err(|e| v.fail(e))?;
            edit_page(
                &app,
                &v,
                &meta,
                &access,
                &newest,
                &newest.fields,
                HashMap::new(),
                true,
            )
            .await
        }
        Err(e) => {
            let errors = field_errors(e).map_err(|e| v.fail(e))?;
            let mut shown = current.fields.clone();
            shown.extend(form_values(&meta, &form));
            edit_page(&app, &v, &meta, &access, &current, &shown, errors, false).await
        }
    }
}

#[derive(Template)]
#[template(
    source = "{% for c in choices %}<option value=\"{{ c.value }}\">{{ c.label }}</option>{% endfor %}",
    ext = "html"
)]
pub(super) struct ChoicesFragment {
    pub choices: Vec<Choice>,
}

/// `GET /records/{object}/choices?q=`: the records of `object` the visitor may read
/// whose searchable fields hold `q` (as the list's quick search), as `<option>`s for
/// a reference select (the page script asks as the user types).
pub async fn choices(
    State(app): State<AppState>,
    v: Visitor,
    Path(object): Path<String>,
    RawQuery(query): RawQuery,
) -> WebResult {
    let q = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "q")
        .map(|(_, q)| q.trim().to_string())
        .unwrap_or_default();
    let (meta, _) = app
        .records
        .view_of(&v.actor, &object)
        .map_err(|e| v.fail(e))?;
    // Built in a block: a Serializer held across an await would make the handler's
    // future !Send.
    let search = {
        let mut search = form_urlencoded::Serializer::new(String::new());
        search.append_pair("limit", "50");
        if !q.is_empty() {
            search.append_pair("q", &q);
        }
        search.finish()
    };
    let items = app
        .records
        .list(&v.actor, &object, &search)
        .await
        .map_err(|e| v.fail(e))?
        .items;
    let mut choices: Vec<Choice> = items
        .iter()
        .map(|r| Choice {
            value: r.id.clone(),
            label: view::title(&meta, r),
            selected: false,
        })
        .collect();
    choices.sort_by_key(|c| c.label.to_lowercase());
    Ok(render(&ChoicesFragment { choices }))
}
