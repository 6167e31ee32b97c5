//! Subcommands. Each returns an exit code: 0 success, 1 a plugin or test failed,
//! 2 the input was refused (bad file, bad config, bad event).

mod deploy;

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, anyhow, bail};
use clap::{Parser, Subcommand, ValueEnum};
use orquesta::capabilities::{Backends, Capabilities, Grants, HostResources, TenantResources};
use orquesta::engine::{Engine, EngineConfig, Limits, PluginContext};
use orquesta::event::{EventJson, response_to_json};
use orquesta::server::HostConfig;
use orquesta::store::Store;
use orquesta::tenants::TenantConfig;
use orquesta::testing::TestPlugin;
use orquesta::testing::fixtures::FixtureFile;
use orquesta::testing::workflow_fixtures::WorkflowFixtures;

pub const EXIT_FAILED: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "orquesta",
    version,
    about = "A self-hosted WebAssembly plugin host for business flows"
)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human, env = "ORQUESTA_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

/// What `test-pattern` tests.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum PatternKind {
    /// A bus rule's EventBridge event pattern.
    EventPattern,
    /// A subscription's SNS filter policy on message attributes.
    FilterPolicy,
    /// A subscription's SNS filter policy on the message body.
    FilterPolicyBody,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DeliveryStateArg {
    /// Failed past their retry policy (kept 4 days).
    Failed,
    /// Not yet made.
    Pending,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one invocation of a plugin and print its result as JSON.
    Invoke {
        /// The plugin component (.wasm).
        plugin: PathBuf,
        /// The event as JSON: a file, or `-` for standard input.
        #[arg(long)]
        event: String,
        /// A tenant file giving the plugin's config, secrets, grants and limits.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Which of the tenant's plugins this is (default: the one whose source has the
        /// same file name, or the only one).
        #[arg(long = "plugin")]
        plugin_name: Option<String>,
        /// Where the embedded store and compiled plugins are kept.
        #[arg(long, default_value = ".orquesta", env = "ORQUESTA_DATA_DIR")]
        data_dir: PathBuf,
    },
    /// Run a plugin (`.wasm`) or a workflow definition (`.json`) against a fixtures
    /// file, in isolation: a workflow's Task results are scripted in the fixtures.
    Test {
        /// The plugin component, or the state machine's ASL definition.
        target: PathBuf,
        fixtures: PathBuf,
    },
    /// Validate a tenant file as the service loads it: the file and the files it names
    /// (workflow definitions, JWKS, init SQL), its plugins in the plugin directory, its
    /// secrets resolved.
    Check {
        file: PathBuf,
        /// The host config whose plugin directory holds the tenant's plugins (default:
        /// `.orquesta/plugins`).
        #[arg(long, env = "ORQUESTA_CONFIG")]
        config: Option<PathBuf>,
        /// The plugin directory, in place of the host config's.
        #[arg(long)]
        plugin_dir: Option<PathBuf>,
        /// Leave out what only the serving machine has: secrets (environment variables,
        /// secret files, database URLs from them) and the plugin directory.
        #[arg(long)]
        skip_environment: bool,
    },
    /// Run the HTTP service: tenants and plugins from watched directories.
    Serve {
        /// The host config (TOML). Without it, defaults: 127.0.0.1:8080, data in .orquesta/.
        #[arg(long, env = "ORQUESTA_CONFIG")]
        config: Option<PathBuf>,
        /// Overrides the config's listen address (port 0 picks a free port).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Overrides the config's store URL (`sqlite://PATH`, `postgres://...`).
        #[arg(long, env = "ORQUESTA_STORE_URL", hide_env_values = true)]
        store: Option<String>,
        /// Overrides the config's `advertise`: where other hosts and operators reach this
        /// one, as the host registry lists it (a pod's address, from the environment).
        #[arg(long, env = "ORQUESTA_ADVERTISE")]
        advertise: Option<String>,
    },
    /// Put a file into a tenant's blob bucket on this host's store, as the admin API's
    /// `PUT .../blobs/BUCKET/KEY` does on a running one: the objects a flow reads (a
    /// client's field mappings) before the service starts.
    BlobPut {
        tenant: String,
        bucket: String,
        key: String,
        /// The file to store.
        file: PathBuf,
        /// The host config whose store and `[blobs]` say where blobs live (default:
        /// files under `.orquesta`).
        #[arg(long, env = "ORQUESTA_CONFIG")]
        config: Option<PathBuf>,
        /// Overrides the config's store URL, as `serve --store` does.
        #[arg(long, env = "ORQUESTA_STORE_URL", hide_env_values = true)]
        store: Option<String>,
        /// Leave an object that exists already as it is.
        #[arg(long)]
        if_absent: bool,
    },
    /// Test an event pattern or SNS filter policy against an event, offline, as
    /// EventBridge's TestEventPattern and the admin API's `POST /test-event-pattern` do:
    /// prints `{"result": true|false}`; exits 0 when it matches, 1 when not, 2 when the
    /// pattern or event is refused.
    TestPattern {
        /// The pattern: a file, `-` for standard input, or the JSON itself (`{...}`).
        pattern: String,
        /// The event (an EventBridge event; a policy's message attributes or body): a
        /// file, `-`, or the JSON itself.
        event: String,
        #[arg(long, value_enum, default_value_t = PatternKind::EventPattern)]
        kind: PatternKind,
    },
    /// List a tenant's failed (default) or pending topic and bus deliveries from the
    /// host's store, as the admin API's `GET /tenants/T/deliveries` does on a running
    /// host: prints `{"deliveries": [...], "next_after": N}` (JSON), oldest first.
    Deliveries {
        tenant: String,
        #[arg(long, value_enum, default_value_t = DeliveryStateArg::Failed)]
        state: DeliveryStateArg,
        /// Only deliveries after this `seq` (the previous page's `next_after`).
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// How many at most (1-1000).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        /// The host config whose store (or data directory) holds the deliveries
        /// (default: `.orquesta`).
        #[arg(long, env = "ORQUESTA_CONFIG")]
        config: Option<PathBuf>,
        /// Overrides the config's store URL (`sqlite://PATH`, `postgres://...`).
        #[arg(long, env = "ORQUESTA_STORE_URL", hide_env_values = true)]
        store: Option<String>,
    },
    /// Build a Python plugin (`app.py`) into a component with componentize-py, or a
    /// TypeScript/JavaScript one (`app.ts`, `app.js`) with esbuild and componentize-js
    /// (docs/PLUGINS.md): the SDK and the contract come with orquesta; the app's folder
    /// is on its import path.
    Build {
        /// The app module (`.py`; `.ts`, `.mts`, `.js`, `.mjs`, `.tsx`, `.jsx`).
        app: PathBuf,
        /// The component to write.
        #[arg(short, long, default_value = "app.wasm")]
        output: PathBuf,
        /// A trigger kind to export a handler for (repeatable); default: each
        /// `@orquesta.on_KIND` in the app.
        #[arg(long = "trigger")]
        triggers: Vec<String>,
        /// The componentize-py executable (default: $ORQUESTA_COMPONENTIZE_PY, then PATH).
        #[arg(long)]
        componentize_py: Option<PathBuf>,
        /// For a TypeScript/JavaScript app: the folder whose `node_modules/.bin` holds
        /// esbuild and componentize-js (default: $ORQUESTA_JS_TOOLS, then PATH).
        #[arg(long)]
        js_tools: Option<PathBuf>,
    },
    /// Deploy plugins (`.wasm`, named by the file's stem) and tenant files (`.toml`) to a
    /// running host through its admin API; the host records them in its store, and every
    /// host sharing it serves them within a couple of seconds. Plugins go first.
    Deploy {
        /// The components and tenant files.
        files: Vec<PathBuf>,
        /// Also delete these tenants (the host admin token only).
        #[arg(long = "delete-tenant", value_name = "TENANT")]
        delete_tenants: Vec<String>,
        /// The host's base URL.
        #[arg(long, env = "ORQUESTA_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// The host admin token, or a tenant credential with the `deploy` scope.
        #[arg(long, env = "ORQUESTA_ADMIN_TOKEN", hide_env_values = true)]
        token: String,
        /// Deploy as this tenant's credential: plugins go to the tenant's own route.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Print the `sha256:` hash of an API key or admin credential, for `[[api_keys]]` or
    /// `[[admin_credentials]]` in a tenant file.
    HashKey {
        /// The key; read from standard input when absent, so it stays out of shell history.
        key: Option<String>,
    },
}

pub fn init_logging(cli: &Cli) {
    // `test` prints a report on stdout; plugin chatter would bury it.
    let default = match cli.command {
        Command::Test { .. } => "warn",
        _ => "info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("ORQUESTA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        // Escaped fields: a plugin's text cannot forge a line (JSON escapes its own).
        LogFormat::Human => builder
            .fmt_fields(orquesta::log_format::human_fields())
            .init(),
        LogFormat::Json => builder.json().init(),
    }
}

pub async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Invoke {
            plugin,
            event,
            config,
            plugin_name,
            data_dir,
        } => {
            invoke(
                &plugin,
                &event,
                config.as_deref(),
                plugin_name.as_deref(),
                &data_dir,
            )
            .await
        }
        Command::Test { target, fixtures } => {
            if target.extension().is_some_and(|e| e == "json") {
                test_workflow(&target, &fixtures).await
            } else {
                test(&target, &fixtures).await
            }
        }
        Command::Check {
            file,
            config,
            plugin_dir,
            skip_environment,
        } => check(&file, config.as_deref(), plugin_dir, skip_environment).await,
        Command::Serve {
            config,
            listen,
            store,
            advertise,
        } => serve(config.as_deref(), listen, store, advertise).await,
        Command::HashKey { key } => hash_key(key),
        Command::Deploy {
            files,
            delete_tenants,
            url,
            token,
            tenant,
        } => {
            deploy::deploy(deploy::DeployArgs {
                files,
                delete_tenants,
                url,
                token,
                tenant,
            })
            .await
        }
        Command::Build {
            app,
            output,
            triggers,
            componentize_py,
            js_tools,
        } => {
            if orquesta::javascript::is_js(&app) {
                build_js(app, output, triggers, js_tools)
            } else {
                build_python(app, output, triggers, componentize_py)
            }
        }
        Command::TestPattern {
            pattern,
            event,
            kind,
        } => test_pattern(&pattern, &event, kind),
        Command::BlobPut {
            tenant,
            bucket,
            key,
            file,
            config,
            store,
            if_absent,
        } => {
            let to = BlobTarget {
                tenant: &tenant,
                bucket: &bucket,
                key: &key,
            };
            blob_put(to, &file, config.as_deref(), store, if_absent).await
        }
        Command::Deliveries {
            tenant,
            state,
            after,
            limit,
            config,
            store,
        } => deliveries(&tenant, state, after, limit, config.as_deref(), store).await,
    }
}

