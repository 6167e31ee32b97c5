//! One invocation: a fresh `Store` and instance (or, for a plugin that asks for them, a
//! warm one: `warm.rs`), limits armed, the call, and the outcome turned into a typed
//! result. Nothing the guest made survives a fresh invocation but its result; only the
//! plugin's WASI context is kept for the next one, its output emptied (see
//! `WasiContexts`).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use wasmtime::component::{ComponentNamedList, Instance, Lift, Lower, TypedFunc};
use wasmtime::{ResourceLimiter, Store, Trap, UpdateDeadline};
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_config::WasiConfigVariables;
use wasmtime_wasi_http::{WasiHttpCtxView, WasiHttpView};

use super::error_labels::ErrorCounters;
use super::fault;
use super::guest_threads::Slice;
use super::handlers::{Call, Export, Route, handler_interface};
use super::log_gate::LogGate;
use super::output::CapturedOutput;
use super::warm::{Warm, WarmPool};
use super::{Engine, InvokeError, Limits, Plugin, output_cap};
use crate::bindings::handler::{Event, Failure, Response};
use crate::capabilities::Capabilities;
use crate::capabilities::wasi_http::WasiHttpState;

/// Everything an invocation of one plugin of one tenant needs, built once when the
/// tenant's config loads and shared by all its invocations.
pub struct PluginContext {
    pub tenant: String,
    pub plugin: String,
    pub limits: Limits,
    /// Shared by every plugin of the tenant: caps its invocations in flight.
    pub concurrency: Arc<Semaphore>,
    pub capabilities: Capabilities,
    /// `wasi:config/store`'s view of `capabilities.config`, made once here rather than
    /// per invocation (capabilities/config.rs).
    pub wasi_config: WasiConfigVariables,
    /// This plugin's metrics, looked up once rather than by label on every invocation.
    metrics: PluginMetrics,
    /// Shared by every context of the same plugin of the same tenant.
    pub wasi: Arc<WasiContexts>,
    /// This plugin's log rate.
    pub logs: LogGate,
    /// Its warm instances, when the tenant asks for them (`[plugins.NAME.warm]`);
    /// `None`: a fresh instance per invocation.
    pub warm: Option<Arc<WarmPool>>,
    /// Whether this plugin's last invocation ran past its inline time: the next starts
    /// on the guest threads at once, so a plugin that spins does not take the I/O
    /// threads for a while each time it is invoked again.
    runs_long: AtomicBool,
}

struct PluginMetrics {
    instantiation: metrics::Histogram,
    /// Invocations that found a warm instance, and those that instantiated one.
    warm_starts: metrics::Counter,
    cold_starts: metrics::Counter,
    invocations: metrics::Counter,
    duration: metrics::Histogram,
    errors: ErrorCounters,
}

impl PluginContext {
    pub fn new(
        tenant: impl Into<String>,
        plugin: impl Into<String>,
        limits: Limits,
        capabilities: Capabilities,
    ) -> Self {
        let concurrency = Arc::new(Semaphore::new(limits.concurrency as usize));
        let (tenant, plugin) = (tenant.into(), plugin.into());
        let labels = [("tenant", tenant.clone()), ("plugin", plugin.clone())];
        let metrics = PluginMetrics {
            instantiation: metrics::histogram!("orquesta_instantiation_seconds", &labels),
            warm_starts: metrics::counter!(
                "orquesta_instance_starts_total",
                &[
                    ("tenant", tenant.clone()),
                    ("plugin", plugin.clone()),
                    ("start", "warm".into())
                ]
            ),
            cold_starts: metrics::counter!(
                "orquesta_instance_starts_total",
                &[
                    ("tenant", tenant.clone()),
                    ("plugin", plugin.clone()),
                    ("start", "cold".into())
                ]
            ),
            invocations: metrics::counter!("orquesta_invocations_total", &labels),
            duration: metrics::histogram!("orquesta_invocation_duration_seconds", &labels),
            errors: ErrorCounters::new(&tenant, &plugin),
        };
        let logs = LogGate::new(&tenant, &plugin, limits.log_lines_per_s);
        let wasi_config = crate::capabilities::config::wasi_variables(&capabilities.config);
        PluginContext {
            tenant,
            plugin,
            limits,
            concurrency,
            capabilities,
            wasi_config,
            metrics,
            wasi: Arc::default(),
            logs,
            warm: None,
            runs_long: AtomicBool::new(false),
        }
    }
}

