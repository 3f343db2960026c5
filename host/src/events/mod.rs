//! The event outbox. Every record write stores its event in the same transaction,
//! so hooks, processes and webhooks can consume changes later without ever missing
//! one or seeing one that was rolled back. Consumers read in `seq` order.

pub mod routes;

use serde::Serialize;
use serde_json::Value;
use sqlx::AssertSqlSafe;
use sqlx::{AnyConnection, Row};
use utoipa::ToSchema;

use crate::db::{Db, Dialect};
use crate::records::metadata::SYSTEM_KEYS;

/// One stored event: `record.created`, `record.updated` or `record.deleted`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Event {
    /// Position in the outbox; strictly increasing.
    pub seq: i64,
    pub id: String,
    pub topic: String,
    pub object: String,
    pub record_id: String,
    pub record_version: i64,
    pub actor: Option<String>,
    /// The record after the change (before it, for a delete) and the changed fields.
    #[schema(value_type = Object)]
    pub payload: Value,
    pub created_at: String,
}

/// The topic of a new record's event.
pub const CREATED: &str = "record.created";

/// A created record's changes are every value it was created with, owner and
/// department last: they are not stored with its event, since they would repeat the
/// record (a third of what an import writes per row), but read back from it here.
fn with_changes(topic: &str, mut payload: Value) -> Value {
    if topic != CREATED || payload.get("changes").is_some() {
        return payload;
    }
    let Some(record) = payload.get("record").and_then(Value::as_object) else {
        return payload;
    };
    // The values it was created with, placement last, diffed against nothing: the
    // same `audit::diff` the records service computed them with.
    let mut created: serde_json::Map<String, Value> = record
        .iter()
        .filter(|(key, _)| !SYSTEM_KEYS.contains(&key.as_str()))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    for placement in ["owner", "department"] {
        if let Some(value) = record.get(placement) {
            created.insert(placement.to_string(), value.clone());
        }
    }
    let changes = crate::audit::diff(&serde_json::Map::new(), &created);
    payload["changes"] = Value::Object(changes);
    payload
}

