//! The sandbox: Wasmtime configured in one place, and one call of one plugin.
//!
//! - Component model with the pooling allocator; a fresh instance (and Store) per
//!   call, so nothing leaks from one caller to the next and a trap poisons nothing.
//! - Compiled code is cached on disk under the data dir, keyed by the engine's
//!   compatibility hash and the component's SHA-256, so a restart does not recompile.
//! - `InstancePre` is built once per plugin version ([`Loaded`]).
//! - Epoch interruption bounds wall-clock time (a ticker thread advances the epoch
//!   every [`TICK`]); `StoreLimits` and the pool bound memory; host calls and payload
//!   sizes are counted and bounded per call.
//! - WASI is linked with an empty context (no files, environment, clocks or sockets):
//!   Rust's std imports `wasi:io` and `wasi:cli` for its panic path and nothing else
//!   is allowed at install.

mod documents;

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits,
    StoreLimitsBuilder, Trap,
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::manifest::Capabilities;
use crate::auth::Actor;
use crate::db::{self, Db};
use crate::records::RecordError;
use crate::records::service::RecordService;

/// Bindings of `crm:plugin@0.1.2` (wit/crm-plugin-0.1.2), which serve every 0.1.x
/// component: each 0.1.x only adds to the one before, and Wasmtime matches a
/// component's `@0.1.0` or `@0.1.1` imports and exports to these by semver. A breaking
/// version (0.2.0) gets a module of its own beside this one.
pub mod v0_1 {
    wasmtime::component::bindgen!({
        world: "plugin",
        path: "../wit/crm-plugin-0.1.2",
        imports: { default: async | trappable },
        exports: { default: async },
    });
}

use v0_1::crm::plugin::types::{
    Change, HookError, HttpRequest, HttpResponse, Job, SaveContext, StepInput, StepOutcome,
    StepType,
};

/// How often the epoch advances: the resolution of every deadline.
pub const TICK: Duration = Duration::from_millis(10);
/// Limits of one call; `docs/plugins.md` lists them for plugin authors.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Defaults of each plugin's limits; a manifest's `[limits]` may change them.
    pub plugin: PluginLimits,
    /// The most memory any plugin may have (the pool's slot size).
    pub memory_bytes: usize,
    pub max_host_calls: u32,
    pub max_payload_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            plugin: PluginLimits {
                hook: Duration::from_millis(100),
                route: Duration::from_secs(5),
                background: Duration::from_secs(5),
                memory_bytes: 64 << 20,
            },
            memory_bytes: 64 << 20,
            max_host_calls: 10_000,
            max_payload_bytes: 1 << 20,
        }
    }
}

/// One plugin's limits: how long one call may run, by kind of call, and its memory.
#[derive(Clone, Copy, Debug)]
pub struct PluginLimits {
    /// Before-save hooks: a user waits for them.
    pub hook: Duration,
    /// Route handlers.
    pub route: Duration,
    /// After-save hooks, jobs and process steps.
    pub background: Duration,
    pub memory_bytes: usize,
}

impl PluginLimits {
    /// These defaults with what a manifest asks for instead (validated against the
    /// ceilings at install).
    pub fn with(self, asked: &super::manifest::ManifestLimits) -> PluginLimits {
        let pick = |asked: Option<u64>, default| asked.map_or(default, Duration::from_millis);
        PluginLimits {
            hook: pick(asked.hook_ms, self.hook),
            route: pick(asked.route_ms, self.route),
            background: pick(asked.background_ms, self.background),
            memory_bytes: asked
                .memory_mib
                .map_or(self.memory_bytes, |m| (m as usize) << 20)
                .min(self.memory_bytes),
        }
    }
}

/// WASI interfaces a plugin may import (std's panic path uses them; the host links
/// them with an empty context).
const ALLOWED_IMPORTS: &[&str] = &["crm:plugin/", "wasi:io/", "wasi:cli/"];

/// The engine, its linker and the compiled-code cache.
pub struct Runtime {
    engine: Engine,
    linker: Linker<CallState>,
    cache_dir: PathBuf,
    pub limits: Limits,
}

