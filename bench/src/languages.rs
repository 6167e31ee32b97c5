//! Languages: the same greeting (`GET /hello?name=Ana` answering
//! `{"message":"Hello, Ana!"}`) as a Rust plugin (`plugins/bench`), a Python and a
//! TypeScript plugin (`bench/languages`, built with `orquesta build`'s pinned tools) and a
//! `wasi:http` component (`bench/wasi-hello`). Per language: the component's size, its
//! first compile, the resident memory one loaded plugin adds (loaded from the compile
//! cache, as a restarted host loads it), one invocation's p50/p99
//! (store + instantiate + call + drop; and on a warm instance), each measured in a child
//! process of its own so no language's memory is counted against another's; then HTTP
//! hello through one `orquesta serve` serving them all side by side (`wrk -t1 -c16`,
//! alternated rounds), the Rust plugin the reference.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use orquesta::engine::{Engine, EngineConfig, WarmSettings};
use orquesta::testing::TestPlugin;
use serde_json::{Value, json};

use crate::Options;
use crate::http::{Load, wrk};
use crate::report::{Row, Target, median, micros, percentile};
use crate::setup::{self, Process};

/// A language's hello, as the table names it, and its component's file name.
struct Hello {
    name: &'static str,
    file: &'static str,
}

const RUST: Hello = Hello {
    name: "Rust",
    file: "bench.wasm",
};
const PYTHON: Hello = Hello {
    name: "Python",
    file: "hello-py.wasm",
};
const JS: Hello = Hello {
    name: "TypeScript",
    file: "hello-ts.wasm",
};
const WASI_HTTP: Hello = Hello {
    name: "wasi:http (Rust)",
    file: "wasi_hello.wasm",
};

/// What the child process measures of one component.
#[derive(Debug)]
pub struct Probe {
    pub size_bytes: u64,
    pub compile_s: f64,
    /// Resident memory the loaded plugin added after one invocation.
    pub rss_loaded: u64,
    pub fresh_p50_us: f64,
    pub fresh_p99_us: f64,
    pub warm_p50_us: f64,
    pub warm_p99_us: f64,
}

/// Rounds of HTTP load per target, alternated.
const ROUNDS: usize = 3;
const ROUND: Duration = Duration::from_secs(6);
const CONNECTIONS: u32 = 16;

pub async fn run(opts: &Options) -> anyhow::Result<Vec<Row>> {
    let root = tempfile::tempdir()?;
    let plugins = root.path().join("plugins");
    std::fs::create_dir_all(&plugins)?;
    for (package, path) in ["bench", "wasi-hello"]
        .iter()
        .zip(setup::components(&["bench", "wasi-hello"])?)
    {
        std::fs::copy(
            &path,
            plugins.join(format!("{}.wasm", package.replace('-', "_"))),
        )?;
    }
    let mut languages = vec![RUST];
    let mut rows = Vec::new();
    if opts.smoke {
        // Building and compiling two interpreter images takes minutes in a debug build;
        // the e2e tests build, load and serve both already.
        eprintln!("  languages: Python and TypeScript are left out of the smoke run");
    } else {
        let builds = build_interpreted(&plugins)?.context(
            "the languages benchmark needs componentize-py and the JS tools (docs/PLUGINS.md): set ORQUESTA_COMPONENTIZE_PY and ORQUESTA_JS_TOOLS, or install them under target/ as .ci/run does",
        )?;
        for (hello, seconds) in builds {
            rows.push(Row::new(
                "languages",
                format!("{}: `orquesta build`", hello.name),
                seconds,
                "s",
            ));
            languages.push(hello);
        }
    }
    languages.push(WASI_HTTP);

    let invocations = opts.size(2_000, 20);
    let mut probes = Vec::new();
    for hello in &languages {
        let probe = probe_in_child(opts, &plugins.join(hello.file), invocations)?;
        probes.push(probe);
    }
    let rust = &probes[0];
    for (hello, probe) in languages.iter().zip(&probes) {
        let n = hello.name;
        rows.push(
            Row::new(
                "languages",
                format!("{n}: component"),
                probe.size_bytes as f64 / 1e6,
                "MB",
            )
            .against("Rust", rust.size_bytes as f64 / 1e6),
        );
        rows.push(
            Row::new(
                "languages",
                format!("{n}: first compile"),
                probe.compile_s,
                "s",
            )
            .against("Rust", rust.compile_s),
        );
        rows.push(
            Row::new(
                "languages",
                format!("{n}: RSS of one loaded plugin"),
                probe.rss_loaded as f64 / 1e6,
                "MB",
            )
            .against("Rust", rust.rss_loaded as f64 / 1e6),
        );
        for (what, value, reference) in [
            (
                "invocation p50, fresh",
                probe.fresh_p50_us,
                rust.fresh_p50_us,
            ),
            (
                "invocation p99, fresh",
                probe.fresh_p99_us,
                rust.fresh_p99_us,
            ),
            ("invocation p50, warm", probe.warm_p50_us, rust.warm_p50_us),
            ("invocation p99, warm", probe.warm_p99_us, rust.warm_p99_us),
        ] {
            rows.push(
                Row::new("languages", format!("{n}: {what}"), value, "us")
                    .against("Rust", reference),
            );
        }
    }
    rows.extend(http_side_by_side(opts, root.path(), &languages).await?);
    Ok(rows)
}