fn build_python(
    app: PathBuf,
    output: PathBuf,
    triggers: Vec<String>,
    tool: Option<PathBuf>,
) -> ExitCode {
    let options = orquesta::python::BuildOptions {
        app,
        output,
        triggers,
        tool,
    };
    let started = std::time::Instant::now();
    let built = orquesta::python::build(&options).map_err(|e| {
        let failed = matches!(e, orquesta::python::BuildError::Failed { .. });
        (e.to_string(), failed)
    });
    report_build(&options.output, started, built)
}

fn build_js(
    app: PathBuf,
    output: PathBuf,
    triggers: Vec<String>,
    tools: Option<PathBuf>,
) -> ExitCode {
    let options = orquesta::javascript::BuildOptions {
        app,
        output,
        triggers,
        tools,
    };
    let started = std::time::Instant::now();
    let built = orquesta::javascript::build(&options).map_err(|e| {
        let failed = e.is_refusal();
        (e.to_string(), failed)
    });
    report_build(&options.output, started, built)
}

/// What `orquesta build` says, in any language: the component and the kinds it
/// answers, or the error (exit 1 when the tool ran and failed, 2 for bad input or a
/// missing tool).
fn report_build(
    output: &std::path::Path,
    started: std::time::Instant,
    built: Result<Vec<&'static str>, (String, bool)>,
) -> ExitCode {
    match built {
        Ok(kinds) => {
            let size = std::fs::metadata(output).map_or(0, |m| m.len());
            println!(
                "built {} ({:.1} MB, {:.1} s), answering {}",
                output.display(),
                size as f64 / 1e6,
                started.elapsed().as_secs_f64(),
                kinds.join(", ")
            );
            ExitCode::SUCCESS
        }
        Err((e, failed)) => {
            eprintln!("error: {e}");
            ExitCode::from(if failed { EXIT_FAILED } else { EXIT_BAD_INPUT })
        }
    }
}

