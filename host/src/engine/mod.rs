//! The wasmtime side: one `Engine` per host, the pooling allocator, compiled components
//! shared by content hash, and one fresh `Store` per invocation.

mod cache;
mod error_labels;
mod errors;
mod fault;
mod guest_threads;
mod handlers;
mod invoke;
pub mod limits;
pub mod log_gate;
mod output;
mod output_cap;
mod turns;
mod warm;
mod wasi_http;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use wasmtime::component::{ComponentNamedList, HasSelf, InstancePre, Lift, Linker, Lower};
use wasmtime::{InstanceAllocationStrategy, PoolingAllocationConfig};

pub use cache::content_hash;
pub use errors::{InvokeError, LoadError};
pub use handlers::{CONTRACT_VERSION, Export, interface_name};
pub use invoke::{Invocation, PluginContext, WasiContexts};
pub use limits::{EngineLimits, Limits};
pub use warm::{WarmPool, WarmSettings};

/// Settings for [`Engine::new`].
#[derive(Debug, Clone, Default)]
pub struct EngineConfig {
    /// Where compiled components are kept; `None` compiles in memory only.
    pub cache_dir: Option<PathBuf>,
    pub limits: EngineLimits,
    /// Handler interfaces of trigger kinds outside the contract (full names, as
    /// `orquesta:test/tick-handler@0.1.0`): a component exporting one of them and no
    /// handler of the contract loads too. Its handler is found with [`Plugin::export`].
    pub extra_triggers: Vec<String>,
}

/// The host's wasmtime engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    wasmtime: wasmtime::Engine,
    linker: Linker<Invocation>,
    cache: cache::ComponentCache,
    /// One permit per pool slot: callers wait for a slot instead of failing to instantiate.
    slots: Arc<Semaphore>,
    guests: guest_threads::GuestThreads,
    /// Warm instances' pools and the slots they may hold idle (`warm.rs`).
    warm: Arc<warm::Registry>,
    limits: EngineLimits,
    extra_triggers: Vec<String>,
    /// Invocation ids are this engine's random prefix and a counter: unique across hosts
    /// without asking the OS for randomness on every invocation.
    id_prefix: u32,
    invocations: std::sync::atomic::AtomicU64,
    /// Invocations holding their instance now (the host registry lists the count).
    running: Arc<std::sync::atomic::AtomicU64>,
}

/// A validated, compiled plugin ready to instantiate.
#[derive(Clone)]
pub struct Plugin {
    pub hash: String,
    pre: InstancePre<Invocation>,
    /// The handlers it exports, found and type-checked here, once. The generated
    /// bindings check an interface export's type again on every instantiation (5% of
    /// an invocation of a trivial plugin in the profile).
    handlers: handlers::Handlers,
    /// Pool slots an instance takes: one per `MEMORIES_PER_SLOT` memories.
    slots: u32,
}

impl Plugin {
    /// The trigger kinds the plugin answers (`http`, `queue`, `topic`, `bus`, `schedule`,
    /// `task`): those whose handler interface it exports, every kind for a 0.1.0 plugin.
    pub fn triggers(&self) -> Vec<&'static str> {
        self.handlers.kinds()
    }

    /// The exported function `func` of the instance `interface` (a full name such as
    /// `orquesta:plugin/http-handler@0.1.1`; semver-compatible releases match), checked
    /// to take `P` and give `R`: how a trigger kind finds its handler in a plugin.
    /// `Ok(None)` when the plugin does not export `interface`; an error when it does with
    /// other types.
    pub fn export<P, R>(
        &self,
        interface: &str,
        func: &str,
    ) -> Result<Option<Export<P, R>>, LoadError>
    where
        P: ComponentNamedList + Lower,
        R: ComponentNamedList + Lift,
    {
        Export::find(&self.pre, interface, func)
            .map_err(|e| LoadError::WrongWorld(format!("{e:#}")))
    }
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin").field("hash", &self.hash).finish()
    }
}

impl Engine {
    pub fn new(config: EngineConfig) -> anyhow::Result<Self> {
        let limits = config.limits.clone();
        let slots = limits.instance_slots;
        let mut pool = PoolingAllocationConfig::default();
        // Core instances and tables cost little per slot; memories are counted per
        // invocation instead (`Plugin::slots`).
        pool.total_component_instances(slots)
            .total_core_instances(slots.saturating_mul(limits.max_core_instances_per_component))
            .total_memories(slots.saturating_mul(limits::MEMORIES_PER_SLOT))
            .total_tables(slots.saturating_mul(limits.max_tables_per_component))
            .max_core_instances_per_component(limits.max_core_instances_per_component)
            .max_memories_per_component(limits.max_memories_per_component)
            .max_tables_per_component(limits.max_tables_per_component)
            .total_stacks(slots)
            .max_memory_size((limits::ceiling::MEMORY_MB as usize) << 20)
            .linear_memory_keep_resident(limits.keep_resident_bytes)
            .table_keep_resident(limits.keep_resident_bytes);
        if limits.pagemap_scan && limits.keep_resident_bytes > 0 && !swap_is_on() {
            pool.pagemap_scan(wasmtime::Enabled::Auto);
        }

        let mut wasm = wasmtime::Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            .max_wasm_stack(limits.max_wasm_stack)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let wasmtime = wasmtime::Engine::new(&wasm)?;
        start_epoch_ticker(&wasmtime, Duration::from_millis(limits.epoch_tick_ms));

        let mut linker = Linker::new(&wasmtime);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        // Standard `wasi:http` beside orquesta's own interfaces: outgoing requests go
        // through the tenant's `http` backend (capabilities/wasi_http.rs); only a
        // component importing it sees it.
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        // Standard `wasi:config/store`: the plugin's own config values, never its secrets
        // (capabilities/config.rs); likewise seen only by a component importing it.
        wasmtime_wasi_config::add_to_linker(&mut linker, |s: &mut Invocation| {
            wasmtime_wasi_config::WasiConfig::from(&s.ctx.wasi_config)
        })?;
        crate::bindings::OrquestaHost::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;

        let guests = guest_threads::GuestThreads::start(limits.guest_threads, limits.guest_nice)?;
        let warm = warm::Registry::new(limits.warm_slots.min(slots));
        // On the guest threads: dropping an instance frees what its capabilities held,
        // some of which want a tokio runtime.
        guests.spawn(sweep_warm(Arc::downgrade(&warm)));
        Ok(Engine {
            inner: Arc::new(Inner {
                cache: cache::ComponentCache::new(&wasmtime, config.cache_dir),
                wasmtime,
                linker,
                slots: Arc::new(Semaphore::new(slots as usize)),
                guests,
                warm,
                limits,
                extra_triggers: config.extra_triggers,
                id_prefix: uuid::Uuid::new_v4().as_u128() as u32,
                invocations: std::sync::atomic::AtomicU64::new(0),
                running: Arc::default(),
            }),
        })
    }

