//! The admin console: plugins (upload, review what they ask for, approve, enable
//! and disable per department, resume a suspended one) and the users and
//! departments of the organisation. Every action goes through the same services
//! and admin checks as the REST API.

use askama::Template;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;

use super::i18n::Tr;
use super::{FormData, Visitor, WebResult, render};
use crate::api::AppState;
use crate::plugins::PluginInfo;

pub struct DepartmentChoice {
    pub id: String,
    pub name: String,
}

pub struct PluginRow {
    pub id: String,
    pub name: String,
    pub version: String,
    pub description: String,
    pub approved: bool,
    pub suspended: Option<String>,
    /// What it asks for, one line each (capabilities, hooks, fields, pages).
    pub asks: Vec<String>,
    /// Departments it is enabled in.
    pub enabled: Vec<DepartmentChoice>,
    /// Departments it could be enabled in.
    pub others: Vec<DepartmentChoice>,
    /// Changes its after-save hook refused every time, oldest first.
    pub dead_letters: Vec<DeadLetterRow>,
}

pub struct DeadLetterRow {
    pub id: String,
    pub event: i64,
    pub attempts: i64,
    pub error: String,
    pub when: String,
}

#[derive(Template)]
#[template(path = "web/admin_plugins.html")]
struct PluginsPage<'a> {
    v: &'a Visitor,
    tr: &'a Tr,
    plugins: Vec<PluginRow>,
    error: String,
    done: String,
}

/// What a plugin asks to be allowed, as an admin reviews it before approving.
fn asks(info: &PluginInfo) -> Vec<String> {
    let m = &info.manifest;
    let c = &m.capabilities;
    let mut lines = Vec::new();
    let list = |v: &[String]| v.join(", ");
    if !c.read.is_empty() {
        lines.push(format!("read records: {}", list(&c.read)));
    }
    if !c.write.is_empty() {
        lines.push(format!("create and change records: {}", list(&c.write)));
    }
    if !c.assign.is_empty() {
        lines.push(format!("assign owners: {}", list(&c.assign)));
    }
    for (on, what) in [
        (c.kv, "its own key-value storage"),
        (c.notify, "notify users"),
        (c.jobs, "scheduled jobs"),
        (c.documents, "read documents"),
        (c.routes, "HTTP routes for signed-in users"),
    ] {
        if on {
            lines.push(what.to_string());
        }
    }
    if !c.public_routes.is_empty() {
        lines.push(format!("public routes: {}", list(&c.public_routes)));
    }
    if !m.hooks.before_save.is_empty() {
        lines.push(format!("check saves of: {}", list(&m.hooks.before_save)));
    }
    if !m.hooks.after_save.is_empty() {
        lines.push(format!("follow changes of: {}", list(&m.hooks.after_save)));
    }
    for (object, fields) in &m.fields {
        let names: Vec<String> = fields.iter().map(|f| f.name.clone()).collect();
        lines.push(format!("add fields to {object}: {}", list(&names)));
    }
    for object in &m.objects {
        lines.push(format!("create the object {}", object.name));
    }
    for entry in &m.menu {
        lines.push(format!("a page in the menu: {}", entry.label));
    }
    lines
}

#[derive(Deserialize)]
pub struct Done {
    pub done: Option<String>,
}

async fn plugins_page(
    app: &AppState,
    v: &Visitor,
    status: StatusCode,
    error: String,
    done: String,
) -> WebResult {
    super::require_admin(app, v, "manage plugins").await?;
    let departments = app.access.list_departments().await.map_err(|e| v.fail(e))?;
    let mut plugins = Vec::new();
    for info in app.plugins.list() {
        let (enabled, others) = departments
            .iter()
            .map(|d| DepartmentChoice {
                id: d.id.clone(),
                name: d.name.clone(),
            })
            .partition(|d| info.departments.contains(&d.id));
        let dead_letters = app
            .deliverer
            .dead_letters(&info.id)
            .await
            .map_err(|e| v.fail(e))?
            .into_iter()
            .map(|d| DeadLetterRow {
                when: v.tr.date(&d.updated_at),
                id: d.id,
                event: d.event_seq,
                attempts: d.attempts,
                error: d.error,
            })
            .collect();
        plugins.push(PluginRow {
            asks: asks(&info),
            id: info.id,
            name: info.name,
            version: info.version,
            description: info.description,
            approved: info.approved,
            suspended: info.suspended,
            enabled,
            others,
            dead_letters,
        });
    }
    let page = render(&PluginsPage {
        v,
        tr: &v.tr,
        plugins,
        error,
        done,
    });
    Ok((status, page).into_response())
}

/// `GET /admin/plugins`.
pub async fn plugins(State(app): State<AppState>, v: Visitor, Query(q): Query<Done>) -> WebResult {
    let done = q
        .done
        .map(|d| v.tr.t1("admin-done", "plugin", &d))
        .unwrap_or_default();
    plugins_page(&app, &v, StatusCode::OK, String::new(), done).await
}