impl Runtime {
    pub fn new(cache_dir: &Path, limits: Limits) -> anyhow::Result<Arc<Runtime>> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(128)
            .total_core_instances(512)
            .total_memories(128)
            .total_tables(256)
            .total_stacks(128)
            .max_memory_size(limits.memory_bytes)
            // Reset a slot's first 256 KiB with memset instead of giving the pages
            // back to the kernel: that covers a plugin's stack (128 KiB, set by
            // `crm plugin pack`) and its first data pages. Page faults and madvise
            // were a third of a hook call (29 us -> 13 us per call).
            .linear_memory_keep_resident(256 << 10)
            .table_keep_resident(64 << 10);
        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .concurrency_support(false)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| anyhow::anyhow!("{e:#}"))?;
        v0_1::Plugin::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |s| s)
            .map_err(|e| anyhow::anyhow!("{e:#}"))?;
        std::fs::create_dir_all(cache_dir)?;
        // The ticker outlives nothing it needs: it only holds a handle to the engine.
        let ticker = engine.weak();
        std::thread::Builder::new()
            .name("plugin-epoch".into())
            .spawn(move || {
                while let Some(engine) = ticker.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(TICK);
                }
            })?;
        Ok(Arc::new(Runtime {
            engine,
            linker,
            cache_dir: cache_dir.to_path_buf(),
            limits,
        }))
    }

    /// Compiles (or loads from the cache) and links a component built against WIT
    /// version `api`, with that version's adapter: the checks of the install step.
    /// Every refusal says what is wrong in the plugin author's terms.
    pub fn load(&self, api: &str, wasm: &[u8], sha256: &str) -> Result<Loaded, String> {
        // Every supported version is 0.1.x, served by the `v0_1` bindings
        // (`manifest::SUPPORTED_APIS`); a breaking version adds its bindings module,
        // its linker and its arm here.
        if !super::manifest::SUPPORTED_APIS.contains(&api) || !api.starts_with("0.1.") {
            return Err(format!("crm:plugin@{api} is not supported by this host"));
        }
        match wasm.get(0..8) {
            Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => {
                return Err("the file is a core WebAssembly module, not a component; build it for wasm32-wasip2 (or wrap it with `wasm-tools component new`)".into());
            }
            Some([0, b'a', b's', b'm', _, _, 1, 0]) => {}
            _ => return Err("the file is not a WebAssembly component".into()),
        }
        let component = self
            .compile_cached(wasm, sha256)
            .map_err(|e| format!("the component does not compile: {e:#}"))?;
        let ty = component.component_type();
        for (name, _) in ty.imports(&self.engine) {
            if !ALLOWED_IMPORTS.iter().any(|p| name.starts_with(p)) {
                return Err(format!(
                    "the component imports {name}, which plugins may not use (allowed: crm:plugin, wasi:io, wasi:cli)"
                ));
            }
        }
        // The manifest's `api` must be the version the component was built against:
        // it decides what the plugin may ask for (the `documents` capability needs
        // 0.1.1), so it has to tell the truth.
        let names = ty.imports(&self.engine).chain(ty.exports(&self.engine));
        for (name, _) in names {
            if let Some(version) = name
                .strip_prefix("crm:plugin/")
                .and_then(|n| n.split_once('@'))
                .map(|(_, v)| v)
                && version != api
            {
                return Err(format!(
                    "the component uses {name} but its manifest says api = \"{api}\"; set api = \"{version}\""
                ));
            }
        }
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| format!("the component does not fit the crm:plugin@{api} world: {e:#}"))?;
        let pre = v0_1::PluginPre::new(pre).map_err(|e| {
            format!("the component does not export what crm:plugin@{api} asks for: {e:#}")
        })?;
        Ok(Loaded { pre })
    }

    fn compile_cached(&self, wasm: &[u8], sha256: &str) -> wasmtime::Result<Component> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut hasher);
        let path = self
            .cache_dir
            .join(format!("{:016x}-{sha256}.cwasm", hasher.finish()));
        if path.exists() {
            // SAFETY: the cache is written only by this host, from code it compiled
            // itself, under its own data dir; the key pins engine and content.
            match unsafe { Component::deserialize_file(&self.engine, &path) } {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::warn!(error = %e, path = %path.display(), "dropping an unreadable compiled plugin")
                }
            }
        }
        let compiled = self.engine.precompile_component(wasm)?;
        let tmp = path.with_extension("tmp");
        if std::fs::write(&tmp, &compiled)
            .and_then(|_| std::fs::rename(&tmp, &path))
            .is_err()
        {
            tracing::warn!(path = %path.display(), "could not cache a compiled plugin");
        }
        // SAFETY: `compiled` was produced by this engine a moment ago.
        unsafe { Component::deserialize(&self.engine, &compiled) }
    }

    /// Runs a before-save hook on a fresh instance.
    pub async fn before_save(
        &self,
        loaded: &Loaded,
        host: HostContext,
        context: &SaveContext,
        record: &str,
    ) -> Result<Option<String>, CallError> {
        self.check_input("the record", record.len())
            .map_err(CallError::Failed)?;
        let (deadline, memory) = (host.limits.hook, host.limits.memory_bytes);
        let mut store = self.store(host, deadline);
        let outcome = async {
            let plugin = loaded.pre.instantiate_async(&mut store).await?;
            plugin
                .crm_plugin_hooks()
                .call_before_save(&mut store, context, record)
                .await
        }
        .await;
        match outcome {
            Ok(Ok(Some(patch))) => match self.check_output(patch.len()) {
                Ok(()) => Ok(Some(patch)),
                Err(e) => Err(CallError::Failed(e)),
            },
            Ok(Ok(None)) => Ok(None),
            Ok(Err(HookError::Invalid(errors))) => Err(CallError::Invalid(errors)),
            Ok(Err(HookError::Failed(message))) => Err(CallError::Failed(message)),
            Err(e) => Err(CallError::Failed(describe_trap(&e, memory, deadline))),
        }
    }

    /// Runs an after-save hook on a fresh instance; `Err` is the reason to retry.
    pub async fn after_save(
        &self,
        loaded: &Loaded,
        host: HostContext,
        change: &Change,
    ) -> Result<(), String> {
        self.check_input("the change", change.payload.len())?;
        let (deadline, memory) = (host.limits.background, host.limits.memory_bytes);
        let mut store = self.store(host, deadline);
        let outcome = async {
            let plugin = loaded.pre.instantiate_async(&mut store).await?;
            plugin
                .crm_plugin_hooks()
                .call_after_save(&mut store, change)
                .await
        }
        .await;
        self.outcome(outcome, deadline, memory)?
    }

    /// Answers a request to one of the plugin's routes; `Err` is why the plugin
    /// gave no answer.
    pub async fn handle_route(
        &self,
        loaded: &Loaded,
        host: HostContext,
        request: &HttpRequest,
    ) -> Result<HttpResponse, String> {
        self.check_input("the request", request.body.len())?;
        let (deadline, memory) = (host.limits.route, host.limits.memory_bytes);
        let mut store = self.store(host, deadline);
        let outcome = async {
            let plugin = loaded.pre.instantiate_async(&mut store).await?;
            plugin
                .crm_plugin_routes()
                .call_handle(&mut store, request)
                .await
        }
        .await;
        let response = self.outcome(outcome, deadline, memory)?;
        self.check_output(response.body.len())?;
        Ok(response)
    }

    /// The process step types the plugin offers.
    pub async fn describe_steps(
        &self,
        loaded: &Loaded,
        host: HostContext,
    ) -> Result<Vec<StepType>, String> {
        let (deadline, memory) = (host.limits.hook, host.limits.memory_bytes);
        let mut store = self.store(host, deadline);
        let outcome = async {
            let plugin = loaded.pre.instantiate_async(&mut store).await?;
            plugin.crm_plugin_steps().call_describe(&mut store).await
        }
        .await;
        self.outcome(outcome, deadline, memory)
    }

    /// Runs one process step: the outer error is the plugin failing (a trap, a
    /// limit), the inner one the step refusing its input.
    pub async fn run_step(
        &self,
        loaded: &Loaded,
        host: HostContext,
        input: &StepInput,
    ) -> Result<Result<StepOutcome, String>, String> {
        let size = input.config.len()
            + input.variables.len()
            + input.record.as_ref().map_or(0, String::len);
        self.check_input("the step's input", size)?;
        let (deadline, memory) = (host.limits.background, host.limits.memory_bytes);
        let mut store = self.store(host, deadline);
        let outcome = async {
            let plugin = loaded.pre.instantiate_async(&mut store).await?;
            plugin.crm_plugin_steps().call_run(&mut store, input).await
        }
        .await;
        match self.outcome(outcome, deadline, memory)? {
            Ok(outcome) => {
                self.check_output(outcome.variables.len())?;
                Ok(Ok(outcome))
            }
            Err(refused) => Ok(Err(refused)),
        }
    }

    /// Runs a due job; `Err` is the reason to retry.
    pub async fn run_job(
        &self,
        loaded: &Loaded,
        host: HostContext,
        job: &Job,
    ) -> Result<(), String> {
        let (deadline, memory) = (host.limits.background, host.limits.memory_bytes);
        let mut store = self.store(host, deadline);
        let outcome = async {
            let plugin = loaded.pre.instantiate_async(&mut store).await?;
            plugin
                .crm_plugin_job_handler()
                .call_run(&mut store, job)
                .await
        }
        .await;
        self.outcome(outcome, deadline, memory)?
    }

    fn check_input(&self, what: &str, bytes: usize) -> Result<(), String> {
        let max = self.limits.max_payload_bytes;
        if bytes > max {
            return Err(format!(
                "{what} is {bytes} bytes; plugins take at most {max}"
            ));
        }
        Ok(())
    }

    fn check_output(&self, bytes: usize) -> Result<(), String> {
        let max = self.limits.max_payload_bytes;
        if bytes > max {
            return Err(format!(
                "returned {bytes} bytes; plugins return at most {max}"
            ));
        }
        Ok(())
    }

    /// A call's result, with a trap described in the plugin author's terms.
    fn outcome<T>(
        &self,
        outcome: wasmtime::Result<T>,
        deadline: Duration,
        memory: usize,
    ) -> Result<T, String> {
        outcome.map_err(|e| describe_trap(&e, memory, deadline))
    }

    /// A Store for one call: fresh WASI context, memory limits, host-call budget and
    /// a deadline counted in epoch ticks.
    fn store(&self, host: HostContext, deadline: Duration) -> Store<CallState> {
        let limits = &self.limits;
        let memory = host.limits.memory_bytes;
        let mut store = Store::new(
            &self.engine,
            CallState {
                wasi: WasiCtx::builder().build(),
                table: ResourceTable::new(),
                limits: StoreLimitsBuilder::new()
                    .memory_size(memory)
                    .instances(32)
                    .trap_on_grow_failure(true)
                    .build(),
                host,
                host_calls: 0,
                max_host_calls: limits.max_host_calls,
                max_payload_bytes: limits.max_payload_bytes,
            },
        );
        store.limiter(|s| &mut s.limits);
        let ticks = (deadline.as_millis() / TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        store
    }
}