/// Prints `error: ...` on one line and gives the exit code.
fn refuse(err: impl std::fmt::Display, code: u8) -> ExitCode {
    let text = err.to_string();
    eprintln!("error: {}", text.lines().collect::<Vec<_>>().join(" "));
    ExitCode::from(code)
}

async fn invoke(
    plugin_path: &Path,
    event_source: &str,
    config: Option<&Path>,
    plugin_name: Option<&str>,
    data_dir: &Path,
) -> ExitCode {
    let prepared =
        match prepare_invocation(plugin_path, event_source, config, plugin_name, data_dir).await {
            Ok(p) => p,
            Err(e) => return refuse(format!("{e:#}"), EXIT_BAD_INPUT),
        };
    let (engine, plugin, ctx, event) = prepared;
    let result = engine
        .invoke(&plugin, ctx, &event)
        .await
        .and_then(|r| response_to_json(&r));
    match result {
        Ok(output) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&output).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Err(e) => refuse(e, EXIT_FAILED),
    }
}

/// What a tenant file gives one plugin; without a file, nothing is granted.
#[derive(Default)]
struct Settings {
    limits: Limits,
    config: BTreeMap<String, String>,
    secrets: BTreeMap<String, orquesta::capabilities::Secret>,
    grants: Grants,
    sections: orquesta::capabilities::Sections,
}

