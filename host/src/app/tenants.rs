//! Live tenants: each file in the tenant directory becomes a runtime (plugin contexts,
//! routes, auth). A changed file replaces its runtime only if the whole file is valid;
//! otherwise the last good runtime keeps serving and the reason is kept.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use serde::Serialize;
use sha2::{Digest as _, Sha256};
use thiserror::Error;
use tokio::sync::{Notify, Semaphore};

use crate::app::Services;
use crate::app::plugins::{PluginCatalog, unix_ms};
use crate::capabilities::sql::SqlConfigError;
use crate::capabilities::{BackendError, CapError, Capabilities, Secret};
use crate::engine::{PluginContext, WarmPool};
use crate::metrics::HttpMetrics;
use crate::tenants::{
    ConfigError, RouteConfig, RouteTemplate, TemplateError, TenantConfig, TenantError, line_of_key,
};
use crate::triggers::http::auth::{AuthError, TenantAuth};

/// What a tenant file is checked against besides itself. The service checks everything;
/// `orquesta check --skip-environment` leaves out what only the serving machine has.
pub struct Checks<'a> {
    /// Where each plugin's `source` must be; `None` leaves sources unchecked.
    pub plugins: Option<Plugins<'a>>,
    /// Resolve secrets (environment variables, secret files) and database URLs now.
    pub secrets: bool,
}

pub enum Plugins<'a> {
    /// The plugins the service has compiled, by file stem.
    Catalog(&'a PluginCatalog),
    /// A plugin directory (`orquesta check`): the file must be there.
    Dir(&'a Path),
}

/// Why a plugin's `source` cannot be served.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SourceError {
    #[error("`{}` was refused: {why}", file.display())]
    Refused { file: PathBuf, why: String },
    #[error("`{}` is not in the plugin directory {}", file.display(), dir.display())]
    Missing { file: PathBuf, dir: PathBuf },
}

impl Plugins<'_> {
    fn check(&self, source: &Path) -> Result<(), SourceError> {
        let missing = |dir: &Path| SourceError::Missing {
            file: source.to_path_buf(),
            dir: dir.to_path_buf(),
        };
        match self {
            Plugins::Catalog(catalog) => {
                let stem = source.file_stem().and_then(|s| s.to_str()).unwrap_or("");
                if catalog.get(stem).is_some() {
                    return Ok(());
                }
                Err(match catalog.status(stem).and_then(|s| s.error) {
                    Some(why) => SourceError::Refused {
                        file: source.to_path_buf(),
                        why,
                    },
                    None => missing(catalog.dir()),
                })
            }
            Plugins::Dir(dir) if dir.join(source).is_file() => Ok(()),
            Plugins::Dir(dir) => Err(missing(dir)),
        }
    }
}

