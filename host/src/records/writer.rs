//! Group commit: the last step of the one write path.
//!
//! SQLite has a single writer and tops out near 3,400 one-row transactions a second
//! here; committing whatever writes are waiting at that moment in one transaction
//! lifts that ceiling. A batch of creates goes in three multi-row statements; other
//! batches write by write. Should any write fail (a unique value taken), the batch is
//! run again with each write in its own savepoint, so only that write fails and each
//! caller gets its own result. PostgreSQL runs several writer tasks side by side.

use sqlx::AssertSqlSafe;
use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::{Acquire, Any, AnyConnection};
use tokio::sync::{Mutex, mpsc, oneshot};

use super::Record;
use crate::audit::{self, AuditEntry};
use crate::db::wal::{self, WalKeeper};
use crate::db::{Db, Dialect};
use crate::events::{self, Event};

/// Writes taken into one transaction: more wait for the next, except that writes
/// submitted together (see [`Writer::submit_many`]) always share one.
const MAX_BATCH: usize = 256;
/// Rows of one multi-row INSERT: well under SQLite's 32,766 and PostgreSQL's 65,535
/// parameters.
const STATEMENT_ROWS: usize = 256;

/// One change of one record, with the audit entry and event that go with it.
pub enum WriteOp {
    Insert {
        record: Record,
        audit: AuditEntry,
        event: Event,
    },
    /// Replaces the record's stored state if it is still at `expected_version`.
    Update {
        record: Record,
        expected_version: i64,
        audit: AuditEntry,
        event: Event,
    },
    Delete {
        object: String,
        id: String,
        expected_version: i64,
        audit: AuditEntry,
        event: Event,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("stale version; the record is at version {0}")]
    Conflict(i64),
    #[error("record not found")]
    NotFound,
    /// A unique index refused the value; carries the index name.
    #[error("unique constraint {0}")]
    Unique(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("the writer stopped")]
    Stopped,
}

/// One write and where its outcome goes.
struct Job {
    op: WriteOp,
    reply: oneshot::Sender<Result<(), WriteError>>,
}

/// What the writer tasks receive: one write, or many that go into the same batch
/// (an import's chunk), so they share a transaction however the tasks are scheduled.
/// Single writes are the common case: they are not boxed.
#[allow(clippy::large_enum_variant)]
enum Submission {
    One(Job),
    Many(Vec<Job>),
}

#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Submission>,
    /// Woken after every committed batch, so outbox consumers need not poll hard.
    /// `notify_one` wakes one of the consumers sharing it (the notifier, the webhook
    /// and plugin deliverers); the others come at their poll. Waking every one on
    /// every commit was tried (stop 23): each round of theirs commits a cursor on
    /// another connection, which makes SQLite drop the writer's page cache, and the
    /// import fell from 16,714 to 15,233 rows/s and the export after it from 131k to
    /// 85k. Better wake-ups need consumers that move their cursors less often.
    committed: Arc<tokio::sync::Notify>,
}

impl Writer {
    /// Starts the writer tasks: one for SQLite (it has one writer anyway), several for
    /// PostgreSQL.
    pub fn start(db: Db) -> Writer {
        let (jobs, rx) = mpsc::channel::<Submission>(4096);
        let rx = Arc::new(Mutex::new(rx));
        let committed = Arc::new(tokio::sync::Notify::new());
        let (tasks, wal) = match db.dialect {
            Dialect::Sqlite => (1, Some(WalKeeper::start(db.clone()))),
            Dialect::Postgres => (4, None),
        };
        for _ in 0..tasks {
            tokio::spawn(run(db.clone(), rx.clone(), committed.clone(), wal.clone()));
        }
        Writer { jobs, committed }
    }

    /// Notified after each committed batch of writes (new outbox events).
    pub fn committed(&self) -> Arc<tokio::sync::Notify> {
        self.committed.clone()
    }

