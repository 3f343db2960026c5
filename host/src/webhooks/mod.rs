//! Outgoing webhooks: an admin subscribes a URL to record events; the host delivers
//! each matching event from the outbox at least once, signed with HMAC-SHA256, retried
//! with growing waits, every attempt kept in a delivery log from which a failed one
//! can be replayed. What a webhook is sent is what its owner may read: records out of
//! the owner's read scope are not sent, hidden fields are left out.

pub mod routes;
mod worker;

use serde::Serialize;
use serde_json::Value;
use sqlx::Row as _;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use crate::db::{self, Db};

pub use worker::Deliverer;

/// The event topics a webhook can subscribe to.
pub const TOPICS: [&str; 3] = ["record.created", "record.updated", "record.deleted"];

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    /// Event topics sent.
    pub events: Vec<String>,
    /// Objects whose events are sent; empty: every object.
    pub objects: Vec<String>,
    pub active: bool,
    /// The user whose read rights decide which records and fields are sent.
    pub owner: String,
    /// The signing secret: shown when the webhook is created, `null` afterwards.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Delivery {
    pub id: String,
    pub webhook: String,
    /// The outbox event's `seq`.
    pub event_seq: i64,
    pub topic: String,
    /// `pending` (waiting for its next attempt), `delivered`, or `failed` (gave up).
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: String,
    /// The endpoint's last HTTP status, if it answered.
    pub response_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
    /// The JSON body sent, as sent.
    #[schema(value_type = Object)]
    pub body: Value,
}

const WEBHOOK_COLUMNS: &str = "id, url, events, objects, active, owner_id, created_at, updated_at";
const DELIVERY_COLUMNS: &str = "id, webhook_id, event_seq, topic, status, attempts, next_attempt_at, \
     response_status, last_error, created_at, delivered_at, body";

fn webhook_from_row(row: &AnyRow) -> Result<Webhook, sqlx::Error> {
    let list = |c: &str| -> Result<Vec<String>, sqlx::Error> {
        Ok(serde_json::from_str(&row.try_get::<String, _>(c)?).unwrap_or_default())
    };
    Ok(Webhook {
        id: row.try_get("id")?,
        url: row.try_get("url")?,
        events: list("events")?,
        objects: list("objects")?,
        active: row.try_get::<i32, _>("active")? != 0,
        owner: row.try_get("owner_id")?,
        secret: None,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn delivery_from_row(row: &AnyRow) -> Result<Delivery, sqlx::Error> {
    let body: String = row.try_get("body")?;
    Ok(Delivery {
        id: row.try_get("id")?,
        webhook: row.try_get("webhook_id")?,
        event_seq: row.try_get("event_seq")?,
        topic: row.try_get("topic")?,
        status: row.try_get("status")?,
        attempts: row.try_get::<i32, _>("attempts")?.into(),
        next_attempt_at: row.try_get("next_attempt_at")?,
        response_status: row
            .try_get::<Option<i32>, _>("response_status")?
            .map(i64::from),
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
        delivered_at: row.try_get("delivered_at")?,
        body: serde_json::from_str(&body).unwrap_or(Value::Null),
    })
}

/// A new webhook, answered with its secret; it is sent events from now on.
pub async fn create(
    db: &Db,
    owner: &str,
    url: &str,
    events: &[String],
    objects: &[String],
) -> Result<Webhook, sqlx::Error> {
    let id = db::new_id();
    // 32 random bytes: the HMAC key a receiver checks signatures with.
    let secret = crate::random_hex(32);
    let now = db::now();
    sqlx::query(
        "INSERT INTO webhooks (id, url, events, objects, secret, active, owner_id, last_seq, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 1, $6, (SELECT COALESCE(MAX(seq), 0) FROM outbox), $7, $7)",
    )
    .bind(&id)
    .bind(url)
    .bind(serde_json::to_string(events).expect("strings serialise"))
    .bind(serde_json::to_string(objects).expect("strings serialise"))
    .bind(&secret)
    .bind(owner)
    .bind(&now)
    .execute(&db.pool)
    .await?;
    let mut made = get(db, &id).await?.ok_or(sqlx::Error::RowNotFound)?;
    made.secret = Some(secret);
    Ok(made)
}

pub async fn get(db: &Db, id: &str) -> Result<Option<Webhook>, sqlx::Error> {
    let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?
        .map(|r| webhook_from_row(&r))
        .transpose()
}

pub async fn list(db: &Db) -> Result<Vec<Webhook>, sqlx::Error> {
    let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks ORDER BY id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(webhook_from_row).collect()
}

/// Stores a changed webhook (url, events, objects, active).
pub async fn update(db: &Db, hook: &Webhook) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE webhooks SET url = $2, events = $3, objects = $4, active = $5, updated_at = $6 WHERE id = $1",
    )
    .bind(&hook.id)
    .bind(&hook.url)
    .bind(serde_json::to_string(&hook.events).expect("strings serialise"))
    .bind(serde_json::to_string(&hook.objects).expect("strings serialise"))
    .bind(i32::from(hook.active))
    .bind(db::now())
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Removes a webhook and its delivery log; false when there was none.
pub async fn delete(db: &Db, id: &str) -> Result<bool, sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    sqlx::query("DELETE FROM webhook_deliveries WHERE webhook_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let gone = sqlx::query("DELETE FROM webhooks WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
        == 1;
    tx.commit().await?;
    Ok(gone)
}

/// A webhook's deliveries, newest first, older than `before`, of one `status` if
/// given.
pub async fn deliveries(
    db: &Db,
    webhook: &str,
    status: Option<&str>,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<Delivery>, sqlx::Error> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook_id = $1 \
         AND ($2 = '' OR status = $2) AND ($3 = '' OR id < $3) ORDER BY id DESC LIMIT $4"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(webhook)
        .bind(status.unwrap_or(""))
        .bind(before.unwrap_or(""))
        .bind(limit)
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(delivery_from_row).collect()
}

pub async fn delivery(db: &Db, webhook: &str, id: &str) -> Result<Option<Delivery>, sqlx::Error> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook_id = $1 AND id = $2"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(webhook)
        .bind(id)
        .fetch_optional(&db.pool)
        .await?
        .map(|r| delivery_from_row(&r))
        .transpose()
}

/// Sends a delivery again from its first attempt (the same body, a new signature).
pub async fn replay(db: &Db, webhook: &str, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = $3, \
         last_error = NULL, response_status = NULL, delivered_at = NULL \
         WHERE webhook_id = $1 AND id = $2",
    )
    .bind(webhook)
    .bind(id)
    .bind(db::now())
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}
