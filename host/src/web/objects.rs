//! The object and field editor of the admin console: every object with its fields,
//! a form to make a custom object, on an object's page a form to add a field, and on
//! a field's page the same form to change it, and a button to remove it. The same
//! functions as `POST /api/v1/objects` and `POST`, `PATCH` and `DELETE` on
//! `/api/v1/objects/{o}/fields[/{f}]`, so every refusal is the API's, shown beside
//! its input (or above the form when it is about the records, such as values that
//! would no longer fit).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use serde_json::{Map, Value, json};

use super::admin::Done;
use super::i18n::Tr;
use super::{Choice, FormData, Visitor, WebResult, beside, listed, render, require_admin};
use crate::api::AppState;
use crate::api::error::{ApiError, FieldError};
use crate::records::metadata::{Field, FieldType};
use crate::records::metadata_routes as api;
use crate::records::objects::NewObjectType;

pub struct ObjectRow {
    pub name: String,
    pub label: String,
    pub standard: bool,
    pub fields: usize,
}

pub struct FieldRow {
    pub name: String,
    pub label: String,
    pub kind: String,
    /// Required, unique, indexed, searchable; picklist values; reference target.
    pub options: Vec<String>,
}

#[derive(Template)]
#[template(path = "web/admin_objects.html")]
struct ObjectsPage<'a> {
    v: &'a Visitor,
    tr: &'a Tr,
    objects: Vec<ObjectRow>,
    name: String,
    label: String,
    label_plural: String,
    errors: Vec<String>,
    name_error: Option<String>,
}

#[derive(Template)]
#[template(path = "web/admin_object.html")]
struct ObjectPage<'a> {
    v: &'a Visitor,
    tr: &'a Tr,
    name: String,
    label: String,
    fields: Vec<FieldRow>,
    form: FieldForm,
    saved: bool,
}

#[derive(Template)]
#[template(path = "web/admin_field.html")]
struct FieldPage<'a> {
    v: &'a Visitor,
    tr: &'a Tr,
    /// The object's name and label.
    name: String,
    label: String,
    form: FieldForm,
}

/// The form of a field (to add or to change), as typed, with its refusals.
pub struct FieldForm {
    /// Where it is posted.
    action: String,
    /// Changing a field: its name is shown, not typed (fields are not renamed).
    changing: bool,
    draft: FieldDraft,
    types: Vec<Choice>,
    targets: Vec<Choice>,
    errors: Vec<String>,
    name_error: Option<String>,
    type_error: Option<String>,
    values_error: Option<String>,
    target_error: Option<String>,
}

/// A field's form as typed.
#[derive(Default)]
pub struct FieldDraft {
    pub name: String,
    pub label: String,
    pub kind: String,
    pub values: String,
    pub target: String,
    pub required: bool,
    pub unique: bool,
    pub indexed: bool,
    pub searchable: bool,
}

/// `GET /admin/objects`.
pub async fn objects(State(app): State<AppState>, v: Visitor) -> WebResult {
    require_admin(&app, &v, "change object metadata").await?;
    objects_page(&app, &v, ("", "", ""), &[], StatusCode::OK)
}

fn objects_page(
    app: &AppState,
    v: &Visitor,
    (name, label, label_plural): (&str, &str, &str),
    errors: &[FieldError],
    status: StatusCode,
) -> WebResult {
    let tr = &v.tr;
    let mut objects: Vec<ObjectRow> = app
        .records
        .schema()
        .objects
        .values()
        .map(|o| ObjectRow {
            name: o.name.clone(),
            label: tr.object(&o.name, &o.label_plural),
            standard: o.standard,
            fields: o.fields.len(),
        })
        .collect();
    objects.sort_by(|a, b| a.label.cmp(&b.label));
    let page = ObjectsPage {
        v,
        tr,
        objects,
        name: name.into(),
        label: label.into(),
        label_plural: label_plural.into(),
        errors: listed(errors),
        name_error: beside(errors, "name"),
    };
    Ok((status, render(&page)).into_response())
}

/// `POST /admin/objects`: a custom object, then its page to add fields.
pub async fn create_object(State(app): State<AppState>, v: Visitor, form: FormData) -> WebResult {
    v.check_csrf(&form)?;
    let text = |k: &str| form.get(k).unwrap_or_default().trim().to_string();
    let (name, label, label_plural) = (text("name"), text("label"), text("label_plural"));
    let new = NewObjectType {
        name: name.clone(),
        label: Some(label.clone()).filter(|l| !l.is_empty()),
        label_plural: Some(label_plural.clone()).filter(|l| !l.is_empty()),
        description: None,
        fields: Vec::new(),
    };
    match api::new_object(&app, &v.actor, new).await {
        Ok(o) => Ok(Redirect::to(&format!("/admin/objects/{}", o.name)).into_response()),
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => objects_page(
            &app,
            &v,
            (&name, &label, &label_plural),
            &e.errors,
            e.status,
        ),
        Err(e) => Err(v.fail(e)),
    }
}

