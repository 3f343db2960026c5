//! The sharing box of record and document pages: whom the thing is shared with,
//! and (for its owner or an admin over it) a form to share it with a user or a
//! department and to stop a share. Pages say where the forms post (`action`).

use crate::access::ShareAccess;
use crate::access::shares::{Share, ShareInput};
use crate::api::AppState;
use crate::api::error::ApiError;

use super::{FormData, Visitor};

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
        .map(|u| (u.id, format!("{} <{}>", u.name, u.email)))
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
                (None, Some(d)) => format!(
                    "{} ({})",
                    name_of(&departments, d),
                    v.tr.t("admin-department")
                ),
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
        users,
        departments,
        action,
    })
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
