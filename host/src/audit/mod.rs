//! The audit trail: who changed which record, when, and each field's old and new
//! value. Entries are written by the records service inside the transaction of the
//! change they describe, so there is never a change without its entry.

use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::AssertSqlSafe;
use sqlx::{AnyConnection, Row};
use utoipa::ToSchema;

use crate::db::{Db, Dialect};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    Created,
    Updated,
    Deleted,
    /// A document's content was read (`record_version` is the version read).
    Downloaded,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Created => "created",
            AuditAction::Updated => "updated",
            AuditAction::Deleted => "deleted",
            AuditAction::Downloaded => "downloaded",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s {
            "created" => Some(AuditAction::Created),
            "updated" => Some(AuditAction::Updated),
            "deleted" => Some(AuditAction::Deleted),
            "downloaded" => Some(AuditAction::Downloaded),
            _ => None,
        }
    }
}

/// One change of one record.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: String,
    pub object: String,
    pub record_id: String,
    pub action: AuditAction,
    /// The user who made the change.
    pub actor: Option<String>,
    /// The record's version after the change (before it, for a delete).
    pub version: i64,
    pub at: String,
    /// Field name -> `{"old": ..., "new": ...}`.
    #[schema(value_type = Object)]
    pub changes: Map<String, Value>,
}

/// Field-by-field difference between two states of a record's data.
pub fn diff(old: &Map<String, Value>, new: &Map<String, Value>) -> Map<String, Value> {
    let mut changes = Map::new();
    for (key, new_value) in new {
        let old_value = old.get(key).unwrap_or(&Value::Null);
        if old_value != new_value {
            changes.insert(
                key.clone(),
                serde_json::json!({"old": old_value, "new": new_value}),
            );
        }
    }
    for (key, old_value) in old {
        if !new.contains_key(key) && !old_value.is_null() {
            changes.insert(
                key.clone(),
                serde_json::json!({"old": old_value, "new": Value::Null}),
            );
        }
    }
    changes
}

/// Writes entries, in one statement, on the connection of the caller's transaction.
pub async fn insert(
    conn: &mut AnyConnection,
    dialect: Dialect,
    entries: &[&AuditEntry],
) -> Result<(), sqlx::Error> {
    let rows = crate::db::values_rows(dialect, entries.len(), 8, Some(8));
    let sql = format!(
        "INSERT INTO audit_log (id, object, record_id, action, actor_id, record_version, at, changes) VALUES {rows}"
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for e in entries {
        query = query
            .bind(&e.id)
            .bind(&e.object)
            .bind(&e.record_id)
            .bind(e.action.as_str())
            .bind(&e.actor)
            .bind(e.version)
            .bind(&e.at)
            .bind(serde_json::to_string(&e.changes).expect("a JSON map serialises"));
    }
    query.execute(conn).await?;
    Ok(())
}

/// A record's history, oldest first, `limit` entries after the entry id `after`.
pub async fn history(
    db: &Db,
    object: &str,
    record_id: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<AuditEntry>, sqlx::Error> {
    let sql = format!(
        "SELECT id, object, record_id, action, actor_id, record_version, at, {} AS changes FROM audit_log \
         WHERE record_id = $1 AND object = $2 AND id > $3 ORDER BY id LIMIT $4",
        db.dialect.json_text("changes")
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(record_id)
        .bind(object)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(entry_of).collect()
}

/// An entry from a row of `id, object, record_id, action, actor_id, record_version,
/// at, changes` (the changes as JSON text).
pub fn entry_of(r: &sqlx::any::AnyRow) -> Result<AuditEntry, sqlx::Error> {
    let changes: String = r.try_get("changes")?;
    let action: String = r.try_get("action")?;
    Ok(AuditEntry {
        id: r.try_get("id")?,
        object: r.try_get("object")?,
        record_id: r.try_get("record_id")?,
        action: AuditAction::parse(&action)
            .ok_or_else(|| decode_error(format!("unknown audit action {action}")))?,
        actor: r.try_get("actor_id")?,
        version: r.try_get("record_version")?,
        at: r.try_get("at")?,
        changes: serde_json::from_str(&changes).map_err(|e| decode_error(e.to_string()))?,
    })
}

pub(crate) fn decode_error(msg: String) -> sqlx::Error {
    sqlx::Error::Decode(msg.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_lists_set_changed_and_cleared_fields() {
        let old = json!({"a": 1, "b": "x", "c": true})
            .as_object()
            .unwrap()
            .clone();
        let new = json!({"a": 1, "b": "y", "d": 5})
            .as_object()
            .unwrap()
            .clone();
        let d = diff(&old, &new);
        assert_eq!(
            Value::Object(d),
            json!({
                "b": {"old": "x", "new": "y"},
                "d": {"old": null, "new": 5},
                "c": {"old": true, "new": null}
            })
        );
    }
}