/// A plugin version, compiled and linked, ready to instantiate.
pub struct Loaded {
    pre: v0_1::PluginPre<CallState>,
}

/// What a call may reach of the host: the records service as the user the plugin
/// acts for (with `actor.plugin` set), within what an admin granted the plugin.
pub struct HostContext {
    /// `id version`, for logs and messages.
    pub label: String,
    pub plugin_id: String,
    pub records: RecordService,
    /// The document library (`None` where the host has none, as in `crm plugin
    /// install`).
    pub documents: Option<crate::documents::DocumentService>,
    pub db: Db,
    pub actor: Actor,
    pub grants: Arc<Capabilities>,
    /// Departments where the plugin is enabled: where its writes may land.
    pub departments: Arc<Vec<String>>,
    /// The department of the record being handled: where a created record goes when
    /// the plugin names none.
    pub home_department: Option<String>,
    /// Records writes are refused inside before-save (a hook that writes would run
    /// hooks again, inside the write it is checking).
    pub may_write: bool,
    /// This plugin's limits (the manifest's, or the host's defaults).
    pub limits: PluginLimits,
}

/// Why a call did not let the write through.
#[derive(Debug)]
pub enum CallError {
    Invalid(Vec<v0_1::crm::plugin::types::FieldError>),
    Failed(String),
}

