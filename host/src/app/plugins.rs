//! Deployed plugins: every `.wasm` in the plugin directory and in the directory of
//! deploys through the store (which wins for a name in both), compiled and ready. A new
//! version replaces the old only once it has compiled and linked; invocations already
//! running keep the version they started with (they hold their own `Plugin`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::SystemTime;

use serde::Serialize;

use crate::engine::{Engine, LoadError, Plugin, content_hash};

/// What the admin API shows of a deployed plugin.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PluginStatus {
    #[schema(example = "hello")]
    pub name: String,
    /// SHA-256 of the version serving now, if any.
    #[schema(example = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")]
    pub hash: Option<String>,
    /// The component's size in bytes.
    #[schema(example = 81_920)]
    pub size: usize,
    /// Why the latest file was refused; the previous version (if any) keeps serving.
    pub error: Option<String>,
    /// Milliseconds since the Unix epoch.
    #[serde(with = "unix_ms")]
    #[schema(value_type = u64, example = 1_795_305_600_000_u64)]
    pub updated_at: SystemTime,
}

struct Entry {
    plugin: Option<Plugin>,
    /// Hash of the file last seen, loaded or refused, so an unchanged file is not
    /// recompiled on every scan.
    seen_hash: String,
    status: PluginStatus,
}

pub struct PluginCatalog {
    engine: Engine,
    dir: PathBuf,
    /// The plugins deployed through the store (`app::deploys`), over `dir`'s.
    deployed: Option<PathBuf>,
    entries: RwLock<BTreeMap<String, Entry>>,
}

/// A plugin's name is its file stem: `hello.wasm` is `hello`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl PluginCatalog {
    pub fn new(engine: Engine, dir: PathBuf) -> Self {
        PluginCatalog {
            engine,
            dir,
            deployed: None,
            entries: RwLock::new(BTreeMap::new()),
        }
    }

    /// Plugins deployed through the store are in `dir`, and win over the plugin
    /// directory's of the same name.
    pub fn with_deployed(mut self, dir: PathBuf) -> Self {
        self.deployed = Some(dir);
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The version of `name` serving now.
    pub fn get(&self, name: &str) -> Option<Plugin> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries.get(name).and_then(|e| e.plugin.clone())
    }

    /// What the admin API shows of `name`, if the catalog has seen it.
    pub fn status(&self, name: &str) -> Option<PluginStatus> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries.get(name).map(|e| e.status.clone())
    }

    pub fn list(&self) -> Vec<PluginStatus> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries.values().map(|e| e.status.clone()).collect()
    }

    /// Compiles `bytes` as the new version of `name`. On failure the previous version
    /// keeps serving and the reason is kept for the admin API.
    pub async fn deploy(&self, name: &str, bytes: Vec<u8>) -> Result<Plugin, LoadError> {
        let hash = content_hash(&bytes);
        let size = bytes.len();
        let result = self.engine.load(bytes).await;
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        let entry = entries.entry(name.to_string()).or_insert_with(|| Entry {
            plugin: None,
            seen_hash: String::new(),
            status: PluginStatus {
                name: name.to_string(),
                hash: None,
                size: 0,
                error: None,
                updated_at: SystemTime::now(),
            },
        });
        entry.seen_hash = hash.clone();
        entry.status.updated_at = SystemTime::now();
        match &result {
            Ok(plugin) => {
                entry.plugin = Some(plugin.clone());
                entry.status.hash = Some(hash);
                entry.status.size = size;
                entry.status.error = None;
                tracing::info!(plugin = name, hash = %plugin.hash, "plugin deployed");
            }
            Err(e) => {
                entry.status.error = Some(e.to_string());
                tracing::warn!(plugin = name, error = %e, "plugin refused; the previous version keeps serving");
            }
        }
        result
    }

    /// Loads new and changed files and forgets removed ones.
    pub async fn scan(&self) {
        let mut files = match wasm_files(&self.dir) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot read the plugin directory");
                return;
            }
        };
        if let Some(deployed) = &self.deployed {
            match wasm_files(deployed) {
                Ok(over) => files.extend(over),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(dir = %deployed.display(), error = %e, "cannot read the deployed plugins");
                    return;
                }
            }
        }
        for (name, path) in &files {
            let Ok(bytes) = std::fs::read(path) else {
                continue;
            };
            let unchanged = {
                let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
                entries
                    .get(name)
                    .is_some_and(|e| e.seen_hash == content_hash(&bytes))
            };
            if !unchanged {
                // The outcome is kept in the catalog; nothing else to do with it here.
                let _ = self.deploy(name, bytes).await;
            }
        }
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        entries.retain(|name, _| files.contains_key(name));
    }
}

/// `name -> path` of every `NAME.wasm` in `dir` with a valid name.
fn wasm_files(dir: &Path) -> std::io::Result<BTreeMap<String, PathBuf>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "wasm")
            && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
            && valid_name(stem)
            && path.is_file()
        {
            files.insert(stem.to_string(), path);
        }
    }
    Ok(files)
}

pub(crate) mod unix_ms {
    use std::time::{SystemTime, UNIX_EPOCH};

    pub fn serialize<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        let ms = t
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        s.serialize_u64(ms)
    }
}
