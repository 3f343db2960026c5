//! The host's own notifications about records, made from the event outbox: a record
//! or an activity assigned to someone (its owner or a user field set to them), a deal
//! moved to another stage or status (its owner is told), a user mentioned by email in
//! a text (`@ana@acme.example`). Nobody is told about what they did themselves, nor
//! about a record they may not read. The cursor and the notifications of a stretch of
//! events are written in one transaction, so each is made once.
//!
//! Most events tell nobody anything (a bulk import's creates by their owner). The
//! notifier then only moves its cursor in memory and stores it every
//! [`STORE_CURSOR_EVERY`]: each store is a commit on a connection other than the
//! writer's, and on SQLite that makes the writer read its hot pages again (a commit
//! every 500 events was 2,000 in an import of a million rows). A host stopped
//! meanwhile reads those events again, and again finds nothing to tell.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::access::{AccessControl, Action};
use crate::db::{self, Db};
use crate::events::{self, Event};
use crate::records::metadata::{FieldType, ObjectType};
use crate::records::schema::SchemaCache;

/// The consumer's row in `outbox_cursors`.
const CONSUMER: &str = "notifications";
/// Events one round takes.
const EVENTS_PER_ROUND: i64 = 2_000;
/// Longest time the cursor is moved in memory only (see the module's comment).
const STORE_CURSOR_EVERY: Duration = Duration::from_secs(2);
/// Fields of a deal whose change its owner hears about.
const DEAL_PROGRESS: [&str; 2] = ["stage", "status"];

#[derive(Clone)]
pub struct Notifier {
    db: Db,
    schema: SchemaCache,
    access: AccessControl,
    /// SMTP is configured: notifications of users who want it get an email copy.
    emails: bool,
    /// Where this host's notifier is; `None` until read from the database, and again
    /// after another host moved the cursor.
    at: Arc<Mutex<Option<Position>>>,
}

/// The cursor as stored, and how far this host has read past it finding nothing to
/// tell.
#[derive(Clone, Copy)]
struct Position {
    stored: i64,
    read: i64,
    stored_at: Instant,
}

/// An active user as the notifier needs them.
struct Person {
    name: String,
    email: String,
    wants_email: bool,
}

/// One notification to make.
#[derive(Debug, PartialEq)]
struct Note {
    user: String,
    title: String,
    body: String,
    link: String,
}

impl Notifier {
    pub fn new(db: Db, schema: SchemaCache, access: AccessControl, emails: bool) -> Notifier {
        Notifier {
            db,
            schema,
            access,
            emails,
            at: Arc::default(),
        }
    }

    /// Runs for as long as the host runs: at once after record writes, else every
    /// second.
    pub fn spawn(self, committed: Arc<tokio::sync::Notify>) {
        crate::events::spawn_consumer("notifications", committed, move || {
            let me = self.clone();
            async move { me.round().await }
        });
    }

    /// One stretch of events; true when there may be more at once.
    async fn round(&self) -> Result<bool, sqlx::Error> {
        let known = *self.at.lock().expect("the notifier's position");
        let at = match known {
            Some(at) => at,
            None => {
                let stored = self.stored_cursor().await?;
                Position {
                    stored,
                    read: stored,
                    stored_at: Instant::now(),
                }
            }
        };
        let batch = events::settled(
            events::list(&self.db, at.read, EVENTS_PER_ROUND).await?,
            at.read,
        );
        let more = batch.len() as i64 == EVENTS_PER_ROUND;
        let Some(newest) = batch.last().map(|e| e.seq) else {
            // Quiet: store how far it has read.
            if at.read > at.stored {
                self.store(at, at.read, &[], &HashMap::new()).await?;
            } else {
                self.remember(Some(at));
            }
            return Ok(false);
        };
        let people = self.people().await?;
        let notes: Vec<Note> = batch
            .iter()
            .flat_map(|e| self.notes_for(e, &people))
            .collect();
        if notes.is_empty() && at.stored_at.elapsed() < STORE_CURSOR_EVERY {
            self.remember(Some(Position { read: newest, ..at }));
            return Ok(more);
        }
        let stored = self.store(at, newest, &notes, &people).await?;
        Ok(more || !stored)
    }

    fn remember(&self, at: Option<Position>) {
        *self.at.lock().expect("the notifier's position") = at;
    }

    async fn stored_cursor(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT last_seq FROM outbox_cursors WHERE consumer = $1")
            .bind(CONSUMER)
            .fetch_one(&self.db.pool)
            .await
    }