type Prepared = (
    Engine,
    orquesta::engine::Plugin,
    Arc<PluginContext>,
    orquesta::bindings::handler::Event,
);

async fn prepare_invocation(
    plugin_path: &Path,
    event_source: &str,
    config: Option<&Path>,
    plugin_name: Option<&str>,
    data_dir: &Path,
) -> anyhow::Result<Prepared> {
    // What is wrong with the plugin or its config is reported before the event.
    let (tenant, name, settings) = match config {
        Some(path) => {
            let tenant = TenantConfig::load(path)?;
            let (name, plugin) = pick_plugin(&tenant, plugin_path, plugin_name)
                .with_context(|| format!("{}", path.display()))?;
            let secrets = plugin
                .resolve_secrets(&name)
                .map_err(|e| anyhow!("{}: {e}", path.display()))?;
            let tenant_name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "default".into());
            let settings = Settings {
                limits: tenant.limits.clone(),
                config: plugin.config_strings(),
                secrets,
                grants: plugin.allow.clone(),
                sections: tenant.capabilities.clone(),
            };
            (tenant_name, name, settings)
        }
        None => (
            "default".to_string(),
            plugin_name.unwrap_or("plugin").to_string(),
            Settings::default(),
        ),
    };

    let bytes = std::fs::read(plugin_path)
        .with_context(|| format!("cannot read {}", plugin_path.display()))?;
    let engine = Engine::new(EngineConfig {
        cache_dir: Some(data_dir.join("cache")),
        ..EngineConfig::default()
    })?;
    let plugin = engine
        .load(bytes)
        .await
        .with_context(|| format!("{}", plugin_path.display()))?;
    let event_text = read_source(event_source)?;
    let event = EventJson::parse(&event_text)?.into_event();
    let store = Store::open_sqlite(&data_dir.join("orquesta.db")).await?;
    // As the service builds them, without its queues, topics, buses and workflows.
    let backends = Backends::for_tenant(
        &HostResources::local(store, data_dir)?,
        &TenantResources {
            name: &tenant,
            limits: &settings.limits,
            sections: &settings.sections,
            runtime: None,
        },
    )
    .map_err(anyhow::Error::msg)?;
    let ctx = PluginContext::new(
        tenant,
        name,
        settings.limits,
        Capabilities {
            config: settings.config,
            secrets: settings.secrets,
            grants: settings.grants,
            backends,
        },
    );
    Ok((engine, plugin, Arc::new(ctx), event))
}

/// The tenant's entry for this plugin file.
fn pick_plugin<'a>(
    tenant: &'a TenantConfig,
    plugin_path: &Path,
    wanted: Option<&str>,
) -> anyhow::Result<(String, &'a orquesta::tenants::PluginConfig)> {
    if let Some(name) = wanted {
        let plugin = tenant
            .plugins
            .get(name)
            .ok_or_else(|| anyhow!("the tenant has no plugin `{name}`"))?;
        return Ok((name.to_string(), plugin));
    }
    let file_name = plugin_path.file_name();
    let by_source: Vec<_> = tenant
        .plugins
        .iter()
        .filter(|(_, p)| p.source.file_name() == file_name)
        .collect();
    match (by_source.as_slice(), tenant.plugins.len()) {
        ([(name, plugin)], _) => Ok(((*name).clone(), plugin)),
        (_, 1) => {
            let (name, plugin) = tenant
                .plugins
                .iter()
                .next()
                .ok_or_else(|| anyhow!("no plugins"))?;
            Ok((name.clone(), plugin))
        }
        _ => bail!("cannot tell which of the tenant's plugins this is: pass --plugin NAME"),
    }
}

