//! The email outbox: `outgoing_emails` records (queued by processes, plugins or
//! people) delivered by SMTP when `CRM_SMTP_URL` is set; and the email copies of the
//! host's notifications (see [`Mailer::notification_round`]).
//!
//! Each queued email is taken with an optimistic update to `sending` (so two hosts
//! never both send it), sent, then marked `sent` or, after a permanent refusal or
//! [`ATTEMPTS`] transient failures, `failed` with the reason. Every change goes
//! through the records service as the user who queued the email, so audit and
//! events see it like any other edit. A host stopped between sending and marking
//! leaves the email `sending`; it is queued again after [`STUCK`]: delivery is at
//! least once.

use std::time::Duration;

use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::{Map, Value, json};
use sqlx::Row;

use crate::db::{self, Db};
use crate::plugins::delivery::actor_of;
use crate::records::service::RecordService;
use crate::records::values_of;

/// The object emails wait in.
pub const OUTBOX: &str = "outgoing_emails";
/// Sending attempts before an email is `failed`.
const ATTEMPTS: i64 = 5;
/// How long an email may stay `sending` before it is queued again.
const STUCK: chrono::TimeDelta = chrono::TimeDelta::minutes(5);
/// Emails looked at per round.
const BATCH: i64 = 20;
/// How often the outbox is read when nothing was due.
const POLL: Duration = Duration::from_secs(1);

/// An SMTP connection setting and the sender address.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// `CRM_PUBLIC_URL`, for links in notification emails.
    public_url: Option<String>,
}

