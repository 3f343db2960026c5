//! Plugins: packages, their lifecycle, and the hooks the records service runs.
//!
//! A package is one tar file holding `plugin.toml` ([`manifest::Manifest`]) and
//! `plugin.wasm` (a component built for wasm32-wasip2). Lifecycle: upload (validated:
//! manifest, API version, the component's type against the world) -> an admin
//! approves the capabilities it asks for -> enabled per department -> its hooks run
//! for records of those departments. Uploading a new version of an installed plugin
//! replaces it without a restart: calls in flight finish on the version they started
//! with (they hold its [`runtime::Loaded`]).

pub mod delivery;
pub mod gateway;
pub mod jobs;
pub mod manifest;
pub mod pack;
pub mod routes;
pub mod runtime;
pub mod scaffold;

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;
use utoipa::ToSchema;

use crate::access::AccessControl;
use crate::api::error::{ApiError, FieldError};
use crate::auth::Actor;
use crate::db::{self, Db};
use crate::documents::DocumentService;
use crate::records::schema::SchemaCache;
use crate::records::service::RecordService;
use manifest::Manifest;
use runtime::{Loaded, Runtime};

/// Largest package accepted.
pub const MAX_PACKAGE_BYTES: usize = 32 << 20;

/// An installed plugin as the API shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PluginInfo {
    pub id: String,
    pub name: String,
    pub version: String,
    pub api: String,
    pub description: String,
    /// SHA-256 of the component.
    pub sha256: String,
    /// An admin approved the capabilities in `manifest`; only then can it be enabled.
    pub approved: bool,
    /// Departments where its hooks run.
    pub departments: Vec<String>,
    /// Why the host switched it off after it kept failing (`null` while it runs);
    /// `POST /api/v1/plugins/{id}/resume` turns it back on.
    pub suspended: Option<String>,
    pub manifest: Manifest,
    pub installed_at: String,
    pub updated_at: String,
}

/// An installed plugin with its compiled code.
pub struct Installed {
    pub info: PluginInfo,
    pub loaded: Arc<Loaded>,
    /// Shared with every call's [`runtime::HostContext`].
    pub grants: Arc<manifest::Capabilities>,
    pub departments: Arc<Vec<String>>,
    pub limits: runtime::PluginLimits,
}

impl Installed {
    /// Approved, not suspended, and enabled in `department`.
    pub fn runs_in(&self, department: &str) -> bool {
        self.info.approved
            && self.info.suspended.is_none()
            && self.info.departments.iter().any(|d| d == department)
    }

    /// What a call of this plugin may reach, acting for `actor`.
    pub fn host_context(
        &self,
        records: &RecordService,
        actor: &Actor,
        home_department: Option<String>,
        may_write: bool,
    ) -> runtime::HostContext {
        let mut actor = actor.clone();
        actor.plugin = Some(self.info.id.clone());
        runtime::HostContext {
            label: format!("{} {}", self.info.id, self.info.version),
            plugin_id: self.info.id.clone(),
            records: records.clone(),
            documents: records.plugins().documents(),
            db: records.db().clone(),
            actor,
            grants: self.grants.clone(),
            departments: self.departments.clone(),
            home_department,
            may_write,
            limits: self.limits,
        }
    }

    /// Approved, not suspended, and enabled somewhere.
    pub fn is_running(&self) -> bool {
        self.info.approved && self.info.suspended.is_none() && !self.info.departments.is_empty()
    }

    /// The plugin's own identity, for work no user is behind (jobs, public routes):
    /// the user [`identity_user`] holding the `plugin` role where it is enabled.
    pub fn own_actor(&self) -> Actor {
        Actor {
            user_id: identity_user(&self.info.id),
            email: identity_email(&self.info.id),
            name: format!("Plugin {}", self.info.name),
            token_id: String::new(),
            plugin: Some(self.info.id.clone()),
        }
    }

    /// A call as the plugin's own identity; records it creates go to its first
    /// enabled department unless they name one.
    pub fn own_context(&self, records: &RecordService) -> runtime::HostContext {
        let home = self.info.departments.first().cloned();
        self.host_context(records, &self.own_actor(), home, true)
    }
}

/// The user id a plugin acts as when it acts as itself.
pub fn identity_user(plugin: &str) -> String {
    format!("plugin:{plugin}")
}

/// True for the user id of a plugin's identity.
pub fn is_identity(user_id: &str) -> bool {
    user_id.starts_with("plugin:")
}

