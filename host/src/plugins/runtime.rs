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

use crate::auth::Actor;
use crate::records::service::RecordService;

/// Bindings of `crm:plugin@0.1.0` (wit/crm-plugin-0.1.0). A new API version gets a
/// module of its own beside this one.
pub mod v0_1 {
    wasmtime::component::bindgen!({
        world: "plugin",
        path: "../wit/crm-plugin-0.1.0",
        imports: { default: async | trappable },
        exports: { default: async },
    });
}

use v0_1::crm::plugin::types::{HookError, SaveContext};

/// How often the epoch advances: the resolution of every deadline.
pub const TICK: Duration = Duration::from_millis(10);
/// Limits of one call; `docs/plugins.md` lists them for plugin authors.
#[derive(Clone, Debug)]
pub struct Limits {
    pub hook_deadline: Duration,
    pub memory_bytes: usize,
    pub max_host_calls: u32,
    pub max_payload_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            hook_deadline: Duration::from_millis(100),
            memory_bytes: 64 << 20,
            max_host_calls: 10_000,
            max_payload_bytes: 1 << 20,
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
            .max_memory_size(limits.memory_bytes);
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

    /// Compiles (or loads from the cache) and links a component: the checks of the
    /// install step. Every refusal says what is wrong in the plugin author's terms.
    pub fn load(&self, wasm: &[u8], sha256: &str) -> Result<Loaded, String> {
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
        for (name, _) in component.component_type().imports(&self.engine) {
            if !ALLOWED_IMPORTS.iter().any(|p| name.starts_with(p)) {
                return Err(format!(
                    "the component imports {name}, which plugins may not use (allowed: crm:plugin, wasi:io, wasi:cli)"
                ));
            }
        }
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| format!("the component does not fit the crm:plugin@0.1.0 world: {e:#}"))?;
        let pre = v0_1::PluginPre::new(pre).map_err(|e| {
            format!("the component does not export what crm:plugin@0.1.0 asks for: {e:#}")
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
        let limits = &self.limits;
        if record.len() > limits.max_payload_bytes {
            return Err(CallError::Failed(format!(
                "the record is {} bytes; plugins take at most {}",
                record.len(),
                limits.max_payload_bytes
            )));
        }
        let mut store = Store::new(
            &self.engine,
            CallState {
                wasi: WasiCtx::builder().build(),
                table: ResourceTable::new(),
                limits: StoreLimitsBuilder::new()
                    .memory_size(limits.memory_bytes)
                    .instances(32)
                    .trap_on_grow_failure(true)
                    .build(),
                host,
                host_calls: 0,
                max_host_calls: limits.max_host_calls,
            },
        );
        store.limiter(|s| &mut s.limits);
        let ticks = (limits.hook_deadline.as_millis() / TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        let outcome = async {
            let plugin = loaded.pre.instantiate_async(&mut store).await?;
            plugin
                .crm_plugin_hooks()
                .call_before_save(&mut store, context, record)
                .await
        }
        .await;
        match outcome {
            Ok(Ok(Some(patch))) if patch.len() > limits.max_payload_bytes => {
                Err(CallError::Failed(format!(
                    "returned {} bytes; plugins return at most {}",
                    patch.len(),
                    limits.max_payload_bytes
                )))
            }
            Ok(Ok(patch)) => Ok(patch),
            Ok(Err(HookError::Invalid(errors))) => Err(CallError::Invalid(errors)),
            Ok(Err(HookError::Failed(message))) => Err(CallError::Failed(message)),
            Err(e) => Err(CallError::Failed(describe_trap(&e, limits))),
        }
    }
}

/// A plugin version, compiled and linked, ready to instantiate.
pub struct Loaded {
    pre: v0_1::PluginPre<CallState>,
}

/// What a call may reach of the host: the records service, as the user the plugin
/// acts for, within the objects it was granted.
pub struct HostContext {
    pub plugin: String,
    pub records: RecordService,
    pub actor: Actor,
    pub readable: Vec<String>,
}

/// Why a call did not let the write through.
#[derive(Debug)]
pub enum CallError {
    Invalid(Vec<v0_1::crm::plugin::types::FieldError>),
    Failed(String),
}

fn describe_trap(e: &wasmtime::Error, limits: &Limits) -> String {
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => format!(
            "did not finish within its {} ms time limit and was stopped",
            limits.hook_deadline.as_millis()
        ),
        Some(Trap::StackOverflow) => "overflowed its stack and was stopped".into(),
        Some(Trap::UnreachableCodeReached) => {
            "stopped with a trap (a panic or an abort inside the plugin)".into()
        }
        Some(t) => format!("stopped with a trap: {t}"),
        None => {
            let root = e.root_cause().to_string();
            if root.contains("growing memory") {
                format!(
                    "tried to use more than its {} MiB of memory and was stopped",
                    limits.memory_bytes >> 20
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
        let plugin = self.host.plugin.as_str();
        match level {
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error => tracing::error!(plugin, "{message}"),
        }
        Ok(())
    }
}

impl v0_1::crm::plugin::records::Host for CallState {
    async fn get(
        &mut self,
        object: String,
        id: String,
    ) -> wasmtime::Result<Result<String, String>> {
        self.count_host_call()?;
        if !self.host.readable.contains(&object) {
            return Ok(Err(format!("the plugin was not granted reading {object}")));
        }
        Ok(
            match self.host.records.get(&self.host.actor, &object, &id).await {
                Ok(record) => Ok(serde_json::to_string(&record).expect("a record serialises")),
                Err(e) => Err(e.to_string()),
            },
        )
    }
}
