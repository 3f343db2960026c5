//! The records service: the one path every record read and write goes through.
//!
//! A write, from the REST API or (later) a plugin, a process step or an import:
//! 1. the caller is authenticated before it gets here ([`Actor`]);
//! 2. authorisation is checked here, with the caller's rights from
//!    [`crate::access`]: the action on the object and the record's scope (a record
//!    the caller may not read is not found), the fields it may write, and who may
//!    move a record to another owner or department; lists carry the read scope in SQL;
//! 3. the values are validated against the object's metadata, every error at once,
//!    and references are confirmed in the database;
//! 4. the before-save hooks of plugins enabled in the record's department run here
//!    ([`RecordService::run_before_save`]);
//! 5. the record, its audit entry and its outbox event are committed together by the
//!    [`Writer`] (optimistic version check included).

use sqlx::AssertSqlSafe;
use std::collections::HashSet;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use super::metadata::ObjectType;
use super::query::{Aggregate, Bind, Column, ListQuery, MAX_GROUPS, Measure, SqlBuilder, bind_all};
use super::schema::SchemaCache;
use super::validate::{Mode, RefTarget, ReferenceCheck, validate};
use super::writer::{WriteError, WriteOp, Writer};
use super::{Record, RecordError};
use crate::access::shares::{Share, ShareInput};
use crate::access::{
    AccessControl, Action, FieldAccess, ObjectAccess, Scope, ShareAccess, UserAccess,
};
use crate::api::error::{ApiError, FieldError};
use crate::audit::{self, AuditAction, AuditEntry};
use crate::auth::Actor;
use crate::db::{self, Db};
use crate::events::{self, Event};
use crate::plugins::PluginService;
use crate::plugins::runtime::CallError;
use crate::plugins::runtime::v0_1::crm::plugin::types::SaveContext;

/// Attempts for an update without `If-Match` that keeps meeting concurrent changes.
const UNCONDITIONAL_RETRIES: usize = 3;

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page {
    pub items: Vec<Record>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Counts, sums, averages, minimums and maximums by group over the records a caller
/// may read.
#[derive(Debug, Serialize, ToSchema)]
pub struct Aggregated {
    /// The largest groups first, at most 1,000.
    pub groups: Vec<Group>,
    /// More groups than those listed exist.
    pub truncated: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Group {
    /// The group's value of each `group_by` key (`null`: records without one).
    #[schema(value_type = Object)]
    pub key: Map<String, Value>,
    pub count: i64,
    /// The sum of each `sum` field over the group (records without a value add 0).
    #[schema(value_type = Object)]
    pub sums: Map<String, Value>,
    /// The average of each `avg` field over the group's records that have a value
    /// (`null` when none has); left out when no `avg` was asked.
    #[serde(skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    pub avg: Map<String, Value>,
    /// The least value of each `min` field (`null` when no record has one).
    #[serde(skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    pub min: Map<String, Value>,
    /// The greatest value of each `max` field (`null` when no record has one).
    #[serde(skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    pub max: Map<String, Value>,
}

/// Which changes a feed shows.
#[derive(Clone, Copy)]
pub struct FeedQuery<'a> {
    /// Only records the caller owns.
    pub mine: bool,
    /// Only changes made by this user.
    pub by: Option<&'a str>,
    /// Only records of this object.
    pub object: Option<&'a str>,
    /// Only entries older than this one (a feed's cursor).
    pub before: Option<&'a str>,
    pub limit: i64,
}

#[derive(Clone)]
pub struct RecordService {
    db: Db,
    schema: SchemaCache,
    writer: Writer,
    access: AccessControl,
    plugins: PluginService,
}

/// The caller and its rights on the object at hand.
struct Caller<'a> {
    actor: &'a Actor,
    user: Arc<UserAccess>,
    rights: Arc<ObjectAccess>,
    object: Arc<ObjectType>,
    /// The object without the fields the caller may not see: what it reads, filters,
    /// sorts and searches on.
    visible: Arc<ObjectType>,
}

impl Caller<'_> {
    /// The record's owner, or an admin over it, may share it.
    fn may_share(&self, record: &Record) -> bool {
        record.owner.as_deref() == Some(self.actor.user_id.as_str())
            || self.user.covers(
                self.rights.grants(Action::Admin),
                record.owner.as_deref(),
                record.department.as_deref(),
            )
    }
}

impl RecordService {
    pub fn new(db: Db, schema: SchemaCache, access: AccessControl, plugins: PluginService) -> Self {
        let writer = Writer::start(db.clone());
        RecordService {
            db,
            schema,
            writer,
            access,
            plugins,
        }
    }

