//! CSV imports into any object: upload the file, map its columns to fields, check it
//! in a dry run that reports every bad row with its reason, then run it as a
//! background job whose progress the caller reads. Every row goes through the records
//! service (the one write path: rights, validation, hooks, audit, events), so an
//! import can do nothing its user could not do by hand. Rows that match an existing
//! record on the `match_on` fields update it (or are skipped), so running the same
//! file twice does not duplicate it.

pub mod routes;
mod run;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use crate::db::{self, Db};
use crate::records::metadata::{FieldType, ObjectType};

pub use run::{resume_interrupted, spawn};

/// What to do with a row that matches an existing record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnDuplicate {
    /// Write the row's values into the record (only those that differ).
    #[default]
    Update,
    /// Leave the record as it is.
    Skip,
}

/// How a file's rows become records.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct Settings {
    /// CSV column -> field name; columns not named are not imported.
    pub mapping: BTreeMap<String, String>,
    /// Fields whose values identify an existing record (all must match): a row that
    /// matches one is a duplicate. Empty: every row creates a record.
    pub match_on: Vec<String>,
    pub on_duplicate: OnDuplicate,
}

/// One uploaded file and its last run.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Import {
    pub id: String,
    pub object: String,
    pub file_name: String,
    pub bytes: i64,
    /// The header row.
    pub columns: Vec<String>,
    /// Data rows in the file (the header not counted).
    pub rows_total: i64,
    /// `uploaded`; `checking` -> `checked` for a dry run; `running` -> `done`;
    /// `cancelled`; `failed` (see `error`).
    pub status: String,
    /// Whether the last run was a dry run: the counts say what it would do.
    pub dry_run: bool,
    /// The last run's settings; after the upload, the suggested ones.
    pub settings: Settings,
    /// Rows read so far (progress: `rows_done / rows_total`).
    pub rows_done: i64,
    pub created: i64,
    pub updated: i64,
    /// Duplicates with nothing to change, or skipped by `on_duplicate`.
    pub unchanged: i64,
    /// Rows refused; `GET /api/v1/imports/{id}/errors` says why.
    pub failed: i64,
    pub error: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

/// A refused row: its number as a spreadsheet shows it (the header is row 1).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RowError {
    pub row: i64,
    pub message: String,
}

const COLUMNS: &str = "id, object, file_name, bytes, columns, rows_total, status, dry_run, settings, \
     rows_done, created, updated, unchanged, failed, error, created_at, started_at, finished_at";

/// Where an import's file lies.
pub fn file_path(data_dir: &std::path::Path, id: &str) -> PathBuf {
    data_dir.join("imports").join(format!("{id}.csv"))
}

/// The mapping and match fields suggested for a file: columns named like a field
/// (its name or label, any case) map to it; the object's unique fields, or else
/// `email`, among those mapped identify duplicates.
pub fn suggest(object: &ObjectType, writable: &[String], columns: &[String]) -> Settings {
    let mut mapping = BTreeMap::new();
    for column in columns {
        let wanted = column.trim().to_lowercase();
        let field = object.fields.iter().find(|f| {
            writable.contains(&f.name)
                && (f.name.to_lowercase() == wanted
                    || f.label.to_lowercase() == wanted
                    || f.name.replace('_', " ") == wanted)
        });
        if let Some(f) = field
            && !mapping.values().any(|v| v == &f.name)
        {
            mapping.insert(column.clone(), f.name.clone());
        }
    }
    let mapped = |name: &str| mapping.values().any(|v| v == name);
    let mut match_on: Vec<String> = object
        .fields
        .iter()
        .filter(|f| f.unique && matchable(f.kind) && mapped(&f.name))
        .map(|f| f.name.clone())
        .take(1)
        .collect();
    if match_on.is_empty() && mapped("email") {
        match_on.push("email".into());
    }
    Settings {
        mapping,
        match_on,
        on_duplicate: OnDuplicate::Update,
    }
}

