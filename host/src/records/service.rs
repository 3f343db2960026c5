//! The records service: the one path every record read and write goes through.
//!
//! A write, from the REST API or (later) a plugin, a process step or an import:
//! 1. the caller is authenticated before it gets here ([`Actor`]);
//! 2. authorisation (object, record scope, field rights) is checked here — it arrives
//!    with access control, and must stay in this file;
//! 3. the values are validated against the object's metadata, every error at once,
//!    and references are confirmed in the database;
//! 4. plugin before-save hooks run here once the plugin platform lands;
//! 5. the record, its audit entry and its outbox event are committed together by the
//!    [`Writer`] (optimistic version check included).

use sqlx::AssertSqlSafe;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use super::metadata::ObjectType;
use super::query::{ListQuery, bind_all};
use super::schema::SchemaCache;
use super::validate::{Mode, RefTarget, ReferenceCheck, validate};
use super::writer::{WriteError, WriteOp, Writer};
use super::{Record, RecordError};
use crate::api::error::FieldError;
use crate::audit::{self, AuditAction, AuditEntry};
use crate::auth::Actor;
use crate::db::{self, Db};
use crate::events::Event;

/// Attempts for an update without `If-Match` that keeps meeting concurrent changes.
const UNCONDITIONAL_RETRIES: usize = 3;

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page {
    pub items: Vec<Record>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Clone)]
pub struct RecordService {
    db: Db,
    schema: SchemaCache,
    writer: Writer,
}

impl RecordService {
    pub fn new(db: Db, schema: SchemaCache) -> Self {
        let writer = Writer::start(db.clone());
        RecordService { db, schema, writer }
    }

    fn object(&self, name: &str) -> Result<Arc<ObjectType>, RecordError> {
        self.schema
            .get()
            .object(name)
            .cloned()
            .ok_or_else(|| RecordError::UnknownObject(name.into()))
    }

    pub async fn create(
        &self,
        actor: &Actor,
        object: &str,
        input: &Map<String, Value>,
    ) -> Result<Record, RecordError> {
        let object = self.object(object)?;
        let valid = validate(&object, input, Mode::Create).map_err(RecordError::Invalid)?;
        self.check_references(&valid.references).await?;
        let fields: Map<String, Value> = valid
            .values
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .collect();
        let now = db::now();
        let record = Record {
            id: db::new_id(),
            object: object.name.clone(),
            version: 1,
            created_at: now.clone(),
            updated_at: now.clone(),
            owner: Some(valid.owner.unwrap_or_else(|| actor.user_id.clone())),
            department: None,
            fields,
        };
        let mut changes = audit::diff(&Map::new(), &record.fields);
        changes.insert(
            "owner".into(),
            serde_json::json!({"old": null, "new": record.owner}),
        );
        let audit = audit_entry(actor, &record, AuditAction::Created, changes.clone(), &now);
        let event = event(actor, &record, "record.created", &changes, &now);
        self.writer
            .submit(WriteOp::Insert {
                record: record.clone(),
                audit,
                event,
            })
            .await
            .map_err(|e| write_error(&object, e))?;
        Ok(with_all_fields(&object, record))
    }

    /// Applies `patch` (a field set to `null` is cleared). With `if_match`, a record
    /// that moved past that version is refused; without it, concurrent changes are
    /// re-read and the patch applied again on the newest version.
    pub async fn update(
        &self,
        actor: &Actor,
        object: &str,
        id: &str,
        patch: &Map<String, Value>,
        if_match: Option<i64>,
    ) -> Result<Record, RecordError> {
        let object = self.object(object)?;
        let valid = validate(&object, patch, Mode::Update).map_err(RecordError::Invalid)?;
        self.check_references(&valid.references).await?;
        for attempt in 1.. {
            let current = self.fetch_at_version(&object, id, if_match).await?;
            let mut fields = current.fields.clone();
            for (k, v) in &valid.values {
                if v.is_null() {
                    fields.remove(k)
                } else {
                    fields.insert(k.clone(), v.clone())
                };
            }
            let owner = valid.owner.clone().or_else(|| current.owner.clone());
            let mut changes = audit::diff(&current.fields, &fields);
            if owner != current.owner {
                changes.insert(
                    "owner".into(),
                    serde_json::json!({"old": current.owner, "new": owner}),
                );
            }
            if changes.is_empty() {
                return Ok(with_all_fields(&object, current));
            }
            let now = db::now();
            let record = Record {
                version: current.version + 1,
                updated_at: now.clone(),
                owner,
                fields,
                ..current.clone()
            };
            let audit = audit_entry(actor, &record, AuditAction::Updated, changes.clone(), &now);
            let event = event(actor, &record, "record.updated", &changes, &now);
            let op = WriteOp::Update {
                record: record.clone(),
                expected_version: current.version,
                audit,
                event,
            };
            match self.writer.submit(op).await {
                Ok(()) => return Ok(with_all_fields(&object, record)),
                Err(WriteError::Conflict(_))
                    if if_match.is_none() && attempt < UNCONDITIONAL_RETRIES =>
                {
                    continue;
                }
                Err(e) => return Err(write_error(&object, e)),
            }
        }
        unreachable!("the loop returns")
    }