    pub fn access(&self) -> &AccessControl {
        &self.access
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn plugins(&self) -> &PluginService {
        &self.plugins
    }

    /// Every object type at the current metadata version.
    pub fn schema(&self) -> Arc<super::schema::Schema> {
        self.schema.get()
    }

    /// What the caller may see and change of an object (for forms, columns and
    /// menus): the object without the fields hidden from it, and its rights.
    pub fn view_of(
        &self,
        actor: &Actor,
        object: &str,
    ) -> Result<(Arc<ObjectType>, Arc<ObjectAccess>), RecordError> {
        let c = self.caller(actor, object)?;
        Ok((c.visible, c.rights))
    }

    /// Notified after each committed batch of writes.
    pub fn committed(&self) -> Arc<tokio::sync::Notify> {
        self.writer.committed()
    }

    fn object(&self, name: &str) -> Result<Arc<ObjectType>, RecordError> {
        self.schema
            .get()
            .object(name)
            .cloned()
            .ok_or_else(|| RecordError::UnknownObject(name.into()))
    }

    /// Whether `actor` may share `record` with others (its owner, or an admin over it).
    pub fn may_share(&self, actor: &Actor, object: &str, record: &Record) -> bool {
        self.caller(actor, object)
            .is_ok_and(|c| c.may_share(record))
    }

    fn caller<'a>(&self, actor: &'a Actor, object: &str) -> Result<Caller<'a>, RecordError> {
        let object = self.object(object)?;
        let user = self.access.user(actor);
        let rights = user.object(&object.name);
        let hidden: HashSet<&str> = rights.hidden_fields().collect();
        let visible = if hidden.is_empty() {
            object.clone()
        } else {
            let mut o = (*object).clone();
            o.fields.retain(|f| !hidden.contains(f.name.as_str()));
            Arc::new(o)
        };
        Ok(Caller {
            actor,
            user,
            rights,
            object,
            visible,
        })
    }

    /// Audits a refusal and returns the error the client gets.
    async fn deny(
        &self,
        c: &Caller<'_>,
        action: Action,
        id: Option<&str>,
        reason: &str,
        error: RecordError,
    ) -> RecordError {
        self.access
            .deny(
                &c.actor.user_id,
                action.as_str(),
                Some(&c.object.name),
                id,
                reason,
            )
            .await;
        error
    }

    /// Refuses a request that writes a field the caller may not write, naming each.
    async fn check_writable<'k>(
        &self,
        c: &Caller<'_>,
        action: Action,
        id: Option<&str>,
        keys: impl Iterator<Item = &'k String>,
    ) -> Result<(), RecordError> {
        let refused: Vec<FieldError> = keys
            .filter(|k| c.object.field(k).is_some() && c.rights.field(k) != FieldAccess::Write)
            .map(|k| FieldError::new(k, "you may not change this field"))
            .collect();
        if refused.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = refused.iter().map(|e| e.field.as_str()).collect();
        let reason = format!("fields not writable: {}", names.join(", "));
        Err(self
            .deny(
                c,
                action,
                id,
                &reason,
                RecordError::FieldsForbidden(refused),
            )
            .await)
    }

    /// Checks `action` on a stored record: one the caller may not read is not found
    /// (its existence does not leak); one it may read but not change is forbidden.
    async fn authorize(
        &self,
        c: &Caller<'_>,
        record: &Record,
        action: Action,
    ) -> Result<(), RecordError> {
        let (owner, department) = (record.owner.as_deref(), record.department.as_deref());
        let readable = c
            .user
            .covers(c.rights.grants(Action::Read), owner, department);
        let allowed =
            action == Action::Read || c.user.covers(c.rights.grants(action), owner, department);
        if readable && allowed {
            return Ok(());
        }
        let share = self
            .access
            .shared_access(&c.user, &c.object.name, &record.id)
            .await?;
        let readable = readable || share.is_some();
        let allowed = allowed
            || (action == Action::Read && share.is_some())
            || (action == Action::Update && share == Some(ShareAccess::Write));
        if !readable {
            return Err(self
                .deny(
                    c,
                    action,
                    Some(&record.id),
                    "record not readable",
                    RecordError::NotFound,
                )
                .await);
        }
        if !allowed {
            let what = format!(
                "you may not {} this {} record",
                action.as_str(),
                c.object.name
            );
            return Err(self
                .deny(
                    c,
                    action,
                    Some(&record.id),
                    &what,
                    RecordError::Forbidden(what.clone()),
                )
                .await);
        }
        Ok(())
    }

    /// Who may set an owner or department other than the default: holders of the admin
    /// right over both the record's old and its new place.
    async fn authorize_placement(
        &self,
        c: &Caller<'_>,
        id: &str,
        before: Option<(&Option<String>, &Option<String>)>,
        after: (&Option<String>, &Option<String>),
    ) -> Result<(), RecordError> {
        let admin = c.rights.grants(Action::Admin);
        let covers = |(owner, dept): (&Option<String>, &Option<String>)| {
            c.user.covers(admin, owner.as_deref(), dept.as_deref())
        };
        if before.is_none_or(covers) && covers(after) {
            return Ok(());
        }
        let error = RecordError::FieldsForbidden(vec![FieldError::new(
            "owner",
            format!(
                "only someone with the admin right on {} over the record's old and new place may change its owner or department",
                c.object.name
            ),
        )]);
        Err(self
            .deny(
                c,
                Action::Admin,
                Some(id),
                "owner or department change refused",
                error,
            )
            .await)
    }

    /// Takes `department` out of a request body: it is the record's envelope, not a field.
    fn split_department(
        &self,
        input: &Map<String, Value>,
    ) -> Result<(Option<String>, Map<String, Value>), RecordError> {
        let mut rest = input.clone();
        let Some(value) = rest.remove("department") else {
            return Ok((None, rest));
        };
        match value.as_str() {
            Some(d) if self.access.department_tree().departments.exists(d) => {
                Ok((Some(d.to_string()), rest))
            }
            _ => Err(RecordError::Invalid(vec![FieldError::new(
                "department",
                "must be the id of a department",
            )])),
        }
    }

    pub async fn create(
        &self,
        actor: &Actor,
        object: &str,
        input: &Map<String, Value>,
    ) -> Result<Record, RecordError> {
        let c = self.caller(actor, object)?;
        let (record, audit, event) = self.prepare_create(&c, input).await?;
        self.writer
            .submit(WriteOp::Insert {
                record: record.clone(),
                audit,
                event,
            })
            .await
            .map_err(|e| write_error(&c.object, e))?;
        Ok(with_all_fields(&c.visible, record))
    }

    /// Creates many records of one object (an import's chunk): each input is checked
    /// as [`create`](Self::create) checks it, the valid ones are committed together,
    /// and each input gets its own outcome, in order: the new record's id, or why not
    /// (a value a unique field already holds fails only that input).
    pub async fn create_many(
        &self,
        actor: &Actor,
        object: &str,
        inputs: &[Map<String, Value>],
    ) -> Result<Vec<Result<String, RecordError>>, RecordError> {
        let c = self.caller(actor, object)?;
        let mut outcomes = Vec::with_capacity(inputs.len());
        let (mut ops, mut slots) = (Vec::new(), Vec::new());
        for input in inputs {
            match self.prepare_create(&c, input).await {
                Ok((record, audit, event)) => {
                    slots.push(outcomes.len());
                    outcomes.push(Ok(record.id.clone()));
                    ops.push(WriteOp::Insert {
                        record,
                        audit,
                        event,
                    });
                }
                Err(e) => outcomes.push(Err(e)),
            }
        }
        for (slot, written) in slots.into_iter().zip(self.writer.submit_many(ops).await) {
            if let Err(e) = written {
                outcomes[slot] = Err(write_error(&c.object, e));
            }
        }
        Ok(outcomes)
    }

    /// Everything a create checks and builds before its write: the record, its audit
    /// entry and its event.
    async fn prepare_create(
        &self,
        c: &Caller<'_>,
        input: &Map<String, Value>,
    ) -> Result<(Record, AuditEntry, Event), RecordError> {
        let actor = c.actor;
        let (department, input) = self.split_department(input)?;
        let (chosen_id, input) = split_id(&input)?;
        self.check_writable(c, Action::Create, None, input.keys())
            .await?;
        let valid = validate(&c.object, &input, Mode::Create).map_err(RecordError::Invalid)?;
        let owner = Some(valid.owner.unwrap_or_else(|| actor.user_id.clone()));
        let department = department.or_else(|| c.user.home_department().map(str::to_string));
        if !c.user.covers(
            c.rights.grants(Action::Create),
            owner.as_deref(),
            department.as_deref(),
        ) {
            let what = format!("you may not create {} records there", c.object.name);
            return Err(self
                .deny(
                    c,
                    Action::Create,
                    None,
                    &what,
                    RecordError::Forbidden(what.clone()),
                )
                .await);
        }
        if owner.as_deref() != Some(actor.user_id.as_str()) {
            self.authorize_placement(c, "", None, (&owner, &department))
                .await?;
        }
        self.check_references(c, &valid.references).await?;
        let fields: Map<String, Value> = valid
            .values
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .collect();
        // A caller that chose the id (to create idempotently) learns when it exists.
        if let Some(id) = &chosen_id {
            let taken: Option<i64> = sqlx::query_scalar("SELECT 1 FROM records WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.db.pool)
                .await?;
            if taken.is_some() {
                return Err(RecordError::Refused(format!(
                    "a record with the id {id} already exists"
                )));
            }
        }
        let now = db::now();
        let record = Record {
            id: chosen_id.unwrap_or_else(db::new_id),
            object: c.object.name.clone(),
            version: 1,
            created_at: now.clone(),
            updated_at: now.clone(),
            owner,
            department,
            fields,
        };
        let mut record = record;
        self.run_before_save(c, "create", &mut record).await?;
        let mut changes = audit::diff(&Map::new(), &record.fields);
        placement_changes(&mut changes, (&None, &None), &record);
        let event = event(actor, &record, events::CREATED, &changes, &now);
        let audit = audit_entry(actor, &record, AuditAction::Created, changes, &now);
        Ok((record, audit, event))
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
        let c = self.caller(actor, object)?;
        let (department, patch) = self.split_department(patch)?;
        // Access first: a record the caller may not see is not found, whatever the body.
        let first = self
            .fetch(&c.object, id)
            .await?
            .ok_or(RecordError::NotFound)?;
        self.authorize(&c, &first, Action::Update).await?;
        self.check_writable(&c, Action::Update, Some(id), patch.keys())
            .await?;
        let valid = validate(&c.object, &patch, Mode::Update).map_err(RecordError::Invalid)?;
        self.check_references(&c, &valid.references).await?;
        for attempt in 1.. {
            let current = if attempt == 1 {
                first.clone()
            } else {
                let again = self
                    .fetch(&c.object, id)
                    .await?
                    .ok_or(RecordError::NotFound)?;
                self.authorize(&c, &again, Action::Update).await?;
                again
            };
            if let Some(expected) = if_match
                && expected != current.version
            {
                return Err(RecordError::Conflict {
                    current: current.version,
                });
            }
            let mut fields = current.fields.clone();
            for (k, v) in &valid.values {
                if v.is_null() {
                    fields.remove(k)
                } else {
                    fields.insert(k.clone(), v.clone())
                };
            }
            let owner = valid.owner.clone().or_else(|| current.owner.clone());
            let department = department.clone().or_else(|| current.department.clone());
            if owner != current.owner || department != current.department {
                self.authorize_placement(
                    &c,
                    id,
                    Some((&current.owner, &current.department)),
                    (&owner, &department),
                )
                .await?;
            }
            let now = db::now();
            let mut record = Record {
                version: current.version + 1,
                updated_at: now.clone(),
                owner,
                department,
                fields,
                ..current.clone()
            };
            self.run_before_save(&c, "update", &mut record).await?;
            let mut changes = audit::diff(&current.fields, &record.fields);
            placement_changes(&mut changes, (&current.owner, &current.department), &record);
            if changes.is_empty() {
                return Ok(with_all_fields(&c.visible, current));
            }
            let audit = audit_entry(actor, &record, AuditAction::Updated, changes.clone(), &now);
            let event = event(actor, &record, "record.updated", &changes, &now);
            let op = WriteOp::Update {
                record: record.clone(),
                expected_version: current.version,
                audit,
                event,
            };
            match self.writer.submit(op).await {
                Ok(()) => return Ok(with_all_fields(&c.visible, record)),
                Err(WriteError::Conflict(_))
                    if if_match.is_none() && attempt < UNCONDITIONAL_RETRIES =>
                {
                    continue;
                }
                Err(e) => return Err(write_error(&c.object, e)),
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
        let c = self.caller(actor, object)?;
        for attempt in 1.. {
            let current = self
                .fetch(&c.object, id)
                .await?
                .ok_or(RecordError::NotFound)?;
            self.authorize(&c, &current, Action::Delete).await?;
            if let Some(expected) = if_match
                && expected != current.version
            {
                return Err(RecordError::Conflict {
                    current: current.version,
                });
            }
            let now = db::now();
            let changes = audit::diff(&current.fields, &Map::new());
            let audit = audit_entry(actor, &current, AuditAction::Deleted, changes.clone(), &now);
            let event = event(actor, &current, "record.deleted", &changes, &now);
            let op = WriteOp::Delete {
                object: c.object.name.clone(),
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
                Err(e) => return Err(write_error(&c.object, e)),
            }
        }
        unreachable!("the loop returns")
    }

    pub async fn get(&self, actor: &Actor, object: &str, id: &str) -> Result<Record, RecordError> {
        let c = self.caller(actor, object)?;
        let record = self
            .fetch(&c.object, id)
            .await?
            .ok_or(RecordError::NotFound)?;
        self.authorize(&c, &record, Action::Read).await?;
        Ok(with_all_fields(&c.visible, record))
    }

    /// One page of the records the caller may read, matching the query string's
    /// filters and search. Hidden fields cannot be filtered, sorted or searched on.
    pub async fn list(
        &self,
        actor: &Actor,
        object: &str,
        query: &str,
    ) -> Result<Page, RecordError> {
        self.list_for(actor, object, query, Action::Read).await
    }

    /// Every record of a list (`pairs`: its filters and sort) the caller may read, page
    /// by page, stopping at `max` (the calendar page, the calendar feed).
    pub async fn list_up_to(
        &self,
        actor: &Actor,
        object: &str,
        pairs: &[(String, String)],
        max: usize,
    ) -> Result<Vec<Record>, RecordError> {
        let mut records = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            // Built apart: a serializer held across the await would make the future
            // not Send.
            let query = {
                let mut query = form_urlencoded::Serializer::new(String::new());
                query.extend_pairs(pairs).append_pair("limit", "200");
                if let Some(c) = &cursor {
                    query.append_pair("cursor", c);
                }
                query.finish()
            };
            let page = self.list(actor, object, &query).await?;
            records.extend(page.items);
            cursor = page.next_cursor;
            if cursor.is_none() || records.len() >= max {
                records.truncate(max);
                return Ok(records);
            }
        }
    }

    /// Which records of `object` the caller may read, as SQL conditions: for lookups
    /// the list API cannot express (a call's phone number compared digit by digit),
    /// so they never consider records the caller may not read.
    pub fn read_scope(
        &self,
        actor: &Actor,
        object: &str,
    ) -> Result<crate::access::ReadScope, RecordError> {
        let c = self.caller(actor, object)?;
        Ok(c.user.read_scope(&c.rights))
    }

    /// Checks an aggregate query against what the caller sees of `object` without
    /// running it (a saved report's definition, before it is stored).
    pub fn check_aggregate(
        &self,
        actor: &Actor,
        object: &str,
        query: &str,
    ) -> Result<(), RecordError> {
        let c = self.caller(actor, object)?;
        Aggregate::parse(&c.visible, query).map(|_| ())
    }

    /// Counts and sums by group (`group_by=stage&sum=amount` with a list's filters
    /// and `q`) over the records the caller may read, shares included; hidden
    /// fields can be neither grouped, summed nor filtered on.
    pub async fn aggregate(
        &self,
        actor: &Actor,
        object: &str,
        query: &str,
    ) -> Result<Aggregated, RecordError> {
        let c = self.caller(actor, object)?;
        let aggregate = Aggregate::parse(&c.visible, query)?;
        let scope = c.user.read_scope(&c.rights);
        let (sql, binds) = aggregate.to_sql(&c.visible, self.db.dialect, &scope);
        let rows = bind_all(sqlx::query(AssertSqlSafe(sql)), binds)
            .fetch_all(&self.db.pool)
            .await?;
        let truncated = rows.len() > MAX_GROUPS;
        let mut groups = Vec::with_capacity(rows.len().min(MAX_GROUPS));
        for row in rows.iter().take(MAX_GROUPS) {
            let mut key = Map::new();
            for (i, k) in aggregate.group_by.iter().enumerate() {
                let value = match k.period {
                    Some(_) => row
                        .try_get::<Option<String>, _>(format!("g{i}").as_str())?
                        .map_or(Value::Null, Value::from),
                    None => group_value(row, &format!("g{i}"), &k.column)?,
                };
                key.insert(k.name.clone(), value);
            }
            let mut group = Group {
                key,
                count: row.try_get("n")?,
                sums: Map::new(),
                avg: Map::new(),
                min: Map::new(),
                max: Map::new(),
            };
            for (i, (measure, field)) in aggregate.measures.iter().enumerate() {
                let value: Option<f64> = row.try_get(format!("m{i}").as_str())?;
                let (answers, value) = match measure {
                    Measure::Sum => (&mut group.sums, Some(value.unwrap_or(0.0))),
                    Measure::Avg => (&mut group.avg, value),
                    Measure::Min => (&mut group.min, value),
                    Measure::Max => (&mut group.max, value),
                };
                answers.insert(field.name.clone(), value.map_or(Value::Null, Value::from));
            }
            groups.push(group);
        }
        Ok(Aggregated { groups, truncated })
    }

    /// The columns of an export of `object` (envelope, then the fields the caller
    /// sees), once the caller is known to hold the export right on some records.
    pub async fn export_columns(
        &self,
        actor: &Actor,
        object: &str,
    ) -> Result<Vec<String>, RecordError> {
        let c = self.caller(actor, object)?;
        if c.rights.grants(Action::Export).is_empty() {
            return Err(self
                .deny(
                    &c,
                    Action::Export,
                    None,
                    "no export right",
                    RecordError::Forbidden(format!("you may not export {object}")),
                )
                .await);
        }
        let mut columns: Vec<String> = [
            "id",
            "owner",
            "department",
            "created_at",
            "updated_at",
            "version",
        ]
        .map(String::from)
        .to_vec();
        columns.extend(c.visible.fields.iter().map(|f| f.name.clone()));
        Ok(columns)
    }

    /// The object's metadata and the fields the caller may write, once the caller is
    /// known to hold the create right on `object` (an import's or a call log's check
    /// before it writes anything).
    pub async fn creatable(
        &self,
        actor: &Actor,
        object: &str,
    ) -> Result<(Arc<ObjectType>, Vec<String>), RecordError> {
        let c = self.caller(actor, object)?;
        if c.rights.grants(Action::Create).is_empty() {
            return Err(self
                .deny(
                    &c,
                    Action::Create,
                    None,
                    "no create right",
                    RecordError::Forbidden(format!("you may not create {object}")),
                )
                .await);
        }
        let writable = c
            .object
            .fields
            .iter()
            .filter(|f| c.rights.field(&f.name) == FieldAccess::Write)
            .map(|f| f.name.clone())
            .collect();
        Ok((c.object.clone(), writable))
    }

    /// One page of an export: like [`Self::list`], within the caller's export scope
    /// (shares do not extend it) and its read scope.
    pub async fn export_page(
        &self,
        actor: &Actor,
        object: &str,
        query: &str,
    ) -> Result<Page, RecordError> {
        self.list_for(actor, object, query, Action::Export).await
    }

    async fn list_for(
        &self,
        actor: &Actor,
        object: &str,
        query: &str,
        action: Action,
    ) -> Result<Page, RecordError> {
        let c = self.caller(actor, object)?;
        let query = ListQuery::parse(&c.visible, query)?;
        let scope = c.user.scope(&c.rights, action);
        let (sql, binds) =
            query.to_sql(&c.visible, self.db.dialect, &self.record_columns(), &scope);
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
        let read = c.rights.grants(Action::Read);
        let items = items
            .into_iter()
            // An export right wider than the read right reaches no further.
            .filter(|r| {
                action == Action::Read
                    || c.user
                        .covers(read, r.owner.as_deref(), r.department.as_deref())
            })
            .map(|r| with_all_fields(&c.visible, r))
            .collect();
        Ok(Page { items, next_cursor })
    }

    /// The titles of the records of `object` among `ids` that `actor` may read (the
    /// others are left out): what labels and feeds show for references.
    pub async fn titles(
        &self,
        actor: &Actor,
        object: &str,
        ids: &[&str],
    ) -> std::collections::HashMap<String, String> {
        let mut found = std::collections::HashMap::new();
        let schema = self.schema.get();
        let Some(meta) = schema.object(object) else {
            return found;
        };
        for chunk in ids.chunks(100) {
            let query = form_urlencoded::Serializer::new(String::new())
                .append_pair("filter[id][in]", &chunk.join(","))
                .append_pair("limit", "100")
                .finish();
            if let Ok(page) = self.list(actor, object, &query).await {
                for r in &page.items {
                    found.insert(r.id.clone(), super::title_of(meta, &r.id, &r.fields));
                }
            }
        }
        found
    }

    /// What changed lately in records the caller may read, newest first, across
    /// objects (or one): of the records the caller owns when `mine`, made by `by`
    /// when given; `limit` entries with ids below `before`. Hidden fields are left
    /// out of each change, as in a record's history.
    pub async fn feed(
        &self,
        actor: &Actor,
        wanted: &FeedQuery<'_>,
    ) -> Result<Vec<AuditEntry>, RecordError> {
        let schema = self.schema.get();
        let objects: Vec<&str> = match wanted.object {
            Some(o) => {
                self.object(o)?;
                vec![o]
            }
            None => schema.objects.keys().map(String::as_str).collect(),
        };
        let mut entries = Vec::new();
        for object in objects {
            let c = self.caller(actor, object)?;
            let scope = c.user.read_scope(&c.rights);
            let mut b = SqlBuilder::default();
            let mut records = format!("SELECT id FROM records WHERE object = '{object}'");
            if let Some(readable) = scope.sql(object, &mut b) {
                records.push_str(&format!(" AND {readable}"));
            }
            if wanted.mine {
                let me = b.bind(Bind::Text(actor.user_id.clone()));
                records.push_str(&format!(" AND owner_id = {me}"));
            }
            // The object is a checked identifier (it named a schema object).
            let mut sql = format!(
                "SELECT a.id, a.object, a.record_id, a.action, a.actor_id, a.record_version, a.at, \
                 {} AS changes FROM audit_log a WHERE a.object = '{object}' AND a.record_id IN ({records})",
                self.db.dialect.json_text("a.changes")
            );
            if let Some(by) = wanted.by {
                let by = b.bind(Bind::Text(by.to_string()));
                sql.push_str(&format!(" AND a.actor_id = {by}"));
            }
            if let Some(before) = wanted.before {
                let before = b.bind(Bind::Text(before.to_string()));
                sql.push_str(&format!(" AND a.id < {before}"));
            }
            sql.push_str(&format!(" ORDER BY a.id DESC LIMIT {}", wanted.limit));
            let rows = bind_all(sqlx::query(AssertSqlSafe(sql)), b.binds)
                .fetch_all(&self.db.pool)
                .await?;
            let hidden: HashSet<&str> = c.rights.hidden_fields().collect();
            for row in &rows {
                let mut entry = audit::entry_of(row)?;
                entry.changes.retain(|k, _| !hidden.contains(k.as_str()));
                entries.push(entry);
            }
        }
        entries.sort_by(|a, b| b.id.cmp(&a.id));
        entries.truncate(wanted.limit as usize);
        Ok(entries)
    }

    /// The audit trail of a record, without the fields the caller may not see. After
    /// a delete, only those who may read every record of the object see it.
    pub async fn history(
        &self,
        actor: &Actor,
        object: &str,
        id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, RecordError> {
        let c = self.caller(actor, object)?;
        match self.fetch(&c.object, id).await? {
            Some(record) => self.authorize(&c, &record, Action::Read).await?,
            None => {
                let reads_all = c
                    .rights
                    .grants(Action::Read)
                    .iter()
                    .any(|g| g.scope == Scope::All);
                if !reads_all {
                    return Err(self
                        .deny(
                            &c,
                            Action::Read,
                            Some(id),
                            "history of a deleted record",
                            RecordError::NotFound,
                        )
                        .await);
                }
            }
        }
        let mut entries = audit::history(&self.db, &c.object.name, id, after, limit).await?;
        if entries.is_empty() && after.is_none() {
            return Err(RecordError::NotFound);
        }
        let hidden: HashSet<&str> = c.rights.hidden_fields().collect();
        if !hidden.is_empty() {
            for entry in &mut entries {
                entry.changes.retain(|k, _| !hidden.contains(k.as_str()));
            }
        }
        Ok(entries)
    }

    /// Step 4 of the write path: the before-save hooks of the approved plugins enabled
    /// in the record's department, in plugin id order. Each sees the record as it will
    /// be stored; a patch it returns is checked like the client's own (field rights,
    /// validation, references), because a plugin acts with the caller's rights.
    async fn run_before_save(
        &self,
        c: &Caller<'_>,
        operation: &str,
        record: &mut Record,
    ) -> Result<(), RecordError> {
        for plugin in self
            .plugins
            .before_save_hooks(&c.object.name, record.department.as_deref())
        {
            let name = format!("{} {}", plugin.info.id, plugin.info.version);
            let context = SaveContext {
                object: c.object.name.clone(),
                operation: operation.to_string(),
                actor: c.actor.user_id.clone(),
                department: record.department.clone(),
            };
            let host = plugin.host_context(self, c.actor, record.department.clone(), false);
            let json = serde_json::to_string(&*record).expect("a record serialises");
            let patch = match self
                .plugins
                .runtime()
                .before_save(&plugin.loaded, host, &context, &json)
                .await
            {
                Ok(None) => {
                    self.plugins.record_outcome(&plugin.info.id, None).await;
                    continue;
                }
                Ok(Some(patch)) => {
                    self.plugins.record_outcome(&plugin.info.id, None).await;
                    patch
                }
                Err(CallError::Invalid(errors)) => {
                    self.plugins.record_outcome(&plugin.info.id, None).await;
                    return Err(RecordError::Invalid(
                        errors
                            .into_iter()
                            .map(|e| FieldError::new(e.field, e.message))
                            .collect(),
                    ));
                }
                Err(CallError::Failed(message)) => {
                    tracing::warn!(plugin = %name, %message, "a before-save hook failed");
                    self.plugins
                        .record_outcome(&plugin.info.id, Some(&message))
                        .await;
                    return Err(RecordError::Plugin(format!(
                        "the plugin {name} failed, so nothing was saved: {message}"
                    )));
                }
            };
            let Ok(Value::Object(patch)) = serde_json::from_str::<Value>(&patch) else {
                return Err(RecordError::Plugin(format!(
                    "the plugin {name} returned a patch that is not a JSON object, so nothing was saved"
                )));
            };
            if patch.contains_key("owner") || patch.contains_key("department") {
                return Err(RecordError::Plugin(format!(
                    "the plugin {name} tried to change the owner or department, which hooks may not"
                )));
            }
            self.check_writable(c, Action::Update, Some(&record.id), patch.keys())
                .await?;
            let valid = validate(&c.object, &patch, Mode::Update).map_err(RecordError::Invalid)?;
            self.check_references(c, &valid.references).await?;
            for (k, v) in valid.values {
                if v.is_null() {
                    record.fields.remove(&k);
                } else {
                    record.fields.insert(k, v);
                }
            }
        }
        Ok(())
    }

    /// Gives a record another owner and/or department (through the one write path).
    pub async fn transfer(
        &self,
        actor: &Actor,
        object: &str,
        id: &str,
        owner: Option<String>,
        department: Option<String>,
    ) -> Result<Record, RecordError> {
        let mut patch = Map::new();
        if let Some(o) = owner {
            patch.insert("owner".into(), Value::String(o));
        }
        if let Some(d) = department {
            patch.insert("department".into(), Value::String(d));
        }
        if patch.is_empty() {
            return Err(RecordError::Invalid(vec![FieldError::new(
                "owner",
                "give a new owner, a new department or both",
            )]));
        }
        self.update(actor, object, id, &patch, None).await
    }

    /// The shares of a record, for whoever may read it.
    pub async fn shares(
        &self,
        actor: &Actor,
        object: &str,
        id: &str,
    ) -> Result<Vec<Share>, ApiError> {
        let c = self.caller(actor, object)?;
        let record = self
            .fetch(&c.object, id)
            .await?
            .ok_or(RecordError::NotFound)?;
        self.authorize(&c, &record, Action::Read).await?;
        self.access.list_shares(&c.object.name, id).await
    }

    /// Shares a record or stops sharing it: for its owner, and for holders of the
    /// admin right over it.
    pub async fn share(
        &self,
        actor: &Actor,
        object: &str,
        id: &str,
        change: ShareChange<'_>,
    ) -> Result<Option<Share>, ApiError> {
        let c = self.caller(actor, object)?;
        let record = self
            .fetch(&c.object, id)
            .await?
            .ok_or(RecordError::NotFound)?;
        self.authorize(&c, &record, Action::Read).await?;
        if !c.may_share(&record) {
            let what = format!(
                "only the owner or an admin of this {} record may share it",
                c.object.name
            );
            return Err(self
                .deny(
                    &c,
                    Action::Admin,
                    Some(id),
                    &what,
                    RecordError::Forbidden(what.clone()),
                )
                .await
                .into());
        }
        match change {
            ShareChange::Put(input) => Ok(Some(
                self.access
                    .put_share(&actor.user_id, &c.object.name, id, input)
                    .await?,
            )),
            ShareChange::Remove(share_id) => {
                self.access
                    .delete_share(&c.object.name, id, share_id)
                    .await?;
                Ok(None)
            }
        }
    }

    fn record_columns(&self) -> String {
        format!(
            "id, object, version, owner_id, department_id, created_at, updated_at, {} AS data",
            self.db.dialect.json_text("data")
        )
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

    /// Confirms that every referenced user exists and every referenced record exists
    /// and is readable by the caller (so a reference is no way to probe for records).
    async fn check_references(
        &self,
        c: &Caller<'_>,
        checks: &[ReferenceCheck],
    ) -> Result<(), RecordError> {
        let mut errors = Vec::new();
        for check in checks {
            let exists: Option<i64> = match &check.target {
                RefTarget::Record(target) => {
                    let rights = c.user.object(target);
                    let scope = c.user.read_scope(&rights);
                    let mut b = SqlBuilder::default();
                    let id = b.bind(Bind::Text(check.id.clone()));
                    let object = b.bind(Bind::Text(target.clone()));
                    let mut sql =
                        format!("SELECT 1 FROM records WHERE id = {id} AND object = {object}");
                    if let Some(readable) = scope.sql(target, &mut b) {
                        sql.push_str(" AND ");
                        sql.push_str(&readable);
                    }
                    bind_all(sqlx::query(AssertSqlSafe(sql)), b.binds)
                        .fetch_optional(&self.db.pool)
                        .await?
                        .map(|_| 1)
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

/// A change to a record's shares.
pub enum ShareChange<'a> {
    Put(&'a ShareInput),
    Remove(&'a str),
}

/// Adds owner and department changes to an audit entry's field changes.
fn placement_changes(
    changes: &mut Map<String, Value>,
    (old_owner, old_department): (&Option<String>, &Option<String>),
    record: &Record,
) {
    if *old_owner != record.owner {
        changes.insert(
            "owner".into(),
            serde_json::json!({"old": old_owner, "new": record.owner}),
        );
    }
    if *old_department != record.department {
        changes.insert(
            "department".into(),
            serde_json::json!({"old": old_department, "new": record.department}),
        );
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
        payload: {
            let mut payload = serde_json::json!({"record": record});
            // A create's changes repeat the record: read back from it, not stored
            // (see `events::list`).
            if topic != events::CREATED {
                payload["changes"] = Value::Object(changes.clone());
            }
            if let Some(plugin) = &actor.plugin {
                payload["plugin"] = Value::from(plugin.clone());
            }
            payload
        },
        created_at: at.to_string(),
    }
}

/// Takes the optional `id` a creator chose out of the input: a UUID, stored in its
/// canonical form.
fn split_id(
    input: &Map<String, Value>,
) -> Result<(Option<String>, Map<String, Value>), RecordError> {
    let mut rest = input.clone();
    let Some(value) = rest.remove("id") else {
        return Ok((None, rest));
    };
    match value.as_str().and_then(|s| uuid::Uuid::parse_str(s).ok()) {
        Some(id) if !id.is_nil() => Ok((Some(id.to_string()), rest)),
        _ => Err(RecordError::Invalid(vec![FieldError::new(
            "id",
            "is a UUID you choose for the new record (or leave it out)",
        )])),
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

/// A group key's value as JSON, read as the type its column has.
fn group_value(row: &AnyRow, name: &str, column: &Column<'_>) -> Result<Value, sqlx::Error> {
    use super::metadata::FieldType;
    Ok(match column.kind() {
        Some(FieldType::Integer) => row.try_get::<Option<i64>, _>(name)?.map(Value::from),
        Some(FieldType::Decimal | FieldType::Currency) => {
            row.try_get::<Option<f64>, _>(name)?.map(Value::from)
        }
        // SQLite answers a boolean cast as 0 or 1.
        Some(FieldType::Boolean) => match row.try_get::<Option<bool>, _>(name) {
            Ok(v) => v.map(Value::from),
            Err(_) => row
                .try_get::<Option<i64>, _>(name)?
                .map(|n| Value::from(n != 0)),
        },
        Some(_) | None if matches!(column, Column::Version) => {
            row.try_get::<Option<i64>, _>(name)?.map(Value::from)
        }
        _ => row.try_get::<Option<String>, _>(name)?.map(Value::from),
    }
    .unwrap_or(Value::Null))
}
