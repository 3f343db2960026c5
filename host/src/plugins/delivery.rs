//! After-save delivery: feeds committed changes from the outbox to plugins'
//! after-save hooks.
//!
//! - At least once: a plugin's cursor (`plugin_cursors.last_seq`) moves past an event
//!   only after the hook accepted it or it became a dead letter, so a host stopped
//!   mid-way delivers it again after the restart.
//! - In order per record: each plugin's events are delivered one at a time in outbox
//!   order.
//! - Retries with backoff ([`BACKOFF`]); after the last attempt the event is kept in
//!   `plugin_dead_letters`, where an admin reads and replays it.
//! - Several hosts: a host holds a lease on a plugin's cursor while it delivers, so
//!   no two deliver the same plugin's events at once.
//! - Only for departments where the plugin is enabled, and never for changes the
//!   plugin made itself (that would loop).

use std::time::Duration;

use chrono::Utc;
use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use super::runtime::v0_1::crm::plugin::types::Change;
use super::{Installed, PluginService};
use crate::api::error::ApiError;
use crate::auth::Actor;
use crate::db::{self, Db};
use crate::events::Event;
use crate::records::service::RecordService;

/// Waits between attempts; one attempt more than entries.
pub const BACKOFF: &[Duration] = &[
    Duration::from_millis(100),
    Duration::from_millis(500),
    Duration::from_secs(2),
];
/// Events read per plugin per round.
const BATCH: i64 = 100;
/// How long a host's claim on a plugin's cursor lasts without renewal.
const LEASE: chrono::TimeDelta = chrono::TimeDelta::seconds(60);
/// Rounds also run this often when nothing woke the deliverer (changes committed by
/// another host).
const POLL: Duration = Duration::from_secs(1);

/// An after-save delivery that failed every attempt.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DeadLetter {
    pub id: String,
    pub plugin_id: String,
    /// The outbox event (`GET /api/v1/events`).
    pub event_seq: i64,
    pub attempts: i64,
    /// The last attempt's error.
    pub error: String,
    pub created_at: String,
    pub updated_at: String,
}

/// Outcome of replaying a dead letter.
#[derive(Debug, Serialize, ToSchema)]
pub struct Replay {
    /// True when the hook accepted it this time (the dead letter is gone).
    pub delivered: bool,
    /// Why it failed again.
    pub error: Option<String>,
}

#[derive(Clone)]
pub struct Deliverer {
    plugins: PluginService,
    records: RecordService,
    host_id: String,
}

impl Deliverer {
    pub fn new(plugins: PluginService, records: RecordService) -> Self {
        Deliverer {
            plugins,
            records,
            host_id: db::new_id(),
        }
    }

    fn db(&self) -> &Db {
        self.records.db()
    }

    /// Delivers in the background: after each committed batch of writes, and every
    /// [`POLL`].
    pub fn spawn(self) {
        let committed = self.records.committed();
        tokio::spawn(async move {
            loop {
                let _ = tokio::time::timeout(POLL, committed.notified()).await;
                if let Err(e) = self.round().await {
                    tracing::error!(error = %e, "after-save delivery round failed");
                }
            }
        });
    }

    /// One pass over every plugin with an after-save hook.
    pub async fn round(&self) -> Result<(), sqlx::Error> {
        for plugin in self.plugins.after_save_plugins() {
            while self.deliver_batch(&plugin).await? == BATCH {}
        }
        Ok(())
    }

    /// Claims the plugin's cursor and delivers up to [`BATCH`] events; answers how
    /// many events it read.
    async fn deliver_batch(&self, plugin: &Installed) -> Result<i64, sqlx::Error> {
        let id = &plugin.info.id;
        let now = Utc::now();
        let claimed = sqlx::query(
            "UPDATE plugin_cursors SET lease_owner = $1, lease_until = $2 \
             WHERE plugin_id = $3 AND (lease_owner IS NULL OR lease_owner = $1 OR lease_until < $4)",
        )
        .bind(&self.host_id)
        .bind(db::format_time(now + LEASE))
        .bind(id)
        .bind(db::format_time(now))
        .execute(&self.db().pool)
        .await?
        .rows_affected();
        if claimed == 0 {
            // Another host delivers for it, or it has no cursor (installed before
            // after-save existed): start one from now.
            sqlx::query(
                "INSERT INTO plugin_cursors (plugin_id, last_seq) \
                 SELECT $1, COALESCE(MAX(seq), 0) FROM outbox WHERE true ON CONFLICT (plugin_id) DO NOTHING",
            )
            .bind(id)
            .execute(&self.db().pool)
            .await?;
            return Ok(0);
        }
        let last: i64 =
            sqlx::query_scalar("SELECT last_seq FROM plugin_cursors WHERE plugin_id = $1")
                .bind(id)
                .fetch_one(&self.db().pool)
                .await?;
        // Not past a young gap in seq: a write committing beside others on
        // PostgreSQL may still fill it, and its event must not be skipped.
        let events =
            crate::events::settled(crate::events::list(self.db(), last, BATCH).await?, last);
        let read = events.len() as i64;
        let subscribed = &plugin.info.manifest.hooks.after_save;
        for event in events {
            if subscribed.contains(&event.object)
                && self.concerns(plugin, &event)
                && let Err(error) = self.deliver_with_retries(plugin, &event).await
            {
                self.bury(id, &event, error).await?;
            }
            sqlx::query(
                "UPDATE plugin_cursors SET last_seq = $1, lease_until = $2 WHERE plugin_id = $3 AND lease_owner = $4",
            )
            .bind(event.seq)
            .bind(db::format_time(Utc::now() + LEASE))
            .bind(id)
            .bind(&self.host_id)
            .execute(&self.db().pool)
            .await?;
        }
        Ok(read)
    }