fn describe_trap(e: &wasmtime::Error, memory_bytes: usize, deadline: Duration) -> String {
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => format!(
            "did not finish within its {} ms time limit and was stopped",
            deadline.as_millis()
        ),
        Some(Trap::StackOverflow) => "overflowed its stack and was stopped".into(),
        // A Rust guest's shadow stack sits at the start of linear memory: when deep
        // recursion runs it past address 0, the access is out of bounds.
        Some(Trap::MemoryOutOfBounds) => {
            "overflowed its stack or accessed memory out of bounds and was stopped".into()
        }
        Some(Trap::UnreachableCodeReached) => {
            "stopped with a trap (a panic or an abort inside the plugin)".into()
        }
        Some(t) => format!("stopped with a trap: {t}"),
        None => {
            let root = e.root_cause().to_string();
            if root.contains("growing memory") {
                format!(
                    "tried to use more than its {} MiB of memory and was stopped",
                    memory_bytes >> 20
                )
            } else {
                root
            }
        }
    }
}

/// The Store data of one call.
pub struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    host: HostContext,
    host_calls: u32,
    max_host_calls: u32,
    max_payload_bytes: usize,
}

impl CallState {
    fn count_host_call(&mut self) -> wasmtime::Result<()> {
        self.host_calls += 1;
        if self.host_calls > self.max_host_calls {
            return Err(wasmtime::Error::msg(format!(
                "made more than {} host calls in one call",
                self.max_host_calls
            )));
        }
        Ok(())
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl v0_1::crm::plugin::types::Host for CallState {}

impl v0_1::crm::plugin::log::Host for CallState {
    async fn write(
        &mut self,
        level: v0_1::crm::plugin::log::Level,
        message: String,
    ) -> wasmtime::Result<()> {
        use v0_1::crm::plugin::log::Level;
        self.count_host_call()?;
        let message: String = message.chars().take(2_000).collect();
        let plugin = self.host.label.as_str();
        match level {
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error => tracing::error!(plugin, "{message}"),
        }
        Ok(())
    }
}

impl CallState {
    /// Refuses a payload from the plugin larger than the per-call limit.
    fn check_size(&self, what: &str, text: &str) -> Result<(), String> {
        if text.len() > self.max_payload_bytes {
            return Err(format!(
                "{what} is {} bytes; at most {} are accepted",
                text.len(),
                self.max_payload_bytes
            ));
        }
        Ok(())
    }

    fn check_write(&self, object: &str) -> Result<(), String> {
        if !self.host.may_write {
            return Err("records cannot be written inside before-save; return a patch instead, or write from after-save".into());
        }
        if !self.host.grants.write.iter().any(|o| o == object) {
            return Err(format!("the plugin was not granted writing {object}"));
        }
        Ok(())
    }

    /// A plugin gives records an owner only for objects its approved
    /// `capabilities.assign` names, and only someone who belongs to the record's
    /// department or one below it (so a public form cannot hand leads to a stranger).
    fn check_owner(
        &self,
        object: &str,
        owner: &serde_json::Value,
        department: Option<&serde_json::Value>,
    ) -> Result<(), String> {
        if !self.host.grants.assign.iter().any(|o| o == object) {
            return Err(format!(
                "the plugin was not granted assigning {object} records (capabilities.assign)"
            ));
        }
        let (Some(owner), Some(department)) = (
            owner.as_str(),
            department.and_then(serde_json::Value::as_str),
        ) else {
            return Err("owner is a user id, and the record needs a department".into());
        };
        let access = self.host.records.access();
        let tree = access.department_tree();
        let belongs = access
            .user_by_id(owner)
            .departments()
            .any(|d| tree.departments.is_within(d, department));
        if belongs {
            Ok(())
        } else {
            Err(format!(
                "invalid: owner: {owner} does not belong to the record's department"
            ))
        }
    }

    fn check_department(&self, department: Option<&str>) -> Result<(), String> {
        match department {
            Some(d) if self.host.departments.iter().any(|e| e == d) => Ok(()),
            _ => Err("the plugin is not enabled in the record's department".into()),
        }
    }
}

/// A refusal from the records service in words a plugin author can act on.
fn describe(e: RecordError) -> String {
    match e {
        RecordError::Invalid(ref errors) | RecordError::FieldsForbidden(ref errors) => {
            let fields: Vec<String> = errors
                .iter()
                .map(|f| format!("{}: {}", f.field, f.message))
                .collect();
            format!("{e}: {}", fields.join("; "))
        }
        e => e.to_string(),
    }
}

fn json_object(text: &str) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    match serde_json::from_str(text) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        _ => Err("expected a JSON object of fields".into()),
    }
}