/// Field types a duplicate can be found by (compared as text, on the field's index).
pub fn matchable(kind: FieldType) -> bool {
    matches!(
        kind,
        FieldType::Text
            | FieldType::Email
            | FieldType::Phone
            | FieldType::Url
            | FieldType::Picklist
            | FieldType::Reference
    )
}

pub struct NewImport<'a> {
    pub id: &'a str,
    pub object: &'a str,
    pub user: &'a str,
    pub file_name: &'a str,
    pub bytes: i64,
    pub columns: &'a [String],
    pub rows_total: i64,
    pub settings: &'a Settings,
}

pub async fn insert(db: &Db, new: NewImport<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO imports (id, object, created_by, file_name, bytes, columns, rows_total, status, settings, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'uploaded', $8, $9)",
    )
    .bind(new.id)
    .bind(new.object)
    .bind(new.user)
    .bind(new.file_name)
    .bind(new.bytes)
    .bind(serde_json::to_string(new.columns).expect("names serialise"))
    .bind(new.rows_total)
    .bind(serde_json::to_string(new.settings).expect("settings serialise"))
    .bind(db::now())
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// The import `id` if `user` uploaded it.
pub async fn get(db: &Db, user: &str, id: &str) -> Result<Option<Import>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM imports WHERE id = $1 AND created_by = $2");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(user)
        .fetch_optional(&db.pool)
        .await?
        .map(|row| from_row(&row))
        .transpose()
}

/// `user`'s imports, newest first, older than `before` (an id).
pub async fn list(
    db: &Db,
    user: &str,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<Import>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM imports WHERE created_by = $1 AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(user)
        .bind(before.unwrap_or(""))
        .bind(limit)
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Imports a host stopped in the middle of, to carry on from where they were.
pub async fn interrupted(db: &Db) -> Result<Vec<(Import, String, Option<String>)>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS}, created_by, run_id FROM imports WHERE status IN ('running', 'checking') ORDER BY id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&db.pool)
        .await?;
    rows.iter()
        .map(|row| {
            Ok((
                from_row(row)?,
                row.try_get("created_by")?,
                row.try_get("run_id")?,
            ))
        })
        .collect()
}

/// Makes a new run the import's run if it still has `old` (a resume: the host that
/// claims it carries on, no other); answers the new run's id.
pub async fn take_over(
    db: &Db,
    id: &str,
    old: Option<&str>,
) -> Result<Option<String>, sqlx::Error> {
    let run = db::new_id();
    let done = sqlx::query(
        "UPDATE imports SET run_id = $2 WHERE id = $1 AND COALESCE(run_id, '') = $3 \
         AND status IN ('running', 'checking')",
    )
    .bind(id)
    .bind(&run)
    .bind(old.unwrap_or(""))
    .execute(&db.pool)
    .await?;
    Ok((done.rows_affected() == 1).then_some(run))
}