/// Builds the Python and TypeScript hellos into `plugins` with the pinned tools, timing
/// each; `None` when a tool is not installed.
fn build_interpreted(plugins: &Path) -> anyhow::Result<Option<Vec<(Hello, f64)>>> {
    let target = setup::workspace().join("target");
    let python = std::env::var_os(orquesta::python::TOOL_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| target.join("componentize-py/bin/componentize-py"));
    let js = std::env::var_os(orquesta::javascript::TOOLS_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| target.join("js-tools"));
    if orquesta::python::check_tool(&python).is_err() {
        return Ok(None);
    }
    if orquesta::javascript::check_tools(&orquesta::javascript::tools(Some(&js)), true).is_err() {
        return Ok(None);
    }
    let sources = setup::workspace().join("bench/languages");
    let started = Instant::now();
    orquesta::python::build(&orquesta::python::BuildOptions {
        app: sources.join("hello.py"),
        output: plugins.join(PYTHON.file),
        triggers: Vec::new(),
        tool: Some(python),
    })
    .context("building bench/languages/hello.py")?;
    let python_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    orquesta::javascript::build(&orquesta::javascript::BuildOptions {
        app: sources.join("hello.ts"),
        output: plugins.join(JS.file),
        triggers: Vec::new(),
        tools: Some(js),
    })
    .context("building bench/languages/hello.ts")?;
    let js_s = started.elapsed().as_secs_f64();
    Ok(Some(vec![(PYTHON, python_s), (JS, js_s)]))
}