impl v0_1::crm::plugin::records::Host for CallState {
    async fn get(
        &mut self,
        object: String,
        id: String,
    ) -> wasmtime::Result<Result<String, String>> {
        self.count_host_call()?;
        if !self.host.grants.read.contains(&object) {
            return Ok(Err(format!("the plugin was not granted reading {object}")));
        }
        Ok(
            match self.host.records.get(&self.host.actor, &object, &id).await {
                // A record of a department that did not enable the plugin does not
                // exist for it, whoever it acts for.
                Ok(record) if self.check_department(record.department.as_deref()).is_err() => {
                    Err(describe(RecordError::NotFound))
                }
                Ok(record) => Ok(serde_json::to_string(&record).expect("a record serialises")),
                Err(e) => Err(describe(e)),
            },
        )
    }

    async fn list(
        &mut self,
        object: String,
        query: String,
    ) -> wasmtime::Result<Result<String, String>> {
        self.count_host_call()?;
        let query = match self.readable_query(&object, &query) {
            Ok(query) => query,
            Err(e) => return Ok(Err(e)),
        };
        let (records, actor) = (self.host.records.clone(), self.host.actor.clone());
        Ok(records
            .list(&actor, &object, &query)
            .await
            .map(|page| serde_json::to_string(&page).expect("a page serialises"))
            .map_err(describe))
    }