/// Starts a run: the settings saved, the counts and earlier errors cleared. Refused
/// (false) while a run is under way.
pub async fn start(
    db: &Db,
    id: &str,
    settings: &Settings,
    dry_run: bool,
) -> Result<Option<String>, sqlx::Error> {
    let run = db::new_id();
    let mut tx = db.pool.begin().await?;
    let started = sqlx::query(
        "UPDATE imports SET status = $2, dry_run = $3, settings = $4, rows_done = 0, created = 0, \
         updated = 0, unchanged = 0, failed = 0, error = NULL, started_at = $5, finished_at = NULL, \
         run_id = $6 WHERE id = $1 AND status NOT IN ('running', 'checking')",
    )
    .bind(id)
    .bind(if dry_run { "checking" } else { "running" })
    .bind(i32::from(dry_run))
    .bind(serde_json::to_string(settings).expect("settings serialise"))
    .bind(db::now())
    .bind(&run)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if started {
        sqlx::query("DELETE FROM import_errors WHERE import_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(started.then_some(run))
}

/// Stops a run under way; false when none was.
pub async fn cancel(db: &Db, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE imports SET status = 'cancelled', finished_at = $2 \
         WHERE id = $1 AND status IN ('running', 'checking')",
    )
    .bind(id)
    .bind(db::now())
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// What one stretch of rows came to.
#[derive(Debug, Default)]
pub struct Tally {
    pub rows: i64,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub errors: Vec<RowError>,
}

impl Tally {
    /// Adds another part of the same stretch (the part that waited counts no rows).
    pub fn add(&mut self, other: Tally) {
        self.rows += other.rows;
        self.created += other.created;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.errors.extend(other.errors);
        self.errors.sort_by_key(|e| e.row);
    }
}

/// Adds a stretch's counts and errors; false when the run was cancelled meanwhile.
pub async fn record_progress(
    db: &Db,
    id: &str,
    run: &str,
    tally: &Tally,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    let going = sqlx::query(
        "UPDATE imports SET rows_done = rows_done + $2, created = created + $3, updated = updated + $4, \
         unchanged = unchanged + $5, failed = failed + $6 \
         WHERE id = $1 AND run_id = $7 AND status IN ('running', 'checking')",
    )
    .bind(id)
    .bind(tally.rows)
    .bind(tally.created)
    .bind(tally.updated)
    .bind(tally.unchanged)
    .bind(tally.errors.len() as i64)
    .bind(run)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if going {
        for part in tally.errors.chunks(500) {
            let rows = db::values_rows(db.dialect, part.len(), 3, None);
            let sql = format!(
                "INSERT INTO import_errors (import_id, row_number, message) VALUES {rows} \
                 ON CONFLICT (import_id, row_number) DO NOTHING"
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for e in part {
                query = query.bind(id).bind(e.row).bind(&e.message);
            }
            query.execute(&mut *tx).await?;
        }
    }
    tx.commit().await?;
    Ok(going)
}

/// Ends a run: `checked` or `done`, or `failed` with the reason.
pub async fn finish(
    db: &Db,
    id: &str,
    run: &str,
    dry_run: bool,
    failure: Option<&str>,
) -> Result<(), sqlx::Error> {
    let status = match (failure, dry_run) {
        (Some(_), _) => "failed",
        (None, true) => "checked",
        (None, false) => "done",
    };
    sqlx::query(
        "UPDATE imports SET status = $2, error = $3, finished_at = $4 \
         WHERE id = $1 AND run_id = $5 AND status IN ('running', 'checking')",
    )
    .bind(id)
    .bind(status)
    .bind(failure)
    .bind(db::now())
    .bind(run)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Refused rows of an import from row `after` on, in file order.
pub async fn errors(
    db: &Db,
    id: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<RowError>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT row_number, message FROM import_errors WHERE import_id = $1 AND row_number > $2 \
         ORDER BY row_number LIMIT $3",
    )
    .bind(id)
    .bind(after)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(RowError {
                row: r.try_get("row_number")?,
                message: r.try_get("message")?,
            })
        })
        .collect()
}

fn from_row(row: &AnyRow) -> Result<Import, sqlx::Error> {
    let json = |column: &str| -> Result<String, sqlx::Error> { row.try_get(column) };
    let settings: Option<String> = row.try_get("settings")?;
    Ok(Import {
        id: row.try_get("id")?,
        object: row.try_get("object")?,
        file_name: row.try_get("file_name")?,
        bytes: row.try_get("bytes")?,
        columns: serde_json::from_str(&json("columns")?).unwrap_or_default(),
        rows_total: row.try_get("rows_total")?,
        status: row.try_get("status")?,
        dry_run: row.try_get::<i32, _>("dry_run")? != 0,
        settings: settings
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default(),
        rows_done: row.try_get("rows_done")?,
        created: row.try_get("created")?,
        updated: row.try_get("updated")?,
        unchanged: row.try_get("unchanged")?,
        failed: row.try_get("failed")?,
        error: row.try_get("error")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}
