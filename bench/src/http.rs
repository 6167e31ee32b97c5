//! HTTP: the `bench` plugin's greeting through the whole service (routing, API key,
//! usage plan, metrics) in an `orquesta serve` process, against (a) a native axum handler
//! doing the same work in a process of its own and (b) the same greeting as a
//! `wasi:http` component under `wasmtime serve`: same client (`wrk`, 1 thread, 64
//! connections, 10 s), same machine, rounds alternated, medians reported.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::Options;
use crate::report::{Row, Target, median};
use crate::setup::{self, Process};

pub(crate) const KEY: &str = "bench-key";
/// Rounds per target, alternated; on a shared machine speed drifts between rounds, so
/// each ratio is taken within a round and the median of the rounds reported.
const ROUNDS: usize = 5;
const ROUND: Duration = Duration::from_secs(6);

/// The tenant of the HTTP benchmark: one keyed route with a usage plan that never limits.
pub fn tenant() -> String {
    format!(
        r#"[limits]
concurrency = 1024

[plugins.bench]
source = "bench.wasm"

[[routes]]
method = "GET"
path = "/hello"
plugin = "bench"
auth = "api_key"

[usage_plans.open]
rate_per_second = 100000000
burst = 100000000

[[api_keys]]
name = "bench"
hash = "sha256:{}"
usage_plan = "open"
"#,
        orquesta::triggers::http::auth::sha256_hex(KEY)
    )
}

pub(crate) struct Load {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

pub async fn run(opts: &Options) -> anyhow::Result<Vec<Row>> {
    let root = tempfile::tempdir()?;
    let config = setup::write_layout(root.path(), &["bench"], &[("bench", tenant())], None)?;
    let host_file = setup::write_host_file(root.path(), &config)?;
    let host = Process::serve(&host_file)?;
    let native = Process::spawn(&opts.exe, &["native"])?;
    let hello = |base: &str| format!("{base}/t/bench/hello?name=Ana");
    if opts.smoke {
        // No load generator: each target answers correctly, timed for show only.
        let mut rows = Vec::new();
        for (name, url) in [
            ("orquesta", hello(&host.url)),
            ("native", hello(&native.url)),
        ] {
            let rps = smoke_load(&url, 100).await?;
            rows.push(Row::new(
                "http",
                format!("{name} smoke, sequential"),
                rps,
                "req/s",
            ));
        }
        return Ok(rows);
    }
    let wasmtime = wasmtime_cli()?;
    let component = setup::components(&["wasi-hello"])?.remove(0);
    let port = free_port()?;
    let serve = Process::spawn_program(
        &wasmtime,
        &[
            "serve",
            // Rust's std imports wasi:cli; `serve` grants only the proxy world without it.
            "-Scli=y",
            "--addr",
            &format!("127.0.0.1:{port}"),
            &component.to_string_lossy(),
        ],
        "Serving HTTP on ",
    )?;
    let serve_url = format!("http://127.0.0.1:{port}/hello?name=Ana");
    // Warm-up, then alternating rounds so drift hits every target alike.
    for url in [hello(&host.url), hello(&native.url), serve_url.clone()] {
        wrk(&url, Duration::from_secs(2), 64, None)?;
    }
    let mut ours = Vec::new();
    let mut natives = Vec::new();
    let mut serves = Vec::new();
    for _ in 0..ROUNDS {
        ours.push(wrk(&hello(&host.url), ROUND, 64, None)?);
        natives.push(wrk(&hello(&native.url), ROUND, 64, None)?);
        serves.push(wrk(&serve_url, ROUND, 64, None)?);
    }
    let med =
        |loads: &[Load], f: fn(&Load) -> f64| median(&mut loads.iter().map(f).collect::<Vec<_>>());
    let ratio = |refs: &[Load]| {
        median(
            &mut ours
                .iter()
                .zip(refs)
                .map(|(o, r)| o.rps / r.rps)
                .collect::<Vec<_>>(),
        )
    };
    let rps = med(&ours, |l| l.rps);
    // The reference figure shown is the one the median ratio implies.
    let (native_rps, serve_rps) = (rps / ratio(&natives), rps / ratio(&serves));
    drop(serve);
    drop(host);
    drop(native);
    Ok(vec![
        Row::new(
            "http",
            "hello through the full stack, 64 connections",
            rps,
            "req/s",
        )
        .against("wasmtime serve", serve_rps)
        .target(Target::AtLeast(serve_rps)),
        Row::new(
            "http",
            "hello through the full stack, 64 connections",
            rps,
            "req/s",
        )
        .against("native axum", native_rps)
        .target(Target::AtLeast(native_rps / 2.0)),
        Row::new("http", "p50 latency", med(&ours, |l| l.p50_ms), "ms")
            .against("native axum", med(&natives, |l| l.p50_ms)),
        Row::new("http", "p99 latency", med(&ours, |l| l.p99_ms), "ms")
            .against("wasmtime serve", med(&serves, |l| l.p99_ms))
            .target(Target::AtMost(5.0)),
    ])
}

async fn smoke_load(url: &str, n: usize) -> anyhow::Result<f64> {
    let client = setup::client()?;
    let started = Instant::now();
    for _ in 0..n {
        let answer = client.get(url).header("x-api-key", KEY).send().await?;
        let status = answer.status();
        let body = answer.text().await?;
        if !status.is_success() || body != "{\"message\":\"Hello, Ana!\"}" {
            bail!("{url}: {status} {body}");
        }
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `wrk` for `duration` over `connections`, with a Lua `script` if given: requests/s and
/// the 50th and 99th latency percentiles.
pub(crate) fn wrk(
    url: &str,
    duration: Duration,
    connections: u32,
    script: Option<&Path>,
) -> anyhow::Result<Load> {
    let mut command = Command::new("wrk");
    command
        .args(["-t1", &format!("-c{connections}"), "--latency"])
        .arg(format!("-d{}s", duration.as_secs()))
        .args(["-H", &format!("x-api-key: {KEY}")]);
    if let Some(script) = script {
        command.arg("-s").arg(script);
    }
    let out = command
        .arg(url)
        .output()
        .context("cannot run wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || text.contains("Non-2xx") {
        bail!("wrk {url} failed or got errors:\n{text}");
    }
    let field = |label: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(label).map(|v| v.trim().to_string()))
    };
    let rps = field("Requests/sec:")
        .and_then(|v| v.parse::<f64>().ok())
        .with_context(|| format!("no Requests/sec in wrk's output:\n{text}"))?;
    let latency = |p: &str| {
        field(p)
            .and_then(|v| millis(&v))
            .with_context(|| format!("no {p} latency in wrk's output:\n{text}"))
    };
    Ok(Load {
        rps,
        p50_ms: latency("50%")?,
        p99_ms: latency("99%")?,
    })
}

/// wrk's `1.23ms` / `456.00us` / `1.02s` in milliseconds.
fn millis(text: &str) -> Option<f64> {
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * factor)
}

