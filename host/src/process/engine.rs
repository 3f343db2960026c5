//! Definitions and instances in the database, and the worker that runs them.
//!
//! A worker round claims up to [`BATCH`] ready, due tokens under a lease, runs
//! each one's node and commits its move in one transaction guarded by the lease:
//! a token is moved at most once however many hosts share the work. A failed step
//! is retried after each of the configured waits (`CRM_PROCESS_RETRY_MS`); after
//! the last attempt the token becomes an
//! incident (and the instance with it) for an admin to retry, skip or cancel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sqlx::Row;
use utoipa::ToSchema;

use super::definition::{Definition, Flow, NodeKind};
use crate::api::error::{ApiError, FieldError};
use crate::auth::Actor;
use crate::db::{self, Db, Dialect};
use crate::plugins::PluginService;
use crate::plugins::runtime::v0_1::crm::plugin::types::StepInput;
use crate::records::service::RecordService;

/// How long a looked-up acting user is reused.
const ACTOR_TTL: Duration = Duration::from_secs(5);
/// Tokens claimed per round at most, and held claimed waiting for a runner. Each
/// move waits for a claim and a commit, so how many tokens are in flight bounds
/// the throughput (BENCHMARKS.md has the runs).
const BATCH: i64 = 256;
/// Moves committed together in one statement at most (PostgreSQL).
const MOVES: usize = 256;
/// How often due tokens are looked for when nothing wakes the worker.
const POLL: Duration = Duration::from_millis(250);

/// A published version of a process.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Published {
    pub key: String,
    pub version: i64,
    pub name: String,
    pub published_by: String,
    pub published_at: String,
    pub definition: Definition,
}

/// How a process is started by hand.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartInput {
    /// Its first variables.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub variables: Map<String, Value>,
    /// The record it runs for: its steps and conditions see it as `record`.
    #[serde(default)]
    pub record: Option<RecordRef>,
}

#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordRef {
    pub object: String,
    pub id: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Instance {
    pub id: String,
    /// The published version it runs (internal).
    #[serde(skip)]
    pub definition_id: String,
    pub process: String,
    pub version: i64,
    /// `running`, `completed`, `incident` or `cancelled`.
    pub status: String,
    #[schema(value_type = Object)]
    pub variables: Value,
    pub record: Option<RecordRef>,
    pub department: Option<String>,
    pub started_by: String,
    pub created_at: String,
    pub updated_at: String,
    pub ended_at: Option<String>,
}

/// Where a path of an instance stands.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Token {
    pub id: String,
    pub node: String,
    /// `ready`, `waiting` (for a person), `joined` (at a parallel join), `done`,
    /// `incident` or `cancelled`.
    pub status: String,
    pub due_at: String,
    pub attempts: i64,
    pub last_error: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct HistoryEntry {
    pub node: Option<String>,
    /// `started`, `completed` (a node), `failed` (an attempt), `incident`,
    /// `retried`, `skipped`, `cancelled`, `ended`.
    pub event: String,
    #[schema(value_type = Object)]
    pub detail: Value,
    pub actor: Option<String>,
    pub at: String,
}

/// A user task, as an inbox shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Task {
    pub id: String,
    pub instance: String,
    pub process: String,
    /// The published version its instance runs (internal).
    #[serde(skip)]
    pub definition_id: String,
    #[serde(skip)]
    pub token: String,
    pub node: String,
    pub name: String,
    /// Its user, or its role and department (the department alone: any member).
    pub assignee: super::definition::Assignee,
    /// `open`, `completed` or `cancelled`.
    pub status: String,
    pub claimed_by: Option<String>,
    pub outcome: Option<String>,
    pub completed_by: Option<String>,
    pub due_at: Option<String>,
    /// Variables completing it may set.
    pub fields: Vec<String>,
    /// Outcomes to choose from (any when empty).
    pub outcomes: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// How a task is completed.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteInput {
    #[serde(default)]
    pub outcome: Option<String>,
    /// Values of the task's fields.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub variables: Map<String, Value>,
}

/// An instance with its tokens and history.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct InstanceView {
    #[serde(flatten)]
    pub instance: Instance,
    pub tokens: Vec<Token>,
    pub history: Vec<HistoryEntry>,
}

/// What an admin does with an incident.
#[derive(Clone, Copy, Debug)]
pub enum Resolution {
    /// Run the failed node again.
    Retry,
    /// Leave the failed node as if it had succeeded, taking its default way out.
    Skip,
    /// Stop the whole instance.
    Cancel,
}

#[derive(Clone)]
pub struct ProcessService {
    pub(super) db: Db,
    pub(super) records: RecordService,
    plugins: PluginService,
    pub(super) host_id: String,
    pub(super) wake: Arc<tokio::sync::Notify>,
    definitions: Arc<Mutex<HashMap<String, Arc<Definition>>>>,
    /// The users instances act as, kept for a few seconds: steps of one instance
    /// follow each other closely (a deactivated user stops within [`ACTOR_TTL`]).
    actors: Arc<Mutex<HashMap<String, (std::time::Instant, Actor)>>>,
    /// Waits before each retry of a failed step; one attempt more than entries.
    retries: Arc<Vec<Duration>>,
    /// How long a host's claim on a token lasts: by default longer than any step's
    /// deadline (60 s at most), so a live host never loses a token it is running.
    lease: chrono::TimeDelta,
    /// The shortest period of a scheduled start (`CRM_PROCESS_SCHEDULE_MIN_SECS`).
    schedule_min: Duration,
    /// Where runners hand their usual moves to be committed in batches (set once
    /// the worker runs on PostgreSQL; without it each move commits on its own).
    moves: Arc<OnceLock<tokio::sync::mpsc::Sender<Move>>>,
}

/// A claimed token, with what its move needs.
struct Claimed {
    id: String,
    instance_id: String,
    node: String,
    via: Option<String>,
    attempts: i64,
    /// Its instance as read with the claim (saves a read per token).
    instance: Option<Instance>,
}

/// A token's usual move on PostgreSQL, committed with others in one statement: the
/// token done, the variables merged, its history entry and the next token, or the
/// instance completed when this path ends a single-path instance.
struct Move {
    token: String,
    instance: String,
    node: String,
    set: Map<String, Value>,
    /// The flow taken, the node it leads to, when that token is due and whether
    /// it is a timer's; `None` when the path (and with it the instance) ends.
    next: Option<(String, String, String, bool)>,
}

/// What running a node decided.
enum Step {
    /// Move on along these flows, merging these variables.
    Next(Vec<String>, Map<String, Value>),
    /// Arrived at a parallel join: move on along these flows once a path has
    /// arrived by every incoming flow.
    Join(Vec<String>),
    /// Wait for a person: a task in their inbox.
    Task,
    /// Wait for the instance's record to match a condition.
    Wait,
    /// A boundary timer fired: go on if its task is still open (cancelling it
    /// when interrupting).
    Boundary {
        interrupting: bool,
        flows: Vec<String>,
    },
    /// The path ends here.
    End,
}

/// Token states that keep an instance alive.
const LIVE: &str = "('ready', 'waiting', 'joined', 'incident')";

