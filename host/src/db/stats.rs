//! SQLite's planner statistics for the records table, kept current.
//!
//! Without statistics SQLite assumes that an equality on any indexed column finds
//! a handful of rows. `object = ?` then looks like the best way into `records`
//! (through `records_object_id` and friends), so a list sorted by a custom field
//! read every record of the object and sorted them (1 s for 1,000,000) instead of
//! walking the field's index (under 1 ms). `ANALYZE` tells the planner how many rows
//! an object has. SQLite never analyses by itself, and a sampled analysis
//! (`analysis_limit`) misjudges a column with few values such as `object`, so a task
//! runs a whole `ANALYZE records` when the table has grown or shrunk by a quarter
//! since the last one (about 2 s for 1,000,000 records, on a pooled connection; the
//! writer carries on). PostgreSQL keeps its own statistics (autovacuum).

use std::time::Duration;

use super::{Db, Dialect};

/// The first look, soon after start: a database filled before (an upgrade, a
/// restore, a benchmark's seed) gets its statistics at once.
const FIRST_LOOK: Duration = Duration::from_secs(2);
/// Between two looks.
const LOOK_EVERY: Duration = Duration::from_secs(120);
/// Smaller tables are read quickly however the planner goes.
const MIN_ROWS: i64 = 10_000;

/// Starts the task on `db` (nothing to do on PostgreSQL).
pub fn spawn(db: Db) {
    if db.dialect != Dialect::Sqlite {
        return;
    }
    tokio::spawn(async move {
        let mut pause = FIRST_LOOK;
        loop {
            tokio::time::sleep(pause).await;
            pause = LOOK_EVERY;
            match refresh(&db).await {
                Ok(Some(rows)) => {
                    tracing::info!(rows, "analysed the records table for the planner")
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "could not analyse the records table"),
            }
        }
    });
}

/// Analyses `records` when its statistics are missing or a quarter off; answers
/// the rows counted when it did.
pub async fn refresh(db: &Db) -> Result<Option<i64>, sqlx::Error> {
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM records")
        .fetch_one(&db.pool)
        .await?;
    // The row count the last analysis saw (its first number); no table, no row: none.
    let analysed: Option<String> =
        sqlx::query_scalar("SELECT stat FROM sqlite_stat1 WHERE idx = 'records_object_id'")
            .fetch_optional(&db.pool)
            .await
            .unwrap_or(None);
    let seen = analysed
        .as_deref()
        .and_then(|s| s.split(' ').next()?.parse::<i64>().ok())
        .unwrap_or(0);
    if !is_stale(rows, seen) {
        return Ok(None);
    }
    let mut conn = db.pool.acquire().await?;
    sqlx::query("PRAGMA analysis_limit=0")
        .execute(&mut *conn)
        .await?;
    sqlx::query("ANALYZE records").execute(&mut *conn).await?;
    Ok(Some(rows))
}

/// Whether statistics taken at `seen` rows mislead for a table of `rows`.
fn is_stale(rows: i64, seen: i64) -> bool {
    rows >= MIN_ROWS && (seen == 0 || rows > seen + seen / 4 || rows < seen - seen / 4)
}

#[cfg(test)]
mod tests {
    use super::is_stale;

    #[test]
    fn statistics_are_taken_again_when_the_table_moved_by_a_quarter() {
        assert!(!is_stale(9_999, 0), "a small table needs none");
        assert!(is_stale(10_000, 0));
        assert!(!is_stale(1_200_000, 1_000_000));
        assert!(is_stale(1_300_000, 1_000_000));
        assert!(is_stale(700_000, 1_000_000));
    }
}