/// Why the serving machine refuses a tenant file that is valid in itself.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PrepareError {
    /// The file itself, or a secret it names that cannot be read.
    #[error(transparent)]
    Tenant(#[from] TenantError),
    #[error("plugins.{plugin}.source: {problem}")]
    Source {
        plugin: String,
        problem: SourceError,
    },
    /// A trigger sends a plugin a kind of event it has no handler for.
    #[error("{at}: plugin `{plugin}` ({}) exports no {kind} handler; it answers {answers}", file.display())]
    NoHandler {
        at: String,
        plugin: String,
        file: PathBuf,
        kind: &'static str,
        answers: String,
    },
    #[error("databases.{name}.url: {problem}")]
    DatabaseUrl {
        name: String,
        problem: SqlConfigError,
    },
    #[error(transparent)]
    Auth(#[from] AuthError),
}

/// A tenant file checked as the service loads it: parsed and validated, its plugins
/// present, its secrets resolved and its JWKS file loaded.
pub struct Prepared {
    pub config: TenantConfig,
    /// Plugin name -> its secrets (none when they were not resolved).
    pub secrets: BTreeMap<String, BTreeMap<String, Secret>>,
    pub auth: TenantAuth,
    /// The file's text, as the runtime keeps it (a tenant credential's deploy is
    /// compared with the text serving).
    pub text: String,
}

/// Everything that can refuse a tenant file, for the service and `orquesta check` alike:
/// one function, so `check` passes exactly what the service would load.
pub fn prepare(
    name: &str,
    file: &Path,
    text: &str,
    checks: &Checks<'_>,
) -> Result<Prepared, ConfigError<PrepareError>> {
    let config = TenantConfig::parse(file, text).map_err(|e| e.map(PrepareError::from))?;
    let refuse = |keys: &[&str], reason: PrepareError| -> ConfigError<PrepareError> {
        ConfigError::at(file, line_of_key(text, keys), reason)
    };
    let mut secrets = BTreeMap::new();
    for (plugin_name, plugin) in &config.plugins {
        if let Some(plugins) = &checks.plugins {
            plugins.check(&plugin.source).map_err(|problem| {
                let reason = PrepareError::Source {
                    plugin: plugin_name.clone(),
                    problem,
                };
                refuse(&["plugins", plugin_name, "source"], reason)
            })?;
        }
        if checks.secrets {
            let resolved = plugin
                .resolve_secrets(plugin_name)
                .map_err(|e| refuse(&["plugins", plugin_name, "secrets"], e.into()))?;
            secrets.insert(plugin_name.clone(), resolved);
        }
    }
    if let Some(Plugins::Catalog(catalog)) = &checks.plugins {
        check_handlers(&config, catalog).map_err(|refusal| {
            let (keys, reason) = *refusal;
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            refuse(&keys, reason)
        })?;
    }
    if checks.secrets {
        for (db_name, db) in &config.capabilities.databases {
            db.url
                .resolve()
                .map_err(SqlConfigError::from)
                .and_then(|url| crate::capabilities::sql::check_url(&url).map(|_| ()))
                .map_err(|problem| {
                    let reason = PrepareError::DatabaseUrl {
                        name: db_name.clone(),
                        problem,
                    };
                    refuse(&["databases", db_name, "url"], reason)
                })?;
        }
    }
    let dir = file.parent().unwrap_or(Path::new("."));
    let auth = TenantAuth::build(name, &config, dir).map_err(|e| {
        let keys: &[&str] = if e.is_jwks() {
            &["jwt", "jwks_file"]
        } else {
            &[]
        };
        refuse(keys, e.into())
    })?;
    Ok(Prepared {
        config,
        secrets,
        auth,
        text: text.to_string(),
    })
}

/// Every trigger the file sends to a plugin is one the plugin exports a handler for:
/// refused here, with the kinds it does answer, rather than failing each event with
/// `unsupported-trigger`. On failure, the setting's keys and the reason.
fn check_handlers(
    config: &TenantConfig,
    catalog: &PluginCatalog,
) -> Result<(), Box<(Vec<String>, PrepareError)>> {
    for trigger in config.plugin_triggers() {
        let Some(plugin) = config.plugins.get(&trigger.plugin) else {
            continue; // `validate` has refused it already
        };
        let stem = plugin.source.file_stem().and_then(|s| s.to_str());
        let Some(compiled) = stem.and_then(|stem| catalog.get(stem)) else {
            continue; // the source check has refused it already
        };
        let answers = compiled.triggers();
        if !answers.contains(&trigger.kind) {
            let answers = if answers.is_empty() {
                "none of the contract's kinds".to_string()
            } else {
                answers.join(", ")
            };
            return Err(Box::new((
                trigger.keys,
                PrepareError::NoHandler {
                    at: trigger.at,
                    plugin: trigger.plugin,
                    file: plugin.source.clone(),
                    kind: trigger.kind,
                    answers,
                },
            )));
        }
    }
    Ok(())
}

/// Why a file in the tenant directory that looks meant as a tenant is not loaded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FileNameError {
    #[error("not loaded: tenant files end in `.toml` (lowercase); rename {0:?}")]
    Extension(String),
    #[error("not loaded: {file_name:?} does not name a tenant: {problem}")]
    NotATenant {
        file_name: String,
        problem: CapError,
    },
}

/// Why the service does not serve a tenant file; the tenant's status shows it.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LoadError {
    #[error(transparent)]
    Refused(#[from] ConfigError<PrepareError>),
    #[error("{}: {error}", file.display())]
    Build { file: PathBuf, error: BuildError },
    /// Files whose names differ only in case (`names`, as the message lists them).
    #[error(
        "{}: not loaded: {names} name one tenant but for case; on a case-insensitive \
         filesystem they would share its directories: rename all but one",
        file.display()
    )]
    CaseClash { file: PathBuf, names: String },
}