/// Runs `orquesta-bench language-probe` on `component` twice: once to compile it into a
/// compile cache of its own (timed), once to load it from there and measure the rest,
/// so the compiler's own memory is not counted as the plugin's.
fn probe_in_child(opts: &Options, component: &Path, invocations: usize) -> anyhow::Result<Probe> {
    let cache = tempfile::tempdir()?;
    let run = |invocations: usize| -> anyhow::Result<Value> {
        let out = std::process::Command::new(&opts.exe)
            .arg("language-probe")
            .arg(component)
            .arg(cache.path())
            .arg(invocations.to_string())
            .output()
            .context("cannot start the probe")?;
        if !out.status.success() {
            bail!(
                "probing {} failed:\n{}",
                component.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        serde_json::from_slice(&out.stdout).context("the probe's answer")
    };
    let compiled = run(0)?;
    let v = run(invocations)?;
    let f = |v: &Value, k: &str| {
        v[k].as_f64()
            .with_context(|| format!("no {k} in the probe's answer: {v}"))
    };
    Ok(Probe {
        size_bytes: f(&v, "size_bytes")? as u64,
        compile_s: f(&compiled, "compile_s")?,
        rss_loaded: f(&v, "rss_loaded")? as u64,
        fresh_p50_us: f(&v, "fresh_p50_us")?,
        fresh_p99_us: f(&v, "fresh_p99_us")?,
        warm_p50_us: f(&v, "warm_p50_us")?,
        warm_p99_us: f(&v, "warm_p99_us")?,
    })
}

/// (child process) Loads `component` on an engine of its own with the compile cache
/// `cache`. With 0 `invocations`, compiles it into the empty cache and prints how long
/// that took; otherwise loads it from the cache and prints what else [`Probe`] holds,
/// as JSON.
pub async fn probe(component: &Path, cache: &Path, invocations: usize) -> anyhow::Result<()> {
    let bytes = std::fs::read(component)?;
    let size_bytes = bytes.len() as u64;
    let engine = Engine::new(EngineConfig {
        cache_dir: Some(cache.to_path_buf()),
        ..EngineConfig::default()
    })?;
    let pid = std::process::id();
    let before_load = setup::rss(pid)?.0;
    let started = Instant::now();
    let plugin = engine.load(bytes).await?;
    if invocations == 0 {
        println!(
            "{}",
            json!({ "compile_s": started.elapsed().as_secs_f64() })
        );
        return Ok(());
    }
    let loaded = setup::rss(pid)?.0.saturating_sub(before_load);
    let plugin = TestPlugin::new(engine, plugin);
    let event =
        json!({"type": "http", "method": "GET", "path": "/hello", "query": {"name": "Ana"}});
    // The harness's own store and files are not the plugin's: counted out.
    let sandbox = plugin.sandbox().await?;
    let before_invoke = setup::rss(pid)?.0;
    let answer = sandbox.invoke(event.clone()).await?;
    let body = answer["body"].to_string();
    if !body.contains("Hello, Ana!") {
        bail!("{} answered {answer}", component.display());
    }
    let rss_loaded = loaded + setup::rss(pid)?.0.saturating_sub(before_invoke);
    let (fresh_p50_us, fresh_p99_us) = time(&sandbox, &event, invocations).await?;
    let mut warm = plugin.sandbox().await?;
    warm.warm(WarmSettings {
        instances: 1,
        max_uses: u32::MAX,
        idle: Duration::from_secs(3600),
    });
    warm.invoke(event.clone()).await?;
    let (warm_p50_us, warm_p99_us) = time(&warm, &event, invocations).await?;
    let probe = json!({
        "size_bytes": size_bytes,
        "rss_loaded": rss_loaded,
        "fresh_p50_us": fresh_p50_us,
        "fresh_p99_us": fresh_p99_us,
        "warm_p50_us": warm_p50_us,
        "warm_p99_us": warm_p99_us,
    });
    println!("{probe}");
    Ok(())
}

/// p50 and p99 of `invocations` invocations of `event`, in µs.
async fn time(
    sandbox: &orquesta::testing::Sandbox,
    event: &Value,
    invocations: usize,
) -> anyhow::Result<(f64, f64)> {
    let mut samples = Vec::with_capacity(invocations);
    for _ in 0..invocations {
        let started = Instant::now();
        sandbox.invoke(event.clone()).await?;
        samples.push(started.elapsed());
    }
    Ok((
        micros(percentile(&mut samples, 50.0)),
        micros(percentile(&mut samples, 99.0)),
    ))
}

/// A tenant serving `file` at `GET /hello`, warm or not.
fn tenant(file: &str, warm: bool) -> String {
    let warm = if warm {
        format!("warm = {{ instances = {CONNECTIONS} }}\n")
    } else {
        String::new()
    };
    format!(
        "[limits]\nconcurrency = 64\n\n[plugins.hello]\nsource = \"{file}\"\n{warm}\n[[routes]]\nmethod = \"GET\"\npath = \"/hello\"\nplugin = \"hello\"\n"
    )
}

/// HTTP hello through one `orquesta serve`, every language side by side: the Rust
/// plugin fresh (as it is served by default), the others fresh and warm.
async fn http_side_by_side(
    opts: &Options,
    root: &Path,
    languages: &[Hello],
) -> anyhow::Result<Vec<Row>> {
    let tenants = root.join("tenants");
    std::fs::create_dir_all(&tenants)?;
    std::fs::write(root.join("admin-token"), "languages-bench")?;
    let mut targets: Vec<(String, String)> = Vec::new();
    for hello in languages {
        let slug = hello
            .name
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_lowercase();
        let mut kinds = vec![("fresh", false)];
        if hello.name != RUST.name {
            kinds.push(("warm", true));
        }
        for (kind, warm) in kinds {
            let name = format!("{slug}-{kind}");
            std::fs::write(
                tenants.join(format!("{name}.toml")),
                tenant(hello.file, warm),
            )?;
            targets.push((format!("{} {kind}", hello.name), name));
        }
    }
    let config = orquesta::server::HostConfig {
        listen: ([127, 0, 0, 1], 0).into(),
        data_dir: root.join("data"),
        plugin_dir: root.join("plugins"),
        tenant_dir: tenants,
        admin_token: Some(orquesta::tenants::SecretRef {
            env: None,
            file: Some(root.join("admin-token")),
        }),
        ..orquesta::server::HostConfig::default()
    };
    let host_file = setup::write_host_file(root, &config)?;
    let host = Process::serve(&host_file)?;
    let url = |tenant: &str| format!("{}/t/{tenant}/hello?name=Ana", host.url);
    // Each answers the greeting (and compiles, once) before any is timed.
    let client = setup::client()?;
    for (_, tenant) in &targets {
        let answer = client.get(url(tenant)).send().await?;
        let status = answer.status();
        let body = answer.text().await?;
        if !status.is_success() || body != "{\"message\":\"Hello, Ana!\"}" {
            bail!("{tenant}: {status} {body}");
        }
    }
    let mut rows = Vec::new();
    if opts.smoke {
        return Ok(rows);
    }
    for (_, tenant) in &targets {
        wrk(&url(tenant), Duration::from_secs(2), CONNECTIONS, None)?;
    }
    let mut loads: Vec<Vec<Load>> = targets.iter().map(|_| Vec::new()).collect();
    for _ in 0..ROUNDS {
        for ((_, tenant), loads) in targets.iter().zip(&mut loads) {
            loads.push(wrk(&url(tenant), ROUND, CONNECTIONS, None)?);
        }
    }
    let rss = setup::rss(host.pid())?.0;
    let med =
        |loads: &[Load], f: fn(&Load) -> f64| median(&mut loads.iter().map(f).collect::<Vec<_>>());
    // Each ratio within its round (drift hits both sides alike), the median shown.
    let rust = &loads[0];
    for ((name, _), ours) in targets.iter().zip(&loads) {
        let ratio = median(
            &mut ours
                .iter()
                .zip(rust)
                .map(|(o, r)| o.rps / r.rps)
                .collect::<Vec<_>>(),
        );
        let rps = med(ours, |l| l.rps);
        let mut row = Row::new(
            "languages",
            format!("{name}: HTTP hello, {CONNECTIONS} connections"),
            rps,
            "req/s",
        )
        .against("Rust fresh", rps / ratio);
        let interpreted = name.starts_with(PYTHON.name) || name.starts_with(JS.name);
        if interpreted && name.ends_with("warm") {
            row = row.target(Target::AtLeast(rps / ratio / 3.0));
        }
        rows.push(row);
        let mut p99 = Row::new(
            "languages",
            format!("{name}: HTTP p99"),
            med(ours, |l| l.p99_ms),
            "ms",
        )
        .against("Rust fresh", med(rust, |l| l.p99_ms));
        if interpreted && name.ends_with("warm") {
            p99 = p99.target(Target::AtMost(10.0));
        }
        rows.push(Row::new(
            "languages",
            format!("{name}: HTTP p50"),
            med(ours, |l| l.p50_ms),
            "ms",
        ));
        rows.push(p99);
    }
    rows.push(Row::new(
        "languages",
        "the host serving them all: RSS after the rounds",
        rss as f64 / 1e6,
        "MB",
    ));
    Ok(rows)
}
