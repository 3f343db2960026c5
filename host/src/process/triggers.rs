//! What starts and wakes instances besides people: record changes read from the
//! outbox (record and form triggers, and `wait_record` nodes waiting for their
//! record), and schedules.
//!
//! The outbox is read under a lease on one cursor, so one host at a time reads it;
//! each start carries its event's seq (`event:<seq>`), unique per process, so an
//! event read twice (a host stopped before moving the cursor) starts nothing new.

use chrono::Utc;
use serde_json::{Value, json};
use sqlx::Row;

use super::definition::{NodeKind, Trigger, due_after};
use super::engine::{ProcessService, RecordRef, StartInput};
use super::expr::{self, Expr};
use crate::api::error::ApiError;
use crate::db;
use crate::events::Event;

/// Events read per round.
const BATCH: i64 = 200;
/// How long a host's hold on the cursor lasts.
const LEASE: chrono::TimeDelta = chrono::TimeDelta::seconds(30);
const CURSOR: &str = "records";

/// A record trigger of the newest version of a process.
struct RecordTrigger {
    key: String,
    object: String,
    on: Vec<String>,
    condition: Option<Expr>,
}

impl ProcessService {
    /// Publishing a version with a schedule (re)starts its clock; one without
    /// stops it.
    pub(super) async fn schedule(
        &self,
        key: &str,
        definition: &super::definition::Definition,
    ) -> Result<(), ApiError> {
        let every = definition.start().and_then(|s| match &s.kind {
            NodeKind::Start {
                trigger: Trigger::Schedule { every },
            } => Some(every.clone()),
            _ => None,
        });
        sqlx::query("DELETE FROM process_schedules WHERE process_key = $1")
            .bind(key)
            .execute(&self.db.pool)
            .await?;
        if let Some(every) = every {
            let next = due_after(Some(&every), None, Utc::now()).map_err(ApiError::internal)?;
            sqlx::query("INSERT INTO process_schedules (process_key, next_at) VALUES ($1, $2)")
                .bind(key)
                .bind(db::format_time(next))
                .execute(&self.db.pool)
                .await?;
        }
        Ok(())
    }