    /// Commits one write; returns once it is durable (or refused).
    pub async fn submit(&self, op: WriteOp) -> Result<(), WriteError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Submission::One(Job { op, reply }))
            .await
            .map_err(|_| WriteError::Stopped)?;
        answer.await.map_err(|_| WriteError::Stopped)?
    }

    /// Commits many writes together; each gets its own outcome, in order (a unique
    /// value taken fails only its own write).
    pub async fn submit_many(&self, ops: Vec<WriteOp>) -> Vec<Result<(), WriteError>> {
        let (jobs, answers): (Vec<Job>, Vec<_>) = ops
            .into_iter()
            .map(|op| {
                let (reply, answer) = oneshot::channel();
                (Job { op, reply }, answer)
            })
            .unzip();
        if jobs.is_empty() {
            return Vec::new();
        }
        if self.jobs.send(Submission::Many(jobs)).await.is_err() {
            return answers.iter().map(|_| Err(WriteError::Stopped)).collect();
        }
        let mut results = Vec::with_capacity(answers.len());
        for answer in answers {
            results.push(answer.await.unwrap_or(Err(WriteError::Stopped)));
        }
        results
    }
}

async fn run(
    db: Db,
    rx: Arc<Mutex<mpsc::Receiver<Submission>>>,
    committed: Arc<tokio::sync::Notify>,
    wal: Option<WalKeeper>,
) {
    // Each writer task keeps its own connection: SQLite drops a connection's whole page
    // cache once another connection has written, so a writer taking any pooled
    // connection read the hot index pages again for every batch. A connection that
    // failed is given back and another taken for the next batch.
    let mut held: Option<PoolConnection<Any>> = None;
    loop {
        let mut batch = Vec::new();
        {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else { return };
            first.add_to(&mut batch);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(more) => more.add_to(&mut batch),
                    Err(_) => break,
                }
            }
        }
        let mut conn = match held.take() {
            Some(conn) => conn,
            None => match writer_connection(&db).await {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::error!(error = %e, "the writer has no database connection");
                    fail_all(batch, &e);
                    continue;
                }
            },
        };
        let alive = commit_batch(&mut conn, db.dialect, batch).await;
        committed.notify_one();
        if let Some(wal) = &wal {
            wal.committed();
            if alive {
                wal.restart_if_due(&mut conn).await;
            }
        }
        if alive {
            held = Some(conn);
        }
    }
}

/// A pooled connection for a writer task. On SQLite its page cache is made larger
/// than the pool's: every write walks the indexes of records, audit_log and outbox
/// (the random-keyed ones, like a contact's email, touch pages all over), and the
/// writer is the serial part of every write. It leaves checkpoints to the
/// [`WalKeeper`].
async fn writer_connection(db: &Db) -> Result<PoolConnection<Any>, sqlx::Error> {
    let mut conn = db.pool.acquire().await?;
    if db.dialect == Dialect::Sqlite {
        sqlx::query(AssertSqlSafe(format!(
            "PRAGMA cache_size=-{WRITER_CACHE_KIB}; {}",
            wal::WRITER_PRAGMAS
        )))
        .execute(&mut *conn)
        .await?;
    }
    Ok(conn)
}

/// The writer connection's page cache on SQLite, in KiB.
const WRITER_CACHE_KIB: u32 = 131_072;

impl Submission {
    fn add_to(self, batch: &mut Vec<Job>) {
        match self {
            Submission::One(job) => batch.push(job),
            Submission::Many(jobs) => batch.extend(jobs),
        }
    }
}

/// Commits a batch and answers each write; false when the connection failed.
async fn commit_batch(conn: &mut AnyConnection, dialect: Dialect, batch: Vec<Job>) -> bool {
    // Fast path: the whole batch in one transaction without savepoints (each costs a
    // round trip). A stale version or a missing record writes nothing, so only a
    // database error (a unique value taken) sends the batch down the careful path.
    let outcome = match run_batch(conn, dialect, &batch, false).await {
        Ok(results) => Ok(results),
        Err(_) if batch.len() > 1 => run_batch(conn, dialect, &batch, true).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(results) => {
            let mut written = Vec::with_capacity(batch.len());
            for (job, result) in batch.into_iter().zip(results) {
                let _ = job.reply.send(result);
                written.push(job.op);
            }
            // Freeing a big batch's records, audit entries and events (6 ms per
            // thousand, a tenth of the writer's time in an import) is left to
            // another thread: the writer is the serial part.
            if written.len() >= 64 {
                tokio::task::spawn_blocking(move || drop(written));
            }
        }
        Err(BatchError::Write(e)) => {
            // Only a batch of one write ends here: the error is that write's.
            if let Some(job) = batch.into_iter().next() {
                let _ = job.reply.send(Err(e));
            }
        }
        Err(BatchError::Commit(e)) => {
            tracing::error!(error = %e, writes = batch.len(), "a write batch failed to commit");
            fail_all(batch, &e);
            return false;
        }
    }
    true
}

