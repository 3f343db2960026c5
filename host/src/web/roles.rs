//! The role editor of the admin console: a role's rights as a matrix of objects and
//! actions (each cell a scope: own records, the department's, the department and
//! those below it, every record) and, per object, the rights on each field (hidden,
//! read, write). Saving goes through the same functions as `/api/v1/roles`, so the
//! page cannot grant what the API would refuse; every refused part is shown beside
//! its cell. Built-in roles are shown, not changed.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};

use super::i18n::Tr;
use super::{Choice, FormData, Visitor, WebResult, beside, render, require_admin};
use crate::access::roles::{FieldRules, Permissions, RoleInput};
use crate::access::routes as api;
use crate::access::{Action, FieldAccess, Scope};
use crate::api::AppState;
use crate::api::error::{ApiError, FieldError};
use crate::records::schema::Schema;

/// The object rights a role can hold per object (`admin` is the `org` row's).
const OBJECT_ACTIONS: [Action; 5] = [
    Action::Read,
    Action::Create,
    Action::Update,
    Action::Delete,
    Action::Export,
];

/// One object's row of the matrix, and its field rights.
pub struct ObjectRights {
    pub object: String,
    pub label: String,
    /// One select per action of [`OBJECT_ACTIONS`].
    pub cells: Vec<Cell>,
    pub error: Option<String>,
    pub fields: Vec<FieldRight>,
    /// Field rights shown unfolded: the role sets some, or one was refused.
    pub open: bool,
}

pub struct Cell {
    /// The form input: `p:{object}:{action}`.
    pub input: String,
    pub action: String,
    pub options: Vec<Choice>,
}

pub struct FieldRight {
    /// The form input: `f:{object}:{field}`.
    pub input: String,
    pub label: String,
    pub options: Vec<Choice>,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "web/admin_role.html")]
struct RolePage<'a> {
    v: &'a Visitor,
    tr: &'a Tr,
    /// None for a new role.
    name: Option<String>,
    builtin: bool,
    /// The name typed for a new role.
    new_name: String,
    label: String,
    description: String,
    org: Vec<Choice>,
    objects: Vec<ObjectRights>,
    /// Every refusal, also shown beside its input.
    errors: Vec<String>,
    name_error: Option<String>,
    label_error: Option<String>,
    org_error: Option<String>,
    saved: bool,
}

/// `GET /admin/roles/new`.
pub async fn new_role(State(app): State<AppState>, v: Visitor) -> WebResult {
    require_admin(&app, &v, "manage users and roles").await?;
    let draft = RoleInput::default();
    role_page(&app, &v, None, false, &draft, &[], false, StatusCode::OK)
}

/// `GET /admin/roles/{name}`.
pub async fn role(
    State(app): State<AppState>,
    v: Visitor,
    Path(name): Path<String>,
    axum::extract::Query(q): axum::extract::Query<super::admin::Done>,
) -> WebResult {
    require_admin(&app, &v, "manage users and roles").await?;
    let role = app.access.get_role(&name).await.map_err(|e| v.fail(e))?;
    let draft = RoleInput {
        name: Some(role.name.clone()),
        label: role.label,
        description: role.description,
        permissions: role.permissions,
        fields: role.fields,
    };
    let saved = q.done.is_some();
    role_page(
        &app,
        &v,
        Some(name),
        role.builtin,
        &draft,
        &[],
        saved,
        StatusCode::OK,
    )
}

/// `POST /admin/roles`: defines a role, then shows it.
pub async fn create(State(app): State<AppState>, v: Visitor, form: FormData) -> WebResult {
    save(&app, &v, None, &form).await
}

/// `POST /admin/roles/{name}`: replaces the role's label, description and rights.
pub async fn update(
    State(app): State<AppState>,
    v: Visitor,
    Path(name): Path<String>,
    form: FormData,
) -> WebResult {
    save(&app, &v, Some(name), &form).await
}