fn read_source(source: &str) -> anyhow::Result<String> {
    if source == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the event from standard input")?;
        return Ok(text);
    }
    std::fs::read_to_string(source).with_context(|| format!("cannot read event file {source}"))
}

async fn test(plugin_path: &Path, fixtures_path: &Path) -> ExitCode {
    let fixtures = match FixtureFile::load(fixtures_path) {
        Ok(f) => f,
        Err(e) => return refuse(e, EXIT_BAD_INPUT),
    };
    let plugin = match TestPlugin::load(plugin_path).await {
        Ok(p) => p,
        Err(e) => return refuse(format!("{e:#}"), EXIT_BAD_INPUT),
    };
    let results = match fixtures.run(&plugin).await {
        Ok(r) => r,
        Err(e) => return refuse(format!("{e:#}"), EXIT_FAILED),
    };
    report(&results)
}

async fn test_workflow(definition_path: &Path, fixtures_path: &Path) -> ExitCode {
    let fixtures = match WorkflowFixtures::load(fixtures_path) {
        Ok(f) => f,
        Err(e) => return refuse(e, EXIT_BAD_INPUT),
    };
    let definition = match std::fs::read_to_string(definition_path)
        .with_context(|| format!("cannot read {}", definition_path.display()))
        .and_then(|text| {
            serde_json::from_str::<serde_json::Value>(&text)
                .with_context(|| format!("{} is not JSON", definition_path.display()))
        })
        .and_then(|doc| {
            orquesta::workflow::Machine::parse(&doc)
                .map(|_| doc)
                .map_err(|e| anyhow!("{}: {e}", definition_path.display()))
        }) {
        Ok(d) => d,
        Err(e) => return refuse(format!("{e:#}"), EXIT_BAD_INPUT),
    };
    match fixtures.run(&definition).await {
        Ok(results) => report(&results),
        Err(e) => refuse(format!("{e:#}"), EXIT_FAILED),
    }
}

/// Prints a line per case and the totals; the exit code says whether all passed.
fn report(results: &[orquesta::testing::fixtures::CaseResult]) -> ExitCode {
    let mut failed = 0;
    for result in results {
        if result.passed() {
            println!("ok     {}", result.name);
        } else {
            failed += 1;
            println!("FAILED {}", result.name);
            for failure in &result.failures {
                for line in failure.lines() {
                    println!("         {line}");
                }
            }
        }
    }
    println!("{} passed, {} failed", results.len() - failed, failed);
    if failed > 0 {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}

async fn serve(
    config: Option<&Path>,
    listen: Option<std::net::SocketAddr>,
    store: Option<String>,
    advertise: Option<String>,
) -> ExitCode {
    let mut host = match config {
        Some(path) => match HostConfig::load(path) {
            Ok(c) => c,
            Err(e) => return refuse(e, EXIT_BAD_INPUT),
        },
        None => HostConfig::default(),
    };
    if let Some(addr) = listen {
        host.listen = addr;
    }
    if store.is_some() {
        host.store = store;
    }
    if advertise.is_some() {
        host.advertise = advertise;
        if let Err(e) = host.validate_registry() {
            return refuse(e, EXIT_BAD_INPUT);
        }
    }
    match orquesta::server::run(host, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => refuse(format!("{e:#}"), EXIT_FAILED),
    }
}

/// SIGTERM (how service managers stop us) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Where `blob-put` stores.
struct BlobTarget<'a> {
    tenant: &'a str,
    bucket: &'a str,
    key: &'a str,
}