    /// Validates and compiles a plugin file. Compilation runs off the async threads.
    pub async fn load(&self, bytes: Vec<u8>) -> Result<Plugin, LoadError> {
        check_header(&bytes)?;
        let engine = self.clone();
        tokio::task::spawn_blocking(move || engine.load_blocking(&bytes))
            .await
            .map_err(|e| LoadError::Invalid(format!("compilation did not finish: {e}")))?
    }

    /// [`Engine::load`] for callers outside an async context.
    pub fn load_blocking(&self, bytes: &[u8]) -> Result<Plugin, LoadError> {
        check_header(bytes)?;
        let hash = content_hash(bytes);
        let inner = &self.inner;
        let component = inner
            .cache
            .get_or_compile(&inner.wasmtime, &hash, bytes)
            .map_err(|e| LoadError::Invalid(format!("{e:#}")))?;
        let wrong_world = |e: wasmtime::Error| LoadError::WrongWorld(format!("{e:#}"));
        let pre = inner
            .linker
            .instantiate_pre(&component)
            .map_err(wrong_world)?;
        let handlers =
            handlers::Handlers::find(&pre, &inner.extra_triggers).map_err(wrong_world)?;
        // Past the per-component caps, compiling refused it already (the pool checks
        // them when a component is created) with the count and the cap.
        let memories = component
            .resources_required()
            .map_or(inner.limits.max_memories_per_component, |r| r.num_memories);
        let slots = memories.div_ceil(limits::MEMORIES_PER_SLOT).max(1);
        Ok(Plugin {
            hash,
            pre,
            handlers,
            slots,
        })
    }

    pub fn limits(&self) -> &EngineLimits {
        &self.inner.limits
    }

    /// Invocations running on this engine now.
    pub fn in_flight(&self) -> u64 {
        self.inner
            .running
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Counts an invocation as running until the guard is dropped.
    fn running(&self) -> Running {
        self.inner
            .running
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Running(self.inner.running.clone())
    }

    fn invocation_id(&self) -> String {
        let n = self
            .inner
            .invocations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{:08x}-{n:x}", self.inner.id_prefix)
    }
}

/// One invocation counted in [`Engine::in_flight`], however its future ends.
struct Running(Arc<std::sync::atomic::AtomicU64>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Discards idle warm instances past their time, for as long as the engine lives.
async fn sweep_warm(registry: std::sync::Weak<warm::Registry>) {
    loop {
        tokio::time::sleep(warm::SWEEP_EVERY).await;
        match registry.upgrade() {
            Some(registry) => registry.sweep(),
            None => return,
        }
    }
}

/// Whether any swap area is active (`/proc/swaps` lists more than its header). Unknown
/// counts as on: `PAGEMAP_SCAN` is then left off.
fn swap_is_on() -> bool {
    std::fs::read_to_string("/proc/swaps").map_or(true, |s| s.lines().count() > 1)
}

/// The first eight bytes say whether this is wasm at all, and which kind.
fn check_header(bytes: &[u8]) -> Result<(), LoadError> {
    const MAGIC: &[u8] = b"\0asm";
    const CORE_MODULE: [u8; 4] = [1, 0, 0, 0];
    const COMPONENT: [u8; 4] = [0x0d, 0, 1, 0];
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Err(LoadError::NotWasm);
    }
    match bytes[4..8] {
        [a, b, c, d] if [a, b, c, d] == COMPONENT => Ok(()),
        [a, b, c, d] if [a, b, c, d] == CORE_MODULE => Err(LoadError::CoreModule),
        _ => Err(LoadError::Invalid(format!(
            "unsupported wasm version/layer {:02x?}",
            &bytes[4..8]
        ))),
    }
}

/// Advances the epoch every `tick` for as long as the engine lives; time limits are
/// counted in these ticks.
fn start_epoch_ticker(engine: &wasmtime::Engine, tick: Duration) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("orquesta-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(tick);
            }
        });
    if let Err(e) = spawned {
        // Without the ticker the outer timeout still bounds every invocation.
        tracing::error!(error = %e, "cannot start the epoch thread");
    }
}