    async fn aggregate(
        &mut self,
        object: String,
        query: String,
    ) -> wasmtime::Result<Result<String, String>> {
        self.count_host_call()?;
        let query = match self.readable_query(&object, &query) {
            Ok(query) => query,
            Err(e) => return Ok(Err(e)),
        };
        let (records, actor) = (self.host.records.clone(), self.host.actor.clone());
        Ok(records
            .aggregate(&actor, &object, &query)
            .await
            .map(|groups| serde_json::to_string(&groups).expect("groups serialise"))
            .map_err(describe))
    }

    async fn create(
        &mut self,
        object: String,
        fields: String,
    ) -> wasmtime::Result<Result<String, String>> {
        self.count_host_call()?;
        let checked = (|| {
            self.check_write(&object)?;
            self.check_size("the record", &fields)?;
            let mut fields = json_object(&fields)?;
            if !fields.contains_key("department")
                && let Some(home) = &self.host.home_department
            {
                fields.insert("department".into(), home.clone().into());
            }
            self.check_department(fields.get("department").and_then(|d| d.as_str()))?;
            if let Some(owner) = fields.get("owner") {
                self.check_owner(&object, owner, fields.get("department"))?;
            }
            Ok::<_, String>(fields)
        })();
        let fields = match checked {
            Ok(fields) => fields,
            Err(e) => return Ok(Err(e)),
        };
        // Owned handles: the call state is not shared across the await.
        let (records, actor) = (self.host.records.clone(), self.host.actor.clone());
        Ok(records
            .create(&actor, &object, &fields)
            .await
            .map(|record| serde_json::to_string(&record).expect("a record serialises"))
            .map_err(describe))
    }

    async fn update(
        &mut self,
        object: String,
        id: String,
        patch: String,
    ) -> wasmtime::Result<Result<String, String>> {
        self.count_host_call()?;
        let checked = (|| {
            self.check_write(&object)?;
            self.check_size("the patch", &patch)?;
            let patch = json_object(&patch)?;
            if let Some(d) = patch.get("department") {
                self.check_department(d.as_str())?;
            }
            Ok::<_, String>(patch)
        })();
        let patch = match checked {
            Ok(patch) => patch,
            Err(e) => return Ok(Err(e)),
        };
        let (records, actor) = (self.host.records.clone(), self.host.actor.clone());
        let current = match records.get(&actor, &object, &id).await {
            Ok(record) => record,
            Err(e) => return Ok(Err(describe(e))),
        };
        if self
            .check_department(current.department.as_deref())
            .is_err()
        {
            // As `get` answers: such a record does not exist for the plugin.
            return Ok(Err(describe(RecordError::NotFound)));
        }
        if let Some(owner) = patch.get("owner") {
            let department = patch
                .get("department")
                .cloned()
                .or_else(|| current.department.clone().map(serde_json::Value::String));
            if let Err(e) = self.check_owner(&object, owner, department.as_ref()) {
                return Ok(Err(e));
            }
        }
        Ok(records
            .update(&actor, &object, &id, &patch, None)
            .await
            .map(|record| serde_json::to_string(&record).expect("a record serialises"))
            .map_err(describe))
    }
}