/// WASI contexts of one plugin of one tenant between its invocations. A context holds
/// nothing a guest can change but the position of its random generators (and the
/// insecure-random seed, fixed per context, as it is for the life of a warm Lambda
/// environment), so it is reused rather than built per invocation: building one seeds
/// two generators and boxes clocks and streams, twice (wasmtime-wasi's builder makes its
/// defaults again as it builds). Its captured output is emptied after each invocation.
#[derive(Default)]
pub struct WasiContexts {
    idle: Mutex<Vec<Wasi>>,
}

/// Contexts kept per plugin: as many as its invocations usually in flight. More are
/// built when needed and dropped afterwards.
const IDLE_WASI_CONTEXTS: usize = 16;

struct Wasi {
    ctx: WasiCtx,
    stdout: CapturedOutput,
    stderr: CapturedOutput,
}

impl WasiContexts {
    fn take(&self, capture: usize) -> Wasi {
        if let Some(wasi) = self.lock().pop() {
            return wasi;
        }
        let (stdout, stderr) = (CapturedOutput::new(capture), CapturedOutput::new(capture));
        Wasi {
            // No files, no sockets, no environment: only clocks, random and the
            // captured stdio.
            ctx: WasiCtxBuilder::new()
                .stdout(stdout.clone())
                .stderr(stderr.clone())
                .build(),
            stdout,
            stderr,
        }
    }

