//! The sharing box of record and document pages: whom the thing is shared with,
//! and (for its owner or an admin over it) a form to share it with a user or a
//! department and to stop a share. Pages say where the forms post (`action`).

use axum::extract::{RawQuery, State};

use crate::access::ShareAccess;
use crate::access::shares::{Share, ShareInput};
use crate::api::AppState;
use crate::api::error::ApiError;

use super::records::ChoicesFragment;
use super::{Choice, FormData, Visitor, WebResult, render};

/// Users (and departments) a share form's select holds; the search finds the rest.
const SHARE_CHOICES: usize = 200;
/// Matches the search answers, of each kind.
const SEARCH_CHOICES: usize = 50;

/// Whom something is shared with, and what the visitor may share it with.
pub struct Sharing {
    pub shares: Vec<ShareRow>,
    /// The owner or an admin over it: may share and stop sharing.
    pub can_share: bool,
    pub users: Vec<(String, String)>,
    pub departments: Vec<(String, String)>,
    /// Where the share form posts; a share is stopped at `{action}/{share}/delete`.
    pub action: String,
}

pub struct ShareRow {
    pub id: String,
    pub with: String,
    pub access: String,
}

/// The shares as the page shows them, with the people and departments to share
/// with when the visitor may share.
pub async fn sharing(
    app: &AppState,
    v: &Visitor,
    shares: Vec<Share>,
    can_share: bool,
    action: String,
) -> Result<Sharing, ApiError> {
    if shares.is_empty() && !can_share {
        return Ok(Sharing {
            shares: Vec::new(),
            can_share,
            users: Vec::new(),
            departments: Vec::new(),
            action,
        });
    }
    let users: Vec<(String, String)> = app
        .auth
        .list_users()
        .await?
        .into_iter()
        .filter(|u| u.active)
        .map(|u| {
            let label = user_label(&u);
            (u.id, label)
        })
        .collect();
    let departments: Vec<(String, String)> = app
        .access
        .list_departments()
        .await?
        .into_iter()
        .map(|d| (d.id, d.name))
        .collect();
    let name_of = |list: &[(String, String)], id: &str| {
        list.iter()
            .find(|(i, _)| i == id)
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| id.to_string())
    };
    let shares = shares
        .into_iter()
        .map(|s| ShareRow {
            with: match (&s.user, &s.department) {
                (Some(u), _) => name_of(&users, u),
                (None, Some(d)) => department_label(v, &name_of(&departments, d)),
                (None, None) => String::new(),
            },
            access: v.tr.t(match s.access {
                ShareAccess::Read => "share-read",
                ShareAccess::Write => "share-write",
            }),
            id: s.id,
        })
        .collect();
    Ok(Sharing {
        shares,
        can_share,
        users: users.into_iter().take(SHARE_CHOICES).collect(),
        departments: departments.into_iter().take(SHARE_CHOICES).collect(),
        action,
    })
}

/// `GET /sharing/choices?q=`: the active users (by name or email) and departments
/// (by name) holding `q`, as `<option>`s for a share form's select.
pub async fn choices(
    State(app): State<AppState>,
    v: Visitor,
    RawQuery(query): RawQuery,
) -> WebResult {
    let q = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "q")
        .map(|(_, q)| q.trim().to_lowercase())
        .unwrap_or_default();
    let holds = |text: &str| text.to_lowercase().contains(&q);
    let users = app
        .auth
        .list_users()
        .await
        .map_err(|e| v.fail(ApiError::from(e)))?;
    let departments = app.access.list_departments().await.map_err(|e| v.fail(e))?;
    let mut choices: Vec<Choice> = users
        .into_iter()
        .filter(|u| u.active && (holds(&u.name) || holds(&u.email)))
        .take(SEARCH_CHOICES)
        .map(|u| Choice {
            value: format!("user:{}", u.id),
            label: user_label(&u),
            selected: false,
        })
        .collect();
    choices.extend(
        departments
            .into_iter()
            .filter(|d| holds(&d.name))
            .take(SEARCH_CHOICES)
            .map(|d| Choice {
                value: format!("department:{}", d.id),
                label: department_label(&v, &d.name),
                selected: false,
            }),
    );
    Ok(render(&ChoicesFragment { choices }))
}

/// A user as share forms and lists name them.
fn user_label(user: &crate::auth::User) -> String {
    format!("{} <{}>", user.name, user.email)
}

/// A department where people and departments are listed together.
fn department_label(v: &Visitor, name: &str) -> String {
    format!("{name} ({})", v.tr.t("admin-department"))
}

/// The share form as the service takes it: `with` is `user:{id}` or
/// `department:{id}`, `access` read (default) or write.
pub fn share_input(form: &FormData) -> ShareInput {
    let access = match form.get("access") {
        Some("write") => ShareAccess::Write,
        _ => ShareAccess::Read,
    };
    let (user, department) = match form.get("with").unwrap_or_default().split_once(':') {
        Some(("user", u)) => (Some(u.to_string()), None),
        Some(("department", d)) => (None, Some(d.to_string())),
        // Neither: the service refuses it with its reason.
        _ => (None, None),
    };
    ShareInput {
        user,
        department,
        access,
    }
}
