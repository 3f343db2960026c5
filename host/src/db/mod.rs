//! The database handle: one code path for SQLite (embedded default) and PostgreSQL.
//!
//! Queries are written once with `$N` placeholders (SQLite accepts them too) and run
//! through sqlx's `Any` driver. The few places where the two dialects differ (JSON
//! columns, JSON array membership) go through [`Dialect`], so SQL is never forked per
//! backend elsewhere. JSON fields are read with `data->>'field'`, which both accept.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};

/// Which SQL dialect the connected database speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// A bind parameter stored into a JSON column (`JSONB` on PostgreSQL, text on SQLite).
    pub fn json_param(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => format!("${n}"),
            Dialect::Postgres => format!("CAST(${n} AS JSONB)"),
        }
    }

    /// Parameter `n` of a statement whose parameters each appear once, in bind order
    /// (a multi-row VALUES list, an IN list): `?` on SQLite, `$n` on PostgreSQL. sqlx
    /// finds where each `$n` goes on SQLite by asking for every parameter's name, a
    /// scan of the statement's names each time: for the thousands of parameters of a
    /// batch that was a fifth of a bulk import's time.
    pub fn in_order(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => "?".to_string(),
            Dialect::Postgres => format!("${n}"),
        }
    }

    /// A JSON column read back as text, so `Any` can decode it as a string.
    pub fn json_text(self, column: &str) -> String {
        match self {
            Dialect::Sqlite => column.to_string(),
            Dialect::Postgres => format!("{column}::text"),
        }
    }

    /// True when the JSON array at `data.field` holds the string bound at `$n`.
    pub fn json_array_contains(self, field: &str, n: usize) -> String {
        match self {
            Dialect::Sqlite => {
                format!("EXISTS (SELECT 1 FROM json_each(data, '$.{field}') WHERE value = ${n})")
            }
            Dialect::Postgres => format!("jsonb_exists(data->'{field}', ${n})"),
        }
    }
}

pub mod stats;
pub mod wal;

/// How long an SQLite connection waits for another's write to end before failing.
const BUSY_WAIT_MS: u32 = 10_000;

/// A connection pool plus the dialect it speaks.
#[derive(Clone, Debug)]
pub struct Db {
    pub pool: AnyPool,
    pub dialect: Dialect,
}

impl Db {
    /// Opens the database at `url` (`sqlite://...` or `postgres://...`).
    pub async fn connect(url: &str) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Dialect::Postgres
        } else {
            anyhow::bail!("CRM_DATABASE_URL must start with sqlite: or postgres:");
        };
        let options = AnyConnectOptions::from_str(url)
            .context("invalid database URL")?
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
        let pool = match dialect {
            // SQLite has one writer; WAL lets readers go on while it writes, and the
            // busy timeout makes a second writer wait instead of failing. Statement
            // journals (every multi-row insert of the group commit keeps one) stay in
            // memory instead of a temporary file, and a 32 MiB page cache per
            // connection holds the hot index pages of a large table (the default
            // 2 MiB re-read them from the OS on every batch of a big import). The WAL
            // is copied back into the database every 8,000 pages (32 MiB) instead of
            // 1,000: a hot page written many times in between is copied once. (The
            // writer's own connection leaves checkpoints to a task beside it: see
            // `wal`.) A log that grew long is cut back to 64 MiB once it starts over.
            Dialect::Sqlite => AnyPoolOptions::new()
                .max_connections(8)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        conn.execute(sqlx::AssertSqlSafe(format!(
                            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; \
                             PRAGMA busy_timeout={BUSY_WAIT_MS}; PRAGMA foreign_keys=ON; \
                             PRAGMA temp_store=MEMORY; PRAGMA cache_size=-32768; \
                             PRAGMA wal_autocheckpoint=8000; PRAGMA journal_size_limit=67108864;",
                        )))
                        .await?;
                        Ok(())
                    })
                }),
            Dialect::Postgres => AnyPoolOptions::new().max_connections(24),
        }
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .with_context(|| format!("cannot open the database ({})", redact_url(url)))?;
        Ok(Db { pool, dialect })
    }

    /// Runs the embedded migrations of this dialect.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let migrator = match self.dialect {
            Dialect::Sqlite => sqlx::migrate!("migrations/sqlite"),
            Dialect::Postgres => sqlx::migrate!("migrations/postgres"),
        };
        migrator
            .run(&self.pool)
            .await
            .context("database migration failed")?;
        Ok(())
    }

    /// True when the database answers and every embedded migration has run.
    pub async fn ready(&self) -> bool {
        let expected = match self.dialect {
            Dialect::Sqlite => sqlx::migrate!("migrations/sqlite").iter().count(),
            Dialect::Postgres => sqlx::migrate!("migrations/postgres").iter().count(),
        } as i64;
        let applied: Result<i64, _> =
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_one(&self.pool)
                .await;
        matches!(applied, Ok(n) if n >= expected)
    }
}