    pub async fn delete(
        &self,
        actor: &Actor,
        object: &str,
        id: &str,
        if_match: Option<i64>,
    ) -> Result<(), RecordError> {
        let object = self.object(object)?;
        for attempt in 1.. {
            let current = self.fetch_at_version(&object, id, if_match).await?;
            let now = db::now();
            let changes = audit::diff(&current.fields, &Map::new());
            let audit = audit_entry(actor, &current, AuditAction::Deleted, changes.clone(), &now);
            let event = event(actor, &current, "record.deleted", &changes, &now);
            let op = WriteOp::Delete {
                object: object.name.clone(),
                id: id.to_string(),
                expected_version: current.version,
                audit,
                event,
            };
            match self.writer.submit(op).await {
                Ok(()) => return Ok(()),
                Err(WriteError::Conflict(_))
                    if if_match.is_none() && attempt < UNCONDITIONAL_RETRIES =>
                {
                    continue;
                }
                Err(e) => return Err(write_error(&object, e)),
            }
        }
        unreachable!("the loop returns")
    }

    pub async fn get(&self, _actor: &Actor, object: &str, id: &str) -> Result<Record, RecordError> {
        let object = self.object(object)?;
        let record = self
            .fetch(&object, id)
            .await?
            .ok_or(RecordError::NotFound)?;
        Ok(with_all_fields(&object, record))
    }