impl Mailer {
    /// `url` as lettre reads it: `smtp://user:pass@host:587?tls=required`
    /// (STARTTLS), `smtps://host:465` (TLS), `smtp://host:25` (plain, for a relay
    /// on the same network).
    pub fn new(url: &str, from: &str, public_url: Option<String>) -> anyhow::Result<Self> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| anyhow::anyhow!("CRM_SMTP_URL is not an SMTP address: {e}"))?
            .timeout(Some(Duration::from_secs(30)))
            .build();
        let from = from
            .parse()
            .map_err(|e| anyhow::anyhow!("CRM_SMTP_FROM is not an email address: {e}"))?;
        Ok(Mailer {
            transport,
            from,
            public_url,
        })
    }

    /// Delivers the outbox in the background.
    pub fn spawn(self, db: Db, records: RecordService) {
        tokio::spawn(async move {
            loop {
                let outbox = self.round(&db, &records).await.unwrap_or_else(|e| {
                    tracing::error!(error = %e, "reading the email outbox failed");
                    0
                });
                let notes = self.notification_round(&db).await.unwrap_or_else(|e| {
                    tracing::error!(error = %e, "reading the notification emails failed");
                    0
                });
                if outbox + notes == 0 {
                    tokio::time::sleep(POLL).await;
                }
            }
        });
    }

    /// Sends what is due; answers how many emails it took.
    async fn round(&self, db: &Db, records: &RecordService) -> Result<usize, String> {
        let now = chrono::Utc::now();
        // Queued ones (those that failed lately wait their turn at the back), and
        // ones a stopped host left `sending`; only of users who are still active,
        // as they are who the email is sent for.
        let due = sqlx::query(
            "SELECT r.id, r.created_by FROM records r JOIN users u ON u.id = r.created_by AND u.active = 1 \
             WHERE r.object = $1 AND (r.data->>'status' = 'queued' \
               OR (r.data->>'status' = 'sending' AND r.updated_at < $2)) \
             ORDER BY r.updated_at LIMIT $3",
        )
        .bind(OUTBOX)
        .bind(db::format_time(now - STUCK))
        .bind(BATCH)
        .fetch_all(&db.pool)
        .await
        .map_err(|e| e.to_string())?;
        let mut taken = 0;
        for row in &due {
            let id: String = row.try_get("id").map_err(|e| e.to_string())?;
            let by: String = row.try_get("created_by").map_err(|e| e.to_string())?;
            let actor = actor_of(db, &by).await?;
            let email = match records.get(&actor, OUTBOX, &id).await {
                Ok(email) => email,
                Err(e) => {
                    tracing::warn!(email = %id, error = %e, "an outgoing email could not be read");
                    continue;
                }
            };
            let attempts = email
                .fields
                .get("attempts")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if attempts > 0 && !backed_off(&email.updated_at, attempts, now) {
                continue;
            }
            // Take it: a second host's update of the same version fails.
            let take = values_of(json!({"status": "sending"}));
            if records
                .update(&actor, OUTBOX, &id, &take, Some(email.version))
                .await
                .is_err()
            {
                continue;
            }
            taken += 1;
            let outcome = match self.message(&email.fields) {
                Ok(message) => self.transport.send(message).await.map_err(|e| {
                    let permanent = e.is_permanent();
                    (e.to_string(), permanent)
                }),
                Err(e) => Err((e, true)),
            };
            let done = match outcome {
                Ok(_) => json!({"status": "sent", "sent_at": db::now(), "last_error": null}),
                Err((error, permanent)) => {
                    let attempts = attempts + 1;
                    let status = if permanent || attempts >= ATTEMPTS {
                        "failed"
                    } else {
                        "queued"
                    };
                    tracing::warn!(email = %id, %error, status, "an email was not delivered");
                    json!({"status": status, "attempts": attempts, "last_error": error})
                }
            };
            if let Err(e) = records
                .update(&actor, OUTBOX, &id, &values_of(done), None)
                .await
            {
                tracing::error!(email = %id, error = %e, "an email's delivery could not be recorded");
            }
        }
        Ok(taken)
    }

    /// Sends the email copies of notifications that are due: pending ones (a failed
    /// one after its wait) and ones a stopped host left `sending` for 5 minutes. Each
    /// is taken with an optimistic update, so two hosts never both send it; the copy
    /// goes to the user's address of the moment, never a plugin's or a process's.
    pub async fn notification_round(&self, db: &Db) -> Result<usize, sqlx::Error> {
        let now = db::now();
        let due: Vec<DueCopy> = sqlx::query_as(
            "SELECT n.id, n.email_status, n.email_attempts, n.email_after, n.title, n.body, n.link, u.email \
                 FROM notifications n JOIN users u ON u.id = n.user_id AND u.active = 1 \
                 WHERE n.email_status IN ('pending', 'sending') \
                   AND (n.email_after IS NULL OR n.email_after <= $1) \
                 ORDER BY n.email_after LIMIT $2",
        )
        .bind(&now)
        .bind(BATCH)
        .fetch_all(&db.pool)
        .await?;
        let mut taken = 0;
        for (id, status, attempts, after, title, body, link, to) in due {
            let stuck_until = db::format_time(chrono::Utc::now() + STUCK);
            // The copy exactly as read: a second host that read it too (a stuck
            // `sending` one included) finds `email_after` moved and leaves it.
            let same_after = if after.is_some() {
                "email_after = $5"
            } else {
                "email_after IS NULL AND $5 = ''"
            };
            let took = sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE notifications SET email_status = 'sending', email_after = $3 \
                 WHERE id = $1 AND email_status = $2 AND email_attempts = $4 AND {same_after}"
            )))
            .bind(&id)
            .bind(&status)
            .bind(&stuck_until)
            .bind(attempts)
            .bind(after.unwrap_or_default())
            .execute(&db.pool)
            .await?
            .rows_affected();
            if took == 0 {
                continue; // another host has it
            }
            taken += 1;
            let text = match (&link, &self.public_url) {
                (Some(link), Some(base)) => format!("{body}\n\nOpen it: {base}{link}\n"),
                (Some(link), None) => format!("{body}\n\nOpen it in the CRM: {link}\n"),
                (None, _) => format!("{body}\n"),
            };
            let text = format!(
                "{text}\nYou get this because you are told about it in the CRM; \
                 turn these emails off in your settings.\n"
            );
            let outcome = match to.parse::<Mailbox>() {
                Ok(to) => match Message::builder()
                    .from(self.from.clone())
                    .to(to)
                    .subject(title)
                    .header(ContentType::TEXT_PLAIN)
                    .body(text)
                {
                    Ok(message) => self
                        .transport
                        .send(message)
                        .await
                        .map(|_| ())
                        .map_err(|e| (e.to_string(), e.is_permanent())),
                    Err(e) => Err((e.to_string(), true)),
                },
                Err(e) => Err((format!("'{to}' is not an address: {e}"), true)),
            };
            let attempts = attempts + 1;
            let (status, after, error) = match outcome {
                Ok(()) => ("sent", None, None),
                Err((error, permanent)) => {
                    tracing::warn!(notification = %id, %error, "a notification email was not delivered");
                    if permanent || attempts >= ATTEMPTS {
                        ("failed", None, Some(error))
                    } else {
                        let after = db::format_time(chrono::Utc::now() + retry_wait(attempts));
                        ("pending", Some(after), Some(error))
                    }
                }
            };
            sqlx::query(
                "UPDATE notifications SET email_status = $2, email_after = $3, email_error = $4, \
                 email_attempts = $5 WHERE id = $1",
            )
            .bind(&id)
            .bind(status)
            .bind(after)
            .bind(error)
            .bind(attempts)
            .execute(&db.pool)
            .await?;
        }
        Ok(taken)
    }

    fn message(&self, data: &Map<String, Value>) -> Result<Message, String> {
        let text = |f: &str| data.get(f).and_then(Value::as_str).unwrap_or_default();
        let to: Mailbox = text("to")
            .parse()
            .map_err(|e| format!("'{}' is not an address: {e}", text("to")))?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(text("subject"))
            .header(ContentType::TEXT_PLAIN)
            .body(text("body").to_string())
            .map_err(|e| e.to_string())
    }
}

/// A notification's email copy that is due: id, status, attempts, when it may be
/// taken, title, body, link, the recipient's address.
type DueCopy = (
    String,
    String,
    i64,
    Option<String>,
    String,
    String,
    Option<String>,
    String,
);

/// How long an email (an outbox email or a notification's copy) that failed
/// `attempts` times waits before the next try: 10 s, 20 s, 40 s...
fn retry_wait(attempts: i64) -> chrono::TimeDelta {
    chrono::TimeDelta::seconds(10 << (attempts - 1).clamp(0, 10))
}

/// Whether an email that failed `attempts` times waited long enough after its last
/// attempt.
fn backed_off(updated_at: &str, attempts: i64, now: chrono::DateTime<chrono::Utc>) -> bool {
    chrono::DateTime::parse_from_rfc3339(updated_at)
        .map(|at| at.with_timezone(&chrono::Utc) + retry_wait(attempts) <= now)
        .unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_emails_wait_longer_each_time() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let after = |s| at + chrono::TimeDelta::seconds(s);
        assert!(!backed_off("2026-11-23T10:00:00Z", 1, after(9)));
        assert!(backed_off("2026-11-23T10:00:00Z", 1, after(10)));
        assert!(!backed_off("2026-11-23T10:00:00Z", 3, after(39)));
        assert!(backed_off("2026-11-23T10:00:00Z", 3, after(40)));
    }
}
