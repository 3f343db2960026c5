//! The caller's notifications (newest first, unread marked, each linking to its
//! record; all marked read in one click) and the feed of what changed in the records
//! they own. The same functions as `/api/v1/notifications` and `/api/v1/feed`.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect};

use super::i18n::Tr;
use super::{FormData, Visitor, WebResult, render};
use crate::api::AppState;
use crate::api::error::ApiError;
use crate::records::service::FeedQuery;

pub struct NoteRow {
    pub title: String,
    pub body: String,
    pub when: String,
    pub href: String,
    pub unread: bool,
}

pub struct ChangeRow {
    pub who: String,
    pub what: String,
    pub title: String,
    pub href: String,
    pub fields: String,
    pub when: String,
}

#[derive(Template)]
#[template(path = "web/notifications.html")]
struct NotificationsPage<'a> {
    v: &'a Visitor,
    tr: &'a Tr,
    notes: Vec<NoteRow>,
    changes: Vec<ChangeRow>,
}

/// `GET /notifications`.
pub async fn page(State(app): State<AppState>, v: Visitor) -> WebResult {
    let tr = &v.tr;
    let notes = crate::notifications::list(&app.db, &v.actor.user_id, false, None, 50)
        .await
        .map_err(|e| v.fail(ApiError::from(e)))?
        .into_iter()
        .map(|n| NoteRow {
            unread: n.read_at.is_none(),
            when: tr.date(&n.created_at),
            href: n.link.unwrap_or_default(),
            title: n.title,
            body: n.body,
        })
        .collect();
    let (items, _) = crate::feed::items(
        &app,
        &v.actor,
        &FeedQuery {
            mine: true,
            by: None,
            object: None,
            before: None,
            limit: 30,
        },
    )
    .await
    .map_err(|e| v.fail(e))?;
    let changes = items
        .into_iter()
        .map(|i| ChangeRow {
            who: i.actor_name.unwrap_or_else(|| tr.t("feed-someone")),
            what: tr.t(&format!("feed-{}", i.action.as_str())),
            title: i.record_title,
            href: i.link,
            fields: i.changes.keys().cloned().collect::<Vec<_>>().join(", "),
            when: tr.date(&i.at),
        })
        .collect();
    Ok(render(&NotificationsPage {
        v: &v,
        tr,
        notes,
        changes,
    }))
}

/// `POST /notifications/read-all`.
pub async fn read_all(State(app): State<AppState>, v: Visitor, form: FormData) -> WebResult {
    v.check_csrf(&form)?;
    crate::notifications::mark_read(&app.db, &v.actor.user_id, None)
        .await
        .map_err(|e| v.fail(ApiError::from(e)))?;
    Ok(Redirect::to("/notifications").into_response())
}