/// Why a runtime could not be made of a tenant file [`prepare`] accepted.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BuildError {
    #[error(transparent)]
    Backends(#[from] BackendError),
    #[error(transparent)]
    Template(#[from] TemplateError),
}

/// The tenant a file in the tenant directory is: `NAME.toml` with a valid tenant name.
/// `Ok(None)` for files that are not meant as tenants (hidden, another extension); an
/// error for those that look meant but would not load (`al pha.toml`, `alpha.TOML`).
pub fn tenant_of_file(path: &Path) -> Result<Option<String>, FileNameError> {
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if file_name.starts_with('.') || !extension.eq_ignore_ascii_case("toml") {
        return Ok(None);
    }
    if extension != "toml" {
        return Err(FileNameError::Extension(file_name.to_string()));
    }
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    crate::capabilities::check_name("tenant", stem).map_err(|problem| {
        FileNameError::NotATenant {
            file_name: file_name.to_string(),
            problem,
        }
    })?;
    Ok(Some(stem.to_string()))
}

/// A loaded tenant.
pub struct TenantRuntime {
    pub name: String,
    pub config: TenantConfig,
    /// The text of the file serving.
    pub text: String,
    /// Plugin name -> its context.
    pub plugins: HashMap<String, Arc<PluginContext>>,
    /// Plugin name -> its HTTP trigger metrics.
    pub http_metrics: HashMap<String, Arc<HttpMetrics>>,
    routes: Vec<(RouteTemplate, RouteConfig)>,
    pub auth: TenantAuth,
}

/// A tenant's config no longer serving (reloaded or removed) keeps no warm instance:
/// they hold its old grants and config, and each holds its plugin's context (so only
/// closing ends that cycle).
impl Drop for TenantRuntime {
    fn drop(&mut self) {
        for ctx in self.plugins.values() {
            if let Some(pool) = &ctx.warm {
                pool.close();
            }
        }
    }
}

impl TenantRuntime {
    /// The runtime of a tenant file [`prepare`] accepted.
    pub fn build(name: &str, prepared: Prepared, services: &Services) -> Result<Self, BuildError> {
        let Prepared {
            config,
            mut secrets,
            auth,
            text,
        } = prepared;
        // One semaphore for the tenant: its plugins share its concurrency.
        let concurrency = Arc::new(Semaphore::new(config.limits.concurrency as usize));
        let backends = services.backends(name, &config)?;
        let mut plugins = HashMap::new();
        for (plugin_name, plugin) in &config.plugins {
            let secrets = secrets.remove(plugin_name).unwrap_or_default();
            let mut ctx = PluginContext::new(
                name,
                plugin_name.clone(),
                config.limits.clone(),
                Capabilities {
                    config: plugin.config_strings(),
                    secrets,
                    grants: plugin.allow.clone(),
                    backends: backends.clone(),
                },
            );
            ctx.concurrency = concurrency.clone();
            ctx.warm = plugin.warm.map(|w| WarmPool::new(w.settings()));
            plugins.insert(plugin_name.clone(), Arc::new(ctx));
        }
        let http_metrics = config
            .plugins
            .keys()
            .map(|plugin| (plugin.clone(), Arc::new(HttpMetrics::new(name, plugin))))
            .collect();
        let mut routes = config
            .routes
            .iter()
            .map(|r| Ok((RouteTemplate::parse(&r.path)?, r.clone())))
            .collect::<Result<Vec<_>, TemplateError>>()?;
        // Most specific first; the file's order breaks ties.
        routes.sort_by_key(|(t, _)| std::cmp::Reverse(t.specificity()));
        Ok(TenantRuntime {
            name: name.to_string(),
            config,
            text,
            plugins,
            http_metrics,
            routes,
            auth,
        })
    }

    /// The route for `method` and `path`, with its parameters.
    pub fn route(&self, method: &str, path: &str) -> Result<RouteMatch<'_>, NoRoute> {
        let mut allow: Vec<String> = Vec::new();
        for (template, route) in &self.routes {
            if let Some(params) = template.matches(path) {
                if route.method.eq_ignore_ascii_case(method)
                    || route.method.eq_ignore_ascii_case("ANY")
                {
                    return Ok(RouteMatch { route, params });
                }
                let known = route.method.to_ascii_uppercase();
                if !allow.contains(&known) {
                    allow.push(known);
                }
            }
        }
        Err(if allow.is_empty() {
            NoRoute::NotFound
        } else {
            NoRoute::MethodNotAllowed(allow)
        })
    }

    /// The catalog name of `plugin`'s component: its source file's stem.
    pub fn component_of(&self, plugin: &str) -> Option<String> {
        let source = &self.config.plugins.get(plugin)?.source;
        source.file_stem().map(|s| s.to_string_lossy().into_owned())
    }
}