/// Answers every write of a batch that could not be committed.
fn fail_all(batch: Vec<Job>, e: &sqlx::Error) {
    for job in batch {
        let _ = job
            .reply
            .send(Err(WriteError::Db(sqlx::Error::Protocol(format!(
                "write batch failed: {e}"
            )))));
    }
}

enum BatchError {
    /// A write failed and `isolate` was off: the transaction was rolled back.
    Write(WriteError),
    Commit(sqlx::Error),
}

/// Applies every write of the batch in one transaction. With `isolate`, each write
/// runs in its own savepoint and its failure is its own result; without, the first
/// failure rolls the whole batch back.
async fn run_batch(
    conn: &mut AnyConnection,
    dialect: Dialect,
    batch: &[Job],
    isolate: bool,
) -> Result<Vec<Result<(), WriteError>>, BatchError> {
    let mut results = Vec::with_capacity(batch.len());
    let mut tx = conn.begin().await.map_err(BatchError::Commit)?;
    let creates_only = batch.iter().all(|j| matches!(j.op, WriteOp::Insert { .. }));
    if !isolate && batch.len() > 1 && creates_only {
        if let Err(e) = insert_all(&mut tx, dialect, batch).await {
            tx.rollback().await.map_err(BatchError::Commit)?;
            return Err(BatchError::Write(e));
        }
        tx.commit().await.map_err(BatchError::Commit)?;
        return Ok(batch.iter().map(|_| Ok(())).collect());
    }
    for job in batch {
        if isolate {
            let mut savepoint = tx.begin().await.map_err(BatchError::Commit)?;
            let result = apply(&mut savepoint, dialect, &job.op).await;
            let done = if is_failure(&result) {
                savepoint.rollback().await
            } else {
                savepoint.commit().await
            };
            done.map_err(BatchError::Commit)?;
            results.push(result);
        } else {
            let result = apply(&mut tx, dialect, &job.op).await;
            if is_failure(&result) {
                tx.rollback().await.map_err(BatchError::Commit)?;
                return Err(BatchError::Write(
                    result.expect_err("a failure is an error"),
                ));
            }
            results.push(result);
        }
    }
    tx.commit().await.map_err(BatchError::Commit)?;
    Ok(results)
}

/// Errors after which the transaction may hold part of a write (or, on PostgreSQL,
/// is aborted); a stale version or a missing record wrote nothing.
fn is_failure(result: &Result<(), WriteError>) -> bool {
    matches!(
        result,
        Err(WriteError::Unique(_) | WriteError::Db(_) | WriteError::Stopped)
    )
}