/// Writes events, in one statement and in the given order, on the connection of the
/// caller's transaction.
pub async fn insert(
    conn: &mut AnyConnection,
    dialect: Dialect,
    events: &[&Event],
) -> Result<(), sqlx::Error> {
    let rows = crate::db::values_rows(dialect, events.len(), 8, Some(7));
    let sql = format!(
        "INSERT INTO outbox (id, topic, object, record_id, record_version, actor_id, payload, created_at) VALUES {rows}"
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for e in events {
        query = query
            .bind(&e.id)
            .bind(&e.topic)
            .bind(&e.object)
            .bind(&e.record_id)
            .bind(e.record_version)
            .bind(&e.actor)
            .bind(e.payload.to_string())
            .bind(&e.created_at);
    }
    query.execute(conn).await?;
    Ok(())
}

/// Runs `round` for as long as the host runs, for a consumer of the outbox (the
/// webhook deliverer, the notifier): again at once while it says there is more, else
/// after the next commit of record writes or a second, whichever comes first.
pub fn spawn_consumer<F, Fut>(
    what: &'static str,
    committed: std::sync::Arc<tokio::sync::Notify>,
    round: F,
) where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<bool, sqlx::Error>> + Send,
{
    tokio::spawn(async move {
        loop {
            let busy = match round().await {
                Ok(busy) => busy,
                Err(e) => {
                    tracing::error!(error = %e, consumer = what, "an outbox consumer's round failed");
                    false
                }
            };
            if !busy {
                let wait = std::time::Duration::from_secs(1);
                let _ = tokio::time::timeout(wait, committed.notified()).await;
            }
        }
    });
}

/// How long a consumer waits on a gap in `seq`: on PostgreSQL writers commit side
/// by side, so seq 102 can be visible before 101 commits; a gap older than this is a
/// write that rolled back.
const GAP_WAIT_SECONDS: i64 = 10;

/// The events of `batch` (read after `after`) a consumer may take now: those before
/// the first gap in `seq` that is young enough to be a write still committing, so a
/// cursor never moves past an event that is about to appear.
pub fn settled(batch: Vec<Event>, after: i64) -> Vec<Event> {
    let young =
        crate::db::format_time(chrono::Utc::now() - chrono::Duration::seconds(GAP_WAIT_SECONDS));
    let mut last = after;
    let mut taken = Vec::with_capacity(batch.len());
    for event in batch {
        if event.seq != last + 1 && event.created_at > young {
            break;
        }
        last = event.seq;
        taken.push(event);
    }
    taken
}

/// Events after `after` in outbox order.
pub async fn list(db: &Db, after: i64, limit: i64) -> Result<Vec<Event>, sqlx::Error> {
    let sql = format!(
        "SELECT seq, id, topic, object, record_id, record_version, actor_id, {} AS payload, created_at \
         FROM outbox WHERE seq > $1 ORDER BY seq LIMIT $2",
        db.dialect.json_text("payload")
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(after)
        .bind(limit)
        .fetch_all(&db.pool)
        .await?;
    rows.iter()
        .map(|r| {
            let payload: String = r.try_get("payload")?;
            let topic: String = r.try_get("topic")?;
            let payload = serde_json::from_str(&payload)
                .map_err(|e| crate::audit::decode_error(e.to_string()))?;
            Ok(Event {
                seq: r.try_get("seq")?,
                id: r.try_get("id")?,
                payload: with_changes(&topic, payload),
                topic,
                object: r.try_get("object")?,
                record_id: r.try_get("record_id")?,
                record_version: r.try_get("record_version")?,
                actor: r.try_get("actor_id")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_created_events_changes_are_read_back_from_its_record() {
        let record = json!({"id": "r", "object": "deals", "version": 1, "created_at": "t",
            "updated_at": "t", "owner": "u1", "department": null, "name": "Big", "amount": 5});
        let read = with_changes(CREATED, json!({"record": record, "plugin": "p"}));
        assert_eq!(
            read["changes"],
            json!({"name": {"old": null, "new": "Big"}, "amount": {"old": null, "new": 5},
                "owner": {"old": null, "new": "u1"}})
        );
        assert_eq!(read["plugin"], "p");
        // Events stored with their changes (updates, and creates written before the
        // changes were left out) are read as stored.
        for topic in [CREATED, "record.updated"] {
            let stored = json!({"record": record, "changes": {"amount": {"old": 4, "new": 5}}});
            assert_eq!(with_changes(topic, stored.clone()), stored);
        }
    }

    fn at(seq: i64, seconds_ago: i64) -> Event {
        Event {
            seq,
            id: seq.to_string(),
            topic: "record.created".into(),
            object: "deals".into(),
            record_id: "r".into(),
            record_version: 1,
            actor: None,
            payload: Value::Null,
            created_at: crate::db::format_time(
                chrono::Utc::now() - chrono::Duration::seconds(seconds_ago),
            ),
        }
    }

    #[test]
    fn consumers_stop_at_a_young_gap_and_pass_an_old_one() {
        let seqs = |events: Vec<Event>| events.iter().map(|e| e.seq).collect::<Vec<_>>();
        // 3 is missing and 4 was just written: 3 may still be committing.
        assert_eq!(seqs(settled(vec![at(1, 0), at(2, 0), at(4, 0)], 0)), [1, 2]);
        // A gap at the start counts too.
        assert_eq!(seqs(settled(vec![at(7, 0)], 5)), Vec::<i64>::new());
        // A gap older than the wait is a write that rolled back.
        assert_eq!(
            seqs(settled(vec![at(1, 60), at(4, 60), at(5, 0)], 0)),
            [1, 4, 5]
        );
    }
}