impl CallState {
    /// A list or aggregate query of an object the plugin was granted reading,
    /// limited to the departments where it is enabled, whoever it acts for (ids
    /// hold no `,`, `&` or `=`).
    fn readable_query(&self, object: &str, query: &str) -> Result<String, String> {
        if !self.host.grants.read.iter().any(|o| o == object) {
            return Err(format!("the plugin was not granted reading {object}"));
        }
        Ok(format!(
            "{query}{}filter[department][in]={}",
            if query.is_empty() { "" } else { "&" },
            self.host.departments.join(",")
        ))
    }
}

/// Keys and values of the plugin-private store.
const MAX_KV_KEY_BYTES: usize = 256;
const MAX_KV_VALUE_BYTES: usize = 64 << 10;
const MAX_KV_KEYS_LISTED: i64 = 1_000;

impl CallState {
    fn check_kv(&self, key: &str) -> Result<(), String> {
        if !self.host.grants.kv {
            return Err("the plugin was not granted kv".into());
        }
        if key.is_empty() || key.len() > MAX_KV_KEY_BYTES {
            return Err(format!("a key is 1 to {MAX_KV_KEY_BYTES} bytes"));
        }
        Ok(())
    }
}

impl v0_1::crm::plugin::kv::Host for CallState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, String>> {
        self.count_host_call()?;
        if let Err(e) = self.check_kv(&key) {
            return Ok(Err(e));
        }
        let value =
            sqlx::query_scalar("SELECT value FROM plugin_kv WHERE plugin_id = $1 AND key = $2")
                .bind(&self.host.plugin_id)
                .bind(&key)
                .fetch_optional(&self.host.db.pool)
                .await;
        Ok(value.map_err(|e| e.to_string()))
    }

    async fn set(&mut self, key: String, value: String) -> wasmtime::Result<Result<(), String>> {
        self.count_host_call()?;
        if let Err(e) = self.check_kv(&key) {
            return Ok(Err(e));
        }
        if value.len() > MAX_KV_VALUE_BYTES {
            return Ok(Err(format!(
                "a value is at most {} KiB",
                MAX_KV_VALUE_BYTES >> 10
            )));
        }
        let done = sqlx::query(
            "INSERT INTO plugin_kv (plugin_id, key, value, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (plugin_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(&self.host.plugin_id)
        .bind(&key)
        .bind(&value)
        .bind(db::now())
        .execute(&self.host.db.pool)
        .await;
        Ok(done.map(|_| ()).map_err(|e| e.to_string()))
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), String>> {
        self.count_host_call()?;
        if let Err(e) = self.check_kv(&key) {
            return Ok(Err(e));
        }
        let done = sqlx::query("DELETE FROM plugin_kv WHERE plugin_id = $1 AND key = $2")
            .bind(&self.host.plugin_id)
            .bind(&key)
            .execute(&self.host.db.pool)
            .await;
        Ok(done.map(|_| ()).map_err(|e| e.to_string()))
    }

    async fn keys(&mut self, prefix: String) -> wasmtime::Result<Result<Vec<String>, String>> {
        self.count_host_call()?;
        if !self.host.grants.kv {
            return Ok(Err("the plugin was not granted kv".into()));
        }
        // substr instead of LIKE: the prefix is data, not a pattern.
        let keys = sqlx::query_scalar(
            "SELECT key FROM plugin_kv WHERE plugin_id = $1 AND substr(key, 1, length($2)) = $2 ORDER BY key LIMIT $3",
        )
        .bind(&self.host.plugin_id)
        .bind(&prefix)
        .bind(MAX_KV_KEYS_LISTED)
        .fetch_all(&self.host.db.pool)
        .await;
        Ok(keys.map_err(|e| e.to_string()))
    }
}

impl v0_1::crm::plugin::notify::Host for CallState {
    async fn send(
        &mut self,
        user: String,
        title: String,
        body: String,
    ) -> wasmtime::Result<Result<(), String>> {
        self.count_host_call()?;
        if !self.host.grants.notify {
            return Ok(Err("the plugin was not granted notify".into()));
        }
        if !self.host.may_write {
            return Ok(Err("notifications cannot be sent inside before-save (the save may still be refused); send them from after-save".into()));
        }
        let source = format!("plugin:{}", self.host.plugin_id);
        let sent = crate::notifications::send(&self.host.db, &user, &source, &title, &body).await;
        Ok(sent.map(|_| ()).map_err(|e| e.to_string()))
    }
}