    /// Takes back a context whose output has been taken.
    fn put(&self, wasi: Wasi) {
        let mut idle = self.lock();
        if idle.len() < IDLE_WASI_CONTEXTS {
            idle.push(wasi);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Wasi>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What a run gives back: the call's outcome, the store (for its WASI context and
/// limiter) and the instance, if it was made.
type Ran<R> = (wasmtime::Result<R>, Store<Invocation>, Option<Instance>);

/// The store's data for one invocation; host calls receive it as `&mut self`.
pub struct Invocation {
    pub ctx: Arc<PluginContext>,
    pub id: String,
    /// Its place in a chain of invocations the host made on plugins' behalf (0: the
    /// chain's first); what it sends carries `depth + 1`, to stop recursive loops.
    pub depth: u32,
    /// What capabilities keep for this invocation alone (their modules say what).
    pub state: crate::capabilities::InvocationState,
    wasi: WasiCtx,
    table: ResourceTable,
    /// `wasi:http`'s state, made on the guest's first call of it.
    http: Option<WasiHttpState>,
    limiter: MemoryLimiter,
}

impl Invocation {
    /// Readies a warm instance's data for its next invocation, `id` at `depth`.
    fn begin(&mut self, ctx: &Arc<PluginContext>, id: &str, depth: u32) {
        self.ctx = ctx.clone();
        self.id = id.to_string();
        self.depth = depth;
        // The pool belongs to one context, so these are its limits already; taken again
        // so the instance can never run under another's.
        self.limiter.max_bytes = ctx.limits.memory_bytes();
        self.limiter.refused = false;
    }

    /// Ends an invocation whose instance is kept warm: what capabilities kept for it (a
    /// database transaction left open, a count against a per-invocation cap) and its
    /// `wasi:http` state go now, not when the instance does. The resource table stays:
    /// the guest may hold handles from earlier invocations in its globals (its stdout
    /// stream, say), and it is bounded (a million entries) for the store's whole life.
    fn end(&mut self) {
        self.state = Default::default();
        self.http = None;
    }
}

impl WasiView for Invocation {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for Invocation {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        let http = self
            .http
            .get_or_insert_with(|| WasiHttpState::new(&self.ctx, &self.id, self.depth));
        WasiHttpCtxView {
            ctx: &mut http.ctx,
            table: &mut self.table,
            hooks: &mut http.hooks,
        }
    }
}

/// Caps the linear memory of an instance, all its memories together, and remembers a
/// refusal, so an allocation failure (which a Rust guest turns into an `unreachable`
/// trap) is reported as `memory-limit`.
struct MemoryLimiter {
    max_bytes: usize,
    /// Bytes granted so far to all the store's memories (wasmtime asks for each memory
    /// alone, its initial size included).
    granted: usize,
    refused: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = (self.granted.saturating_sub(current)).saturating_add(desired);
        if total > self.max_bytes {
            self.refused = true;
            return Ok(false);
        }
        self.granted = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // The pool's per-table element cap is the real bound; this only honours the
        // table's own declared maximum.
        Ok(maximum.is_none_or(|m| desired <= m))
    }
}

impl Engine {
    /// Runs `event` through a fresh instance of `plugin`, counted and timed in the
    /// plugin's metrics whatever triggered it: the first invocation of a chain.
    pub async fn invoke(
        &self,
        plugin: &Plugin,
        ctx: Arc<PluginContext>,
        event: &Event,
    ) -> Result<Response, InvokeError> {
        self.invoke_in_chain(plugin, ctx, event, 0).await
    }

    /// [`Engine::invoke`] for an event the host made on a plugin's behalf, `depth`
    /// invocations into its chain.
    pub async fn invoke_in_chain(
        &self,
        plugin: &Plugin,
        ctx: Arc<PluginContext>,
        event: &Event,
        depth: u32,
    ) -> Result<Response, InvokeError> {
        let started = Instant::now();
        let outcome = self.invoke_fresh(plugin, ctx.clone(), event, depth).await;
        ctx.metrics.invocations.increment(1);
        ctx.metrics.duration.record(started.elapsed().as_secs_f64());
        if let Err(e) = &outcome {
            ctx.metrics.errors.count(e);
        }
        outcome
    }

    async fn invoke_fresh(
        &self,
        plugin: &Plugin,
        ctx: Arc<PluginContext>,
        event: &Event,
        depth: u32,
    ) -> Result<Response, InvokeError> {
        let Some(route) = plugin.handlers.route(event) else {
            return Err(InvokeError::UnsupportedTrigger(handler_interface(event)));
        };
        let limits = ctx.limits.clone();
        let handled = match route {
            Route::Legacy(export, params) => {
                self.call_fresh(plugin, ctx, Typed(export, params), depth)
                    .await?
                    .0
            }
            Route::Http(export, params) => answer(
                self.call_fresh(plugin, ctx, Typed(export, params), depth)
                    .await?,
            ),
            Route::Queue(export, params) => answer(
                self.call_fresh(plugin, ctx, Typed(export, params), depth)
                    .await?,
            ),
            Route::Topic(export, params) => answer(
                self.call_fresh(plugin, ctx, Typed(export, params), depth)
                    .await?,
            ),
            Route::Bus(export, params) => answer(
                self.call_fresh(plugin, ctx, Typed(export, params), depth)
                    .await?,
            ),
            Route::Schedule(export, params) => answer(
                self.call_fresh(plugin, ctx, Typed(export, params), depth)
                    .await?,
            ),
            Route::Task(export, params) => answer(
                self.call_fresh(plugin, ctx, Typed(export, params), depth)
                    .await?,
            ),
            Route::WasiHttp(handle, request) => {
                let call = super::wasi_http::Incoming {
                    handle,
                    request,
                    limits: limits.clone(),
                };
                Ok(self.call_fresh(plugin, ctx, call, depth).await??)
            }
        };
        let response = handled.map_err(|f| output_cap::failure(f.error, f.cause, &limits))?;
        output_cap::check(&response, &limits)?;
        Ok(response)
    }

    /// Calls `export`, found with [`Plugin::export`], of a fresh instance of `plugin`
    /// with `params`, under the limits of `ctx` and counted in its metrics as an
    /// invocation: how a trigger kind the host does not know calls its handler.
    pub async fn call<P, R>(
        &self,
        plugin: &Plugin,
        ctx: Arc<PluginContext>,
        export: Export<P, R>,
        params: P,
    ) -> Result<R, InvokeError>
    where
        P: ComponentNamedList + Lower + Send + Sync + 'static,
        R: ComponentNamedList + Lift + Send + Sync + 'static,
    {
        let started = Instant::now();
        let outcome = self
            .call_fresh(plugin, ctx.clone(), Typed(export, params), 0)
            .await;
        ctx.metrics.invocations.increment(1);
        ctx.metrics.duration.record(started.elapsed().as_secs_f64());
        if let Err(e) = &outcome {
            ctx.metrics.errors.count(e);
        }
        outcome
    }

    /// Makes `call` on a fresh instance of `plugin`, under the plugin's limits: what every
    /// trigger kind's invocation shares.
    async fn call_fresh<C: Call>(
        &self,
        plugin: &Plugin,
        ctx: Arc<PluginContext>,
        call: C,
        depth: u32,
    ) -> Result<C::Output, InvokeError> {
        let closed = |_| InvokeError::Instantiation("the host is shutting down".into());
        let _tenant_turn = ctx
            .concurrency
            .clone()
            .acquire_owned()
            .await
            .map_err(closed)?;

        let limits = ctx.limits.clone();
        let deadline = Instant::now() + Duration::from_millis(limits.timeout_ms);
        let id = self.invocation_id();
        let warm = ctx.warm.as_ref().and_then(|pool| pool.take(&plugin.hash));
        let (mut store, instance, slots, uses, stdout, stderr) = match warm {
            Some(mut warm) => {
                ctx.metrics.warm_starts.increment(1);
                warm.store.data_mut().begin(&ctx, &id, depth);
                let Warm {
                    store,
                    instance,
                    slots,
                    uses,
                    stdout,
                    stderr,
                    ..
                } = warm;
                (store, Some(instance), slots, uses, stdout, stderr)
            }
            None => {
                let slots = self
                    .inner
                    .slots
                    .clone()
                    .acquire_many_owned(plugin.slots.min(self.inner.limits.instance_slots))
                    .await
                    .map_err(closed)?;
                let Wasi {
                    ctx: wasi,
                    stdout,
                    stderr,
                } = ctx.wasi.take(self.inner.limits.captured_output_bytes);
                let mut store = Store::new(
                    &self.inner.wasmtime,
                    Invocation {
                        ctx: ctx.clone(),
                        id: id.clone(),
                        depth,
                        state: Default::default(),
                        wasi,
                        table: ResourceTable::new(),
                        http: None,
                        limiter: MemoryLimiter {
                            max_bytes: limits.memory_bytes(),
                            granted: 0,
                            refused: false,
                        },
                    },
                );
                store.limiter(|inv| &mut inv.limiter);
                ctx.metrics.cold_starts.increment(1);
                (store, None, slots, 0, stdout, stderr)
            }
        };
        // Declared before the run, so it is dropped after it: a run cut at its deadline
        // still holds its store (and the store its pool slot) until this function ends.
        let mut slots = Some(slots);
        let _running = self.running();
        store.set_epoch_deadline(1);
        let slice = Slice::new(
            self.inner.limits.inline_ticks,
            Duration::from_millis(self.inner.limits.epoch_tick_ms),
        );
        let ticks = slice.clone();
        store.epoch_deadline_callback(move |_| {
            Ok(if Instant::now() >= deadline {
                UpdateDeadline::Interrupt
            } else {
                ticks.tick()
            })
        });

        let started = Instant::now();
        let warming = ctx.warm.is_some() && instance.is_none();
        let (pre, run_ctx) = (plugin.pre.clone(), ctx.clone());
        // Owns everything, so it can move to the guest threads midway.
        let mut run: Pin<Box<dyn Future<Output = Ran<C::Output>> + Send>> = Box::pin(async move {
            let instance = match instance {
                Some(warm) => Ok(warm),
                None => {
                    let instantiating = Instant::now();
                    let made = pre.instantiate_async(&mut store).await;
                    run_ctx
                        .metrics
                        .instantiation
                        .record(instantiating.elapsed().as_secs_f64());
                    made
                }
            };
            match instance {
                Ok(instance) => (call.call(&mut store, instance).await, store, Some(instance)),
                Err(e) => (Err(e), store, None),
            }
        });
        // Here until it has run its inline time, then on the guest threads. Epochs stop
        // guest code; the timeouts stop a host call that outlives the deadline.
        let inline = std::future::poll_fn(|cx| {
            slice.resume();
            match run.as_mut().poll(cx) {
                Poll::Ready(ran) => Poll::Ready(Some(ran)),
                Poll::Pending if slice.wants_to_move() => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            }
        });
        let watch = slice.clone();
        let first = if ctx.runs_long.load(Ordering::Relaxed) {
            Ok(None)
        } else {
            tokio::time::timeout_at(deadline.into(), inline).await
        };
        let ran = match first {
            Err(_elapsed) => None,
            Ok(Some(ran)) => Some(ran),
            Ok(None) => self
                .inner
                .guests
                .finish(run, slice, &ctx.tenant, deadline)
                .await
                .map_err(InvokeError::Instantiation)?,
        };
        let ran_long = watch.ran_long();
        // A warm plugin's cold start that answered says nothing of how long its
        // invocations run (instantiating an interpreter image takes milliseconds; sending
        // the invocations after it to the guest threads put them in a Python plugin's
        // p99): its warm invocations decide. One that faulted does decide: a spinning
        // plugin's every invocation is a cold start (each timeout discards its instance),
        // and asking for warm instances must not keep it on the I/O threads.
        let faulted = ran.as_ref().is_none_or(|(outcome, ..)| outcome.is_err());
        // Written only when it changes: every invocation of the plugin reads it.
        if (!warming || faulted) && ctx.runs_long.load(Ordering::Relaxed) != ran_long {
            ctx.runs_long.store(ran_long, Ordering::Relaxed);
        }
        let (out, err) = (stdout.take(), stderr.take());
        let outcome = ran.map(|(outcome, mut store, instance)| {
            let refused = store.data().limiter.refused;
            match (&ctx.warm, instance, slots.take()) {
                // Only an instance that answered without a fault is kept: after a trap or
                // a memory refusal its state may be broken.
                (Some(pool), Some(instance), Some(slots)) if outcome.is_ok() && !refused => {
                    store.data_mut().end();
                    let warm = Warm {
                        store,
                        instance,
                        hash: plugin.hash.clone(),
                        uses: uses.saturating_add(1),
                        stdout,
                        stderr,
                        slots,
                        slot_count: plugin.slots.min(self.inner.limits.instance_slots),
                    };
                    pool.put(warm, &self.inner.warm);
                }
                _ => {
                    let data = store.into_data();
                    ctx.wasi.put(Wasi {
                        ctx: data.wasi,
                        stdout,
                        stderr,
                    });
                }
            }
            (outcome, refused)
        });
        super::log_gate::guest_output(&ctx, &id, &out, &err);
        tracing::debug!(tenant = %ctx.tenant, plugin = %ctx.plugin, invocation = %id,
            elapsed_us = started.elapsed().as_micros() as u64, "invocation finished");

        match outcome {
            // Past the deadline the store went with it; its WASI context is not reused.
            None => Err(InvokeError::Timeout {
                limit_ms: limits.timeout_ms,
            }),
            Some((Err(trap), memory_refused)) => Err(classify(trap, memory_refused, &limits, &err)),
            Some((Ok(results), _)) => Ok(results),
        }
    }
}

/// A typed export and its arguments: every handler of orquesta's own interfaces.
struct Typed<P, R>(Export<P, R>, P);

impl<P, R> Call for Typed<P, R>
where
    P: ComponentNamedList + Lower + Send + Sync + 'static,
    R: ComponentNamedList + Lift + Send + Sync + 'static,
{
    type Output = R;

    fn call<'a>(
        self,
        store: &'a mut Store<Invocation>,
        instance: Instance,
    ) -> Pin<Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>> {
        let Typed(export, params) = self;
        Box::pin(async move {
            let handle = instance
                .get_func(&mut *store, export.index())
                .ok_or_else(|| wasmtime::format_err!("the instance lacks the export"))?;
            // SAFETY: an `Export<P, R>` is type-checked against `P` and `R` when it is
            // found in the plugin's component, and its index resolves only in instances
            // of that component (`get_func` answers `None` otherwise).
            let handle = unsafe { TypedFunc::<P, R>::new_unchecked(handle) };
            handle.call_async(&mut *store, params).await
        })
    }
}

/// A 0.1.1 handler's answer as the host's result.
fn answer(
    (handled,): (Result<crate::bindings::events::Response, Failure>,),
) -> Result<Response, Failure> {
    handled.map(Into::into)
}

/// Names what went wrong inside the guest.
fn classify(
    err: wasmtime::Error,
    memory_refused: bool,
    limits: &Limits,
    stderr: &[u8],
) -> InvokeError {
    if memory_refused {
        return InvokeError::MemoryLimit {
            limit_mb: limits.memory_mb,
        };
    }
    let trap = err.downcast_ref::<Trap>().copied();
    match trap {
        Some(Trap::Interrupt) => {
            return InvokeError::Timeout {
                limit_ms: limits.timeout_ms,
            };
        }
        Some(Trap::StackOverflow) => return InvokeError::StackOverflow,
        _ if fault::shadow_stack_overflow(&err) => return InvokeError::StackOverflow,
        _ => {}
    }
    if let Some(status) = fault::exit_status(&err) {
        return InvokeError::Exited { status };
    }
    if let Some(message) = panic_message(&String::from_utf8_lossy(stderr)) {
        return InvokeError::Trap(message);
    }
    match trap {
        Some(trap) => InvokeError::Trap(trap.to_string()),
        // Not a trap but a host call's refusal while the guest ran (wasi:http traps a
        // guest whose headers pass their size cap): named by its cause.
        None if err.downcast_ref::<wasmtime::WasmBacktrace>().is_some() => {
            InvokeError::Trap(first_line(&err.root_cause().to_string()))
        }
        // Not a trap: instantiation failed (a missing slot, a bad initial memory size).
        None => InvokeError::Instantiation(first_line(&format!("{err:#}"))),
    }
}

/// Rust's panic hook writes `thread '..' panicked at FILE:LINE:COL:\nMESSAGE\nnote: ..`.
fn panic_message(stderr: &str) -> Option<String> {
    let start = stderr.find("panicked at ")?;
    let mut lines = stderr[start + "panicked at ".len()..].lines();
    let location = lines.next()?.trim_end_matches(':');
    let message: Vec<&str> = lines.take_while(|l| !l.starts_with("note:")).collect();
    Some(format!(
        "panicked at {location}: {}",
        message.join(" ").trim()
    ))
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_string()
}