/// `wasmtime` 48 (the version orquesta embeds): from `ORQUESTA_BENCH_WASMTIME`, the
/// PATH, or installed with `cargo install` under `target/bench-tools` on first use.
fn wasmtime_cli() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("ORQUESTA_BENCH_WASMTIME") {
        return Ok(PathBuf::from(path));
    }
    let tools = setup::workspace().join("target/bench-tools");
    let installed = tools.join("bin/wasmtime");
    for candidate in [installed.clone(), PathBuf::from("wasmtime")] {
        if version_ok(&candidate) {
            return Ok(candidate);
        }
    }
    eprintln!(
        "installing wasmtime-cli 48.0.8 under {} (once; takes a while)",
        tools.display()
    );
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "install",
            "wasmtime-cli",
            "--version",
            "48.0.8",
            "--locked",
            "--root",
        ])
        .arg(&tools)
        .status()?;
    if !status.success() || !version_ok(&installed) {
        bail!("cannot install wasmtime-cli 48.0.8");
    }
    Ok(installed)
}

fn version_ok(program: &Path) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("48."))
}

// ---- the native reference -------------------------------------------------------------

/// The same work as the service does for the plugin's route, natively: match the route,
/// check the API key's hash, take a token from a rate limiter, count the request and
/// its latency in Prometheus metrics, and answer the greeting as JSON.
pub async fn serve_native() -> anyhow::Result<()> {
    use axum::extract::{Query, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use governor::{Quota, RateLimiter};
    use std::num::NonZeroU32;

    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
    let quota = Quota::per_second(NonZeroU32::new(100_000_000).unwrap_or(NonZeroU32::MIN));
    let limiter = Arc::new(RateLimiter::direct(quota));
    let hash = orquesta::triggers::http::auth::sha256_hex(KEY);
    type AppState = (Arc<governor::DefaultDirectRateLimiter>, String);
    async fn hello(
        State((limiter, hash)): State<AppState>,
        headers: HeaderMap,
        Query(q): Query<std::collections::BTreeMap<String, String>>,
    ) -> axum::response::Response {
        let started = Instant::now();
        let key = headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if orquesta::triggers::http::auth::sha256_hex(key) != hash {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        if limiter.check().is_err() {
            return StatusCode::TOO_MANY_REQUESTS.into_response();
        }
        let name = q.get("name").map_or("world", String::as_str);
        let body = serde_json::json!({ "message": format!("Hello, {name}!") });
        let labels = [
            ("tenant", "bench".to_string()),
            ("route", "/hello".to_string()),
        ];
        metrics::counter!("bench_requests_total", &labels).increment(1);
        metrics::histogram!("bench_request_seconds", &labels)
            .record(started.elapsed().as_secs_f64());
        axum::Json(body).into_response()
    }
    let app = axum::Router::new()
        .route("/t/bench/hello", axum::routing::get(hello))
        .route(
            "/metrics",
            axum::routing::get(move || {
                let r = recorder.clone();
                async move { r.render() }
            }),
        )
        .with_state((limiter, hash));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("native listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