pub struct RouteMatch<'a> {
    pub route: &'a RouteConfig,
    /// Values of the template's `{name}` segments.
    pub params: Vec<(String, String)>,
}

pub enum NoRoute {
    NotFound,
    /// The path exists for these other methods.
    MethodNotAllowed(Vec<String>),
}

/// What the admin API shows of a tenant.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TenantStatus {
    #[schema(example = "acme")]
    pub name: String,
    /// The tenant file.
    #[schema(value_type = String, example = "tenants/acme.toml")]
    pub file: PathBuf,
    /// Whether a runtime is serving.
    pub serving: bool,
    #[schema(example = json!(["hello"]))]
    pub plugins: Vec<String>,
    /// How many HTTP routes it serves.
    pub routes: usize,
    /// Why the latest edit was refused; the last good config keeps serving.
    pub error: Option<String>,
    /// Milliseconds since the Unix epoch.
    #[serde(with = "unix_ms")]
    #[schema(value_type = u64, example = 1_795_305_600_000_u64)]
    pub updated_at: SystemTime,
}

struct Entry {
    runtime: Option<Arc<TenantRuntime>>,
    seen_text: String,
    status: TenantStatus,
}

pub struct TenantRegistry {
    dir: PathBuf,
    /// The tenant files deployed through the store (`app::deploys`), over `dir`'s.
    deployed: Option<PathBuf>,
    entries: RwLock<BTreeMap<String, Entry>>,
    /// Files in the tenant directory that look meant as tenants but cannot be one.
    unloadable: RwLock<Vec<TenantStatus>>,
    /// The directories of the files tenants reference (definitions, JWKS, init SQL,
    /// secret files), for the watcher.
    referenced_dirs: RwLock<BTreeSet<PathBuf>>,
    /// Told when `referenced_dirs` changes.
    pub references_changed: Notify,
}

impl TenantRegistry {
    pub fn new(dir: PathBuf) -> Self {
        TenantRegistry {
            dir,
            deployed: None,
            entries: RwLock::new(BTreeMap::new()),
            unloadable: RwLock::new(Vec::new()),
            referenced_dirs: RwLock::new(BTreeSet::new()),
            references_changed: Notify::new(),
        }
    }

    /// Tenant files deployed through the store are in `dir`, and win over the tenant
    /// directory's of the same name. Their relative paths (workflow definitions, JWKS,
    /// init SQL) resolve against the tenant directory, as a file dropped there would.
    pub fn with_deployed(mut self, dir: PathBuf) -> Self {
        self.deployed = Some(dir);
        self
    }

    /// Every tenant file now, deployed ones over the directory's: (tenant, the file to
    /// read). Serving or not: a file refused or waiting for a plugin is listed.
    pub fn files(&self) -> std::io::Result<Vec<(String, PathBuf)>> {
        Ok(self.all_files()?.tenants)
    }

    fn all_files(&self) -> std::io::Result<TenantFiles> {
        let mut found = tenant_files(&self.dir)?;
        let Some(deployed) = &self.deployed else {
            return Ok(found);
        };
        let over = match tenant_files(deployed) {
            Ok(over) => over.tenants,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        found
            .tenants
            .retain(|(name, _)| !over.iter().any(|(n, _)| n == name));
        found.tenants.extend(over);
        found.tenants.sort();
        Ok(found)
    }

    pub fn get(&self, name: &str) -> Option<Arc<TenantRuntime>> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries.get(name).and_then(|e| e.runtime.clone())
    }