async fn blob_put(
    to: BlobTarget<'_>,
    file: &Path,
    config: Option<&Path>,
    store: Option<String>,
    if_absent: bool,
) -> ExitCode {
    use orquesta::capabilities::blob::{BlobBucket, Blobs as _, check_object};
    let BlobTarget {
        tenant,
        bucket,
        key,
    } = to;
    let host = match config {
        Some(path) => match HostConfig::load(path) {
            Ok(c) => c,
            Err(e) => return refuse(e, EXIT_BAD_INPUT),
        },
        None => HostConfig::default(),
    };
    let data = match std::fs::read(file) {
        Ok(d) => d,
        Err(e) => {
            return refuse(
                format!("cannot read {}: {e}", file.display()),
                EXIT_BAD_INPUT,
            );
        }
    };
    let checked = orquesta::capabilities::check_name("tenant", tenant)
        .and_then(|()| orquesta::capabilities::check_name("blob bucket", bucket))
        .and_then(|()| check_object(key, data.len()));
    if let Err(e) = checked {
        return refuse(e, EXIT_BAD_INPUT);
    }
    // Where the service keeps them: its store, its `[blobs]` backend, sizes counted
    // (the operator's own writes, under no quota).
    let opened = match store.or(host.store.clone()) {
        Some(url) => Store::open(&url).await,
        None => Store::open_sqlite(&host.data_dir.join("orquesta.db")).await,
    };
    let store = match opened {
        Ok(s) => s,
        Err(e) => return refuse(e, EXIT_FAILED),
    };
    let backend = match host.blobs.open(&store, &host.data_dir) {
        Ok(b) => b,
        Err(e) => return refuse(e, EXIT_BAD_INPUT),
    };
    let blobs = orquesta::store::TenantBlobs {
        backend,
        store,
        quota: orquesta::store::usage::Quota::UNLIMITED,
    };
    let at = BlobBucket {
        tenant: tenant.to_string(),
        bucket: bucket.to_string(),
    };
    if if_absent && matches!(blobs.get(&at, key).await, Ok(Some(_))) {
        println!("kept {tenant}/{bucket}/{key}: it exists");
        return ExitCode::SUCCESS;
    }
    match blobs.put(&at, key, &data).await {
        Ok(()) => {
            println!("stored {tenant}/{bucket}/{key} ({} bytes)", data.len());
            ExitCode::SUCCESS
        }
        Err(e) => refuse(e, EXIT_FAILED),
    }
}

/// Lists a tenant's deliveries from the store a host config (or `--store`) names. The
/// store is read, never created: a path with no store is refused rather than left
/// holding an empty one.
async fn deliveries(
    tenant: &str,
    state: DeliveryStateArg,
    after: i64,
    limit: u32,
    config: Option<&Path>,
    store: Option<String>,
) -> ExitCode {
    use orquesta::store::delivery::DeliveryState;
    if let Err(e) = orquesta::capabilities::check_name("tenant", tenant) {
        return refuse(e, EXIT_BAD_INPUT);
    }
    let host = match config {
        Some(path) => match HostConfig::load(path) {
            Ok(c) => c,
            Err(e) => return refuse(e, EXIT_BAD_INPUT),
        },
        None => HostConfig::default(),
    };
    let opened = match store.or(host.store) {
        Some(url) => Store::open(&url).await,
        None => {
            let path = host.data_dir.join("orquesta.db");
            if !path.exists() {
                return refuse(
                    format!("no store at {} (give --config or --store)", path.display()),
                    EXIT_BAD_INPUT,
                );
            }
            Store::open_sqlite(&path).await
        }
    };
    let store = match opened {
        Ok(s) => s,
        Err(e) => return refuse(format!("cannot open the store: {e}"), EXIT_FAILED),
    };
    let state = match state {
        DeliveryStateArg::Failed => DeliveryState::Failed,
        DeliveryStateArg::Pending => DeliveryState::Pending,
    };
    match store
        .delivery_list(tenant, state, after.max(0), limit)
        .await
    {
        Ok(deliveries) => {
            // As the admin API pages: the last `seq` when the page is full.
            let next_after = (deliveries.len() == limit as usize)
                .then(|| deliveries.last().map(|d| d.seq))
                .flatten();
            let page = serde_json::json!({ "deliveries": deliveries, "next_after": next_after });
            println!("{page:#}");
            ExitCode::SUCCESS
        }
        Err(e) => refuse(format!("cannot list deliveries: {e}"), EXIT_FAILED),
    }
}