async fn apply(conn: &mut AnyConnection, dialect: Dialect, op: &WriteOp) -> Result<(), WriteError> {
    let (audit, event) = match op {
        WriteOp::Insert {
            record,
            audit,
            event,
        } => {
            insert_records(conn, dialect, &[record], &[audit]).await?;
            (audit, event)
        }
        WriteOp::Update {
            record,
            expected_version,
            audit,
            event,
        } => {
            let sql = format!(
                "UPDATE records SET version = $1, owner_id = $2, department_id = $9, updated_by = $3, updated_at = $4, data = {} \
                 WHERE id = $6 AND object = $7 AND version = $8",
                dialect.json_param(5)
            );
            let done = sqlx::query(AssertSqlSafe(sql))
                .bind(record.version)
                .bind(&record.owner)
                .bind(&audit.actor)
                .bind(&record.updated_at)
                .bind(serde_json::to_string(&record.fields).expect("a JSON map serialises"))
                .bind(&record.id)
                .bind(&record.object)
                .bind(expected_version)
                .bind(&record.department)
                .execute(&mut *conn)
                .await
                .map_err(unique_or_db)?;
            if done.rows_affected() == 0 {
                return Err(missing_or_stale(conn, &record.object, &record.id).await);
            }
            (audit, event)
        }
        WriteOp::Delete {
            object,
            id,
            expected_version,
            audit,
            event,
        } => {
            let done =
                sqlx::query("DELETE FROM records WHERE id = $1 AND object = $2 AND version = $3")
                    .bind(id)
                    .bind(object)
                    .bind(expected_version)
                    .execute(&mut *conn)
                    .await?;
            if done.rows_affected() == 0 {
                return Err(missing_or_stale(conn, object, id).await);
            }
            (audit, event)
        }
    };
    audit::insert(conn, dialect, &[audit]).await?;
    events::insert(conn, dialect, &[event]).await?;
    Ok(())
}

/// A batch of creates only, in three statements (records, audit entries, events)
/// instead of three per create: each statement is a round trip to the database (on
/// SQLite, a hand-off to its connection thread), and the writer is the serial part of
/// every write. Any failure fails the whole group; the caller then retries write by
/// write.
async fn insert_all(
    conn: &mut AnyConnection,
    dialect: Dialect,
    batch: &[Job],
) -> Result<(), WriteError> {
    let mut records = Vec::with_capacity(batch.len());
    let mut audits = Vec::with_capacity(batch.len());
    let mut events = Vec::with_capacity(batch.len());
    for job in batch {
        let WriteOp::Insert {
            record,
            audit,
            event,
        } = &job.op
        else {
            unreachable!("insert_all takes creates only")
        };
        records.push(record);
        audits.push(audit);
        events.push(event);
    }
    for (records, audits) in records
        .chunks(STATEMENT_ROWS)
        .zip(audits.chunks(STATEMENT_ROWS))
    {
        insert_records(conn, dialect, records, audits).await?;
    }
    for audits in audits.chunks(STATEMENT_ROWS) {
        audit::insert(conn, dialect, audits).await?;
    }
    for events in events.chunks(STATEMENT_ROWS) {
        events::insert(conn, dialect, events).await?;
    }
    Ok(())
}

/// New records in one multi-row statement, each created by its audit entry's actor.
async fn insert_records(
    conn: &mut AnyConnection,
    dialect: Dialect,
    records: &[&Record],
    audits: &[&AuditEntry],
) -> Result<(), WriteError> {
    let rows = crate::db::values_rows(dialect, records.len(), 10, Some(10));
    let sql = format!(
        "INSERT INTO records (id, object, version, owner_id, department_id, created_by, updated_by, created_at, updated_at, data) VALUES {rows}"
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for (record, audit) in records.iter().zip(audits) {
        query = query
            .bind(&record.id)
            .bind(&record.object)
            .bind(record.version)
            .bind(&record.owner)
            .bind(&record.department)
            .bind(&audit.actor)
            .bind(&audit.actor)
            .bind(&record.created_at)
            .bind(&record.created_at)
            .bind(serde_json::to_string(&record.fields).expect("a JSON map serialises"));
    }
    query.execute(&mut *conn).await.map_err(unique_or_db)?;
    Ok(())
}

async fn missing_or_stale(conn: &mut AnyConnection, object: &str, id: &str) -> WriteError {
    let current: Result<Option<i64>, _> =
        sqlx::query_scalar("SELECT version FROM records WHERE id = $1 AND object = $2")
            .bind(id)
            .bind(object)
            .fetch_optional(conn)
            .await;
    match current {
        Ok(Some(v)) => WriteError::Conflict(v),
        Ok(None) => WriteError::NotFound,
        Err(e) => WriteError::Db(e),
    }
}

fn unique_or_db(e: sqlx::Error) -> WriteError {
    match crate::db::violated_constraint(&e) {
        Some(name) => WriteError::Unique(name),
        None => WriteError::Db(e),
    }
}
