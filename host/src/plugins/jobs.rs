//! Jobs: durable callbacks plugins schedule through `crm:plugin/jobs`.
//!
//! - Stored in `plugin_jobs`, so they survive restarts; run once due, on a fresh
//!   instance, as the plugin's own identity ([`super::Installed::own_actor`]).
//! - A host leases a job while it runs it, so two hosts never run the same job; a
//!   host stopped mid-run leaves a lease that expires and the job runs again (at
//!   least once: handlers must be safe to run twice).
//! - An error is retried after [`RETRY_AFTER`]; after the last attempt the job is
//!   kept as `failed` for an admin to read, retry or delete.
//! - Jobs of a plugin that is not running (not approved, suspended, enabled nowhere,
//!   uninstalled) wait until it runs again.

use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use sqlx::{AssertSqlSafe, Row};
use utoipa::{IntoParams, ToSchema};

use super::PluginService;
use super::runtime::v0_1::crm::plugin::types::Job as WitJob;
use crate::api::error::ApiError;
use crate::db::{self, Db};
use crate::records::service::RecordService;

/// Waits before each retry; one attempt more than entries.
pub const RETRY_AFTER: &[Duration] = &[Duration::from_secs(1), Duration::from_secs(5)];
/// How often due jobs are looked for: the resolution of a job's time.
const POLL: Duration = Duration::from_millis(500);
/// Jobs claimed per round.
const BATCH: i64 = 20;
/// How long a host's claim on a running job lasts (longer than any deadline).
const LEASE: chrono::TimeDelta = chrono::TimeDelta::seconds(120);

/// A scheduled or failed job, as admins see it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Job {
    pub id: String,
    pub plugin_id: String,
    pub name: String,
    pub payload: String,
    /// When it is due (or was, for a failed job).
    pub run_at: String,
    /// Attempts made so far.
    pub attempts: i64,
    /// `scheduled` or `failed`.
    pub status: String,
    /// The last attempt's error.
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobQuery {
    /// `scheduled` or `failed`; both when absent.
    pub status: Option<String>,
    /// At most 200; default 50.
    pub limit: Option<i64>,
}

const COLUMNS: &str =
    "id, plugin_id, name, payload, run_at, attempts, status, last_error, created_at, updated_at";