    /// Reads new events (starting and waking instances) and starts scheduled
    /// processes that are due; answers how many events it read.
    pub async fn trigger_round(&self) -> Result<usize, ApiError> {
        self.scheduled().await?;
        let last: Option<i64> =
            sqlx::query_scalar("SELECT last_seq FROM process_trigger_cursor WHERE name = $1")
                .bind(CURSOR)
                .fetch_optional(&self.db.pool)
                .await?;
        let newest: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM outbox")
            .fetch_one(&self.db.pool)
            .await?;
        let Some(last) = last else {
            // The first round of this CRM: triggers start from now.
            sqlx::query(
                "INSERT INTO process_trigger_cursor (name, last_seq) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            )
            .bind(CURSOR)
            .bind(newest)
            .execute(&self.db.pool)
            .await?;
            return Ok(0);
        };
        if newest <= last {
            return Ok(0);
        }
        let now = Utc::now();
        let claimed = sqlx::query(
            "UPDATE process_trigger_cursor SET lease_owner = $1, lease_until = $2 \
             WHERE name = $3 AND (lease_owner IS NULL OR lease_owner = $1 OR lease_until < $4)",
        )
        .bind(&self.host_id)
        .bind(db::format_time(now + LEASE))
        .bind(CURSOR)
        .bind(db::format_time(now))
        .execute(&self.db.pool)
        .await?;
        if claimed.rows_affected() == 0 {
            return Ok(0);
        }
        let last: i64 =
            sqlx::query_scalar("SELECT last_seq FROM process_trigger_cursor WHERE name = $1")
                .bind(CURSOR)
                .fetch_one(&self.db.pool)
                .await?;
        let triggers = self.record_triggers().await?;
        let waiting: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM process_tokens WHERE status = 'waiting' LIMIT 1")
                .fetch_optional(&self.db.pool)
                .await?;
        if triggers.is_empty() && waiting.is_none() {
            // Nothing listens: skip to the newest event in one step.
            sqlx::query(
                "UPDATE process_trigger_cursor SET last_seq = $1 WHERE name = $2 AND lease_owner = $3 AND last_seq < $1",
            )
            .bind(newest)
            .bind(CURSOR)
            .bind(&self.host_id)
            .execute(&self.db.pool)
            .await?;
            return Ok(0);
        }
        // Not past a young gap in seq (a write still committing on PostgreSQL).
        let events =
            crate::events::settled(crate::events::list(&self.db, last, BATCH).await?, last);
        for event in &events {
            if let Err(e) = self.on_event(&triggers, event, waiting.is_some()).await {
                tracing::warn!(seq = event.seq, error = ?e, "a process trigger could not act on an event");
            }
            sqlx::query(
                "UPDATE process_trigger_cursor SET last_seq = $1 WHERE name = $2 AND lease_owner = $3",
            )
            .bind(event.seq)
            .bind(CURSOR)
            .bind(&self.host_id)
            .execute(&self.db.pool)
            .await?;
        }
        Ok(events.len())
    }

    /// The record and form triggers of the newest version of each process.
    async fn record_triggers(&self) -> Result<Vec<RecordTrigger>, ApiError> {
        let mut triggers = Vec::new();
        for published in self.list().await? {
            let Some(start) = published.definition.start() else {
                continue;
            };
            let NodeKind::Start { trigger } = &start.kind else {
                continue;
            };
            let (object, on, condition) = match trigger {
                Trigger::Record {
                    object,
                    on,
                    condition,
                } => (
                    object.clone(),
                    on.clone(),
                    condition
                        .as_deref()
                        .map(expr::parse)
                        .transpose()
                        .map_err(ApiError::internal)?,
                ),
                // A form's submissions are records of the forms plugin's object.
                Trigger::Form { form } => (
                    "form_submissions".to_string(),
                    vec!["created".to_string()],
                    Some(Expr::Compare(
                        Box::new(Expr::Name(vec!["record".into(), "form".into()])),
                        expr::Cmp::Eq,
                        Box::new(Expr::Literal(Value::String(form.clone()))),
                    )),
                ),
                Trigger::Manual | Trigger::Schedule { .. } => continue,
            };
            triggers.push(RecordTrigger {
                key: published.key,
                object,
                on,
                condition,
            });
        }
        Ok(triggers)
    }

    async fn on_event(
        &self,
        triggers: &[RecordTrigger],
        event: &Event,
        anyone_waits: bool,
    ) -> Result<(), ApiError> {
        let op = match event.topic.as_str() {
            "record.created" => "created",
            "record.updated" => "updated",
            _ => return Ok(()),
        };
        if anyone_waits {
            self.wake_waiting(&event.object, &event.record_id).await?;
        }
        let scope = json!({
            "record": event.payload.get("record").cloned().unwrap_or(Value::Null),
            "changes": event.payload.get("changes").cloned().unwrap_or(Value::Null),
        });
        for t in triggers {
            let matches = t.object == event.object
                && t.on.iter().any(|o| o == op)
                && t.condition.as_ref().is_none_or(|c| c.holds(&scope));
            if !matches {
                continue;
            }
            let Some(user) = &event.actor else { continue };
            let actor = self.actor(user).await.map_err(ApiError::internal)?;
            let input = StartInput {
                variables: Default::default(),
                record: Some(RecordRef {
                    object: event.object.clone(),
                    id: event.record_id.clone(),
                }),
            };
            self.start_once(&actor, &t.key, input, Some(format!("event:{}", event.seq)))
                .await?;
        }
        Ok(())
    }

    /// Tokens waiting for this record to match their condition look again.
    async fn wake_waiting(&self, object: &str, id: &str) -> Result<(), ApiError> {
        let rows = sqlx::query(
            "SELECT t.id, t.node, i.definition_id FROM process_tokens t \
             JOIN process_instances i ON i.id = t.instance_id \
             WHERE i.record_object = $1 AND i.record_id = $2 AND i.status = 'running' AND t.status = 'waiting'",
        )
        .bind(object)
        .bind(id)
        .fetch_all(&self.db.pool)
        .await?;
        let mut woke = false;
        for row in &rows {
            let definition = self
                .definition(&row.try_get::<String, _>("definition_id")?)
                .await?;
            let node: String = row.try_get("node")?;
            if !matches!(
                definition.node(&node).map(|n| &n.kind),
                Some(NodeKind::WaitRecord { .. })
            ) {
                continue;
            }
            let now = db::now();
            sqlx::query(
                "UPDATE process_tokens SET status = 'ready', due_at = $1, updated_at = $1 WHERE id = $2 AND status = 'waiting'",
            )
            .bind(&now)
            .bind(row.try_get::<String, _>("id")?)
            .execute(&self.db.pool)
            .await?;
            woke = true;
        }
        if woke {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Starts the scheduled processes that are due, once per due time.
    async fn scheduled(&self) -> Result<(), ApiError> {
        let now = Utc::now();
        let due =
            sqlx::query("SELECT process_key, next_at FROM process_schedules WHERE next_at <= $1")
                .bind(db::format_time(now))
                .fetch_all(&self.db.pool)
                .await?;
        for row in &due {
            let key: String = row.try_get("process_key")?;
            let at: String = row.try_get("next_at")?;
            let published = self.get(&key, None).await?;
            let Some(NodeKind::Start {
                trigger: Trigger::Schedule { every },
            }) = published.definition.start().map(|s| &s.kind)
            else {
                continue;
            };
            // The next time after now (missed runs while stopped are not made up).
            let mut next = due_after(Some(every), None, parse(&at)?).map_err(ApiError::internal)?;
            while next <= now {
                next = due_after(Some(every), None, next).map_err(ApiError::internal)?;
            }
            let moved = sqlx::query(
                "UPDATE process_schedules SET next_at = $1 WHERE process_key = $2 AND next_at = $3",
            )
            .bind(db::format_time(next))
            .bind(&key)
            .bind(&at)
            .execute(&self.db.pool)
            .await?;
            if moved.rows_affected() != 1 {
                continue; // another host took this run
            }
            let actor = self
                .actor(&published.published_by)
                .await
                .map_err(ApiError::internal)?;
            self.start_once(
                &actor,
                &key,
                StartInput::default(),
                Some(format!("schedule:{at}")),
            )
            .await?;
        }
        Ok(())
    }
}

fn parse(at: &str) -> Result<chrono::DateTime<Utc>, ApiError> {
    chrono::DateTime::parse_from_rfc3339(at)
        .map(|t| t.with_timezone(&Utc))
        .map_err(ApiError::internal)
}