/// Jobs (pending or failed) a plugin may have at once, and the size of their names and payloads.
pub const MAX_PENDING_JOBS: i64 = 1_000;
const MAX_JOB_NAME_CHARS: usize = 100;
const MAX_JOB_PAYLOAD_BYTES: usize = 64 << 10;

impl CallState {
    /// Stores a job due at `run_at`, within the plugin's grant and quota.
    async fn schedule(
        &mut self,
        name: &str,
        run_at: chrono::DateTime<chrono::Utc>,
        payload: &str,
    ) -> Result<String, String> {
        if !self.host.grants.jobs {
            return Err("the plugin was not granted jobs".into());
        }
        if !self.host.may_write {
            return Err("jobs cannot be scheduled inside before-save (the save may still be refused); schedule them from after-save".into());
        }
        if name.is_empty() || name.chars().count() > MAX_JOB_NAME_CHARS {
            return Err(format!(
                "a job's name is 1 to {MAX_JOB_NAME_CHARS} characters"
            ));
        }
        if payload.len() > MAX_JOB_PAYLOAD_BYTES {
            return Err(format!(
                "a job's payload is at most {} KiB",
                MAX_JOB_PAYLOAD_BYTES >> 10
            ));
        }
        let pool = &self.host.db.pool;
        let pending: i64 = sqlx::query_scalar(
            // Failed jobs count too: they hold storage until an admin deletes them.
            "SELECT COUNT(*) FROM plugin_jobs WHERE plugin_id = $1",
        )
        .bind(&self.host.plugin_id)
        .fetch_one(pool)
        .await
        .map_err(|e| e.to_string())?;
        if pending >= MAX_PENDING_JOBS {
            return Err(format!(
                "the plugin already has {MAX_PENDING_JOBS} pending or failed jobs (an admin deletes failed ones)"
            ));
        }
        let id = db::new_id();
        let now = db::now();
        sqlx::query(
            "INSERT INTO plugin_jobs (id, plugin_id, name, payload, run_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(&id)
        .bind(&self.host.plugin_id)
        .bind(name)
        .bind(payload)
        .bind(db::format_time(run_at))
        .bind(&now)
        .execute(pool)
        .await
        .map_err(|e| e.to_string())?;
        Ok(id)
    }
}

impl v0_1::crm::plugin::jobs::Host for CallState {
    async fn schedule_in(
        &mut self,
        name: String,
        seconds: u64,
        payload: String,
    ) -> wasmtime::Result<Result<String, String>> {
        self.count_host_call()?;
        // Ten years is far enough for any follow-up and keeps the sum in range.
        let seconds = seconds.min(10 * 365 * 86_400) as i64;
        let run_at = chrono::Utc::now() + chrono::TimeDelta::seconds(seconds);
        Ok(self.schedule(&name, run_at, &payload).await)
    }

    async fn schedule_at(
        &mut self,
        name: String,
        at: String,
        payload: String,
    ) -> wasmtime::Result<Result<String, String>> {
        self.count_host_call()?;
        let run_at = match chrono::DateTime::parse_from_rfc3339(&at) {
            Ok(t) => t.with_timezone(&chrono::Utc),
            Err(_) => {
                return Ok(Err(format!(
                    "'{at}' is not an RFC 3339 time such as 2026-12-01T09:00:00Z"
                )));
            }
        };
        Ok(self.schedule(&name, run_at, &payload).await)
    }

    async fn cancel(&mut self, id: String) -> wasmtime::Result<Result<bool, String>> {
        self.count_host_call()?;
        if !self.host.grants.jobs {
            return Ok(Err("the plugin was not granted jobs".into()));
        }
        let done = sqlx::query(
            "DELETE FROM plugin_jobs WHERE id = $1 AND plugin_id = $2 AND status = 'scheduled'",
        )
        .bind(&id)
        .bind(&self.host.plugin_id)
        .execute(&self.host.db.pool)
        .await;
        Ok(done
            .map(|d| d.rows_affected() == 1)
            .map_err(|e| e.to_string()))
    }
}
