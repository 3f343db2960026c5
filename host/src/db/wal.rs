//! SQLite's write-ahead log kept short without slowing the writer.
//!
//! SQLite copies the log back into the database (a checkpoint) inside the commit that
//! fills it: with one writer that is the serial part of every write, so every few
//! batches of a bulk import the writer stopped to copy 32 MiB of pages and sync both
//! files. Here the writer's connection never checkpoints on its own; a task beside it
//! copies the log on another connection (a passive checkpoint, which neither waits for
//! nor blocks the writer) at most every [`PAUSE`] while commits come.
//!
//! A passive checkpoint never lets the log start over under steady writes (the writer
//! has added frames by the time it ends), so the file would grow for as long as an
//! import runs (1.5 GB was seen). Once the log passes [`RESTART_PAGES`], the writer,
//! between two batches, asks for a restart checkpoint: it copies the few frames the
//! task has not, waits briefly for readers of the old log, and the next commit writes
//! the log from its start again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::AnyConnection;
use tokio::sync::Notify;

use super::Db;

/// Least time between two passive checkpoints while commits come.
const PAUSE: Duration = Duration::from_millis(250);
/// Log length, in pages, past which the writer restarts the log between batches
/// (16,000 pages of 4 KiB: 64 MiB).
const RESTART_PAGES: i64 = 16_000;
/// How long the writer waits for readers of the old log before leaving the restart
/// until the keeper finds the log long again (at its next checkpoint).
const RESTART_WAIT_MS: u32 = 50;

/// Statements for the writer's connection: it leaves checkpoints to the keeper.
pub const WRITER_PRAGMAS: &str = "PRAGMA wal_autocheckpoint=0";

#[derive(Clone)]
pub struct WalKeeper {
    shared: Arc<Shared>,
}

struct Shared {
    /// Woken after each commit of the writer.
    committed: Notify,
    /// The log passed [`RESTART_PAGES`]: the writer restarts it between batches.
    restart_due: AtomicBool,
}

impl WalKeeper {
    /// Starts the checkpoint task on `db`'s pool (an SQLite database).
    pub fn start(db: Db) -> WalKeeper {
        let shared = Arc::new(Shared {
            committed: Notify::new(),
            restart_due: AtomicBool::new(false),
        });
        tokio::spawn(keep(db, shared.clone()));
        WalKeeper { shared }
    }

    /// Tells the keeper the writer committed (frames were added to the log).
    pub fn committed(&self) {
        self.shared.committed.notify_one();
    }

    /// Run by the writer between batches: restarts the log when it has grown long.
    /// A restart that finds readers still on the old log is tried again once the
    /// keeper finds the log long again, so busy readers cost the writer at most one
    /// short wait per checkpoint.
    pub async fn restart_if_due(&self, writer: &mut AnyConnection) {
        if !self.shared.restart_due.swap(false, Ordering::Relaxed) {
            return;
        }
        if let Err(e) = restart(writer).await {
            tracing::warn!(error = %e, "could not restart the write-ahead log");
        }
    }
}

/// Copies the log into the database after commits, at most every [`PAUSE`].
async fn keep(db: Db, shared: Arc<Shared>) {
    loop {
        shared.committed.notified().await;
        tokio::time::sleep(PAUSE).await;
        match checkpoint(&db).await {
            Ok(log) if log >= RESTART_PAGES => shared.restart_due.store(true, Ordering::Relaxed),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "a checkpoint of the write-ahead log failed"),
        }
    }
}

/// A passive checkpoint on a pooled connection; the log's length in pages.
async fn checkpoint(db: &Db) -> Result<i64, sqlx::Error> {
    let (_busy, log, _copied): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(&db.pool)
        .await?;
    Ok(log)
}

/// A restart checkpoint on the writer's connection, waiting at most
/// [`RESTART_WAIT_MS`] for readers of the old log.
async fn restart(writer: &mut AnyConnection) -> Result<(), sqlx::Error> {
    let busy_wait = |ms: u32| sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA busy_timeout={ms}")));
    busy_wait(RESTART_WAIT_MS).execute(&mut *writer).await?;
    let done: Result<(i64, i64, i64), _> = sqlx::query_as("PRAGMA wal_checkpoint(RESTART)")
        .fetch_one(&mut *writer)
        .await;
    busy_wait(super::BUSY_WAIT_MS).execute(&mut *writer).await?;
    let (busy, log, _copied) = done?;
    if busy != 0 {
        tracing::debug!(log, "readers kept the write-ahead log from starting over");
    }
    Ok(())
}
