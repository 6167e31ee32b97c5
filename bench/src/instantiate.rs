//! Instantiation: a fresh `Store`, instantiation, one call and the drop of the trivial
//! `bench` plugin, through `Engine::invoke` exactly as every trigger calls it, as p50 /
//! p99 of one caller and calls/s of 64 callers on 2 worker threads. The same run with
//! the pooling allocator untuned (nothing kept resident) is the before; a native Rust
//! function doing the plugin's work is the floor.

use std::sync::Arc;
use std::time::{Duration, Instant};

use orquesta::bindings::handler::{Event, ScheduledTick};
use orquesta::capabilities::{Backends, Capabilities, Grants};
use orquesta::engine::{Engine, EngineConfig, EngineLimits, Limits, Plugin, PluginContext};

use crate::report::{Row, Target, micros, percentile};
use crate::{Options, setup};

pub async fn run(opts: &Options) -> anyhow::Result<Vec<Row>> {
    let wasm = setup::components(&["bench"])?.remove(0);
    let bytes = std::fs::read(&wasm)?;
    let calls = opts.size(50_000, 300);
    let seconds = if opts.smoke { 0.3 } else { 5.0 };

    let untuned = EngineLimits {
        keep_resident_bytes: 0,
        pagemap_scan: false,
        ..EngineLimits::default()
    };
    let mut rows = Vec::new();
    let native = native_call(calls);
    let mut results = Vec::new();
    for (name, limits) in [
        ("untuned pool", untuned),
        ("tuned pool", EngineLimits::default()),
    ] {
        let engine = Engine::new(EngineConfig {
            cache_dir: None,
            limits,
            ..EngineConfig::default()
        })?;
        let plugin = engine.load(bytes.clone()).await?;
        let ctx = context();
        let (p50, p99) = latencies(&engine, &plugin, &ctx, calls).await?;
        let rate = throughput(engine.clone(), plugin.clone(), ctx.clone(), seconds)?;
        results.push((name, p50, p99, rate));
    }
    let (_, before_p50, before_p99, before_rate) = results[0];
    let (_, p50, p99, rate) = results[1];
    rows.push(
        Row::new(
            "instantiation",
            "store + instantiate + call + drop, p50",
            micros(p50),
            "us",
        )
        .against("untuned pool", micros(before_p50))
        .target(Target::AtMost(10.0)),
    );
    rows.push(
        Row::new(
            "instantiation",
            "store + instantiate + call + drop, p99",
            micros(p99),
            "us",
        )
        .against("untuned pool", micros(before_p99)),
    );
    rows.push(
        Row::new(
            "instantiation",
            "calls/s, 2 workers, 64 callers",
            rate,
            "calls/s",
        )
        .against("untuned pool", before_rate),
    );
    rows.push(
        Row::new(
            "instantiation",
            "p50 over a native call of the same work",
            micros(p50),
            "us",
        )
        .against("native fn", micros(native)),
    );
    Ok(rows)
}

fn context() -> Arc<PluginContext> {
    // 64 callers at once must not queue on the tenant's own cap.
    let limits = Limits {
        concurrency: 1024,
        ..Limits::default()
    };
    Arc::new(PluginContext::new(
        "bench",
        "bench",
        limits,
        Capabilities {
            config: Default::default(),
            secrets: Default::default(),
            grants: Grants::default(),
            backends: Backends::unavailable(),
        },
    ))
}

/// A tick, which the plugin answers with nothing: the call itself is trivial.
fn event() -> Event {
    Event::Schedule(ScheduledTick {
        schedule: "bench".into(),
        scheduled_at: 0,
        input: "{}".into(),
    })
}

/// p50 and p99 of one caller's invocations, after a warm-up, on a thread of its own
/// (a current-thread runtime: no hops between cores). The median of five rounds' p50s
/// and p99s, which steadies a shared virtual machine's drift.
async fn latencies(
    engine: &Engine,
    plugin: &Plugin,
    ctx: &Arc<PluginContext>,
    calls: usize,
) -> anyhow::Result<(Duration, Duration)> {
    let (engine, plugin, ctx) = (engine.clone(), plugin.clone(), ctx.clone());
    let thread = std::thread::spawn(move || -> anyhow::Result<(Duration, Duration)> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let event = event();
            for _ in 0..calls / 10 {
                engine.invoke(&plugin, ctx.clone(), &event).await?;
            }
            let (mut p50s, mut p99s) = (Vec::new(), Vec::new());
            for _ in 0..5 {
                let mut samples = Vec::with_capacity(calls / 5);
                for _ in 0..calls / 5 {
                    let started = Instant::now();
                    engine.invoke(&plugin, ctx.clone(), &event).await?;
                    samples.push(started.elapsed());
                }
                p50s.push(percentile(&mut samples, 50.0));
                p99s.push(percentile(&mut samples, 99.0));
            }
            Ok((percentile(&mut p50s, 50.0), percentile(&mut p99s, 50.0)))
        })
    });
    thread
        .join()
        .map_err(|_| anyhow::anyhow!("the latency thread panicked"))?
}

/// Calls/s of 64 tasks invoking in a loop on a 2-worker runtime for `seconds`.
fn throughput(
    engine: Engine,
    plugin: Plugin,
    ctx: Arc<PluginContext>,
    seconds: f64,
) -> anyhow::Result<f64> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let done = std::thread::spawn(move || {
        runtime.block_on(async move {
            let until = Instant::now() + Duration::from_secs_f64(seconds);
            let mut tasks = Vec::new();
            for _ in 0..64 {
                let (engine, plugin, ctx) = (engine.clone(), plugin.clone(), ctx.clone());
                tasks.push(tokio::spawn(async move {
                    let event = event();
                    let mut n = 0u64;
                    while Instant::now() < until {
                        if engine.invoke(&plugin, ctx.clone(), &event).await.is_ok() {
                            n += 1;
                        }
                    }
                    n
                }));
            }
            let started = Instant::now();
            let mut total = 0;
            for t in tasks {
                total += t.await.unwrap_or(0);
            }
            total as f64 / started.elapsed().as_secs_f64()
        })
    });
    done.join()
        .map_err(|_| anyhow::anyhow!("the throughput runtime panicked"))
}

/// The same trivial call as a native Rust function through the same async machinery
/// (a boxed future awaited on the same runtime): the floor any sandbox is compared with.
/// Median per call.
fn native_call(calls: usize) -> Duration {
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().build();
        let Ok(runtime) = runtime else {
            return Duration::ZERO;
        };
        runtime.block_on(async {
            let mut samples = Vec::with_capacity(calls);
            for _ in 0..calls {
                let started = Instant::now();
                let call: std::pin::Pin<Box<dyn std::future::Future<Output = Event> + Send>> =
                    Box::pin(async { event() });
                std::hint::black_box(call.await);
                samples.push(started.elapsed());
            }
            percentile(&mut samples, 50.0)
        })
    });
    thread.join().unwrap_or(Duration::ZERO)
}
