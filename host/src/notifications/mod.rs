//! Notifications stored for users: plugins send them (the `notify` interface), the
//! host sends its own (a plugin switched off after failing), and each user reads only
//! their own through `/api/v1/notifications`.

pub mod routes;
mod rules;

pub use rules::Notifier;

use serde::Serialize;
use sqlx::{AssertSqlSafe, Row};
use utoipa::ToSchema;

use crate::db::{self, Db};

pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_BODY_CHARS: usize = 2_000;

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Notification {
    pub id: String,
    /// `plugin:<id>` or `system`.
    pub source: String,
    pub title: String,
    pub body: String,
    pub created_at: String,
    /// When the user marked it read; `null` while unread.
    pub read_at: Option<String>,
    /// The page of the record it is about (`/records/deals/<id>`), if any.
    pub link: Option<String>,
    /// Its email copy: `pending`, `sending`, `sent`, `failed`, or `null` (none: SMTP
    /// not configured, email turned off, or not a notification that is emailed).
    pub email: Option<String>,
}

/// Why a notification was not stored.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("there is no active user '{0}'")]
    NoSuchUser(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Stores a notification for an active user.
pub async fn send(
    db: &Db,
    user: &str,
    source: &str,
    title: &str,
    body: &str,
) -> Result<Notification, SendError> {
    if title.trim().is_empty() || title.chars().count() > MAX_TITLE_CHARS {
        return Err(SendError::Invalid(format!(
            "a title is 1 to {MAX_TITLE_CHARS} characters"
        )));
    }
    if body.chars().count() > MAX_BODY_CHARS {
        return Err(SendError::Invalid(format!(
            "a body is at most {MAX_BODY_CHARS} characters"
        )));
    }
    let active: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM users WHERE id = $1 AND active = 1")
            .bind(user)
            .fetch_optional(&db.pool)
            .await?;
    if active.is_none() {
        return Err(SendError::NoSuchUser(user.to_string()));
    }
    let n = Notification {
        id: db::new_id(),
        source: source.to_string(),
        title: title.to_string(),
        body: body.to_string(),
        created_at: db::now(),
        read_at: None,
        link: None,
        email: None,
    };
    sqlx::query(
        "INSERT INTO notifications (id, user_id, source, title, body, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&n.id)
    .bind(user)
    .bind(&n.source)
    .bind(&n.title)
    .bind(&n.body)
    .bind(&n.created_at)
    .execute(&db.pool)
    .await?;
    Ok(n)
}

/// Whether `user` wants an email copy of their notifications.
pub async fn wants_email(db: &Db, user: &str) -> Result<bool, sqlx::Error> {
    let wants: i64 = sqlx::query_scalar("SELECT email_notifications FROM users WHERE id = $1")
        .bind(user)
        .fetch_one(&db.pool)
        .await?;
    Ok(wants != 0)
}

pub async fn set_wants_email(db: &Db, user: &str, wants: bool) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET email_notifications = $2 WHERE id = $1")
        .bind(user)
        .bind(i64::from(wants))
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// A user's notifications, newest first, after the cursor (an id).
pub async fn list(
    db: &Db,
    user: &str,
    unread_only: bool,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<Notification>, sqlx::Error> {
    let mut sql = String::from(
        "SELECT id, source, title, body, created_at, read_at, link, email_status FROM notifications WHERE user_id = $1",
    );
    if unread_only {
        sql.push_str(" AND read_at IS NULL");
    }
    if before.is_some() {
        sql.push_str(" AND id < $3");
    }
    sql.push_str(" ORDER BY id DESC LIMIT $2");
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(user).bind(limit);
    if let Some(before) = before {
        query = query.bind(before);
    }
    query
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(Notification {
                id: r.try_get("id")?,
                source: r.try_get("source")?,
                title: r.try_get("title")?,
                body: r.try_get("body")?,
                created_at: r.try_get("created_at")?,
                read_at: r.try_get("read_at")?,
                link: r.try_get("link")?,
                email: r.try_get("email_status")?,
            })
        })
        .collect()
}

/// Marks one of the user's notifications read (or all, with `id` `None`); answers
/// how many changed.
pub async fn mark_read(db: &Db, user: &str, id: Option<&str>) -> Result<u64, sqlx::Error> {
    let mut sql = String::from(
        "UPDATE notifications SET read_at = $1 WHERE user_id = $2 AND read_at IS NULL",
    );
    if id.is_some() {
        sql.push_str(" AND id = $3");
    }
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(db::now()).bind(user);
    if let Some(id) = id {
        query = query.bind(id);
    }
    Ok(query.execute(&db.pool).await?.rows_affected())
}

/// True when the notification exists and is the user's.
pub async fn owns(db: &Db, user: &str, id: &str) -> Result<bool, sqlx::Error> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM notifications WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user)
            .fetch_optional(&db.pool)
            .await?;
    Ok(found.is_some())
}

/// Tells every active organisation admin (for example that a plugin was switched off).
pub async fn tell_admins(db: &Db, title: &str, body: &str) -> Result<(), SendError> {
    let admins: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT u.id FROM users u JOIN memberships m ON m.user_id = u.id \
         WHERE m.role = 'org_admin' AND u.active = 1",
    )
    .fetch_all(&db.pool)
    .await?;
    for admin in admins {
        send(db, &admin, "system", title, body).await?;
    }
    Ok(())
}