    /// The names of the tenants serving now.
    pub fn names(&self) -> Vec<String> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries
            .iter()
            .filter(|(_, e)| e.runtime.is_some())
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Every tenant file's status, and the files that cannot be tenants with the reason.
    pub fn list(&self) -> Vec<TenantStatus> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let unloadable = self.unloadable.read().unwrap_or_else(|p| p.into_inner());
        entries
            .values()
            .map(|e| e.status.clone())
            .chain(unloadable.iter().cloned())
            .collect()
    }

    /// The directories holding files that tenants reference.
    pub fn referenced_dirs(&self) -> BTreeSet<PathBuf> {
        self.referenced_dirs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Loads new and changed tenant files (a file changes with any file it references,
    /// and with whether its plugins are deployed) and drops removed ones.
    pub fn scan(&self, services: &Services, plugins: &PluginCatalog) {
        let TenantFiles {
            tenants: files,
            unloadable,
        } = match self.all_files() {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot read the tenant directory");
                return;
            }
        };
        let collisions = case_collisions(&files);
        let mut dirs = BTreeSet::new();
        for (name, read) in &files {
            let Ok(text) = std::fs::read_to_string(read) else {
                continue;
            };
            // Where the file is, for its relative paths: a deployed file is checked and
            // resolved as if dropped into the tenant directory.
            let path = &self.dir.join(read.file_name().unwrap_or_default());
            let references = referenced_files(path, &text);
            dirs.extend(
                references
                    .iter()
                    .filter_map(|f| f.parent().map(Path::to_path_buf)),
            );
            if let Some(others) = collisions.get(&name.to_lowercase()) {
                let reason = LoadError::CaseClash {
                    file: path.clone(),
                    names: others.join(" and "),
                };
                // Seen as nothing: once the clash is gone the file loads on the next scan.
                self.record(name, read, String::new(), Err(reason));
                continue;
            }
            let seen = fingerprint(&text, &references, plugins);
            let unchanged = {
                let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
                entries.get(name).is_some_and(|e| e.seen_text == seen)
            };
            if unchanged {
                continue;
            }
            let checks = Checks {
                plugins: Some(Plugins::Catalog(plugins)),
                secrets: true,
            };
            let built = prepare(name, path, &text, &checks)
                .map_err(LoadError::from)
                .and_then(|prepared| {
                    TenantRuntime::build(name, prepared, services).map_err(|error| {
                        LoadError::Build {
                            file: path.clone(),
                            error,
                        }
                    })
                });
            self.record(name, read, seen, built);
        }
        {
            let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
            entries.retain(|name, _| files.iter().any(|(n, _)| n == name));
        }
        *self.unloadable.write().unwrap_or_else(|p| p.into_inner()) = unloadable;
        let changed = {
            let mut known = self
                .referenced_dirs
                .write()
                .unwrap_or_else(|p| p.into_inner());
            let changed = *known != dirs;
            *known = dirs;
            changed
        };
        if changed {
            self.references_changed.notify_one();
        }
    }

    fn record(
        &self,
        name: &str,
        path: &Path,
        text: String,
        built: Result<TenantRuntime, LoadError>,
    ) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        let entry = entries.entry(name.to_string()).or_insert_with(|| Entry {
            runtime: None,
            seen_text: String::new(),
            status: TenantStatus {
                name: name.to_string(),
                file: path.to_path_buf(),
                serving: false,
                plugins: vec![],
                routes: 0,
                error: None,
                updated_at: SystemTime::now(),
            },
        });
        entry.seen_text = text;
        entry.status.updated_at = SystemTime::now();
        match built {
            Ok(runtime) => {
                entry.status.plugins = runtime.plugins.keys().cloned().collect();
                entry.status.plugins.sort();
                entry.status.routes = runtime.routes.len();
                entry.status.error = None;
                entry.runtime = Some(Arc::new(runtime));
                tracing::info!(tenant = name, "tenant loaded");
            }
            Err(e) => {
                tracing::warn!(tenant = name, error = %e, "tenant config refused; the last good config keeps serving");
                entry.status.error = Some(e.to_string());
            }
        }
        entry.status.serving = entry.runtime.is_some();
    }
}