/// Hides the password in a database URL before it reaches a log or an error.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &creds[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Timestamps are stored as fixed-width UTC text, so text order is time order on
/// both backends.
pub fn now() -> String {
    format_time(chrono::Utc::now())
}

pub fn format_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// A new sortable id (UUIDv7).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// `($1, $2, ..), ($k+1, ..)`: the VALUES rows of a multi-row INSERT of `rows` rows of
/// `columns` columns, the 1-based column `json` (if any) stored as JSON. Parameters
/// appear once each, in bind order, so SQLite gets `?` (see [`Dialect::in_order`]).
pub fn values_rows(dialect: Dialect, rows: usize, columns: usize, json: Option<usize>) -> String {
    (0..rows)
        .map(|r| {
            let cells: Vec<String> = (1..=columns)
                .map(|c| {
                    let n = r * columns + c;
                    match (dialect, json == Some(c)) {
                        (Dialect::Postgres, true) => dialect.json_param(n),
                        _ => dialect.in_order(n),
                    }
                })
                .collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The name of the constraint or index a unique violation hit, on either backend.
pub fn violated_constraint(err: &sqlx::Error) -> Option<String> {
    let db_err = err.as_database_error()?;
    if !db_err.is_unique_violation() {
        return None;
    }
    if let Some(name) = db_err.constraint() {
        return Some(name.to_string());
    }
    // SQLite names expression indexes only in the message: "UNIQUE constraint failed: index 'fu_..'".
    let msg = db_err.message();
    let start = msg.find("index '")? + "index '".len();
    let end = msg[start..].find('\'')? + start;
    Some(msg[start..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_row_values_number_their_parameters_on() {
        assert_eq!(
            values_rows(Dialect::Postgres, 2, 3, Some(3)),
            "($1, $2, CAST($3 AS JSONB)), ($4, $5, CAST($6 AS JSONB))"
        );
        assert_eq!(
            values_rows(Dialect::Sqlite, 2, 3, Some(3)),
            "(?, ?, ?), (?, ?, ?)"
        );
    }

    #[test]
    fn passwords_do_not_reach_logs() {
        assert_eq!(
            redact_url("postgres://crm:secret@db:5432/crm"),
            "postgres://crm:***@db:5432/crm"
        );
        assert_eq!(redact_url("postgres://crm@db/crm"), "postgres://crm@db/crm");
        assert_eq!(
            redact_url("sqlite://./data/crm.db"),
            "sqlite://./data/crm.db"
        );
    }

    #[test]
    fn timestamps_sort_as_text() {
        let a = format_time(chrono::DateTime::from_timestamp(1_700_000_000, 5_000).unwrap());
        let b = format_time(chrono::DateTime::from_timestamp(1_700_000_000, 500_000_000).unwrap());
        let c = format_time(chrono::DateTime::from_timestamp(1_700_000_001, 0).unwrap());
        assert!(a < b && b < c, "{a} {b} {c}");
        assert_eq!(a.len(), c.len());
    }
}