/// `POST /admin/plugins`: uploads a package (multipart, field `package`, with
/// `_csrf` before it). A refusal comes back on the page with every reason.
pub async fn upload(State(app): State<AppState>, v: Visitor, mut form: Multipart) -> WebResult {
    // Before reading a byte of the package: only admins may make the host hold one.
    super::require_admin(&app, &v, "install plugins").await?;
    let mut csrf = None;
    let mut package = None;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| v.error(StatusCode::BAD_REQUEST, e.body_text()))?
    {
        match field.name() {
            Some("_csrf") => csrf = field.text().await.ok(),
            Some("package") => {
                package = Some(
                    field
                        .bytes()
                        .await
                        .map_err(|e| v.error(e.status(), e.body_text()))?,
                )
            }
            _ => {}
        }
    }
    v.check_csrf_token(csrf.as_deref().unwrap_or_default())?;
    let package = package
        .filter(|p| !p.is_empty())
        .ok_or_else(|| v.error(StatusCode::UNPROCESSABLE_ENTITY, v.tr.t("admin-no-package")))?;
    match app.plugins.install(&package).await {
        Ok(info) => Ok(Redirect::to(&format!("/admin/plugins?done={}", info.id)).into_response()),
        Err(e) => {
            let status = e.status;
            plugins_page(&app, &v, status, e.described(), String::new()).await
        }
    }
}

/// `POST /admin/plugins/{id}/{action}`: approve, enable, disable or resume; enable
/// and disable take `department`.
pub async fn act(
    State(app): State<AppState>,
    v: Visitor,
    Path((id, action)): Path<(String, String)>,
    form: FormData,
) -> WebResult {
    v.check_csrf(&form)?;
    let department = form.get("department").unwrap_or_default();
    let (dept, what) = match action.as_str() {
        "approve" => (None, "approve plugins"),
        "resume" => (None, "resume plugins"),
        "enable" => (Some(department), "enable plugins in this department"),
        "disable" => (Some(department), "disable plugins in this department"),
        _ => return Err(v.error(StatusCode::NOT_FOUND, v.tr.t("error-not-found"))),
    };
    app.access
        .require_admin(&v.actor, dept, what)
        .await
        .map_err(|e| v.fail(e))?;
    let outcome = match action.as_str() {
        "approve" => app.plugins.approve(&id).await,
        "resume" => app.plugins.resume(&id).await,
        "enable" => app.plugins.enable(&id, department).await,
        _ => app.plugins.disable(&id, department).await,
    };
    match outcome {
        Ok(info) => Ok(Redirect::to(&format!("/admin/plugins?done={}", info.id)).into_response()),
        Err(e) => {
            let status = e.status;
            plugins_page(&app, &v, status, e.described(), String::new()).await
        }
    }
}

pub struct UserRow {
    pub id: String,
    /// The visitor: no deactivate button on their own row.
    pub me: bool,
    pub name: String,
    pub email: String,
    pub active: bool,
    /// "department: role" per membership.
    pub memberships: Vec<String>,
}

pub struct RoleRow {
    pub name: String,
    pub label: String,
    /// One cell per object of the matrix: "read: department, update: own".
    pub cells: Vec<String>,
    /// "deals.amount: read" per field rule.
    pub fields: Vec<String>,
}

#[derive(Template)]
#[template(path = "web/admin_people.html")]
struct PeoplePage<'a> {
    v: &'a Visitor,
    tr: &'a Tr,
    users: Vec<UserRow>,
    departments: Vec<(String, String)>,
    roles: Vec<(String, String)>,
    matrix_objects: Vec<String>,
    matrix: Vec<RoleRow>,
    error: String,
    done: bool,
}

/// `GET /admin/people`: users with their memberships, departments, and the roles
/// as a matrix of objects and rights.
pub async fn people(State(app): State<AppState>, v: Visitor, Query(q): Query<Done>) -> WebResult {
    people_page(&app, &v, StatusCode::OK, String::new(), q.done.is_some()).await
}