fn job_of(r: &sqlx::any::AnyRow) -> Result<Job, sqlx::Error> {
    Ok(Job {
        id: r.try_get("id")?,
        plugin_id: r.try_get("plugin_id")?,
        name: r.try_get("name")?,
        payload: r.try_get("payload")?,
        run_at: r.try_get("run_at")?,
        attempts: r.try_get("attempts")?,
        status: r.try_get("status")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

#[derive(Clone)]
pub struct JobRunner {
    plugins: PluginService,
    records: RecordService,
    host_id: String,
}

impl JobRunner {
    pub fn new(plugins: PluginService, records: RecordService) -> Self {
        JobRunner {
            plugins,
            records,
            host_id: db::new_id(),
        }
    }

    fn db(&self) -> &Db {
        self.records.db()
    }

    /// Runs due jobs in the background every [`POLL`].
    pub fn spawn(self) {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(POLL).await;
                if let Err(e) = self.round().await {
                    tracing::error!(error = %e, "a jobs round failed");
                }
            }
        });
    }

    /// Runs the jobs due now of running plugins; answers how many ran.
    pub async fn round(&self) -> Result<usize, sqlx::Error> {
        let running = self.plugins.running();
        if running.is_empty() {
            return Ok(0);
        }
        let now = db::now();
        let placeholders: Vec<String> = (0..running.len()).map(|i| format!("${}", i + 3)).collect();
        let sql = format!(
            "SELECT {COLUMNS} FROM plugin_jobs WHERE status = 'scheduled' AND run_at <= $1 \
             AND (lease_until IS NULL OR lease_until < $1) AND plugin_id IN ({}) ORDER BY run_at LIMIT $2",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(&now).bind(BATCH);
        for id in &running {
            query = query.bind(id);
        }
        let due = query.fetch_all(&self.db().pool).await?;
        let mut ran = 0;
        for row in &due {
            let job = job_of(row)?;
            // The batch may be old by now: the plugin may have stopped meanwhile.
            let running = self
                .plugins
                .installed(&job.plugin_id)
                .is_some_and(|p| p.is_running());
            if running && self.claim(&job).await? {
                self.run(job).await?;
                ran += 1;
            }
        }
        Ok(ran)
    }

    /// Takes the job's lease unless another host holds it or ran it since it was
    /// read (its attempts moved on, or a retry put it off).
    async fn claim(&self, job: &Job) -> Result<bool, sqlx::Error> {
        let now = Utc::now();
        let claimed = sqlx::query(
            "UPDATE plugin_jobs SET lease_owner = $1, lease_until = $2, attempts = attempts + 1 \
             WHERE id = $3 AND status = 'scheduled' AND attempts = $5 AND run_at <= $4 \
             AND (lease_until IS NULL OR lease_until < $4)",
        )
        .bind(&self.host_id)
        .bind(db::format_time(now + LEASE))
        .bind(&job.id)
        .bind(db::format_time(now))
        .bind(job.attempts)
        .execute(&self.db().pool)
        .await?;
        Ok(claimed.rows_affected() == 1)
    }

    async fn run(&self, job: Job) -> Result<(), sqlx::Error> {
        let Some(plugin) = self.plugins.installed(&job.plugin_id) else {
            return Ok(());
        };
        let attempt = job.attempts + 1;
        let call = WitJob {
            id: job.id.clone(),
            name: job.name.clone(),
            payload: job.payload.clone(),
            attempt: attempt as u32,
        };
        let outcome = self
            .plugins
            .runtime()
            .run_job(&plugin.loaded, plugin.own_context(&self.records), &call)
            .await;
        let pool = &self.db().pool;
        match outcome {
            Ok(()) => {
                self.plugins.record_outcome(&job.plugin_id, None).await;
                // Only while this host holds the lease: a run that outlived it
                // leaves the job to the host that took over.
                sqlx::query("DELETE FROM plugin_jobs WHERE id = $1 AND lease_owner = $2")
                    .bind(&job.id)
                    .bind(&self.host_id)
                    .execute(pool)
                    .await?;
            }
            Err(error) => {
                tracing::warn!(plugin = %job.plugin_id, job = %job.id, attempt, %error, "a job failed");
                let retry = RETRY_AFTER.get(attempt as usize - 1);
                let (status, run_at) = match retry {
                    Some(wait) => (
                        "scheduled",
                        db::format_time(
                            Utc::now() + chrono::TimeDelta::from_std(*wait).expect("a short wait"),
                        ),
                    ),
                    None => ("failed", job.run_at.clone()),
                };
                sqlx::query(
                    "UPDATE plugin_jobs SET status = $1, run_at = $2, last_error = $3, lease_owner = NULL, \
                     lease_until = NULL, updated_at = $4 WHERE id = $5 AND lease_owner = $6",
                )
                .bind(status)
                .bind(run_at)
                .bind(&error)
                .bind(db::now())
                .bind(&job.id)
                .bind(&self.host_id)
                .execute(pool)
                .await?;
                if retry.is_none() {
                    self.plugins
                        .record_outcome(&job.plugin_id, Some(&error))
                        .await;
                }
            }
        }
        Ok(())
    }
}

impl PluginService {
    /// A plugin's scheduled and failed jobs, soonest first.
    pub async fn jobs(&self, id: &str, query: &JobQuery) -> Result<Vec<Job>, ApiError> {
        self.get(id)?;
        let limit = query.limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(ApiError::bad_request("limit must be 1 to 200"));
        }
        let rows = match query.status.as_deref() {
            None => {
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM plugin_jobs WHERE plugin_id = $1 ORDER BY run_at, id LIMIT $2"
                )))
                .bind(id)
                .bind(limit)
                .fetch_all(&self.db.pool)
                .await?
            }
            Some(status @ ("scheduled" | "failed")) => {
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM plugin_jobs WHERE plugin_id = $1 AND status = $2 ORDER BY run_at, id LIMIT $3"
                )))
                .bind(id)
                .bind(status)
                .bind(limit)
                .fetch_all(&self.db.pool)
                .await?
            }
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "status '{other}' is not one of scheduled, failed"
                )));
            }
        };
        Ok(rows.iter().map(job_of).collect::<Result<_, _>>()?)
    }

    /// Schedules a failed job again, now, with its attempts reset.
    pub async fn retry_job(&self, id: &str, job: &str) -> Result<Job, ApiError> {
        let now = db::now();
        let done = sqlx::query(
            "UPDATE plugin_jobs SET status = 'scheduled', attempts = 0, run_at = $1, updated_at = $1 \
             WHERE id = $2 AND plugin_id = $3 AND status = 'failed'",
        )
        .bind(&now)
        .bind(job)
        .bind(id)
        .execute(&self.db.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(ApiError::not_found(format!(
                "{id} has no failed job '{job}'"
            )));
        }
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM plugin_jobs WHERE id = $1"
        )))
        .bind(job)
        .fetch_one(&self.db.pool)
        .await?;
        Ok(job_of(&row)?)
    }

    /// Removes a scheduled or failed job.
    pub async fn delete_job(&self, id: &str, job: &str) -> Result<(), ApiError> {
        let done = sqlx::query("DELETE FROM plugin_jobs WHERE id = $1 AND plugin_id = $2")
            .bind(job)
            .bind(id)
            .execute(&self.db.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(ApiError::not_found(format!("{id} has no job '{job}'")));
        }
        Ok(())
    }
}
