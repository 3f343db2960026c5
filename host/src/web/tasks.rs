//! The process task inbox: the caller's open user tasks (its own, and those of its
//! roles and departments), claiming one, completing it with an outcome and the
//! values it asks for. The same process service and checks as `/api/v1/tasks`.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use serde_json::{Map, Value};

use super::i18n::Tr;
use super::{FormData, Visitor, WebResult, render};
use crate::api::AppState;
use crate::process::engine::CompleteInput;

pub struct TaskRow {
    pub id: String,
    pub name: String,
    pub process: String,
    pub due: String,
    pub claimed_by_me: bool,
    pub claimed_by_other: bool,
    /// Values completing it may set.
    pub fields: Vec<String>,
    /// Outcomes to choose from (free text when empty).
    pub outcomes: Vec<String>,
}

#[derive(Template)]
#[template(path = "web/tasks.html")]
struct InboxPage<'a> {
    v: &'a Visitor,
    tr: &'a Tr,
    tasks: Vec<TaskRow>,
    error: String,
}

/// `GET /tasks`.
pub async fn inbox(State(app): State<AppState>, v: Visitor) -> WebResult {
    inbox_page(&app, &v, StatusCode::OK, String::new()).await
}

async fn inbox_page(app: &AppState, v: &Visitor, status: StatusCode, error: String) -> WebResult {
    let (tasks, _) = app
        .processes
        .tasks(&v.actor, "open", None, 100)
        .await
        .map_err(|e| v.fail(e))?;
    let me = v.actor.user_id.as_str();
    let tasks = tasks
        .into_iter()
        .map(|t| TaskRow {
            claimed_by_me: t.claimed_by.as_deref() == Some(me),
            claimed_by_other: t.claimed_by.as_deref().is_some_and(|c| c != me),
            due: t
                .due_at
                .as_deref()
                .map(|d| v.tr.date(d))
                .unwrap_or_default(),
            id: t.id,
            name: t.name,
            process: t.process,
            fields: t.fields,
            outcomes: t.outcomes,
        })
        .collect();
    let page = render(&InboxPage {
        v,
        tr: &v.tr,
        tasks,
        error,
    });
    Ok((status, page).into_response())
}

/// `POST /tasks/{id}/claim` and `POST /tasks/{id}/complete` (outcome, and one
/// `var.<name>` per value the task asks for).
pub async fn act(
    State(app): State<AppState>,
    v: Visitor,
    Path((id, action)): Path<(String, String)>,
    form: FormData,
) -> WebResult {
    v.check_csrf(&form)?;
    let done = match action.as_str() {
        "claim" => app.processes.claim(&v.actor, &id).await,
        "complete" => {
            let variables: Map<String, Value> = form
                .0
                .iter()
                .filter_map(|(k, val)| {
                    let name = k.strip_prefix("var.")?;
                    Some((name.to_string(), Value::String(val.clone())))
                })
                .collect();
            let input = CompleteInput {
                outcome: form
                    .get("outcome")
                    .filter(|o| !o.is_empty())
                    .map(str::to_string),
                variables,
            };
            app.processes.complete(&v.actor, &id, input).await
        }
        _ => return Err(v.error(StatusCode::NOT_FOUND, v.tr.t("error-not-found"))),
    };
    match done {
        Ok(_) => Ok(Redirect::to("/tasks").into_response()),
        Err(e) if e.status == StatusCode::NOT_FOUND => Err(v.fail(e)),
        Err(e) => {
            let status = e.status;
            inbox_page(&app, &v, status, v.fail(e).message).await
        }
    }
}