async fn people_page(
    app: &AppState,
    v: &Visitor,
    status: StatusCode,
    error: String,
    done: bool,
) -> WebResult {
    super::require_admin(app, v, "manage users and roles").await?;
    let departments = app.access.list_departments().await.map_err(|e| v.fail(e))?;
    let dept_name = |id: &str| {
        departments
            .iter()
            .find(|d| d.id == id)
            .map(|d| d.name.clone())
            .unwrap_or_else(|| id.to_string())
    };
    let mut users = Vec::new();
    for u in app.auth.list_users().await.map_err(|e| v.fail(e))? {
        let memberships = app
            .access
            .memberships_of_user(&u.id)
            .await
            .map_err(|e| v.fail(e))?
            .into_iter()
            .map(|m| format!("{}: {}", dept_name(&m.department), m.role))
            .collect();
        users.push(UserRow {
            me: u.id == v.actor.user_id,
            id: u.id,
            name: u.name,
            email: u.email,
            active: u.active,
            memberships,
        });
    }
    let roles = app.access.list_roles().await.map_err(|e| v.fail(e))?;
    let mut matrix_objects: Vec<String> = roles
        .iter()
        .flat_map(|r| r.permissions.keys().cloned())
        .collect();
    matrix_objects.sort();
    matrix_objects.dedup();
    let matrix = roles
        .iter()
        .map(|r| RoleRow {
            name: r.name.clone(),
            label: r.label.clone(),
            cells: matrix_objects
                .iter()
                .map(|o| {
                    r.permissions
                        .get(o)
                        .map(|actions| {
                            actions
                                .iter()
                                .map(|(a, s)| format!("{}: {}", a.as_str(), s.as_str()))
                                .collect::<Vec<_>>()
                                .join(", ")
                        })
                        .unwrap_or_default()
                })
                .collect(),
            fields: r
                .fields
                .iter()
                .flat_map(|(object, fields)| {
                    fields
                        .iter()
                        .map(move |(f, access)| format!("{object}.{f}: {}", access.as_str()))
                })
                .collect(),
        })
        .collect();
    let page = render(&PeoplePage {
        v,
        tr: &v.tr,
        users,
        departments: departments
            .iter()
            .map(|d| (d.id.clone(), d.name.clone()))
            .collect(),
        roles: roles
            .iter()
            .map(|r| (r.name.clone(), r.label.clone()))
            .collect(),
        matrix_objects,
        matrix,
        error,
        done,
    });
    Ok((status, page).into_response())
}

/// `POST /admin/users`: a new user with a department and role.
pub async fn add_user(State(app): State<AppState>, v: Visitor, form: FormData) -> WebResult {
    v.check_csrf(&form)?;
    let field = |k: &str| form.get(k).unwrap_or_default().trim().to_string();
    let input = crate::auth::routes::NewUser {
        email: field("email"),
        name: field("name"),
        password: form.get("password").unwrap_or_default().to_string(),
        is_admin: false,
        department: Some(field("department")),
        role: Some(field("role")).filter(|r| !r.is_empty()),
    };
    match crate::auth::routes::add_user(&app, &v.actor, &input).await {
        Ok(_) => Ok(Redirect::to("/admin/people?done=1").into_response()),
        Err(e) if e.status == StatusCode::FORBIDDEN => Err(v.fail(e)),
        Err(e) => {
            let status = e.status;
            people_page(&app, &v, status, e.described(), false).await
        }
    }
}

/// `POST /admin/departments`: a new department under `parent`.
pub async fn add_department(State(app): State<AppState>, v: Visitor, form: FormData) -> WebResult {
    v.check_csrf(&form)?;
    let parent = form
        .get("parent")
        .filter(|p| !p.is_empty())
        .unwrap_or(crate::access::ROOT_DEPARTMENT)
        .to_string();
    app.access
        .require_admin(&v.actor, Some(&parent), "create departments there")
        .await
        .map_err(|e| v.fail(e))?;
    let input = crate::access::departments::DepartmentInput {
        name: form.get("name").unwrap_or_default().trim().to_string(),
        parent: Some(parent),
    };
    match app.access.create_department(input).await {
        Ok(_) => Ok(Redirect::to("/admin/people?done=1").into_response()),
        Err(e) => {
            let status = e.status;
            people_page(&app, &v, status, e.described(), false).await
        }
    }
}

/// `POST /admin/plugins/{id}/dead-letters/{letter}/replay`: the change goes to the
/// plugin's after-save hook once more; if it is refused again, the page says why.
pub async fn replay_dead_letter(
    State(app): State<AppState>,
    v: Visitor,
    Path((id, letter)): Path<(String, String)>,
    form: FormData,
) -> WebResult {
    v.check_csrf(&form)?;
    app.access
        .require_admin(&v.actor, None, "replay plugin dead letters")
        .await
        .map_err(|e| v.fail(e))?;
    let replay = app
        .deliverer
        .replay(&id, &letter)
        .await
        .map_err(|e| v.fail(e))?;
    match replay.error {
        None => Ok(Redirect::to(&format!("/admin/plugins?done={id}")).into_response()),
        Some(error) => {
            let message = v.tr.t1("admin-failed-again", "error", &error);
            plugins_page(&app, &v, StatusCode::OK, message, String::new()).await
        }
    }
}

/// `POST /admin/users/{id}/{activate|deactivate}`.
pub async fn set_active(
    State(app): State<AppState>,
    v: Visitor,
    Path((id, action)): Path<(String, String)>,
    form: FormData,
) -> WebResult {
    v.check_csrf(&form)?;
    let active = match action.as_str() {
        "activate" => true,
        "deactivate" => false,
        _ => return Err(v.error(StatusCode::NOT_FOUND, v.tr.t("error-not-found"))),
    };
    match crate::auth::routes::set_active(&app, &v.actor, &id, active).await {
        Ok(_) => Ok(Redirect::to("/admin/people?done=1").into_response()),
        Err(e) if e.status == StatusCode::CONFLICT => {
            let status = e.status;
            people_page(&app, &v, status, e.described(), false).await
        }
        Err(e) => Err(v.fail(e)),
    }
}