fn identity_email(plugin: &str) -> String {
    format!("{plugin}@plugins.invalid")
}

/// Consecutive failed calls after which a plugin is suspended and admins are told.
pub const FAILURES_BEFORE_SUSPENSION: u32 = 10;

#[derive(Clone)]
pub struct PluginService {
    db: Db,
    schema: SchemaCache,
    access: AccessControl,
    runtime: Arc<Runtime>,
    installed: Arc<RwLock<HashMap<String, Arc<Installed>>>>,
    /// Consecutive failures per plugin id (reset by any success).
    failures: Arc<Mutex<HashMap<String, u32>>>,
    rates: Arc<gateway::RateLimits>,
    /// The document library plugins read through `documents`; it is built after this
    /// service (it stands on the records service, which stands on this one), so it
    /// is attached once the server has it.
    documents: Arc<OnceLock<DocumentService>>,
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid(
        "the plugin package is not valid",
        vec![FieldError::new(field, message)],
    )
}

/// Reads `plugin.toml` and `plugin.wasm` out of a package.
fn unpack(package: &[u8]) -> Result<(String, Vec<u8>), ApiError> {
    let mut manifest = None;
    let mut wasm = None;
    let mut archive = tar::Archive::new(package);
    let entries = archive
        .entries()
        .map_err(|e| invalid("package", format!("is not a tar file: {e}")))?;
    for entry in entries {
        let mut entry =
            entry.map_err(|e| invalid("package", format!("is not a readable tar file: {e}")))?;
        let path = entry
            .path()
            .map_err(|e| invalid("package", format!("holds a bad file name: {e}")))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| invalid("package", format!("cannot be read: {e}")))?;
        match path.as_str() {
            "plugin.toml" => {
                manifest = Some(
                    String::from_utf8(bytes)
                        .map_err(|_| invalid("plugin.toml", "is not UTF-8 text"))?,
                )
            }
            "plugin.wasm" => wasm = Some(bytes),
            _ => {}
        }
    }
    match (manifest, wasm) {
        (Some(m), Some(w)) => Ok((m, w)),
        (None, _) => Err(invalid("plugin.toml", "is missing from the package")),
        (_, None) => Err(invalid("plugin.wasm", "is missing from the package")),
    }
}

impl PluginService {
    /// Makes the document library readable by plugins (once, at start).
    pub fn attach_documents(&self, documents: DocumentService) {
        let _ = self.documents.set(documents);
    }

    /// The document library, once attached (`None` in `crm plugin install`).
    pub fn documents(&self) -> Option<DocumentService> {
        self.documents.get().cloned()
    }

    /// Opens the runtime and loads every installed plugin.
    pub async fn start(
        db: Db,
        schema: SchemaCache,
        access: AccessControl,
        runtime: Arc<Runtime>,
    ) -> anyhow::Result<Self> {
        let service = PluginService {
            db,
            schema,
            access,
            runtime,
            installed: Arc::default(),
            failures: Arc::default(),
            rates: Arc::default(),
            documents: Arc::default(),
        };
        service.reload().await?;
        Ok(service)
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Rate limits of plugin routes.
    pub fn rates(&self) -> &gateway::RateLimits {
        &self.rates
    }

    /// Reloads when another process (a second host, `crm plugin install`) changed
    /// the installed plugins or their enablements, checking every `every`.
    pub fn spawn_refresher(&self, every: std::time::Duration) {
        let plugins = self.clone();
        tokio::spawn(async move {
            let mut seen = plugins.fingerprint().await.ok();
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                match plugins.fingerprint().await {
                    Ok(now) if seen.as_ref() != Some(&now) => {
                        if let Err(e) = plugins.reload().await {
                            tracing::warn!(error = %e, "could not reload the plugins");
                            continue;
                        }
                        seen = Some(now);
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "could not check the plugins"),
                }
            }
        });
    }