fn key_ok(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 64
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

impl ProcessService {
    pub fn new(
        records: RecordService,
        plugins: PluginService,
        retries: Vec<Duration>,
        lease: Duration,
        schedule_min: Duration,
    ) -> Self {
        ProcessService {
            schedule_min,
            lease: chrono::TimeDelta::from_std(lease).unwrap_or(chrono::TimeDelta::seconds(90)),
            retries: Arc::new(retries),
            actors: Arc::default(),
            db: records.db().clone(),
            records,
            plugins,
            host_id: db::new_id(),
            wake: Arc::default(),
            definitions: Arc::default(),
            moves: Arc::default(),
        }
    }

    /// Checks a definition and publishes it as the next version of `key`; running
    /// instances stay on their version.
    pub async fn publish(
        &self,
        actor: &Actor,
        key: &str,
        definition: Definition,
    ) -> Result<Published, ApiError> {
        if !key_ok(key) {
            return Err(ApiError::bad_request(
                "a process key is 1 to 64 lower-case letters, digits and -",
            ));
        }
        let offered = self.offered_steps(actor, &definition).await;
        let step_exists = |step: &str| match offered.get(step) {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(e.clone()),
            None => Err(format!("'{step}' is not a step (plugin/step-type)")),
        };
        let errors = definition.check(&step_exists, self.schedule_min);
        if !errors.is_empty() {
            return Err(ApiError::invalid(
                "the process definition is not valid",
                errors,
            ));
        }
        let text = serde_json::to_string(&definition).map_err(ApiError::internal)?;
        let now = db::now();
        // Two admins publishing at once: the unique (key, version) makes one retry.
        for _ in 0..3 {
            let next: i64 = sqlx::query_scalar(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM process_definitions WHERE process_key = $1",
            )
            .bind(key)
            .fetch_one(&self.db.pool)
            .await?;
            let inserted = sqlx::query(
                "INSERT INTO process_definitions (id, process_key, version, name, definition, published_by, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(db::new_id())
            .bind(key)
            .bind(next)
            .bind(&definition.name)
            .bind(&text)
            .bind(&actor.user_id)
            .bind(&now)
            .execute(&self.db.pool)
            .await;
            match inserted {
                Ok(_) => {
                    self.schedule(key, &definition).await?;
                    return Ok(Published {
                        key: key.to_string(),
                        version: next,
                        name: definition.name.clone(),
                        published_by: actor.user_id.clone(),
                        published_at: now,
                        definition,
                    });
                }
                Err(e)
                    if e.as_database_error()
                        .is_some_and(|d| d.is_unique_violation()) =>
                {
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::conflict(
            "another version of this process was being published; try again",
        ))
    }

    /// For each `plugin/step` of the definition: whether a running plugin offers it.
    async fn offered_steps(
        &self,
        actor: &Actor,
        definition: &Definition,
    ) -> HashMap<String, Result<(), String>> {
        let mut offered = HashMap::new();
        let mut described: HashMap<String, Result<Vec<String>, String>> = HashMap::new();
        for node in &definition.nodes {
            let NodeKind::ServiceTask { step, .. } = &node.kind else {
                continue;
            };
            let Some((plugin_id, step_name)) = step.split_once('/') else {
                offered.insert(
                    step.clone(),
                    Err(format!("'{step}' is not plugin/step-type")),
                );
                continue;
            };
            if !described.contains_key(plugin_id) {
                let names = match self.plugins.installed(plugin_id).filter(|p| p.is_running()) {
                    None => Err(format!(
                        "the plugin {plugin_id} is not installed and running"
                    )),
                    Some(plugin) => {
                        let home = plugin.info.departments.first().cloned();
                        let host = plugin.host_context(&self.records, actor, home, false);
                        self.plugins
                            .runtime()
                            .describe_steps(&plugin.loaded, host)
                            .await
                            .map(|steps| steps.into_iter().map(|s| s.name).collect())
                            .map_err(|e| {
                                format!("the plugin {plugin_id} failed to list its steps: {e}")
                            })
                    }
                };
                described.insert(plugin_id.to_string(), names);
            }
            let verdict = match &described[plugin_id] {
                Ok(names) if names.iter().any(|n| n == step_name) => Ok(()),
                Ok(names) => Err(format!(
                    "the plugin {plugin_id} has no step '{step_name}'; it offers {}",
                    names.join(", ")
                )),
                Err(e) => Err(e.clone()),
            };
            offered.insert(step.clone(), verdict);
        }
        offered
    }

    /// The newest version of every process.
    pub async fn list(&self) -> Result<Vec<Published>, ApiError> {
        let rows = sqlx::query(
            "SELECT d.* FROM process_definitions d WHERE d.version = \
             (SELECT MAX(version) FROM process_definitions e WHERE e.process_key = d.process_key) \
             ORDER BY d.process_key",
        )
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter().map(published_of).collect()
    }

    /// A version of a process (the newest when `version` is `None`).
    pub async fn get(&self, key: &str, version: Option<i64>) -> Result<Published, ApiError> {
        let row = sqlx::query(
            "SELECT * FROM process_definitions WHERE process_key = $1 AND ($2 < 0 OR version = $2) \
             ORDER BY version DESC LIMIT 1",
        )
        .bind(key)
        .bind(version.unwrap_or(-1))
        .fetch_optional(&self.db.pool)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("there is no process '{key}'")))?;
        published_of(&row)
    }

    /// Starts an instance of the newest version of `key`, as `actor`.
    pub async fn start(
        &self,
        actor: &Actor,
        key: &str,
        input: StartInput,
    ) -> Result<Instance, ApiError> {
        self.start_once(actor, key, input, None)
            .await?
            .ok_or_else(|| ApiError::internal("a manual start has no trigger to repeat"))
    }

    /// Starts an instance; with a `trigger_key`, at most once per key (a start
    /// already made for it answers `None`).
    pub(super) async fn start_once(
        &self,
        actor: &Actor,
        key: &str,
        input: StartInput,
        trigger_key: Option<String>,
    ) -> Result<Option<Instance>, ApiError> {
        let row = sqlx::query(
            "SELECT id, version, definition FROM process_definitions WHERE process_key = $1 \
             ORDER BY version DESC LIMIT 1",
        )
        .bind(key)
        .fetch_optional(&self.db.pool)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("there is no process '{key}'")))?;
        let definition_id: String = row.try_get("id")?;
        let version: i64 = row.try_get("version")?;
        let definition = self.definition(&definition_id).await?;
        let department = match &input.record {
            // The caller must be able to read the record it starts a process for.
            Some(r) => self.records.get(actor, &r.object, &r.id).await?.department,
            None => self
                .records
                .access()
                .user(actor)
                .home_department()
                .map(str::to_string),
        };
        let start = definition
            .start()
            .ok_or_else(|| ApiError::internal("a published definition without a start"))?;
        let now = db::now();
        let id = db::new_id();
        let variables = Value::Object(input.variables);
        if variables.to_string().len() > 256 * 1024 {
            return Err(ApiError::invalid(
                "the process cannot start",
                vec![FieldError::new("variables", "are at most 256 KiB as JSON")],
            ));
        }
        let mut tx = self.db.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO process_instances (id, definition_id, process_key, version, status, variables, \
             record_object, record_id, department_id, started_by, trigger_key, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'running', $5, $6, $7, $8, $9, $11, $10, $10)",
        )
        .bind(&id)
        .bind(&definition_id)
        .bind(key)
        .bind(version)
        .bind(variables.to_string())
        .bind(input.record.as_ref().map(|r| r.object.clone()))
        .bind(input.record.as_ref().map(|r| r.id.clone()))
        .bind(&department)
        .bind(&actor.user_id)
        .bind(&now)
        .bind(&trigger_key)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e)
                if trigger_key.is_some()
                    && e.as_database_error()
                        .is_some_and(|d| d.is_unique_violation()) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        }
        insert_token(&mut tx, &id, &start.id, None, &now, &now, false).await?;
        history(
            &mut tx,
            &id,
            None,
            "started",
            json!({"version": version}),
            Some(&actor.user_id),
        )
        .await?;
        tx.commit().await?;
        self.wake.notify_one();
        self.instance_row(&id).await.map(Some)
    }

    async fn instance_row(&self, id: &str) -> Result<Instance, ApiError> {
        let row = sqlx::query("SELECT * FROM process_instances WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?
            .ok_or_else(|| ApiError::not_found("there is no such process instance"))?;
        Ok(instance_of(&row)?)
    }

    /// An instance with its tokens and history, for whoever started it and admins
    /// of its department.
    pub async fn instance(&self, actor: &Actor, id: &str) -> Result<InstanceView, ApiError> {
        let instance = self.instance_row(id).await?;
        self.may_see(actor, &instance).await?;
        let tokens = sqlx::query(
            "SELECT * FROM process_tokens WHERE instance_id = $1 ORDER BY created_at, id",
        )
        .bind(id)
        .fetch_all(&self.db.pool)
        .await?
        .iter()
        .map(token_of)
        .collect::<Result<_, _>>()?;
        let history =
            sqlx::query("SELECT * FROM process_history WHERE instance_id = $1 ORDER BY at, id")
                .bind(id)
                .fetch_all(&self.db.pool)
                .await?
                .iter()
                .map(history_of)
                .collect::<Result<_, _>>()?;
        Ok(InstanceView {
            instance,
            tokens,
            history,
        })
    }

    async fn may_see(&self, actor: &Actor, instance: &Instance) -> Result<(), ApiError> {
        if instance.started_by == actor.user_id {
            return Ok(());
        }
        // Existence is not leaked to others.
        self.records
            .access()
            .require_admin(
                actor,
                instance.department.as_deref(),
                "see this process instance",
            )
            .await
            .map(|_| ())
            .map_err(|_| ApiError::not_found("there is no such process instance"))
    }

    /// Instances newest first: all of them for organisation admins, otherwise
    /// those the caller started; `status` narrows them, `cursor` pages on.
    pub async fn instances(
        &self,
        actor: &Actor,
        status: Option<&str>,
        cursor: Option<&str>,
        limit: i64,
    ) -> Result<(Vec<Instance>, Option<String>), ApiError> {
        let all = self.records.access().user(actor).is_org_admin();
        let rows = sqlx::query(
            "SELECT * FROM process_instances WHERE ($1 OR started_by = $2) AND ($3 = '' OR status = $3) \
             AND ($4 = '' OR id < $4) ORDER BY id DESC LIMIT $5",
        )
        .bind(all)
        .bind(&actor.user_id)
        .bind(status.unwrap_or(""))
        .bind(cursor.unwrap_or(""))
        .bind(limit + 1)
        .fetch_all(&self.db.pool)
        .await?;
        let items: Vec<Instance> = rows.iter().map(instance_of).collect::<Result<_, _>>()?;
        Ok(crate::api::cut_page(items, limit, |i| i.id.clone()))
    }

    /// Retries, skips or cancels, as an admin of the instance's department.
    pub async fn resolve(
        &self,
        actor: &Actor,
        id: &str,
        resolution: Resolution,
    ) -> Result<InstanceView, ApiError> {
        let instance = self.instance_row(id).await?;
        self.may_see(actor, &instance).await?;
        self.records
            .access()
            .require_admin(
                actor,
                instance.department.as_deref(),
                "resolve process incidents",
            )
            .await?;
        let now = db::now();
        let mut tx = self.db.pool.begin().await?;
        match resolution {
            Resolution::Cancel => {
                if matches!(instance.status.as_str(), "completed" | "cancelled") {
                    return Err(ApiError::conflict(format!(
                        "the instance is already {}",
                        instance.status
                    )));
                }
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE process_tokens SET status = 'cancelled', lease_owner = NULL, updated_at = $1 \
                     WHERE instance_id = $2 AND status IN {LIVE}"
                )))
                .bind(&now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE process_tasks SET status = 'cancelled', updated_at = $1 WHERE instance_id = $2 AND status = 'open'",
                )
                .bind(&now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                set_status(&mut tx, id, "cancelled", &now, true).await?;
                history(
                    &mut tx,
                    id,
                    None,
                    "cancelled",
                    json!({}),
                    Some(&actor.user_id),
                )
                .await?;
            }
            Resolution::Retry | Resolution::Skip => {
                let incidents = sqlx::query(
                    "SELECT id, node FROM process_tokens WHERE instance_id = $1 AND status = 'incident'",
                )
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
                if incidents.is_empty() {
                    return Err(ApiError::conflict("the instance has no incident"));
                }
                let definition = self.definition(&instance.definition_id).await?;
                for row in &incidents {
                    let token: String = row.try_get("id")?;
                    let node: String = row.try_get("node")?;
                    if let Resolution::Retry = resolution {
                        sqlx::query(
                            "UPDATE process_tokens SET status = 'ready', attempts = 0, due_at = $1, \
                             lease_owner = NULL, lease_until = NULL, updated_at = $1 WHERE id = $2",
                        )
                        .bind(&now)
                        .bind(&token)
                        .execute(&mut *tx)
                        .await?;
                        history(
                            &mut tx,
                            id,
                            Some(&node),
                            "retried",
                            json!({}),
                            Some(&actor.user_id),
                        )
                        .await?;
                    } else {
                        let flows = default_way_out(&definition, &node);
                        sqlx::query("UPDATE process_tokens SET status = 'done', updated_at = $1 WHERE id = $2")
                            .bind(&now)
                            .bind(&token)
                            .execute(&mut *tx)
                            .await?;
                        history(
                            &mut tx,
                            id,
                            Some(&node),
                            "skipped",
                            json!({"flows": flows}),
                            Some(&actor.user_id),
                        )
                        .await?;
                        for flow in &flows {
                            enter(&mut tx, &definition, id, flow, &now).await?;
                        }
                    }
                }
                set_status(&mut tx, id, "running", &now, false).await?;
            }
        }
        tx.commit().await?;
        self.wake.notify_one();
        self.instance(actor, id).await
    }

    /// A published definition by id (they never change, so they are kept).
    pub(super) async fn definition(&self, id: &str) -> Result<Arc<Definition>, ApiError> {
        if let Some(d) = self.definitions.lock().expect("lock").get(id) {
            return Ok(d.clone());
        }
        let text: String =
            sqlx::query_scalar("SELECT definition FROM process_definitions WHERE id = $1")
                .bind(id)
                .fetch_one(&self.db.pool)
                .await?;
        let definition: Arc<Definition> = Arc::new(
            serde_json::from_str(&text)
                .map_err(|e| ApiError::internal(format!("stored definition {id}: {e}")))?,
        );
        self.definitions
            .lock()
            .expect("lock")
            .insert(id.to_string(), definition.clone());
        Ok(definition)
    }

    /// Runs due tokens, and starts instances from triggers, in the background.
    pub fn spawn(self) {
        let triggers = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = triggers.trigger_round().await {
                    tracing::error!(error = ?e, "a process trigger round failed");
                }
                tokio::time::sleep(POLL).await;
            }
        });
        // One claimer fills a queue in batches; runners take tokens from it as they
        // free up (a slow step holds up only its own runner). Moves of one instance
        // take turns on its row; SQLite has one writer, so fewer runners there.
        let runners = match self.db.dialect {
            Dialect::Postgres => 12,
            Dialect::Sqlite => 4,
        };
        if self.db.dialect == Dialect::Postgres {
            // Usual moves are committed together: one statement (and one commit)
            // for as many as the runners finished meanwhile.
            let (moves, mut pending) = tokio::sync::mpsc::channel::<Move>(MOVES * 4);
            let _ = self.moves.set(moves);
            let engine = self.clone();
            tokio::spawn(async move {
                while let Some(first) = pending.recv().await {
                    let mut batch = vec![first];
                    while batch.len() < MOVES
                        && let Ok(next) = pending.try_recv()
                    {
                        batch.push(next);
                    }
                    engine.commit_moves(batch).await;
                }
            });
        }
        let (queue, tokens) = tokio::sync::mpsc::channel::<Claimed>(BATCH as usize);
        let tokens = Arc::new(tokio::sync::Mutex::new(tokens));
        for _ in 0..runners {
            let (engine, tokens) = (self.clone(), tokens.clone());
            tokio::spawn(async move {
                loop {
                    let Some(token) = tokens.lock().await.recv().await else {
                        return;
                    };
                    if let Err(e) = engine.run_token(&token).await {
                        tracing::error!(token = %token.id, error = ?e, "a process token could not be moved");
                    }
                }
            });
        }
        tokio::spawn(async move {
            loop {
                let room = queue.capacity();
                if room < BATCH as usize / 4 {
                    // The runners are behind: let them catch up.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    continue;
                }
                match self.claim_due(room as i64).await {
                    Ok(claimed) if !claimed.is_empty() => {
                        for token in claimed {
                            if queue.send(token).await.is_err() {
                                return;
                            }
                        }
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = ?e, "claiming process tokens failed"),
                }
                tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    _ = self.wake.notified() => {}
                }
            }
        });
    }

    /// Claims up to `limit` tokens due now under this host's lease.
    async fn claim_due(&self, limit: i64) -> Result<Vec<Claimed>, ApiError> {
        let now = chrono::Utc::now();
        // A read first: an idle engine never takes SQLite's write lock.
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM process_tokens WHERE status = 'ready' AND due_at <= $1 \
             AND (lease_until IS NULL OR lease_until < $1) LIMIT 1",
        )
        .bind(db::format_time(now))
        .fetch_optional(&self.db.pool)
        .await?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let skip_locked = match self.db.dialect {
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        // Due timers first (a backlog of other work must not make them late), then
        // the rest, oldest due first.
        let mut rows = Vec::new();
        for timer in [1i64, 0] {
            let room = limit - rows.len() as i64;
            if room <= 0 {
                break;
            }
            let sql = format!(
                "UPDATE process_tokens SET lease_owner = $1, lease_until = $2 WHERE id IN \
                 (SELECT id FROM process_tokens WHERE status = 'ready' AND timer = $5 AND due_at <= $3 \
                  AND (lease_until IS NULL OR lease_until < $3) ORDER BY due_at LIMIT $4{skip_locked}) \
                 RETURNING id, instance_id, node, via, attempts"
            );
            rows.extend(
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(&self.host_id)
                    .bind(db::format_time(now + self.lease))
                    .bind(db::format_time(now))
                    .bind(room)
                    .bind(timer)
                    .fetch_all(&self.db.pool)
                    .await?,
            );
        }
        let mut claimed = rows
            .iter()
            .map(|r| {
                Ok(Claimed {
                    id: r.try_get("id")?,
                    instance_id: r.try_get("instance_id")?,
                    node: r.try_get("node")?,
                    via: r.try_get("via")?,
                    attempts: r.try_get("attempts")?,
                    instance: None,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        // Their instances in one read.
        if !claimed.is_empty() {
            let ids: Vec<&str> = claimed.iter().map(|t| t.instance_id.as_str()).collect();
            let marks: Vec<String> = (1..=ids.len()).map(|n| format!("${n}")).collect();
            let sql = format!(
                "SELECT * FROM process_instances WHERE id IN ({})",
                marks.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in &ids {
                query = query.bind(*id);
            }
            let instances: HashMap<String, Instance> = query
                .fetch_all(&self.db.pool)
                .await?
                .iter()
                .map(|r| instance_of(r).map(|i| (i.id.clone(), i)))
                .collect::<Result<_, sqlx::Error>>()?;
            for token in &mut claimed {
                token.instance = instances.get(&token.instance_id).cloned();
            }
        }
        Ok(claimed)
    }

    async fn run_token(&self, token: &Claimed) -> Result<(), ApiError> {
        let instance = match &token.instance {
            Some(instance) => instance.clone(),
            None => self.instance_row(&token.instance_id).await?,
        };
        let definition = self.definition(&instance.definition_id).await?;
        if instance.status != "running" {
            // Cancelled (or stopped by an incident elsewhere) meanwhile: let go.
            return self.release(token).await;
        }
        match self.run_node(&instance, &definition, token).await {
            Ok(step) => self.advance(token, &definition, step).await,
            Err(error) => self.failed(token, &error).await,
        }
    }

    /// Runs the node a token stands at: what it decided, or why it failed.
    async fn run_node(
        &self,
        instance: &Instance,
        definition: &Definition,
        token: &Claimed,
    ) -> Result<Step, String> {
        let node = definition
            .node(&token.node)
            .ok_or_else(|| format!("the node '{}' is not in the definition", token.node))?;
        let all_out = || -> Vec<String> {
            definition
                .outgoing(&node.id)
                .map(|f| f.id.clone())
                .collect()
        };
        match &node.kind {
            // A timer's token was created due when the timer fires.
            NodeKind::Start { .. } | NodeKind::Timer { .. } => {
                Ok(Step::Next(all_out(), Map::new()))
            }
            NodeKind::WaitRecord { condition } => {
                let expr =
                    super::expr::parse(condition).map_err(|e| format!("the condition: {e}"))?;
                if expr.holds(&self.scope(instance).await?) {
                    Ok(Step::Next(all_out(), Map::new()))
                } else {
                    Ok(Step::Wait)
                }
            }
            NodeKind::BoundaryTimer { interrupting, .. } => Ok(Step::Boundary {
                interrupting: *interrupting,
                flows: all_out(),
            }),
            NodeKind::End => Ok(Step::End),
            NodeKind::ParallelGateway if definition.incoming(&node.id).count() > 1 => {
                Ok(Step::Join(all_out()))
            }
            NodeKind::ParallelGateway => Ok(Step::Next(all_out(), Map::new())),
            NodeKind::UserTask { .. } => Ok(Step::Task),
            NodeKind::ExclusiveGateway { default } => {
                let scope = self.scope(instance).await?;
                for flow in definition.outgoing(&node.id) {
                    let Some(condition) = &flow.condition else {
                        continue;
                    };
                    let expr = super::expr::parse(condition)
                        .map_err(|e| format!("the condition of {}: {e}", flow.id))?;
                    if expr.holds(&scope) {
                        return Ok(Step::Next(vec![flow.id.clone()], Map::new()));
                    }
                }
                default
                    .clone()
                    .map(|d| Step::Next(vec![d], Map::new()))
                    .ok_or_else(|| "no condition held and the gateway has no default".into())
            }
            NodeKind::ServiceTask { step, config } => {
                let (outcome, next) = self.run_step(instance, token, step, config).await?;
                let out: Vec<&Flow> = definition.outgoing(&node.id).collect();
                let flow = match &next {
                    Some(name) => out
                        .iter()
                        .find(|f| f.name.as_deref() == Some(name) || &f.id == name)
                        .ok_or_else(|| {
                            format!(
                                "the step chose '{name}', which is no way out of '{}'",
                                node.id
                            )
                        })?,
                    None => out
                        .iter()
                        .find(|f| f.name.is_none())
                        .or(out.first())
                        .ok_or_else(|| format!("'{}' has no way out", node.id))?,
                };
                Ok(Step::Next(vec![flow.id.clone()], outcome))
            }
        }
    }

    /// The names a condition sees: the variables, and `record` when the instance
    /// runs for one (read now, as the user who started it).
    async fn scope(&self, instance: &Instance) -> Result<Value, String> {
        let mut scope = match &instance.variables {
            Value::Object(v) => v.clone(),
            _ => Map::new(),
        };
        if let Some(record) = self.record_json(instance).await? {
            scope.insert("record".into(), record);
        }
        Ok(Value::Object(scope))
    }

    async fn record_json(&self, instance: &Instance) -> Result<Option<Value>, String> {
        let Some(r) = &instance.record else {
            return Ok(None);
        };
        let actor = self.actor(&instance.started_by).await?;
        let record = self
            .records
            .get(&actor, &r.object, &r.id)
            .await
            .map_err(|e| format!("the instance's record {} {}: {e}", r.object, r.id))?;
        serde_json::to_value(record)
            .map(Some)
            .map_err(|e| e.to_string())
    }

    /// The acting user `id`, from the cache while fresh.
    pub(super) async fn actor(&self, id: &str) -> Result<Actor, String> {
        if let Some((at, actor)) = self.actors.lock().expect("lock").get(id)
            && at.elapsed() < ACTOR_TTL
        {
            return Ok(actor.clone());
        }
        let actor = crate::plugins::delivery::actor_of(&self.db, id).await?;
        let mut actors = self.actors.lock().expect("lock");
        if actors.len() > 10_000 {
            actors.clear();
        }
        actors.insert(id.to_string(), (std::time::Instant::now(), actor.clone()));
        Ok(actor)
    }

    /// Runs `plugin/step` as the user who started the instance, in its department.
    async fn run_step(
        &self,
        instance: &Instance,
        token: &Claimed,
        step: &str,
        config: &Value,
    ) -> Result<(Map<String, Value>, Option<String>), String> {
        let (plugin_id, step_name) = step
            .split_once('/')
            .ok_or_else(|| format!("'{step}' is not plugin/step-type"))?;
        let plugin = self
            .plugins
            .installed(plugin_id)
            .filter(|p| p.is_running())
            .ok_or_else(|| format!("the plugin {plugin_id} is not running"))?;
        if let Some(d) = &instance.department
            && !plugin.info.departments.iter().any(|e| e == d)
        {
            return Err(format!(
                "the plugin {plugin_id} is not enabled in the instance's department"
            ));
        }
        let actor = self.actor(&instance.started_by).await?;
        let mut variables = match &instance.variables {
            Value::Object(v) => v.clone(),
            _ => Map::new(),
        };
        // Stable across retries of this step: a key that makes a second run harmless.
        variables.insert("_run".into(), Value::String(token.id.clone()));
        let input = StepInput {
            step: step_name.to_string(),
            config: config.to_string(),
            variables: Value::Object(variables).to_string(),
            record: self.record_json(instance).await?.map(|r| r.to_string()),
        };
        let host = plugin.host_context(&self.records, &actor, instance.department.clone(), true);
        let outcome = self
            .plugins
            .runtime()
            .run_step(&plugin.loaded, host, &input)
            .await
            .map_err(|e| format!("the plugin {plugin_id} failed: {e}"))?
            .map_err(|e| format!("the step {step} refused: {e}"))?;
        let set: Map<String, Value> = match serde_json::from_str(&outcome.variables) {
            Ok(Value::Object(set)) => set,
            Ok(Value::Null) | Err(_) if outcome.variables.trim().is_empty() => Map::new(),
            _ => {
                return Err(format!(
                    "the step {step} answered variables that are not a JSON object"
                ));
            }
        };
        Ok((set, outcome.next))
    }

    /// Commits a token's move: done, the next tokens created, variables merged, the
    /// instance completed when no path is left. Nothing happens when the lease was
    /// lost meanwhile (another host has the token).
    async fn advance(
        &self,
        token: &Claimed,
        definition: &Definition,
        step: Step,
    ) -> Result<(), ApiError> {
        if self.db.dialect == Dialect::Postgres {
            // The usual moves, one way on or the end of the only path, are
            // committed in batches of one statement.
            let next = match &step {
                Step::Next(flows, _) if flows.len() == 1 => {
                    let (to, due, timer) = next_token(definition, &flows[0], &db::now())?;
                    Some(Some((flows[0].clone(), to.to_string(), due, timer)))
                }
                Step::End if definition.single_path() => Some(None),
                _ => None,
            };
            if let Some(next) = next {
                let set = match step {
                    Step::Next(_, set) => set,
                    _ => Map::new(),
                };
                let mv = Move {
                    token: token.id.clone(),
                    instance: token.instance_id.clone(),
                    node: token.node.clone(),
                    set,
                    next,
                };
                match self.moves.get() {
                    Some(moves) => {
                        if let Err(lost) = moves.send(mv).await {
                            self.commit_moves(vec![lost.0]).await;
                        }
                    }
                    None => self.commit_moves(vec![mv]).await,
                }
                return Ok(());
            }
        }
        let now = chrono::Utc::now();
        let stamp = db::format_time(now);
        let mut tx = self.db.pool.begin().await?;
        // The instance row first: moves of one instance's tokens take turns (a
        // join must see every path that arrived before it). A step's variables go
        // in with it (undone with the rest if the lease turns out lost below).
        let set = match &step {
            Step::Next(_, set) => set.clone(),
            _ => Map::new(),
        };
        lock_and_merge(&mut tx, self.db.dialect, &token.instance_id, &set, &stamp).await?;
        let status = match step {
            Step::Join(_) => "joined",
            Step::Task | Step::Wait => "waiting",
            _ => "done",
        };
        let moved = sqlx::query(
            "UPDATE process_tokens SET status = $1, lease_owner = NULL, lease_until = NULL, updated_at = $2 \
             WHERE id = $3 AND status = 'ready' AND lease_owner = $4",
        )
        .bind(status)
        .bind(&stamp)
        .bind(&token.id)
        .bind(&self.host_id)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() != 1 {
            return Ok(());
        }
        let now = stamp;
        let step = match step {
            Step::Join(flows) => {
                let arrived: Vec<Option<String>> = sqlx::query_scalar(
                    "SELECT via FROM process_tokens WHERE instance_id = $1 AND node = $2 AND status = 'joined'",
                )
                .bind(&token.instance_id)
                .bind(&token.node)
                .fetch_all(&mut *tx)
                .await?;
                let complete = definition
                    .incoming(&token.node)
                    .all(|f| arrived.iter().any(|a| a.as_deref() == Some(f.id.as_str())));
                if !complete {
                    history(
                        &mut tx,
                        &token.instance_id,
                        Some(&token.node),
                        "joined",
                        json!({"via": token.via}),
                        None,
                    )
                    .await?;
                    tx.commit().await?;
                    return Ok(());
                }
                // Every path is in: they leave as one.
                sqlx::query(
                    "UPDATE process_tokens SET status = 'done', updated_at = $1 \
                     WHERE instance_id = $2 AND node = $3 AND status = 'joined'",
                )
                .bind(&now)
                .bind(&token.instance_id)
                .bind(&token.node)
                .execute(&mut *tx)
                .await?;
                Step::Next(flows, Map::new())
            }
            other => other,
        };
        match step {
            Step::Join(_) => unreachable!("joins became moves above"),
            Step::Task => {
                let task = self.open_task(&mut tx, definition, token, &now).await?;
                history(
                    &mut tx,
                    &token.instance_id,
                    Some(&token.node),
                    "task",
                    json!({"task": task}),
                    None,
                )
                .await?;
                // Its boundary timers start now; they know the task by its token.
                for node in &definition.nodes {
                    if let NodeKind::BoundaryTimer {
                        attached_to,
                        duration,
                        date,
                        ..
                    } = &node.kind
                        && attached_to == &token.node
                    {
                        let due = super::definition::due_after(
                            duration.as_deref(),
                            date.as_deref(),
                            chrono::Utc::now(),
                        )
                        .map_err(ApiError::internal)?;
                        insert_token(
                            &mut tx,
                            &token.instance_id,
                            &node.id,
                            Some(&token.id),
                            &db::format_time(due),
                            &now,
                            true,
                        )
                        .await?;
                    }
                }
            }
            Step::Wait => {
                history(
                    &mut tx,
                    &token.instance_id,
                    Some(&token.node),
                    "waiting",
                    json!({}),
                    None,
                )
                .await?;
            }
            Step::Boundary {
                interrupting,
                flows,
            } => {
                let task_token = token.via.clone().unwrap_or_default();
                let open: Option<String> = sqlx::query_scalar(
                    "SELECT status FROM process_tokens WHERE id = $1 AND status = 'waiting'",
                )
                .bind(&task_token)
                .fetch_optional(&mut *tx)
                .await?;
                if open.is_none() {
                    // The task was done first: the timer has nothing to do.
                    history(
                        &mut tx,
                        &token.instance_id,
                        Some(&token.node),
                        "expired",
                        json!({}),
                        None,
                    )
                    .await?;
                } else {
                    if interrupting {
                        sqlx::query("UPDATE process_tokens SET status = 'cancelled', updated_at = $1 WHERE id = $2")
                            .bind(&now)
                            .bind(&task_token)
                            .execute(&mut *tx)
                            .await?;
                        sqlx::query(
                            "UPDATE process_tasks SET status = 'cancelled', updated_at = $1 WHERE token_id = $2 AND status = 'open'",
                        )
                        .bind(&now)
                        .bind(&task_token)
                        .execute(&mut *tx)
                        .await?;
                    }
                    let detail = json!({"flows": flows, "interrupting": interrupting});
                    move_on(&mut tx, definition, token, &flows, detail, &now).await?;
                }
                complete_if_done(&mut tx, &token.instance_id, &now).await?;
            }
            Step::Next(flows, set) => {
                let detail = json!({"flows": flows, "variables": set});
                move_on(&mut tx, definition, token, &flows, detail, &now).await?;
            }
            Step::End => {
                history(
                    &mut tx,
                    &token.instance_id,
                    Some(&token.node),
                    "ended",
                    json!({}),
                    None,
                )
                .await?;
                complete_if_done(&mut tx, &token.instance_id, &now).await?;
            }
        }
        tx.commit().await?;
        // The next tokens are due now: run them without waiting for the poll.
        self.wake.notify_one();
        Ok(())
    }

    /// Commits usual moves (PostgreSQL), an instance's at most once per statement
    /// so each merges its variables; a statement that fails is retried move by
    /// move. A move whose lease was lost changes nothing.
    async fn commit_moves(&self, batch: Vec<Move>) {
        let mut rounds: Vec<Vec<Move>> = Vec::new();
        for mv in batch {
            match rounds
                .iter_mut()
                .find(|r| r.iter().all(|o| o.instance != mv.instance))
            {
                Some(round) => round.push(mv),
                None => rounds.push(vec![mv]),
            }
        }
        for mut round in rounds {
            // One order of row locks for every batch.
            round.sort_by(|a, b| a.instance.cmp(&b.instance));
            if let Err(e) = self.move_along(&round).await {
                if round.len() == 1 {
                    tracing::error!(token = %round[0].token, error = ?e, "a process token could not be moved");
                    continue;
                }
                for mv in &round {
                    if let Err(e) = self.move_along(std::slice::from_ref(mv)).await {
                        tracing::error!(token = %mv.token, error = ?e, "a process token could not be moved");
                    }
                }
            }
        }
        // The next tokens are due now: run them without waiting for the poll.
        self.wake.notify_one();
    }

    /// Moves as one statement: each token done (if this host still holds its
    /// lease), its instance's variables merged (the row locked), its history
    /// entry and its next token, or its instance completed.
    ///
    /// The token's status is compared as an expression (`status || ''`) so that
    /// PostgreSQL finds the tokens by id: with the status index it would scan every
    /// ready token for each, and under a burst its statistics say there are few.
    async fn move_along(&self, moves: &[Move]) -> Result<(), ApiError> {
        let rows: Vec<Value> = moves
            .iter()
            .map(|m| {
                let (flow, to, due, timer) = match &m.next {
                    Some((flow, to, due, timer)) => {
                        (Some(flow), Some(to), Some(due), *timer as i64)
                    }
                    None => (None, None, None, 0),
                };
                let (event, detail) = match flow {
                    Some(flow) => ("completed", json!({"flows": [flow], "variables": m.set})),
                    None => ("ended", json!({})),
                };
                json!({
                    "token": m.token, "instance": m.instance, "node": m.node,
                    "vars": Value::Object(m.set.clone()).to_string(),
                    "event": event, "detail": detail.to_string(), "history": db::new_id(),
                    "next": flow.map(|_| db::new_id()), "next_node": to, "via": flow,
                    "due": due, "timer": timer, "ends": m.next.is_none(),
                })
            })
            .collect();
        let mut tx = self.db.pool.begin().await?;
        // The tables grow faster than their statistics: left to itself the planner
        // may scan every token for each move. By id (primary key) it is one look-up.
        sqlx::query("SET LOCAL enable_seqscan = off")
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "WITH m AS (SELECT * FROM json_to_recordset(CAST($1 AS JSON)) AS m(\
               token TEXT, instance TEXT, node TEXT, vars TEXT, event TEXT, detail TEXT, history TEXT, \
               next TEXT, next_node TEXT, via TEXT, due TEXT, timer INTEGER, ends BOOLEAN)), \
             t AS (\
               UPDATE process_tokens p SET status = 'done', lease_owner = NULL, lease_until = NULL, updated_at = $2 \
               FROM m WHERE p.id = m.token AND p.status || '' = 'ready' AND p.lease_owner = $3 RETURNING p.id), \
             i AS (\
               UPDATE process_instances pi SET \
               variables = CAST(CAST(pi.variables AS JSONB) || CAST(m.vars AS JSONB) AS TEXT), \
               status = CASE WHEN m.ends THEN 'completed' ELSE pi.status END, \
               ended_at = CASE WHEN m.ends THEN $2 ELSE pi.ended_at END, updated_at = $2 \
               FROM m JOIN t ON t.id = m.token WHERE pi.id = m.instance RETURNING pi.id), \
             h AS (\
               INSERT INTO process_history (id, instance_id, node, event, detail, actor, at) \
               SELECT m.history, m.instance, m.node, m.event, m.detail, NULL, $2 FROM m JOIN i ON i.id = m.instance) \
             INSERT INTO process_tokens (id, instance_id, node, via, status, due_at, timer, attempts, created_at, updated_at) \
             SELECT m.next, m.instance, m.next_node, m.via, 'ready', m.due, m.timer, 0, $2, $2 \
             FROM m JOIN i ON i.id = m.instance WHERE m.next IS NOT NULL",
        )
        .bind(Value::Array(rows).to_string())
        .bind(db::now())
        .bind(&self.host_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Puts a user task in its assignee's inbox; answers its id.
    async fn open_task(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        definition: &Definition,
        token: &Claimed,
        now: &str,
    ) -> Result<String, ApiError> {
        let node = definition
            .node(&token.node)
            .ok_or_else(|| ApiError::internal("a task node vanished"))?;
        let NodeKind::UserTask { assignee, due, .. } = &node.kind else {
            return Err(ApiError::internal("not a task node"));
        };
        let (started_by, department): (String, Option<String>) = {
            let row = sqlx::query(
                "SELECT started_by, department_id FROM process_instances WHERE id = $1",
            )
            .bind(&token.instance_id)
            .fetch_one(&mut **tx)
            .await?;
            (row.try_get("started_by")?, row.try_get("department_id")?)
        };
        let user = match (&assignee.user, &assignee.role, &assignee.department) {
            (Some(u), _, _) => Some(u.clone()),
            (None, None, None) => Some(started_by),
            _ => None,
        };
        let department = assignee.department.clone().or(department);
        let due_at = match due {
            Some(d) => Some(db::format_time(
                super::definition::due_after(Some(d), None, chrono::Utc::now())
                    .map_err(ApiError::internal)?,
            )),
            None => None,
        };
        let id = db::new_id();
        let name = if node.name.is_empty() {
            node.id.clone()
        } else {
            node.name.clone()
        };
        sqlx::query(
            "INSERT INTO process_tasks (id, instance_id, token_id, node, name, assignee_user, assignee_role, \
             department_id, status, due_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'open', $9, $10, $10)",
        )
        .bind(&id)
        .bind(&token.instance_id)
        .bind(&token.id)
        .bind(&node.id)
        .bind(&name)
        .bind(&user)
        .bind(&assignee.role)
        .bind(&department)
        .bind(&due_at)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(id)
    }

    /// The open tasks the caller may do (or has claimed), or its completed ones,
    /// oldest first.
    pub async fn tasks(
        &self,
        actor: &Actor,
        status: &str,
        cursor: Option<&str>,
        limit: i64,
    ) -> Result<(Vec<Task>, Option<String>), ApiError> {
        let rows = if status == "open" {
            // Role and department tasks are few next to personal ones; the
            // membership check is done here, on the candidates.
            sqlx::query(
                "SELECT t.*, i.process_key, i.definition_id FROM process_tasks t JOIN process_instances i ON i.id = t.instance_id WHERE t.status = 'open' AND ($2 = '' OR t.id > $2) \
                 AND (t.assignee_user = $1 OR t.claimed_by = $1 OR t.assignee_user IS NULL) ORDER BY t.id LIMIT 1000",
            )
            .bind(&actor.user_id)
            .bind(cursor.unwrap_or(""))
            .fetch_all(&self.db.pool)
            .await?
        } else {
            sqlx::query(
                "SELECT t.*, i.process_key, i.definition_id FROM process_tasks t JOIN process_instances i ON i.id = t.instance_id WHERE t.status = 'completed' AND t.completed_by = $1 \
                 AND ($2 = '' OR t.id > $2) ORDER BY t.id LIMIT 1000",
            )
            .bind(&actor.user_id)
            .bind(cursor.unwrap_or(""))
            .fetch_all(&self.db.pool)
            .await?
        };
        let mut tasks = Vec::new();
        for row in &rows {
            let task = self.task_of(row).await?;
            if status != "open" || self.may_do(actor, &task) {
                tasks.push(task);
            }
            if tasks.len() as i64 > limit {
                break;
            }
        }
        Ok(crate::api::cut_page(tasks, limit, |t| t.id.clone()))
    }

    /// One task, for whoever may do it (or did it) and admins of its department.
    pub async fn task(&self, actor: &Actor, id: &str) -> Result<Task, ApiError> {
        let row = sqlx::query("SELECT t.*, i.process_key, i.definition_id FROM process_tasks t JOIN process_instances i ON i.id = t.instance_id WHERE t.id = $1")
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await?
            .ok_or_else(|| ApiError::not_found("there is no such task"))?;
        let task = self.task_of(&row).await?;
        let admin = self
            .records
            .access()
            .user(actor)
            .is_admin_of(task.assignee.department.as_deref());
        if self.may_do(actor, &task)
            || task.completed_by.as_deref() == Some(&actor.user_id)
            || admin
        {
            Ok(task)
        } else {
            Err(ApiError::not_found("there is no such task"))
        }
    }

    /// Whether the caller may claim or complete the task: its user, a holder of its
    /// role in its department (or one below), a member of its department, or an
    /// admin of that department; once claimed, only the claimer (and admins).
    fn may_do(&self, actor: &Actor, task: &Task) -> bool {
        let user = self.records.access().user(actor);
        let department = task.assignee.department.as_deref();
        if user.is_admin_of(department) && department.is_some() {
            return true;
        }
        if let Some(claimer) = &task.claimed_by {
            return claimer == &actor.user_id;
        }
        if let Some(u) = &task.assignee.user {
            return u == &actor.user_id;
        }
        let Some(department) = department else {
            return false;
        };
        let tree = self.records.access().department_tree();
        user.memberships().iter().any(|(d, role)| {
            tree.departments.is_within(d, department)
                && task.assignee.role.as_ref().is_none_or(|r| r == role)
        })
    }

    /// Claims an open task for the caller (others then no longer see it).
    pub async fn claim(&self, actor: &Actor, id: &str) -> Result<Task, ApiError> {
        let task = self.task(actor, id).await?;
        if task.status != "open" {
            return Err(ApiError::conflict(format!("the task is {}", task.status)));
        }
        if !self.may_do(actor, &task) {
            return Err(ApiError::forbidden("this task is not yours to claim"));
        }
        let claimed = sqlx::query(
            "UPDATE process_tasks SET claimed_by = $1, updated_at = $2 WHERE id = $3 AND status = 'open' \
             AND (claimed_by IS NULL OR claimed_by = $1)",
        )
        .bind(&actor.user_id)
        .bind(db::now())
        .bind(id)
        .execute(&self.db.pool)
        .await?;
        if claimed.rows_affected() != 1 {
            return Err(ApiError::conflict("someone else claimed the task first"));
        }
        self.task(actor, id).await
    }

    /// Completes a task with an outcome and the variables it asks for; the instance
    /// moves on by the flow named after the outcome (or its unnamed way out).
    pub async fn complete(
        &self,
        actor: &Actor,
        id: &str,
        input: CompleteInput,
    ) -> Result<Task, ApiError> {
        let task = self.task(actor, id).await?;
        if task.status != "open" {
            return Err(ApiError::conflict(format!("the task is {}", task.status)));
        }
        if !self.may_do(actor, &task) {
            return Err(ApiError::forbidden("this task is not yours to complete"));
        }
        let definition = self.definition(&task.definition_id).await?;
        let node = definition
            .node(&task.node)
            .ok_or_else(|| ApiError::internal("a task node vanished"))?;
        let NodeKind::UserTask {
            fields, outcomes, ..
        } = &node.kind
        else {
            return Err(ApiError::internal("not a task node"));
        };
        let mut errors = Vec::new();
        match &input.outcome {
            Some(o) if !outcomes.is_empty() && !outcomes.contains(o) => errors.push(
                FieldError::new("outcome", format!("must be one of {}", outcomes.join(", "))),
            ),
            None if !outcomes.is_empty() => errors.push(FieldError::new(
                "outcome",
                format!("is required: one of {}", outcomes.join(", ")),
            )),
            _ => {}
        }
        for name in input.variables.keys() {
            if !fields.contains(name) {
                errors.push(FieldError::new(
                    format!("variables.{name}"),
                    "is not a field of this task",
                ));
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::invalid("the task cannot be completed so", errors));
        }
        let out: Vec<&Flow> = definition.outgoing(&node.id).collect();
        let flow = input
            .outcome
            .as_ref()
            .and_then(|o| out.iter().find(|f| f.name.as_deref() == Some(o)))
            .or_else(|| out.iter().find(|f| f.name.is_none()))
            .or(out.first())
            .map(|f| f.id.clone())
            .ok_or_else(|| ApiError::internal("a task without a way out"))?;
        let mut set = input.variables.clone();
        if let Some(o) = &input.outcome {
            set.insert("outcome".into(), Value::String(o.clone()));
        }
        let now = db::now();
        let mut tx = self.db.pool.begin().await?;
        lock_and_merge(&mut tx, self.db.dialect, &task.instance, &set, &now).await?;
        let done = sqlx::query(
            "UPDATE process_tasks SET status = 'completed', outcome = $1, completed_by = $2, updated_at = $3 \
             WHERE id = $4 AND status = 'open'",
        )
        .bind(&input.outcome)
        .bind(&actor.user_id)
        .bind(&now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let moved = sqlx::query(
            "UPDATE process_tokens SET status = 'done', updated_at = $1 WHERE id = $2 AND status = 'waiting'",
        )
        .bind(&now)
        .bind(&task.token)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 || moved.rows_affected() != 1 {
            return Err(ApiError::conflict(
                "the task was completed or cancelled meanwhile",
            ));
        }
        // Its boundary timers have nothing left to watch.
        sqlx::query(
            "UPDATE process_tokens SET status = 'cancelled', updated_at = $1 WHERE instance_id = $2 AND via = $3 AND status = 'ready'",
        )
        .bind(&now)
        .bind(&task.instance)
        .bind(&task.token)
        .execute(&mut *tx)
        .await?;
        history(
            &mut tx,
            &task.instance,
            Some(&task.node),
            "completed",
            json!({"flows": [flow], "variables": set, "task": id}),
            Some(&actor.user_id),
        )
        .await?;
        enter(&mut tx, &definition, &task.instance, &flow, &now).await?;
        tx.commit().await?;
        self.wake.notify_one();
        self.task(actor, id).await
    }

    async fn task_of(&self, r: &sqlx::any::AnyRow) -> Result<Task, ApiError> {
        let instance: String = r.try_get("instance_id")?;
        let node: String = r.try_get("node")?;
        let definition_id: String = r.try_get("definition_id")?;
        let definition = self.definition(&definition_id).await?;
        let (fields, outcomes) = match definition.node(&node).map(|n| &n.kind) {
            Some(NodeKind::UserTask {
                fields, outcomes, ..
            }) => (fields.clone(), outcomes.clone()),
            _ => (Vec::new(), Vec::new()),
        };
        Ok(Task {
            id: r.try_get("id")?,
            instance,
            process: r.try_get("process_key")?,
            definition_id,
            token: r.try_get("token_id")?,
            node,
            name: r.try_get("name")?,
            assignee: super::definition::Assignee {
                user: r.try_get("assignee_user")?,
                role: r.try_get("assignee_role")?,
                department: r.try_get("department_id")?,
            },
            status: r.try_get("status")?,
            claimed_by: r.try_get("claimed_by")?,
            outcome: r.try_get("outcome")?,
            completed_by: r.try_get("completed_by")?,
            due_at: r.try_get("due_at")?,
            fields,
            outcomes,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }

    /// Records a failed attempt: retried later, or an incident after the last one.
    async fn failed(&self, token: &Claimed, error: &str) -> Result<(), ApiError> {
        let now = chrono::Utc::now();
        let attempt = token.attempts + 1;
        let mut tx = self.db.pool.begin().await?;
        let incident = attempt as usize > self.retries.len();
        let (status, due) = if incident {
            ("incident", now)
        } else {
            let wait = self.retries[attempt as usize - 1];
            (
                "ready",
                now + chrono::TimeDelta::from_std(wait).expect("a short wait"),
            )
        };
        let updated = sqlx::query(
            "UPDATE process_tokens SET status = $1, attempts = $2, last_error = $3, due_at = $4, \
             lease_owner = NULL, lease_until = NULL, updated_at = $5 \
             WHERE id = $6 AND status = 'ready' AND lease_owner = $7",
        )
        .bind(status)
        .bind(attempt)
        .bind(error)
        .bind(db::format_time(due))
        .bind(db::format_time(now))
        .bind(&token.id)
        .bind(&self.host_id)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() != 1 {
            return Ok(());
        }
        let event = if incident { "incident" } else { "failed" };
        history(
            &mut tx,
            &token.instance_id,
            Some(&token.node),
            event,
            json!({"attempt": attempt, "error": error}),
            None,
        )
        .await?;
        if incident {
            set_status(
                &mut tx,
                &token.instance_id,
                "incident",
                &db::format_time(now),
                false,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn release(&self, token: &Claimed) -> Result<(), ApiError> {
        sqlx::query(
            "UPDATE process_tokens SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2",
        )
        .bind(&token.id)
        .bind(&self.host_id)
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }
}

/// The flows a skipped node leaves by: the gateway's default, or the unnamed (or
/// first) way out of a task.
fn default_way_out(definition: &Definition, node: &str) -> Vec<String> {
    match definition.node(node).map(|n| &n.kind) {
        Some(NodeKind::ExclusiveGateway { default: Some(d) }) => vec![d.clone()],
        Some(NodeKind::End) | None => Vec::new(),
        _ => {
            let out: Vec<&Flow> = definition.outgoing(node).collect();
            out.iter()
                .find(|f| f.name.is_none())
                .or(out.first())
                .map(|f| vec![f.id.clone()])
                .unwrap_or_default()
        }
    }
}

/// A node is done: its history entry, and the paths leaving it by `flows`.
async fn move_on(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    definition: &Definition,
    token: &Claimed,
    flows: &[String],
    detail: Value,
    now: &str,
) -> Result<(), ApiError> {
    history(
        tx,
        &token.instance_id,
        Some(&token.node),
        "completed",
        detail,
        None,
    )
    .await?;
    for flow in flows {
        enter(tx, definition, &token.instance_id, flow, now).await?;
    }
    Ok(())
}

/// Where `flow` leads: the node, when its token is due (now, or when a timer fires)
/// and whether it is a timer's.
fn next_token<'d>(
    definition: &'d Definition,
    flow: &str,
    now: &str,
) -> Result<(&'d str, String, bool), ApiError> {
    let to = definition
        .flows
        .iter()
        .find(|f| f.id == flow)
        .map(|f| f.to.as_str())
        .ok_or_else(|| ApiError::internal(format!("no flow {flow}")))?;
    Ok(match definition.node(to).map(|n| &n.kind) {
        Some(NodeKind::Timer { duration, date }) => {
            let start = chrono::DateTime::parse_from_rfc3339(now)
                .map_err(ApiError::internal)?
                .with_timezone(&chrono::Utc);
            let due = super::definition::due_after(duration.as_deref(), date.as_deref(), start)
                .map_err(ApiError::internal)?;
            (to, db::format_time(due), true)
        }
        _ => (to, now.to_string(), false),
    })
}

/// A path enters the node `flow` leads to: a token due now, or when a timer fires.
async fn enter(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    definition: &Definition,
    instance: &str,
    flow: &str,
    now: &str,
) -> Result<(), ApiError> {
    let (to, due, timer) = next_token(definition, flow, now)?;
    insert_token(tx, instance, to, Some(flow), &due, now, timer).await?;
    Ok(())
}

/// A new token; `due` later than now for a timer (`timer`: claimed first once due).
async fn insert_token(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    instance: &str,
    node: &str,
    via: Option<&str>,
    due: &str,
    now: &str,
    timer: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO process_tokens (id, instance_id, node, via, status, due_at, timer, attempts, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'ready', $5, $7, 0, $6, $6)",
    )
    .bind(db::new_id())
    .bind(instance)
    .bind(node)
    .bind(via)
    .bind(due)
    .bind(now)
    .bind(timer as i64)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Locks the instance's row for this transaction (moves of one instance take
/// turns) and merges `set` into its variables in the same statement.
async fn lock_and_merge(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    dialect: Dialect,
    instance: &str,
    set: &Map<String, Value>,
    now: &str,
) -> Result<(), sqlx::Error> {
    if set.is_empty() {
        sqlx::query("UPDATE process_instances SET updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(instance)
            .execute(&mut **tx)
            .await?;
        return Ok(());
    }
    // Top-level keys replace, on both databases.
    if dialect == Dialect::Postgres {
        // One statement: the row is locked and merged at once.
        sqlx::query(
            "UPDATE process_instances SET variables = CAST(CAST(variables AS JSONB) || CAST($1 AS JSONB) AS TEXT), \
             updated_at = $2 WHERE id = $3",
        )
        .bind(Value::Object(set.clone()).to_string())
        .bind(now)
        .bind(instance)
        .execute(&mut **tx)
        .await?;
        return Ok(());
    }
    // SQLite: take the write lock first, then read, merge and write (its JSON
    // functions merge nested objects too, which PostgreSQL's `||` does not).
    sqlx::query("UPDATE process_instances SET updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(instance)
        .execute(&mut **tx)
        .await?;
    let current: String =
        sqlx::query_scalar("SELECT variables FROM process_instances WHERE id = $1")
            .bind(instance)
            .fetch_one(&mut **tx)
            .await?;
    let mut variables: Map<String, Value> = serde_json::from_str(&current).unwrap_or_default();
    variables.extend(set.clone());
    sqlx::query("UPDATE process_instances SET variables = $1 WHERE id = $2")
        .bind(Value::Object(variables).to_string())
        .bind(instance)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Completes the instance when no path of it is left.
async fn complete_if_done(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    instance: &str,
    now: &str,
) -> Result<(), sqlx::Error> {
    let live: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM process_tokens WHERE instance_id = $1 AND status IN {LIVE}"
    )))
    .bind(instance)
    .fetch_one(&mut **tx)
    .await?;
    if live == 0 {
        set_status(tx, instance, "completed", now, true).await?;
    }
    Ok(())
}

async fn history(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    instance: &str,
    node: Option<&str>,
    event: &str,
    detail: Value,
    actor: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO process_history (id, instance_id, node, event, detail, actor, at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(db::new_id())
    .bind(instance)
    .bind(node)
    .bind(event)
    .bind(detail.to_string())
    .bind(actor)
    .bind(db::now())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn set_status(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    instance: &str,
    status: &str,
    now: &str,
    ended: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE process_instances SET status = $1, updated_at = $2, ended_at = CASE WHEN $3 THEN $2 ELSE ended_at END WHERE id = $4",
    )
    .bind(status)
    .bind(now)
    .bind(ended)
    .bind(instance)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn published_of(r: &sqlx::any::AnyRow) -> Result<Published, ApiError> {
    let text: String = r.try_get("definition")?;
    Ok(Published {
        key: r.try_get("process_key")?,
        version: r.try_get("version")?,
        name: r.try_get("name")?,
        published_by: r.try_get("published_by")?,
        published_at: r.try_get("created_at")?,
        definition: serde_json::from_str(&text).map_err(ApiError::internal)?,
    })
}

fn instance_of(r: &sqlx::any::AnyRow) -> Result<Instance, sqlx::Error> {
    let variables: String = r.try_get("variables")?;
    let object: Option<String> = r.try_get("record_object")?;
    let record_id: Option<String> = r.try_get("record_id")?;
    Ok(Instance {
        id: r.try_get("id")?,
        definition_id: r.try_get("definition_id")?,
        process: r.try_get("process_key")?,
        version: r.try_get("version")?,
        status: r.try_get("status")?,
        variables: serde_json::from_str(&variables).unwrap_or(Value::Null),
        record: object
            .zip(record_id)
            .map(|(object, id)| RecordRef { object, id }),
        department: r.try_get("department_id")?,
        started_by: r.try_get("started_by")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        ended_at: r.try_get("ended_at")?,
    })
}

fn token_of(r: &sqlx::any::AnyRow) -> Result<Token, sqlx::Error> {
    Ok(Token {
        id: r.try_get("id")?,
        node: r.try_get("node")?,
        status: r.try_get("status")?,
        due_at: r.try_get("due_at")?,
        attempts: r.try_get("attempts")?,
        last_error: r.try_get("last_error")?,
    })
}

fn history_of(r: &sqlx::any::AnyRow) -> Result<HistoryEntry, sqlx::Error> {
    let detail: String = r.try_get("detail")?;
    Ok(HistoryEntry {
        node: r.try_get("node")?,
        event: r.try_get("event")?,
        detail: serde_json::from_str(&detail).unwrap_or(Value::Null),
        actor: r.try_get("actor")?,
        at: r.try_get("at")?,
    })
}