    /// Moves the stored cursor from `at` to `newest` and makes `notes`, in one
    /// transaction; false (and the position forgotten) when another host moved the
    /// cursor meanwhile (it made these notes).
    async fn store(
        &self,
        at: Position,
        newest: i64,
        notes: &[Note],
        people: &HashMap<String, Person>,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.db.pool.begin().await?;
        let moved = sqlx::query(
            "UPDATE outbox_cursors SET last_seq = $2 WHERE consumer = $1 AND last_seq = $3",
        )
        .bind(CONSUMER)
        .bind(newest)
        .bind(at.stored)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !moved {
            self.remember(None);
            return Ok(false);
        }
        let now = db::now();
        for n in notes {
            let email = (self.emails && people.get(&n.user).is_some_and(|p| p.wants_email))
                .then_some("pending");
            sqlx::query(
                "INSERT INTO notifications (id, user_id, source, title, body, created_at, link, email_status) \
                 VALUES ($1, $2, 'system', $3, $4, $5, $6, $7)",
            )
            .bind(db::new_id())
            .bind(&n.user)
            .bind(clip(&n.title, super::MAX_TITLE_CHARS))
            .bind(clip(&n.body, super::MAX_BODY_CHARS))
            .bind(&now)
            .bind(&n.link)
            .bind(email)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.remember(Some(Position {
            stored: newest,
            read: newest,
            stored_at: Instant::now(),
        }));
        Ok(true)
    }

    /// Active users by id.
    async fn people(&self) -> Result<HashMap<String, Person>, sqlx::Error> {
        let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
            "SELECT id, name, email, email_notifications FROM users WHERE active = 1",
        )
        .fetch_all(&self.db.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, name, email, wants)| {
                let person = Person {
                    name,
                    email,
                    wants_email: wants != 0,
                };
                (id, person)
            })
            .collect())
    }

    fn notes_for(&self, event: &Event, users: &HashMap<String, Person>) -> Vec<Note> {
        let schema = self.schema.get();
        let Some(object) = schema.object(&event.object) else {
            return Vec::new();
        };
        let (Some(record), Some(changes)) = (
            event.payload.get("record").and_then(Value::as_object),
            event.payload.get("changes").and_then(Value::as_object),
        ) else {
            return Vec::new();
        };
        if event.topic == "record.deleted" {
            return Vec::new();
        }
        let actor = event.actor.as_deref().unwrap_or("");
        let by = users
            .get(actor)
            .map(|p| p.name.as_str())
            .unwrap_or("Someone");
        let title = crate::records::title_of(object, &event.record_id, record);
        let label = object.label.to_lowercase();
        let link = format!("/records/{}/{}", object.name, event.record_id);
        let mut notes = Vec::new();
        let mut tell = |user: &str, title: String, body: String| {
            let wanted = user != actor
                && users.contains_key(user)
                && self.may_read(user, object, record)
                && !notes
                    .iter()
                    .any(|n: &Note| n.user == user && n.title == title);
            if wanted {
                notes.push(Note {
                    user: user.to_string(),
                    title,
                    body,
                    link: link.clone(),
                });
            }
        };
        // Assigned: the owner, or a user field, set to someone.
        for (field, change) in changes {
            let is_user_field = field == "owner"
                || object
                    .field(field)
                    .is_some_and(|f| f.kind == FieldType::User);
            if let Some(user) = change.get("new").and_then(Value::as_str)
                && is_user_field
            {
                tell(
                    user,
                    format!("{} assigned to you: {title}", object.label),
                    format!("{by} assigned the {label} \"{title}\" to you."),
                );
            }
        }
        // A deal moved on: its owner hears.
        if object.name == "deals"
            && let Some(owner) = record.get("owner").and_then(Value::as_str)
        {
            for field in DEAL_PROGRESS {
                if let Some(change) = changes.get(field)
                    && event.topic == "record.updated"
                {
                    let text = |v: Option<&Value>| {
                        v.and_then(Value::as_str).unwrap_or("(none)").to_string()
                    };
                    let (old, new) = (text(change.get("old")), text(change.get("new")));
                    tell(
                        owner,
                        format!("Deal \"{title}\" moved to {new}"),
                        format!("{by} changed its {field} from {old} to {new}."),
                    );
                }
            }
        }
        // Mentioned by email in a text that changed, and not there before.
        for (field, change) in changes {
            let texty = object
                .field(field)
                .is_some_and(|f| matches!(f.kind, FieldType::Text | FieldType::LongText));
            if !texty {
                continue;
            }
            let before = mentions(change.get("old"));
            for email in mentions(change.get("new")).difference(&before) {
                if let Some((user, _)) = users
                    .iter()
                    .find(|(_, p)| p.email.eq_ignore_ascii_case(email))
                {
                    tell(
                        user,
                        format!("{by} mentioned you: {title}"),
                        format!("{by} mentioned you in the {label} \"{title}\"."),
                    );
                }
            }
        }
        notes
    }

    /// Whether `user` may read a record placed as `record` says.
    fn may_read(&self, user: &str, object: &ObjectType, record: &Map<String, Value>) -> bool {
        let access = self.access.user_by_id(user);
        let rights = access.object(&object.name);
        let text = |k: &str| record.get(k).and_then(Value::as_str);
        access.covers(
            rights.grants(Action::Read),
            text("owner"),
            text("department"),
        )
    }
}

/// The emails mentioned in a text as `@<email>`, in lower case.
fn mentions(text: Option<&Value>) -> BTreeSet<String> {
    let Some(text) = text.and_then(Value::as_str) else {
        return BTreeSet::new();
    };
    text.split(|c: char| c.is_whitespace() || ",;:()<>\"'".contains(c))
        .filter_map(|word| word.strip_prefix('@'))
        .map(|w| w.trim_end_matches(['.', '!', '?']).to_lowercase())
        .filter(|w| w.contains('@') && w.contains('.'))
        .collect()
}

fn clip(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_mentions_by_email() {
        let found = mentions(Some(&Value::from(
            "Ask @Ana@Acme.example, and @omid@acme.example. Not ana@acme.example or @bob",
        )));
        assert_eq!(
            found.into_iter().collect::<Vec<_>>(),
            ["ana@acme.example", "omid@acme.example"]
        );
    }
}