/// `GET /admin/objects/{name}`.
pub async fn object(
    State(app): State<AppState>,
    v: Visitor,
    Path(name): Path<String>,
    Query(q): Query<Done>,
) -> WebResult {
    require_admin(&app, &v, "change object metadata").await?;
    let draft = FieldDraft {
        kind: "text".into(),
        ..FieldDraft::default()
    };
    object_page(
        &app,
        &v,
        &name,
        draft,
        &[],
        q.done.is_some(),
        StatusCode::OK,
    )
}

fn object_page(
    app: &AppState,
    v: &Visitor,
    name: &str,
    draft: FieldDraft,
    errors: &[FieldError],
    saved: bool,
    status: StatusCode,
) -> WebResult {
    let tr = &v.tr;
    let schema = app.records.schema();
    let object = known(v, schema.object(name), name)?;
    let fields = object
        .fields
        .iter()
        .map(|f| {
            let mut options = Vec::new();
            for (on, key) in [
                (f.required, "object-required"),
                (f.unique, "object-unique"),
                (f.indexed, "object-indexed"),
                (f.searchable, "object-searchable"),
            ] {
                if on {
                    options.push(tr.t(key));
                }
            }
            if !f.values.is_empty() {
                options.push(f.values.join(", "));
            }
            if let Some(target) = &f.target {
                options.push(format!("→ {target}"));
            }
            FieldRow {
                name: f.name.clone(),
                label: tr.field(name, &f.name, &f.label),
                kind: f.kind.api_name(),
                options,
            }
        })
        .collect();
    let action = format!("/admin/objects/{}/fields", object.name);
    let page = ObjectPage {
        v,
        tr,
        name: object.name.clone(),
        label: tr.object(&object.name, &object.label_plural),
        fields,
        form: field_form(app, tr, action, false, draft, errors),
        saved,
    };
    Ok((status, render(&page)).into_response())
}

/// The object named `name`, or the page's 404.
fn known<T>(v: &Visitor, found: Option<T>, name: &str) -> Result<T, super::WebError> {
    found.ok_or_else(|| {
        v.fail(ApiError::not_found(format!(
            "there is no object or field named '{name}'"
        )))
    })
}

fn field_form(
    app: &AppState,
    tr: &Tr,
    action: String,
    changing: bool,
    draft: FieldDraft,
    errors: &[FieldError],
) -> FieldForm {
    let types = FieldType::ALL
        .into_iter()
        .map(|kind| {
            let name = kind.api_name();
            Choice {
                label: name.replace('_', " "),
                selected: draft.kind == name,
                value: name,
            }
        })
        .collect();
    let mut targets: Vec<Choice> = app
        .records
        .schema()
        .objects
        .values()
        .map(|o| Choice {
            value: o.name.clone(),
            label: tr.object(&o.name, &o.label_plural),
            selected: draft.target == o.name,
        })
        .collect();
    targets.sort_by(|a, b| a.label.cmp(&b.label));
    FieldForm {
        action,
        changing,
        types,
        targets,
        errors: listed(errors),
        name_error: beside(errors, "name"),
        type_error: beside(errors, "type")
            .or_else(|| beside(errors, "indexed"))
            .or_else(|| beside(errors, "unique")),
        values_error: beside(errors, "values"),
        target_error: beside(errors, "target"),
        draft,
    }
}

impl FieldDraft {
    /// The form as posted.
    fn read(form: &FormData) -> FieldDraft {
        let text = |k: &str| form.get(k).unwrap_or_default().trim().to_string();
        let on = |k: &str| form.get(k) == Some("1");
        FieldDraft {
            name: text("name"),
            label: text("label"),
            kind: text("type"),
            values: form.get("values").unwrap_or_default().to_string(),
            target: text("target"),
            required: on("required"),
            unique: on("unique"),
            indexed: on("indexed"),
            searchable: on("searchable"),
        }
    }

    /// A stored field, to change.
    fn of(field: &Field) -> FieldDraft {
        FieldDraft {
            name: field.name.clone(),
            label: field.label.clone(),
            kind: field.kind.api_name(),
            values: field.values.join("\n"),
            target: field.target.clone().unwrap_or_default(),
            required: field.required,
            unique: field.unique,
            indexed: field.indexed,
            searchable: field.searchable,
        }
    }

    /// The definition the form sets (blank picklist lines dropped; a target only
    /// for a reference, else none).
    fn definition(&self) -> Map<String, Value> {
        let values: Vec<&str> = self
            .values
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let target = match self.kind.as_str() {
            "reference" => Value::String(self.target.clone()),
            _ => Value::Null,
        };
        let definition = json!({
            "name": self.name,
            "label": self.label,
            "type": self.kind,
            "required": self.required,
            "unique": self.unique,
            "indexed": self.indexed,
            "searchable": self.searchable,
            "values": values,
            "target": target,
        });
        match definition {
            Value::Object(map) => map,
            _ => unreachable!("a JSON object"),
        }
    }
}