fn hash_key(key: Option<String>) -> ExitCode {
    let key = match key {
        Some(k) => k,
        None => match read_source("-") {
            Ok(k) => k.trim_end_matches(['\n', '\r']).to_string(),
            Err(e) => return refuse(format!("{e:#}"), EXIT_BAD_INPUT),
        },
    };
    if key.is_empty() {
        return refuse("the key is empty", EXIT_BAD_INPUT);
    }
    println!(
        "sha256:{}",
        orquesta::triggers::http::auth::sha256_hex(&key)
    );
    ExitCode::SUCCESS
}

fn test_pattern(pattern: &str, event: &str, kind: PatternKind) -> ExitCode {
    use orquesta::pattern::test_event::{Kind, test_event};
    // The JSON itself, or where to read it.
    let json = |source: &str, what: &str| -> anyhow::Result<serde_json::Value> {
        let text = if source.trim_start().starts_with(['{', '[', '"']) {
            source.to_string()
        } else if source == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .with_context(|| format!("cannot read the {what} from standard input"))?;
            text
        } else {
            std::fs::read_to_string(source)
                .with_context(|| format!("cannot read the {what} file {source}"))?
        };
        serde_json::from_str(&text).with_context(|| format!("the {what} is not JSON"))
    };
    let (pattern, event) = match (json(pattern, "pattern"), json(event, "event")) {
        (Ok(p), Ok(e)) => (p, e),
        (Err(e), _) | (_, Err(e)) => return refuse(format!("{e:#}"), EXIT_BAD_INPUT),
    };
    let kind = match kind {
        PatternKind::EventPattern => Kind::EventPattern,
        PatternKind::FilterPolicy => Kind::FilterPolicy,
        PatternKind::FilterPolicyBody => Kind::FilterPolicyBody,
    };
    match test_event(kind, &pattern, &event) {
        Ok(result) => {
            println!("{}", serde_json::json!({ "result": result }));
            if result {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_FAILED)
            }
        }
        Err(e) => refuse(e, EXIT_BAD_INPUT),
    }
}

async fn check(
    file: &Path,
    config: Option<&Path>,
    plugin_dir: Option<PathBuf>,
    skip_environment: bool,
) -> ExitCode {
    use orquesta::app::tenants::{Checks, Plugins, prepare, tenant_of_file};
    let name = match tenant_of_file(file) {
        Ok(Some(name)) => name,
        Ok(None) => {
            return refuse(
                format!("{}: not a tenant file (NAME.toml)", file.display()),
                EXIT_BAD_INPUT,
            );
        }
        Err(e) => return refuse(format!("{}: {e}", file.display()), EXIT_BAD_INPUT),
    };
    let plugin_dir = match (plugin_dir, config) {
        (Some(dir), _) => dir,
        (None, Some(path)) => match HostConfig::load(path) {
            Ok(host) => host.plugin_dir,
            Err(e) => return refuse(e, EXIT_BAD_INPUT),
        },
        (None, None) => HostConfig::default().plugin_dir,
    };
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            return refuse(
                format!("{}: cannot read: {e}", file.display()),
                EXIT_BAD_INPUT,
            );
        }
    };
    let checks = Checks {
        plugins: (!skip_environment).then_some(Plugins::Dir(&plugin_dir)),
        secrets: !skip_environment,
    };
    let prepared = match prepare(&name, file, &text, &checks) {
        Ok(prepared) => prepared,
        Err(e) => return refuse(e, EXIT_BAD_INPUT),
    };
    if !skip_environment && let Err(e) = components_load(&prepared.config, &plugin_dir).await {
        return refuse(format!("{}: {e:#}", file.display()), EXIT_BAD_INPUT);
    }
    let names: Vec<&str> = prepared.config.plugins.keys().map(String::as_str).collect();
    println!(
        "ok: {}: tenant with {} plugin(s): {}",
        file.display(),
        names.len(),
        names.join(", ")
    );
    ExitCode::SUCCESS
}

/// Compiles each plugin's component as the service would (its world, its per-component
/// limits), so a file `check` accepts is not then refused when served.
async fn components_load(config: &TenantConfig, plugin_dir: &Path) -> anyhow::Result<()> {
    let engine = Engine::new(EngineConfig::default())?;
    for (name, plugin) in &config.plugins {
        let path = plugin_dir.join(&plugin.source);
        let bytes = std::fs::read(&path)
            .with_context(|| format!("plugin `{name}`: cannot read {}", path.display()))?;
        engine
            .load(bytes)
            .await
            .with_context(|| format!("plugin `{name}` ({}) would be refused", path.display()))?;
    }
    Ok(())
}