/// The files a tenant file names besides plugins, resolved as its loader resolves them:
/// workflow definitions, database init scripts and the JWKS file (relative to the tenant
/// file), secret files (as written). Read from the raw TOML, so a file that does not
/// validate still has its references watched.
pub fn referenced_files(path: &Path, text: &str) -> Vec<PathBuf> {
    let Ok(doc) = toml::from_str::<toml::Table>(text) else {
        return Vec::new();
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let tables = |key: &str| {
        doc.get(key)
            .and_then(|t| t.as_table())
            .into_iter()
            .flat_map(|t| t.values())
    };
    let string = |v: Option<&toml::Value>| v.and_then(|v| v.as_str()).map(PathBuf::from);
    let mut files = Vec::new();
    for workflow in tables("workflows") {
        files.extend(string(workflow.get("definition")).map(|f| dir.join(f)));
    }
    for db in tables("databases") {
        files.extend(string(db.get("init")).map(|f| dir.join(f)));
        files.extend(string(db.get("url").and_then(|u| u.get("file"))));
    }
    for plugin in tables("plugins") {
        let secrets = plugin.get("secrets").and_then(|s| s.as_table());
        for secret in secrets.into_iter().flat_map(|s| s.values()) {
            files.extend(string(secret.get("file")));
        }
    }
    files.extend(string(doc.get("jwt").and_then(|j| j.get("jwks_file"))).map(|f| dir.join(f)));
    files
}

/// What a scan compares to tell whether a tenant must be loaded again: a digest of its
/// text, of every file it references, and of which of its plugins are deployed (a tenant
/// refused for a missing plugin loads once the plugin arrives).
fn fingerprint(text: &str, references: &[PathBuf], plugins: &PluginCatalog) -> String {
    let mut digest = Sha256::new();
    digest.update(text.as_bytes());
    for file in references {
        digest.update(b"\0file\0");
        digest.update(file.to_string_lossy().as_bytes());
        digest.update(b"\0");
        digest.update(std::fs::read(file).unwrap_or_default());
    }
    if let Ok(doc) = toml::from_str::<toml::Table>(text) {
        let sources = doc
            .get("plugins")
            .and_then(|p| p.as_table())
            .into_iter()
            .flat_map(|t| t.values())
            .filter_map(|p| p.get("source").and_then(|s| s.as_str()));
        for source in sources {
            let stem = Path::new(source)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("");
            digest.update(b"\0plugin\0");
            digest.update(stem.as_bytes());
            digest.update(if plugins.get(stem).is_some() {
                b"1"
            } else {
                b"0"
            });
        }
    }
    hex::encode(digest.finalize())
}

/// Tenant names (lowercased) that more than one file gives: those files' names.
fn case_collisions(files: &[(String, PathBuf)]) -> HashMap<String, Vec<String>> {
    let mut by_lowercase: HashMap<String, Vec<String>> = HashMap::new();
    for (name, path) in files {
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        by_lowercase
            .entry(name.to_lowercase())
            .or_default()
            .push(file);
    }
    by_lowercase.retain(|_, files| files.len() > 1);
    by_lowercase
}

/// What the tenant directory holds.
struct TenantFiles {
    /// `(name, path)` of every tenant file.
    tenants: Vec<(String, PathBuf)>,
    /// The status of each file that looks meant as a tenant but cannot be one.
    unloadable: Vec<TenantStatus>,
}

fn tenant_files(dir: &Path) -> std::io::Result<TenantFiles> {
    let mut files = Vec::new();
    let mut unloadable = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if !path.is_file() {
            continue;
        }
        match tenant_of_file(&path) {
            Ok(Some(name)) => files.push((name, path)),
            Ok(None) => {}
            Err(reason) => unloadable.push(TenantStatus {
                name: path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                file: path.clone(),
                serving: false,
                plugins: vec![],
                routes: 0,
                error: Some(format!("{}: {reason}", path.display())),
                updated_at: SystemTime::now(),
            }),
        }
    }
    files.sort();
    unloadable.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(TenantFiles {
        tenants: files,
        unloadable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_a_tenant_names_is_referenced() {
        let text = r#"
[plugins.a]
source = "a.wasm"
secrets = { token = { file = "/run/secrets/token" }, other = { env = "X" } }

[databases.app]
url = { file = "/run/secrets/db-url" }
init = "sql/app.sql"

[workflows.w]
definition = "../flows/w.asl.json"

[jwt]
issuer = "i"
audience = "a"
jwks_file = "keys/jwks.json"
"#;
        let files = referenced_files(Path::new("/etc/tenants/acme.toml"), text);
        let mut files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        files.sort();
        assert_eq!(
            files,
            [
                "/etc/tenants/../flows/w.asl.json",
                "/etc/tenants/keys/jwks.json",
                "/etc/tenants/sql/app.sql",
                "/run/secrets/db-url",
                "/run/secrets/token",
            ]
        );
    }

    #[test]
    fn tenant_file_names() {
        let of = |name: &str| tenant_of_file(Path::new(name));
        assert_eq!(of("dir/acme.toml"), Ok(Some("acme".into())));
        assert_eq!(of("dir/Acme-2.toml"), Ok(Some("Acme-2".into())));
        for ignored in [
            "dir/.acme.toml",
            "dir/acme.toml~",
            "dir/notes.md",
            "dir/acme",
        ] {
            assert_eq!(of(ignored), Ok(None), "{ignored}");
        }
        assert_eq!(
            of("dir/acme.TOML"),
            Err(FileNameError::Extension("acme.TOML".into()))
        );
        assert!(matches!(
            of("dir/ac me.toml"),
            Err(FileNameError::NotATenant { file_name, .. }) if file_name == "ac me.toml"
        ));
    }
}