/// A forged type, refused as the API's validation would be.
fn not_a_type() -> ApiError {
    ApiError::invalid(
        "the field is not valid",
        vec![FieldError::new("type", "is not a field type")],
    )
}

/// `POST /admin/objects/{name}/fields`: adds a field; refusals beside their inputs.
pub async fn add_field(
    State(app): State<AppState>,
    v: Visitor,
    Path(name): Path<String>,
    form: FormData,
) -> WebResult {
    v.check_csrf(&form)?;
    require_admin(&app, &v, "change object metadata").await?;
    let draft = FieldDraft::read(&form);
    let mut definition = draft.definition();
    definition.retain(|_, value| !value.is_null());
    let outcome = match serde_json::from_value::<Field>(Value::Object(definition)) {
        Ok(field) => api::new_field(&app, &v.actor, &name, field).await,
        Err(_) => Err(not_a_type()),
    };
    match outcome {
        Ok(_) => Ok(Redirect::to(&format!("/admin/objects/{name}?done=1")).into_response()),
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => {
            object_page(&app, &v, &name, draft, &e.errors, false, e.status)
        }
        Err(e) => Err(v.fail(e)),
    }
}

/// `GET /admin/objects/{name}/fields/{field}`: the field's form, filled in.
pub async fn field(
    State(app): State<AppState>,
    v: Visitor,
    Path((name, field)): Path<(String, String)>,
) -> WebResult {
    require_admin(&app, &v, "change object metadata").await?;
    let schema = app.records.schema();
    let object = known(&v, schema.object(&name), &name)?;
    let stored = known(&v, object.field(&field), &field)?;
    field_page(&app, &v, &name, FieldDraft::of(stored), &[], StatusCode::OK)
}

fn field_page(
    app: &AppState,
    v: &Visitor,
    name: &str,
    draft: FieldDraft,
    errors: &[FieldError],
    status: StatusCode,
) -> WebResult {
    let tr = &v.tr;
    let schema = app.records.schema();
    let object = known(v, schema.object(name), name)?;
    let action = format!("/admin/objects/{name}/fields/{}", draft.name);
    let page = FieldPage {
        v,
        tr,
        name: object.name.clone(),
        label: tr.object(&object.name, &object.label_plural),
        form: field_form(app, tr, action, true, draft, errors),
    };
    Ok((status, render(&page)).into_response())
}

/// `POST /admin/objects/{name}/fields/{field}`: changes the field. A refusal about
/// the records (values that would no longer fit, duplicates under a unique field)
/// is shown above the form, with what was typed.
pub async fn change_field(
    State(app): State<AppState>,
    v: Visitor,
    Path((name, field)): Path<(String, String)>,
    form: FormData,
) -> WebResult {
    v.check_csrf(&form)?;
    require_admin(&app, &v, "change object metadata").await?;
    let mut draft = FieldDraft::read(&form);
    draft.name = field.clone();
    let outcome = if FieldType::ALL.iter().any(|t| t.api_name() == draft.kind) {
        api::change_field(&app, &v.actor, &name, &field, draft.definition()).await
    } else {
        Err(not_a_type())
    };
    match outcome {
        Ok(_) => Ok(Redirect::to(&format!("/admin/objects/{name}?done=1")).into_response()),
        Err(e)
            if matches!(
                e.status,
                StatusCode::UNPROCESSABLE_ENTITY | StatusCode::CONFLICT
            ) =>
        {
            let errors = refusals(&e, &field);
            field_page(&app, &v, &name, draft, &errors, e.status)
        }
        Err(e) => Err(v.fail(e)),
    }
}

/// `POST /admin/objects/{name}/fields/{field}/delete`: removes a field no record
/// holds a value for; else its page says how many do.
pub async fn remove_field(
    State(app): State<AppState>,
    v: Visitor,
    Path((name, field)): Path<(String, String)>,
    form: FormData,
) -> WebResult {
    v.check_csrf(&form)?;
    require_admin(&app, &v, "change object metadata").await?;
    match api::remove_field(&app, &v.actor, &name, &field).await {
        Ok(_) => Ok(Redirect::to(&format!("/admin/objects/{name}?done=1")).into_response()),
        Err(e) if e.status == StatusCode::CONFLICT => {
            let schema = app.records.schema();
            let object = known(&v, schema.object(&name), &name)?;
            let stored = known(&v, object.field(&field), &field)?;
            field_page(
                &app,
                &v,
                &name,
                FieldDraft::of(stored),
                &refusals(&e, &field),
                e.status,
            )
        }
        Err(e) => Err(v.fail(e)),
    }
}

/// A refusal's reasons for the form: each input's, or the whole refusal's under
/// the field's name.
fn refusals(e: &ApiError, field: &str) -> Vec<FieldError> {
    if e.errors.is_empty() {
        vec![FieldError::new(field, e.detail.clone())]
    } else {
        e.errors.clone()
    }
}
