//! Record shares (a record opened to one user or one department, for reading or
//! writing) and the log of denied accesses. Who may share a record is decided by the
//! records service, which owns records.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use super::{AccessControl, ShareAccess};
use crate::api::error::{ApiError, FieldError};
use crate::db;

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Share {
    pub id: String,
    pub object: String,
    pub record_id: String,
    /// The user the record is shared with (or `department`).
    pub user: Option<String>,
    pub department: Option<String>,
    pub access: ShareAccess,
    pub created_by: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShareInput {
    /// A user id; give this or `department`.
    #[serde(default)]
    pub user: Option<String>,
    /// A department id; give this or `user`.
    #[serde(default)]
    pub department: Option<String>,
    pub access: ShareAccess,
}

/// One refused access.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Denial {
    pub id: String,
    pub actor: Option<String>,
    pub action: String,
    pub object: Option<String>,
    pub record_id: Option<String>,
    pub reason: String,
    pub at: String,
}

fn share_from_row(r: &sqlx::any::AnyRow) -> Result<Share, sqlx::Error> {
    let access: String = r.try_get("access")?;
    Ok(Share {
        id: r.try_get("id")?,
        object: r.try_get("object")?,
        record_id: r.try_get("record_id")?,
        user: r.try_get("user_id")?,
        department: r.try_get("department_id")?,
        access: if access == "write" {
            ShareAccess::Write
        } else {
            ShareAccess::Read
        },
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
    })
}

const SHARE_COLUMNS: &str =
    "id, object, record_id, user_id, department_id, access, created_by, created_at";

impl AccessControl {
    pub async fn list_shares(&self, object: &str, record_id: &str) -> Result<Vec<Share>, ApiError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SHARE_COLUMNS} FROM record_shares WHERE record_id = $1 AND object = $2 ORDER BY id"
        )))
        .bind(record_id)
        .bind(object)
        .fetch_all(&self.db.pool)
        .await?;
        Ok(rows.iter().map(share_from_row).collect::<Result<_, _>>()?)
    }

    /// Shares a record; sharing again with the same user or department changes the
    /// access of the existing share.
    pub async fn put_share(
        &self,
        actor_id: &str,
        object: &str,
        record_id: &str,
        input: &ShareInput,
    ) -> Result<Share, ApiError> {
        let invalid = |field: &str, m: &str| {
            ApiError::invalid("the share is not valid", vec![FieldError::new(field, m)])
        };
        let (column, target) = match (&input.user, &input.department) {
            (Some(u), None) => {
                let exists: Option<i64> =
                    sqlx::query_scalar("SELECT 1 FROM users WHERE id = $1 AND active = 1")
                        .bind(u)
                        .fetch_optional(&self.db.pool)
                        .await?;
                if exists.is_none() {
                    return Err(invalid("user", "is not an active user"));
                }
                ("user_id", u)
            }
            (None, Some(d)) => {
                if !self.current().departments.exists(d) {
                    return Err(invalid("department", "is not a department"));
                }
                ("department_id", d)
            }
            _ => return Err(invalid("user", "give exactly one of user and department")),
        };
        let access = match input.access {
            ShareAccess::Read => "read",
            ShareAccess::Write => "write",
        };
        let mut tx = self.db.pool.begin().await?;
        let changed = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE record_shares SET access = $1 WHERE record_id = $2 AND {column} = $3"
        )))
        .bind(access)
        .bind(record_id)
        .bind(target)
        .execute(&mut *tx)
        .await?;
        if changed.rows_affected() == 0 {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO record_shares (id, object, record_id, {column}, access, created_by, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)"
            )))
            .bind(db::new_id())
            .bind(object)
            .bind(record_id)
            .bind(target)
            .bind(access)
            .bind(actor_id)
            .bind(db::now())
            .execute(&mut *tx)
            .await?;
        }
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SHARE_COLUMNS} FROM record_shares WHERE record_id = $1 AND {column} = $2"
        )))
        .bind(record_id)
        .bind(target)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(share_from_row(&row)?)
    }

    pub async fn delete_share(
        &self,
        object: &str,
        record_id: &str,
        share_id: &str,
    ) -> Result<(), ApiError> {
        let done = sqlx::query(
            "DELETE FROM record_shares WHERE id = $1 AND record_id = $2 AND object = $3",
        )
        .bind(share_id)
        .bind(record_id)
        .bind(object)
        .execute(&self.db.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(ApiError::not_found("the record has no such share"));
        }
        Ok(())
    }

    /// Denied accesses, newest first, a page at a time.
    pub async fn list_denials(
        &self,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Denial>, ApiError> {
        // Ids are UUIDv7: id order is time order.
        let rows = sqlx::query(
            "SELECT id, actor_id, action, object, record_id, reason, at FROM access_denials \
             WHERE id < $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(before.unwrap_or("~"))
        .bind(limit)
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Denial {
                    id: r.try_get("id")?,
                    actor: r.try_get("actor_id")?,
                    action: r.try_get("action")?,
                    object: r.try_get("object")?,
                    record_id: r.try_get("record_id")?,
                    reason: r.try_get("reason")?,
                    at: r.try_get("at")?,
                })
            })
            .collect()
    }
}
