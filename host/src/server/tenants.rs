//! Live tenants: each file in the tenant directory becomes a runtime (plugin contexts,
//! routes, auth). A changed file replaces its runtime only if the whole file is valid;
//! otherwise the last good runtime keeps serving and the reason is kept.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use serde::Serialize;
use tokio::sync::Semaphore;

use super::auth::TenantAuth;
use super::metrics::HttpMetrics;
use super::plugins::unix_ms;
use super::state::Services;
use crate::capabilities::Capabilities;
use crate::engine::PluginContext;
use crate::tenants::{RouteConfig, RouteTemplate, TenantConfig};

/// A loaded tenant.
pub struct TenantRuntime {
    pub name: String,
    pub config: TenantConfig,
    /// Plugin name -> its context.
    pub plugins: HashMap<String, Arc<PluginContext>>,
    /// Plugin name -> its HTTP trigger metrics.
    pub http_metrics: HashMap<String, Arc<HttpMetrics>>,
    routes: Vec<(RouteTemplate, RouteConfig)>,
    pub auth: TenantAuth,
}

impl TenantRuntime {
    pub fn build(
        name: &str,
        file: &Path,
        config: TenantConfig,
        services: &Services,
    ) -> Result<Self, String> {
        let dir = file.parent().unwrap_or(Path::new("."));
        // One semaphore for the tenant: its plugins share its concurrency.
        let concurrency = Arc::new(Semaphore::new(config.limits.concurrency as usize));
        let backends = services.backends(name, &config)?;
        let mut plugins = HashMap::new();
        for (plugin_name, plugin) in &config.plugins {
            let secrets = plugin.resolve_secrets(plugin_name)?;
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
            .collect::<Result<Vec<_>, String>>()?;
        // Most specific first; the file's order breaks ties.
        routes.sort_by_key(|(t, _)| std::cmp::Reverse(t.specificity()));
        let auth = TenantAuth::build(name, &config, dir)?;
        Ok(TenantRuntime {
            name: name.to_string(),
            config,
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
#[derive(Debug, Clone, Serialize)]
pub struct TenantStatus {
    pub name: String,
    pub file: PathBuf,
    /// Whether a runtime is serving.
    pub serving: bool,
    pub plugins: Vec<String>,
    pub routes: usize,
    /// Why the latest edit was refused.
    pub error: Option<String>,
    #[serde(with = "unix_ms")]
    pub updated_at: SystemTime,
}

struct Entry {
    runtime: Option<Arc<TenantRuntime>>,
    seen_text: String,
    status: TenantStatus,
}

pub struct TenantRegistry {
    dir: PathBuf,
    entries: RwLock<BTreeMap<String, Entry>>,
}

impl TenantRegistry {
    pub fn new(dir: PathBuf) -> Self {
        TenantRegistry {
            dir,
            entries: RwLock::new(BTreeMap::new()),
        }
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

    pub fn list(&self) -> Vec<TenantStatus> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries.values().map(|e| e.status.clone()).collect()
    }

    /// Loads new and changed tenant files and drops removed ones.
    pub fn scan(&self, services: &Services) {
        let files = match toml_files(&self.dir) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot read the tenant directory");
                return;
            }
        };
        for (name, path) in &files {
            let Ok(text) = std::fs::read_to_string(path) else {
                continue;
            };
            let seen = with_workflow_files(path, &text);
            let unchanged = {
                let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
                entries.get(name).is_some_and(|e| e.seen_text == seen)
            };
            if unchanged {
                continue;
            }
            let built = TenantConfig::parse(path, &text)
                .map_err(|e| e.to_string())
                .and_then(|config| {
                    TenantRuntime::build(name, path, config, services)
                        .map_err(|e| format!("{}: {e}", path.display()))
                });
            self.record(name, path, seen, built);
        }
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        entries.retain(|name, _| files.iter().any(|(n, _)| n == name));
    }

    fn record(&self, name: &str, path: &Path, text: String, built: Result<TenantRuntime, String>) {
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
                entry.status.error = Some(e);
            }
        }
        entry.status.serving = entry.runtime.is_some();
    }
}

/// A tenant file's text followed by the workflow definitions it names, so that an edit
/// to a definition reloads its tenant as an edit to the tenant file does.
fn with_workflow_files(path: &Path, text: &str) -> String {
    let mut seen = text.to_string();
    let Ok(doc) = toml::from_str::<toml::Table>(text) else {
        return seen;
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let files = doc
        .get("workflows")
        .and_then(|w| w.as_table())
        .into_iter()
        .flat_map(|t| t.values())
        .filter_map(|w| w.get("definition").and_then(|d| d.as_str()));
    for file in files {
        seen.push('\0');
        seen.push_str(&std::fs::read_to_string(dir.join(file)).unwrap_or_default());
    }
    seen
}

/// `(name, path)` of every `NAME.toml` in `dir`.
fn toml_files(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "toml")
            && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
            && crate::capabilities::check_name("tenant", stem).is_ok()
            && path.is_file()
        {
            files.push((stem.to_string(), path));
        }
    }
    files.sort();
    Ok(files)
}