    /// One page of records matching the query string's filters and search.
    pub async fn list(
        &self,
        _actor: &Actor,
        object: &str,
        query: &str,
    ) -> Result<Page, RecordError> {
        let object = self.object(object)?;
        let query = ListQuery::parse(&object, query)?;
        let (sql, binds) = query.to_sql(&object, self.db.dialect, &self.record_columns());
        let rows = bind_all(sqlx::query(AssertSqlSafe(sql)), binds)
            .fetch_all(&self.db.pool)
            .await?;
        let mut items = rows
            .iter()
            .map(record_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = if items.len() as i64 > query.limit {
            items.truncate(query.limit as usize);
            items.last().map(|last| query.cursor_after(last))
        } else {
            None
        };
        let items = items
            .into_iter()
            .map(|r| with_all_fields(&object, r))
            .collect();
        Ok(Page { items, next_cursor })
    }

    /// The audit trail of a record (also after it was deleted).
    pub async fn history(
        &self,
        _actor: &Actor,
        object: &str,
        id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, RecordError> {
        let object = self.object(object)?;
        let entries = audit::history(&self.db, &object.name, id, after, limit).await?;
        if entries.is_empty() && after.is_none() && self.fetch(&object, id).await?.is_none() {
            return Err(RecordError::NotFound);
        }
        Ok(entries)
    }

    fn record_columns(&self) -> String {
        format!(
            "id, object, version, owner_id, department_id, created_at, updated_at, {} AS data",
            self.db.dialect.json_text("data")
        )
    }

    /// The record as stored, refused with a conflict when `if_match` names another version.
    async fn fetch_at_version(
        &self,
        object: &ObjectType,
        id: &str,
        if_match: Option<i64>,
    ) -> Result<Record, RecordError> {
        let current = self.fetch(object, id).await?.ok_or(RecordError::NotFound)?;
        match if_match {
            Some(expected) if expected != current.version => Err(RecordError::Conflict {
                current: current.version,
            }),
            _ => Ok(current),
        }
    }

    async fn fetch(&self, object: &ObjectType, id: &str) -> Result<Option<Record>, RecordError> {
        let sql = format!(
            "SELECT {} FROM records WHERE id = $1 AND object = $2",
            self.record_columns()
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .bind(&object.name)
            .fetch_optional(&self.db.pool)
            .await?;
        Ok(row.as_ref().map(record_from_row).transpose()?)
    }

    /// Confirms that every referenced record or user exists.
    async fn check_references(&self, checks: &[ReferenceCheck]) -> Result<(), RecordError> {
        let mut errors = Vec::new();
        for check in checks {
            let exists: Option<i64> = match &check.target {
                RefTarget::Record(target) => {
                    sqlx::query_scalar("SELECT 1 FROM records WHERE id = $1 AND object = $2")
                        .bind(&check.id)
                        .bind(target)
                        .fetch_optional(&self.db.pool)
                        .await?
                }
                RefTarget::User => {
                    sqlx::query_scalar("SELECT 1 FROM users WHERE id = $1")
                        .bind(&check.id)
                        .fetch_optional(&self.db.pool)
                        .await?
                }
            };
            if exists.is_none() {
                let what = match &check.target {
                    RefTarget::Record(target) => {
                        format!("refers to a record of {target} that does not exist")
                    }
                    RefTarget::User => "refers to a user that does not exist".to_string(),
                };
                errors.push(FieldError::new(&check.field, what));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(RecordError::Invalid(errors))
        }
    }
}

fn record_from_row(row: &AnyRow) -> Result<Record, sqlx::Error> {
    let data: String = row.try_get("data")?;
    let fields = match serde_json::from_str(&data) {
        Ok(Value::Object(m)) => m,
        _ => {
            return Err(crate::audit::decode_error(
                "record data is not a JSON object".into(),
            ));
        }
    };
    Ok(Record {
        id: row.try_get("id")?,
        object: row.try_get("object")?,
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        owner: row.try_get("owner_id")?,
        department: row.try_get("department_id")?,
        fields,
    })
}

/// Every field of the object appears in the answer, `null` when unset, in field order.
fn with_all_fields(object: &ObjectType, mut record: Record) -> Record {
    let mut fields = Map::with_capacity(object.fields.len());
    for f in &object.fields {
        fields.insert(
            f.name.clone(),
            record.fields.remove(&f.name).unwrap_or(Value::Null),
        );
    }
    record.fields = fields;
    record
}

fn audit_entry(
    actor: &Actor,
    record: &Record,
    action: AuditAction,
    changes: Map<String, Value>,
    at: &str,
) -> AuditEntry {
    AuditEntry {
        id: db::new_id(),
        object: record.object.clone(),
        record_id: record.id.clone(),
        action,
        actor: Some(actor.user_id.clone()),
        version: record.version,
        at: at.to_string(),
        changes,
    }
}

fn event(
    actor: &Actor,
    record: &Record,
    topic: &str,
    changes: &Map<String, Value>,
    at: &str,
) -> Event {
    Event {
        seq: 0,
        id: db::new_id(),
        topic: topic.to_string(),
        object: record.object.clone(),
        record_id: record.id.clone(),
        record_version: record.version,
        actor: Some(actor.user_id.clone()),
        payload: serde_json::json!({"record": record, "changes": changes}),
        created_at: at.to_string(),
    }
}

fn write_error(object: &ObjectType, e: WriteError) -> RecordError {
    match e {
        WriteError::Conflict(current) => RecordError::Conflict { current },
        WriteError::NotFound => RecordError::NotFound,
        WriteError::Unique(index) => {
            let field = object
                .fields
                .iter()
                .find(|f| f.unique && f.index_name(&object.name) == index);
            let name = field
                .map(|f| f.name.clone())
                .unwrap_or_else(|| "record".into());
            RecordError::Invalid(vec![FieldError::new(
                name,
                format!(
                    "must be unique: another {} record already has this value",
                    object.name
                ),
            )])
        }
        WriteError::Db(e) => RecordError::Db(e),
        WriteError::Stopped => RecordError::Db(sqlx::Error::PoolClosed),
    }
}