    /// Changes whenever a plugin is installed, upgraded, approved, suspended,
    /// resumed, removed, enabled or disabled.
    async fn fingerprint(&self) -> Result<String, sqlx::Error> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM plugins) AS plugins, (SELECT MAX(updated_at) FROM plugins) AS updated, \
             (SELECT COUNT(*) FROM plugin_departments) AS enabled, (SELECT MAX(enabled_at) FROM plugin_departments) AS enabled_at",
        )
        .fetch_one(&self.db.pool)
        .await?;
        Ok(format!(
            "{}/{}/{}/{}",
            row.try_get::<i64, _>("plugins")?,
            row.try_get::<Option<String>, _>("updated")?
                .unwrap_or_default(),
            row.try_get::<i64, _>("enabled")?,
            row.try_get::<Option<String>, _>("enabled_at")?
                .unwrap_or_default(),
        ))
    }

    /// Reads the plugin tables again; code is compiled only for new versions.
    pub async fn reload(&self) -> anyhow::Result<()> {
        let rows = sqlx::query(
            "SELECT id, version, manifest, sha256, approved, suspended, installed_at, updated_at FROM plugins",
        )
        .fetch_all(&self.db.pool)
        .await?;
        let enabled = sqlx::query(
            "SELECT plugin_id, department_id FROM plugin_departments ORDER BY department_id",
        )
        .fetch_all(&self.db.pool)
        .await?;
        let mut departments: HashMap<String, Vec<String>> = HashMap::new();
        for r in &enabled {
            departments
                .entry(r.try_get("plugin_id")?)
                .or_default()
                .push(r.try_get("department_id")?);
        }
        let current = self.installed.read().expect("lock").clone();
        let mut next = HashMap::new();
        for r in &rows {
            let id: String = r.try_get("id")?;
            let sha256: String = r.try_get("sha256")?;
            let manifest: Manifest = serde_json::from_str(&r.try_get::<String, _>("manifest")?)?;
            let loaded = match current.get(&id) {
                Some(p) if p.info.sha256 == sha256 => p.loaded.clone(),
                _ => {
                    // Components are read only when new: they are megabytes each.
                    let wasm: Vec<u8> =
                        sqlx::query_scalar("SELECT component FROM plugins WHERE id = $1")
                            .bind(&id)
                            .fetch_one(&self.db.pool)
                            .await?;
                    match self.runtime.load(&manifest.api, &wasm, &sha256) {
                        Ok(l) => Arc::new(l),
                        Err(e) => {
                            tracing::error!(plugin = %id, error = %e, "an installed plugin no longer loads; it is skipped");
                            continue;
                        }
                    }
                }
            };
            let departments = departments.remove(&id).unwrap_or_default();
            let info = PluginInfo {
                name: manifest.name.clone(),
                version: r.try_get("version")?,
                api: manifest.api.clone(),
                description: manifest.description.clone(),
                sha256,
                approved: r.try_get::<i64, _>("approved")? == 1,
                departments: departments.clone(),
                suspended: r.try_get("suspended")?,
                manifest,
                installed_at: r.try_get("installed_at")?,
                updated_at: r.try_get("updated_at")?,
                id: id.clone(),
            };
            let grants = Arc::new(info.manifest.capabilities.clone());
            let limits = self.runtime.limits.plugin.with(&info.manifest.limits);
            next.insert(
                id,
                Arc::new(Installed {
                    info,
                    loaded,
                    grants,
                    departments: Arc::new(departments),
                    limits,
                }),
            );
        }
        *self.installed.write().expect("lock") = next;
        Ok(())
    }

    pub fn list(&self) -> Vec<PluginInfo> {
        let mut all: Vec<PluginInfo> = self
            .installed
            .read()
            .expect("lock")
            .values()
            .map(|p| p.info.clone())
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    pub fn get(&self, id: &str) -> Result<PluginInfo, ApiError> {
        self.installed
            .read()
            .expect("lock")
            .get(id)
            .map(|p| p.info.clone())
            .ok_or_else(|| ApiError::not_found(format!("there is no plugin '{id}'")))
    }

    /// Installs a package, or upgrades the installed plugin of the same id (its
    /// approval stands only if it asks for nothing more). Nothing is stored unless
    /// every check passes.
    pub async fn install(&self, package: &[u8]) -> Result<PluginInfo, ApiError> {
        if package.len() > MAX_PACKAGE_BYTES {
            return Err(ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "a plugin package is at most {} MiB",
                    MAX_PACKAGE_BYTES >> 20
                ),
            ));
        }
        let (manifest_text, wasm) = unpack(package)?;
        let manifest = Manifest::parse(&manifest_text)
            .map_err(|e| ApiError::invalid("plugin.toml is not valid", e))?;
        manifest
            .validate(&self.schema.get())
            .map_err(|e| ApiError::invalid("plugin.toml is not valid", e))?;
        let sha256 = crate::hex(&Sha256::digest(&wasm));
        let runtime = self.runtime.clone();
        let (check_api, check_wasm, check_sha) =
            (manifest.api.clone(), wasm.clone(), sha256.clone());
        // Compiling takes tens of milliseconds of CPU: keep it off the async workers.
        tokio::task::spawn_blocking(move || runtime.load(&check_api, &check_wasm, &check_sha))
            .await
            .map_err(ApiError::internal)?
            .map_err(|e| invalid("plugin.wasm", e))?;
        let now = db::now();
        let manifest_json = serde_json::to_string(&manifest).expect("a manifest serialises");
        let previous: Option<(String, i64)> =
            sqlx::query_as("SELECT manifest, approved FROM plugins WHERE id = $1")
                .bind(&manifest.id)
                .fetch_optional(&self.db.pool)
                .await?;
        match previous {
            None => {
                let mut tx = self.db.pool.begin().await?;
                // After-save hooks see changes from now on, not the history before
                // (nor what happened while an earlier install was removed).
                sqlx::query(
                    "INSERT INTO plugin_cursors (plugin_id, last_seq) \
                     SELECT $1, COALESCE(MAX(seq), 0) FROM outbox WHERE true \
                     ON CONFLICT (plugin_id) DO UPDATE SET last_seq = excluded.last_seq, lease_owner = NULL, lease_until = NULL",
                )
                .bind(&manifest.id)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO plugins (id, version, manifest, sha256, approved, component, installed_at, updated_at) \
                     VALUES ($1, $2, $3, $4, 0, $5, $6, $6)",
                )
                .bind(&manifest.id)
                .bind(&manifest.version)
                .bind(&manifest_json)
                .bind(&sha256)
                .bind(&wasm)
                .bind(&now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
            }
            Some((old_manifest, approved)) => {
                let old: Manifest = serde_json::from_str(&old_manifest)
                    .map_err(|e| ApiError::internal(format!("stored manifest: {e}")))?;
                let asks_more = !manifest.capabilities.within(&old.capabilities)
                    || !manifest.hooks.within(&old.hooks)
                    || !manifest.fields_within(&old);
                let approved = approved == 1 && !asks_more;
                if approved {
                    // Indexes a new version declares (fields it may not add
                    // without approval: `asks_more` covers those).
                    self.add_fields(&manifest).await?;
                }
                sqlx::query(
                    "UPDATE plugins SET version = $1, manifest = $2, sha256 = $3, approved = $4, component = $5, updated_at = $6 WHERE id = $7",
                )
                .bind(&manifest.version)
                .bind(&manifest_json)
                .bind(&sha256)
                .bind(approved as i64)
                .bind(&wasm)
                .bind(&now)
                .bind(&manifest.id)
                .execute(&self.db.pool)
                .await?;
            }
        }
        self.reload().await.map_err(ApiError::internal)?;
        self.get(&manifest.id)
    }

    /// An admin accepts what the plugin asks for.
    pub async fn approve(&self, id: &str) -> Result<PluginInfo, ApiError> {
        let plugin = self.get(id)?;
        self.add_fields(&plugin.manifest).await?;
        sqlx::query("UPDATE plugins SET approved = 1, updated_at = $1 WHERE id = $2")
            .bind(db::now())
            .bind(id)
            .execute(&self.db.pool)
            .await?;
        self.reload().await.map_err(ApiError::internal)?;
        self.get(id)
    }

    /// Creates the objects and adds the fields the manifest asks for, through the
    /// same metadata service admins use (so they validate and index the same way);
    /// an object or a field that exists with the same type is left as it is, a field
    /// with another type stops the approval.
    async fn add_fields(&self, manifest: &Manifest) -> Result<(), ApiError> {
        let metadata =
            crate::records::objects::MetadataService::new(self.db.clone(), self.schema.clone());
        // Every conflict is found before anything is added.
        let mut missing = Vec::new();
        for (object, fields) in &manifest.fields {
            let Ok(current) = metadata.object(object) else {
                // An object the plugin brings: created below with all its fields.
                missing.extend(fields.iter().map(|f| (object, f)));
                continue;
            };
            for field in fields {
                match current.field(&field.name) {
                    Some(existing) if existing.kind == field.kind => {}
                    Some(existing) => {
                        return Err(ApiError::conflict(format!(
                            "{object} already has a field '{}' of type {:?}; {} asks for one of type {:?}",
                            field.name, existing.kind, manifest.id, field.kind
                        )));
                    }
                    None => missing.push((object, field)),
                }
            }
        }
        for object in &manifest.objects {
            if metadata.object(&object.name).is_err() {
                metadata
                    .create_object(crate::records::objects::NewObjectType {
                        name: object.name.clone(),
                        label: object.label.clone(),
                        label_plural: object.label_plural.clone(),
                        description: object.description.clone(),
                        fields: Vec::new(),
                    })
                    .await?;
            }
        }
        for (object, field) in missing {
            metadata.add_field(object, field.clone()).await?;
        }
        for (object, indexes) in &manifest.indexes {
            for (i, index) in indexes.iter().enumerate() {
                metadata
                    .ensure_covering_index(&manifest.index_name(object, i), object, &index.fields)
                    .await?;
            }
        }
        Ok(())
    }

    /// Runs the plugin's hooks and routes for `department`, and gives its own identity
    /// the `plugin` role there.
    pub async fn enable(&self, id: &str, department: &str) -> Result<PluginInfo, ApiError> {
        if !self.access.department_tree().departments.exists(department) {
            return Err(ApiError::invalid(
                "the request is not valid",
                vec![FieldError::new("department", "is not a department")],
            ));
        }
        let plugin = self.get(id)?;
        if !plugin.approved {
            return Err(ApiError::conflict(format!(
                "{id} waits for an admin to approve what it asks for (POST /api/v1/plugins/{id}/approve)"
            )));
        }
        let now = db::now();
        let mut tx = self.db.pool.begin().await?;
        if !plugin.departments.iter().any(|d| d == department) {
            sqlx::query(
                "INSERT INTO plugin_departments (plugin_id, department_id, enabled_at) VALUES ($1, $2, $3)",
            )
            .bind(id)
            .bind(department)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        }
        // The identity, active, with the plugin role here (repaired on every enable).
        // Its password hash is not a hash, so nobody signs in as it.
        sqlx::query(
            "INSERT INTO users (id, email, name, password_hash, is_admin, active, created_at, updated_at) \
             VALUES ($1, $2, $3, '!', 0, 1, $4, $4) ON CONFLICT (id) DO UPDATE SET active = 1",
        )
        .bind(identity_user(id))
        .bind(identity_email(id))
        .bind(format!("Plugin {}", plugin.name))
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO memberships (user_id, department_id, role, created_at) VALUES ($1, $2, 'plugin', $3) \
             ON CONFLICT (user_id, department_id) DO UPDATE SET role = 'plugin'",
        )
        .bind(identity_user(id))
        .bind(department)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        self.access.commit_policy_change(tx).await?;
        self.reload().await.map_err(ApiError::internal)?;
        self.get(id)
    }

    pub async fn disable(&self, id: &str, department: &str) -> Result<PluginInfo, ApiError> {
        self.get(id)?;
        let mut tx = self.db.pool.begin().await?;
        sqlx::query("DELETE FROM plugin_departments WHERE plugin_id = $1 AND department_id = $2")
            .bind(id)
            .bind(department)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM memberships WHERE user_id = $1 AND department_id = $2")
            .bind(identity_user(id))
            .bind(department)
            .execute(&mut *tx)
            .await?;
        self.access.commit_policy_change(tx).await?;
        self.reload().await.map_err(ApiError::internal)?;
        self.get(id)
    }

    /// Removes a plugin and its enablements. Its data (kv entries, delivery cursor,
    /// dead letters) stays for a reinstall unless `purge` is set.
    pub async fn uninstall(&self, id: &str, purge: bool) -> Result<(), ApiError> {
        self.get(id)?;
        let mut tx = self.db.pool.begin().await?;
        // The identity user stays: audit entries and records name it.
        sqlx::query("DELETE FROM memberships WHERE user_id = $1")
            .bind(identity_user(id))
            .execute(&mut *tx)
            .await?;
        let mut tables = vec![
            "DELETE FROM plugin_departments WHERE plugin_id = $1",
            "DELETE FROM plugins WHERE id = $1",
        ];
        if purge {
            tables.extend([
                "DELETE FROM plugin_kv WHERE plugin_id = $1",
                "DELETE FROM plugin_cursors WHERE plugin_id = $1",
                "DELETE FROM plugin_dead_letters WHERE plugin_id = $1",
                "DELETE FROM plugin_jobs WHERE plugin_id = $1",
            ]);
        }
        for sql in tables {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        self.access.commit_policy_change(tx).await?;
        self.reload().await.map_err(ApiError::internal)?;
        Ok(())
    }

    /// Switches a plugin back on after a suspension.
    pub async fn resume(&self, id: &str) -> Result<PluginInfo, ApiError> {
        self.get(id)?;
        sqlx::query("UPDATE plugins SET suspended = NULL, updated_at = $1 WHERE id = $2")
            .bind(db::now())
            .bind(id)
            .execute(&self.db.pool)
            .await?;
        self.failures.lock().expect("lock").remove(id);
        self.reload().await.map_err(ApiError::internal)?;
        self.get(id)
    }

    /// Counts a call's outcome; the [`FAILURES_BEFORE_SUSPENSION`]th failure in a row
    /// suspends the plugin and tells the organisation admins.
    pub async fn record_outcome(&self, id: &str, failure: Option<&str>) {
        let Some(reason) = failure else {
            self.failures.lock().expect("lock").remove(id);
            return;
        };
        let count = {
            let mut failures = self.failures.lock().expect("lock");
            let count = failures.entry(id.to_string()).or_default();
            *count += 1;
            *count
        };
        if count != FAILURES_BEFORE_SUSPENSION {
            return;
        }
        let why = format!("failed {count} times in a row; last error: {reason}");
        tracing::error!(plugin = %id, %why, "suspending a failing plugin");
        let suspended = sqlx::query(
            "UPDATE plugins SET suspended = $1, updated_at = $2 WHERE id = $3 AND suspended IS NULL",
        )
        .bind(&why)
        .bind(db::now())
        .bind(id)
        .execute(&self.db.pool)
        .await;
        if let Err(e) = suspended {
            tracing::error!(plugin = %id, error = %e, "could not suspend a plugin");
            return;
        }
        if let Err(e) = self.reload().await {
            tracing::error!(error = %e, "reloading plugins failed");
        }
        let told = crate::notifications::tell_admins(
            &self.db,
            &format!("Plugin {id} was switched off"),
            &format!("The plugin {id} {why}. Resume it with POST /api/v1/plugins/{id}/resume once it is fixed."),
        )
        .await;
        if let Err(e) = told {
            tracing::error!(error = %e, "could not notify the admins");
        }
    }

    /// Running plugins that add pages to the web interface's menu, in id order.
    pub fn with_menus(&self) -> Vec<Arc<Installed>> {
        let installed = self.installed.read().expect("lock");
        let mut plugins: Vec<Arc<Installed>> = installed
            .values()
            .filter(|p| p.is_running() && !p.info.manifest.menu.is_empty())
            .cloned()
            .collect();
        plugins.sort_by(|a, b| a.info.id.cmp(&b.info.id));
        plugins
    }

    /// Installed plugins whose after-save hook subscribes to something, running.
    pub fn after_save_plugins(&self) -> Vec<Arc<Installed>> {
        let installed = self.installed.read().expect("lock");
        let mut plugins: Vec<Arc<Installed>> = installed
            .values()
            .filter(|p| {
                p.info.approved
                    && p.info.suspended.is_none()
                    && !p.info.manifest.hooks.after_save.is_empty()
            })
            .cloned()
            .collect();
        plugins.sort_by(|a, b| a.info.id.cmp(&b.info.id));
        plugins
    }

    /// The ids of the plugins that run somewhere (approved, not suspended, enabled).
    pub fn running(&self) -> Vec<String> {
        let installed = self.installed.read().expect("lock");
        installed
            .values()
            .filter(|p| p.is_running())
            .map(|p| p.info.id.clone())
            .collect()
    }

    pub fn installed(&self, id: &str) -> Option<Arc<Installed>> {
        self.installed.read().expect("lock").get(id).cloned()
    }

    /// The approved plugins enabled in `department` whose before-save hook subscribes
    /// to `object`, in id order.
    pub fn before_save_hooks(&self, object: &str, department: Option<&str>) -> Vec<Arc<Installed>> {
        let Some(department) = department else {
            return Vec::new();
        };
        let installed = self.installed.read().expect("lock");
        let mut hooks: Vec<Arc<Installed>> = installed
            .values()
            .filter(|p| {
                p.runs_in(department)
                    && p.info
                        .manifest
                        .hooks
                        .before_save
                        .iter()
                        .any(|o| o == object)
            })
            .cloned()
            .collect();
        hooks.sort_by(|a, b| a.info.id.cmp(&b.info.id));
        hooks
    }
}
