//! The webhook deliverer: takes events from the outbox into each webhook's deliveries
//! (what its owner may read of them), then sends the deliveries that are due. A
//! delivery is claimed with an optimistic update before it is sent, so two hosts never
//! send it at once; a host stopped mid-send leaves it to be sent again after the claim
//! runs out (at least once).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;
use sqlx::Row as _;

use super::Webhook;
use crate::access::{AccessControl, Action};
use crate::db::{self, Db};
use crate::events::{self, Event};

/// Outbox events one round takes per webhook.
const EVENTS_PER_ROUND: i64 = 500;
/// Deliveries one round sends, and how many at once.
const SENDS_PER_ROUND: i64 = 64;
const SENDS_AT_ONCE: usize = 8;
/// How long a claim on a delivery lasts beyond the request's own timeout.
const CLAIM_MARGIN: Duration = Duration::from_secs(60);
/// The longest error text kept.
const MAX_ERROR_CHARS: usize = 500;

#[derive(Clone)]
pub struct Deliverer {
    db: Db,
    access: AccessControl,
    http: reqwest::Client,
    retries: Arc<Vec<Duration>>,
    timeout: Duration,
}

impl Deliverer {
    pub fn new(
        db: Db,
        access: AccessControl,
        retries: Vec<Duration>,
        timeout: Duration,
    ) -> anyhow::Result<Deliverer> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            // A redirect is an answer, not a delivery: receivers give their final URL.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("crm-webhooks/1")
            .build()?;
        Ok(Deliverer {
            db,
            access,
            http,
            retries: Arc::new(retries),
            timeout,
        })
    }

    /// Runs rounds for as long as the host runs: at once after record writes, else
    /// every second (retries come due with time).
    pub fn spawn(self, committed: Arc<tokio::sync::Notify>) {
        crate::events::spawn_consumer("webhooks", committed, move || {
            let me = self.clone();
            async move { me.round().await }
        });
    }

    /// One round; true when there may be more to do at once.
    async fn round(&self) -> Result<bool, sqlx::Error> {
        let mut busy = false;
        let sql = format!(
            "SELECT {}, last_seq FROM webhooks WHERE active = 1 ORDER BY id",
            super::WEBHOOK_COLUMNS
        );
        let hooks = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.db.pool)
            .await?;
        for row in hooks {
            let hook = super::webhook_from_row(&row)?;
            let last_seq: i64 = row.try_get("last_seq")?;
            busy |= self.fan_out(&hook, last_seq).await?;
        }
        busy |= self.send_due().await?;
        Ok(busy)
    }

    /// Turns the webhook's next outbox events into deliveries and moves its cursor,
    /// in one transaction; true when it took a full round's worth.
    async fn fan_out(&self, hook: &Webhook, last_seq: i64) -> Result<bool, sqlx::Error> {
        let batch = events::settled(
            events::list(&self.db, last_seq, EVENTS_PER_ROUND).await?,
            last_seq,
        );
        let Some(newest) = batch.last().map(|e| e.seq) else {
            return Ok(false);
        };
        let now = db::now();
        let mut tx = self.db.pool.begin().await?;
        let moved =
            sqlx::query("UPDATE webhooks SET last_seq = $2 WHERE id = $1 AND last_seq = $3")
                .bind(&hook.id)
                .bind(newest)
                .bind(last_seq)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
        if !moved {
            return Ok(true); // another host took this stretch
        }
        for event in batch.iter().filter(|e| wanted(hook, e)) {
            let id = db::new_id();
            let Some(body) = self.body_for(hook, event, &id) else {
                continue;
            };
            sqlx::query(
                "INSERT INTO webhook_deliveries (id, webhook_id, event_seq, topic, body, status, attempts, next_attempt_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6) ON CONFLICT (webhook_id, event_seq) DO NOTHING",
            )
            .bind(&id)
            .bind(&hook.id)
            .bind(event.seq)
            .bind(&event.topic)
            .bind(body.to_string())
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(batch.len() as i64 == EVENTS_PER_ROUND)
    }

    /// The body sent for `event`, as the webhook's owner may see it; `None` when the
    /// owner may not read the record.
    fn body_for(&self, hook: &Webhook, event: &Event, delivery: &str) -> Option<Value> {
        let user = self.access.user_by_id(&hook.owner);
        let rights = user.object(&event.object);
        let record = event.payload.get("record")?.as_object()?;
        let text = |k: &str| record.get(k).and_then(Value::as_str);
        if !user.covers(
            rights.grants(Action::Read),
            text("owner"),
            text("department"),
        ) {
            return None;
        }
        let hidden: Vec<&str> = rights.hidden_fields().collect();
        let without_hidden = |map: Option<&Map<String, Value>>| -> Value {
            let mut map = map.cloned().unwrap_or_default();
            map.retain(|k, _| !hidden.contains(&k.as_str()));
            Value::Object(map)
        };
        Some(json!({
            "id": delivery,
            "event": event.topic,
            "seq": event.seq,
            "occurred_at": event.created_at,
            "object": event.object,
            "record_id": event.record_id,
            "actor": event.actor,
            "record": without_hidden(Some(record)),
            "changes": without_hidden(event.payload.get("changes").and_then(Value::as_object)),
        }))
    }

    /// Sends the deliveries that are due; true when it sent a full round's worth.
    async fn send_due(&self) -> Result<bool, sqlx::Error> {
        let due = sqlx::query(
            "SELECT d.id, d.body, d.topic, d.attempts, d.next_attempt_at, w.url, w.secret \
             FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
             WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND w.active = 1 \
             ORDER BY d.next_attempt_at, d.event_seq LIMIT $2",
        )
        .bind(db::now())
        .bind(SENDS_PER_ROUND)
        .fetch_all(&self.db.pool)
        .await?;
        let count = due.len() as i64;
        let mut sends = Vec::with_capacity(due.len());
        for row in due {
            sends.push(Send {
                id: row.try_get("id")?,
                body: row.try_get("body")?,
                topic: row.try_get("topic")?,
                attempts: row.try_get::<i32, _>("attempts")?.into(),
                due_at: row.try_get("next_attempt_at")?,
                url: row.try_get("url")?,
                secret: row.try_get("secret")?,
            });
        }
        let results: Vec<Result<(), sqlx::Error>> = futures_util::stream::iter(sends)
            .map(|send| self.clone().deliver(send))
            .buffer_unordered(SENDS_AT_ONCE)
            .collect()
            .await;
        results.into_iter().collect::<Result<(), _>>()?;
        Ok(count == SENDS_PER_ROUND)
    }

    /// Claims, sends and records one attempt of a delivery.
    async fn deliver(self, send: Send) -> Result<(), sqlx::Error> {
        let claim_until = chrono::Utc::now()
            + chrono::Duration::from_std(self.timeout + CLAIM_MARGIN).unwrap_or_default();
        let claimed = sqlx::query(
            "UPDATE webhook_deliveries SET next_attempt_at = $2 \
             WHERE id = $1 AND status = 'pending' AND next_attempt_at = $3",
        )
        .bind(&send.id)
        .bind(db::format_time(claim_until))
        .bind(&send.due_at)
        .execute(&self.db.pool)
        .await?
        .rows_affected()
            == 1;
        if !claimed {
            return Ok(());
        }
        let timestamp = chrono::Utc::now().timestamp();
        let outcome = self
            .http
            .post(&send.url)
            .header("content-type", "application/json")
            .header("x-crm-event", &send.topic)
            .header("x-crm-delivery", &send.id)
            .header(
                "x-crm-signature",
                signature(&send.secret, timestamp, &send.body),
            )
            .body(send.body.clone())
            .send()
            .await;
        let attempts = send.attempts + 1;
        let (status, error) = match &outcome {
            Ok(res) if res.status().is_success() => (Some(res.status().as_u16()), None),
            Ok(res) => (
                Some(res.status().as_u16()),
                Some(format!("the endpoint answered {}", res.status())),
            ),
            Err(e) if e.is_timeout() => (
                None,
                Some(format!("no answer within {} ms", self.timeout.as_millis())),
            ),
            Err(e) => (None, Some(format!("could not reach the endpoint: {e}"))),
        };
        let now = chrono::Utc::now();
        let (state, next, delivered_at) = match &error {
            None => ("delivered", now, Some(db::format_time(now))),
            Some(_) => match self.retries.get(attempts as usize - 1) {
                Some(wait) => (
                    "pending",
                    now + chrono::Duration::from_std(*wait).unwrap_or_default(),
                    None,
                ),
                None => ("failed", now, None),
            },
        };
        if let Some(why) = &error {
            tracing::info!(delivery = %send.id, attempts, state, error = %why, "a webhook delivery did not arrive");
        }
        sqlx::query(
            "UPDATE webhook_deliveries SET status = $2, attempts = $3, next_attempt_at = $4, \
             response_status = $5, last_error = $6, delivered_at = $7 WHERE id = $1",
        )
        .bind(&send.id)
        .bind(state)
        .bind(attempts as i32)
        .bind(db::format_time(next))
        .bind(status.map(i32::from))
        .bind(error.map(|e| e.chars().take(MAX_ERROR_CHARS).collect::<String>()))
        .bind(delivered_at)
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }
}

/// One attempt to make.
struct Send {
    id: String,
    body: String,
    topic: String,
    attempts: i64,
    due_at: String,
    url: String,
    secret: String,
}

fn wanted(hook: &Webhook, event: &Event) -> bool {
    hook.events.iter().any(|t| t == &event.topic)
        && (hook.objects.is_empty() || hook.objects.iter().any(|o| o == &event.object))
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed by the secret>`: the
/// receiver recomputes it and refuses old timestamps (replays of a captured request).
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any size");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!(
        "t={timestamp},v1={}",
        crate::hex(&mac.finalize().into_bytes())
    )
}

#[cfg(test)]
mod tests {
    use hmac::Mac;

    #[test]
    fn signs_the_timestamp_and_body_with_hmac_sha256() {
        // RFC 4231 test case 2 checks the HMAC itself...
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            crate::hex(&mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // ...and the signature is that HMAC of "<t>.<body>".
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"7.what do ya want for nothing?");
        let want = crate::hex(&mac.finalize().into_bytes());
        assert_eq!(
            super::signature("Jefe", 7, "what do ya want for nothing?"),
            format!("t=7,v1={want}")
        );
    }
}