/// Defines a role (`existing` is None) or replaces an existing one's rules, then
/// shows it; refused, the form comes back as sent with each refusal beside its input.
async fn save(app: &AppState, v: &Visitor, existing: Option<String>, form: &FormData) -> WebResult {
    v.check_csrf(form)?;
    require_admin(app, v, "manage users and roles").await?;
    let Draft { mut input, refused } = read_form(form);
    if let Some(name) = &existing {
        input.name = Some(name.clone());
    }
    let outcome = match (&existing, refused.is_empty()) {
        (_, false) => Err(refusal(app, refused, &input)),
        (None, true) => api::define_role(app, &v.actor, input.clone()).await,
        (Some(name), true) => api::change_role(app, &v.actor, name, input.clone()).await,
    };
    match outcome {
        Ok(role) => Ok(Redirect::to(&format!("/admin/roles/{}?done=1", role.name)).into_response()),
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => {
            role_page(app, v, existing, false, &input, &e.errors, false, e.status)
        }
        Err(e) => Err(v.fail(e)),
    }
}

/// `POST /admin/roles/{name}/delete`: removes a role nobody holds.
pub async fn delete(
    State(app): State<AppState>,
    v: Visitor,
    Path(name): Path<String>,
    form: FormData,
) -> WebResult {
    v.check_csrf(&form)?;
    api::remove_role(&app, &v.actor, &name)
        .await
        .map_err(|e| v.fail(e))?;
    Ok(Redirect::to("/admin/people?done=1").into_response())
}

/// A role as the form sent it, and the values no select offers (a forged form).
struct Draft {
    input: RoleInput,
    refused: Vec<FieldError>,
}

/// Reads `name`, `label`, `description`, `org` (the admin scope), `p:{object}:{action}`
/// scopes and `f:{object}:{field}` field rights; an empty select grants nothing.
fn read_form(form: &FormData) -> Draft {
    let mut permissions = Permissions::new();
    let mut fields = FieldRules::new();
    let mut refused = Vec::new();
    for (key, value) in &form.0 {
        if value.is_empty() {
            continue;
        }
        if key == "org" {
            match parse_scope(value) {
                Some(scope) => {
                    permissions
                        .entry("org".into())
                        .or_default()
                        .insert(Action::Admin, scope);
                }
                None => refused.push(FieldError::new("permissions.org", "is not a scope")),
            }
        } else if let Some(rest) = key.strip_prefix("p:") {
            let (object, action) = rest.rsplit_once(':').unwrap_or((rest, ""));
            let action = OBJECT_ACTIONS.into_iter().find(|a| a.as_str() == action);
            match (action, parse_scope(value)) {
                (Some(action), Some(scope)) => {
                    permissions
                        .entry(object.to_string())
                        .or_default()
                        .insert(action, scope);
                }
                _ => refused.push(FieldError::new(
                    format!("permissions.{object}"),
                    "is not an action and scope",
                )),
            }
        } else if let Some(rest) = key.strip_prefix("f:") {
            let (object, field) = rest.split_once(':').unwrap_or((rest, ""));
            match FieldAccess::ALL.into_iter().find(|a| a.as_str() == value) {
                Some(access) => {
                    fields
                        .entry(object.to_string())
                        .or_default()
                        .insert(field.to_string(), access);
                }
                None => refused.push(FieldError::new(
                    format!("fields.{object}.{field}"),
                    "is not hidden, read or write",
                )),
            }
        }
    }
    let text = |k: &str| form.get(k).unwrap_or_default().trim().to_string();
    Draft {
        input: RoleInput {
            name: Some(text("name")),
            label: text("label"),
            description: text("description"),
            permissions,
            fields,
        },
        refused,
    }
}

fn parse_scope(value: &str) -> Option<Scope> {
    Scope::ALL.into_iter().find(|s| s.as_str() == value)
}

/// A form with values no select offers: those, and every other problem the API
/// would find, at once.
fn refusal(app: &AppState, mut errors: Vec<FieldError>, input: &RoleInput) -> ApiError {
    let name = input.name.as_deref().unwrap_or_default();
    if let Err(e) = input.validate(&app.records.schema(), name) {
        errors.extend(e.errors);
    }
    ApiError::invalid(format!("{} problem(s) with the role", errors.len()), errors)
}