    /// Is the event for this plugin: in a department where it runs, and not a change
    /// the plugin made itself?
    fn concerns(&self, plugin: &Installed, event: &Event) -> bool {
        let by_itself =
            event.payload.get("plugin").and_then(|p| p.as_str()) == Some(&plugin.info.id);
        let department = event.payload["record"]["department"].as_str();
        !by_itself && department.is_some_and(|d| plugin.runs_in(d))
    }

    async fn deliver_with_retries(&self, plugin: &Installed, event: &Event) -> Result<(), String> {
        let mut attempt = 0;
        loop {
            let error = match self.deliver(plugin, event).await {
                Ok(()) => {
                    self.plugins.record_outcome(&plugin.info.id, None).await;
                    return Ok(());
                }
                Err(e) => e,
            };
            tracing::warn!(plugin = %plugin.info.id, seq = event.seq, attempt, %error, "an after-save hook failed");
            let Some(wait) = BACKOFF.get(attempt) else {
                self.plugins
                    .record_outcome(&plugin.info.id, Some(&error))
                    .await;
                return Err(error);
            };
            tokio::time::sleep(*wait).await;
            attempt += 1;
        }
    }

    /// One attempt, acting for the user whose change it was.
    async fn deliver(&self, plugin: &Installed, event: &Event) -> Result<(), String> {
        let actor = match &event.actor {
            Some(user) => actor_of(self.db(), user).await?,
            None => return Err("the change has no acting user".into()),
        };
        let department = event.payload["record"]["department"]
            .as_str()
            .map(str::to_string);
        let host = plugin.host_context(&self.records, &actor, department, true);
        let change = Change {
            topic: event.topic.clone(),
            object: event.object.clone(),
            record_id: event.record_id.clone(),
            actor: event.actor.clone(),
            payload: event.payload.to_string(),
        };
        self.plugins
            .runtime()
            .after_save(&plugin.loaded, host, &change)
            .await
    }

    async fn bury(&self, plugin: &str, event: &Event, error: String) -> Result<(), sqlx::Error> {
        let now = db::now();
        sqlx::query(
            "INSERT INTO plugin_dead_letters (id, plugin_id, event_seq, attempts, error, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(db::new_id())
        .bind(plugin)
        .bind(event.seq)
        .bind(BACKOFF.len() as i64 + 1)
        .bind(&error)
        .bind(&now)
        .execute(&self.db().pool)
        .await?;
        Ok(())
    }

    /// A plugin's dead letters, oldest first.
    pub async fn dead_letters(&self, plugin: &str) -> Result<Vec<DeadLetter>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id, plugin_id, event_seq, attempts, error, created_at, updated_at \
             FROM plugin_dead_letters WHERE plugin_id = $1 ORDER BY id LIMIT 1000",
        )
        .bind(plugin)
        .fetch_all(&self.db().pool)
        .await?;
        rows.iter().map(dead_letter_from_row).collect()
    }

    /// Delivers a dead letter once more (one attempt): gone when it succeeds, its
    /// attempts and error updated when not.
    pub async fn replay(&self, plugin: &str, id: &str) -> Result<Replay, ApiError> {
        let installed = self
            .plugins
            .installed(plugin)
            .ok_or_else(|| ApiError::not_found(format!("there is no plugin '{plugin}'")))?;
        let row = sqlx::query(
            "SELECT id, plugin_id, event_seq, attempts, error, created_at, updated_at \
             FROM plugin_dead_letters WHERE plugin_id = $1 AND id = $2",
        )
        .bind(plugin)
        .bind(id)
        .fetch_optional(&self.db().pool)
        .await?
        .ok_or_else(|| ApiError::not_found("there is no such dead letter"))?;
        let letter = dead_letter_from_row(&row)?;
        let event = crate::events::list(self.db(), letter.event_seq - 1, 1)
            .await?
            .into_iter()
            .find(|e| e.seq == letter.event_seq)
            .ok_or_else(|| {
                ApiError::conflict("the event of this dead letter is no longer in the outbox")
            })?;
        match self.deliver(&installed, &event).await {
            Ok(()) => {
                sqlx::query("DELETE FROM plugin_dead_letters WHERE id = $1")
                    .bind(id)
                    .execute(&self.db().pool)
                    .await?;
                Ok(Replay {
                    delivered: true,
                    error: None,
                })
            }
            Err(error) => {
                sqlx::query(
                    "UPDATE plugin_dead_letters SET attempts = attempts + 1, error = $1, updated_at = $2 WHERE id = $3",
                )
                .bind(&error)
                .bind(db::now())
                .bind(id)
                .execute(&self.db().pool)
                .await?;
                Ok(Replay {
                    delivered: false,
                    error: Some(error),
                })
            }
        }
    }
}

fn dead_letter_from_row(r: &sqlx::any::AnyRow) -> Result<DeadLetter, sqlx::Error> {
    Ok(DeadLetter {
        id: r.try_get("id")?,
        plugin_id: r.try_get("plugin_id")?,
        event_seq: r.try_get("event_seq")?,
        attempts: r.try_get("attempts")?,
        error: r.try_get("error")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// The acting user of a change, as the records service knows callers.
pub(crate) async fn actor_of(db: &Db, user: &str) -> Result<Actor, String> {
    let row = sqlx::query("SELECT id, email, name FROM users WHERE id = $1 AND active = 1")
        .bind(user)
        .fetch_optional(&db.pool)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("the user {user} who made the change is no longer active"))?;
    let get = |c: &str| row.try_get::<String, _>(c).map_err(|e| e.to_string());
    Ok(Actor {
        user_id: get("id")?,
        email: get("email")?,
        name: get("name")?,
        token_id: String::new(),
        plugin: None,
    })
}