#[allow(clippy::too_many_arguments)]
fn role_page(
    app: &AppState,
    v: &Visitor,
    name: Option<String>,
    builtin: bool,
    draft: &RoleInput,
    errors: &[FieldError],
    saved: bool,
    status: StatusCode,
) -> WebResult {
    let tr = &v.tr;
    let schema = app.records.schema();
    let scope_choices = |chosen: Option<Scope>, offered: &[Scope]| {
        let mut choices = vec![Choice {
            value: String::new(),
            label: "—".into(),
            selected: chosen.is_none(),
        }];
        choices.extend(offered.iter().map(|s| Choice {
            value: s.as_str().into(),
            label: tr.t(&format!("scope-{}", s.as_str())),
            selected: chosen == Some(*s),
        }));
        choices
    };
    let org_scope = draft
        .permissions
        .get("org")
        .and_then(|a| a.get(&Action::Admin))
        .copied();
    let page = RolePage {
        v,
        tr,
        builtin,
        new_name: draft.name.clone().unwrap_or_default(),
        label: draft.label.clone(),
        description: draft.description.clone(),
        org: scope_choices(org_scope, &[Scope::Subtree, Scope::All]),
        objects: rights_rows(tr, &schema, draft, errors, &|chosen| {
            scope_choices(chosen, &Scope::ALL)
        }),
        errors: super::listed(errors),
        name_error: beside(errors, "name"),
        label_error: beside(errors, "label"),
        org_error: beside(errors, "permissions.org"),
        saved,
        name,
    };
    Ok((status, render(&page)).into_response())
}

/// The matrix: `*` (every object) first, then each object by its label; an object
/// only the draft names (a forged or since removed one) is kept, to show its error.
fn rights_rows(
    tr: &Tr,
    schema: &Schema,
    draft: &RoleInput,
    errors: &[FieldError],
    scopes: &dyn Fn(Option<Scope>) -> Vec<Choice>,
) -> Vec<ObjectRights> {
    let mut objects: Vec<(String, String)> = schema
        .objects
        .values()
        .map(|o| (o.name.clone(), tr.object(&o.name, &o.label_plural)))
        .collect();
    objects.sort_by(|a, b| a.1.cmp(&b.1));
    objects.insert(0, ("*".into(), tr.t("role-every-object")));
    for object in draft.permissions.keys().chain(draft.fields.keys()) {
        if object != "org" && !objects.iter().any(|(o, _)| o == object) {
            objects.push((object.clone(), object.clone()));
        }
    }
    let none = BTreeMap::new();
    objects
        .into_iter()
        .map(|(object, label)| {
            let granted = draft.permissions.get(&object).unwrap_or(&none);
            let cells = OBJECT_ACTIONS
                .iter()
                .map(|a| Cell {
                    input: format!("p:{object}:{}", a.as_str()),
                    action: tr.t(&format!("role-action-{}", a.as_str())),
                    options: scopes(granted.get(a).copied()),
                })
                .collect();
            let set = draft.fields.get(&object);
            let mut fields: Vec<FieldRight> = schema
                .object(&object)
                .map(|o| {
                    o.fields
                        .iter()
                        .map(|f| {
                            let chosen = set.and_then(|s| s.get(&f.name)).copied();
                            field_right(
                                tr,
                                &object,
                                &f.name,
                                tr.field(&object, &f.name, &f.label),
                                chosen,
                                errors,
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            // Rules on fields the object no longer has, to show why they are refused.
            for (field, access) in set.into_iter().flatten() {
                if !fields
                    .iter()
                    .any(|f| f.input == format!("f:{object}:{field}"))
                {
                    fields.push(field_right(
                        tr,
                        &object,
                        field,
                        field.clone(),
                        Some(*access),
                        errors,
                    ));
                }
            }
            let field_error = fields.iter().any(|f| f.error.is_some());
            ObjectRights {
                error: beside(errors, &format!("permissions.{object}"))
                    .or_else(|| beside(errors, &format!("fields.{object}"))),
                open: set.is_some_and(|s| !s.is_empty()) || field_error,
                object,
                label,
                cells,
                fields,
            }
        })
        .collect()
}

fn field_right(
    tr: &Tr,
    object: &str,
    field: &str,
    label: String,
    chosen: Option<FieldAccess>,
    errors: &[FieldError],
) -> FieldRight {
    let mut options = vec![Choice {
        value: String::new(),
        label: tr.t("role-field-as-object"),
        selected: chosen.is_none(),
    }];
    options.extend(FieldAccess::ALL.into_iter().map(|a| Choice {
        value: a.as_str().into(),
        label: tr.t(&format!("role-field-{}", a.as_str())),
        selected: chosen == Some(a),
    }));
    FieldRight {
        input: format!("f:{object}:{field}"),
        label,
        options,
        error: beside(errors, &format!("fields.{object}.{field}")),
    }
}
